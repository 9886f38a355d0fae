"""The latent denoiser: a diffusers UNet over VAR latents, conditioned on the input image.

Condition (seed 001): the VAR image encoder's 16×16 features of the input view, projected by a 1×1
conv and **concatenated** with the noisy latent along channels. For classifier-free guidance the
projected condition is zeroed for a fraction of training items (``cond_dropout``); at inference the
unconditional prediction uses zeros as well.

Optionally (``teacher_channels`` > 0) the condition also carries a frozen **teacher's** features of the
same input view: the deterministic regressor's 16×16 features, which are trained to infer the whole
object from one view, unlike the VAR's (its latent gets the hidden side from other views). They are
concatenated after the VAR's and projected by their own 1×1 conv (``teacher_proj``, zero at the start,
so a denoiser trained without a teacher continues unchanged when one is added). The teacher is
identified by ``teacher_sha256`` (its weights file), so a model set with another regressor refuses to load.
With ``teacher_latent`` the condition ends with the teacher's object as a VAR latent as well
(:func:`~splatgen.core.generator.teacher.teacher_latent`, ``latent_channels`` more channels): normalised like the diffused
latents and projected by ``teacher_latent_proj`` (zero at the start, too), it hands the denoiser the
regressor's answer in its own space, to refine rather than rebuild.

Latents are normalised before diffusion: ``z_diffusion = (z_var - latent_shift) · latent_scale``;
both numbers are measured on the training data and kept in the config with the weights, together
with the inference defaults (guidance, steps, scheduler).
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DModel
from diffusers.configuration_utils import register_to_config
from torch import nn

from .noise_schedule import SCHEDULERS, NoiseScheduleMixin  # noqa: F401 - SCHEDULERS re-exported


class LatentDenoiser(NoiseScheduleMixin, ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        latent_size: int = 16,
        condition_channels: int = 128,
        condition_projection: int = 64,
        block_out_channels: tuple[int, ...] = (64, 128, 128),
        layers_per_block: int = 1,
        attention_head_dim: int = 32,
        prediction_type: str = "v_prediction",
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        latent_scale: float = 1.0,
        latent_shift: float = 0.0,
        default_guidance: float = 2.0,
        default_steps: int = 50,
        default_scheduler: str = "ddim",
        trained_steps: int = 0,  # bookkeeping: optimiser steps these weights have seen
        teacher_channels: int = 0,  # 0: no teacher; else the teacher's feature channels after the VAR's
        teacher_sha256: str = "",  # sha256 of the teacher's weights these features come from
        teacher_latent: bool = False,  # the condition ends with the teacher's object as a VAR latent
    ):
        super().__init__()
        if teacher_latent and not teacher_channels:
            raise ValueError("teacher_latent needs a teacher (teacher_channels > 0)")
        self.cond_proj = nn.Conv2d(condition_channels, condition_projection, 1)
        if teacher_channels:
            self.teacher_proj = nn.Conv2d(teacher_channels, condition_projection, 1)
            nn.init.zeros_(self.teacher_proj.weight)
            nn.init.zeros_(self.teacher_proj.bias)
        if teacher_latent:
            self.teacher_latent_proj = nn.Conv2d(latent_channels, condition_projection, 1)
            nn.init.zeros_(self.teacher_latent_proj.weight)
            nn.init.zeros_(self.teacher_latent_proj.bias)
        n = len(block_out_channels)
        self.unet = UNet2DModel(
            sample_size=latent_size,
            in_channels=latent_channels + condition_projection,
            out_channels=latent_channels,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) + ("AttnDownBlock2D",) * (n - 1),
            up_block_types=("AttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            attention_head_dim=attention_head_dim,
            norm_num_groups=32,
        )

    @property
    def condition_width(self) -> int:
        """Channels of the condition :meth:`project_condition` takes: the VAR's, the teacher's, its latent's."""
        return self.config.condition_channels + self.config.teacher_channels + \
            (self.config.latent_channels if self.config.teacher_latent else 0)

    def project_condition(self, condition: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Image features ``(B, condition_width, s, s)`` (VAR features, then the teacher's if any, then its
        VAR-space latent if ``teacher_latent``) → projected condition ``(B, condition_projection, s, s)``;
        items with ``keep`` False become zeros."""
        if condition.shape[1] != self.condition_width:
            raise ValueError(f"the denoiser's condition has {self.condition_width} channels "
                             f"({self.config.condition_channels} VAR + {self.config.teacher_channels} teacher"
                             f"{' + its latent' if self.config.teacher_latent else ''}), got {condition.shape[1]}")
        n, m = self.config.condition_channels, self.config.condition_channels + self.config.teacher_channels
        c = self.cond_proj(condition[:, :n])
        if self.config.teacher_channels:
            c = c + self.teacher_proj(condition[:, n:m])
        if self.config.teacher_latent:
            c = c + self.teacher_latent_proj(self.normalise(condition[:, m:]))
        if keep is not None:
            c = c * keep.to(c.dtype).reshape(-1, 1, 1, 1)
        return c

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, projected_condition: torch.Tensor) -> torch.Tensor:
        """``noisy`` ``(B, C_lat, s, s)``, ``timesteps`` ``(B,)``, projected condition → prediction ``(B, C_lat, s, s)``."""
        return self.unet(torch.cat([noisy, projected_condition.to(noisy.dtype)], 1), timesteps).sample

