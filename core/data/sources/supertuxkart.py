"""SuperTuxKart (Debian's ``supertuxkart-data``): SPM meshes of library objects, karts and items.

Objects, from the game's own definitions:

* a library object ``data/library/<name>/node.xml``: every ``<object model=…>`` of its scene at its
  ``xyz`` / ``hpr`` / ``scale``, and of each LOD group (``<lod><group>``, placed by an object with
  ``lod_instance``) only the most detailed member (smallest ``lod_distance``). Physics-only objects
  (``interaction="physicsonly"``: invisible collision shapes) and billboards are left out;
* a kart ``data/karts/<name>/kart.xml``: its ``model-file`` and the four wheels at their positions;
* an item ``data/models/<name>.spm``, except the low-detail copies (``*-low.spm``) and the parts of
  an animation (``*_anim.spm``).

Licence and creator of each object are those Debian's machine-readable copyright file gives its
model file (``/usr/share/doc/supertuxkart-data/copyright``; the last matching ``Files:`` stanza).

SPM version 1 (little endian; STK's ``SPMeshLoader``): ``"SP"``; a byte ``version << 3 | type``
(type 0 space-partitioned, refused; 1 skinned ``SPMA``; 2 static ``SPMN``); a flags byte (normals,
vertex colours, tangents); a bounding box (6 × f32); ``u16`` material count, each two textures
(``u8`` length + name); ``u16`` sections, each ``u16`` buffers of ``u32`` vertex count, ``u32``
index count, ``u16`` material. A vertex: position (3 × f32); normal packed 10:10:10:2 (signed,
/511); a colour byte (128 = white, else 3 bytes RGB follow); two half-float UVs if the material has
a first texture (two more for a second); a packed tangent (4 bytes, with UVs and the flag); for
skinned meshes 4 × i16 joints and 4 half-float weights. Indices are u8 when the buffer has at most
255 vertices, else u16. Skinned meshes store the kart's straight-driving frame; the armature after
the meshes is not read. The game's frame (Irrlicht's) is Y up and left-handed: this reader negates z.
Textures are looked up in the model's folder, then in ``data/textures``. ``materials.xml`` beside the
textures says how alpha is used: ``alphatest`` / ``grass`` / ``alphablend`` are cut-outs,
``additive`` glows are left out, anything else is opaque. Vertex colours multiply the texture
(``sp_solid.frag``) except under the ``grass`` shader, whose vertex shader reads them as wind weights.
"""

from __future__ import annotations

import os
import posixpath
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DatasetError
from ..parts import LoadedModel, ModelError, Part, crease_normals
from .common import Container, Dep5, SourceObject, creator_from_copyright, safe_id, unique_id

READER = "supertuxkart"
PACKAGE = "supertuxkart-data"
INSTALLED = "usr/share/games/supertuxkart/data"
COPYRIGHT = "usr/share/doc/supertuxkart-data/copyright"
VERSION = 1
#: Material shaders (``materials.xml``) whose texture alpha is a cut-out; ``SKIP_SHADERS`` are not drawn.
CUTOUT_SHADERS = ("alphatest", "grass", "alphablend", "decal")
SKIP_SHADERS = ("additive", "displace")
#: Item files that are not objects of their own: low-detail copies and animation parts.
_SKIP_ITEM = re.compile(r"([-_]low|_anim)$")

