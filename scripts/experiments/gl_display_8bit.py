"""On-screen frames accumulated in 8 bits vs float32: the measurements behind ``display_8bit``.

For each scene, two renderers configured as the GUI viewport (``VIEW_MIN_TRANSMITTANCE``, drawing
into an RGBA8 framebuffer of their context) differ only in ``display_8bit``. They are timed in
alternation (``ROUNDS`` rounds of ``REPEAT`` frames each; this machine's load moves single runs by
20-40%), and the 8-bit frame is compared with the float one: PSNR over the whole image, the
largest difference and the mean signed difference in 8-bit steps.

Scenes: the benchmark's 16k random ball (``bench_scene``), the teddy bear example, the shipped
regressor's object for the sofa example photo; the bench camera at ``--size``².

    .venv/bin/python scripts/experiments/gl_display_8bit.py benchmarks/gl-display-8bit-cpu2-DATE.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from record import save_result  # noqa: E402

from splatgen.core.benchmarks import (GENERATED_PHOTO, bench_camera, bench_scene, example_splat_file,  # noqa: E402
                                      generated_sample, machine_info)
from splatgen.core.io import load_splats  # noqa: E402
from splatgen.core.metrics import psnr  # noqa: E402
from splatgen.core.render import gl_backend  # noqa: E402

ROUNDS, REPEAT = 12, 5
BACKGROUND = (1.0, 1.0, 1.0)


def scenes() -> dict:
    return {"ball 16k": bench_scene(16384), example_splat_file().name: load_splats(example_splat_file()),
            f"regressor object of {GENERATED_PHOTO}": generated_sample()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    size = args.size
    vm, K = (a[0].double().numpy() for a in bench_camera(size))
    ctx = gl_backend.create_headless_context()
    rows = []
    with ctx:
        rb = ctx.renderbuffer((size, size), 4)
        fbo = ctx.framebuffer(color_attachments=[rb])
        for name, g in scenes().items():
            renderers = {bits: gl_backend.GLSplatRenderer(ctx, min_transmittance=gl_backend.VIEW_MIN_TRANSMITTANCE,
                                                          display_8bit=bits) for bits in (False, True)}
            images, medians = {}, {bits: [] for bits in renderers}
            for bits, r in renderers.items():
                r.set_gaussians(g)
                r.render(vm, K, size, size, fbo=fbo, background=BACKGROUND)
                images[bits] = np.frombuffer(fbo.read(components=3), np.uint8).reshape(size, size, 3)
            for _ in range(ROUNDS):
                for bits, r in renderers.items():
                    times = []
                    for _ in range(REPEAT):
                        t0 = time.perf_counter()
                        r.render(vm, K, size, size, fbo=fbo, background=BACKGROUND)
                        ctx.finish()
                        times.append((time.perf_counter() - t0) * 1e3)
                    medians[bits].append(float(np.median(times)))
            culled = renderers[True].last_culled
            for r in renderers.values():
                r.release()
            ref, low = (images[b].astype(np.float64) for b in (False, True))
            diff = low - ref
            row = {"scene": name, "splats": g.num_gaussians, "size": size, "culled": culled,
                   "float_ms": round(float(np.median(medians[False])), 1),
                   "u8_ms": round(float(np.median(medians[True])), 1),
                   "psnr_db": round(float(psnr(torch.from_numpy(low / 255.0), torch.from_numpy(ref / 255.0))), 1),
                   "max_diff_steps": int(np.abs(diff).max()), "mean_diff_steps": round(float(diff.mean()), 3)}
            row["speedup"] = round(1.0 - row["u8_ms"] / row["float_ms"], 3)
            rows.append(row)
            print(f"{name:>28} {size}²  float {row['float_ms']:6.1f} ms  8-bit {row['u8_ms']:6.1f} ms "
                  f"({100 * row['speedup']:+.0f}%)  PSNR {row['psnr_db']:.1f} dB  max {row['max_diff_steps']} "
                  f"mean {row['mean_diff_steps']:+.2f} steps", flush=True)
        fbo.release()
        rb.release()
    ctx.release()
    save_result({"machine": machine_info(), "rounds": ROUNDS, "repeat": REPEAT, "results": rows}, args.out)


if __name__ == "__main__":
    main()
