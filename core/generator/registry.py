"""Which generators splatgen has: a model folder's manifest ``kind`` → the class that reads it.

Everything that offers a choice of model reads this module: the GUI's model list and the CLI's
``--model`` (through :func:`available_models` / :func:`load_generator`), the browser's generate
panel and ``splatgen eval`` (through :func:`load_generator`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import ModelError, SettingsError
from ..devices import pick_device
from . import model_folder
from .base import GenerationSettings, Generator
from .latent_diffusion import LatentDiffusionGenerator
from .multi_view import MultiViewGenerator
from .one_step import OneStepGenerator
from .regressor import RegressorGenerator
from .teacher_guided import TeacherGuidedGenerator

#: Every generator by its ``kind``. A new generator is one module in this package plus one entry here.
GENERATORS: dict[str, type[Generator]] = {cls.kind: cls for cls in (
    LatentDiffusionGenerator,
    RegressorGenerator,
    MultiViewGenerator,
    TeacherGuidedGenerator,
    OneStepGenerator,
)}


def available_models() -> dict[str, Path]:
    """Shipped model folders by name whose manifest names a kind of :data:`GENERATORS`, the default first."""
    def known(folder: Path) -> bool:
        try:
            return json.loads((folder / model_folder.MANIFEST).read_text()).get("kind") in GENERATORS
        except (OSError, ValueError, AttributeError):
            return False

    return {name: folder for name, folder in model_folder.shipped_model_folders().items() if known(folder)}


def load_generator(model: str | os.PathLike | None = None, device: str | torch.device | None = "auto") -> Generator:
    """Load a generator from a model folder (a path, or a shipped model's name; default: the shipped
    latent diffusion model) on ``device`` (``"auto"``: CUDA when there is one). The folder's manifest
    ``kind`` picks the class from :data:`GENERATORS`."""
    path = model_folder.resolve_model_path(model)
    manifest = model_folder.read_manifest(path, tuple(GENERATORS))
    device = pick_device(device)
    try:
        gen = GENERATORS[manifest["kind"]].from_folder(path, manifest, device)
        gen.validate(GenerationSettings())  # the manifest's defaults are in range
    except SettingsError as exc:  # parts that do not fit, or defaults out of range: the folder is wrong
        raise ModelError(f"{path / model_folder.MANIFEST}: {exc}") from None
    gen.path = path
    return gen
