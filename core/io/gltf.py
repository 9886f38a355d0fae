"""glTF 2.0 binary (``.glb``) with ``KHR_gaussian_splatting``: reading and writing.

One node, one mesh, one ``POINTS`` primitive whose ``KHR_gaussian_splatting`` extension says
``kernel "ellipse"``, ``colorSpace "srgb_rec709_display"``, ``projection "perspective"``,
``sortingMethod "cameraDistance"``; one float accessor (own buffer view) per attribute::

    POSITION                                    VEC3   means, with min/max as glTF requires
    KHR_gaussian_splatting:ROTATION             VEC4   unit quaternion, glTF order x y z w
    KHR_gaussian_splatting:SCALE                VEC3   linear standard deviations, exp(log_scales)
    KHR_gaussian_splatting:OPACITY              SCALAR sigmoid(opacity_logits), in [0, 1]
    KHR_gaussian_splatting:SH_DEGREE_0_COEF_0   VEC3   the SH DC term f_dc
    KHR_gaussian_splatting:SH_DEGREE_l_COEF_m   VEC3   degree l ≥ 1, m = 0..2l (order -l..l), RGB
    COLOR_0                                     VEC4   normalized uint8 fallback for point-cloud
                                                       viewers: the diffuse colour clamp(0.5 + C0·f_dc)
                                                       decoded from sRGB to linear (glTF colours are
                                                       linear), alpha = opacity

The glTF frame is +Y up, +Z toward the front, metres; splatgen's object frame is the same (Y up,
the input camera on +Z), so values are written as they are. Metadata (model, licence) goes into
``asset.extras``. The document model, JSON and the GLB container are pygltflib's (a maintained
library); the container is parsed here with every length checked before pygltflib sees it.

:func:`read_glb` reads what this module writes and other ``KHR_gaussian_splatting`` files: any
number of splat primitives (concatenated; all of one SH degree), float or the normalized integer
component types the extension allows, interleaved buffer views. It refuses what it cannot place
correctly (node transforms, sparse or external buffers) with a :class:`SplatFileError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct

import numpy as np
import torch

from splatgen.core.atomic import atomic_write
from splatgen.core.errors import SplatFileError
from splatgen.core.gaussians import SH_C0, Gaussians
from splatgen.core.io.limits import check_splat_count, read_bounded
from splatgen.core.io.ply import gaussians_to_numpy

__all__ = ["read_glb", "write_glb", "read_glb_metadata", "glb_bytes", "EXTENSION", "ATTRIBUTE_PREFIX"]

EXTENSION = "KHR_gaussian_splatting"
ATTRIBUTE_PREFIX = EXTENSION + ":"
_EXTENSION_PROPS = {"kernel": "ellipse", "colorSpace": "srgb_rec709_display", "projection": "perspective",
                    "sortingMethod": "cameraDistance"}
_FLOAT, _ARRAY_BUFFER, _POINTS = 5126, 34962, 0
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = b"glTF", 0x4E4F534A, 0x004E4942
#: component type → (numpy type, divisor when normalized, lowest normalized value)
_COMPONENTS = {5120: ("i1", 127.0, -1.0), 5121: ("u1", 255.0, 0.0), 5122: ("<i2", 32767.0, -1.0),
               5123: ("<u2", 65535.0, 0.0), 5126: ("<f4", None, None)}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}
_ALPHA_EPS = 1e-6


def sh_attribute(degree: int, coef: int) -> str:
    """``KHR_gaussian_splatting:SH_DEGREE_{degree}_COEF_{coef}``: SH index ``degree² + coef`` of ``sh``."""
    return f"{ATTRIBUTE_PREFIX}SH_DEGREE_{degree}_COEF_{coef}"


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


# ============================================================================ writing
def glb_bytes(gaussians: Gaussians, metadata: dict | None = None, path="<memory>", extras: dict | None = None) -> bytes:
    """The content of a ``.glb`` of ``gaussians`` ``(N,)`` (see the module docstring); ``extras``
    (name → ``(N,)`` values) become application-specific SCALAR float attributes ``_NAME`` (upper
    case, glTF's rule for custom semantics), listed in ``asset.extras["per_splat"]``."""
    import pygltflib as g

    a = gaussians_to_numpy(gaussians, path)
    n, k, _ = a["sh"].shape
    if n == 0:
        raise SplatFileError(f"{os.fspath(path)}: no splats to write; a glTF accessor holds at least one")
    check_splat_count(n, os.fspath(path))
    q = a["quats"][:, [1, 2, 3, 0]]
    norm = np.sqrt((q.astype(np.float64) ** 2).sum(1, keepdims=True))
    q = np.where(norm == 0, np.array([0, 0, 0, 1.0]), q / np.where(norm == 0, 1, norm)).astype(np.float32)
    with np.errstate(over="ignore"):
        scale = np.exp(a["log_scales"].astype(np.float64))
        opacity = 1 / (1 + np.exp(-a["opacity_logits"].astype(np.float64)))
    if not np.isfinite(scale.astype(np.float32)).all():
        raise SplatFileError(f"{os.fspath(path)}: cannot write, exp(log_scales) overflows float32")
    diffuse = np.clip(a["sh"][:, 0].astype(np.float64) * SH_C0 + 0.5, 0, 1)
    color = np.concatenate([_srgb_to_linear(diffuse), opacity[:, None]], 1)
    arrays = {"POSITION": a["means"], "COLOR_0": np.round(color * 255).astype(np.uint8),
              ATTRIBUTE_PREFIX + "ROTATION": q, ATTRIBUTE_PREFIX + "SCALE": scale.astype(np.float32),
              ATTRIBUTE_PREFIX + "OPACITY": opacity.astype(np.float32)[:, None]}
    custom = {}
    for name, values in (extras or {}).items():
        v = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float32).reshape(-1)
        semantic = "_" + str(name).upper()
        if not re.fullmatch(r"_[A-Z][A-Z0-9_]{0,62}", semantic) or semantic in custom:
            raise SplatFileError(f"{os.fspath(path)}: bad or repeated per-splat attribute name {str(name)[:40]!r}")
        if v.shape != (n,) or not np.isfinite(v).all():
            raise SplatFileError(f"{os.fspath(path)}: per-splat attribute {name!r} needs {n} finite values")
        custom[semantic] = v[:, None]
    degree = math.isqrt(k) - 1
    for l in range(degree + 1):
        for m in range(2 * l + 1):
            arrays[sh_attribute(l, m)] = a["sh"][:, l * l + m]
    arrays.update(custom)
    blob, views, accessors, attributes = bytearray(), [], [], {}
    for i, (semantic, arr) in enumerate(arrays.items()):
        data = np.ascontiguousarray(arr, dtype="<u1" if arr.dtype == np.uint8 else "<f4").tobytes()
        views.append(g.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data), target=_ARRAY_BUFFER))
        blob += data + b"\0" * (-len(data) % 4)
        width = arr.shape[1]
        acc = g.Accessor(bufferView=i, componentType=5121 if arr.dtype == np.uint8 else _FLOAT, count=n,
                         type={1: "SCALAR", 3: "VEC3", 4: "VEC4"}[width], normalized=arr.dtype == np.uint8 or None)
        if semantic == "POSITION":
            acc.min, acc.max = [float(v) for v in arr.min(0)], [float(v) for v in arr.max(0)]
        accessors.append(acc)
        attributes[semantic] = i
    extras = {str(key): str(value) for key, value in (metadata or {}).items()}
    if custom:  # the key is the writer's: a metadata entry of that name gives way
        extras["per_splat"] = ",".join(custom)
    doc = g.GLTF2(
        asset=g.Asset(generator="splatgen", version="2.0", extras=extras or {}),
        extensionsUsed=[EXTENSION], scene=0, scenes=[g.Scene(nodes=[0])], nodes=[g.Node(mesh=0)],
        meshes=[g.Mesh(primitives=[g.Primitive(attributes=g.Attributes(**attributes), mode=_POINTS,
                                               extensions={EXTENSION: dict(_EXTENSION_PROPS)})])],
        buffers=[g.Buffer(byteLength=len(blob))], bufferViews=views, accessors=accessors)
    doc.set_binary_blob(bytes(blob))
    return b"".join(doc.save_to_bytes())


