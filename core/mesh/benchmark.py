"""Mesh export benchmark (``splatgen bench mesh``): seconds per exported mesh, by step, and how close
the mesh lies to the splats.

Scenes: the object the shipped regressor makes of an example photo
(:func:`~splatgen.core.benchmarks.generated_sample`, 32,768 splats) and the example splat file (the
teddy bear, 20,000 splats on a real mesh's surface). Each row times :func:`splatgen.core.mesh.export_mesh`
end to end (render, fuse, marching cubes, simplify, colour, write) into a temporary folder, with the
median of each step beside the total. The machine's load average is recorded before and after: on
a shared machine it says how far to trust the figures.

Geometry, per scene (world units of the object frame; an object's bounding sphere has radius 0.5):
the mean symmetric Chamfer distance (:func:`chamfer`) between the mesh and the splats' visible
surface (:func:`splat_surface`), and for the teddy bear also to the true mesh its splats were
sampled on (:func:`teddy_true_surface`, when Debian's ``sweethome3d-furniture`` is installed). The
tests use the same measures.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..benchmarks import GENERATED_PHOTO, example_splat_file, generated_sample, machine_info
from ..errors import SplatgenError
from ..gaussians import Gaussians
from . import DEFAULT_FACES, DEFAULT_RESOLUTION, DEFAULT_VIEWS, export_mesh
from .placement import apply

#: The teddy bear the example splat file and example image were made from (scripts/make_example_splat.py).
TEDDY_LIBRARY = Path("/usr/share/sweethome3d/furniture/BlendSwap-CC-0.sh3f")
TEDDY_ID = "blendswap-cc-0__teddyBear"


def surface_points(vertices: np.ndarray, faces: np.ndarray, n: int = 20000) -> np.ndarray:
    """``n`` area-weighted samples ``(n, 3)`` on a triangle mesh (seeded)."""
    import trimesh

    return trimesh.sample.sample_surface(trimesh.Trimesh(vertices, faces, process=False), n, seed=0)[0]


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Mean symmetric Chamfer distance of two point sets: ½ (mean a→b nearest + mean b→a nearest)."""
    from scipy.spatial import cKDTree

    return float(0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()))


def splat_surface(gaussians: Gaussians, views: int = 8, size: int = 192, seed: int = 1, limit: int = 20000) -> np.ndarray:
    """The splats' visible surface ``(P, 3)``, P ≤ ``limit``: the pixels of ``views`` random cameras
    (seeded; none of the fusion's) that the splats cover to alpha ≥ 0.5, back-projected at their
    rendered depth, then a seeded subset of ``limit`` of them."""
    from ..cameras import intrinsics_from_fov, look_at
    from ..render import render
    from .fusion import SURFACE_ALPHA, object_box

    lo, hi = object_box(gaussians)
    centre, radius = 0.5 * (lo + hi), 0.5 * float(np.linalg.norm(hi - lo))
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(views, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    distance = radius / math.sin(math.radians(20)) * 1.05
    viewmats = torch.stack([look_at(torch.tensor(centre + distance * d), torch.tensor(centre)) for d in dirs])
    K = intrinsics_from_fov(40.0, size, size)
    g = gaussians.detach().to("cpu")
    with torch.no_grad():
        out = render(g, viewmats, K, size, size, background=(0.0, 0.0, 0.0))
    jj, ii = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    points = []
    for c in range(views):
        m = out.alpha[c, ..., 0] >= SURFACE_ALPHA
        z = out.depth[c, ..., 0][m].double()
        cam = torch.stack([(ii[m] - K[0, 2]) / K[0, 0] * z, (jj[m] - K[1, 2]) / K[1, 1] * z, z], -1)
        vm = viewmats[c].double()
        points.append(((cam - vm[:3, 3]) @ vm[:3, :3]).numpy())
    points = np.concatenate(points)
    return points[np.random.default_rng(0).permutation(len(points))[:limit]]


def teddy_true_surface(n: int = 20000) -> np.ndarray | None:
    """Samples ``(n, 3)`` of the true teddy bear mesh at the canonical framing (placed as
    scripts/make_example_splat.py places it), or None without Debian's sweethome3d-furniture."""
    if not TEDDY_LIBRARY.is_file():
        return None
    from ..data import mesh_render
    from ..data.sources import read_catalog

    objects, _ = read_catalog(TEDDY_LIBRARY)
    obj = next(o for o in objects if o.object_id == TEDDY_ID)
    parts = [p for p in mesh_render.load_parts(obj.container, obj.model_path).parts if not p.blend]
    parts = mesh_render.transform_parts(parts, mesh_render.normalisation_matrix(parts, obj.model_rotation, obj.size_cm))
    soup = np.concatenate([p.positions for p in parts]).astype(np.float64)
    return surface_points(soup, np.arange(len(soup)).reshape(-1, 3), n)


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
    "format", "faces", "vertices", "marching_cubes_faces", "median_s", "min_s", "runs", "steps",
    "chamfer_splat_surface", ("chamfer_true_mesh", "chamfer_splats_true_mesh")}]}``; ``steps`` holds
    each step's median seconds; the Chamfer distances are the module docstring's.
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
    true_teddy = teddy_true_surface()
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
                # back in the object frame, through the placement the file records
                to_file = np.asarray(out.metadata["placement"]["object_to_file"])
                mesh_points = apply(np.linalg.inv(to_file), surface_points(out.mesh.vertices, out.mesh.faces))
                splats = splat_surface(gaussians)
                row["chamfer_splat_surface"] = round(chamfer(mesh_points, splats), 5)
                if name == example_splat_file().name and true_teddy is not None:
                    row["chamfer_true_mesh"] = round(chamfer(mesh_points, true_teddy), 5)
                    row["chamfer_splats_true_mesh"] = round(chamfer(splats, true_teddy), 5)
                result["results"].append(row)
                log(f"{name:28s} {fmt}  {row['faces']:>6} faces  {row['median_s']:6.2f} s (min {row['min_s']:.2f})  "
                    + "  ".join(f"{k} {v:.2f}" for k, v in row["steps"].items()))
    result["load_after"] = _load()
    return result
