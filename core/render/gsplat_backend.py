"""Thin wrapper over ``gsplat.rasterization`` (CUDA): our conventions in, :class:`RenderOutput` out."""

from __future__ import annotations

import torch

from ..gaussians import Gaussians
from . import RenderError, RenderOutput


def render_gsplat(
    gaussians: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int, *,
    background: torch.Tensor, near: float, far: float, sh_degree: int | None,
) -> RenderOutput:
    """Render ``(*B, N)`` Gaussians from ``(*B, C)`` cameras with gsplat; differentiable.

    gsplat computes in float32; half-precision inputs are upcast here.
    """
    if gaussians.device.type != "cuda":
        raise RenderError("the gsplat backend needs the Gaussians on a CUDA device")
    try:
        from gsplat import rasterization
    except ImportError as exc:  # pragma: no cover - gsplat is a dependency
        raise RenderError(f"gsplat is not importable: {exc}") from None
    g = gaussians if gaussians.dtype == torch.float32 else gaussians.to(dtype=torch.float32)
    degree = g.sh_degree if sh_degree is None else min(sh_degree, g.sh_degree)
    batch = viewmats.shape[:-2]  # (*B, C)
    backgrounds = background.float().expand(*batch, 3)
    render_colors, render_alphas, _ = rasterization(
        means=g.means,
        quats=g.quats,  # gsplat normalises wxyz quaternions itself
        scales=torch.exp(g.log_scales),
        opacities=torch.sigmoid(g.opacity_logits),
        colors=g.sh[..., : (degree + 1) ** 2, :],
        viewmats=viewmats.float(),
        Ks=Ks.float(),
        width=width,
        height=height,
        near_plane=near,
        far_plane=far,
        sh_degree=degree,
        backgrounds=backgrounds,
        render_mode="RGB+ED",
        packed=False,
    )
    rgb, depth = render_colors[..., :3], render_colors[..., 3:4]
    # gsplat composites the background onto colour only; expected depth comes back normalised.
    depth = torch.where(render_alphas > 0, depth, torch.zeros_like(depth))
    return RenderOutput(rgb=rgb, alpha=render_alphas, depth=depth)
