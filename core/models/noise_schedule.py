"""What every latent denoiser shares: its diffusers schedulers and the latent normalisation.

A mixin for diffusers ``ConfigMixin`` models whose config holds ``num_train_timesteps``,
``beta_schedule``, ``prediction_type``, ``default_scheduler``, ``latent_shift`` and ``latent_scale``.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

SCHEDULERS = ("ddim", "dpm")


class NoiseScheduleMixin:
    def make_scheduler(self, name: str | None = None):
        """A fresh diffusers scheduler matching the training noise schedule (``ddim`` or ``dpm``)."""
        name = name or self.config.default_scheduler
        common = dict(num_train_timesteps=self.config.num_train_timesteps, beta_schedule=self.config.beta_schedule,
                      prediction_type=self.config.prediction_type)
        if name == "ddim":
            return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
        if name == "dpm":
            return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                               timestep_spacing="trailing")
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.config.latent_shift) * self.config.latent_scale

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.config.latent_scale + self.config.latent_shift
