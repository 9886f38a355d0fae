"""PlayCanvas compressed PLY reading and writing (``.compressed.ply``, SuperSplat's own format).

An ordinary binary PLY whose elements hold quantised splats, in blocks of 256::

    element chunk C          C = ceil(N / 256) rows of 18 float: min_x min_y min_z max_x max_y max_z,
                             min_scale_x..z max_scale_x..z (log scales, clamped to ±20),
                             min_r min_g min_b max_r max_g max_b (RGB = 0.5 + C0 · f_dc)
    element vertex N         4 uint a splat:
        packed_position      x 11 bits | y 10 bits | z 11 bits, each lerped between its chunk's bounds
        packed_rotation      2-bit index of the largest |component| of the unit wxyz quaternion, then
                             the other three as 10-bit unorm of c · √½ + ½ (sign made positive)
        packed_scale         log scales, 11/10/11 bits between the chunk's scale bounds
        packed_color         R G B 8 bits each between the chunk's colour bounds, then opacity 8 bits
    element sh N             (degree > 0 only) 3 · ((d+1)² - 1) uchar f_rest_*, INRIA channel-major
                             order, trunc((f / 8 + 0.5) · 256)

Quantisation and rounding follow ``@playcanvas/splat-transform``'s writer and reader exactly; splats
are written in a Morton order (:func:`compressed_ply_order`) so each chunk's bounding box is small.
Older files whose chunks lack the colour bounds (12 floats) are read too (colour then 0..1 unorm).
Written by hand: the only Python package that writes this format (PyPI ``gsply``) brings numba and
llvmlite and trusts the header's counts; this is a few numpy lines, and the PLY header parser and its
checks are :mod:`splatgen.core.io.ply`'s. Coordinates are stored as given (no axis change).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from splatgen.core.atomic import atomic_write
from splatgen.core.errors import SplatFileError
from splatgen.core.gaussians import SH_C0, Gaussians
from splatgen.core.io.limits import check_splat_count
from splatgen.core.io.order import morton_order
from splatgen.core.io.ply import (
    MAX_HEADER_BYTES, _parse_header, check_regular_file, gaussians_to_numpy, metadata_comments,
)

__all__ = ["read_compressed_ply", "write_compressed_ply", "compressed_ply_order", "is_compressed_ply",
           "CHUNK_SIZE"]

#: Splats per chunk (one row of quantisation bounds each).
CHUNK_SIZE = 256
_CHUNK_PROPS = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z",
                "min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
_VERTEX_PROPS = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
_SCALE_CLAMP = 20.0
_ROT_NORM = math.sqrt(2) * 0.5
_ALPHA_EPS = 1e-6


# ============================================================================ writing
def compressed_ply_order(gaussians: Gaussians) -> torch.Tensor:
    """Indices ``(N,)``: the order :func:`write_compressed_ply` stores the splats of ``gaussians`` in."""
    return torch.from_numpy(morton_order(gaussians.means.detach().cpu().float().numpy()))


def _chunk_bounds(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk min and max ``(C, D)`` of ``values (N, D)``."""
    c = -(-n // CHUNK_SIZE)
    pad = np.concatenate([values, np.repeat(values[-1:], c * CHUNK_SIZE - n, axis=0)])  # repeat the last
    blocks = pad.reshape(c, CHUNK_SIZE, -1)
    return blocks.min(axis=1), blocks.max(axis=1)


def _normalize(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = hi - lo
    t = np.where(span < 1e-5, 0.0, (x - lo) / np.where(span == 0, 1.0, span))
    return np.where(x <= lo, 0.0, np.where(x >= hi, 1.0, t))


def _unorm(v: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(v * top + 0.5), 0, top).astype(np.uint32)


def _pack_111011(t: np.ndarray) -> np.ndarray:
    return (_unorm(t[:, 0], 11) << 21) | (_unorm(t[:, 1], 10) << 11) | _unorm(t[:, 2], 11)


def _pack_rotation(quats: np.ndarray) -> np.ndarray:
    q = quats.astype(np.float64)
    norm = np.sqrt((q * q).sum(axis=1, keepdims=True))
    q = np.where(norm == 0, np.array([1.0, 0, 0, 0]), q * (1 / np.where(norm == 0, 1, norm)))
    largest = np.argmax(np.abs(q), axis=1)
    q = np.where(q[np.arange(len(q)), largest][:, None] < 0, -q, q)
    out = largest.astype(np.uint32)
    for i in range(4):
        out = np.where(largest != i, (out << 10) | _unorm(q[:, i] * _ROT_NORM + 0.5, 10), out)
    return out


def compressed_ply_bytes(gaussians: Gaussians, metadata: dict | None = None, path="<memory>") -> bytes:
    """The content of a compressed PLY of ``gaussians`` ``(N,)`` (see the module docstring)."""
    a = gaussians_to_numpy(gaussians, path)
    n, k, _ = a["sh"].shape
    check_splat_count(n, os.fspath(path))
    order = morton_order(a["means"])
    a = {key: v[order].astype(np.float64) for key, v in a.items()}
    rest = 3 * (k - 1)
    c = -(-n // CHUNK_SIZE)
    lines = ["ply", "format binary_little_endian 1.0", *(f"comment {m}" for m in metadata_comments(metadata)),
             f"element chunk {c}", *(f"property float {p}" for p in _CHUNK_PROPS),
             f"element vertex {n}", *(f"property uint {p}" for p in _VERTEX_PROPS)]
    if rest:
        lines += [f"element sh {n}", *(f"property uchar f_rest_{i}" for i in range(rest))]
    header = ("\n".join(lines + ["end_header"]) + "\n").encode("ascii")
    if n == 0:
        return header
    rgb = (a["sh"][:, 0, :] * SH_C0 + 0.5).astype(np.float32).astype(np.float64)   # float32, as splat-transform
    log_scales = a["log_scales"]
    bounds = []
    for values, clamp in ((a["means"], None), (log_scales, _SCALE_CLAMP), (rgb, None)):
        lo, hi = _chunk_bounds(values, n)
        if clamp is not None:
            lo, hi = np.clip(lo, -clamp, clamp), np.clip(hi, -clamp, clamp)
        bounds.append((lo.astype(np.float32).astype(np.float64), hi.astype(np.float32).astype(np.float64)))
    chunk_of = np.arange(n) // CHUNK_SIZE
    packed = np.empty((n, 4), dtype="<u4")
    (plo, phi), (slo, shi), (clo, chi) = bounds
    packed[:, 0] = _pack_111011(_normalize(a["means"], plo[chunk_of], phi[chunk_of]))
    packed[:, 1] = _pack_rotation(a["quats"])
    packed[:, 2] = _pack_111011(_normalize(log_scales, slo[chunk_of], shi[chunk_of]))
    with np.errstate(over="ignore"):
        alpha = 1.0 / (1.0 + np.exp(-a["opacity_logits"]))
    col = _normalize(rgb, clo[chunk_of], chi[chunk_of])
    packed[:, 3] = ((_unorm(col[:, 0], 8) << 24) | (_unorm(col[:, 1], 8) << 16) | (_unorm(col[:, 2], 8) << 8)
                    | _unorm(alpha, 8))
    chunks = np.concatenate([plo, phi, slo, shi, clo, chi], axis=1).astype("<f4")
    parts = [header, chunks.tobytes(), packed.tobytes()]
    if rest:
        f_rest = a["sh"][:, 1:, :].transpose(0, 2, 1).reshape(n, rest)          # channel-major
        parts.append(np.clip(np.trunc((f_rest / 8 + 0.5) * 256), 0, 255).astype(np.uint8).tobytes())
    return b"".join(parts)


def write_compressed_ply(path, gaussians: Gaussians, metadata: dict | None = None) -> None:
    """Write one set of Gaussians ``(N,)`` as a PlayCanvas compressed PLY, atomically, in
    :func:`compressed_ply_order`; ``metadata`` goes into ``comment KEY: VALUE`` header lines.
    Raises :class:`SplatFileError` for batched or non-finite input or an OS error."""
    atomic_write(path, [compressed_ply_bytes(gaussians, metadata, path)], error=SplatFileError)


# ============================================================================ reading
def _read_header(path) -> tuple[str, object, bytes]:
    name = check_regular_file(path)
    try:
        with open(name, "rb") as f:
            head = f.read(MAX_HEADER_BYTES + 1)
    except OSError as e:
        raise SplatFileError(f"{name}: cannot read ({e.strerror or e})") from None
    if not head:
        raise SplatFileError(f"{name}: empty file, not a PLY file")
    return name, _parse_header(head, name), head


def is_compressed_ply(path) -> bool:
    """Whether the PLY file ``path`` is a compressed PLY (a ``vertex`` element of ``packed_*`` properties)."""
    _, header, _ = _read_header(path)
    return any(e.name == "vertex" and any(p.name == "packed_position" for p in e.properties)
               for e in header.elements)


def _layout(header, name: str):
    """``(chunks, vertices, sh)`` elements, checked against the layout this format allows."""
    if header.format != "<":
        raise SplatFileError(f"{name}: a compressed PLY must be binary_little_endian")
    els = {e.name: e for e in header.elements}
    order = [e.name for e in header.elements]
    if order not in (["chunk", "vertex"], ["chunk", "vertex", "sh"]):
        raise SplatFileError(f"{name}: compressed PLY elements {order[:6]} are not 'chunk', 'vertex'[, 'sh']")
    chunk, vertex, sh = els["chunk"], els["vertex"], els.get("sh")
    names = [p.name for p in chunk.properties]
    if names not in (list(_CHUNK_PROPS), list(_CHUNK_PROPS[:12])) or any(p.dtype != "f4" for p in chunk.properties):
        raise SplatFileError(f"{name}: compressed PLY chunk properties are not the 12 or 18 floats of the format")
    if [p.name for p in vertex.properties] != list(_VERTEX_PROPS) or any(p.dtype != "u4" for p in vertex.properties):
        raise SplatFileError(f"{name}: compressed PLY vertex properties are not uint {' '.join(_VERTEX_PROPS)}")
    n = check_splat_count(vertex.count, name)
    if chunk.count != -(-n // CHUNK_SIZE):
        raise SplatFileError(f"{name}: {chunk.count} chunks for {n} splats; the format has {-(-n // CHUNK_SIZE)}")
    rest = 0
    if sh is not None:
        rest = len(sh.properties)
        k = rest // 3 + 1
        if (sh.count != n or [p.name for p in sh.properties] != [f"f_rest_{i}" for i in range(rest)]
                or any(p.dtype != "u1" for p in sh.properties) or rest % 3 or math.isqrt(k) ** 2 != k or k > 16):
            raise SplatFileError(f"{name}: compressed PLY 'sh' element is not {n} rows of uchar f_rest_0.. "
                                 "(9, 24 or 45 of them)")
    return chunk, n, rest


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1 - t) + hi * t


def read_compressed_ply(path) -> Gaussians:
    """Read a PlayCanvas compressed PLY into Gaussians ``(N,)`` (float32, CPU, file order), decoded
    as splat-transform decodes it. The header's counts are checked against the file's size before
    the body is read; any problem raises :class:`SplatFileError` naming the file."""
    name, header, _ = _read_header(path)
    chunk, n, rest = _layout(header, name)
    sizes = [chunk.count * 4 * len(chunk.properties), n * 16, n * rest]
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            body = size - header.length
            if body != sum(sizes):
                raise SplatFileError(f"{name}: size mismatch: the header declares {sum(sizes):,} bytes of data "
                                     f"({n:,} splats), {body:,} follow it")
            f.seek(header.length)
            data = f.read(sum(sizes))
    except OSError as e:
        raise SplatFileError(f"{name}: cannot read ({e.strerror or e})") from None
    if len(data) != sum(sizes):
        raise SplatFileError(f"{name}: file changed while reading")
    bounds = np.frombuffer(data, "<f4", count=sizes[0] // 4).reshape(chunk.count, -1).astype(np.float64)
    if not np.isfinite(bounds).all():
        raise SplatFileError(f"{name}: non-finite quantisation bounds in the chunk element")
    v = np.frombuffer(data, "<u4", count=n * 4, offset=sizes[0]).reshape(n, 4)
    ci = np.arange(n) // CHUNK_SIZE
    b = bounds[ci]

    def unorm(x, shift, bits):
        return ((x >> shift) & ((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)

    def unpack_111011(x, lo, hi):
        t = np.stack([unorm(x, 21, 11), unorm(x, 11, 10), unorm(x, 0, 11)], axis=1)
        return _lerp(lo, hi, t)

    means = unpack_111011(v[:, 0], b[:, 0:3], b[:, 3:6])
    log_scales = unpack_111011(v[:, 2], b[:, 6:9], b[:, 9:12])
    pr = v[:, 1]
    three = np.stack([(unorm(pr, s, 10) - 0.5) / _ROT_NORM for s in (20, 10, 0)], axis=1)
    largest = (pr >> 30).astype(np.int64)
    quats = np.empty((n, 4))
    rows = np.arange(n)
    slots = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    for t in range(3):
        quats[rows, slots[:, t]] = three[:, t]
    quats[rows, largest] = np.sqrt(np.maximum(0, 1 - (three * three).sum(1)))
    pc = v[:, 3]
    col = np.stack([unorm(pc, 24, 8), unorm(pc, 16, 8), unorm(pc, 8, 8)], axis=1)
    if len(chunk.properties) == 18:
        col = _lerp(b[:, 12:15], b[:, 15:18], col)
    alpha = np.clip(unorm(pc, 0, 8), _ALPHA_EPS, 1 - _ALPHA_EPS)
    k = rest // 3 + 1
    sh = np.empty((n, k, 3), np.float32)
    sh[:, 0] = (col - 0.5) / SH_C0
    if rest:
        raw = np.frombuffer(data, np.uint8, count=n * rest, offset=sizes[0] + sizes[1]).reshape(n, rest)
        nrm = np.where(raw == 0, 0.0, np.where(raw == 255, 1.0, (raw + 0.5) / 256))
        sh[:, 1:] = ((nrm - 0.5) * 8).reshape(n, 3, k - 1).transpose(0, 2, 1)
    return Gaussians(
        means=torch.from_numpy(means.astype(np.float32)),
        quats=torch.from_numpy(quats.astype(np.float32)),
        log_scales=torch.from_numpy(log_scales.astype(np.float32)),
        opacity_logits=torch.from_numpy((np.log(alpha) - np.log1p(-alpha)).astype(np.float32)),
        sh=torch.from_numpy(sh),
    )