_CATEGORY_WORDS = (  # (category, words of the camel-case name), first match wins
    ("fauna", ("animal", "pig", "bird", "butterfly", "crab", "parrot", "piranha", "fish", "monkey", "cow", "shell")),
    ("character", ("guy", "women", "woman", "girl", "man", "cheering", "guardian", "mermaid", "poseidon", "painter",
                   "kiki", "konqi", "security", "gnu", "pirate", "princess")),
    ("vehicle", ("car", "boat", "blimp", "harvester", "jet", "trijet", "hexajet", "plane", "locomotive", "van",
                 "cartraffic", "ferry", "kart", "airship", "train")),
    ("flora", ("tree", "bush", "plant", "grass", "flower", "palm", "fern", "reed", "agave", "cabbage", "carrot",
               "corn", "mushroom", "cattail", "willow", "birch", "cypress", "accacia", "cocoa", "liana", "seaweed",
               "sagebrush", "lily", "roots", "stump", "pumpkin", "branch", "pinetree", "lantern_")),
    ("rock", ("rock", "rocks", "stone", "cliff", "reef", "tetrapod")),
    ("building", ("house", "housing", "hut", "tower", "igloo", "chimney", "balcony", "fountain", "bridge", "lodge",
                  "kiosk", "portal", "gate", "alcove", "castle", "airport", "watertower", "windpump", "carousel")),
)


@dataclass
class SPMBuffer:
    """One buffer of an SPM at its stored frame (game frame): ``positions``/``normals`` ``(V, 3)``,
    ``colors`` ``(V, 3)`` in [0, 1], ``uvs`` ``(V, 2)`` or ``None``, ``faces`` ``(F, 3)``, ``texture``."""

    positions: np.ndarray
    normals: np.ndarray | None
    colors: np.ndarray
    uvs: np.ndarray | None
    faces: np.ndarray
    texture: str


def _unpack_normals(packed: np.ndarray) -> np.ndarray:
    """10:10:10:2 signed-normalised (x in the low bits) → ``(N, 3)`` float."""
    out = np.empty((len(packed), 3), np.float32)
    for i in range(3):
        v = (packed >> (10 * i)) & 0x3FF
        v = np.where(v >= 512, v.astype(np.int32) - 1024, v.astype(np.int32))
        out[:, i] = np.maximum(v / 511.0, -1.0)
    return out


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.off = data, 0

    def take(self, dtype, count=1):
        dt = np.dtype(dtype)
        if self.off + dt.itemsize * count > len(self.data):
            raise ModelError("truncated SPM")
        out = np.frombuffer(self.data, dt, count, self.off)
        self.off += dt.itemsize * count
        return out

    def string(self) -> str:
        n = int(self.take("u1")[0])
        return bytes(self.take("u1", n)).decode("utf-8", "replace") if n else ""


