"""How unusual each sample of a set is: its mean disagreement with the other samples (the desktop
app's *Order by disagreement* sorts the tiles by it, most unusual first).

A sample's score is the mean, over the other samples, of the mean squared error between the two
samples' renders from :data:`AZIMUTHS_DEG` orbit cameras (the input camera's elevation and
distance, object frame) at :data:`SIZE`² pixels over white (:func:`disagreement`).
Renders rather than splats, because what is compared is what is seen, and samples from splat files
or other models have no slot-by-slot correspondence (nor one splat count); the MSE rather than 1/PSNR,
because it stays finite for identical samples and adds up over views and pixels.
"""

from __future__ import annotations

from typing import Sequence

import torch

from . import framing
from .cameras import fit_intrinsics, orbit_viewmats
from .gaussians import Gaussians

#: Azimuths of the cameras the samples are compared from, degrees (the input view, its sides, its back).
AZIMUTHS_DEG = (0.0, 90.0, 180.0, 270.0)
#: Side of the compared renders, pixels.
SIZE = 64


def disagreement(images: torch.Tensor) -> torch.Tensor:
    """Each sample's mean disagreement with the others.

    Args:
        images: ``(S, ...)`` float, sample ``s``'s renders in ``images[s]`` (any shape, the same for
            every sample, e.g. ``(V, H, W, 3)``), colour in [0, 1].

    Returns:
        ``(S,)`` float64: for sample ``s``, the mean over the other ``S - 1`` samples ``t`` of
        ``mean((images[s] - images[t])²)`` (squared colour units, 0 … 1); zeros when ``S < 2``.
    """
    s = images.shape[0]
    if s < 2:
        return torch.zeros(s, dtype=torch.float64)
    x = images.reshape(s, -1).double()
    sq = (x * x).sum(1)
    mse = ((sq[:, None] + sq[None, :] - 2.0 * x @ x.T) / x.shape[1]).clamp_min(0.0)
    mse.fill_diagonal_(0.0)
    return mse.sum(1) / (s - 1)


def sample_disagreement(samples: Sequence[Gaussians], *, backend: str = "auto") -> torch.Tensor:
    """:func:`disagreement` of the samples' ``(N_s,)`` splats (object frame), rendered in one batched
    call (:func:`splatgen.core.render.batch_scenes`): ``(S,)`` float64, squared colour units."""
    from .render import batch_scenes, render

    vms = orbit_viewmats(AZIMUTHS_DEG, framing.INPUT_ELEVATION_DEG, framing.CAMERA_DISTANCE)
    K = fit_intrinsics(framing.FOV_DEG, SIZE, SIZE)
    with torch.no_grad():
        out = render(batch_scenes(samples), vms, K, SIZE, SIZE, background=(1.0, 1.0, 1.0), backend=backend)
    return disagreement(out.rgb.cpu())