def write_glb(path, gaussians: Gaussians, metadata: dict | None = None, extras: dict | None = None) -> None:
    """Write one set of Gaussians ``(N ≥ 1,)`` as a ``KHR_gaussian_splatting`` ``.glb``, atomically, in
    input order; ``metadata`` goes into ``asset.extras``, ``extras`` per splat (:func:`glb_bytes`).
    Raises :class:`SplatFileError` for batched, empty or non-finite input or an OS error."""
    atomic_write(path, [glb_bytes(gaussians, metadata, path, extras)], error=SplatFileError)


# ============================================================================ reading
def _container(data: bytes, name: str) -> tuple[str, bytes]:
    """The JSON text and BIN chunk of a GLB file, every length checked against the file."""
    if len(data) < 12 or data[:4] != _GLB_MAGIC:
        raise SplatFileError(f"{name}: not a binary glTF (.glb) file (no 'glTF' magic; found {data[:4]!r})")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise SplatFileError(f"{name}: glTF binary version {version} is not read (2 is)")
    if length != len(data):
        raise SplatFileError(f"{name}: the GLB header says {length:,} bytes, the file has {len(data):,}")
    chunks, at = [], 12
    while at < len(data):
        if at + 8 > len(data):
            raise SplatFileError(f"{name}: GLB file ends inside a chunk header")
        size, kind = struct.unpack_from("<II", data, at)
        if size > len(data) - at - 8:
            raise SplatFileError(f"{name}: GLB chunk {len(chunks)} claims {size:,} bytes past the end of the file")
        chunks.append((kind, data[at + 8:at + 8 + size]))
        at += 8 + size
    if not chunks or chunks[0][0] != _JSON_CHUNK:
        raise SplatFileError(f"{name}: a GLB file's first chunk must be JSON")
    bins = [c for kind, c in chunks[1:] if kind == _BIN_CHUNK]
    try:
        text = chunks[0][1].decode("utf-8")
    except UnicodeDecodeError:
        raise SplatFileError(f"{name}: the GLB JSON chunk is not UTF-8") from None
    return text, bins[0] if bins else b""


