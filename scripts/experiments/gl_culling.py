"""When does the OpenGL renderer's occlusion culling pay? The measurements behind ``CULLING_DEPTH``.

For scenes from light to dense, times ``GLSplatRenderer.render`` (one camera, RGB read back) with
occlusion culling forced on and off, at both transmittance floors (1e-4: offscreen renders; 1/255:
the viewers), beside the scene's estimated ``optical_depth`` and its ratio to
``ln(1 / min_transmittance)``. "auto" culls from ``CULLING_DEPTH`` × that.

Scenes: the benchmark's random ball (``bench_scene``) at 16k and 65k splats and at 16k with every
scale multiplied by 0.5 / 0.7 / 0.85 / 1.2; the teddy bear example; the shipped regressor's object
for the sofa example photo. Each time is the best of ``ROUNDS`` medians of ``REPEAT`` frames
(this machine's load varies).

    .venv/bin/python scripts/experiments/gl_culling.py benchmarks/gl-culling-cpu2-DATE.json [--sizes 512 1024]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from record import save_result  # noqa: E402

from splatgen.core.benchmarks import (GENERATED_PHOTO, bench_camera, bench_scene, example_splat_file,  # noqa: E402
                                      generated_sample, machine_info)
from splatgen.core.gaussians import random_gaussians  # noqa: E402
from splatgen.core.io import load_splats  # noqa: E402
from splatgen.core.render import gl_backend  # noqa: E402

ROUNDS, REPEAT = 2, 10


def scenes() -> dict:
    out = {"ball 16k": bench_scene(16384), "ball 65k": bench_scene(65536)}
    for f in (0.5, 0.7, 0.85, 1.2):
        out[f"ball 16k, scales x{f}"] = random_gaussians(16384, radius=0.5, scale_range=(0.005 * f, 0.03 * f),
                                                        seed=16384)
    out[example_splat_file().name] = load_splats(example_splat_file())
    out[f"regressor object of {GENERATED_PHOTO}"] = generated_sample()
    return out


def best_median_ms(renderer, viewmat, K, size) -> float:
    medians = []
    for _ in range(ROUNDS):
        renderer.render(viewmat, K, size, size)
        times = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            renderer.render(viewmat, K, size, size)
            times.append((time.perf_counter() - t0) * 1e3)
        medians.append(float(np.median(times)))
    return min(medians)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    args = ap.parse_args()
    rows = []
    for name, g in scenes().items():
        for size in args.sizes:
            vm, K = (a[0].double().numpy() for a in bench_camera(size))
            for t_min in (gl_backend.T_MIN, gl_backend.VIEW_MIN_TRANSMITTANCE):
                times = {}
                for cull in (True, False):
                    r = gl_backend.GLSplatRenderer(occlusion_culling=cull, min_transmittance=t_min)
                    try:
                        r.set_gaussians(g)
                        times[cull] = best_median_ms(r, vm, K, size)
                        if cull:
                            depth = r.optical_depth(vm, K, size, size)
                    finally:
                        r.release()
                ratio = depth / -math.log(t_min)
                row = {"scene": name, "splats": g.num_gaussians, "size": size, "min_transmittance": t_min,
                       "optical_depth": round(depth, 2), "ratio": round(ratio, 2),
                       "culled_ms": round(times[True], 1), "unculled_ms": round(times[False], 1),
                       "auto_culls": ratio >= gl_backend.CULLING_DEPTH}
                rows.append(row)
                print(f"{name:>30} {size:>5}² T>{t_min:.4g}  depth {depth:6.2f} (x{ratio:4.2f})  "
                      f"culled {times[True]:7.1f} ms  unculled {times[False]:7.1f} ms  auto: "
                      f"{'cull' if row['auto_culls'] else 'no cull'}", flush=True)
    save_result({"machine": machine_info(), "culling_depth": gl_backend.CULLING_DEPTH, "results": rows}, args.out)


if __name__ == "__main__":
    main()
