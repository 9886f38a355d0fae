"""The teacher-guided denoiser (seed 000): a diffusers UNet over raw Splatter-Image channels.

Input: the noisy raw Splatter Image ``x_t`` ``(B, 15·M, S, S)`` (normalised per channel, see below)
concatenated with the image condition: the input view's RGBA mapped to [-1, 1] and a **keep** plane
(1: conditioned, 0: the image dropped for classifier-free guidance, the image then zeroed too; the
plane tells a dropped image from a grey one). Output: the clean Splatter Image ``x̂_0`` (normalised),
the same 15·M channels of :mod:`.splatter_image` that the teacher regressor predicts.

The ``"unet"`` backbone's output is preconditioned for x0-prediction on a VP schedule (EDM's ``c_skip``/``c_out``
with σ_data = 1): ``x̂_0 = √ᾱ_t · x_t + √(1-ᾱ_t) · F(x_t, t, image)``. At small t the prediction is the
(lightly noised) teacher plus a small correction, at large t it is all network: the denoiser refines
the teacher where the noise left it visible and generates where it did not.

Normalisation: ``x = (raw - param_shift) · param_scale`` per channel of a Gaussian (15 numbers each,
shared by the M layers), measured on the teacher's outputs when training starts and kept in the
config, so every channel group (depth logits, log-scales around -4.6, colours) is noised on one scale.

Two backbones (``backbone``):

* ``"unet"``: a diffusers ``UNet2DModel`` with timestep embeddings, new weights, preconditioned as above.
* ``"teacher"``: the teacher regressor's own architecture (:class:`~.splatter_net.ImageEncoder` and
  :class:`~.splatter_net.Reconstructor`) with the noisy channels and a noise-level plane
  ``√(1-ᾱ_t)`` as extra input channels, predicting ``x̂_0`` directly (no skip term), and
  initialised from the teacher's weights with those extra input weights at zero
  (:meth:`SplatterDenoiser.init_from_teacher`): before any step it *is* the teacher at every t, so
  training starts at the teacher's quality and learns what the noisy object adds. Why: the regressor
  took ~52k steps to train, a new network on a session's device time sees a fraction of that.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DModel
from diffusers.configuration_utils import register_to_config

from .noise_schedule import SCHEDULERS, NoiseScheduleMixin  # noqa: F401 - SCHEDULERS re-exported
from .splatter_image import CHANNELS_PER_GAUSSIAN
from .splatter_net import ImageEncoder, Reconstructor

BACKBONES = ("unet", "teacher")
#: Input planes of the condition (:meth:`SplatterDenoiser.condition`): RGBA in [-1, 1] and the keep plane.
CONDITION_CHANNELS = 5


class SplatterDenoiser(NoiseScheduleMixin, ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        image_size: int = 128,
        gaussians_per_pixel: int = 2,
        block_out_channels: tuple[int, ...] = (32, 64, 128, 128),
        layers_per_block: int = 1,
        attention_head_dim: int = 32,
        norm_num_groups: int = 32,
        prediction_type: str = "sample",
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        param_shift: tuple[float, ...] = (0.0,) * CHANNELS_PER_GAUSSIAN,
        param_scale: tuple[float, ...] = (1.0,) * CHANNELS_PER_GAUSSIAN,
        default_guidance: float = 1.0,
        default_steps: int = 4,
        default_scheduler: str = "ddim",
        default_strength: float = 1.0,
        trained_steps: int = 0,  # bookkeeping: optimiser steps these weights have seen
        teacher_sha256: str = "",  # sha256 of the teacher regressor's weights it was trained with
        backbone: str = "unet",  # "unet" (new diffusers UNet) or "teacher" (the regressor's architecture)
    ):
        super().__init__()
        if prediction_type != "sample":
            raise ValueError("the teacher-guided denoiser predicts the clean Splatter Image: prediction_type 'sample'")
        if len(param_shift) != CHANNELS_PER_GAUSSIAN or len(param_scale) != CHANNELS_PER_GAUSSIAN:
            raise ValueError(f"param_shift and param_scale take {CHANNELS_PER_GAUSSIAN} numbers each")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone is one of {', '.join(BACKBONES)}, got {backbone!r}")
        channels = CHANNELS_PER_GAUSSIAN * gaussians_per_pixel
        if backbone == "teacher":
            # condition planes first (the teacher's RGBA in [-1, 1] in channels 0-3), then x_t, then the noise level
            widths = tuple(block_out_channels)
            self.encoder = ImageEncoder(CONDITION_CHANNELS + channels + 1, widths, attention_head_dim)
            self.reconstructor = Reconstructor(widths, attention_head_dim, gaussians_per_pixel)
        else:
            self._build_unet(image_size, channels, block_out_channels, layers_per_block, attention_head_dim,
                             norm_num_groups)
        # ᾱ_t from the config, not the weights; kept out of the module's tensors so that .half() / .to()
        # never round the schedule (one float32 copy per device, see :meth:`alphas`)
        with torch.device("cpu"):  # also when the network is built on the meta device (strict loading)
            self._alphas = {"cpu": self.make_scheduler("ddim").alphas_cumprod.float()}

    def _build_unet(self, image_size, channels, block_out_channels, layers_per_block, attention_head_dim,
                    norm_num_groups) -> None:
        n = len(block_out_channels)
        self.unet = UNet2DModel(
            sample_size=image_size,
            in_channels=channels + 5,  # x_t, RGBA, keep
            out_channels=channels,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            # attention only at the coarsest level (16² at the shipped size): global context is cheap there
            down_block_types=("DownBlock2D",) * (n - 1) + ("AttnDownBlock2D",),
            up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
            attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups,
        )

    @torch.no_grad()
    def init_from_teacher(self, teacher) -> None:
        """Copy a regressor's (:class:`~.splatter_net.SplatterNet`) weights into the ``"teacher"`` backbone;
        the input weights of the noisy channels and the noise level start at zero, so the denoiser's
        prediction equals the teacher's raw output, whatever ``x_t`` and t."""
        if self.config.backbone != "teacher":
            raise ValueError("only the 'teacher' backbone starts from the teacher's weights")
        state = {k: v for k, v in teacher.state_dict().items() if k.startswith(("encoder.", "reconstructor."))}
        w = state["encoder.conv_in.weight"]  # (c0, 4, 3, 3): the teacher's RGBA input
        padded = torch.zeros_like(self.encoder.conv_in.weight)
        padded[:, : w.shape[1]] = w
        state["encoder.conv_in.weight"] = padded
        self.load_state_dict(state, strict=True)

    @property
    def num_channels(self) -> int:
        return CHANNELS_PER_GAUSSIAN * self.config.gaussians_per_pixel

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.config.gaussians_per_pixel
        shift = torch.tensor(self.config.param_shift, dtype=x.dtype, device=x.device).repeat(m)
        scale = torch.tensor(self.config.param_scale, dtype=x.dtype, device=x.device).repeat(m)
        return shift.reshape(1, -1, 1, 1), scale.reshape(1, -1, 1, 1)

    def alphas(self, device) -> torch.Tensor:
        """ᾱ_t ``(num_train_timesteps,)`` float32 on ``device``."""
        key = str(torch.device(device))
        if key not in self._alphas:
            self._alphas[key] = self._alphas["cpu"].to(device)
        return self._alphas[key]

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw Splatter-Image channels ``(B, 15·M, S, S)`` → the diffused space."""
        shift, scale = self._stats(raw)
        return (raw - shift) * scale

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        shift, scale = self._stats(x)
        return x / scale + shift

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``x_t = √ᾱ_t·x0 + √(1-ᾱ_t)·noise`` (normalised space), ``timesteps`` ``(B,)`` ints."""
        a = self.alphas(x0.device)[timesteps].to(x0.dtype).reshape(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def condition(self, image: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Input view ``(B, 4, S, S)`` in [0, 1] → condition planes ``(B, 5, S, S)``; items with ``keep``
        False get a zero image and a zero keep plane (the unconditional branch of guidance)."""
        k = torch.ones(image.shape[0], device=image.device, dtype=image.dtype) if keep is None else keep.to(image.dtype)
        k = k.reshape(-1, 1, 1, 1)
        return torch.cat([(image * 2.0 - 1.0) * k, k.expand(-1, 1, *image.shape[2:])], 1)

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``noisy`` ``(B, 15·M, S, S)`` normalised, ``timesteps`` ``(B,)``, ``condition`` from
        :meth:`condition` → the clean Splatter Image ``x̂_0`` ``(B, 15·M, S, S)``, normalised."""
        t = timesteps.long().reshape(-1).expand(noisy.shape[0])
        a = self.alphas(noisy.device)[t].to(noisy.dtype).reshape(-1, 1, 1, 1)
        if self.config.backbone == "teacher":
            sigma = (1 - a).sqrt().expand(-1, 1, *noisy.shape[2:])
            feats = self.encoder(torch.cat([condition.to(noisy.dtype), noisy, sigma], 1))
            raw = self.reconstructor(feats[-1], feats[:-1], torch.ones((), dtype=noisy.dtype, device=noisy.device))
            return self.normalise(raw)
        f = self.unet(torch.cat([noisy, condition.to(noisy.dtype)], 1), t).sample
        return a.sqrt() * noisy + (1 - a).sqrt() * f
