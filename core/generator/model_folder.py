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
import math
import os
from pathlib import Path


from ..errors import ModelError
from ..models.weights import load_network

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


#: The manifest's ``defaults``: each setting a model may preset, and the JSON type it must have.
DEFAULT_TYPES = {"guidance": "number", "skip_weight": "number", "steps": "integer", "scheduler": "string",
                 "strength": "number"}


def _is(value, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if isinstance(value, bool):  # JSON true/false are not numbers here
        return False
    if kind == "integer":
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def read_manifest(path: Path, kinds) -> dict:
    """``path``'s manifest as a dict, validated: ``kind`` one of ``kinds``, ``format`` 1, ``name`` a
    string, ``components`` a mapping of names to folder paths (strings), ``defaults`` a mapping of
    the settings in :data:`DEFAULT_TYPES` with their types. Each problem is one :class:`ModelError`."""
    f = path / MANIFEST
    if not f.is_file():
        raise ModelError(f"{path}: not a splatgen model folder (no {MANIFEST})")
    try:
        manifest = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{f}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{f}: the manifest must be a JSON object, got {type(manifest).__name__}")
    fmt = manifest.get("format", 1)
    if not _is(fmt, "integer"):
        raise ModelError(f"{f}: 'format' must be an integer, got {fmt!r}")
    if fmt != 1:
        raise ModelError(f"{f}: model format {fmt} is not one this splatgen understands (1)")
    kind = manifest.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise ModelError(f"{f}: 'kind' must be one of {', '.join(kinds)}, got {kind!r}")
    if "name" in manifest and not isinstance(manifest["name"], str):
        raise ModelError(f"{f}: 'name' must be a string, got {manifest['name']!r}")
    parts = manifest.get("components", {})
    if not isinstance(parts, dict):
        raise ModelError(f"{f}: 'components' must be a mapping of component names to folders, "
                         f"got {type(parts).__name__}")
    for key, value in parts.items():
        if not isinstance(value, str) or not value.strip():
            raise ModelError(f"{f}: components.{key} must be a folder path (a string), got {value!r}")
    defaults = manifest.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ModelError(f"{f}: 'defaults' must be a mapping of settings, got {type(defaults).__name__}")
    for key, value in defaults.items():
        if key not in DEFAULT_TYPES:
            raise ModelError(f"{f}: defaults.{key} is not a setting (known: {', '.join(DEFAULT_TYPES)})")
        if not _is(value, DEFAULT_TYPES[key]):
            raise ModelError(f"{f}: defaults.{key} must be a{'n' if DEFAULT_TYPES[key][0] == 'i' else ''} "
                             f"{DEFAULT_TYPES[key]}, got {value!r}")
    return manifest


def load_component(cls, folder: Path, what: str):
    """The network ``cls`` of ``folder`` (config.json + safetensors), loaded strictly by
    :func:`splatgen.core.models.weights.load_network`: every tensor present with its shape, finite
    values, nothing unpickled; every failure is one clear :class:`ModelError`."""
    return load_network(cls, folder, what, error=ModelError)


