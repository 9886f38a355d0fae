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

A brush stroke is feathered (:func:`brush_weights`): its mask fades to 0 over :data:`FEATHER`
of the view outside the stroke, each splat's weight is the share of its colour that falls under
that soft mask, and splats are blended (parameters interpolated) by it. A hard choice of slots
leaves a seam in the shape of the stroke, where two unrelated draws meet.
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
#: Width of a brush stroke's soft edge, as a share of the view's longer side (outside the stroke).
FEATHER = 0.06


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


def _pooled_brush(brush, K, max_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A brush mask ``(H, W)`` max-pooled to at most ``max_side`` px a side, and ``K`` scaled to match."""
    m = torch.as_tensor(brush, dtype=torch.bool).cpu()
    h, w = m.shape
    K = torch.as_tensor(K, dtype=torch.float64).clone()
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        m = torch.nn.functional.adaptive_max_pool2d(m[None, None].float(), (nh, nw))[0, 0] > 0
        K[0] *= nw / w
        K[1] *= nh / h
    return m, K


def brush_region(gaussians: Gaussians, brush, viewmat, K, max_side: int = BRUSH_SIDE) -> torch.Tensor:
    """Slots ``(N,)`` bool under a brush mask ``(H, W)`` bool (array or tensor) painted in the view
    ``viewmat`` ``(4, 4)`` / ``K`` ``(3, 3)`` (pixels of that mask). A mask over ``max_side`` px a side
    is max-pooled down to it first, ``K`` scaled to match."""
    m, K = _pooled_brush(brush, K, max_side)
    h, w = m.shape
    g = gaussians
    return slots_under_brush(g, torch.as_tensor(viewmat, dtype=g.dtype, device=g.device),
                             K.to(dtype=g.dtype, device=g.device), w, h, m.to(g.device))


def feathered_mask(brush: torch.Tensor, width_px: float) -> torch.Tensor:
    """``(H, W)`` bool stroke → ``(H, W)`` float in [0, 1]: 1 on the stroke, falling smoothly
    (smoothstep of the distance) to 0 at ``width_px`` pixels outside it."""
    from scipy.ndimage import distance_transform_edt

    m = brush.cpu().numpy().astype(bool)
    if not m.any() or width_px <= 0:
        return torch.from_numpy(m.astype("float32"))
    d = torch.from_numpy(distance_transform_edt(~m).astype("float32"))   # pixels to the stroke
    t = (1.0 - d / float(width_px)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def brush_weights(gaussians: Gaussians, brush, viewmat, K, max_side: int = BRUSH_SIDE, feather: float = FEATHER,
                  threshold: float = VISIBILITY_THRESHOLD) -> torch.Tensor:
    """How much of each slot a brush stroke redraws: ``(N,)`` float in [0, 1] for a brush mask
    ``(H, W)`` bool painted in the view ``viewmat`` / ``K`` (as :func:`brush_region`).

    The stroke is feathered (:func:`feathered_mask`, ``feather`` × the longer side); a slot's weight
    is the share of its compositing weight in that view that falls under the soft mask (0 for slots
    that view does not see). Both shares come from one render (two probe colour channels)."""
    m, K = _pooled_brush(brush, K, max_side)
    h, w = m.shape
    soft = feathered_mask(m, feather * max(h, w))
    g = gaussians
    with torch.enable_grad():
        probe = torch.zeros_like(g.sh[..., :1, :]).requires_grad_(True)
        pg = Gaussians(g.means.detach(), g.quats.detach(), g.log_scales.detach(), g.opacity_logits.detach(), probe)
        vm = torch.as_tensor(viewmat, dtype=g.dtype, device=g.device)
        backend = pick_backend(pg, "auto", differentiable=True)
        out = render(pg, vm[None], K.to(dtype=g.dtype, device=g.device), w, h, background=(0.0, 0.0, 0.0),
                     backend=backend)
        rgb = out.rgb[0]
        (rgb[..., 0] * soft.to(rgb)).sum().add(rgb[..., 1].sum()).backward()
    under, seen = probe.grad[..., 0, 0] / SH_C0, probe.grad[..., 0, 1] / SH_C0
    weight = torch.where(seen > threshold, under / seen.clamp_min(1e-12), torch.zeros_like(seen))
    weight = weight.clamp(0.0, 1.0)
    weight[weight < 0.02] = 0.0     # (numerical dust)
    weight[weight > 0.98] = 1.0
    return weight.detach()


def merge_samples(original: Gaussians, fresh: Gaussians, redraw: torch.Tensor) -> Gaussians:
    """Slot-wise merge: ``redraw`` ``(N,)`` bool takes ``fresh`` where True, else ``original``; a float
    weight in [0, 1] blends the two slot by slot (means, log-scales, colours and opacity linearly,
    rotations by normalised interpolation of sign-aligned quaternions)."""
    if original.shape != fresh.shape:
        raise ValueError(f"samples do not line up: {tuple(original.shape)} vs {tuple(fresh.shape)}")

    def per_slot(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape + (1,) * (like.dim() - t.dim()))

    if redraw.dtype == torch.bool:
        return Gaussians(*(torch.where(per_slot(redraw, a), b, a) for a, b in zip(
            (original.means, original.quats, original.log_scales, original.opacity_logits, original.sh),
            (fresh.means, fresh.quats, fresh.log_scales, fresh.opacity_logits, fresh.sh))))
    w = redraw.to(original.means)

    def lerp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.lerp(a, b, per_slot(w, a))

    qa, qb = original.unit_quats, fresh.unit_quats
    qb = torch.where((qa * qb).sum(-1, keepdim=True) < 0, -qb, qb)
    quats = torch.nn.functional.normalize(lerp(qa, qb), dim=-1)
    eps = 1e-6
    opacity = lerp(original.opacities, fresh.opacities).clamp(eps, 1 - eps)
    return Gaussians(lerp(original.means, fresh.means), quats, lerp(original.log_scales, fresh.log_scales),
                     torch.logit(opacity), lerp(original.sh, fresh.sh))


def region_mask(original: Gaussians, region: torch.Tensor) -> torch.Tensor:
    """Validate a user region over the sample's splats: a bool mask ``(N,)``, or per-slot redraw
    weights ``(N,)`` in [0, 1] (:func:`brush_weights`)."""
    region = torch.as_tensor(region, device=original.device)
    if region.shape != original.shape or not (region.dtype == torch.bool or region.is_floating_point()):
        raise ValueError(f"a region must be a bool mask or weights in [0, 1] of shape {tuple(original.shape)}, "
                         f"got {region.dtype} {tuple(region.shape)}")
    if region.is_floating_point() and not bool(((region >= 0) & (region <= 1)).all()):
        raise ValueError("region weights must lie in [0, 1] (and not be NaN)")
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
