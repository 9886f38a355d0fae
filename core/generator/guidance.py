"""One classifier-free-guided denoising step: the eager loop (:mod:`.sampling`) and the captured CUDA
graphs (:mod:`.step_graphs`) both run this function, so the two cannot drift apart."""

from __future__ import annotations

import torch

from ..models.denoiser import LatentDenoiser


def guided_step(denoiser: LatentDenoiser, scheduler, latents: torch.Tensor, t: int, cond: torch.Tensor,
                guidance: float) -> torch.Tensor:
    """Denoise ``latents`` ``(B, C, s, s)`` (normalised) by one step of ``scheduler`` at timestep ``t``.

    ``t`` is a Python int, so the diffusers schedulers index their tables on the host (what makes the
    step capturable in a CUDA graph). ``cond``: the projected condition, ``(B, P, s, s)`` without
    guidance (``guidance`` = 1), else ``(2B, P, s, s)`` with the unconditional (zero) half first.
    Guided: ``pred = uncond + guidance·(cond - uncond)``. Returns the latents of the next timestep.
    """
    guided = guidance != 1.0
    x = scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, t)
    pred = denoiser(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long), cond)
    if guided:
        uncond, conditioned = pred.chunk(2)
        pred = uncond + guidance * (conditioned - uncond)
    return scheduler.step(pred, t, latents).prev_sample


def guidance_condition(projected: torch.Tensor, guidance: float) -> torch.Tensor:
    """The ``cond`` of :func:`guided_step` for a projected condition ``(B, P, s, s)``: itself without
    guidance, else the unconditional zeros stacked before it ``(2B, P, s, s)``."""
    return projected if guidance == 1.0 else torch.cat([torch.zeros_like(projected), projected])
