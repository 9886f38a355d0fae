"""Splat file I/O: INRIA 3DGS ``.ply`` (primary) and antimatter15 ``.splat`` (export).

All functions take and return a single set of :class:`~splatgen.core.gaussians.Gaussians` of
shape ``(N,)`` with raw parameters (see :mod:`splatgen.core.gaussians`): ``means (N,3)``,
``quats (N,4)`` wxyz, ``log_scales (N,3)``, ``opacity_logits (N,)``, ``sh (N,K,3)`` with
``sh[:, 0]`` the DC term (RGB = 0.5 + C0 * f_dc).  Readers return float32 CPU tensors; writers
accept any device/float dtype, cast to float32, and write atomically (:mod:`splatgen.core.atomic`:
temporary file in the same folder + ``os.replace``).  Every problem with a file -- unreadable,
malformed, hostile, or not writable -- raises :class:`~splatgen.core.errors.SplatFileError` whose
message names the file.

* ``.ply``: :func:`read_ply` / :func:`write_ply`, bit-exact round trip for float32, any SH
  degree (f_rest channel-major as in the INRIA code), see :mod:`splatgen.core.io.ply`.
* ``.splat``: :func:`read_splat` / :func:`write_splat`, 32 bytes a splat, degree 0 only,
  quantised colour/opacity/rotation, sorted by importance, see :mod:`splatgen.core.io.splat`.
"""

from __future__ import annotations

import os

from splatgen.core.errors import SplatFileError, SplatgenWarning
from splatgen.core.gaussians import Gaussians
from splatgen.core.io.ply import MAX_HEADER_BYTES, read_ply, write_ply
from splatgen.core.io.splat import read_splat, splat_order, write_splat

__all__ = [
    "load_splats", "save_splats", "read_ply", "write_ply", "read_splat", "write_splat",
    "splat_order", "SPLAT_EXTENSIONS", "MAX_HEADER_BYTES",
]

#: Supported file extensions (lower case) and their format.
SPLAT_EXTENSIONS = {".ply": "ply", ".splat": "splat"}


def _format_of(path) -> str:
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower()
    try:
        return SPLAT_EXTENSIONS[ext]
    except KeyError:
        raise SplatFileError(
            f"{name}: unsupported splat file extension {ext or '(none)'!r} "
            f"(expected {' or '.join(SPLAT_EXTENSIONS)})") from None


#: A file is suspicious when at least this fraction of its splats is larger (largest standard
#: deviation) than the whole object (the radius of the splat centres' bounding box).
OVERSIZED_FRACTION = 0.9


def oversized_splats(gaussians: Gaussians) -> str | None:
    """Why ``gaussians`` ``(N,)`` will render as a blur or blank, or None: when nearly all splats
    (:data:`OVERSIZED_FRACTION`) are larger than the object they make up (scales written linear
    instead of log, or in other units, usually)."""
    import torch

    n = gaussians.num_gaussians
    if n == 0:
        return None
    means = gaussians.means.detach().reshape(-1, 3).float()
    sample = means if n <= 100_000 else means[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:100_000]]
    lo, hi = (torch.quantile(sample, q, dim=0) for q in (0.01, 0.99)) if n > 20 else (means.min(0).values,
                                                                                      means.max(0).values)
    radius = max(float((hi - lo).norm()) / 2, 1e-3)
    size = gaussians.log_scales.detach().reshape(-1, 3).float().max(-1).values
    big = int((size > torch.log(torch.tensor(radius))).sum())
    if big < OVERSIZED_FRACTION * n:
        return None
    return (f"{big} of {n} splats are larger than the whole object (radius {radius:.3g}; median splat size "
            f"{float(size.median().exp()):.3g}): it will render as a blur or blank; are its scales log values?")


def load_splats(path) -> Gaussians:
    """Read a ``.ply`` or ``.splat`` file (chosen by extension, case-insensitive) → Gaussians ``(N,)``.

    A file whose splats are nearly all larger than the object (:func:`oversized_splats`) loads, with
    a :class:`~splatgen.core.errors.SplatgenWarning`: it renders as a blur or blank."""
    import warnings

    gaussians = read_ply(path) if _format_of(path) == "ply" else read_splat(path)
    problem = oversized_splats(gaussians)
    if problem:
        warnings.warn(f"{os.fspath(path)}: {problem}", SplatgenWarning, stacklevel=2)
    return gaussians


def save_splats(path, gaussians: Gaussians, metadata: dict | None = None) -> None:
    """Write Gaussians ``(N,)`` as ``.ply`` or ``.splat`` (chosen by extension), atomically;
    ``metadata`` (model, licence) goes into the ``.ply`` header comments or the ``.splat`` sidecar."""
    if _format_of(path) == "ply":
        write_ply(path, gaussians, metadata)
    else:
        write_splat(path, gaussians, metadata)
