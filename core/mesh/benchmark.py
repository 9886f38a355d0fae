"""Mesh export benchmark (``splatgen bench mesh``): seconds per exported mesh, by step.

Scenes: the object the shipped regressor makes of an example photo
(:func:`~splatgen.core.benchmarks.generated_sample`, 32,768 splats) and the example splat file (the
teddy bear, 20,000 splats on a real mesh's surface). Each row times :func:`splatgen.core.mesh.export_mesh`
end to end (render, fuse, marching cubes, simplify, colour, write) into a temporary folder, with the
median of each step beside the total. The machine's load average is recorded before and after: on
a shared machine it says how far to trust the figures.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ..benchmarks import GENERATED_PHOTO, example_splat_file, generated_sample, machine_info
from ..errors import SplatgenError
from . import DEFAULT_FACES, DEFAULT_RESOLUTION, DEFAULT_VIEWS, export_mesh


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run_mesh_benchmark(faces: int = DEFAULT_FACES, resolution: int = DEFAULT_RESOLUTION, views: int = DEFAULT_VIEWS,
                       formats: tuple[str, ...] = ("glb", "obj"), repeat: int = 3, threads: int | None = 2,
                       log=print) -> dict:
    """Time ``export_mesh`` ``repeat`` times per scene and format (one untimed run first).

    Returns ``{"machine", "settings", "load_before", "load_after", "results": [{"scene", "splats",
    "format", "faces", "vertices", "marching_cubes_faces", "median_s", "min_s", "runs", "steps"}]}``;
    ``steps`` holds each step's median seconds.
    """
    if threads:
        torch.set_num_threads(int(threads))
    from ..io import load_splats

    scenes = []
    try:
        scenes.append((f"generated ({GENERATED_PHOTO})", generated_sample()))
    except SplatgenError as exc:   # no usable shipped model: the example file is still timed
        log(f"generated object left out: {exc}")
    scenes.append((example_splat_file().name, load_splats(example_splat_file())))
    result = {"machine": machine_info(), "load_before": _load(),
              "settings": {"faces": faces, "resolution": resolution, "views": views, "repeat": repeat,
                           "threads": torch.get_num_threads()}, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, gaussians in scenes:
            for fmt in formats:
                path = Path(tmp) / f"mesh.{fmt}"
                run = lambda: export_mesh(gaussians, path, faces=faces, resolution=resolution, views=views)  # noqa: E731
                run()   # warm-up: the renderer's context, library imports
                totals, steps, out = [], [], None
                for _ in range(repeat):
                    t = time.perf_counter()
                    out = run()
                    totals.append(time.perf_counter() - t)
                    steps.append(out.mesh.info["seconds"])
                row = {"scene": name, "splats": gaussians.num_gaussians, "format": fmt, "faces": out.mesh.num_faces,
                       "vertices": int(len(out.mesh.vertices)),
                       "marching_cubes_faces": out.mesh.info["marching_cubes_faces"],
                       "bytes": path.stat().st_size, "median_s": round(statistics.median(totals), 3),
                       "min_s": round(min(totals), 3), "runs": repeat,
                       "steps": {k: round(statistics.median(s[k] for s in steps), 3) for k in steps[0]}}
                result["results"].append(row)
                log(f"{name:28s} {fmt}  {row['faces']:>6} faces  {row['median_s']:6.2f} s (min {row['min_s']:.2f})  "
                    + "  ".join(f"{k} {v:.2f}" for k, v in row["steps"].items()))
    result["load_after"] = _load()
    return result
