#!/usr/bin/env python
"""Time ``prepare_image`` on a 12-megapixel JPEG photo and record it under ``benchmarks/``.

The photo: a real rendered object from ``data/sh3d`` (a view, upscaled ~26× with bicubic
resampling, so its long side is ~half the photo's height) pasted on a gradient with a wood-grain-like
luminance texture, 4000×3000, JPEG quality 90. Without ``data/sh3d`` a synthetic textured ellipse
stands in (recorded in the result). Also timed: a plain full-size decode of the same JPEG (what
decoding alone costs without ``draft``), and the mask IoU against the pasted object's true alpha
(both prepared the same way).

    .venv/bin/python scripts/benchmark_imageprep.py [--repeat 10] [--out benchmarks]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from splatgen.core import framing
from splatgen.core.benchmarks import machine_info, write_result
from splatgen.core.imageprep import DEFAULT_FOREGROUND_RATIO, prepare_image

ROOT = Path(__file__).resolve().parents[1]
VIEW = ROOT / "data" / "sh3d" / "scopia__chair" / "rgba_003.png"


def object_rgba() -> tuple[np.ndarray, str]:
    if VIEW.is_file():
        return np.asarray(Image.open(VIEW).convert("RGBA")), str(VIEW.relative_to(ROOT))
    yy, xx = np.mgrid[0:128, 0:128]
    inside = ((xx - 64) / 40) ** 2 + ((yy - 64) / 28) ** 2 <= 1
    rgb = np.stack([120 + 80 * np.sin(xx / 5), 60 + 50 * np.cos(yy / 7), 40 + 0 * xx], -1)
    return np.dstack([np.clip(rgb, 0, 255), inside * 255]).astype(np.uint8), "synthetic ellipse (no data/sh3d)"


def make_photo(rgba: np.ndarray, width: int = 4000, height: int = 3000, seed: int = 0):
    """(photo uint8 (H, W, 3), true alpha uint8 (H, W)): ``rgba``'s object pasted on a textured gradient."""
    rng = np.random.default_rng(seed)
    ys, xs = np.nonzero(rgba[..., 3] >= 128)
    crop = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    k = 0.5 * height / max(crop.shape[:2])
    size = (round(crop.shape[1] * k), round(crop.shape[0] * k))
    big = np.asarray(Image.fromarray(crop, "RGBA").resize(size, Image.Resampling.BICUBIC)).astype(np.float32) / 255
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx / width * 0.7 + yy / height * 0.3)[..., None]
    bg = np.array([205, 190, 160], np.float32) * (1 - t) + np.array([150, 120, 90], np.float32) * t
    grain = cv2.GaussianBlur(rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32), (0, 0), 12, sigmaY=0.8)
    grain = cv2.resize(grain / (grain.std() + 1e-6), (width, height), interpolation=cv2.INTER_LINEAR)
    bg = bg + (8 * grain + rng.normal(0, 3, (height, width)).astype(np.float32))[..., None]
    alpha = np.zeros((height, width), np.float32)
    rgb = np.zeros((height, width, 3), np.float32)
    ox, oy = int(0.55 * width - size[0] / 2), int(0.45 * height - size[1] / 2)
    alpha[oy:oy + size[1], ox:ox + size[0]] = big[..., 3]
    rgb[oy:oy + size[1], ox:ox + size[0]] = big[..., :3] * 255
    photo = rgb * alpha[..., None] + bg * (1 - alpha[..., None])
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)


def timed(fn, repeat: int) -> dict:
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    wall.sort(), cpu.sort()
    return {"median_ms": wall[len(wall) // 2], "min_ms": wall[0], "max_ms": wall[-1],
            "cpu_median_ms": cpu[len(cpu) // 2], "runs": repeat}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = ap.parse_args(argv)

    rgba, source = object_rgba()
    photo, alpha = make_photo(rgba)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    path = Path("/tmp") / "splatgen-bench-12mp.jpg"
    path.write_bytes(jpeg)

    decode = timed(lambda: Image.open(io.BytesIO(jpeg)).load(), args.repeat)
    prep = timed(lambda: prepare_image(path), args.repeat)
    # for comparison: the same photo as a 12 MP PNG (no reduced-scale decode for PNG)
    png_path = path.with_suffix(".png")
    Image.fromarray(photo).save(png_path, compress_level=1)
    prep_png = timed(lambda: prepare_image(png_path), max(3, args.repeat // 3))
    stages = {}
    for _ in range(args.repeat):
        for k, v in prepare_image(path).timings.items():
            stages.setdefault(k, []).append(v)
    stages = {k: sorted(v)[len(v) // 2] for k, v in stages.items()}

    got = prepare_image(path)
    truth = prepare_image(np.dstack([photo, alpha]))
    m1, m2 = got.mask >= 0.5, truth.mask >= 0.5
    iou = float((m1 & m2).sum() / max(1, (m1 | m2).sum()))
    ys, xs = np.nonzero(m1)
    long_side = int(max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))

    result = {
        "benchmark": "imageprep",
        "command": " ".join([".venv/bin/python scripts/benchmark_imageprep.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "input": {"width": photo.shape[1], "height": photo.shape[0], "format": "JPEG q90",
                  "bytes": len(jpeg), "object": source},
        "full_decode_pil": decode,
        "prepare_image": prep,
        "prepare_stages_median_ms": stages,
        "prepare_image_same_photo_as_png": prep_png,
        "target_ms": 500,
        "mask_iou_vs_true_alpha": round(iou, 4),
        "object_long_side_px": long_side,
        "expected_long_side_px": round(DEFAULT_FOREGROUND_RATIO * framing.IMAGE_SIZE, 2),
        "crop_box": list(got.crop_box),
        "note": "wall times on the shared 2-core CPU machine; cpu_median_ms is this process's CPU time",
    }
    out = write_result("imageprep", result, args.out)
    print(f"12 MP JPEG ({len(jpeg) / 1e6:.1f} MB): full PIL decode {decode['median_ms']:.0f} ms; "
          f"prepare_image median {prep['median_ms']:.0f} ms (min {prep['min_ms']:.0f}, "
          f"cpu {prep['cpu_median_ms']:.0f}); "
          f"stages {', '.join(f'{k} {v:.0f}' for k, v in stages.items())} ms; mask IoU {iou:.3f}")
    print(f"same photo as PNG: prepare_image median {prep_png['median_ms']:.0f} ms")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