def _document(data: bytes, name: str):
    """The parsed document (pygltflib's model) and the BIN chunk of a GLB file."""
    import pygltflib

    text, blob = _container(data, name)
    try:
        if not isinstance(json.loads(text), dict):
            raise ValueError("not a JSON object")
        doc = pygltflib.GLTF2.from_json(text, infer_missing=True)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise SplatFileError(f"{name}: malformed glTF JSON ({str(e)[:120]})") from None
    return doc, blob


def _int(value, what: str, name: str, lo: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise SplatFileError(f"{name}: glTF {what} is {str(value)[:40]!r}, not an integer >= {lo}")
    return value


def _item(items, index, what: str, name: str):
    i = _int(index, f"{what} index", name)
    if not isinstance(items, list) or i >= len(items):
        raise SplatFileError(f"{name}: glTF {what} {i} does not exist")
    return items[i]


def _accessor(doc, index, blob: bytes, name: str, kind: str) -> np.ndarray:
    """Accessor ``index`` as a float64 ``(count, width)`` array; every offset checked before reading."""
    acc = _item(doc.accessors, index, "accessor", name)
    if getattr(acc, "sparse", None) is not None:
        raise SplatFileError(f"{name}: sparse glTF accessors are not read")
    if acc.type not in _WIDTH or acc.componentType not in _COMPONENTS:
        raise SplatFileError(f"{name}: glTF accessor {index} has type {str(acc.type)[:20]!r} / component "
                             f"{str(acc.componentType)[:20]!r}, which is not read")
    if acc.type != kind:
        raise SplatFileError(f"{name}: glTF accessor {index} is {acc.type}, expected {kind}")
    width = _WIDTH[kind]
    code, divisor, lowest = _COMPONENTS[acc.componentType]
    item = np.dtype(code).itemsize
    count = check_splat_count(_int(acc.count, "accessor count", name), name)
    view = _item(doc.bufferViews, acc.bufferView, "buffer view", name)
    buffer = _item(doc.buffers, view.buffer, "buffer", name)
    if view.buffer != 0 or buffer.uri is not None:
        raise SplatFileError(f"{name}: only the GLB's own binary chunk is read (no external or data: buffers)")
    start = _int(view.byteOffset or 0, "bufferView byteOffset", name)
    length = _int(view.byteLength, "bufferView byteLength", name)
    if start + length > len(blob):
        raise SplatFileError(f"{name}: glTF buffer view {acc.bufferView} runs past the binary chunk "
                             f"({start + length:,} > {len(blob):,} bytes)")
    offset = _int(acc.byteOffset or 0, "accessor byteOffset", name)
    stride = item * width if view.byteStride is None else _int(view.byteStride, "bufferView byteStride", name, 1)
    if stride < item * width:
        raise SplatFileError(f"{name}: glTF buffer view {acc.bufferView} stride {stride} is under one element")
    need = offset + (stride * (count - 1) + item * width if count else 0)
    if need > length:
        raise SplatFileError(f"{name}: glTF accessor {index} needs {need:,} bytes, its buffer view has {length:,}")
    if not count:
        return np.zeros((0, width))
    region = np.frombuffer(blob, np.uint8, count=need - offset, offset=start + offset)
    rows = np.lib.stride_tricks.as_strided(region, (count, item * width), (stride, 1), writeable=False)
    values = np.ascontiguousarray(rows).view(code).reshape(count, width).astype(np.float64)
    if divisor is not None and acc.normalized:
        values = np.maximum(values / divisor, lowest)
    if not np.isfinite(values).all():
        raise SplatFileError(f"{name}: glTF accessor {index} holds NaN or infinite values")
    return values


_IDENTITY = {"matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "translation": [0, 0, 0],
             "rotation": [0, 0, 0, 1], "scale": [1, 1, 1]}


def _splat_primitives(doc, name: str) -> list:
    prims = []
    for mesh in doc.meshes or []:
        for prim in getattr(mesh, "primitives", None) or []:
            ext = prim.extensions if isinstance(getattr(prim, "extensions", None), dict) else {}
            if EXTENSION not in ext:
                continue
            if prim.mode != _POINTS:
                raise SplatFileError(f"{name}: a {EXTENSION} primitive must be POINTS (mode 0), not {prim.mode!r}")
            kernel = ext[EXTENSION].get("kernel", "ellipse") if isinstance(ext[EXTENSION], dict) else "ellipse"
            if kernel != "ellipse":
                raise SplatFileError(f"{name}: {EXTENSION} kernel {str(kernel)[:30]!r} is not read")
            prims.append(prim)
    if not prims:
        raise SplatFileError(f"{name}: no {EXTENSION} primitive in this glTF file")
    for node in doc.nodes or []:
        if getattr(node, "mesh", None) is not None and any(
                getattr(node, key, None) not in (None, value) for key, value in _IDENTITY.items()):
            raise SplatFileError(f"{name}: the splats' glTF node has a transform, which is not applied here")
    return prims


def _read_primitive(doc, prim, blob: bytes, name: str) -> tuple[int, dict]:
    attrs = {k: v for k, v in vars(prim.attributes).items() if v is not None} if prim.attributes else {}
    need = {"POSITION": "VEC3", ATTRIBUTE_PREFIX + "ROTATION": "VEC4", ATTRIBUTE_PREFIX + "SCALE": "VEC3",
            ATTRIBUTE_PREFIX + "OPACITY": "SCALAR", sh_attribute(0, 0): "VEC3"}
    missing = [s for s in need if s not in attrs]
    if missing:
        raise SplatFileError(f"{name}: {EXTENSION} primitive lacks {', '.join(missing)}")
    degree = 0
    while degree < 3 and all(sh_attribute(degree + 1, m) in attrs for m in range(2 * degree + 3)):
        degree += 1
    if any(sh_attribute(degree + 1, m) in attrs for m in range(2 * degree + 3)):
        raise SplatFileError(f"{name}: SH degree {degree + 1} is partly defined or above 3")
    for l in range(1, degree + 1):
        for m in range(2 * l + 1):
            need[sh_attribute(l, m)] = "VEC3"
    arrays = {s: _accessor(doc, attrs[s], blob, name, kind) for s, kind in need.items()}
    counts = {len(v) for v in arrays.values()}
    if len(counts) != 1:
        raise SplatFileError(f"{name}: the splat attributes have different counts ({sorted(counts)[:4]})")
    return degree, arrays


def read_glb(path) -> Gaussians:
    """Read a ``KHR_gaussian_splatting`` ``.glb`` into Gaussians ``(N,)`` (float32, CPU, file order):
    ``log_scales = log(SCALE)``, ``opacity_logits = logit(OPACITY)`` (kept finite), ``quats`` wxyz from
    ROTATION, ``sh`` from the SH attributes. Raises :class:`SplatFileError` for anything it cannot read."""
    name = os.fspath(path)
    doc, blob = _document(read_bounded(path), name)
    parts = [_read_primitive(doc, p, blob, name) for p in _splat_primitives(doc, name)]
    degrees = {d for d, _ in parts}
    if len(degrees) != 1:
        raise SplatFileError(f"{name}: splat primitives of different SH degrees ({sorted(degrees)})")
    degree = degrees.pop()
    cat = {s: np.concatenate([arrays[s] for _, arrays in parts]) for s in parts[0][1]}
    n = check_splat_count(len(cat["POSITION"]), name)
    scale = cat[ATTRIBUTE_PREFIX + "SCALE"]
    opacity = cat[ATTRIBUTE_PREFIX + "OPACITY"][:, 0]
    if (scale < 0).any():
        raise SplatFileError(f"{name}: negative {ATTRIBUTE_PREFIX}SCALE values (the extension forbids them)")
    if ((opacity < -1e-6) | (opacity > 1 + 1e-6)).any():
        raise SplatFileError(f"{name}: {ATTRIBUTE_PREFIX}OPACITY values outside [0, 1]")
    alpha = np.clip(opacity, _ALPHA_EPS, 1 - _ALPHA_EPS)
    k = (degree + 1) ** 2
    sh = np.empty((n, k, 3), np.float32)
    for l in range(degree + 1):
        for m in range(2 * l + 1):
            sh[:, l * l + m] = cat[sh_attribute(l, m)]
    xyzw = cat[ATTRIBUTE_PREFIX + "ROTATION"]
    return Gaussians(
        means=torch.from_numpy(cat["POSITION"].astype(np.float32)),
        quats=torch.from_numpy(np.ascontiguousarray(xyzw[:, [3, 0, 1, 2]], dtype=np.float32)),
        log_scales=torch.from_numpy(np.log(np.maximum(scale, np.finfo(np.float32).tiny)).astype(np.float32)),
        opacity_logits=torch.from_numpy((np.log(alpha) - np.log1p(-alpha)).astype(np.float32)),
        sh=torch.from_numpy(sh),
    )


def read_glb_metadata(path) -> dict[str, str]:
    """The ``asset.extras`` of a ``.glb`` as strings (what :func:`write_glb` was given as ``metadata``)."""
    doc, _ = _document(read_bounded(path), os.fspath(path))
    extras = getattr(doc.asset, "extras", None)
    return {str(k): str(v) for k, v in extras.items()} if isinstance(extras, dict) else {}
