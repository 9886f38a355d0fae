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

from splatgen.core.errors import SplatFileError
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


def load_splats(path) -> Gaussians:
    """Read a ``.ply`` or ``.splat`` file (chosen by extension, case-insensitive) → Gaussians ``(N,)``."""
    return read_ply(path) if _format_of(path) == "ply" else read_splat(path)


def save_splats(path, gaussians: Gaussians) -> None:
    """Write Gaussians ``(N,)`` as ``.ply`` or ``.splat`` (chosen by extension), atomically."""
    if _format_of(path) == "ply":
        write_ply(path, gaussians)
    else:
        write_splat(path, gaussians)
