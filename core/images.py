"""Float pictures to 8-bit ones: the one rounding every frame, thumbnail and image file goes through.

Renderers, the model and image preparation work in floats in [0, 1]; screens, image files and
browsers take bytes. :func:`to_uint8` is the conversion (nearest step, out-of-range values clamped),
for numpy arrays and for torch tensors alike (a tensor is converted where it is, so a CUDA frame is
made bytes before it is copied: a quarter of the bytes).
"""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(image):
    """Floats in [0, 1] → uint8 0…255, rounded to the nearest step; values outside [0, 1] are clamped.

    ``image``: any shape; a ``torch.Tensor`` gives a uint8 tensor on the same device, anything else
    a numpy uint8 array.
    """
    if isinstance(image, torch.Tensor):
        if image.dtype not in (torch.float32, torch.float64):
            image = image.float()
        return (image.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
    return (np.clip(np.asarray(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def compose(premultiplied: torch.Tensor, alpha: torch.Tensor, background, keep_alpha: bool) -> torch.Tensor:
    """A render made on black → what an image file holds, floats in [0, 1].

    ``premultiplied`` ``(..., 3)`` (colour already multiplied by coverage, as a render on a black
    background is) and ``alpha`` ``(..., 1)`` → with ``keep_alpha``, ``(..., 4)`` **straight** colour
    and alpha (pixels whose alpha rounds to 0 hold ``background``), never mixed with the background,
    so a viewer that composites it shows no halo at the edges; else ``(..., 3)`` composited once on
    ``background`` (RGB in [0, 1]). ``splatgen render``, stills and turntables all go through here."""
    a = alpha.clamp(0.0, 1.0)
    bg = torch.as_tensor(background, dtype=premultiplied.dtype, device=premultiplied.device)
    if not keep_alpha:
        return (premultiplied + (1.0 - a) * bg).clamp(0.0, 1.0)
    covered = a >= 0.5 / 255.0
    straight = torch.where(covered, premultiplied / a.clamp_min(0.5 / 255.0), bg)
    return torch.cat([straight.clamp(0.0, 1.0), a], -1)
