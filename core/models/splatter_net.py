"""SplatterNet: image → Splatter Image, deterministic (the regressor) or variational (the VAR).

One architecture serves both of seed 001's reconstruction models, built from diffusers' blocks:

* **encoder**: RGBA input ``(B, 4, 128, 128)`` → features at 128, 64, 32 and 16 px, then a
  self-attention mid block at 16×16 (global context: the hidden side is inferred from all of the image);
* **bottleneck**: ``variational=False`` (regressor) passes the 16×16 features on. ``variational=True``
  (Variational AutoReconstructor) has a second, light **view encoder** that sees the input view *and*
  a few other views of the object (each with its Plücker ray map in the input camera's frame, so it
  knows where they were taken), averages their 16×16 features and maps them to a Gaussian latent
  ``(B, 4, 16, 16)`` (mean, log-variance). The latent therefore carries what the input view cannot
  show — the hidden side — and that is what the latent diffusion model learns to sample given the
  input image alone. The reconstructor decodes ``from_latent(z) + skip_weight · proj(input features)``;
* **reconstructor**: from the 16×16 code back up to 128 px, adding each resolution's encoder
  features projected by a 1×1 conv and scaled by ``skip_weight`` (the skip connections), then a head
  that predicts the 15·M raw Splatter-Image channels (:mod:`.splatter_image`).

In training the VAR drops the skip features at random (``skip_dropout``), so the latent must carry the
object on its own and ``skip_weight`` ∈ [0, 1] is meaningful at inference.

The diffusers ``ModelMixin``/``ConfigMixin`` base gives ``save_pretrained`` / ``from_pretrained``
with safetensors and a ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D
from torch import nn

from ..gaussians import Gaussians
from .splatter_image import CHANNELS_PER_GAUSSIAN, init_head, raw_to_gaussians


def _res(cin: int, cout: int) -> ResnetBlock2D:
    return ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=None, groups=min(32, cin // 4),
                         groups_out=min(32, cout // 4))


def _mid(c: int, head_dim: int) -> UNetMidBlock2D:
    return UNetMidBlock2D(in_channels=c, temb_channels=None, resnet_groups=32, attention_head_dim=head_dim,
                          add_attention=True)


class ImageEncoder(nn.Module):
    """RGBA image ``(B, in_ch, S, S)`` → list of features, finest first: ``[(B, c_i, S/2^i, S/2^i)]``.

    The last entry is the mid block's output at the coarsest resolution.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], head_dim: int):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        prev = channels[0]
        for i, c in enumerate(channels):
            if i > 0:
                self.downs.append(Downsample2D(prev, use_conv=True, name="op"))  # "conv" would alias the weights twice
            self.blocks.append(_res(prev, c))
            prev = c
        self.mid = _mid(prev, head_dim)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.conv_in(x)
        feats = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                h = self.downs[i - 1](h)
            h = block(h, None)
            feats.append(h)
        feats.append(self.mid(h))
        return feats


class ViewEncoder(nn.Module):
    """Several posed views ``(B, V, C, S, S)`` → one pooled feature map ``(B, c_last, s, s)`` (no attention)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        layers: list[nn.Module] = []
        prev = channels[0]
        for i, c in enumerate(channels):
            if i > 0:
                layers.append(nn.Conv2d(prev, prev, 3, stride=2, padding=1))
            layers.append(_Res(prev, c))
            prev = c
        self.layers = nn.ModuleList(layers)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        b, v = views.shape[:2]
        h = self.conv_in(views.flatten(0, 1))
        for layer in self.layers:
            h = layer(h)
        return h.unflatten(0, (b, v)).mean(dim=1)


class _Res(nn.Module):
    """A diffusers ResnetBlock2D without time embedding, callable with one argument."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = _res(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, None)


