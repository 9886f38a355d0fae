"""Model folders on disk: where the shipped ones are, their manifest, their networks, offline.

A model folder holds ``splatgen.json`` (its manifest) and one diffusers-style sub-folder per network
(``config.json`` + ``diffusion_pytorch_model.safetensors``)::

    {"format": 1, "kind": "latent-diffusion" | "regressor", "name": "...",
     "components": {"var": "var", "denoiser": "denoiser", "teacher": "../regressor"} | {"net": "."},
     "defaults": {"guidance": 2.0, "skip_weight": 1.0, "steps": 50, "scheduler": "ddim"}}

``kind`` names the generator that reads the folder (:data:`~.registry.GENERATORS`); what
``components`` holds is up to that generator's ``from_folder``.

The shipped set lives in ``splatgen/assets/models/<name>``; ``diffusion`` is the default. Weights are
safetensors only (nothing is unpickled) and nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..errors import ModelError

MANIFEST = "splatgen.json"
DEFAULT_MODEL = "diffusion"


def models_dir() -> Path:
    """The shipped model set: ``splatgen/assets/models``."""
    import splatgen.assets

    return Path(next(iter(splatgen.assets.__path__))) / "models"


def shipped_model_folders() -> dict[str, Path]:
    """Shipped model folders by name (those with a manifest), the default first."""
    root = models_dir()
    found = {p.parent.name: p.parent for p in sorted(root.glob(f"*/{MANIFEST}"))} if root.is_dir() else {}
    return dict(sorted(found.items(), key=lambda kv: kv[0] != DEFAULT_MODEL))


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """``None`` → the default shipped model; a shipped model's name → its folder; else a folder path."""
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    shipped = shipped_model_folders()
    if not path.exists() and str(model) in shipped:
        path = shipped[str(model)]
    if not path.is_dir():
        names = ", ".join(shipped) or "none shipped"
        raise ModelError(f"{model}: no such model folder (shipped models: {names})")
    return path


def read_manifest(path: Path, kinds) -> dict:
    """``path``'s manifest as a dict; its ``kind`` must be one of ``kinds``."""
    f = path / MANIFEST
    if not f.is_file():
        raise ModelError(f"{path}: not a splatgen model folder (no {MANIFEST})")
    try:
        manifest = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{f}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") not in kinds:
        raise ModelError(f"{f}: 'kind' must be one of {', '.join(kinds)}")
    if manifest.get("format", 1) != 1:
        raise ModelError(f"{f}: model format {manifest.get('format')} is newer than this splatgen understands")
    return manifest


def load_component(cls, folder: Path, what: str):
    """``cls.from_pretrained(folder)`` with every failure turned into one clear :class:`ModelError`."""
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: missing config.json of the {what}")
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{folder}: missing the {what}'s weights (*.safetensors)")
    diffusers_log = logging.getLogger("diffusers")
    level = diffusers_log.level
    diffusers_log.setLevel(logging.ERROR)  # its advice about `accelerate` is noise for users
    try:
        model = cls.from_pretrained(folder, low_cpu_mem_usage=False, use_safetensors=True)
    except Exception as exc:  # noqa: BLE001 - corrupted files raise many different types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{folder}: cannot load the {what} ({msg[:300]})") from None
    finally:
        diffusers_log.setLevel(level)
    return model.float().eval().requires_grad_(False)


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` / None → CUDA when this machine has it, else the CPU; a named device is checked."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was asked for but this machine has no usable CUDA GPU; use --device cpu")
    return device
