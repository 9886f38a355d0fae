"""Real spherical harmonics (degrees 0–3) evaluated the way 3DGS / gsplat do."""

from __future__ import annotations

import torch

_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor, degree: int | None = None) -> torch.Tensor:
    """Colour from SH coefficients.

    Args:
        sh: ``(..., K, 3)`` coefficients, K = (deg+1)^2.
        dirs: ``(..., 3)`` unit view directions (camera centre → Gaussian), broadcastable to ``sh``.
        degree: degree to use (default: all that ``sh`` holds).

    Returns:
        ``(..., 3)`` RGB, ``0.5 + SH(dirs)``, clamped at 0 below (as gsplat does), not above.
    """
    k = sh.shape[-2]
    deg = round(k ** 0.5) - 1 if degree is None else min(degree, round(k ** 0.5) - 1)
    out = _C0 * sh[..., 0, :]
    if deg >= 1:
        x, y, z = dirs[..., 0:1], dirs[..., 1:2], dirs[..., 2:3]
        out = out - _C1 * y * sh[..., 1, :] + _C1 * z * sh[..., 2, :] - _C1 * x * sh[..., 3, :]
        if deg >= 2:
            xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
            out = (out + _C2[0] * xy * sh[..., 4, :] + _C2[1] * yz * sh[..., 5, :]
                   + _C2[2] * (2.0 * zz - xx - yy) * sh[..., 6, :]
                   + _C2[3] * xz * sh[..., 7, :] + _C2[4] * (xx - yy) * sh[..., 8, :])
            if deg >= 3:
                out = (out + _C3[0] * y * (3 * xx - yy) * sh[..., 9, :]
                       + _C3[1] * xy * z * sh[..., 10, :]
                       + _C3[2] * y * (4 * zz - xx - yy) * sh[..., 11, :]
                       + _C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[..., 12, :]
                       + _C3[4] * x * (4 * zz - xx - yy) * sh[..., 13, :]
                       + _C3[5] * z * (xx - yy) * sh[..., 14, :]
                       + _C3[6] * x * (xx - 3 * yy) * sh[..., 15, :])
    return (out + 0.5).clamp_min(0.0)
