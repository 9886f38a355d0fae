"""Which splats of a sample the photo shows, and which the generator invented.

* :func:`observed` — per splat, in [0, 1]: how much of the splat the photo shows, i.e. its
  contribution to the input view's render (its compositing weight ``Σ_p T_p·α_p`` over the pixels,
  read exactly as the gradient of the rendered colour with respect to the splat's colour, through the
  differentiable torch renderer) divided by what it would contribute unoccluded (its opacity times its
  footprint ``2π·sqrt(det Σ')`` in pixels). Dense splats share their pixels, so a splat on the
  visible surface keeps a few per cent of its own contribution while one behind an opaque surface
  keeps well under one per cent (the back face of a thin chair back too, though it lies close behind
  the front): that share is mapped log-linearly from :data:`HIDDEN_SHARE` (0, invented) to
  :data:`SEEN_SHARE` (1, observed). Outside the view or behind the camera: 0.
* :func:`spread` — per splat slot, over a set of samples of one photo: the RMS distance of the slot's
  centre from its mean position across the samples (world units of the object frame, object radius
  0.5). The generators here emit splats in fixed slots (pixels of the Splatter Image, or of the
  generated views), so slot ``i`` of every sample is the same splat redrawn: a high spread marks
  what the samples disagree on.

Exports write both as per-splat properties (``splatgen_observed``, ``splatgen_spread`` in ``.ply``;
``_SPLATGEN_OBSERVED``, ``_SPLATGEN_SPREAD`` attributes in ``.glb``).
"""

from __future__ import annotations

import torch

from . import framing
from .gaussians import SH_C0, Gaussians

#: Shares of a splat's unoccluded contribution that mark it hidden (0) and in plain view (1): on a
#: splat sphere the front's 5th percentile is 0.046 and the back's 75th 0.004.
HIDDEN_SHARE, SEEN_SHARE = 0.003, 0.05


@torch.enable_grad()
def observed(gaussians: Gaussians, input_viewmat: torch.Tensor, K: torch.Tensor, image_size: int) -> torch.Tensor:
    """Per splat ``(N,)`` float in [0, 1]: how much the input camera (``input_viewmat`` ``(4, 4)``
    world-to-camera OpenCV, ``K`` ``(3, 3)`` pixels at ``image_size``) sees of it (module docstring)."""
    import math

    from .render import render
    from .render.torch_backend import project

    g = gaussians.detach().to("cpu", torch.float32)
    vm, K = input_viewmat.detach().to("cpu", torch.float32), K.detach().to("cpu", torch.float32)
    size = int(image_size)
    grey = torch.zeros_like(g.sh[:, :1]).requires_grad_(True)   # colour 0.5: never clamped, so the gradient is exact
    probe = Gaussians(means=g.means, quats=g.quats, log_scales=g.log_scales, opacity_logits=g.opacity_logits, sh=grey)
    out = render(probe, vm[None], K, size, size, backend="torch")
    (weight,) = torch.autograd.grad(out.rgb[..., 0].sum(), grey)
    weight = weight[:, 0, 0] / SH_C0                                # Σ_p T_p α_p, pixels
    with torch.no_grad():
        proj = project(g, vm, K, size, size, near=framing.NEAR, far=framing.FAR)  # the render's own limits
        a, b, c = proj["cov2d"].unbind(-1)
        alone = torch.zeros_like(weight)
        alone[proj["ids"]] = torch.sigmoid(g.opacity_logits[proj["ids"]]) * 2 * math.pi * (a * c - b * b).clamp_min(0).sqrt()
        share = torch.where(alone > 1e-6, weight / alone.clamp_min(1e-6), torch.zeros_like(weight))
        scaled = (share.clamp_min(1e-12).log() - math.log(HIDDEN_SHARE)) / math.log(SEEN_SHARE / HIDDEN_SHARE)
        return scaled.clamp(0, 1)


def spread(samples: list[Gaussians]) -> torch.Tensor:
    """Per splat slot ``(N,)``: RMS distance of each slot's centre from its mean over ``samples`` (all
    ``(N,)``, the same generator's slots; world units). Zeros for a single sample."""
    if not samples:
        raise ValueError("spread needs at least one sample")
    n = samples[0].num_gaussians
    if any(s.num_gaussians != n for s in samples):
        raise ValueError(f"spread needs samples with the same splat slots, got {[s.num_gaussians for s in samples]}")
    means = torch.stack([s.means.detach().float().cpu() for s in samples])   # (S, N, 3)
    return (means - means.mean(0)).square().sum(-1).mean(0).sqrt()
