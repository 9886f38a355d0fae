"""Classifier-free-guided sampling of VAR latents with a diffusers scheduler.

Shared by the Generator API, training previews and evaluation, so they all sample the same way.
"""

from __future__ import annotations

import threading
from typing import Callable

import torch

from ..models.denoiser import LatentDenoiser
from .base import Cancelled
from .guidance import guidance_condition, guided_step
from .step_graphs import StepGraphCache


def first_step(steps: int, strength: float) -> int:
    """Index of the first of ``steps`` timesteps that runs at ``strength`` (1: all of them; at least one runs)."""
    return steps - min(steps, max(1, round(steps * strength)))


@torch.no_grad()
def sample_latents(
    denoiser: LatentDenoiser,
    condition: torch.Tensor,
    *,
    steps: int = 50,
    strength: float = 1.0,
    start: torch.Tensor | None = None,
    guidance: float = 2.0,
    scheduler: str | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    noise: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    graphs: StepGraphCache | None = None,
) -> torch.Tensor:
    """Sample normalised-away (VAR-space) latents ``(B, C_lat, s, s)`` for image features ``condition``.

    Args:
        condition: the VAR image encoder's 16×16 features ``(B, C_cond, s, s)`` (one per sample).
        guidance: classifier-free guidance weight w: ``pred = uncond + w·(cond - uncond)``; 1 = none.
        generator: one generator, or one per sample (so each sample is reproducible on its own).
        noise: start from this noise instead of drawing it.
        strength: the fraction of the schedule to run (SDEdit). 1 starts from pure noise; below 1,
            ``start`` (VAR-space latents ``(B, C_lat, s, s)``, e.g. the teacher's) is noised to the
            level of the first timestep that runs (:func:`first_step`) and denoised from there.
        progress: called as ``progress(step, steps)`` after each denoising step.
        cancel: checked before each step; when set, :class:`Cancelled` is raised.
        graphs: on CUDA, replay captured per-step CUDA graphs from this cache (same result, without
            the launch overhead; see :mod:`.step_graphs`); ignored on the CPU.
    """
    b = condition.shape[0]
    c, s = denoiser.config.latent_channels, denoiser.config.latent_size
    device, dtype = condition.device, condition.dtype
    if noise is None:
        gens = generator if isinstance(generator, list) else [generator] * b
        noise = torch.cat([torch.randn((1, c, s, s), generator=g, device=device, dtype=torch.float32)
                           for g in gens]).to(dtype)
    cond = denoiser.project_condition(condition)
    sched = denoiser.make_scheduler(scheduler)
    sched.set_timesteps(steps, device=device)
    begin = first_step(steps, strength)
    if hasattr(sched, "set_begin_index"):  # multistep solvers count their steps from here
        sched.set_begin_index(begin)
    timesteps = sched.timesteps[begin:]
    if begin:
        if start is None:
            raise ValueError("sampling at strength < 1 starts from a latent: pass start=")
        latents = sched.add_noise(denoiser.normalise(start.to(device=device, dtype=torch.float32)), noise.float(),
                                  timesteps[:1].expand(b)).to(dtype)
    else:
        latents = noise * sched.init_noise_sigma
    if graphs is not None and device.type == "cuda":
        def before_step(i: int, n: int) -> None:
            if i and progress is not None:
                progress(i, n)
            if i < n and cancel is not None and cancel.is_set():
                raise Cancelled()

        with graphs.lock, torch.cuda.device(device):
            loop = graphs.get(denoiser, b, steps, guidance, scheduler, device, begin)
            if loop is not None:
                return denoiser.denormalise(loop.run(cond.float(), latents.float(), before_step)).to(dtype)
    cond = guidance_condition(cond, guidance)
    steps_run = [int(t) for t in timesteps]  # host ints, as the captured graphs use them
    for i, t in enumerate(steps_run):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        latents = guided_step(denoiser, sched, latents, t, cond, guidance)
        if progress is not None:
            progress(i + 1, len(steps_run))
    return denoiser.denormalise(latents)


def guided_denoise(predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], scheduler, x: torch.Tensor,
                   timesteps: list[int], guidance: float, *, progress: Callable[[int, int], None] | None = None,
                   cancel: threading.Event | None = None) -> torch.Tensor:
    """Run ``scheduler`` from ``x`` over ``timesteps`` with classifier-free guidance, for denoisers whose
    condition the caller binds: ``predict(model_input, t)`` takes ``(2B, …)`` (unconditional half first)
    when ``guidance`` ≠ 1, else ``(B, …)``, and ``t`` ``(2B,)`` / ``(B,)`` long. Returns the last ``x``."""
    guided = guidance != 1.0
    for i, t in enumerate(timesteps):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        inp = scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
        pred = predict(inp, torch.full((inp.shape[0],), t, device=x.device, dtype=torch.long))
        if guided:
            uncond, conditioned = pred.chunk(2)
            pred = uncond + guidance * (conditioned - uncond)
        x = scheduler.step(pred, t, x).prev_sample
        if progress is not None:
            progress(i + 1, len(timesteps))
    return x
