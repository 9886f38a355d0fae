"""Model folders → generators, offline.

A model folder holds ``splatgen.json`` (its manifest) and one diffusers-style sub-folder per network
(``config.json`` + ``diffusion_pytorch_model.safetensors``)::

    {"format": 1, "kind": "latent-diffusion" | "regressor", "name": "...",
     "components": {"var": "var", "denoiser": "denoiser", "teacher": "../regressor"} | {"net": "."},
     "defaults": {"guidance": 2.0, "skip_weight": 1.0, "steps": 50, "scheduler": "ddim"}}

``teacher`` (a regressor folder, relative to this one) is read only when the denoiser was trained with
a teacher's features (``teacher_channels`` > 0 in its config), and must be the very regressor it was
trained with (``teacher_sha256``).

The shipped set lives in ``splatgen/assets/models/<name>``; ``diffusion`` is the default. Weights are
safetensors only (nothing is unpickled) and nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..errors import SplatgenError
from .base import Generator

MANIFEST = "splatgen.json"
DEFAULT_MODEL = "diffusion"
KINDS = ("latent-diffusion", "regressor")


class ModelError(SplatgenError, ValueError):
    """A model folder is missing, incomplete, corrupted or of the wrong kind."""


def models_dir() -> Path:
    """The shipped model set: ``splatgen/assets/models``."""
    import splatgen.assets

    return Path(next(iter(splatgen.assets.__path__))) / "models"


def available_models() -> dict[str, Path]:
    """Shipped models by folder name (those with a manifest), the default first."""
    root = models_dir()
    found = {p.parent.name: p.parent for p in sorted(root.glob(f"*/{MANIFEST}"))} if root.is_dir() else {}
    return dict(sorted(found.items(), key=lambda kv: kv[0] != DEFAULT_MODEL))


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """``None`` → the default shipped model; a shipped model's name → its folder; else a folder path."""
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    if not path.exists() and str(model) in available_models():
        path = available_models()[str(model)]
    if not path.is_dir():
        names = ", ".join(available_models()) or "none shipped"
        raise ModelError(f"{model}: no such model folder (shipped models: {names})")
    return path


def read_manifest(path: Path) -> dict:
    f = path / MANIFEST
    if not f.is_file():
        raise ModelError(f"{path}: not a splatgen model folder (no {MANIFEST})")
    try:
        manifest = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{f}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") not in KINDS:
        raise ModelError(f"{f}: 'kind' must be one of {', '.join(KINDS)}")
    if manifest.get("format", 1) != 1:
        raise ModelError(f"{f}: model format {manifest.get('format')} is newer than this splatgen understands")
    return manifest


def _load_component(cls, folder: Path, what: str):
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
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was asked for but this machine has no usable CUDA GPU; use --device cpu")
    return device


def _load_teacher(path: Path, parts: dict, denoiser):
    """The regressor whose features the denoiser was trained with: present, of the right width, the same weights."""
    from ..models.splatter_net import SplatterNet
    from .teacher import weights_sha256

    if "teacher" not in parts:
        raise ModelError(f"{path}: the denoiser was trained with a teacher regressor's features, but the manifest "
                         f"names no 'teacher' component")
    folder = (path / parts["teacher"]).resolve()
    if not folder.is_dir():
        raise ModelError(f"{path}: the denoiser needs its teacher regressor at {folder} (components.teacher); "
                         f"keep the regressor folder beside this one")
    teacher = _load_component(SplatterNet, folder, "teacher regressor")
    if teacher.config.variational or teacher.config.channels[-1] != denoiser.config.teacher_channels:
        raise ModelError(f"{folder}: not a regressor with {denoiser.config.teacher_channels} feature channels, "
                         f"which the denoiser's teacher must be")
    expected = denoiser.config.teacher_sha256
    if expected and weights_sha256(folder) != expected:
        raise ModelError(f"{folder}: this regressor is not the one the denoiser was trained with (weights differ "
                         f"from sha256 {expected[:12]}…); ship the two together")
    return teacher


def load_generator(model: str | os.PathLike | None = None, device: str | torch.device | None = "auto") -> Generator:
    """Load a generator from a model folder (default: the shipped latent diffusion model)."""
    from ..models.denoiser import LatentDenoiser
    from ..models.splatter_net import SplatterNet
    from .splatter import LatentDiffusionGenerator, RegressorGenerator

    path = resolve_model_path(model)
    manifest = read_manifest(path)
    dev = pick_device(device)
    parts = manifest.get("components") or {}
    name = str(manifest.get("name") or path.name)
    if manifest["kind"] == "regressor":
        net = _load_component(SplatterNet, path / parts.get("net", "."), "regressor network")
        if net.config.variational:
            raise ModelError(f"{path}: manifest says regressor but the network is a VAR")
        gen = RegressorGenerator(net, name=name, device=dev)
    else:
        var = _load_component(SplatterNet, path / parts.get("var", "var"), "VAR")
        denoiser = _load_component(LatentDenoiser, path / parts.get("denoiser", "denoiser"), "denoiser")
        if not var.config.variational:
            raise ModelError(f"{path}: the 'var' component is a regressor, not a VAR")
        if (denoiser.config.latent_channels, denoiser.config.latent_size) != var.latent_shape[:2] or \
                denoiser.config.condition_channels != var.config.channels[-1]:
            raise ModelError(f"{path}: denoiser (latent {denoiser.config.latent_channels}×{denoiser.config.latent_size}²,"
                             f" condition {denoiser.config.condition_channels}) does not match the VAR "
                             f"(latent {var.latent_shape}, features {var.config.channels[-1]})")
        teacher = _load_teacher(path, parts, denoiser) if denoiser.config.teacher_channels else None
        gen = LatentDiffusionGenerator(var, denoiser, name=name, device=dev, defaults=manifest.get("defaults"),
                                       teacher=teacher)
    gen.path = path
    return gen
