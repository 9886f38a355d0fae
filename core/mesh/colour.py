"""Vertex colours of a fused mesh, taken from the very renders it was fused from.

Each vertex is projected into every fusion view; a view counts where the vertex is what that pixel
shows (the pixel is covered and its depth is within a tolerance of the vertex's), weighted by
coverage and by how squarely the view faces the surface (``cos²`` of the angle between the vertex
normal and the direction to the camera), so grazing views, which smear colour, count little. The
pixel's colour is un-premultiplied (the views are rendered on black). A vertex no view shows (deep
in a crease) takes the colour of the nearest opaque splat.

Colours are the renders' display values (sRGB-encoded, as splat colours are shown); writers convert
where a format wants linear values (glTF, see :mod:`.write`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..gaussians import Gaussians
from .fusion import SURFACE_ALPHA, FusionViews, project


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)`` of a mesh (zero for a vertex no face uses)."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(out, faces[:, corner], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-20)


def vertex_colours(vertices: np.ndarray, normals: np.ndarray, views: FusionViews, tolerance: float,
                   gaussians: Gaussians | None = None) -> np.ndarray:
    """RGB in [0, 1] ``(V, 3)`` float32 of every vertex (module docstring). ``tolerance``: how far,
    world units, a vertex may lie from the depth a pixel shows and still be what it shows."""
    p = torch.from_numpy(np.ascontiguousarray(vertices, np.float32))
    nrm = torch.from_numpy(np.ascontiguousarray(normals, np.float32))
    size = views.size
    rgb = views.rgb.reshape(views.rgb.shape[0], -1, 3)
    alpha = views.alpha.reshape(views.alpha.shape[0], -1)
    depth = views.depth.reshape(views.depth.shape[0], -1)
    total = torch.zeros(p.shape[0], 3)
    weight = torch.zeros(p.shape[0])
    for c in range(views.viewmats.shape[0]):
        vm = views.viewmats[c]
        z, index, inside = project(p, vm, views.K, size)
        a = alpha[c].index_select(0, index)
        eye = -(vm[:3, :3].T @ vm[:3, 3])
        to_eye = torch.nn.functional.normalize(eye[None] - p, dim=-1)
        facing = (nrm * to_eye).sum(-1).clamp_min(0.0)
        seen = inside & (a >= SURFACE_ALPHA) & ((depth[c].index_select(0, index) - z).abs() <= tolerance)
        w = torch.where(seen, a * facing * facing, 0.0)
        total += w[:, None] * (rgb[c].index_select(0, index) / a.clamp_min(1e-6)[:, None])
        weight += w
    colours = (total / weight.clamp_min(1e-12)[:, None]).clamp(0.0, 1.0).numpy()
    unseen = (weight <= 1e-6).numpy()
    if unseen.any() and gaussians is not None and gaussians.num_gaussians:
        colours[unseen] = nearest_splat_colours(vertices[unseen], gaussians)
    return colours.astype(np.float32)


def nearest_splat_colours(points: np.ndarray, gaussians: Gaussians, min_opacity: float = 0.5) -> np.ndarray:
    """RGB ``(M, 3)`` of the splat nearest each of ``points`` ``(M, 3)`` among those of opacity
    ≥ ``min_opacity`` (all splats when none is that opaque)."""
    from scipy.spatial import cKDTree

    g = gaussians.detach().to("cpu")
    keep = g.opacities >= min_opacity
    if bool(keep.any()):
        g = g[keep]
    _, nearest = cKDTree(g.means.double().numpy()).query(points, k=1)
    return g.rgb.float().numpy()[nearest]
