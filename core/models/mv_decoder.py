"""The Gaussian Splatting Decoder (seed 003): N views' latents → one set of Gaussians.

Each view's latent ``(C, s, s)`` and its Plücker ray map go through a diffusers
``UNet2DConditionModel`` whose self-attention spans all views (:mod:`.mv_unet`) and whose
cross-attention reads tokens of the input view's latent (GSV3D injects input-image features the same
way). The UNet's output is a Splatter Image per view at the latent grid (:mod:`.splatter_image`, M
Gaussians per latent pixel): each Gaussian sits on its pixel's ray *of that view's camera*, at a
predicted depth plus offset, and is moved into the input camera's frame with the view's
camera-to-world matrix. Rotations are read in the input camera's frame directly (the network knows
each view's camera from its rays). Output: ``(B, N·s·s·M)`` Gaussians in the input camera's frame,
view-major, the layout :func:`~splatgen.core.generator.base.to_object_frame` expects.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from ..gaussians import Gaussians
from .mv_unet import RAY_CHANNELS, ImageTokens, multiview_unet, ray_maps, run_unet
from .splatter_image import CHANNELS_PER_GAUSSIAN, init_head, raw_to_gaussians


class MultiViewGSDecoder(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        latent_size: int = 32,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        cross_attention_dim: int = 64,
        attention_heads: int = 4,
        token_patch: int = 4,
        gaussians_per_pixel: int = 2,
        trained_steps: int = 0,  # bookkeeping: optimiser steps these weights have seen
    ):
        super().__init__()
        self.tokens = ImageTokens(latent_channels, cross_attention_dim, latent_size, token_patch)
        self.unet = multiview_unet(latent_channels + RAY_CHANNELS, CHANNELS_PER_GAUSSIAN * gaussians_per_pixel,
                                   latent_size, block_out_channels, layers_per_block, cross_attention_dim,
                                   attention_heads)
        init_head(self.unet.conv_out, gaussians_per_pixel)

    def forward(self, latents: torch.Tensor, viewmats: torch.Tensor, input_latent: torch.Tensor) -> Gaussians:
        """``latents`` ``(B, N, C, s, s)`` (autoencoder latents of N views), ``viewmats`` ``(B, N, 4, 4)``
        in the input camera's frame, ``input_latent`` ``(B, C, s, s)`` → Gaussians ``(B, N·s·s·M)``."""
        b, n, _, s, _ = latents.shape
        rays = ray_maps(viewmats, s).to(latents.dtype)
        t = torch.zeros(b, dtype=torch.long, device=latents.device)  # a feed-forward pass: no noise level
        raw = run_unet(self.unet, torch.cat([latents, rays], 2), t, self.tokens(input_latent.to(latents.dtype)))
        g = raw_to_gaussians(raw.flatten(0, 1), self.config.gaussians_per_pixel)  # (B·N, s·s·M), per view
        with torch.autocast(latents.device.type, enabled=False):  # positions in float32, also under bf16 autocast
            c2w = torch.linalg.inv(viewmats.float()).flatten(0, 1)  # (B·N, 4, 4)
            means = torch.einsum("bij,bnj->bni", c2w[:, :3, :3], g.means.float()) + c2w[:, None, :3, 3]
        g = Gaussians(means=means, quats=g.quats, log_scales=g.log_scales, opacity_logits=g.opacity_logits, sh=g.sh)
        return g.map(lambda x: x.reshape(b, -1, *x.shape[2:]))


__all__ = ["MultiViewGSDecoder"]