def plucker_rays(viewmats: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """Plücker ray maps ``(B, V, 6, S, S)`` = (direction, origin × direction) of every pixel's ray.

    ``viewmats`` ``(B, V, 4, 4)`` world-to-camera where world is the input camera's frame; ``K`` ``(3, 3)``.
    """
    coords = torch.arange(size, device=viewmats.device, dtype=viewmats.dtype) + 0.5
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    d_cam = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)  # (S, S, 3)
    c2w = torch.linalg.inv(viewmats.float())  # (B, V, 4, 4)
    d = torch.einsum("bvij,hwj->bvhwi", c2w[..., :3, :3], d_cam)
    d = torch.nn.functional.normalize(d, dim=-1)
    o = c2w[..., None, None, :3, 3].expand_as(d)
    return torch.cat([d, torch.linalg.cross(o, d, dim=-1)], -1).permute(0, 1, 4, 2, 3).to(viewmats.dtype)


class Reconstructor(nn.Module):
    """Coarse code ``(B, c_last, s, s)`` + skip features → raw Splatter Image ``(B, 15·M, S, S)``."""

    def __init__(self, channels: tuple[int, ...], head_dim: int, gaussians_per_pixel: int):
        super().__init__()
        rev = list(reversed(channels))
        self.mid = _mid(rev[0], head_dim)
        self.skip_proj = nn.ModuleList()  # level i: encoder channels rev[i] → this block's input channels
        self.blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        prev = rev[0]
        for i, c in enumerate(rev):
            if i > 0:
                self.ups.append(Upsample2D(prev, use_conv=True))
            self.skip_proj.append(nn.Conv2d(c, prev, 1))
            self.blocks.append(_res(prev, c))
            prev = c
        self.norm_out = nn.GroupNorm(min(32, prev // 4), prev)
        self.head = nn.Conv2d(prev, CHANNELS_PER_GAUSSIAN * gaussians_per_pixel, 3, padding=1)
        init_head(self.head, gaussians_per_pixel)
        for proj in self.skip_proj:  # start with skips contributing little: the code path learns first
            nn.init.zeros_(proj.bias)

    def forward(self, code: torch.Tensor, skips: list[torch.Tensor], skip_weight: torch.Tensor) -> torch.Tensor:
        """``skips`` finest first (as :class:`ImageEncoder` returns them, without the mid output);
        ``skip_weight`` ``(B,)`` or a scalar tensor."""
        w = skip_weight.reshape(-1, 1, 1, 1) if skip_weight.dim() else skip_weight
        h = self.mid(code)
        for i, (block, skip) in enumerate(zip(self.blocks, reversed(skips))):
            if i > 0:
                h = self.ups[i - 1](h)
            h = block(h + w * self.skip_proj[i](skip), None)
        return self.head(torch.nn.functional.silu(self.norm_out(h)))


@dataclass
class SplatterOutput:
    """What a SplatterNet forward pass gives: raw channels, Gaussians, and (VAR only) the latent."""

    raw: torch.Tensor  # (B, 15·M, S, S)
    gaussians: Gaussians  # (B, S·S·M), input camera frame
    latent: torch.Tensor | None = None  # (B, C_lat, s, s) sample that was decoded
    mean: torch.Tensor | None = None  # (B, C_lat, s, s)
    logvar: torch.Tensor | None = None  # (B, C_lat, s, s)

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) ‖ N(0, I)) per element, averaged ``()``."""
        return 0.5 * (self.mean.square() + self.logvar.exp() - 1.0 - self.logvar).mean()


class SplatterNet(ModelMixin, ConfigMixin):
    """Image → Splatter Image network; ``variational`` selects regressor or Variational AutoReconstructor."""

    @register_to_config
    def __init__(
        self,
        image_size: int = 128,
        in_channels: int = 4,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        attention_head_dim: int = 32,
        gaussians_per_pixel: int = 2,
        variational: bool = False,
        latent_channels: int = 4,
        view_encoder_channels: tuple[int, ...] = (32, 64, 96, 128),
        skip_dropout: float = 0.5,
        # inference default, kept with the weights
        default_skip_weight: float = 1.0,
        # bookkeeping: optimiser steps these weights have seen (objects·steps = steps × batch size)
        trained_steps: int = 0,
    ):
        super().__init__()
        channels = tuple(channels)
        self.encoder = ImageEncoder(in_channels, channels, attention_head_dim)
        self.reconstructor = Reconstructor(channels, attention_head_dim, gaussians_per_pixel)
        if variational:
            vec = tuple(view_encoder_channels)
            self.view_encoder = ViewEncoder(in_channels + 6, vec)
            self.to_latent = nn.Conv2d(vec[-1], 2 * latent_channels, 1)
            self.from_latent = nn.Conv2d(latent_channels, channels[-1], 3, padding=1)
            self.top_proj = nn.Conv2d(channels[-1], channels[-1], 1)
            with torch.no_grad():
                self.to_latent.bias[latent_channels:].fill_(-4.0)  # start with small posterior variance

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(C_lat, s, s)`` of the VAR latent (s = S / 2^(levels-1))."""
        s = self.config.image_size // 2 ** (len(self.config.channels) - 1)
        return (self.config.latent_channels, s, s)

    def encode_image(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Input view ``(B, 4, S, S)`` RGBA in [0, 1] (RGB on the background) → features, finest first;
        the last entry is the 16×16 mid-block output (also the diffusion model's condition)."""
        return self.encoder(image * 2.0 - 1.0)

    def encode_views(self, views: torch.Tensor, viewmats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VAR posterior from posed views: ``views`` ``(B, V, 4, S, S)`` (view 0 = input view),
        ``viewmats`` ``(B, V, 4, 4)`` in the input camera's frame → (mean, logvar) ``(B, C_lat, s, s)``."""
        from ..cameras import canonical_intrinsics

        size = views.shape[-1]
        K = canonical_intrinsics(size).to(views.device)
        rays = plucker_rays(viewmats, K, size).to(views.dtype)
        h = self.view_encoder(torch.cat([views * 2.0 - 1.0, rays], 2))
        mean, logvar = self.to_latent(h).chunk(2, dim=1)
        return mean, logvar.clamp(-20.0, 10.0)

    def decode(self, features: list[torch.Tensor], latent: torch.Tensor | None = None,
               skip_weight: float | torch.Tensor = 1.0) -> SplatterOutput:
        """Image features (+ a latent, VAR) → raw channels and Gaussians.

        ``skip_weight`` scales every skip from the input image (per item ``(B,)`` or a scalar); the
        regressor always decodes its own 16×16 features at full weight.
        """
        skips, top = features[:-1], features[-1]
        if self.config.variational:
            w = torch.as_tensor(skip_weight, dtype=top.dtype, device=top.device)
            if latent is None:
                raise ValueError("the VAR decodes from a latent; pass latent=")
            wb = w.reshape(-1, 1, 1, 1) if w.dim() else w
            code = self.from_latent(latent.to(top.dtype)) + wb * self.top_proj(top)
        else:
            code, w = top, torch.ones((), dtype=top.dtype, device=top.device)
        raw = self.reconstructor(code, skips, w)
        return SplatterOutput(raw=raw, gaussians=raw_to_gaussians(raw, self.config.gaussians_per_pixel),
                              latent=latent)

    def forward(self, image: torch.Tensor, views: torch.Tensor | None = None, viewmats: torch.Tensor | None = None,
                skip_weight: float | torch.Tensor | None = None, sample: bool | None = None,
                generator: torch.Generator | None = None) -> SplatterOutput:
        """Regressor: reconstruct from ``image`` alone. VAR (training/autoencoding): encode ``views`` /
        ``viewmats`` (defaults: the input view alone), sample the posterior (``sample`` defaults to
        ``self.training``) and decode; in training, skips are dropped per item with probability
        ``skip_dropout`` unless ``skip_weight`` is given."""
        features = self.encode_image(image)
        if not self.config.variational:
            return self.decode(features)
        if views is None:
            views = image[:, None]
            viewmats = torch.eye(4, device=image.device, dtype=image.dtype).expand(image.shape[0], 1, 4, 4)
        mean, logvar = self.encode_views(views, viewmats)
        sample = self.training if sample is None else sample
        latent = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            latent = mean + torch.exp(0.5 * logvar) * noise
        if skip_weight is None:
            if self.training:
                keep = torch.rand(image.shape[0], device=image.device) >= self.config.skip_dropout
                skip_weight = keep.to(image.dtype)
            else:
                skip_weight = self.config.default_skip_weight
        out = self.decode(features, latent, skip_weight)
        out.mean, out.logvar = mean, logvar
        return out
