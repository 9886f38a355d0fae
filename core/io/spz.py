"""Niantic SPZ reading and writing (``.spz``).

**Version written: 4** (a 32-byte plaintext header, a table of contents, then one zstd stream per
attribute). Why 4 and not 3 (one gzip stream): it is what Niantic's reference library and
``@playcanvas/splat-transform`` (SuperSplat's converter) write by default today; it is smaller (per
stream zstd beats one deflate stream by 3-5 % on splatgen's samples, so a v3 file could not be as
small as splat-transform's own v4); and the readers that matter read it: the reference library,
splat-transform (v2–v4) and what is built on them. Viewers that still only inflate gzip
(v2/v3) need ``write_spz(..., version=3)``, which this module also writes (same bytes, one gzip
stream). :func:`read_spz` reads versions 2, 3 and 4.

Written by hand: the one maintained Python package that writes SPZ (PyPI ``gsply``) brings numba
and llvmlite (~200 MB, seconds of JIT on first use), its readers inflate an untrusted file without a
bound, and its quaternion rounding differs from the reference; this module is a few numpy lines per
attribute, quantising exactly as the reference ``load-spz.cc`` does (float32, round half away
from zero), so its streams are byte-identical to the reference's.

Layout (N splats, degree d, K = (d+1)² - 1 higher SH coefficients per channel)::

    positions  N × 3 × int24   round(x · 2^f), f = fractionalBits (12, fewer only when |x| ≥ 2048)
    alphas     N × uint8       round(sigmoid(opacity_logit) · 255)
    colors     N × 3 × uint8   round(f_dc · 0.15 · 255 + 127.5)         (the SH DC term, not RGB)
    scales     N × 3 × uint8   round((log_scale + 10) · 16)
    rotations  N × uint32      "smallest three": 2-bit index of the largest |component| of the
                               unit xyzw quaternion, then the other three, each a sign bit + 9 bits
                               of |c| / √½ (v2: 3 × uint8 of xyz)
    sh         N × K × 3 × uint8   round(c · 128) + 128, snapped to buckets of 8 (degree 1) or 16
                               (higher), channel fastest; absent for degree 0

Coordinates are written as they are given; :func:`~splatgen.core.io.save_splats` gives them in the PLY
frame (:mod:`.frames`), which is how splat-transform and SuperSplat read ``.spz``. Splats are stored in their own order or in a Morton order
over space, whichever compresses smaller (:func:`spz_order`): a generated sample's slot order keeps
neighbours in the image together, which beats Morton on colours and scales; a file in no
particular order gains 5-10 % from Morton. Each stream is compressed at the zstd level of
:data:`ZSTD_LEVELS` that makes it smallest. Empty sets are refused: the reference reader rejects a
file of zero splats.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import torch

from splatgen.core.atomic import atomic_write
from splatgen.core.errors import SplatFileError
from splatgen.core.gaussians import Gaussians
from splatgen.core.io.limits import check_splat_count, read_bounded
from splatgen.core.io.order import morton_order
from splatgen.core.io.ply import gaussians_to_numpy

__all__ = ["read_spz", "write_spz", "spz_order", "SPZ_VERSION", "SPZ_MAGIC"]

SPZ_MAGIC = 0x5053474E          # "NGSP" little endian
SPZ_VERSION = 4                 # written by default
_V4_HEADER = struct.Struct("<IIIBBBBI12x")   # magic version N degree fracBits flags numStreams tocOffset
_LEGACY_HEADER = struct.Struct("<IIIBBBB")   # magic version N degree fracBits flags reserved
_TOC_ENTRY = struct.Struct("<QQ")             # compressed size, uncompressed size
_COLOR_SCALE = np.float32(0.15)
_SQRT1_2 = np.float32(0.7071067811865476)
_SH1_BUCKET, _SH_REST_BUCKET = 8, 16          # reference defaults: 5 bits for degree 1, 4 bits beyond
_MAX_DEGREE = 3
_FLAG_EXTENSIONS = 0x2
#: zstd levels tried per stream; the smallest result is kept (levels are not monotonic on this data).
ZSTD_LEVELS = (3, 6, 9, 12, 15, 17, 19)
#: A file may not claim more than this many splats per byte of itself (the reference's own bound:
#: 1024:1 compression, 9 bytes a splat at least), so a tiny file cannot make the reader inflate gigabytes.
_MAX_RATIO = 1024 / 9
_ALPHA_EPS = 1e-6


# ============================================================================ encoding
def _round(x: np.ndarray) -> np.ndarray:
    """C's ``std::round``: half away from zero."""
    return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round(x.astype(np.float32)), 0, 255).astype(np.uint8)


