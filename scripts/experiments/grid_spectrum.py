"""How strongly a model's renders show the Splatter Image's pixel grid ("waffle") when zoomed.

    python3 scripts/experiments/grid_spectrum.py --data data/games --split val -m MODEL [--objects 40] [--device cuda] [-o OUT.json]

Each object's input view is regenerated and rendered at 512² from the input camera (4× the 128²
grid of splats, so the grid repeats every 4 pixels: 128 cycles per image). Of the luminance inside
the object (a Hann-windowed crop), the 2D spectrum's energy in the ring at 128 ± 3 cycles is divided
by the energy in the rings just inside and outside it (112–122 and 134–144 cycles): 1 means no
peak at the grid's frequency, above 1 a visible grid. Prints the mean and writes per-object values.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from splatgen.core import framing
from splatgen.core.benchmarks import machine_info
from splatgen.core.evaluation import find_objects, load_object
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.render import render

SIZE = 512


def grid_peak(rgb: np.ndarray, alpha: np.ndarray, grid_cycles: float) -> float:
    """Energy at ``grid_cycles`` (± 3) over that of the neighbouring rings, for ``(S, S, 3)`` / ``(S, S)``."""
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys) < 64:
        return float("nan")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = lum[y0:y1, x0:x1] - lum[y0:y1, x0:x1].mean()
    win = np.outer(np.hanning(crop.shape[0]), np.hanning(crop.shape[1]))
    spec = np.abs(np.fft.fftshift(np.fft.fft2(crop * win, s=(SIZE, SIZE)))) ** 2
    fy, fx = np.meshgrid(np.arange(SIZE) - SIZE // 2, np.arange(SIZE) - SIZE // 2, indexing="ij")
    r = np.hypot(fy, fx)
    ring = lambda lo, hi: spec[(r >= lo) & (r < hi)].mean()  # noqa: E731
    peak = ring(grid_cycles - 3, grid_cycles + 3)
    around = 0.5 * (ring(grid_cycles - 16, grid_cycles - 6) + ring(grid_cycles + 6, grid_cycles + 16))
    return float(peak / max(around, 1e-20))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--objects", type=int, default=40)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (gsplat there)")
    ap.add_argument("-o", "--out", type=Path)
    a = ap.parse_args()
    gen = load_generator(a.model, device=a.device)
    objects = find_objects(a.data, a.split)[: a.objects]
    scale = SIZE / framing.IMAGE_SIZE
    rows = []
    for obj in objects:
        images, alphas, _ = load_object(obj)
        image = torch.cat([images[0], alphas[0]], -1).permute(2, 0, 1).to(a.device)
        sample = gen.generate(image, GenerationSettings(seed=0))[0]
        K = sample.K.clone().float()
        K[..., :2, :] *= scale
        with torch.no_grad():
            out = render(sample.gaussians, sample.input_viewmat[None].float(), K[None] if K.dim() == 2 else K, SIZE, SIZE)
        rgb, alpha = out.rgb[0].clamp(0, 1).float().cpu().numpy(), out.alpha[0, ..., 0].float().cpu().numpy()
        rows.append({"object": obj.name, "grid_peak": grid_peak(rgb, alpha, framing.IMAGE_SIZE)})
    values = [r["grid_peak"] for r in rows if np.isfinite(r["grid_peak"])]
    result = {"benchmark": "grid-spectrum", "machine": machine_info(), "model": a.model, "data": a.data,
              "split": a.split, "device": a.device, "objects": len(values), "size": SIZE, "grid_peak_mean": float(np.mean(values)),
              "grid_peak_median": float(np.median(values)), "per_object": rows,
              "command": "python3 scripts/experiments/grid_spectrum.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in (("data", a.data), ("split", a.split), ("model", a.model),
                                                               ("objects", a.objects)))}
    print(f"{a.model}: grid peak {result['grid_peak_mean']:.2f} mean, {result['grid_peak_median']:.2f} median "
          f"over {len(values)} objects")
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
