"""Loading a network from its folder strictly: JSON config, safetensors weights, nothing unpickled.

A network folder (what diffusers' ``save_pretrained`` writes) holds ``config.json`` and
``diffusion_pytorch_model.safetensors`` (or several ``*.safetensors`` shards). A tensor may be stored
int8 (:func:`quantize_int8`, half the bytes of fp16): ``NAME::int8`` (int8) and ``NAME::scale``
(fp16, one per output channel), read back as ``NAME`` = int8 × scale. :func:`load_network`
builds the network from the config alone (first on PyTorch's meta device, so a config that does not
fit the weights files' headers is refused before any memory is taken) and copies the weights in with
:func:`load_strict`: every tensor the network has must be in the files, with its shape, nothing else
may be, and every value must be finite. Any other file in the folder (a ``.bin`` / ``.pt`` pickle, say) is never
opened, so a folder cannot run code by being loaded. The generator (model folders) and training
(``--var``, ``--teacher``, ``--init-from``, checkpoints) load through here; each problem is one
:class:`~splatgen.core.errors.ModelError` (or the ``error`` type given) naming the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import ModelError, SplatgenError

CONFIG = "config.json"


def read_weights(folder: str | os.PathLike, *, error: type[SplatgenError] = ModelError) -> dict[str, torch.Tensor]:
    """Every tensor of the folder's ``*.safetensors`` files (name order) by name, on the CPU."""
    from safetensors.torch import load_file

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise error(f"{folder}: no weights (*.safetensors) in this folder")
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            part = load_file(str(f))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types on corrupt files
            raise error(f"{f}: corrupted or unreadable weights ({_first_line(exc)})") from None
        twice = sorted(set(part) & set(weights))
        if twice:
            raise error(f"{folder}: tensor {twice[0]} is in more than one weights file")
        weights.update(part)
    return _dequantize(weights, folder, error)


#: Suffixes of an int8-stored tensor's two parts (see the module docstring).
INT8, SCALE = "::int8", "::scale"
#: Tensors smaller than this stay fp16 (biases, norms: few bytes, and the most sensitive).
INT8_MIN_ELEMENTS = 4096