def read_spm(data: bytes) -> tuple[list[SPMBuffer], bool]:
    """Parse an SPM file: its buffers and whether it is skinned. Raises :class:`ModelError`."""
    if len(data) < 4 or data[:2] != b"SP":
        raise ModelError("not an SPM file (no SP magic)")
    version, kind = data[2] >> 3, data[2] & ~0x08
    if version != VERSION:
        raise ModelError(f"unsupported SPM version {version}")
    if kind == 0:
        raise ModelError("space-partitioned SPM (a track) not supported")
    if kind not in (1, 2):
        raise ModelError(f"unknown SPM type {kind}")
    skinned = kind == 1
    r = _Reader(data)
    r.off = 3
    flags = int(r.take("u1")[0])
    has_normal, has_colour, has_tangent = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    r.take("<f4", 6)  # bounding box
    materials = []
    for _ in range(int(r.take("<u2")[0])):
        materials.append((r.string(), r.string()))
    buffers = []
    for _ in range(int(r.take("<u2")[0])):
        for _ in range(int(r.take("<u2")[0])):
            n_vert, n_idx = (int(x) for x in r.take("<u4", 2))
            mat = int(r.take("<u2")[0])
            if mat >= len(materials):
                raise ModelError(f"SPM material {mat} of {len(materials)}")
            if n_vert > 65535:
                raise ModelError("SPM buffer with 32-bit indices")
            tex1, tex2 = materials[mat]
            pos = np.empty((n_vert, 3), np.float32)
            nrm = np.empty(n_vert, np.uint32) if has_normal else None
            col = np.ones((n_vert, 3), np.float32)
            uv = np.zeros((n_vert, 2), np.float32) if tex1 else None
            if not has_colour:  # fixed stride: read all vertices at once
                fields = [("pos", "<f4", 3)] + ([("nrm", "<u4")] if has_normal else [])
                if tex1:
                    fields.append(("uv", "<f2", 2))
                    if tex2:
                        fields.append(("uv2", "<f2", 2))
                    if has_tangent:
                        fields.append(("tan", "<u4"))
                if skinned:
                    fields += [("joints", "<i2", 4), ("weights", "<f2", 4)]
                v = r.take(np.dtype(fields), n_vert)
                pos[:] = v["pos"]
                if has_normal:
                    nrm[:] = v["nrm"]
                if tex1:
                    uv[:] = v["uv"]
            else:  # a colour byte decides whether three more follow
                for i in range(n_vert):
                    pos[i] = r.take("<f4", 3)
                    if has_normal:
                        nrm[i] = r.take("<u4")[0]
                    ci = int(r.take("u1")[0])
                    if ci != 128:
                        col[i] = r.take("u1", 3) / 255.0
                    if tex1:
                        uv[i] = r.take("<f2", 2)
                        if tex2:
                            r.take("<f2", 2)
                        if has_tangent:
                            r.take("<u4")
                    if skinned:
                        r.take("u1", 16)
            idx = r.take("u1" if n_vert <= 255 else "<u2", n_idx).astype(np.int64)
            if n_idx % 3:
                raise ModelError(f"SPM index count {n_idx} is not a multiple of 3")
            if len(idx) and idx.max() >= n_vert:
                raise ModelError(f"SPM index {idx.max()} out of range ({n_vert} vertices)")
            buffers.append(SPMBuffer(pos, None if nrm is None else _unpack_normals(nrm), col,
                                     None if uv is None else uv.astype(np.float32), idx.reshape(-1, 3), tex1))
    return buffers, skinned


# ---------------------------------------------------------------------- discovery
def find_root(path: str | os.PathLike) -> Path | None:
    """The game's ``data`` folder (holding ``library`` and ``karts``) for a source path."""
    p = Path(path)
    for cand in (p, p / "data", p / INSTALLED):
        if (cand / "library").is_dir() and (cand / "karts").is_dir():
            return cand
    return None


def detect(path: str | os.PathLike) -> bool:
    return find_root(path) is not None


#: Where the package's data is below a file-system root (``/`` or a ``dpkg-deb -x`` tree), or ``None``.
locate = find_root


def _floats(text: str | None, n: int, default: float) -> np.ndarray:
    try:
        v = [float(x) for x in (text or "").split()]
    except ValueError:
        v = []
    return np.array(v if len(v) == n else [default] * n, np.float64)


def placement(elem: ET.Element, position_attr: str = "xyz") -> np.ndarray:
    """``(4, 4)`` of a scene node (game frame): translation ``xyz``, Irrlicht rotation ``hpr``
    (degrees about x, then y, then z), ``scale``."""
    t = _floats(elem.get(position_attr), 3, 0.0)
    rx, ry, rz = np.radians(_floats(elem.get("hpr"), 3, 0.0))
    s = _floats(elem.get("scale"), 3, 1.0)
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = Rz @ Ry @ Rx @ np.diag(s)
    m[:3, 3] = t
    return m


def node_models(scene: ET.Element) -> list[tuple[str, np.ndarray]]:
    """``(model file, placement)`` of the meshes a library ``node.xml`` shows (module docstring)."""
    lod: dict[str, tuple[float, str, np.ndarray]] = {}
    for group in scene.iter("group"):
        for so in group.iter("static-object"):
            if not so.get("model") or so.get("interaction") == "physicsonly":
                continue
            try:
                dist = float(so.get("lod_distance", "inf"))
            except ValueError:
                dist = float("inf")
            name = group.get("name") or so.get("lod_group", "")
            if name not in lod or dist < lod[name][0]:
                lod[name] = (dist, so.get("model"), placement(so))
    out = []
    for obj in scene.iter("object"):
        if obj.get("interaction") == "physicsonly" or obj.get("type") in ("billboard", "particle-emitter"):
            continue
        if obj.get("lod_instance", "").lower() in ("y", "yes", "true", "1"):
            member = lod.get(obj.get("lod_group", ""))
            if member:
                out.append((member[1], placement(obj) @ member[2]))
        elif obj.get("model"):
            out.append((obj.get("model"), placement(obj)))
    return out


