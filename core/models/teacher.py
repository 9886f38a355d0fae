"""The denoiser's condition, and the teacher regressor whose features may join it.

The condition is the VAR image encoder's 16×16 features of the input view; a denoiser built with
``teacher_channels`` > 0 also reads the frozen regressor's 16×16 features of the same view, appended
along channels (see :mod:`.denoiser`). Training (the latent pool, previews) and the generator (hence
evaluation) both assemble it here, so they agree on the order. The teacher is pinned by the sha256 of its weights file: features of another
regressor would mean nothing to the denoiser.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .splatter_net import SplatterNet


def weights_sha256(folder: str | Path) -> str:
    """sha256 (hex) over a model folder's ``*.safetensors`` files, in name order."""
    h = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors weights")
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def denoiser_condition(var_top: torch.Tensor, image: torch.Tensor, teacher: SplatterNet | None) -> torch.Tensor:
    """``var_top`` ``(B, C_var, s, s)`` (the VAR's last image features) and, with a teacher, its features of
    ``image`` ``(B, 4, S, S)`` → condition ``(B, C_var [+ C_teacher], s, s)``."""
    if teacher is None:
        return var_top
    return torch.cat([var_top, teacher.encode_image(image)[-1].to(var_top.dtype)], 1)


__all__ = ["denoiser_condition", "weights_sha256"]
