"""INRIA 3DGS ``.ply`` reading and writing.

File layout (what :func:`write_ply` writes, byte for byte)::

    ply
    format binary_little_endian 1.0
    comment model: NAME           only when the caller gives metadata: one "comment KEY: VALUE"
    comment licence: SPDX-ID      line each (ASCII; :func:`read_ply_metadata` reads them back)
    element vertex N
    property float x            \
    property float y             | means
    property float z            /
    property float nx           \
    property float ny            | normals, always written as zero, ignored on reading
    property float nz           /
    property float f_dc_0       \
    property float f_dc_1        | sh[:, 0, :]
    property float f_dc_2       /
    property float f_rest_0     \
    ...                          | sh[:, 1:, :], channel-major (see below); absent for degree 0
    property float f_rest_M-1   /
    property float opacity        opacity_logits (logit of the opacity)
    property float scale_0..2     log_scales (natural log of the standard deviations)
    property float rot_0..3       quats, wxyz, not necessarily normalised
    end_header
    <N rows of float32, little endian>

``M = 3 * (K - 1)`` with ``K = (degree + 1) ** 2``.  The higher-order coefficients are stored
*channel-major*: ``f_rest_{c * (K - 1) + j} == sh[:, 1 + j, c]`` for channel ``c`` in 0..2 (R, G,
B) and ``j`` in ``0..K-2`` -- all red coefficients first, then green, then blue.  This is what the
original INRIA code, gsplat's ``export_splats`` and SuperSplat use.

Reading (:func:`read_ply`) is deliberately more permissive about *layout* than writing and strict
about *validity*:

* formats ``binary_little_endian``, ``binary_big_endian`` and ``ascii`` (version 1.0);
* any numeric property type (``char uchar short ushort int uint float double`` and the
  ``int8``/``uint8``/.../``float64`` aliases), cast to float32;
* properties in any order; normals and unknown properties are ignored; other elements before
  the ``vertex`` element are skipped if their rows have a fixed size, elements after it are
  ignored;
* SH degree from the number of ``f_rest_*`` properties (0, 9, 24, 45 for degree 0..3; any
  ``3 * ((d + 1) ** 2 - 1)`` is accepted); the indices must be exactly ``0..M-1``.

The header is parsed here (no plyfile), bounded to :data:`MAX_HEADER_BYTES`; the declared data
size is checked against the real file size *before* anything is allocated, and the body is read
with numpy using the validated count.  Every problem raises :class:`SplatFileError` whose message
starts with the file path.

A file with **zero vertices is valid**: it reads as an empty set (``N = 0``) with the SH degree the
header declares, and an empty set writes such a file.  An empty (0-byte) file is not a PLY file
and is an error.

The helpers :func:`check_regular_file` and :func:`gaussians_to_numpy` are shared with
:mod:`splatgen.core.io.splat`; files are written by :func:`splatgen.core.atomic.atomic_write`.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from splatgen.core.atomic import atomic_write
from splatgen.core.errors import SplatFileError
from splatgen.core.gaussians import Gaussians

__all__ = ["read_ply", "write_ply", "read_ply_metadata", "MAX_HEADER_BYTES"]

#: The header (from ``ply`` up to and including the ``end_header`` line) must fit in this many bytes.
MAX_HEADER_BYTES = 64 * 1024

_FORMATS = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": "ascii"}

_PLY_TYPES = {
    "char": "i1", "int8": "i1",
    "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4",
    "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}

_REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
_F_REST = re.compile(r"f_rest_(0|[1-9][0-9]*)")
_COUNT = re.compile(r"[0-9]{1,20}")


# ============================================================================ shared helpers
def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for an error message (headers may hold 64 KiB lines)."""
    return text if len(text) <= limit else text[:limit] + "..."