def quantize_int8(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` for storage: each floating tensor of ≥ 2 dimensions and ≥ :data:`INT8_MIN_ELEMENTS`
    values as symmetric int8 per output channel (dim 0; error ≤ half a step, max|row| / 254), the
    others as fp16. Hand-written: the safetensors layout of diffusers has no quantised form."""
    out: dict[str, torch.Tensor] = {}
    for name, t in weights.items():
        if t.is_floating_point() and t.dim() >= 2 and t.numel() >= INT8_MIN_ELEMENTS:
            t = t.float()
            scale = t.abs().amax(dim=tuple(range(1, t.dim())), keepdim=True).clamp_min(1e-12) / 127
            scale = scale.half().float()                        # the scale as stored
            out[name + INT8] = torch.round(t / scale).clamp(-127, 127).to(torch.int8).contiguous()
            out[name + SCALE] = scale.half().contiguous()
        else:
            out[name] = t.half().contiguous() if t.is_floating_point() else t.contiguous()
    return out


def _dequantize(weights: dict[str, torch.Tensor], source, error) -> dict[str, torch.Tensor]:
    """int8 parts (``NAME::int8`` / ``NAME::scale``) joined back into float32 ``NAME``."""
    _int8_shapes({k: tuple(v.shape) for k, v in weights.items()}, source, error)   # the pairs are well formed
    out = {k: v for k, v in weights.items() if not k.endswith((INT8, SCALE))}
    for key in [k for k in weights if k.endswith(INT8)]:
        name = key[: -len(INT8)]
        if weights[key].dtype != torch.int8:
            raise error(f"{source}: int8 tensor {name} is malformed (stored as {weights[key].dtype})")
        out[name] = weights[key].float() * weights[name + SCALE].float()
    return out


def read_shapes(folder: str | os.PathLike, *, error: type[SplatgenError] = ModelError) -> dict[str, tuple]:
    """Every tensor's shape in the folder's ``*.safetensors`` files, from their headers alone."""
    from safetensors import safe_open

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise error(f"{folder}: no weights (*.safetensors) in this folder")
    shapes: dict[str, tuple] = {}
    for f in files:
        try:
            with safe_open(str(f), "pt") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types on corrupt files
            raise error(f"{f}: corrupted or unreadable weights ({_first_line(exc)})") from None
    return _int8_shapes(shapes, folder, error)


def _int8_shapes(shapes: dict[str, tuple], source, error) -> dict[str, tuple]:
    """Header shapes with each int8 pair as its one tensor (the int8 part's shape); a scale that is
    not one value per row of its int8 tensor is refused here, before any weight is read."""
    out = {k: v for k, v in shapes.items() if not k.endswith((INT8, SCALE))}
    for key, shape in shapes.items():
        if key.endswith(INT8):
            name, scale = key[: -len(INT8)], shapes.get(key[: -len(INT8)] + SCALE)
            if scale is None or len(scale) != len(shape) or not shape or scale[0] != shape[0] \
                    or any(n != 1 for n in scale[1:]) or name in out:
                raise error(f"{source}: int8 tensor {name} is malformed (needs an int8 {INT8} and a per-row {SCALE})")
            out[name] = shape
        elif key.endswith(SCALE) and key[: -len(SCALE)] + INT8 not in shapes:
            raise error(f"{source}: {key} has no int8 tensor beside it")
    return out


def _compare(own: dict[str, tuple], theirs: dict[str, tuple], source, error) -> None:
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    wrong = [k for k in own if k in theirs and own[k] != theirs[k]]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            detail.append(f"{len(wrong)} of another shape (e.g. {k}: {theirs[k]} vs {own[k]})")
        raise error(f"{source}: weights do not match this model: " + "; ".join(detail))


def load_strict(model: torch.nn.Module, weights: dict[str, torch.Tensor], source, *,
                error: type[SplatgenError] = ModelError) -> None:
    """Copy ``weights`` into ``model``: the same names, the same shapes, finite values; else ``error``
    naming ``source`` with the counts and an example of each kind of mismatch."""
    own = model.state_dict()
    _compare({k: tuple(v.shape) for k, v in own.items()}, {k: tuple(v.shape) for k, v in weights.items()},
             source, error)
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise error(f"{source}: {len(bad)} weight tensor(s) hold NaN or infinite values (e.g. {bad[0]}); "
                    "the weights are corrupted")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()}, strict=True)


def read_config(folder: str | os.PathLike, *, error: type[SplatgenError] = ModelError) -> dict:
    """The folder's ``config.json`` as a dict (a JSON object, or ``error``)."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise error(f"{folder}: missing {CONFIG}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"{path}: unreadable network config ({_first_line(exc)})") from None
    if not isinstance(config, dict):
        raise error(f"{path}: the network config must be a JSON object, got {type(config).__name__}")
    return config


def load_network(cls, folder: str | os.PathLike, what: str = "network", *,
                 error: type[SplatgenError] = ModelError):
    """``cls`` (a diffusers ``ModelMixin``/``ConfigMixin`` network) built from ``folder``'s config and
    loaded strictly with its safetensors weights; float32, eval mode, no gradients."""
    folder = Path(folder)
    try:
        if not folder.is_dir():
            raise error(f"{folder}: no such folder")
        config = read_config(folder, error=error)
        shapes = read_shapes(folder, error=error)
        try:
            with torch.device("meta"):  # no memory yet: a config asking for a giant network costs nothing
                probe = cls.from_config(config)
        except Exception as exc:  # noqa: BLE001 - a config of wrong values raises many types
            raise error(f"{folder / CONFIG}: not a valid config ({_first_line(exc)})") from None
        _compare({k: tuple(v.shape) for k, v in probe.state_dict().items()}, shapes, folder, error)
        model = cls.from_config(config)  # the size the weights files have, now known to match
        load_strict(model, read_weights(folder, error=error), folder, error=error)
    except SplatgenError as exc:
        msg = str(exc).removeprefix(f"{folder}: ")
        raise error(f"{folder}: cannot load the {what}: {msg}") from None
    return model.float().eval().requires_grad_(False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


__all__ = ["CONFIG", "load_network", "load_strict", "quantize_int8", "read_config", "read_shapes", "read_weights"]
