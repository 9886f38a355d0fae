"""Depth fusion: the splats rendered from many views around them, fused into a TSDF on a voxel grid.

:func:`render_views` draws the Gaussians with splatgen's own renderer (:func:`splatgen.core.render.render`:
RGB, alpha and expected depth) from ``views`` cameras spread evenly over a sphere around them (a
Fibonacci lattice, so no side is missed), on black, so the colour is premultiplied by alpha.
:func:`fuse_tsdf` turns those views into a truncated signed distance field (Curless & Levoy):

* a voxel that projects onto a covered pixel (alpha ≥ :data:`SURFACE_ALPHA`) gets the pixel's depth
  minus its own, divided by the truncation distance and clamped to [-1, 1], unless it lies more than
  the truncation behind that surface (then the view says nothing about it);
* a voxel that projects onto an empty pixel, or outside the image (which holds the whole object),
  is free space (+1): every view carves the silhouette;
* the field is the mean over the views that said something; voxels no view reached lie deep inside
  the object (-1). Positive is outside, so the surface is the field's zero level.

Splats are not a closed surface: a view sees through the small gaps between them to the far side,
and such a pixel's expected depth lies behind the near surface. With plain TSDF fusion a voxel
inside hears only from those few views (the others see it hidden behind their surface, and say
nothing) and is carved: the object fills with bubbles and tunnels. So a voxel counts as outside
only where at least :data:`MIN_FRONT_FRACTION` of the views see it in front of their surface (every
voxel outside an object is seen so by many views; gaps line up in few). Concavities that fewer views
see into are filled. A light blur (:data:`SMOOTH_VOXELS`) then removes voxel-sized noise.

Hand-written because Open3D's TSDF volume, the maintained one, weighs hundreds of megabytes and has
no place for that rule; this is a few vectorised lines over splatgen's own renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..cameras import intrinsics_from_fov, look_at
from ..gaussians import Gaussians
from ..render import render

#: A pixel whose alpha reaches this is covered by the object (its depth is a surface); below, empty.
SURFACE_ALPHA = 0.5
#: Splats fainter than this do not widen the grid's box (they cannot cover a pixel to SURFACE_ALPHA alone).
BOX_MIN_OPACITY = 0.1
#: Field of view of the fusion cameras, degrees.
FUSION_FOV_DEG = 40.0
#: A voxel is outside only where at least this fraction of the views (at least one) see it in front
#: of their surface; elsewhere a positive field is turned negative (see the module docstring).
MIN_FRONT_FRACTION = 0.15
#: Standard deviation of the Gaussian blur of the fused field, voxels (its noise is about a voxel).
SMOOTH_VOXELS = 1.0
#: Points fused at a time: their per-view arrays stay in the CPU's cache, and each operation stays
#: below torch's grain for splitting work over threads (32,768 elements), whose barriers cost more
#: than they give on a busy 2-core machine.
BLOCK = 1 << 14
#: Truncation distance of the TSDF, in voxels.
TRUNCATION_VOXELS = 3.0


@dataclass
class VoxelGrid:
    """An axis-aligned grid: voxel ``(i, j, k)`` has its centre at ``origin + (i, j, k) * voxel``
    (world units); ``shape`` ``(nx, ny, nz)``."""

    origin: np.ndarray
    voxel: float
    shape: tuple[int, int, int]

    @property
    def center(self) -> np.ndarray:
        return self.origin + 0.5 * self.voxel * (np.asarray(self.shape) - 1)

    @property
    def radius(self) -> float:
        """Half the diagonal of the box spanned by the voxel centres, world units."""
        return 0.5 * self.voxel * float(np.linalg.norm(np.asarray(self.shape) - 1))

    def centres(self) -> torch.Tensor:
        """Voxel centres ``(nx·ny·nz, 3)`` float32, in C order of ``(i, j, k)``."""
        axes = [torch.arange(n, dtype=torch.float32) * self.voxel + float(o) for n, o in zip(self.shape, self.origin)]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


@dataclass
class FusionViews:
    """The renders fused: ``viewmats`` ``(V, 4, 4)`` OpenCV world-to-camera, ``K`` ``(3, 3)`` pixels,
    ``rgb`` ``(V, S, S, 3)`` premultiplied by ``alpha`` ``(V, S, S, 1)``, ``depth`` ``(V, S, S, 1)``
    (expected camera z, world units). float32 CPU tensors."""

    viewmats: torch.Tensor
    K: torch.Tensor
    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor

    @property
    def size(self) -> int:
        return self.rgb.shape[1]


def object_box(gaussians: Gaussians) -> tuple[np.ndarray, np.ndarray]:
    """The box ``(lo, hi)`` (world units, ``(3,)`` each) that holds what can show of the splats:
    the centres of those of opacity ≥ :data:`BOX_MIN_OPACITY` (all, when none is), widened by three
    standard deviations of the largest of them (the renderer draws a splat out to ~3.3σ)."""
    keep = gaussians.opacities >= BOX_MIN_OPACITY
    g = gaussians[keep] if bool(keep.any()) else gaussians
    means = g.means.detach().to("cpu", torch.float64).numpy()
    reach = 3.0 * float(np.percentile(g.scales.detach().to("cpu", torch.float64).amax(-1).numpy(), 99))
    return means.min(0) - reach, means.max(0) + reach


def make_grid(lo: np.ndarray, hi: np.ndarray, resolution: int) -> VoxelGrid:
    """A grid over the box ``lo``–``hi`` with ``resolution`` voxels along its longest side, and two
    empty voxels of margin on every side (so the surface closes inside the grid)."""
    extent = np.maximum(hi - lo, 1e-9)
    voxel = float(extent.max()) / max(resolution - 1, 1)
    shape = tuple(int(math.ceil(e / voxel)) + 1 + 4 for e in extent)
    centre = 0.5 * (lo + hi)
    origin = centre - 0.5 * voxel * (np.asarray(shape) - 1)
    return VoxelGrid(origin.astype(np.float64), voxel, shape)  # type: ignore[arg-type]


def sphere_directions(n: int) -> np.ndarray:
    """``n`` unit vectors ``(n, 3)`` spread evenly over the sphere (a Fibonacci lattice, Y the pole)."""
    i = np.arange(n) + 0.5
    y = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - y * y, 0.0, 1.0))
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.sin(phi), y, r * np.cos(phi)], -1)


def render_views(gaussians: Gaussians, lo: np.ndarray, hi: np.ndarray, views: int, size: int,
                 backend: str = "auto") -> FusionViews:
    """Render ``views`` cameras of ``size``² pixels spread over a sphere around the box ``lo``–``hi``,
    each seeing the whole box (module docstring)."""
    centre, radius = 0.5 * (lo + hi), max(0.5 * float(np.linalg.norm(hi - lo)), 1e-6)
    distance = radius / math.sin(math.radians(FUSION_FOV_DEG) / 2) * 1.02
    dirs = sphere_directions(views)
    viewmats = torch.stack([
        look_at(torch.from_numpy(centre + distance * d), torch.from_numpy(centre),
                up=(0.0, 1.0, 0.0) if abs(d[1]) < 0.99 else (0.0, 0.0, 1.0))
        for d in dirs])
    K = intrinsics_from_fov(FUSION_FOV_DEG, size, size)
    g = gaussians.detach()
    near, far = max(distance - radius, 0.0) * 0.5 + 1e-6 * distance, (distance + radius) * 2.0
    with torch.no_grad():
        out = render(g, viewmats.to(g.device), K.to(g.device), size, size, background=(0.0, 0.0, 0.0),
                     backend=backend, near=near, far=far)
    f32 = lambda t: t.detach().to("cpu", torch.float32)  # noqa: E731
    return FusionViews(viewmats.float(), K.float(), f32(out.rgb), f32(out.alpha), f32(out.depth))


def project(points: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, size: int):
    """World points ``(M, 3)`` into one camera: camera z ``(M,)``, flat pixel index ``(M,)`` (row-major
    into the ``size``² image) and whether the point falls inside the image in front of the camera.

    Elementwise (no matrix product): a BLAS call's worker threads keep spinning after it and take the
    cores of a small machine (see :func:`splatgen.core.cameras.camera_coordinate`)."""
    P = (K.double() @ viewmat[:3].double()).tolist()   # pixel-space projection, 3×4
    x, y, w = points.unbind(-1)
    z = x * P[2][0] + y * P[2][1] + w * P[2][2] + P[2][3]
    zs = z.clamp_min(1e-9)
    u = (x * P[0][0] + y * P[0][1] + w * P[0][2] + P[0][3]) / zs
    v = (x * P[1][0] + y * P[1][1] + w * P[1][2] + P[1][3]) / zs
    inside = (z > 0) & (u >= 0) & (u < size) & (v >= 0) & (v < size)
    # truncation is the floor on the clamped, non-negative coordinates (torch.floor itself is slow here)
    index = v.clamp(0, size - 1).to(torch.int64) * size + u.clamp(0, size - 1).to(torch.int64)
    return z, index, inside


def fuse_points(points: torch.Tensor, views: FusionViews, trunc: float,
                min_front_fraction: float = MIN_FRONT_FRACTION) -> torch.Tensor:
    """The fused field ``(M,)`` at world points ``(M, 3)``, before the blur: the mean clamped signed
    distance over the views that say something, in units of ``trunc`` (world units), -1 where none
    does, and negative where too few views see the point in front of their surface.

    Runs over blocks of :data:`BLOCK` points, all views each (the block's arrays stay in cache)."""
    return torch.cat([_fuse_block(points[i:i + BLOCK], views, trunc, min_front_fraction)
                      for i in range(0, points.shape[0], BLOCK)]) if points.shape[0] else points.new_zeros(0)


def _fuse_block(points, views, trunc, min_front_fraction):
    total = torch.zeros(points.shape[0])
    weight = torch.zeros(points.shape[0])
    front = torch.zeros(points.shape[0])
    alpha = views.alpha.reshape(views.alpha.shape[0], -1)
    depth = views.depth.reshape(views.depth.shape[0], -1)
    for c in range(views.viewmats.shape[0]):
        z, index, inside = project(points, views.viewmats[c], views.K, views.size)
        covered = inside & (alpha[c].index_select(0, index) >= SURFACE_ALPHA)
        sdf = (depth[c].index_select(0, index) - z) / trunc
        # covered: the signed distance to the surface, if not hidden behind it; else free space (an
        # empty pixel, or outside the image, which holds the whole object)
        value = torch.where(covered, sdf.clamp(-1.0, 1.0), 1.0)
        said = ~covered | (sdf >= -1.0)
        total += torch.where(said, value, 0.0)
        weight += said
        front += said & (value > 0)
    field = torch.where(weight > 0, total / weight.clamp_min(1.0), -1.0)
    needed = max(1, math.ceil(min_front_fraction * views.viewmats.shape[0]))
    return torch.where((front < needed) & (field > 0), -field, field)


def fuse_tsdf(grid: VoxelGrid, views: FusionViews, truncation_voxels: float = TRUNCATION_VOXELS,
              min_front_fraction: float = MIN_FRONT_FRACTION, smooth_voxels: float = SMOOTH_VOXELS) -> np.ndarray:
    """The TSDF ``(nx, ny, nz)`` float32 of ``views`` on ``grid``: in [-1, 1], in units of the
    truncation distance, positive outside, blurred by ``smooth_voxels`` (module docstring).

    Coarse to fine: the field is first fused at every second voxel; where it is exactly ±1 (farther
    than the truncation from every surface) around a coarse voxel, its eight fine voxels take that
    value, and only the others (the band around the surface) are fused at full resolution.
    """
    trunc = truncation_voxels * grid.voxel
    coarse_grid = VoxelGrid(grid.origin, 2 * grid.voxel, tuple((n + 1) // 2 for n in grid.shape))
    coarse = fuse_points(coarse_grid.centres(), views, trunc, min_front_fraction).reshape(coarse_grid.shape)
    # a fine voxel is decided when every coarse voxel within one coarse step is at ±1 and of one sign
    decided = torch.nn.functional.max_pool3d((coarse.abs() < 1.0).float()[None, None], 3, 1, 1)[0, 0] == 0
    sign_changes = torch.nn.functional.max_pool3d(coarse[None, None], 3, 1, 1)[0, 0] != \
        -torch.nn.functional.max_pool3d(-coarse[None, None], 3, 1, 1)[0, 0]
    decided &= ~sign_changes
    up = lambda t: t.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)[  # noqa: E731
        :grid.shape[0], :grid.shape[1], :grid.shape[2]]
    field = up(coarse).clone()
    band = ~up(decided)
    points = grid.centres().reshape(*grid.shape, 3)[band]
    field[band] = fuse_points(points, views, trunc, min_front_fraction)
    field = field.numpy()
    if smooth_voxels > 0:
        from scipy.ndimage import gaussian_filter

        field = gaussian_filter(field, smooth_voxels, mode="nearest")
    # the outermost voxels are outside by construction: the surface closes inside the grid
    field[[0, -1], :, :] = field[:, [0, -1], :] = field[:, :, [0, -1]] = 1.0
    return field.astype(np.float32)
