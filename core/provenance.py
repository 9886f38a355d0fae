"""Which splats of a sample the photo shows, and which the generator invented.

* :func:`observed` — per splat, in [0, 1]: 1 where the input camera sees the splat's centre on the
  front surface (its depth within :data:`DEPTH_TOLERANCE` of the deepest rendered depth within
  :data:`NEIGHBOURHOOD` pixels of its own — the rendered depth is a blend of overlapping splats,
  which on a slanted surface lies in front of most of them — times the render's coverage there),
  0 behind that surface, outside the view or behind the camera. A
  splat's centre rather than its full footprint: one projection a splat, no per-splat compositing
  weights (which only gsplat's backward pass exposes), and a Splatter-Image splat is about a pixel wide.
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

from .gaussians import Gaussians

#: How far behind the rendered surface (world units; the object's radius is 0.5) a splat centre still
#: counts as on that surface: about two of the input view's pixels at the object.
DEPTH_TOLERANCE = 0.03
#: The input view is rendered at this multiple of the sample's image size for the visibility test.
OVERSAMPLE = 2
#: Side of the square (pixels of that render) over which the deepest rendered depth is taken.
NEIGHBOURHOOD = 5


@torch.no_grad()
def observed(gaussians: Gaussians, input_viewmat: torch.Tensor, K: torch.Tensor, image_size: int,
             backend: str = "auto") -> torch.Tensor:
    """Per splat ``(N,)`` float in [0, 1]: how much the input camera (``input_viewmat`` ``(4, 4)``
    world-to-camera OpenCV, ``K`` ``(3, 3)`` pixels at ``image_size``) sees of it (module docstring)."""
    from .render import render

    g = gaussians.to("cpu") if backend in ("gl", "torch") else gaussians
    size = int(image_size) * OVERSAMPLE
    Ks = K.to(g.means).clone()
    Ks[:2] *= OVERSAMPLE
    vm = input_viewmat.to(g.means)
    out = render(g, vm[None], Ks, size, size, backend=backend)
    depth, alpha = out.depth[0, ..., 0].to(g.means), out.alpha[0, ..., 0].to(g.means)
    deepest = torch.nn.functional.max_pool2d(depth[None, None], NEIGHBOURHOOD, 1, NEIGHBOURHOOD // 2)[0, 0]
    cam = g.means @ vm[:3, :3].T + vm[:3, 3]
    z = cam[:, 2]
    in_front = z > 1e-6
    uv = (cam[:, :2] / z.clamp_min(1e-6)[:, None]) @ Ks[:2, :2].T + Ks[:2, 2]
    px = uv.floor().long()
    inside = in_front & (px >= 0).all(1) & (px < size).all(1)
    px = px.clamp(0, size - 1)
    d, a = deepest[px[:, 1], px[:, 0]], alpha[px[:, 1], px[:, 0]]
    behind = (z - d - DEPTH_TOLERANCE).clamp_min(0) / DEPTH_TOLERANCE   # 0 on the surface, 1 a tolerance deeper
    return torch.where(inside & (d > 0), a * (1 - behind).clamp(0, 1), torch.zeros_like(z))


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