def category_of(name: str) -> str:
    """Category from a library name's camel-case words (``stklib_autumnTree_a`` → tree → ``flora``)."""
    core = re.sub(r"^(stklib|stk|hd|gfx|meta)_", "", name)
    words = {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", core)}
    for cat, keys in _CATEGORY_WORDS:
        if words & set(keys):
            return cat
    return "prop"


def _licences(root: Path) -> Dep5 | None:
    for base in root.parents:
        f = base / COPYRIGHT
        if f.is_file():
            return Dep5.parse(f.read_text("utf-8", "replace"))
    return None


def discover(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    root = find_root(path)
    if root is None:
        raise DatasetError(f"{path}: no SuperTuxKart data (library/ and karts/) found")
    dep5 = _licences(root)
    entries: list[tuple[str, str, str, list]] = []  # (id, category, model path for licence, [(model, placement)])
    problems: list[tuple[str, str]] = []
    for node in sorted(root.glob("library/*/node.xml")):
        name = node.parent.name
        oid = f"stk__library__{safe_id(name)}"
        try:
            scene = ET.fromstring(node.read_bytes())
        except ET.ParseError as exc:
            problems.append((oid, f"{node}: unreadable XML ({exc})"))
            continue
        models = [(posixpath.join("library", name, m), M.tolist()) for m, M in node_models(scene)]
        if models:
            entries.append((oid, category_of(name), models[0][0], models))
    for kart in sorted(root.glob("karts/*/kart.xml")):
        name = kart.parent.name
        oid = f"stk__kart__{safe_id(name)}"
        try:
            k = ET.fromstring(kart.read_bytes())
        except ET.ParseError as exc:
            problems.append((oid, f"{kart}: unreadable XML ({exc})"))
            continue
        if not k.get("model-file"):
            continue
        models = [(posixpath.join("karts", name, k.get("model-file")), np.eye(4).tolist())]
        for wheel in k.iter():
            if wheel.get("model") and wheel.get("position") and wheel.tag in (
                    "front-left", "front-right", "rear-left", "rear-right"):
                models.append((posixpath.join("karts", name, wheel.get("model")), placement(wheel, "position").tolist()))
        entries.append((oid, "vehicle", models[0][0], models))
    for item in sorted(root.glob("models/*.spm")):
        if _SKIP_ITEM.search(item.stem):
            continue
        rel = posixpath.join("models", item.name)
        entries.append((f"stk__item__{safe_id(item.stem)}", "prop", rel, [(rel, np.eye(4).tolist())]))

    objects, used = [], set()
    for oid, cat, main, models in entries:
        who, lic = ("unknown", "unknown")
        if dep5 is not None:
            hit = dep5.lookup("data/" + main)
            if hit:
                who, lic = creator_from_copyright(hit[0]), hit[1]
        objects.append(SourceObject(
            object_id=unique_id(oid, used), container=str(root), model_path=main, library="supertuxkart",
            name=oid.split("__", 2)[-1], category=cat, subcategory=main.split("/", 1)[0], creator=who, license=lic,
            license_text=f"Debian's supertuxkart-data copyright, stanza for data/{main}",
            license_files=["/" + COPYRIGHT], reader=READER, source=PACKAGE, options={"models": models}))
    return objects, problems


# ---------------------------------------------------------------------- loading
def _shaders(box: Container, folder: str) -> dict[str, str]:
    """Texture name (lower case) → shader, from ``materials.xml`` in ``data/textures`` then ``folder``."""
    out: dict[str, str] = {}
    for name in ("textures/materials.xml", posixpath.join(folder, "materials.xml")):
        if box.find(name) is None:
            continue
        try:
            root = ET.fromstring(box.read(name))
        except ET.ParseError:
            continue
        for m in root.iter("material"):
            if m.get("name"):
                out[m.get("name").lower()] = (m.get("shader") or "solid").lower()
    return out


def _texture(box: Container, folder: str, name: str) -> bytes | None:
    base = posixpath.basename(name.replace("\\", "/"))
    for cand in (posixpath.join(folder, name), posixpath.join(folder, base), posixpath.join("textures", base)):
        if box.find(cand) is not None:
            return box.read(cand)
    return None


_MIRROR_Z = np.diag([1.0, 1.0, -1.0, 1.0])


def load(obj: SourceObject, box: Container) -> LoadedModel:
    """Every model of the object at its placement, in a right-handed Y-up frame (game z negated)."""
    from ..mesh_load import texture_from_bytes

    parts, warnings = [], []
    textures: dict[str, np.ndarray | None] = {}
    for model, M in obj.options.get("models", [(obj.model_path, np.eye(4).tolist())]):
        try:
            buffers, _ = read_spm(box.read(model))
        except FileNotFoundError:
            if model == obj.model_path:
                raise ModelError(f"model {model} missing") from None
            warnings.append(f"model {model} missing, left out")
            continue
        except ModelError as exc:
            if model == obj.model_path:
                raise
            warnings.append(f"{model}: {exc}, left out")
            continue
        folder = posixpath.dirname(model)
        shaders = _shaders(box, folder)
        W = _MIRROR_Z @ np.asarray(M, np.float64)
        for b in buffers:
            if not len(b.faces):
                continue
            shader = shaders.get(posixpath.basename(b.texture).lower(), "solid") if b.texture else "solid"
            if shader in SKIP_SHADERS:
                continue
            corners = b.faces.reshape(-1)
            pos = b.positions[corners].astype(np.float64) @ W[:3, :3].T + W[:3, 3]
            if b.normals is not None:
                nrm = b.normals[corners].astype(np.float64) @ np.linalg.inv(W[:3, :3])
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
            else:
                nrm = crease_normals(pos.astype(np.float32))
            tex, uvs = None, None
            if b.texture and b.uvs is not None:
                if b.texture not in textures:
                    data = _texture(box, folder, b.texture)
                    if data is None:
                        warnings.append(f"texture {b.texture} missing, drawn untextured")
                        textures[b.texture] = None
                    else:
                        try:
                            textures[b.texture] = texture_from_bytes(data, b.texture)
                        except Exception as exc:  # noqa: BLE001 - a broken texture must not drop the object
                            warnings.append(f"texture {b.texture} unreadable ({type(exc).__name__}), drawn untextured")
                            textures[b.texture] = None
                tex = textures[b.texture]
                if tex is not None:
                    if shader not in CUTOUT_SHADERS:
                        tex = tex.copy()
                        tex[..., 3] = 255
                    uvs = np.stack([b.uvs[corners, 0], 1.0 - b.uvs[corners, 1]], 1)
            # the grass shader reads vertex colour as wind weight; the others multiply by it
            rgb = np.ones((len(corners), 3), np.float32) if shader == "grass" else b.colors[corners]
            colors = np.concatenate([rgb, np.ones((len(corners), 1), np.float32)], 1)
            parts.append(Part(pos.astype(np.float32), nrm.astype(np.float32),
                              None if uvs is None else uvs.astype(np.float32), colors.astype(np.float32),
                              np.array([1, 1, 1, 1] if tex is not None else [0.8, 0.8, 0.8, 1], np.float32), tex,
                              blend=False, cutout=tex is not None and shader in CUTOUT_SHADERS,
                              name=f"{model}:{b.texture}"))
    if not parts:
        raise ModelError("no triangles (every buffer empty or a glow)")
    return LoadedModel(parts, list(dict.fromkeys(warnings)))
