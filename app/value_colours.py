"""Splats coloured by what the photo shows and by how the samples disagree (the view modes
"Observed / invented" and "Spread across samples"; values from :mod:`splatgen.core.provenance`).

Observed: green where the photo shows the splat, magenta where the generator invented it. Spread: a
blue → yellow ramp of the RMS distance between the samples' splats in one slot, up to the 95th
percentile of the visible splats (the samples of the shown sample's photo and run, all of one size).
"""

from __future__ import annotations

import torch

from splatgen.core.gaussians import Gaussians

SEEN, INVENTED = torch.tensor([0.15, 0.8, 0.3]), torch.tensor([0.9, 0.2, 0.8])
LOW, HIGH = torch.tensor([0.15, 0.25, 0.75]), torch.tensor([0.98, 0.85, 0.15])


def recoloured(g: Gaussians, rgb: torch.Tensor) -> Gaussians:
    """``g`` with view-independent colours ``rgb`` ``(N, 3)`` in [0, 1] (the rest of each splat kept)."""
    return Gaussians.from_activated(g.means, g.quats, g.log_scales.exp(), torch.sigmoid(g.opacity_logits), rgb)


def observed_colours(sample) -> Gaussians:
    from splatgen.core.provenance import observed

    g = sample.gaussians.detach().to("cpu")
    o = observed(g, sample.input_viewmat.cpu(), sample.K.cpu(), sample.image_size)[:, None]
    return recoloured(g, o * SEEN + (1 - o) * INVENTED)


def spread_colours(sample, siblings: list) -> Gaussians | None:
    """``sample`` coloured by the spread over ``siblings`` (samples of one photo, ``sample`` among them);
    None when fewer than two share its splat slots."""
    from splatgen.core.provenance import spread

    g = sample.gaussians.detach().to("cpu")
    same = [s.gaussians.detach().to("cpu") for s in siblings if s.gaussians.num_gaussians == g.num_gaussians]
    if len(same) < 2:
        return None
    v = spread(same)
    visible = torch.sigmoid(g.opacity_logits) > 0.1
    top = torch.quantile(v[visible], 0.95) if visible.any() else v.max()
    t = (v / top.clamp_min(1e-6)).clamp(0, 1)[:, None]
    return recoloured(g, (1 - t) * LOW + t * HIGH)
