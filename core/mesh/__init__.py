"""Mesh export: a coloured triangle mesh (``.glb`` / ``.obj``) of a sample's Gaussian splats.

One call does it all::

    from splatgen.core.mesh import export_mesh
    result = export_mesh(gaussians, "chair.glb", faces=20000, size_m=0.9, pivot="base", up="y")

The steps, one module each:

1. :mod:`.fusion` — the splats rendered (RGB, alpha, depth) from ``views`` cameras all around them,
   fused into a truncated signed distance field on a voxel grid of ``resolution`` voxels along the
   object's longest side;
2. :mod:`.surface` — marching cubes (scikit-image), crumbs of stray splats dropped, quadric
   simplification to ``faces`` triangles (fast-simplification);
3. :mod:`.colour` — vertex colours from the same renders;
4. :mod:`.placement` — real-world size, pivot and up axis (glTF's Y up and metres by default, which
   Blender's glTF importer expects);
5. :mod:`.write` — the file, with the placement and settings in its metadata (glTF ``asset.extras``,
   the OBJ comment header).

:func:`build_mesh` stops before the file (object frame, world units), for callers that place or
write it themselves.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SettingsError
from ..gaussians import Gaussians
from .colour import vertex_colours, vertex_normals
from .fusion import TRUNCATION_VOXELS, fuse_tsdf, make_grid, object_box, render_views
from .placement import PIVOTS, SIZE_ALONG, UP_AXES, Placement, apply, parse_size
from .surface import EmptySurfaceError, Surface, drop_small_parts, marching_cubes, simplify
from .write import MESH_EXTENSIONS, mesh_format, read_obj_metadata, write_mesh

#: Default face budget of an exported mesh.
DEFAULT_FACES = 20_000
#: Default voxels along the object's longest side.
DEFAULT_RESOLUTION = 128
#: Default number of fusion views.
DEFAULT_VIEWS = 32
#: Pieces of the surface with fewer than this fraction of its faces are dropped (stray splats' crumbs).
MIN_PART_FRACTION = 0.01
#: Largest grid resolution taken (memory: resolution³ floats, several times over).
MAX_RESOLUTION = 384
#: Largest face budget taken.
MAX_FACES = 2_000_000


@dataclass
class ColouredMesh:
    """A mesh with vertex colours: ``vertices`` ``(V, 3)`` float64, ``faces`` ``(F, 3)`` int64,
    ``colours`` ``(V, 3)`` display RGB in [0, 1]; ``info``: the settings and seconds per step."""

    vertices: np.ndarray
    faces: np.ndarray
    colours: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])


@dataclass
class ExportedMesh:
    """What :func:`export_mesh` wrote: ``path``, the mesh as placed in the file (metres) and the
    file's metadata record."""

    path: Path
    mesh: ColouredMesh
    metadata: dict


def build_mesh(gaussians: Gaussians, *, faces: int = DEFAULT_FACES, resolution: int = DEFAULT_RESOLUTION,
               views: int = DEFAULT_VIEWS, view_size: int | None = None, backend: str = "auto",
               min_part: float = MIN_PART_FRACTION) -> ColouredMesh:
    """The coloured mesh of one set of Gaussians ``(N,)``, in their own frame and units.

    Args:
        faces: face budget after simplification (the result has at most a few percent more or fewer;
            fewer when marching cubes gives fewer).
        resolution: voxels along the longest side of the splats' box (detail ≈ that side / resolution).
        views: fusion cameras spread over a sphere. view_size: their image side, pixels (default
            1.5 × ``resolution``, so a voxel covers more than a pixel in every view).
        backend: the renderer (:func:`splatgen.core.render.render`'s ``backend``).
        min_part: pieces with fewer than this fraction of the faces are dropped (0 keeps all).
    """
    if len(gaussians.batch_shape):
        raise SettingsError(f"build_mesh takes one set of Gaussians (N,), got shape {tuple(gaussians.shape)}")
    if gaussians.num_gaussians == 0:
        raise EmptySurfaceError("no splats: nothing to mesh")
    faces, resolution, views = int(faces), int(resolution), int(views)
    if not 4 <= faces <= MAX_FACES:
        raise SettingsError(f"faces must be between 4 and {MAX_FACES}, got {faces}")
    if not 8 <= resolution <= MAX_RESOLUTION:
        raise SettingsError(f"resolution must be between 8 and {MAX_RESOLUTION}, got {resolution}")
    if not 6 <= views <= 512:
        raise SettingsError(f"views must be between 6 and 512, got {views}")
    view_size = int(view_size or round(1.5 * resolution))
    seconds = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[name] = round(now - t, 4)
        t = now

    box = object_box(gaussians)
    grid = make_grid(*box, resolution)
    fusion_views = render_views(gaussians, *box, views, view_size, backend)
    lap("render")
    field_ = fuse_tsdf(grid, fusion_views)
    lap("fuse")
    surface = drop_small_parts(marching_cubes(field_, grid), min_part)
    marching_faces = surface.num_faces
    lap("marching_cubes")
    surface = simplify(surface, faces)
    lap("simplify")
    normals = vertex_normals(surface.vertices, surface.faces)
    colours = vertex_colours(surface.vertices, normals, fusion_views, TRUNCATION_VOXELS * grid.voxel,
                             gaussians.detach().to("cpu"))
    lap("colour")
    info = {"faces_requested": faces, "resolution": resolution, "voxel": grid.voxel, "grid": list(grid.shape),
            "views": views, "view_size": view_size, "marching_cubes_faces": marching_faces,
            "splats": gaussians.num_gaussians, "seconds": seconds}
    return ColouredMesh(surface.vertices, surface.faces, colours, info)


