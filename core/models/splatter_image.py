"""Splatter Image: M Gaussians per pixel, predicted as raw per-pixel channels, turned into Gaussians.

A network predicts, for every pixel of the 128² input and each of its M Gaussians, 15 raw channels:

==========  ===  ==================================================================================
group       ch   activation
==========  ===  ==================================================================================
depth        1   ``z = near + (far - near) · sigmoid(raw)``: depth along the pixel's ray (camera z)
offset       3   ``tanh(raw) · max_offset``: 3D offset added to the point on the ray, camera space
log-scale    3   ``clamp(raw, ...)`` then ``exp``: standard deviations, world units
rotation     4   wxyz quaternion, normalised by the renderer
opacity      1   logit
colour       3   SH DC coefficient (RGB = 0.5 + C0·raw)
==========  ===  ==================================================================================

Everything is expressed in the **input camera's frame** (OpenCV axes), so the input view renders
with an identity ``viewmat`` and the canonical intrinsics. Output layers are initialised per group
(:func:`init_head`) so that training starts from small, semi-transparent splats at mid depth.
"""

from __future__ import annotations

import functools

import math

import torch
from torch import nn

from .. import framing
from ..cameras import canonical_intrinsics
from ..gaussians import Gaussians

CHANNELS_PER_GAUSSIAN = 15
# (name, width) in channel order
GROUPS = (("depth", 1), ("offset", 3), ("log_scale", 3), ("rotation", 4), ("opacity", 1), ("colour", 3))

# The object's bounding sphere spans camera depths [1.5, 2.5]; leave a margin either side.
DEPTH_NEAR = framing.CAMERA_DISTANCE - 2.0 * framing.OBJECT_RADIUS
DEPTH_FAR = framing.CAMERA_DISTANCE + 2.0 * framing.OBJECT_RADIUS
MAX_OFFSET = 0.25  # world units
LOG_SCALE_MIN, LOG_SCALE_MAX = math.log(1e-4), math.log(0.3)
# Initial values: a pixel spans ~0.011 world units at the object's distance.
INIT_LOG_SCALE = math.log(0.01)
INIT_OPACITY = 0.1


def init_head(conv: nn.Conv2d, gaussians_per_pixel: int) -> None:
    """Initialise an output conv (out channels = 15·M) group by group: tiny weights, chosen biases."""
    with torch.no_grad():
        conv.weight.mul_(0.01)
        bias = conv.bias.view(gaussians_per_pixel, CHANNELS_PER_GAUSSIAN)
        bias.zero_()
        start = 0
        for name, width in GROUPS:
            if name == "depth":
                # M layers spread over the middle of the depth range: the nearest covers the front.
                bias[:, start] = torch.linspace(-0.5, 0.5, gaussians_per_pixel) if gaussians_per_pixel > 1 else 0.0
            elif name == "log_scale":
                bias[:, start:start + width] = INIT_LOG_SCALE
            elif name == "rotation":
                bias[:, start] = 1.0
            elif name == "opacity":
                bias[:, start] = math.log(INIT_OPACITY / (1 - INIT_OPACITY))
            start += width


def pixel_rays(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Camera-space ray directions with z = 1 through each pixel centre, ``(size, size, 3)``; one
    tensor per (size, device, dtype), made once and shared (read it, never write it): a forward pass
    then copies nothing from the host, which a CUDA graph capture requires."""
    return _pixel_rays(int(size), torch.device(device) if device is not None else torch.device("cpu"), dtype)


@functools.lru_cache(maxsize=None)  # never evicted: a captured CUDA graph reads these tensors' memory
def _pixel_rays(size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    K = canonical_intrinsics(size).to(device=device, dtype=dtype)
    coords = torch.arange(size, device=device, dtype=dtype) + 0.5
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    return torch.stack([x, y, torch.ones_like(x)], -1)


def raw_to_gaussians(raw: torch.Tensor, gaussians_per_pixel: int) -> Gaussians:
    """Raw network output ``(B, 15·M, H, W)`` → Gaussians ``(B, H·W·M)`` in the input camera frame."""
    b, c, h, w = raw.shape
    m = gaussians_per_pixel
    if c != CHANNELS_PER_GAUSSIAN * m:
        raise ValueError(f"expected {CHANNELS_PER_GAUSSIAN * m} channels for M={m}, got {c}")
    x = raw.float().view(b, m, CHANNELS_PER_GAUSSIAN, h, w).permute(0, 3, 4, 1, 2)  # (B, H, W, M, 15)
    depth, offset, log_scale, rotation, opacity, colour = torch.split(x, [g[1] for g in GROUPS], dim=-1)
    z = DEPTH_NEAR + (DEPTH_FAR - DEPTH_NEAR) * torch.sigmoid(depth)
    rays = pixel_rays(h, raw.device)[:, :, None, :]  # (H, W, 1, 3)
    means = rays * z + torch.tanh(offset) * MAX_OFFSET
    return Gaussians(
        means=means.reshape(b, -1, 3),
        quats=rotation.reshape(b, -1, 4),
        log_scales=log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).reshape(b, -1, 3),
        opacity_logits=opacity.reshape(b, -1),
        sh=colour.reshape(b, -1, 1, 3),
    )