def check_regular_file(path) -> str:
    """Return ``str(path)`` if it names an existing regular file, else raise :class:`SplatFileError`.

    Checked with ``stat`` before opening so that a FIFO or device is never opened (which could
    block or stream forever).
    """
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise SplatFileError(f"{name}: file not found") from None
    except OSError as e:
        raise SplatFileError(f"{name}: cannot access file ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise SplatFileError(f"{name}: is a directory, not a splat file")
    if not stat.S_ISREG(st.st_mode):
        raise SplatFileError(f"{name}: not a regular file")
    return name


def gaussians_to_numpy(gaussians: Gaussians, path) -> dict[str, np.ndarray]:
    """A single set ``(N,)`` of Gaussians as C-contiguous float32 numpy arrays, checked finite.

    Returns ``means (N,3)``, ``quats (N,4)``, ``log_scales (N,3)``, ``opacity_logits (N,)``,
    ``sh (N,K,3)``.  Float32 input is passed through bit for bit; other dtypes are cast.
    """
    name = os.fspath(path)
    if not isinstance(gaussians, Gaussians):
        raise SplatFileError(f"{name}: cannot write {type(gaussians).__name__}, expected Gaussians")
    if len(gaussians.shape) != 1:
        raise SplatFileError(
            f"{name}: cannot write Gaussians of shape {tuple(gaussians.shape)}; "
            "a file holds one set of shape (N,) -- index the batch first")
    out = {}
    for key, t in gaussians.tensors().items():
        a = np.ascontiguousarray(t.detach().to(device="cpu", dtype=torch.float32).numpy())
        if not np.isfinite(a).all():
            bad = int((~np.isfinite(a.reshape(a.shape[0], -1))).any(axis=1).sum())
            raise SplatFileError(f"{name}: cannot write, Gaussians.{key} has non-finite values "
                                 f"(NaN or inf) in {bad} splat(s)")
        out[key] = a
    return out


# ============================================================================ header parsing
@dataclass
class _Property:
    name: str
    dtype: str | None        # numpy type code ('f4', ...) for scalars, None for lists
    is_list: bool = False


@dataclass
class _Element:
    name: str
    count: int
    properties: list[_Property] = field(default_factory=list)

    @property
    def has_list(self) -> bool:
        return any(p.is_list for p in self.properties)

    def row_size(self) -> int:
        """Bytes per row; only meaningful without list properties."""
        return sum(int(p.dtype[1]) for p in self.properties)


@dataclass
class _Header:
    format: str              # '<', '>' or 'ascii'
    elements: list[_Element]
    length: int              # bytes up to and including the end_header line
    comments: list[str] = field(default_factory=list)  # text after 'comment ' / 'obj_info ', in order


def _parse_header(buf: bytes, name: str) -> _Header:
    """Parse the PLY header at the start of ``buf`` (at most MAX_HEADER_BYTES + a little)."""
    def fail(msg: str, lineno: int | None = None):
        where = f" (header line {lineno})" if lineno is not None else ""
        raise SplatFileError(f"{name}: malformed PLY header{where}: {msg}")

    if not buf.startswith(b"ply"):
        shown = buf[:16]
        raise SplatFileError(f"{name}: not a PLY file (expected 'ply' magic, found {shown!r})")

    fmt: str | None = None
    elements: list[_Element] = []
    comments: list[str] = []
    pos = 0
    lineno = 0
    while True:
        nl = buf.find(b"\n", pos, MAX_HEADER_BYTES)
        if nl < 0:
            if len(buf) <= MAX_HEADER_BYTES:
                fail("file ends before 'end_header'")
            fail(f"no 'end_header' within the first {MAX_HEADER_BYTES} bytes")
        raw = buf[pos:nl]
        pos = nl + 1
        lineno += 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode("ascii")
        except UnicodeDecodeError:
            fail("contains non-ASCII bytes", lineno)
        if lineno == 1:
            if line != "ply":
                fail(f"first line must be 'ply', got {_short(line)!r}", lineno)
            continue
        tokens = line.split()
        if not tokens:
            fail("empty line", lineno)
        key = tokens[0]
        if key in ("comment", "obj_info"):
            comments.append(line[len(key):].strip())
            continue
        if key == "format":
            if fmt is not None:
                fail("second 'format' line", lineno)
            if elements:
                fail("'format' after an element", lineno)
            if len(tokens) != 3:
                fail(f"bad format line {_short(line)!r}", lineno)
            if tokens[1] not in _FORMATS or tokens[2] != "1.0":
                raise SplatFileError(f"{name}: unsupported PLY format {_short(' '.join(tokens[1:]))!r} "
                                     f"(supported: {', '.join(_FORMATS)}, version 1.0)")
            fmt = _FORMATS[tokens[1]]
        elif key == "element":
            if fmt is None:
                fail("'element' before 'format'", lineno)
            if len(tokens) != 3:
                fail(f"bad element line {_short(line)!r}", lineno)
            if not _COUNT.fullmatch(tokens[2]):
                fail(f"invalid element count {_short(tokens[2])!r}", lineno)
            if any(e.name == tokens[1] for e in elements):
                fail(f"duplicate element {_short(tokens[1])!r}", lineno)
            elements.append(_Element(tokens[1], int(tokens[2])))
        elif key == "property":
            if not elements:
                fail("'property' before any 'element'", lineno)
            el = elements[-1]
            if len(tokens) == 5 and tokens[1] == "list":
                if tokens[2] not in _PLY_TYPES or tokens[3] not in _PLY_TYPES:
                    fail(f"unknown type in {_short(line)!r}", lineno)
                prop = _Property(tokens[4], None, is_list=True)
            elif len(tokens) == 3:
                if tokens[1] not in _PLY_TYPES:
                    fail(f"unknown property type {_short(tokens[1])!r}", lineno)
                prop = _Property(tokens[2], _PLY_TYPES[tokens[1]])
            else:
                fail(f"bad property line {_short(line)!r}", lineno)
            if any(p.name == prop.name for p in el.properties):
                fail(f"duplicate property {_short(prop.name)!r} in element {_short(el.name)!r}", lineno)
            el.properties.append(prop)
        elif key == "end_header":
            if len(tokens) != 1:
                fail(f"bad end_header line {_short(line)!r}", lineno)
            if fmt is None:
                fail("no 'format' line", lineno)
            return _Header(fmt, elements, pos, comments)
        else:
            fail(f"unknown keyword {_short(key)!r}", lineno)


# ============================================================================ reading
def read_ply_metadata(path) -> dict[str, str]:
    """The ``comment KEY: VALUE`` lines of a ``.ply`` header as a dict (what :func:`write_ply` was
    given as ``metadata``); other comments are left out. :class:`SplatFileError` if the header is bad."""
    name = check_regular_file(path)
    try:
        with open(name, "rb") as f:
            header = _parse_header(f.read(MAX_HEADER_BYTES + 1), name)
    except OSError as e:
        raise SplatFileError(f"{name}: cannot read ({e.strerror or e})") from None
    found = {}
    for c in header.comments:
        key, sep, value = c.partition(":")
        if sep and key and " " not in key:
            found[key] = value.strip()
    return found


def read_ply(path) -> Gaussians:
    """Read an INRIA-layout 3DGS ``.ply`` file into a single set of :class:`Gaussians`.

    Returns float32 CPU tensors: ``means (N,3)``, ``quats (N,4)`` wxyz as stored,
    ``log_scales (N,3)``, ``opacity_logits (N,)``, ``sh (N,K,3)`` with ``sh[:,0]`` = ``f_dc`` and
    ``sh[:,1+j,c]`` = ``f_rest_{c*(K-1)+j}``.  Float32 files read bit-exactly.

    Raises :class:`SplatFileError` (message starts with the path) for anything unreadable:
    missing file, directory, empty file, wrong magic, malformed or oversized header, unsupported
    format, no ``vertex`` element, list properties in it, missing required properties, a bad
    ``f_rest`` set, a data size that does not match the header, truncated or extra data, bad
    ascii numbers, and NaN/inf in any property that is used.  Zero vertices are allowed.
    """
    name = check_regular_file(path)
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise SplatFileError(f"{name}: empty file, not a PLY file")
            head = f.read(MAX_HEADER_BYTES + 1)
            header = _parse_header(head, name)
            vertex, index, offset = _locate_vertex(header, name)
            columns, f_rest_names = _vertex_columns(vertex, name)
            f.seek(header.length)
            if header.format == "ascii":
                table = _read_ascii(f, size - header.length, header, index, name)
            else:
                table = _read_binary(f, size - header.length, header, index, offset, name)
        return _to_gaussians(table, columns, f_rest_names, vertex.count, name)
    except OSError as e:
        raise SplatFileError(f"{name}: cannot read ({e.strerror or e})") from None
    except MemoryError:
        raise SplatFileError(f"{name}: too large to load into memory ({size} bytes)") from None


def _locate_vertex(header: _Header, name: str) -> tuple[_Element, int, int]:
    """The vertex element, its index, and (binary) its byte offset from the end of the header."""
    offset = 0
    for i, el in enumerate(header.elements):
        if el.name == "vertex":
            lists = [p.name for p in el.properties if p.is_list]
            if lists:
                raise SplatFileError(f"{name}: list properties in the vertex element are not "
                                     f"supported ({_short(', '.join(lists))})")
            return el, i, offset
        if el.has_list and el.count > 0:
            raise SplatFileError(f"{name}: unsupported layout: element {_short(el.name)!r} with list "
                                 "properties precedes the 'vertex' element")
        if el.count:
            offset += el.count * el.row_size()
    found = _short(", ".join(repr(e.name) for e in header.elements) or "none", 200)
    raise SplatFileError(f"{name}: no 'vertex' element (elements: {found})")


def _vertex_columns(vertex: _Element, name: str) -> tuple[dict[str, int], list[str]]:
    """Map used property names to their column index; validate required and f_rest properties."""
    columns = {p.name: i for i, p in enumerate(vertex.properties)}
    missing = [p for p in _REQUIRED if p not in columns]
    if missing:
        hint = ""
        if "packed_position" in columns:
            hint = " (this is a PlayCanvas compressed PLY: load_splats or read_compressed_ply reads it)"
        raise SplatFileError(f"{name}: missing required vertex properties: "
                             f"{', '.join(missing)}{hint}")
    rest_idx = sorted(int(m.group(1)) for p in columns if (m := _F_REST.fullmatch(p)))
    m = len(rest_idx)
    if rest_idx != list(range(m)):
        raise SplatFileError(f"{name}: f_rest properties are not numbered 0..{m - 1} "
                             f"without gaps (found indices {rest_idx[:8]}{'...' if m > 8 else ''})")
    k = m // 3 + 1
    if m % 3 or math.isqrt(k) ** 2 != k:
        raise SplatFileError(f"{name}: {m} f_rest properties is not 3*((degree+1)^2-1) for any "
                             "SH degree (expected 0, 9, 24 or 45 for degree 0..3)")
    return columns, [f"f_rest_{i}" for i in range(m)]


def _read_binary(f, body_size: int, header: _Header, index: int, offset: int,
                 name: str) -> np.ndarray:
    """Validate sizes against the file, then read the vertex rows: an (N, P) array if all
    properties share one type, else an (N,) structured array."""
    vertex = header.elements[index]
    row = vertex.row_size()
    need = offset + vertex.count * row
    later = header.elements[index + 1:]
    exact = not any(e.has_list and e.count > 0 for e in later)
    total = need + sum(e.count * e.row_size() for e in later if not e.has_list)
    if body_size < need or (exact and body_size < total):
        raise SplatFileError(
            f"{name}: size mismatch, file truncated: the header declares {vertex.count} vertex rows "
            f"of {row} bytes ({vertex.count * row} bytes of vertex data)"
            + (f" after {offset} bytes of other elements" if offset else "")
            + f", but only {body_size} bytes follow the header")
    if exact and body_size > total:
        raise SplatFileError(f"{name}: size mismatch: {body_size - total} unexpected bytes after "
                             f"the {total} bytes of data the header declares")
    f.seek(offset, os.SEEK_CUR)
    nbytes = vertex.count * row
    data = f.read(nbytes)
    if len(data) != nbytes:  # the file shrank under us
        raise SplatFileError(f"{name}: file truncated while reading vertex data")
    types = {p.dtype for p in vertex.properties}
    if len(types) == 1:  # the usual case (all float): a plain (N, P) array, fast to slice
        flat = np.frombuffer(data, dtype=header.format + types.pop())
        return flat.reshape(vertex.count, len(vertex.properties))
    dtype = np.dtype([(f"p{i}", header.format + p.dtype) for i, p in enumerate(vertex.properties)])
    return np.frombuffer(data, dtype=dtype, count=vertex.count)


def _read_ascii(f, body_size: int, header: _Header, index: int, name: str) -> np.ndarray:
    """Read the ascii vertex rows as an (N, P) float64 array (one element instance per line)."""
    vertex = header.elements[index]
    # Every value takes at least one character plus one separator: a cheap lower bound on the
    # size, checked before reading or allocating anything.
    min_size = sum(e.count * len(e.properties) * 2 for e in header.elements[:index + 1]) - 1
    if body_size < min_size:
        raise SplatFileError(
            f"{name}: size mismatch, file truncated: the header declares {vertex.count} ascii "
            f"vertex rows of {len(vertex.properties)} values (at least {min_size} bytes), but only "
            f"{body_size} bytes follow the header")
    lines = (ln for ln in f.read().splitlines() if ln.strip())
    lineno = 0
    try:
        for el in header.elements[:index]:
            for _ in range(el.count):
                next(lines)
                lineno += 1
        nprop = len(vertex.properties)
        tokens: list[bytes] = []
        for i in range(vertex.count):
            parts = next(lines).split()
            lineno += 1
            if len(parts) != nprop:
                raise SplatFileError(f"{name}: ascii vertex {i} has {len(parts)} values, "
                                     f"expected {nprop}")
            tokens.extend(parts)
    except StopIteration:
        raise SplatFileError(f"{name}: file truncated: ascii data ends after {lineno} rows") from None
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError as e:
        raise SplatFileError(f"{name}: invalid number in ascii vertex data ({_short(str(e), 100)})") from None
    return values.reshape(vertex.count, len(vertex.properties))


def _to_gaussians(table: np.ndarray, columns: dict[str, int], f_rest_names: Sequence[str],
                  n: int, name: str) -> Gaussians:
    def block(names: Sequence[str]) -> np.ndarray:
        # casts big endian, integers and doubles to native float32 (bit-exact for float32)
        with np.errstate(over="ignore", invalid="ignore"):
            if table.dtype.names is None:       # (N, P): ascii float64, or one binary type
                idx = [columns[p] for p in names]
                if idx and idx == list(range(idx[0], idx[0] + len(idx))):
                    picked = table[:, idx[0]:idx[0] + len(idx)]     # a view (INRIA layout)
                else:
                    picked = np.take(table, idx, axis=1)
                out = np.array(picked, dtype=np.float32, order="C")
            else:                                # binary, mixed types: structured (N,)
                out = np.empty((n, len(names)), dtype=np.float32)
                for j, p in enumerate(names):
                    out[:, j] = table[f"p{columns[p]}"]
        finite = np.isfinite(out)
        if not finite.all():
            bad_rows, bad_cols = np.nonzero(~finite)
            prop = names[int(bad_cols[0])]
            raise SplatFileError(
                f"{name}: {len(bad_rows)} non-finite value(s) (NaN/inf, or out of float32 "
                f"range); first in property {prop!r} of vertex {int(bad_rows[0])}")
        return out

    means = block(("x", "y", "z"))
    f_dc = block(("f_dc_0", "f_dc_1", "f_dc_2"))
    f_rest = block(f_rest_names)
    opacity = block(("opacity",))
    log_scales = block(("scale_0", "scale_1", "scale_2"))
    quats = block(("rot_0", "rot_1", "rot_2", "rot_3"))

    k = len(f_rest_names) // 3 + 1
    sh = np.empty((n, k, 3), dtype=np.float32)
    sh[:, 0, :] = f_dc
    # channel-major (N, 3, K-1) -> (N, K-1, 3)
    sh[:, 1:, :] = f_rest.reshape(n, 3, k - 1).transpose(0, 2, 1)
    return Gaussians(
        means=torch.from_numpy(means),
        quats=torch.from_numpy(quats),
        log_scales=torch.from_numpy(log_scales),
        opacity_logits=torch.from_numpy(np.ascontiguousarray(opacity[:, 0])),
        sh=torch.from_numpy(sh),
    )


# ============================================================================ writing
def metadata_comments(metadata: dict | None) -> list[str]:
    """``{"model": "x", ...}`` → header comment texts ``"model: x"``: one line each, ASCII (other
    characters as ``\\uXXXX``), keys without spaces or colons."""
    lines = []
    for key, value in (metadata or {}).items():
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", str(key)) or "_"
        value = " ".join(str(value).split()).encode("ascii", "backslashreplace").decode("ascii")
        lines.append(f"{key}: {value}")
    return lines


#: Property names of the INRIA layout beside the ``f_rest_*`` set (per-splat extras may not reuse them).
_LAYOUT_NAMES = frozenset(["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0",
                           "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def ply_header(num: int, sh_degree: int, metadata: dict | None = None, extra: list[str] | None = None) -> bytes:
    """The exact header :func:`write_ply` writes for ``num`` splats of SH degree ``sh_degree``
    (and ``metadata`` as ``comment KEY: VALUE`` lines after the format line, ``extra`` float
    properties after ``rot_3``)."""
    k = (sh_degree + 1) ** 2
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * (k - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3", *(extra or [])]
    lines = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in metadata_comments(metadata)),
             f"element vertex {num}"]
    lines += [f"property float {p}" for p in names]
    lines += ["end_header"]
    return ("\n".join(lines) + "\n").encode("ascii")


def write_ply(path, gaussians: Gaussians, metadata: dict | None = None, extras: dict | None = None) -> None:
    """Write one set of Gaussians ``(N,)`` as an INRIA 3DGS ``.ply`` (see module docstring);
    ``metadata`` (e.g. ``{"model": ..., "licence": ...}``) goes into header comments; ``extras``
    (property name → ``(N,)`` values) become float properties after ``rot_3`` (readers that do not
    know them skip them, as :func:`read_ply` does).

    binary_little_endian float32 with properties ``x y z nx ny nz f_dc_0..2 f_rest_* opacity
    scale_0..2 rot_0..3`` (normals zero, f_rest channel-major), written atomically.  Float32
    values are stored bit for bit; other float dtypes are cast to float32.  Raises
    :class:`SplatFileError` for batched input, NaN/inf values or an OS error.
    """
    arrays = gaussians_to_numpy(gaussians, path)
    sh = arrays["sh"]
    n, k, _ = sh.shape
    extra = _extra_columns(extras, n, path)
    data = np.empty((n, 6 + 3 * k + 8 + len(extra)), dtype="<f4")
    data[:, 0:3] = arrays["means"]
    data[:, 3:6] = 0.0
    data[:, 6:9] = sh[:, 0, :]
    data[:, 9:9 + 3 * (k - 1)] = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))
    c = 9 + 3 * (k - 1)
    data[:, c] = arrays["opacity_logits"]
    data[:, c + 1:c + 4] = arrays["log_scales"]
    data[:, c + 4:c + 8] = arrays["quats"]
    for j, values in enumerate(extra.values()):
        data[:, c + 8 + j] = values
    header = ply_header(n, math.isqrt(k) - 1, metadata, extra=list(extra))
    atomic_write(path, [header, data.reshape(-1).view(np.uint8)], error=SplatFileError)


def _extra_columns(extras: dict | None, n: int, path) -> dict[str, np.ndarray]:
    """Checked per-splat extras: names of letters, digits and ``_`` not clashing with the layout's,
    each ``(n,)`` finite float32."""
    import re

    out = {}
    for name, values in (extras or {}).items():
        v = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float32).reshape(-1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", str(name)) or name in _LAYOUT_NAMES \
                or str(name).startswith("f_rest_"):
            raise SplatFileError(f"{os.fspath(path)}: bad per-splat property name {str(name)[:40]!r}")
        if v.shape != (n,) or not np.isfinite(v).all():
            raise SplatFileError(f"{os.fspath(path)}: per-splat property {name!r} needs {n} finite values")
        out[str(name)] = v
    return out