def export_mesh(gaussians: Gaussians, path: str | os.PathLike, *, faces: int = DEFAULT_FACES,
                size_m: float | str | None = None, size_along: str = "longest", pivot: str = "base",
                up: str = "y", resolution: int = DEFAULT_RESOLUTION, views: int = DEFAULT_VIEWS,
                backend: str = "auto", metadata: dict | None = None) -> ExportedMesh:
    """Mesh ``gaussians`` ``(N,)`` (splatgen's object frame: Y up, front +Z) and write ``path``
    (``.glb`` or ``.obj``, by extension).

    Args:
        faces: face budget (see :func:`build_mesh`).
        size_m: real-world size of the side ``size_along`` names (``"longest"``, ``"height"``,
            ``"width"``, ``"depth"``), metres, or a string with a unit (``"180cm"``); None: one
            world unit is one metre.
        pivot: ``"base"`` (origin at the centre of the bottom) or ``"center"`` (of the bounding box).
        up: ``"y"`` (glTF's convention, what Blender's importer expects) or ``"z"``.
        resolution, views, backend: see :func:`build_mesh`.
        metadata: extra JSON-able entries for the file's record (e.g. the model that made the sample).

    Returns:
        :class:`ExportedMesh`; its ``metadata`` is the record written into the file.
    """
    kind = mesh_format(path)   # a wrong extension fails before the work
    placement = Placement(size_m=parse_size(size_m) if size_m is not None else None, size_along=size_along,
                          pivot=pivot, up=up)
    mesh = build_mesh(gaussians, faces=faces, resolution=resolution, views=views, backend=backend)
    t = time.perf_counter()
    matrix = placement.matrix(mesh.vertices)
    placed = ColouredMesh(apply(matrix, mesh.vertices), mesh.faces, mesh.colours, dict(mesh.info))
    record = {"generator": "splatgen mesh export", "format": kind, "faces": placed.num_faces,
              "vertices": int(placed.vertices.shape[0]),
              "vertex_colours": "linear (glTF COLOR_0)" if kind == "glb" else "sRGB display values",
              "placement": placement.record(matrix, placed.vertices),
              "fusion": {k: v for k, v in mesh.info.items() if k != "seconds"}, **(metadata or {})}
    written = write_mesh(path, placed.vertices, placed.faces, placed.colours, record)
    placed.info["seconds"] = {**mesh.info["seconds"], "write": round(time.perf_counter() - t, 4)}
    return ExportedMesh(written, placed, record)


__all__ = ["export_mesh", "build_mesh", "ColouredMesh", "ExportedMesh", "Placement", "parse_size", "EmptySurfaceError",
           "Surface", "MESH_EXTENSIONS", "PIVOTS", "UP_AXES", "SIZE_ALONG", "DEFAULT_FACES", "DEFAULT_RESOLUTION",
           "DEFAULT_VIEWS", "read_obj_metadata"]
