"""Redraw part of a sample and keep the rest: "resample the occluded part" and brush regions.

What the trained networks taught us: a sample's splats are not split into "front" and "back" ones —
the same few thousand opaque splats that make up the input view also form the hidden side (their
geometry extends backwards and one colour serves both sides). So "the occluded part" is not a set of
splats; it is everything about the sample that the input view does not constrain. Resampling it
therefore draws a **new latent** (fresh noise from a new seed; same image condition and skip
features) and then pins the input view: the latent is refined by a few gradient steps so that the
decoded sample renders the input view like the original did (a reconstruction-guidance step in the
spirit of DPS / RePaint's "keep the known part"), while a prior term keeps it near the fresh draw.
The visible side stays (input view ≥ 35 dB before vs after); the hidden side changes.

A user region — a boolean mask over splats, or the splats a 2D brush covers in some view
(:func:`brush_region`) — is redrawn splat by splat: both samples of one input are Splatter
Images on the same pixel grid, so their Gaussians line up slot by slot (pixel × layer), and the
region's slots are taken from the fresh sample (:func:`merge_samples`).
"""

from __future__ import annotations

import torch

from ..gaussians import SH_C0, Gaussians
from ..render import choose_backend, pick_backend, render

#: A slot with less total compositing weight than this (pixels' worth of colour) counts as unseen.
VISIBILITY_THRESHOLD = 0.02
#: A brush mask is brought down to at most this many pixels a side before finding its splats
#: (max-pooled, so no painted pixel is lost; the splat weights cost grows with the pixels).
BRUSH_SIDE = 256


def splat_weights(gaussians: Gaussians, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                  pixel_mask: torch.Tensor | None = None, backend: str = "auto") -> torch.Tensor:
    """Per-splat compositing weight ``(N,)``: ``Σ_pixels T_i·α_i`` over the image (or ``pixel_mask``
    ``(H, W)``), i.e. how many pixels' worth of colour each splat gives that view.

    Computed as the gradient of the summed red channel with respect to a probe colour (the image is
    linear in the colours, with coefficient exactly the compositing weight), so any differentiable
    renderer — gsplat on CUDA, the torch rasterizer on CPU — provides it.
    """
    with torch.enable_grad():
        probe = torch.zeros_like(gaussians.sh[..., :1, :]).requires_grad_(True)
        g = Gaussians(gaussians.means.detach(), gaussians.quats.detach(), gaussians.log_scales.detach(),
                      gaussians.opacity_logits.detach(), probe)
        backend = pick_backend(g, backend, differentiable=True)
        out = render(g, viewmat[None], K, width, height, background=(0.0, 0.0, 0.0), backend=backend)
        red = out.rgb[0, ..., 0]
        if pixel_mask is not None:
            red = red * pixel_mask.to(red)
        red.sum().backward()
    return probe.grad[..., 0, 0] / SH_C0


def slots_under_brush(gaussians: Gaussians, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                      brush: torch.Tensor, threshold: float = VISIBILITY_THRESHOLD) -> torch.Tensor:
    """Slots ``(N,)`` bool that a 2D brush ``(H, W)`` bool painted in the view ``viewmat``/``K`` covers."""
    return splat_weights(gaussians, viewmat, K, width, height, pixel_mask=brush) > threshold


def brush_region(gaussians: Gaussians, brush, viewmat, K, max_side: int = BRUSH_SIDE) -> torch.Tensor:
    """Slots ``(N,)`` bool under a brush mask ``(H, W)`` bool (array or tensor) painted in the view
    ``viewmat`` ``(4, 4)`` / ``K`` ``(3, 3)`` (pixels of that mask). A mask over ``max_side`` px a side
    is max-pooled down to it first, ``K`` scaled to match."""
    m = torch.as_tensor(brush, dtype=torch.bool).cpu()
    h, w = m.shape
    K = torch.as_tensor(K, dtype=torch.float64).clone()
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        m = torch.nn.functional.adaptive_max_pool2d(m[None, None].float(), (nh, nw))[0, 0] > 0
        K[0] *= nw / w
        K[1] *= nh / h
        h, w = nh, nw
    g = gaussians
    return slots_under_brush(g, torch.as_tensor(viewmat, dtype=g.dtype, device=g.device),
                             K.to(dtype=g.dtype, device=g.device), w, h, m.to(g.device))


def merge_samples(original: Gaussians, fresh: Gaussians, redraw: torch.Tensor) -> Gaussians:
    """Slot-wise choice: ``fresh`` where ``redraw`` ``(N,)`` is True, else ``original``."""
    if original.shape != fresh.shape:
        raise ValueError(f"samples do not line up: {tuple(original.shape)} vs {tuple(fresh.shape)}")

    def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m = redraw.reshape(redraw.shape + (1,) * (a.dim() - redraw.dim()))
        return torch.where(m, b, a)

    return Gaussians(*(pick(a, b) for a, b in zip(
        (original.means, original.quats, original.log_scales, original.opacity_logits, original.sh),
        (fresh.means, fresh.quats, fresh.log_scales, fresh.opacity_logits, fresh.sh))))


def region_mask(original: Gaussians, region: torch.Tensor) -> torch.Tensor:
    """Validate a user region: a bool mask ``(N,)`` over the sample's splats."""
    region = torch.as_tensor(region, device=original.device)
    if region.dtype != torch.bool or region.shape != original.shape:
        raise ValueError(f"a region mask must be bool of shape {tuple(original.shape)}, got "
                         f"{region.dtype} {tuple(region.shape)}")
    return region


def pin_input_view(decode, latent: torch.Tensor, target_rgb: torch.Tensor, viewmat: torch.Tensor,
                   K: torch.Tensor, size: int, *, target_psnr: float = 40.0, max_iters: int = 10,
                   lr: float = 0.05, prior_weight: float = 1e-3, backend: str = "auto") -> tuple[torch.Tensor, dict]:
    """Refine ``latent`` ``(1, C, s, s)`` so that ``decode(latent)`` (→ Gaussians ``(1, N)``) renders
    ``target_rgb`` ``(H, W, 3)`` from the input view; stops once the view reaches ``target_psnr`` dB.

    Loss: ``MSE(render, target) + prior_weight·mean((z - z_fresh)²)`` with Adam on ``z``. Returns the
    latent and ``{"iterations", "input_psnr"}``.
    """
    backend = backend if backend != "auto" else choose_backend(latent.device, differentiable=True)
    fresh = latent.detach()
    z = fresh.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    best, best_psnr, iters = fresh, -1.0, 0
    with torch.enable_grad():
        for iters in range(max_iters + 1):
            g = decode(z)
            rgb = render(g, viewmat[None], K, size, size, backend=backend).rgb[0]
            mse = (rgb - target_rgb).square().mean()
            p = float(-10 * torch.log10(mse.detach().clamp_min(1e-12)))
            if p > best_psnr:
                best, best_psnr = z.detach().clone(), p
            if p >= target_psnr or iters == max_iters:
                break
            loss = mse + prior_weight * (z - fresh).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return best, {"iterations": iters, "input_psnr": best_psnr}
