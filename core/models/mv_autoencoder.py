"""The image autoencoder of the multi-view model (seed 003): diffusers' ``AutoencoderKL``, small.

It maps a dataset view, RGBA ``(B, 4, 128, 128)`` in [0, 1] (RGB on the canonical background), to
a latent ``(B, 4, 32, 32)`` and back. The multi-view denoiser generates such latents for N orbit views
and the Gaussian Splatting Decoder turns them into Gaussians; decoding them here gives the generated
views as images. The network is diffusers' own class, so the model folder is a plain
``save_pretrained`` folder that :func:`~splatgen.core.models.weights.load_network` loads strictly.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from .. import framing
from .mv_unet import group_count

#: The shipped size: 128² → 32² (two downsamplings), 4 latent channels; ~0.96 M parameters.
DEFAULT_CHANNELS = (32, 64, 64)
LATENT_CHANNELS = 4


def make_autoencoder(channels=DEFAULT_CHANNELS, latent_channels: int = LATENT_CHANNELS,
                     image_size: int = framing.IMAGE_SIZE) -> AutoencoderKL:
    """A new autoencoder: ``len(channels) - 1`` downsamplings, one ResNet layer per level, RGBA in and out."""
    n = len(channels)
    return AutoencoderKL(in_channels=4, out_channels=4, latent_channels=latent_channels,
                         block_out_channels=tuple(channels), layers_per_block=1,
                         down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                         norm_num_groups=group_count(channels), sample_size=image_size)


def latent_size(vae: AutoencoderKL, image_size: int = framing.IMAGE_SIZE) -> int:
    """Side of the latent grid for ``image_size``² views."""
    return image_size // 2 ** (len(vae.config.block_out_channels) - 1)


def encode(vae: AutoencoderKL, images: torch.Tensor, sample: bool = False,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """RGBA ``(..., 4, S, S)`` in [0, 1] → latents ``(..., C, s, s)``: the posterior mean, or a sample."""
    lead = images.shape[:-3]
    dist = vae.encode(images.reshape(-1, *images.shape[-3:]) * 2.0 - 1.0).latent_dist
    z = dist.sample(generator) if sample else dist.mean
    return z.reshape(*lead, *z.shape[1:])


def decode(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Latents ``(..., C, s, s)`` → RGBA ``(..., 4, S, S)`` (about [0, 1]; not clamped, so gradients pass)."""
    lead = latents.shape[:-3]
    x = vae.decode(latents.reshape(-1, *latents.shape[-3:])).sample
    return (x.reshape(*lead, *x.shape[1:]) + 1.0) * 0.5


__all__ = ["AutoencoderKL", "make_autoencoder", "latent_size", "encode", "decode", "DEFAULT_CHANNELS"]
