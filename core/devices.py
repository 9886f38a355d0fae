"""Which torch device a command runs on: one policy for ``auto`` and for a device asked by name."""

from __future__ import annotations

import torch

from .errors import SettingsError


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` / None → CUDA when this machine has it, else the CPU; a named device is checked
    (``SettingsError`` when CUDA is asked for and absent)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError("CUDA was asked for but this machine has no usable CUDA GPU; use --device cpu")
    return device
