"""Pure-PyTorch differentiable Gaussian rasterizer on sparse (pixel, Gaussian) pair lists.

The reference renderer: it runs anywhere PyTorch runs, autograd gives its gradients, and it follows
gsplat's "classic" 3DGS image model closely (EWA projection with the same Jacobian clamp, 0.3 px²
blur, opacity-aware bounding boxes, α ≤ 0.999, α < 1/255 skipped, a pixel stops once its
transmittance would fall to 1e-4) so the two agree to rounding.

Instead of a dense pixels × Gaussians tensor it lists, per camera, only the (pixel, Gaussian) pairs
whose α reaches 1/255, sorted by pixel then depth. Transmittance is a segmented exclusive cumulative
sum of log(1 - α) over each pixel's run; colours are scattered back with ``index_add``. Memory and
time are linear in the number of such pairs (≈ splat area in pixels × number of splats).
"""

from __future__ import annotations

import math

import torch

from ..gaussians import Gaussians, quat_to_rotation_matrix
from . import RenderError, RenderOutput
from .sh import eval_sh

ALPHA_MIN = 1.0 / 255.0  # contributions below this are skipped (as gsplat / 3DGS)
ALPHA_MAX = 0.999  # gsplat's clamp, keeps log(1 - α) finite
T_MIN = 1e-4  # a pixel stops compositing before its transmittance would reach this
EPS_2D = 0.3  # low-pass blur added to the 2D covariance, px²
EXTEND_MAX = 3.33  # bounding boxes reach at most this many standard deviations
#: Refuse a camera needing more (pixel, Gaussian) pairs than this (~100 bytes each through autograd).
MAX_PAIRS = 40_000_000


