"""A whole set of samples of one photo in one safetensors file, for notebooks: ``splatgen generate
--samples-file``, :func:`save_sample_set`, :func:`load_sample_set`.

Tensors (S samples of N splats each, the generator's fixed slots; K SH coefficients):
``means`` ``(S, N, 3)``, ``quats`` ``(S, N, 4)`` wxyz, ``log_scales`` ``(S, N, 3)``,
``opacity_logits`` ``(S, N)``, ``sh`` ``(S, N, K, 3)``, ``observed`` ``(S, N)`` and ``spread`` ``(N,)``
(:mod:`splatgen.core.provenance`), ``seeds`` ``(S,)`` int64, ``input_viewmats`` ``(S, 4, 4)`` and
``K`` ``(3, 3)`` (the input camera, object frame, OpenCV, pixels at ``image_size``). The header's
metadata holds JSON under ``"splatgen"``: the model, the settings of each sample, the photo's name.
Every splat is kept (none dropped for opacity), so slot ``i`` means the same splat in every sample.
Safetensors only: loading a file never runs code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch

from .errors import SplatFileError
from .gaussians import Gaussians

FORMAT = "splatgen-sample-set"
VERSION = 1
#: Largest file read (bytes): 64 samples × 32,768 splats × SH degree 3 is about 0.5 GB.
MAX_BYTES = 1 << 30


@dataclass
class SampleSet:
    """What a sample-set file holds: one :class:`Gaussians` ``(N,)`` per sample and the per-sample /
    per-slot values of the module docstring."""

    gaussians: list[Gaussians]
    seeds: list[int]
    observed: torch.Tensor            # (S, N)
    spread: torch.Tensor              # (N,)
    input_viewmats: torch.Tensor      # (S, 4, 4)
    K: torch.Tensor                   # (3, 3)
    image_size: int
    info: dict = field(default_factory=dict)   # model, settings per sample, name


def save_sample_set(path: str | os.PathLike, samples: list, name: str = "") -> None:
    """Write ``samples`` (:class:`~splatgen.core.generator.Sample` s of one photo, all with the same
    splat count) as one safetensors file, atomically."""
    from safetensors.torch import save

    from .atomic import atomic_write
    from .provenance import observed, spread

    if not samples:
        raise SplatFileError(f"{os.fspath(path)}: no samples to write")
    gs = [s.gaussians.detach().to("cpu", torch.float32) for s in samples]
    if len({g.num_gaussians for g in gs}) != 1:
        raise SplatFileError(f"{os.fspath(path)}: a sample set needs samples with the same splat slots")
    tensors = {
        "means": torch.stack([g.means for g in gs]), "quats": torch.stack([g.quats for g in gs]),
        "log_scales": torch.stack([g.log_scales for g in gs]),
        "opacity_logits": torch.stack([g.opacity_logits for g in gs]), "sh": torch.stack([g.sh for g in gs]),
        "observed": torch.stack([observed(g, s.input_viewmat.cpu(), s.K.cpu(), s.image_size) for g, s in zip(gs, samples)]),
        "spread": spread(gs), "seeds": torch.tensor([int(s.seed) for s in samples], dtype=torch.int64),
        "input_viewmats": torch.stack([s.input_viewmat.detach().cpu().float() for s in samples]),
        "K": samples[0].K.detach().cpu().float(),
    }
    info = {"format": FORMAT, "version": VERSION, "name": name, "model": samples[0].model,
            "image_size": int(samples[0].image_size), "settings": [s.settings.as_dict() for s in samples]}
    data = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"splatgen": json.dumps(info)})
    atomic_write(path, [data], error=SplatFileError)


def load_sample_set(path: str | os.PathLike) -> SampleSet:
    """Read a file of :func:`save_sample_set`; anything else (or inconsistent shapes) is a
    :class:`SplatFileError` naming the file."""
    from safetensors import safe_open

    name = os.fspath(path)
    try:
        if os.path.getsize(name) > MAX_BYTES:
            raise SplatFileError(f"{name}: larger than a sample set can be ({MAX_BYTES} bytes)")
        with safe_open(name, framework="pt") as f:
            info = json.loads((f.metadata() or {}).get("splatgen", "{}"))
            if info.get("format") != FORMAT:
                raise SplatFileError(f"{name}: not a splatgen sample set")
            t = {k: f.get_tensor(k) for k in f.keys()}
    except SplatFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken or foreign file
        raise SplatFileError(f"{name}: not a readable sample set ({exc})") from None
    try:
        s, n = t["means"].shape[:2]
        shapes = {"means": (s, n, 3), "quats": (s, n, 4), "log_scales": (s, n, 3), "opacity_logits": (s, n),
                  "observed": (s, n), "spread": (n,), "seeds": (s,), "input_viewmats": (s, 4, 4), "K": (3, 3)}
        bad = [k for k, shape in shapes.items() if tuple(t[k].shape) != shape]
        if bad or t["sh"].ndim != 4 or tuple(t["sh"].shape[:2]) != (s, n) or t["sh"].shape[3] != 3:
            raise SplatFileError(f"{name}: inconsistent shapes ({', '.join(bad) or 'sh'})")
        floats = ("means", "quats", "log_scales", "opacity_logits", "sh", "observed", "spread", "input_viewmats", "K")
        if any(not t[k].is_floating_point() for k in floats):
            raise SplatFileError(f"{name}: splat tensors must be floating point")
        gaussians = [Gaussians(means=t["means"][i], quats=t["quats"][i], log_scales=t["log_scales"][i],
                               opacity_logits=t["opacity_logits"][i], sh=t["sh"][i]) for i in range(s)]
        image_size = int(info.get("image_size", 128))
    except KeyError as exc:
        raise SplatFileError(f"{name}: missing tensor {exc}") from None
    except (ValueError, TypeError) as exc:
        raise SplatFileError(f"{name}: not a valid sample set ({exc})") from None
    return SampleSet(gaussians, [int(v) for v in t["seeds"]], t["observed"], t["spread"], t["input_viewmats"],
                     t["K"], image_size, info)
