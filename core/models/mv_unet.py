"""What the multi-view networks share: a diffusers UNet over N views at once, cameras as ray maps.

Views are folded into the batch (``(B·N, C, s, s)``) and run through a diffusers
``UNet2DConditionModel``; its self-attention layers get :class:`MultiViewAttnProcessor`, which unfolds
the views again so every token attends to the tokens of *all N views* of its object (MVDream's
"3D self-attention"), while cross-attention reads the input image's tokens as usual. No positional
code tells the views apart: a view is known by its camera alone (its Plücker ray map, concatenated to
its input channels), so the networks are equivariant to permuting views together with their cameras.

Cameras are OpenCV world-to-camera matrices in the **input camera's frame** (view 0 of an orbit is
the identity), as :class:`~splatgen.core.training.viewbank.ViewBatch` gives them.
"""

from __future__ import annotations

import math

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from torch import nn

from ..cameras import canonical_intrinsics
from .splatter_net import plucker_rays

RAY_CHANNELS = 6


class MultiViewAttnProcessor:
    """Self-attention across the ``num_views`` views of each object; cross-attention unchanged.

    Wraps diffusers' ``AttnProcessor2_0``: hidden states ``(B·N, L, C)`` become ``(B, N·L, C)`` for
    self-attention and go back afterwards. ``num_views`` comes through the UNet's ``cross_attention_kwargs``.
    """

    def __init__(self):
        self.base = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 num_views: int = 1):
        if encoder_hidden_states is not None or num_views == 1:
            return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        bn, length, channels = hidden_states.shape
        joined = hidden_states.reshape(bn // num_views, num_views * length, channels)
        return self.base(attn, joined, None, attention_mask, temb).reshape(bn, length, channels)


def group_count(channels) -> int:
    """Groups of the networks' group norms: 32 for the real sizes, fewer for the tests' tiny ones."""
    return math.gcd(32, *[int(c) for c in channels])


def multiview_unet(in_channels: int, out_channels: int, sample_size: int, block_out_channels, layers_per_block: int,
                   cross_attention_dim: int, attention_heads: int) -> UNet2DConditionModel:
    """A ``UNet2DConditionModel`` whose first level is convolutional and whose lower levels (and mid
    block) attend across views and to the input image, with :class:`MultiViewAttnProcessor` set."""
    n = len(block_out_channels)
    unet = UNet2DConditionModel(
        sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
        block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_attention_dim, attention_head_dim=attention_heads,  # diffusers: head count
        norm_num_groups=group_count(block_out_channels))
    unet.set_attn_processor(MultiViewAttnProcessor())
    return unet


def run_unet(unet: UNet2DConditionModel, x: torch.Tensor, timesteps: torch.Tensor,
             tokens: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, N, C, s, s)``, ``timesteps`` ``(B,)``, image tokens ``(B, L, D)`` → ``(B, N, C_out, s, s)``."""
    b, n = x.shape[:2]
    out = unet(x.flatten(0, 1), timesteps.repeat_interleave(n), tokens.repeat_interleave(n, 0),
               cross_attention_kwargs={"num_views": n}).sample
    return out.unflatten(0, (b, n))


def ray_maps(viewmats: torch.Tensor, size: int) -> torch.Tensor:
    """Plücker ray maps ``(B, N, 6, size, size)`` of cameras ``(B, N, 4, 4)`` (canonical intrinsics at
    ``size``² pixels: the latent grid sees the same rays as the 128² view, coarser)."""
    K = canonical_intrinsics(size).to(viewmats.device)
    return plucker_rays(viewmats.float(), K, size)


class ImageTokens(nn.Module):
    """The input view's latent ``(B, C, s, s)`` → cross-attention tokens ``(B, (s/p)², D)``: a patch
    conv (``p`` = ``patch``) plus a learned position code per patch (the input view has a fixed frame)."""

    def __init__(self, latent_channels: int, dim: int, latent_size: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(latent_channels, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, (latent_size // patch) ** 2, dim))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.proj(latent).flatten(2).transpose(1, 2) + self.position


__all__ = ["MultiViewAttnProcessor", "multiview_unet", "run_unet", "ray_maps", "ImageTokens", "RAY_CHANNELS",
           "group_count"]