def _pack_rotations(quats_wxyz: np.ndarray) -> np.ndarray:
    """``(N, 4)`` wxyz → ``(N,)`` uint32 smallest-three codes of the unit xyzw quaternion."""
    q = quats_wxyz[:, [1, 2, 3, 0]].astype(np.float32)
    norm = np.sqrt((q * q).sum(axis=1, keepdims=True))
    zero = norm[:, 0] == 0
    q = np.where(zero[:, None], np.array([0, 0, 0, 1], np.float32), q / np.where(zero[:, None], 1, norm))
    largest = np.argmax(np.abs(q), axis=1)
    negate = q[np.arange(len(q)), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        mag = np.minimum((np.float32(511) * (np.abs(q[:, i]) / _SQRT1_2) + np.float32(0.5)).astype(np.uint32), 511)
        neg = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        comp = np.where(largest != i, (comp << 10) | (neg << 9) | mag, comp)
    return comp.astype("<u4")


def _quantize_sh(x: np.ndarray, bucket: int) -> np.ndarray:
    q = (_round(x.astype(np.float32) * np.float32(128)) + 128).astype(np.int64)
    q = (q + bucket // 2) // bucket * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def _fractional_bits(means: np.ndarray) -> int:
    """12 (the reference's ~0.25 mm), or fewer when a position would overflow 24 bits."""
    biggest = float(np.abs(means).max()) if means.size else 0.0
    for bits in range(12, -1, -1):
        if biggest * (1 << bits) < (1 << 23) - 1:
            return bits
    raise SplatFileError(f"positions up to {biggest:.3g} do not fit SPZ's 24-bit fixed point")


def encode_spz_streams(gaussians: Gaussians, order: np.ndarray | None = None,
                       path="<memory>") -> tuple[int, int, list[bytes]]:
    """``(sh_degree, fractional_bits, [positions, alphas, colors, scales, rotations(, sh)])`` as raw
    bytes, the splats taken in ``order`` (default: as given)."""
    a = gaussians_to_numpy(gaussians, path)
    n, k, _ = a["sh"].shape
    degree = int(round(k ** 0.5)) - 1
    if degree > _MAX_DEGREE:
        raise SplatFileError(f"{os.fspath(path)}: SH degree {degree} is more than SPZ's readers take (3)")
    if order is not None:
        a = {key: v[order] for key, v in a.items()}
    bits = _fractional_bits(a["means"])
    fixed = _round(a["means"] * np.float32(1 << bits)).astype(np.int32)
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=-1).astype(np.uint8)
    with np.errstate(over="ignore"):
        alphas = _to_u8(np.float32(1) / (np.float32(1) + np.exp(-a["opacity_logits"])) * np.float32(255))
    colors = _to_u8(a["sh"][:, 0, :] * (_COLOR_SCALE * np.float32(255)) + np.float32(127.5))
    scales = _to_u8((a["log_scales"] + np.float32(10)) * np.float32(16))
    streams = [positions.tobytes(), alphas.tobytes(), colors.tobytes(), scales.tobytes(),
               _pack_rotations(a["quats"]).tobytes()]
    if degree:
        rest = a["sh"][:, 1:, :]                                   # (N, K, 3): coefficient, then channel
        sh = np.concatenate([_quantize_sh(rest[:, :3], _SH1_BUCKET), _quantize_sh(rest[:, 3:], _SH_REST_BUCKET)], 1)
        streams.append(sh.tobytes())
    return degree, bits, streams


def _zstd_smallest(data: bytes) -> bytes:
    import zstandard

    return min((zstandard.ZstdCompressor(level=lvl).compress(data) for lvl in ZSTD_LEVELS), key=len)


def _container(n: int, degree: int, bits: int, streams: list[bytes], version: int) -> bytes:
    if version == 3:
        header = _LEGACY_HEADER.pack(SPZ_MAGIC, 3, n, degree, bits, 0, 0)
        return zlib.compress(header + b"".join(streams), level=9, wbits=31)
    packed = [_zstd_smallest(s) for s in streams]
    toc = b"".join(_TOC_ENTRY.pack(len(c), len(s)) for c, s in zip(packed, streams))
    return _V4_HEADER.pack(SPZ_MAGIC, 4, n, degree, bits, 0, len(streams), _V4_HEADER.size) + toc + b"".join(packed)


def _smallest(gaussians: Gaussians, version: int, path) -> tuple[np.ndarray, bytes]:
    """The stored order (given or Morton) whose file is smaller, and that file."""
    if version not in (3, 4):
        raise ValueError(f"SPZ version {version} is not written; 4 or 3")
    n = gaussians.num_gaussians
    if len(gaussians.shape) == 1 and n == 0:
        raise SplatFileError(f"{os.fspath(path)}: no splats to write; an SPZ file must hold at least one")
    check_splat_count(n, os.fspath(path))
    best = None
    for order in (np.arange(n), morton_order(gaussians.means.detach().cpu().float().numpy())):
        data = _container(n, *encode_spz_streams(gaussians, order, path), version)
        if best is None or len(data) < len(best[1]):
            best = order, data
    return best


def spz_order(gaussians: Gaussians, version: int = SPZ_VERSION) -> torch.Tensor:
    """Indices ``(N,)``: the order :func:`write_spz` stores the splats of ``gaussians`` ``(N,)`` in."""
    return torch.from_numpy(_smallest(gaussians, version, "<memory>")[0])


def spz_bytes(gaussians: Gaussians, *, version: int = SPZ_VERSION, path="<memory>") -> bytes:
    """The content of an SPZ file of ``gaussians`` ``(N,)``, ``version`` 4 (zstd) or 3 (gzip)."""
    return _smallest(gaussians, version, path)[1]


def write_spz(path, gaussians: Gaussians, metadata: dict | None = None, *, version: int = SPZ_VERSION) -> None:
    """Write one set of Gaussians ``(N ≥ 1,)`` as an SPZ file (``version`` 4, or 3 for gzip-only
    readers), atomically, in :func:`spz_order`; ``metadata`` goes to a JSON sidecar ``NAME.spz.json``
    (SPZ has no place for it). Raises :class:`SplatFileError` for batched, empty or non-finite input."""
    from splatgen.core.io.splat import write_splat_metadata

    atomic_write(path, [spz_bytes(gaussians, version=version, path=path)], error=SplatFileError)
    if metadata:
        write_splat_metadata(path, metadata)


# ============================================================================ decoding
def _stream_sizes(n: int, degree: int, version: int) -> list[int]:
    sizes = [9 * n, n, 3 * n, 3 * n, (3 if version == 2 else 4) * n]
    k = (degree + 1) ** 2 - 1
    return sizes + [3 * k * n] if k else sizes


def _check_header(name: str, size: int, version: int, n: int, degree: int, bits: int) -> None:
    if version < 2 or version > 4:
        why = " (version 1, half-float positions, is not read)" if version == 1 else ""
        raise SplatFileError(f"{name}: unsupported SPZ version {version}{why}; versions 2-4 are read")
    check_splat_count(n, name)
    if n > size * _MAX_RATIO:
        raise SplatFileError(f"{name}: claims {n:,} splats in {size:,} bytes, more than SPZ's compression "
                             "allows (a corrupt or hostile header)")
    if degree > _MAX_DEGREE:
        raise SplatFileError(f"{name}: SPZ spherical-harmonic degree {degree} is not supported (0-3)")
    if bits > 23:
        raise SplatFileError(f"{name}: {bits} fractional bits is more than a 24-bit position holds")


def _gunzip(data: bytes, name: str) -> tuple[tuple, list[bytes]]:
    """Header fields and streams of a v2/v3 file, inflating no more than the header says it holds."""
    d = zlib.decompressobj(wbits=31)
    try:
        head = d.decompress(data, _LEGACY_HEADER.size)
        while len(head) < _LEGACY_HEADER.size and d.unconsumed_tail:
            head += d.decompress(d.unconsumed_tail, _LEGACY_HEADER.size - len(head))
        if len(head) < _LEGACY_HEADER.size:
            raise SplatFileError(f"{name}: SPZ file ends inside its header")
        magic, version, n, degree, bits, _flags, _ = _LEGACY_HEADER.unpack(head)
        if magic != SPZ_MAGIC:
            raise SplatFileError(f"{name}: not an SPZ file (no 'NGSP' magic after gunzip)")
        _check_header(name, len(data), version, n, degree, bits)
        sizes = _stream_sizes(n, degree, version)
        want = sum(sizes)
        chunks, got = [], 0
        tail = d.unconsumed_tail
        while got < want:
            piece = d.decompress(tail, min(want - got, 1 << 24))
            tail = d.unconsumed_tail
            if not piece:
                break
            chunks.append(piece)
            got += len(piece)
    except zlib.error as e:
        raise SplatFileError(f"{name}: corrupt gzip data in SPZ file ({e})") from None
    if got < want:
        raise SplatFileError(f"{name}: SPZ file truncated: {n:,} splats need {want:,} bytes of data, "
                             f"the file holds {got:,}")
    body = b"".join(chunks)
    out, at = [], 0
    for s in sizes:
        out.append(body[at:at + s])
        at += s
    return (version, n, degree, bits), out


def _unzstd(data: bytes, name: str) -> tuple[tuple, list[bytes]]:
    """Header fields and streams of a v4 file; each stream inflated to at most its TOC size."""
    import zstandard

    if len(data) < _V4_HEADER.size:
        raise SplatFileError(f"{name}: SPZ file ends inside its header")
    magic, version, n, degree, bits, flags, count, toc = _V4_HEADER.unpack_from(data)
    _check_header(name, len(data), version, n, degree, bits)
    sizes = _stream_sizes(n, degree, version)
    if count != len(sizes):
        raise SplatFileError(f"{name}: SPZ header lists {count} streams; degree {degree} needs {len(sizes)}")
    if toc < _V4_HEADER.size or (toc > _V4_HEADER.size and not flags & _FLAG_EXTENSIONS):
        raise SplatFileError(f"{name}: bad SPZ table-of-contents offset {toc}")
    at = toc + count * _TOC_ENTRY.size
    if at > len(data):
        raise SplatFileError(f"{name}: SPZ file truncated inside its table of contents")
    out = []
    for i, want in enumerate(sizes):
        csize, usize = _TOC_ENTRY.unpack_from(data, toc + i * _TOC_ENTRY.size)
        if usize != want:
            raise SplatFileError(f"{name}: SPZ stream {i} says {usize:,} bytes; {n:,} splats need {want:,}")
        if csize > len(data) - at:
            raise SplatFileError(f"{name}: SPZ file truncated: stream {i} runs past the end of the file")
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(data[at:at + csize], read_across_frames=True)
            stream = reader.read(want + 1) if want else b""
        except zstandard.ZstdError as e:
            raise SplatFileError(f"{name}: corrupt zstd data in SPZ stream {i} ({e})") from None
        if len(stream) != want:
            raise SplatFileError(f"{name}: SPZ stream {i} inflates to {len(stream):,} bytes, not {want:,}")
        out.append(stream)
        at += csize
    if at != len(data):
        raise SplatFileError(f"{name}: {len(data) - at:,} unexpected bytes after the SPZ streams")
    return (version, n, degree, bits), out


def _unpack_rotations(streams_rot: bytes, n: int, version: int) -> np.ndarray:
    """Rotation stream → ``(N, 4)`` unit quaternions, wxyz."""
    if version == 2:
        xyz = np.frombuffer(streams_rot, np.uint8).reshape(n, 3).astype(np.float32) / np.float32(127.5) - 1
        w = np.sqrt(np.maximum(0, 1 - (xyz * xyz).sum(1, keepdims=True)))
        return np.concatenate([w, xyz], 1)
    packed = np.frombuffer(streams_rot, "<u4").astype(np.uint32)
    largest = (packed >> 30).astype(np.int64)
    # components leave the code from the highest index down, skipping the largest
    slots = np.array([[3, 2, 1], [3, 2, 0], [3, 1, 0], [2, 1, 0]])[largest]
    q = np.zeros((n, 4), np.float32)
    rows = np.arange(n)
    for t in range(3):
        mag = (packed & 511).astype(np.float32) * (_SQRT1_2 / np.float32(511))
        q[rows, slots[:, t]] = np.where((packed >> 9) & 1, -mag, mag)
        packed = packed >> 10
    q[rows, largest] = np.sqrt(np.maximum(0, 1 - (q * q).sum(1)))
    return q[:, [3, 0, 1, 2]]


def read_spz(path) -> Gaussians:
    """Read an SPZ file (version 2, 3 or 4) into Gaussians ``(N,)`` (float32, CPU, file order).

    Raw parameters come back as the format stores them: ``log_scales = byte / 16 - 10``,
    ``opacity_logits = logit(byte / 255)`` (kept finite), ``sh[:, 0] = (byte / 255 - 0.5) / 0.15``,
    higher SH ``(byte - 128) / 128``, unit quaternions. Raises :class:`SplatFileError` for anything
    unreadable, including a header whose splat count the file cannot hold (checked before inflating).
    """
    name = os.fspath(path)
    data = read_bounded(path)
    if data[:2] == b"\x1f\x8b":
        (version, n, degree, bits), s = _gunzip(data, name)
    elif len(data) >= 4 and struct.unpack_from("<I", data)[0] == SPZ_MAGIC:
        (version, n, degree, bits), s = _unzstd(data, name)
    else:
        raise SplatFileError(f"{name}: not an SPZ file (neither gzip nor 'NGSP' magic; found {data[:8]!r})")
    b = np.frombuffer(s[0], np.uint8).reshape(n, 3, 3).astype(np.int32)
    fixed = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    fixed = (fixed ^ 0x800000) - 0x800000                         # sign-extend 24 bits
    means = fixed.astype(np.float32) / np.float32(1 << bits)
    alpha = np.clip(np.frombuffer(s[1], np.uint8).astype(np.float64) / 255, _ALPHA_EPS, 1 - _ALPHA_EPS)
    k = (degree + 1) ** 2
    sh = np.empty((n, k, 3), np.float32)
    sh[:, 0] = (np.frombuffer(s[2], np.uint8).reshape(n, 3).astype(np.float32) / 255 - np.float32(0.5)) / _COLOR_SCALE
    if k > 1:
        sh[:, 1:] = (np.frombuffer(s[5], np.uint8).reshape(n, k - 1, 3).astype(np.float32) - 128) / 128
    log_scales = np.frombuffer(s[3], np.uint8).reshape(n, 3).astype(np.float32) / 16 - 10
    return Gaussians(
        means=torch.from_numpy(np.ascontiguousarray(means)),
        quats=torch.from_numpy(np.ascontiguousarray(_unpack_rotations(s[4], n, version))),
        log_scales=torch.from_numpy(np.ascontiguousarray(log_scales)),
        opacity_logits=torch.from_numpy((np.log(alpha) - np.log1p(-alpha)).astype(np.float32)),
        sh=torch.from_numpy(sh),
    )
