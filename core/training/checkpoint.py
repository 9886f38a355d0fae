"""Training checkpoints: safetensors only (never a pickle), resumable exactly.

A checkpoint folder holds

* ``model/`` — the trained network, ``save_pretrained`` layout (config.json + safetensors);
* ``ema/`` — the EMA weights, same layout (what gets shipped and evaluated);
* ``optimizer.safetensors`` — every optimizer state tensor, keyed ``<param-name>/<state-key>``;
* ``trainer.json`` — step, optimizer hyper-parameters, scalar states, arguments, history;
* ``rng.safetensors`` — CPU (and CUDA) random generator states and the sampler generator's state.

Everything is written to a temporary folder first and renamed into place, so an interrupted write
never leaves a half checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import SplatgenError
from ..models.weights import load_strict, read_weights


class CheckpointError(SplatgenError):
    """A checkpoint is missing, corrupted or does not match the model."""


def _named_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    names = {id(p): n for n, p in model.named_parameters()}
    tensors, scalars = {}, {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"{names[id(p)]}/{key}"] = value.detach().contiguous()
                else:
                    scalars[f"{names[id(p)]}/{key}"] = value
    return tensors, scalars


def save_checkpoint(
    folder: str | os.PathLike,
    model,
    ema_model,
    optimizer: torch.optim.Optimizer,
    step: int,
    sampler_generator: torch.Generator | None = None,
    extra: dict | None = None,
) -> Path:
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    unwrap(model).save_pretrained(tmp / "model", safe_serialization=True)
    ema_model.save_pretrained(tmp / "ema", safe_serialization=True)
    tensors, scalars = _named_state(unwrap(model), optimizer)
    save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp / "optimizer.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    if sampler_generator is not None:
        rng["sampler"] = sampler_generator.get_state()
    save_file(rng, str(tmp / "rng.safetensors"))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    meta = {"step": step, "param_groups": groups, "optimizer_scalars": scalars, **(extra or {})}
    (tmp / "trainer.json").write_text(json.dumps(meta, indent=2, default=str))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(folder: str | os.PathLike, model, ema_model, optimizer: torch.optim.Optimizer,
                    sampler_generator: torch.Generator | None = None) -> dict:
    """Restore model, EMA, optimizer and RNG states in place; returns ``trainer.json``'s content."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "trainer.json").read_text())
        weights = load_weights(folder / "model")
        ema_weights = load_weights(folder / "ema")
        opt_tensors = load_file(str(folder / "optimizer.safetensors"))
        rng = load_file(str(folder / "rng.safetensors"))
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder}: not a readable training checkpoint ({exc})") from None
    load_into(unwrap(model), weights, folder / "model")
    load_into(ema_model, ema_weights, folder / "ema")
    params = dict(unwrap(model).named_parameters())
    for key, value in opt_tensors.items():
        name, state_key = key.rsplit("/", 1)
        if name not in params:
            raise CheckpointError(f"{folder}: optimizer state for unknown parameter {name}")
        p = params[name]
        optimizer.state[p][state_key] = value.to(p.device)
    for key, value in meta.get("optimizer_scalars", {}).items():
        name, state_key = key.rsplit("/", 1)
        optimizer.state[params[name]][state_key] = value
    for group, saved in zip(optimizer.param_groups, meta.get("param_groups", [])):
        group.update({k: v for k, v in saved.items() if k in group})
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    if sampler_generator is not None and "sampler" in rng:
        sampler_generator.set_state(rng["sampler"].to(sampler_generator.get_state().device))
    return meta


def resumed_run_args(out_dir: str | os.PathLike, resume: bool) -> dict | None:
    """The arguments the run in ``out_dir`` was started with (``trainer.json``'s ``args``) when
    ``--resume`` will continue it, else None (no resume, no checkpoint, or one the loader will report)."""
    meta_path = Path(out_dir) / "checkpoint" / "trainer.json"
    if not (resume and meta_path.exists()):
        return None
    try:
        saved = json.loads(meta_path.read_text()).get("args", {})
    except (OSError, ValueError, AttributeError):
        return None
    return saved if isinstance(saved, dict) else None


def load_weights(model_folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The safetensors weights of a ``save_pretrained`` folder (one file or shards); never a pickle."""
    return read_weights(model_folder, error=CheckpointError)


def load_into(model: torch.nn.Module, weights: dict[str, torch.Tensor], source) -> None:
    """Load ``weights`` into ``model`` strictly (names, shapes, finite values), with a clear message on any mismatch."""
    load_strict(model, weights, source, error=CheckpointError)


def unwrap(model):
    """The module inside a DistributedDataParallel / compiled wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model
