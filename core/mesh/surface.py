"""The surface of a fused field: marching cubes, then quadric simplification to a face budget.

Marching cubes is scikit-image's (``skimage.measure.marching_cubes``, Lewiner's method: closed,
consistently wound output). Simplification is ``fast-simplification`` (the PyVista project's wrapper
of Sven Forstmann's Fast-Quadric-Mesh-Simplification; trimesh's own ``simplify_quadric_decimation``
calls the same library): a small wheel with only numpy behind it, where Open3D or PyMeshLab would
bring hundreds of megabytes for one function, and it reduces a 100k-face marching-cubes mesh in
well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SplatgenError
from .fusion import VoxelGrid


class EmptySurfaceError(SplatgenError, ValueError):
    """The splats cover no pixel of any view well enough to have a surface (all faint or none)."""


@dataclass
class Surface:
    """A triangle mesh: ``vertices`` ``(V, 3)`` float64 world units, ``faces`` ``(F, 3)`` int64
    (counter-clockwise seen from outside, so normals point out)."""

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def trimesh(self):
        """The mesh as a :class:`trimesh.Trimesh` (not processed: vertices and faces as they are)."""
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def marching_cubes(field: np.ndarray, grid: VoxelGrid, level: float = 0.0) -> Surface:
    """The ``level`` isosurface of ``field`` ``(nx, ny, nz)`` (positive outside) in world units."""
    from skimage.measure import marching_cubes as _mc

    if not (field.min() < level < field.max()):
        raise EmptySurfaceError("the splats show no surface: no view has pixels they cover to half opacity")
    verts, faces, _, _ = _mc(field, level, spacing=(grid.voxel,) * 3, gradient_direction="descent",
                             allow_degenerate=False)
    return Surface(verts.astype(np.float64) + grid.origin, faces.astype(np.int64))


def drop_small_parts(surface: Surface, min_fraction: float) -> Surface:
    """``surface`` without its connected pieces of fewer than ``min_fraction`` of its faces (the
    crumbs a few stray splats leave); the largest piece always stays."""
    if min_fraction <= 0 or surface.num_faces == 0:
        return surface
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = surface.faces
    n = surface.vertices.shape[0]
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    face_label = label[f[:, 0]]
    counts = np.bincount(face_label)
    keep_label = (counts >= min_fraction * surface.num_faces) | (counts == counts.max())
    keep = keep_label[face_label]
    return compact(Surface(surface.vertices, f[keep]))


def compact(surface: Surface) -> Surface:
    """``surface`` with the vertices no face uses removed (faces re-indexed)."""
    used = np.unique(surface.faces)
    remap = np.full(surface.vertices.shape[0], -1, np.int64)
    remap[used] = np.arange(len(used))
    return Surface(surface.vertices[used], remap[surface.faces])


def simplify(surface: Surface, faces: int) -> Surface:
    """``surface`` reduced to about ``faces`` triangles by quadric edge collapse (at most a few
    percent off; a mesh already within the budget is returned as it is)."""
    import fast_simplification

    if faces < 4:
        raise SplatgenError(f"a mesh needs at least 4 faces, asked for {faces}")
    if surface.num_faces <= faces:
        return surface
    verts, tris = fast_simplification.simplify(surface.vertices, surface.faces.astype(np.int32),
                                               target_reduction=1.0 - faces / surface.num_faces)
    return compact(Surface(np.asarray(verts, np.float64), np.asarray(tris, np.int64)))
