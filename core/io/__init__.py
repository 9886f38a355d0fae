"""Splat file I/O: INRIA 3DGS ``.ply`` (primary), PlayCanvas ``.compressed.ply``, Niantic ``.spz``,
glTF ``.glb`` (``KHR_gaussian_splatting``) and antimatter15 ``.splat``.

All functions take and return a single set of :class:`~splatgen.core.gaussians.Gaussians` of
shape ``(N,)`` with raw parameters (see :mod:`splatgen.core.gaussians`): ``means (N,3)``,
``quats (N,4)`` wxyz, ``log_scales (N,3)``, ``opacity_logits (N,)``, ``sh (N,K,3)`` with
``sh[:, 0]`` the DC term (RGB = 0.5 + C0 * f_dc).  Readers return float32 CPU tensors; writers
accept any device/float dtype, cast to float32, and write atomically (:mod:`splatgen.core.atomic`:
temporary file in the same folder + ``os.replace``).  Every problem with a file -- unreadable,
malformed, hostile, or not writable -- raises :class:`~splatgen.core.errors.SplatFileError` whose
message names the file; the compressed formats' readers bound every count before allocating
(:mod:`splatgen.core.io.limits`).

:data:`SPLAT_FORMATS` is the one table of formats (name → suffix, reader, writer); the file's
suffix picks the format (longest match, case-insensitive), and a ``.ply`` whose header is a
compressed PLY's reads as one.

* ``ply``: bit-exact, any SH degree, :mod:`splatgen.core.io.ply`;
* ``compressed-ply``: 16 bytes a splat + SH bytes, quantised per 256 splats, :mod:`.compressed_ply`;
* ``spz``: version 4 (zstd), about 14 bytes a splat at degree 0, :mod:`.spz`;
* ``glb``: float attributes, any SH degree, :mod:`.gltf`;
* ``splat``: 32 bytes a splat, degree 0, sorted by importance, :mod:`.splat`.

:func:`save_splats` / :func:`load_splats` store the PLY family in the frame the ecosystem's readers
expect (180° about Z from splatgen's Y-up frame; :mod:`.frames`); the per-format ``read_*`` /
``write_*`` functions take the file's own coordinates as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from splatgen.core.errors import SplatFileError, SplatgenWarning
from splatgen.core.gaussians import Gaussians
from splatgen.core.io.compressed_ply import is_compressed_ply, read_compressed_ply, write_compressed_ply
from splatgen.core.io.gltf import read_glb, write_glb
from splatgen.core.io.frames import FRAME_KEY, MARKED, PLY_FAMILY, PLY_FRAME, turn_about_z
from splatgen.core.io.ply import MAX_HEADER_BYTES, read_ply, read_ply_metadata, write_ply
from splatgen.core.io.splat import read_splat, splat_order, write_splat
from splatgen.core.io.spz import read_spz, write_spz

__all__ = [
    "load_splats", "save_splats", "read_ply", "write_ply", "read_splat", "write_splat",
    "read_compressed_ply", "write_compressed_ply", "read_spz", "write_spz", "read_glb", "write_glb",
    "splat_order", "SPLAT_FORMATS", "SPLAT_EXTENSIONS", "SplatFormat", "splat_format", "MAX_HEADER_BYTES",
]


@dataclass(frozen=True)
class SplatFormat:
    """One splat file format: ``name`` (as ``--format`` takes it), file ``suffix``, a ``label`` for file
    dialogs, ``read(path) → Gaussians`` and ``write(path, gaussians, metadata)`` (with ``extras=`` too
    where ``per_splat_extras``: named ``(N,)`` float values stored per splat)."""

    name: str
    suffix: str
    label: str
    read: Callable
    write: Callable
    per_splat_extras: bool = False


#: Every splat format, by name.
SPLAT_FORMATS: dict[str, SplatFormat] = {f.name: f for f in (
    SplatFormat("ply", ".ply", "Gaussian splats, INRIA 3DGS", read_ply, write_ply, per_splat_extras=True),
    SplatFormat("compressed-ply", ".compressed.ply", "Gaussian splats, PlayCanvas compressed PLY",
                read_compressed_ply, write_compressed_ply),
    SplatFormat("spz", ".spz", "Gaussian splats, Niantic SPZ", read_spz, write_spz),
    SplatFormat("glb", ".glb", "Gaussian splats, glTF KHR_gaussian_splatting", read_glb, write_glb,
                per_splat_extras=True),
    SplatFormat("splat", ".splat", "Gaussian splats, antimatter15", read_splat, write_splat),
)}

#: Supported file suffixes (lower case) and their format's name.
SPLAT_EXTENSIONS = {f.suffix: f.name for f in SPLAT_FORMATS.values()}


def splat_format(path) -> SplatFormat:
    """The format of ``path`` by its suffix (the longest that matches, case-insensitive)."""
    name = os.fspath(path)
    lower = os.path.basename(name).lower()
    for suffix in sorted(SPLAT_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return SPLAT_FORMATS[SPLAT_EXTENSIONS[suffix]]
    ext = os.path.splitext(name)[1].lower()
    raise SplatFileError(
        f"{name}: unsupported splat file extension {ext or '(none)'!r} "
        f"(expected {', '.join(SPLAT_EXTENSIONS)})")


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
    """Read any splat file of :data:`SPLAT_FORMATS` (chosen by suffix; a ``.ply`` holding a compressed
    PLY reads as one) → Gaussians ``(N,)``.

    A file whose splats are nearly all larger than the object (:func:`oversized_splats`) loads, with
    a :class:`~splatgen.core.errors.SplatgenWarning`: it renders as a blur or blank."""
    import warnings

    fmt = splat_format(path)
    if fmt.name == "ply" and is_compressed_ply(path):
        fmt = SPLAT_FORMATS["compressed-ply"]
    gaussians = fmt.read(path)
    if fmt.name in PLY_FAMILY and (fmt.name not in MARKED or read_ply_metadata(path).get(FRAME_KEY) == PLY_FRAME):
        gaussians = turn_about_z(gaussians, back=True)  # the PLY frame → splatgen's (see .frames)
    problem = oversized_splats(gaussians)
    if problem:
        warnings.warn(f"{os.fspath(path)}: {problem}", SplatgenWarning, stacklevel=2)
    return gaussians


def save_splats(path, gaussians: Gaussians, metadata: dict | None = None, format: str | None = None,
                extras: dict | None = None) -> None:
    """Write Gaussians ``(N,)`` in ``format`` (a name of :data:`SPLAT_FORMATS`; default: by ``path``'s
    suffix), atomically; ``metadata`` (model, licence) goes where the format keeps it (``.ply`` header
    comments, glTF ``asset.extras``, a ``NAME.json`` sidecar for ``.splat`` / ``.spz``); ``extras``
    (name → ``(N,)`` values, e.g. :mod:`splatgen.core.provenance`'s) go per splat into the formats that
    keep them (``.ply`` properties, ``.glb`` ``_NAME`` attributes) and are left out of the others."""
    fmt = splat_format(path) if format is None else SPLAT_FORMATS[format]
    if fmt.name in PLY_FAMILY:  # stored as the ecosystem's readers expect them (see .frames)
        gaussians = turn_about_z(gaussians)
        if fmt.name in MARKED:
            metadata = {**(metadata or {}), FRAME_KEY: PLY_FRAME}
    if extras and fmt.per_splat_extras:
        fmt.write(path, gaussians, metadata, extras=extras)
    else:
        fmt.write(path, gaussians, metadata)
