"""antimatter15 ``.splat`` reading and writing (the web viewer's compact format).

A ``.splat`` file has no header: it is ``N`` records of 32 bytes, little endian::

    offset  size  type        content
    0       12    3 float32   position x y z                 (means)
    12      12    3 float32   scale, linear                  (exp(log_scales))
    24      4     4 uint8     colour R G B A                 RGB = 0.5 + C0 * f_dc, A = sigmoid(opacity)
    28      4     4 uint8     rotation w x y z               unit quaternion, q * 128 + 128

Colours and opacity are encoded as ``clip(v * 255, 0, 255)`` and the quaternion as
``clip(q / |q| * 128 + 128, 0, 255)``, both *truncated* to uint8, exactly like the viewer's
``convert.py`` and gsplat's exporter, so the bytes agree with theirs.  Splats are written in the
order of the viewer's converter: descending importance ``exp(scale_0 + scale_1 + scale_2) *
sigmoid(opacity)`` (computed in log space, stable sort, ties keep input order); see
:func:`splat_order`.

The format keeps only SH degree 0 and quantises colour, opacity and rotation, so
``read_splat(write_splat(g))`` equals ``g[splat_order(g)]`` only approximately: positions and
scales exactly (up to float32 ``exp``/``log``), colours and opacity within 1/255, quaternions
within about 1/128 per component.  :func:`read_splat` decodes each uint8 to the *middle* of the
interval that truncation maps to it, halving the worst-case error (the web viewer itself uses
``(b - 128) / 128``; both decode to the same rotation up to that rounding).

A zero quaternion is written as the identity.  An empty file is a valid file with zero splats.

Having no header, a ``.splat`` keeps its metadata (the model that made it, that model's licence)
in a JSON sidecar ``NAME.splat.json`` beside it (:func:`splat_sidecar`), written when
:func:`write_splat` is given ``metadata`` and read by :func:`read_splat_metadata`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from splatgen.core.atomic import atomic_write
from splatgen.core.errors import SplatFileError
from splatgen.core.gaussians import SH_C0, Gaussians
from splatgen.core.io.ply import check_regular_file, gaussians_to_numpy

__all__ = ["read_splat", "write_splat", "read_splat_metadata", "write_splat_metadata", "splat_sidecar", "splat_order", "SPLAT_DTYPE",
           "SPLAT_RECORD_BYTES"]

#: One ``.splat`` record.
SPLAT_DTYPE = np.dtype([
    ("position", "<f4", (3,)),
    ("scale", "<f4", (3,)),
    ("rgba", "u1", (4,)),
    ("rot", "u1", (4,)),
])
SPLAT_RECORD_BYTES = 32
assert SPLAT_DTYPE.itemsize == SPLAT_RECORD_BYTES

# Decoded opacity is kept strictly inside (0, 1) so that its logit is finite.
_ALPHA_EPS = 1e-4


def splat_order(gaussians: Gaussians) -> torch.Tensor:
    """Indices ``(N,)`` that sort a set of Gaussians into ``.splat`` file order.

    Descending ``exp(sum(log_scales)) * sigmoid(opacity_logits)``, evaluated as
    ``sum(log_scales) + logsigmoid(opacity_logits)`` in float64 so that nothing overflows; the
    sort is stable.
    """
    if len(gaussians.shape) != 1:
        raise ValueError(f"splat_order needs one set of shape (N,), got {tuple(gaussians.shape)}")
    key = (gaussians.log_scales.detach().cpu().double().sum(-1)
           + torch.nn.functional.logsigmoid(gaussians.opacity_logits.detach().cpu().double()))
    return torch.sort(-key, stable=True).indices


def encode_splat(gaussians: Gaussians, path="<memory>") -> np.ndarray:
    """Encode one set of Gaussians ``(N,)`` into ``.splat`` records (structured ``(N,)`` array)."""
    arrays = gaussians_to_numpy(gaussians, path)
    order = splat_order(gaussians).numpy()
    t = {k: torch.from_numpy(v[order]) for k, v in arrays.items()}
    n = t["means"].shape[0]

    # Same float32 operations as the reference converters, so the bytes match theirs.
    rgb = t["sh"][:, 0, :] * SH_C0 + 0.5
    alpha = torch.sigmoid(t["opacity_logits"]).unsqueeze(-1)
    rgba = (torch.cat([rgb, alpha], dim=-1) * 255).clamp(0, 255).to(torch.uint8)

    quats = t["quats"]
    norm = torch.linalg.norm(quats, dim=-1, keepdim=True)
    zero = (norm == 0).squeeze(-1)
    if zero.any():
        quats = quats.clone()
        quats[zero] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        norm = torch.linalg.norm(quats, dim=-1, keepdim=True)
    rot = (quats / norm * 128 + 128).clamp(0, 255).to(torch.uint8)

    scales = torch.exp(t["log_scales"])
    if not torch.isfinite(scales).all():
        raise SplatFileError(f"{os.fspath(path)}: cannot write, exp(log_scales) overflows float32")

    out = np.empty(n, dtype=SPLAT_DTYPE)
    out["position"] = t["means"].numpy()
    out["scale"] = scales.numpy()
    out["rgba"] = rgba.numpy()
    out["rot"] = rot.numpy()
    return out


def splat_sidecar(path) -> Path:
    """The metadata sidecar of a ``.splat`` file: ``NAME.splat.json`` beside it."""
    p = Path(os.fspath(path))
    return p.with_name(p.name + ".json")


def write_splat(path, gaussians: Gaussians, metadata: dict | None = None) -> None:
    """Write one set of Gaussians ``(N,)`` as an antimatter15 ``.splat`` file, atomically, and
    ``metadata`` (if given) as its JSON sidecar (:func:`splat_sidecar`).

    Only the SH DC term is kept.  Records are 32 bytes each, in :func:`splat_order`.  Raises
    :class:`SplatFileError` for batched input, NaN/inf values, or an OS error.
    """
    records = encode_splat(gaussians, path)
    atomic_write(path, [records.view(np.uint8)], error=SplatFileError)
    if metadata:
        write_splat_metadata(path, metadata)


def write_splat_metadata(path, metadata: dict) -> None:
    """Write ``metadata`` as the JSON sidecar of the ``.splat`` file ``path``, atomically."""
    text = json.dumps({str(k): str(v) for k, v in metadata.items()}, indent=1, ensure_ascii=False) + "\n"
    atomic_write(splat_sidecar(path), [text.encode("utf-8")], error=SplatFileError)


def read_splat_metadata(path) -> dict[str, str]:
    """The sidecar metadata of a ``.splat`` file; ``{}`` when it has none or it is not a JSON object."""
    try:
        data = json.loads(splat_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def read_splat(path) -> Gaussians:
    """Read an antimatter15 ``.splat`` file into Gaussians ``(N,)`` of SH degree 0 (float32, CPU).

    ``log_scales = log(scale)`` (a zero scale reads as the smallest normal float32),
    ``opacity_logits = logit(alpha)``, ``sh[:, 0] = (rgb - 0.5) / C0`` and ``quats`` the
    normalised decoded rotation, with uint8 values decoded to the middle of their truncation
    interval (see the module docstring).  Records keep their file order.

    Raises :class:`SplatFileError` for a missing file, a directory, a size that is not a multiple
    of 32 bytes, and NaN/inf or negative values in positions or scales.
    """
    name = check_regular_file(path)
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size % SPLAT_RECORD_BYTES:
                raise SplatFileError(
                    f"{name}: size mismatch: {size} bytes is not a multiple of the "
                    f"{SPLAT_RECORD_BYTES}-byte .splat record")
            data = f.read(size)
    except OSError as e:
        raise SplatFileError(f"{name}: cannot read ({e.strerror or e})") from None
    except MemoryError:
        raise SplatFileError(f"{name}: too large to load into memory") from None
    if len(data) != size:
        raise SplatFileError(f"{name}: file changed while reading")
    rec = np.frombuffer(data, dtype=SPLAT_DTYPE)
    n = rec.shape[0]

    position = rec["position"].astype(np.float32)
    scale = rec["scale"].astype(np.float32)
    for label, arr in (("position", position), ("scale", scale)):
        if not np.isfinite(arr).all():
            i = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
            raise SplatFileError(f"{name}: non-finite {label} (NaN/inf) in splat {i}")
    if (scale < 0).any():
        i = int(np.nonzero((scale < 0).any(axis=1))[0][0])
        raise SplatFileError(f"{name}: negative scale in splat {i}")

    log_scales = np.log(np.maximum(scale, np.finfo(np.float32).tiny))
    rgba = (rec["rgba"].astype(np.float32) + 0.5) / 255.0
    rgba = np.minimum(rgba, 1.0)
    alpha = np.clip(rgba[:, 3], _ALPHA_EPS, 1.0 - _ALPHA_EPS)
    q = (rec["rot"].astype(np.float32) - 127.5) / 128.0
    q /= np.linalg.norm(q, axis=1, keepdims=True)  # never zero: each component is off by 0.5/128

    return Gaussians(
        means=torch.from_numpy(np.ascontiguousarray(position)),
        quats=torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)),
        log_scales=torch.from_numpy(np.ascontiguousarray(log_scales, dtype=np.float32)),
        opacity_logits=torch.from_numpy((np.log(alpha) - np.log1p(-alpha)).astype(np.float32)),
        sh=torch.from_numpy(((rgba[:, :3] - 0.5) / SH_C0).astype(np.float32).reshape(n, 1, 3)),
    )
