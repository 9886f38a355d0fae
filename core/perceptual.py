"""A perceptual metric trained here: features of a small category classifier, and KID over them.

No pretrained network can be downloaded, so the features that compare generated and real views come
from :class:`CategoryNet`, a small CNN trained by ``splatgen train perceptual`` to tell the dataset's
categories apart from single 64² views (``core/training/perceptual.py``; its test-split accuracy is
recorded in its folder's ``config.json``). :func:`kid` is the Kernel Inception Distance of Bińkowski
et al. (unbiased MMD² with the cubic polynomial kernel, averaged over random subsets) computed on those
features instead of Inception's (torchmetrics' KID is tied to Inception weights it would download,
hence the few lines here). Lower is closer; 0 for two sets from one distribution.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Side of the classifier's input views, pixels (views are area-downsampled to it, composited on white).
INPUT_SIZE = 64
CONFIG = "config.json"
WEIGHTS = "model.safetensors"


class CategoryNet(nn.Module):
    """``(B, 3, 64, 64)`` RGB in [0, 1] → logits ``(B, C)``; :meth:`features` gives ``(B, width[-1])``."""

    def __init__(self, num_classes: int, widths=(32, 64, 128, 192)):
        super().__init__()
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.GroupNorm(8, w), nn.SiLU(),
                       nn.Conv2d(w, w, 3, padding=1, stride=2), nn.GroupNorm(8, w), nn.SiLU()]
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)
        self.widths = list(widths)

    def features(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.body(rgb * 2 - 1).mean((2, 3))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(rgb))


def to_input(rgb: torch.Tensor) -> torch.Tensor:
    """Views ``(..., S, S, 3)`` in [0, 1] (on the white background) → classifier input ``(N, 3, 64, 64)``."""
    x = rgb.reshape(-1, *rgb.shape[-3:]).permute(0, 3, 1, 2).float()
    if x.shape[-1] != INPUT_SIZE:
        x = nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")
    return x.clamp(0, 1)


def save_model(folder: str | os.PathLike, net: CategoryNet, categories: list[str], report: dict) -> None:
    """A model folder: ``model.safetensors`` (fp16) and ``config.json`` (categories, widths, report)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().half().contiguous() for k, v in net.state_dict().items()}, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps({"kind": "perceptual", "categories": categories, "widths": net.widths,
                                             "input_size": INPUT_SIZE, **report}, indent=1) + "\n")


def load_model(folder: str | os.PathLike, device="cpu") -> tuple[CategoryNet, dict]:
    """A folder of :func:`save_model` → (network in eval mode, float32, its config)."""
    from safetensors.torch import load_file

    from .errors import ModelError

    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text()[:1 << 20])
        net = CategoryNet(len(config["categories"]), tuple(int(w) for w in config["widths"]))
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()}, strict=True)
    except Exception as exc:  # noqa: BLE001 - a missing, foreign or broken folder
        raise ModelError(f"{folder}: not a perceptual model folder ({exc})") from None
    return net.to(device).eval(), config


def shipped_model() -> Path:
    """The shipped perceptual model's folder (``assets/models/perceptual``)."""
    from .generator.model_folder import models_dir

    return models_dir() / "perceptual"


@torch.no_grad()
def features(net: CategoryNet, rgb: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Views ``(..., S, S, 3)`` → features ``(N, D)`` float32 on the CPU."""
    x = to_input(rgb)
    dev = next(net.parameters()).device
    return torch.cat([net.features(x[i:i + batch].to(dev)).float().cpu() for i in range(0, len(x), batch)])


def kid(a: torch.Tensor, b: torch.Tensor, subsets: int = 50, subset_size: int = 200, seed: int = 0) -> float:
    """Kernel distance between feature sets ``a`` ``(N, D)`` and ``b`` ``(M, D)``: the mean over
    ``subsets`` random subsets of the unbiased MMD² with ``k(x, y) = (x·y / D + 1)³``."""
    a, b = a.double(), b.double()
    n = min(len(a), len(b), subset_size)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[torch.from_numpy(rng.choice(len(a), n, replace=False))]
        y = b[torch.from_numpy(rng.choice(len(b), n, replace=False))]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = 1 - torch.eye(n, dtype=torch.float64)
        values.append(float((kxx * off).sum() / (n * (n - 1)) + (kyy * off).sum() / (n * (n - 1)) - 2 * kxy.mean()))
    return float(np.mean(values))