def project(
    gaussians: Gaussians, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, near: float, far: float,
) -> dict[str, torch.Tensor]:
    """Project one scene ``(N,)`` into one camera.

    Returns a dict over the ``M`` splats in front of the camera (index ``ids`` ``(M,)`` into the input):
    ``mean2d`` ``(M, 2)`` px, ``conic`` ``(M, 3)`` = upper triangle of Σ'⁻¹, ``cov2d`` ``(M, 3)`` = (a, b, c)
    of Σ' in px², ``depth`` ``(M,)`` camera-space z, ``cam`` ``(M, 3)`` camera-space means.
    """
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    cam_all = gaussians.means @ R.T + t
    ids = torch.nonzero((cam_all[:, 2] > near) & (cam_all[:, 2] < far)).squeeze(1)
    cam = cam_all[ids]
    x, y, z = cam.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    # Clamp the Jacobian's evaluation point as gsplat does, so splats far outside the view do not
    # blow up; the clamp is a constant w.r.t. gradients only where it is active.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = z * torch.minimum(torch.maximum(x / z, -(cx / fx + 0.3 * tan_x)), (width - cx) / fx + 0.3 * tan_x)
    ty = z * torch.minimum(torch.maximum(y / z, -(cy / fy + 0.3 * tan_y)), (height - cy) / fy + 0.3 * tan_y)
    rz = 1.0 / z
    zeros = torch.zeros_like(z)
    J = torch.stack([
        torch.stack([fx * rz, zeros, -fx * tx * rz * rz], -1),
        torch.stack([zeros, fy * rz, -fy * ty * rz * rz], -1),
    ], dim=-2)  # (M, 2, 3)
    rot = quat_to_rotation_matrix(gaussians.quats[ids])  # (M, 3, 3)
    M = (R @ rot) * torch.exp(gaussians.log_scales[ids])[:, None, :]  # camera-space R·S
    JM = J @ M  # (M, 2, 3); Σ' = (JM)(JM)ᵀ
    a = (JM[:, 0] * JM[:, 0]).sum(-1) + EPS_2D
    b = (JM[:, 0] * JM[:, 1]).sum(-1)
    c = (JM[:, 1] * JM[:, 1]).sum(-1) + EPS_2D
    det = (a * c - b * b).clamp_min(1e-12)
    mean2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)
    return {
        "ids": ids,
        "mean2d": mean2d,
        "cov2d": torch.stack([a, b, c], -1),
        "conic": torch.stack([c / det, -b / det, a / det], -1),
        "depth": z,
        "cam": cam,
    }


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For run lengths ``counts`` ``(R,)`` → (run index, offset inside the run), each ``(sum(counts),)``."""
    total = int(counts.sum())
    run = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts, output_size=total)
    start = torch.cumsum(counts, 0) - counts
    return run, torch.arange(total, device=counts.device) - start.index_select(0, run)


@torch.no_grad()
def _pairs(mean2d, cov2d, conic, opacity, width: int, height: int):
    """Enumerate the (Gaussian, pixel) pairs that count; Gaussians must already be depth-sorted.

    A pair counts when α ≥ 1/255 at the pixel centre (inside the ellipse
    ``½ dᵀ Σ'⁻¹ d ≤ log(255·opacity)``, within gsplat's 3.33σ box) and the pixel has not stopped
    earlier (transmittance above T_MIN). Pairs are enumerated exactly, row by row of each ellipse,
    so no candidate is wasted.

    Returns ``gid`` ``(P,)`` (index into the projected set) and ``pix`` ``(P,)`` (row-major pixel id),
    sorted by pixel, then by depth within a pixel.
    """
    sigma_max = torch.log((opacity * 255.0).clamp_min(1.0)).clamp_max(0.5 * EXTEND_MAX ** 2)
    u, v = mean2d[:, 0], mean2d[:, 1]
    # rows of each ellipse: |dy| <= sqrt(2 σmax Σ'_yy); pixel row i is sampled at i + 0.5
    ry = torch.sqrt(2.0 * sigma_max * cov2d[:, 2])
    y0 = torch.ceil(v - ry - 0.5).clamp(0, height)
    y1 = torch.floor(v + ry - 0.5).clamp(-1, height - 1)
    rows = (y1 - y0 + 1).clamp_min(0).long()
    rows = torch.where(sigma_max > 0, rows, torch.zeros_like(rows))
    g_row, k = _expand(rows)  # (R,) Gaussian-rows
    py = y0.index_select(0, g_row) + k
    c0, c1, c2 = (conic[:, i].index_select(0, g_row) for i in range(3))
    dy = py + 0.5 - v.index_select(0, g_row)
    # x-range of the row: ½c0 dx² + c1 dy dx + ½c2 dy² <= σmax
    disc = (c1 * dy) ** 2 - c0 * (c2 * dy * dy - 2.0 * sigma_max.index_select(0, g_row))
    root = torch.sqrt(disc.clamp_min(0.0))
    ug = u.index_select(0, g_row)
    x0 = torch.ceil(ug + (-c1 * dy - root) / c0 - 0.5).clamp(0, width)
    x1 = torch.floor(ug + (-c1 * dy + root) / c0 - 0.5).clamp(-1, width - 1)
    cols = torch.where(disc >= 0, (x1 - x0 + 1).clamp_min(0), torch.zeros_like(x0)).long()
    total = int(cols.sum())
    if total > MAX_PAIRS:
        raise RenderError(f"the torch renderer would need {total:,} pixel/splat pairs (limit {MAX_PAIRS:,}); "
                          "render smaller images, or use the gl or gsplat backend")
    row_id, j = _expand(cols)  # (P,) pairs
    gid = g_row.index_select(0, row_id)
    pix = (py * width + x0).long().index_select(0, row_id) + j
    # gid is depth-ordered, so a stable sort by pixel keeps depth order inside each pixel. The keys
    # are sorted in the narrowest integer type that holds them: a 16-bit stable sort of a million
    # pairs takes under half the time of a 64-bit one on the CPU.
    key_dtype = torch.int16 if width * height <= 1 << 15 else torch.int32
    order = torch.sort(pix.to(key_dtype), stable=True).indices
    pix = pix.index_select(0, order)
    gid = gid.index_select(0, order)
    # Transmittance per pair, to drop pairs behind each pixel's early stop before the
    # differentiable pass sees them.
    dx = (pix % width).to(u.dtype) + 0.5 - u.index_select(0, gid)
    dyp = torch.div(pix, width, rounding_mode="floor").to(u.dtype) + 0.5 - v.index_select(0, gid)
    sigma = 0.5 * (conic[:, 0].index_select(0, gid) * dx * dx + conic[:, 2].index_select(0, gid) * dyp * dyp) \
        + conic[:, 1].index_select(0, gid) * dx * dyp
    log1m = torch.log1p(-(opacity.index_select(0, gid) * torch.exp(-sigma)).clamp_max(ALPHA_MAX))
    alive = torch.nonzero(_segmented_exclusive_cumsum(log1m, pix) + log1m > math.log(T_MIN)).squeeze(1)
    return gid.index_select(0, alive), pix.index_select(0, alive)


def _segmented_exclusive_cumsum(values: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
    """Exclusive cumulative sum of ``values`` ``(P,)`` restarting at each run of equal ``segment_ids``."""
    # float64: a global prefix sum over ~10⁶ log-transmittances would lose float32 precision.
    total = torch.cumsum(values.double(), 0)
    exclusive = total - values.double()
    _, counts = torch.unique_consecutive(segment_ids, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    base = torch.repeat_interleave(exclusive[starts], counts, output_size=values.shape[0])
    return (exclusive - base).to(values.dtype)


def rasterize(
    gaussians: Gaussians, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
    background: torch.Tensor, near: float, far: float, sh_degree: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render one scene ``(N,)`` from one camera → rgb ``(H, W, 3)``, alpha ``(H, W, 1)``, depth ``(H, W, 1)``."""
    proj = project(gaussians, viewmat, K, width, height, near, far)
    ids = proj["ids"]
    order = torch.argsort(proj["depth"])  # front to back
    ids = ids[order]
    mean2d, conic, depth = proj["mean2d"][order], proj["conic"][order], proj["depth"][order]
    opacity = torch.sigmoid(gaussians.opacity_logits[ids])
    sh = gaussians.sh[ids]
    if gaussians.sh_degree > 0 and (sh_degree is None or sh_degree > 0):
        cam_center = -viewmat[:3, :3].T @ viewmat[:3, 3]
        dirs = torch.nn.functional.normalize(gaussians.means[ids] - cam_center, dim=-1)
        colors = eval_sh(sh, dirs, sh_degree)
    else:
        colors = eval_sh(sh[:, :1], None, 0)  # degree 0 needs no directions

    gid, pix = _pairs(mean2d.detach(), proj["cov2d"][order].detach(), conic.detach(), opacity.detach(),
                      width, height)
    # Gather every per-Gaussian quantity a pair needs in one differentiable index_select.
    table = torch.cat([mean2d, conic, opacity[:, None], depth[:, None], colors], 1)  # (M, 10)
    u, v, c0, c1, c2, op, z, r, g, b = table.index_select(0, gid).unbind(1)
    dx = (pix % width).to(u.dtype) + 0.5 - u
    dy = torch.div(pix, width, rounding_mode="floor").to(u.dtype) + 0.5 - v
    sigma = 0.5 * (c0 * dx * dx + c2 * dy * dy) + c1 * dx * dy
    alpha = (op * torch.exp(-sigma)).clamp_max(ALPHA_MAX)
    # Every pair left is in front of its pixel's early stop (see _pairs), so all of them count.
    weight = torch.exp(_segmented_exclusive_cumsum(torch.log1p(-alpha), pix)) * alpha

    n_pix = width * height
    contrib = torch.stack([weight * r, weight * g, weight * b, weight, weight * z], 1)
    acc = torch.zeros(n_pix, 5, dtype=alpha.dtype, device=alpha.device).index_add(0, pix, contrib)
    acc_rgb, acc_alpha, acc_depth = acc[:, :3], acc[:, 3], acc[:, 4]
    rgb = acc_rgb + (1.0 - acc_alpha)[:, None] * background
    exp_depth = torch.where(acc_alpha > 0, acc_depth / acc_alpha.clamp_min(1e-10), torch.zeros_like(acc_depth))
    return (rgb.reshape(height, width, 3), acc_alpha.reshape(height, width, 1),
            exp_depth.reshape(height, width, 1))


def render_torch(
    gaussians: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int, *,
    background: torch.Tensor, near: float, far: float, sh_degree: int | None,
) -> RenderOutput:
    """Render one scene ``(N,)`` from ``C`` cameras (``viewmats (C, 4, 4)``, ``Ks (C, 3, 3)``)."""
    outs = [rasterize(gaussians, vm, K, width, height, background, near, far, sh_degree)
            for vm, K in zip(viewmats, Ks)]
    return RenderOutput(*(torch.stack([o[i] for o in outs]) for i in range(3)))
