"""MegaGlest (Debian's ``megaglest-data``): G3D v4 models of units, buildings, tileset objects and resources.

Objects come from the game's own definitions, not from a walk over every ``.g3d``:

* a unit or building ``techs/<tech>/factions/<faction>/units/<unit>/<unit>.xml``: the animation of its
  first ``stop`` skill (standing, or the finished building), frame 0; construction, destruction,
  walking and dying models are other skills' and are not objects;
* a tileset object ``tilesets/<tileset>/<tileset>.xml``: every ``<object><model path=…>``;
* a resource ``techs/<tech>/resources/<resource>/<resource>.xml``: its ``<model path=…>``.

Byte-identical models with identical textures (``magitech`` repeats ``megapack``'s factions,
tilesets share stones) are listed once, the first by path.

G3D v4 (little endian): ``"G3D"`` + version byte 4; ``u16 meshCount``, ``u8 type`` (0); per mesh a
header (``name[64]``, ``u32 frameCount, vertexCount, indexCount``, ``f32 diffuse[3], specular[3],
specularPower, opacity``, ``u32 properties``, ``u32 textures``), one ``name[64]`` per set bit of
``textures`` (bit 0: the diffuse texture, relative to the model's folder), then ``frameCount ×
vertexCount`` positions and as many normals (f32 × 3), ``vertexCount`` texture coordinates (f32 × 2,
only when a texture is named) and ``indexCount`` u32 indices. ``properties`` bit 0 (value 1) is
"custom colour": the texture's alpha is then the team-colour mask, drawn opaque as
``mix(team, rgb, alpha)`` (the game's ``GL_INTERPOLATE`` texture combiner); bit 1 (value 2) is
two-sided. (Measured on the package: unit meshes with alpha in their texture have bit 0 set, tileset
trees with cut-out leaves only bit 1; older Glest documents give the bits the other way round.)
Models are Y up.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DatasetError
from ..parts import LoadedModel, ModelError, Part
from .common import TEAM_COLOURS, Container, SourceObject, safe_id, tint_by_alpha, unique_id

READER = "megaglest"
PACKAGE = "megaglest-data"
INSTALLED = "usr/share/games/megaglest"
LICENSE = "CC-BY-SA-3.0"
LICENSE_URL = "https://creativecommons.org/licenses/by-sa/3.0/"
COPYRIGHT = "usr/share/doc/megaglest-data/copyright"
#: Used where the package's copyright file names no author for a faction or tileset.
DEFAULT_CREATOR = "The Glest Team and The MegaGlest Team"

_HEADER = np.dtype([("name", "S64"), ("frames", "<u4"), ("vertices", "<u4"), ("indices", "<u4"),
                    ("diffuse", "<f4", 3), ("specular", "<f4", 3), ("specular_power", "<f4"),
                    ("opacity", "<f4"), ("properties", "<u4"), ("textures", "<u4")])
#: ``properties`` bits (MegaGlest's ``MeshPropertyFlag``; older Glest documents swap the two).
CUSTOM_COLOUR = 1
TWO_SIDED = 2

#: Words of a unit's name that make it a vehicle or an animal (the rest are characters).
_VEHICLE_WORDS = ("catapult", "ballista", "machine", "airship", "ornithopter", "ram", "ship", "boat", "chariot",
                  "wagon", "cart", "technodrome")
_ANIMAL_WORDS = ("cow", "bull", "pig", "chicken", "horse", "ibis", "snake", "scarab", "dragon", "camel", "elephant",
                 "thunderbird", "bear", "wolf")
#: Words of a tileset model's file name: flora or rock (the rest are props).
_FLORA_WORDS = ("tree", "bush", "palm", "plant", "grass", "flower", "fern", "reed", "kaktus", "cactus", "tanne",
                "birch", "pine", "shrub", "mushroom", "leaf", "oak", "willow", "fir", "spruce", "hedge", "log")
_ROCK_WORDS = ("stone", "rock", "boulder", "cliff", "vulcano", "volcano", "crystal", "gold", "ore")


@dataclass
class G3DMesh:
    """One mesh of a G3D model at frame 0: ``positions``/``normals`` ``(V, 3)``, ``uvs`` ``(V, 2)`` or
    ``None``, ``faces`` ``(F, 3)``, the diffuse colour and opacity, property flags, texture name."""

    name: str
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None
    faces: np.ndarray
    diffuse: np.ndarray
    opacity: float
    properties: int
    texture: str | None


def read_g3d(data: bytes) -> list[G3DMesh]:
    """Parse a G3D v4 file into its meshes at frame 0. Raises :class:`ModelError`."""
    if len(data) < 7 or data[:3] != b"G3D":
        raise ModelError("not a G3D file (no G3D magic)")
    if data[3] != 4:
        raise ModelError(f"unsupported G3D version {data[3]}")
    n_mesh = int(np.frombuffer(data, "<u2", 1, 4)[0])
    if data[6] != 0:
        raise ModelError(f"unsupported G3D model type {data[6]}")
    off, meshes = 7, []
    try:
        for _ in range(n_mesh):
            h = np.frombuffer(data, _HEADER, 1, off)[0]
            off += _HEADER.itemsize
            n_frames, n_vert, n_idx = int(h["frames"]), int(h["vertices"]), int(h["indices"])
            names = []
            for _bit in range(bin(int(h["textures"])).count("1")):
                names.append(data[off:off + 64].split(b"\0", 1)[0].decode("latin-1").strip())
                off += 64
            if n_vert and not n_frames:
                raise ModelError("G3D mesh with vertices but no frames")
            pos = np.frombuffer(data, "<f4", n_frames * n_vert * 3, off).reshape(max(n_frames, 1), n_vert, 3)[0] \
                if n_frames else np.zeros((0, 3), np.float32)
            off += n_frames * n_vert * 12
            nrm = np.frombuffer(data, "<f4", n_frames * n_vert * 3, off).reshape(max(n_frames, 1), n_vert, 3)[0] \
                if n_frames else np.zeros((0, 3), np.float32)
            off += n_frames * n_vert * 12
            uvs = None
            if names:
                uvs = np.frombuffer(data, "<f4", n_vert * 2, off).reshape(n_vert, 2)
                off += n_vert * 8
            idx = np.frombuffer(data, "<u4", n_idx, off)
            off += n_idx * 4
            if n_idx % 3:
                raise ModelError(f"G3D index count {n_idx} is not a multiple of 3")
            faces = idx.reshape(-1, 3).astype(np.int64)
            if len(faces) and faces.max() >= n_vert:
                raise ModelError(f"G3D index {faces.max()} out of range ({n_vert} vertices)")
            meshes.append(G3DMesh(h["name"].split(b"\0", 1)[0].decode("latin-1"), pos.astype(np.float32),
                                  nrm.astype(np.float32), None if uvs is None else uvs.astype(np.float32), faces,
                                  np.asarray(h["diffuse"], np.float32), float(h["opacity"]), int(h["properties"]),
                                  names[0] if names else None))
    except ValueError as exc:  # np.frombuffer past the end
        raise ModelError(f"truncated G3D ({exc})") from None
    if off != len(data):
        raise ModelError(f"G3D has {len(data) - off} bytes after its last mesh")
    return meshes


# ---------------------------------------------------------------------- discovery
def find_root(path: str | os.PathLike) -> Path | None:
    """The game data folder (holding ``techs`` and ``tilesets``) for a source path."""
    p = Path(path)
    for cand in (p, p / INSTALLED, p / "megaglest"):
        if (cand / "techs").is_dir() and (cand / "tilesets").is_dir():
            return cand
    return None


def detect(path: str | os.PathLike) -> bool:
    return find_root(path) is not None


#: Where the package's data is below a file-system root (``/`` or a ``dpkg-deb -x`` tree), or ``None``.
locate = find_root


def _xml(path: Path) -> ET.Element | None:
    try:
        return ET.fromstring(path.read_bytes().decode("utf-8-sig", "replace").strip())
    except (OSError, ET.ParseError):
        return None


def stop_model(unit_xml: ET.Element) -> str | None:
    """The animation of a unit's first ``stop`` skill (else of its first skill with one), relative to the unit."""
    first = None
    for skill in unit_xml.iter("skill"):
        t = skill.find("type")
        anim = skill.find("animation")
        if anim is None or not anim.get("path"):
            continue
        first = first or anim.get("path")
        if t is not None and t.get("value") == "stop":
            return anim.get("path")
    return first


def unit_category(name: str, unit_xml: ET.Element) -> str:
    """``building`` for units without a ``move`` skill; ``vehicle`` / ``fauna`` by name; else ``character``."""
    moves = any((s.find("type") is not None and s.find("type").get("value") == "move") for s in unit_xml.iter("skill"))
    if not moves:
        return "building"
    words = set(re.split(r"[_\W\d]+", name.lower()))
    if words & set(_VEHICLE_WORDS):
        return "vehicle"
    if words & set(_ANIMAL_WORDS):
        return "fauna"
    return "character"


def object_category(model_file: str) -> str:
    stem = posixpath.splitext(posixpath.basename(model_file))[0].lower()
    if any(w in stem for w in _ROCK_WORDS):
        return "rock"
    if any(w in stem for w in _FLORA_WORDS):
        return "flora"
    return "prop"


def creators(copyright_text: str) -> dict[str, str]:
    """Authors per faction / tileset from the package's copyright file (keys lower case, e.g.
    ``norsemen``, ``tileset:forest``)."""
    out: dict[str, str] = {}
    lines = [ln.strip() for ln in copyright_text.splitlines()]
    for i, ln in enumerate(lines):
        m = re.match(r"^(Magic|Tech|Indians|Norsemen|Egyptians|Persians|Romans):$", ln)
        if m:
            body = " ".join(x for x in lines[i + 1:i + 4] if x and x != ".")
            who = re.findall(r"\(c\)\s*(.+?)\s*(?:\(<|$)", body)
            key = {"indians": "indian", "egyptians": "egypt", "persians": "persian"}.get(m.group(1).lower(), m.group(1).lower())
            if who:
                out[key] = who[0].strip().rstrip(".")
        t = re.match(r"^Tileset\s+([\w ]+?):\s*(?:by\s+)?(.+)$", ln)
        if t:
            out["tileset:" + t.group(1).strip().lower().replace(" ", "_")] = t.group(2).strip()
    return out


def _copyright(root: Path) -> str:
    for base in root.parents:  # the tree Debian's package was unpacked into, or /
        f = base / COPYRIGHT
        if f.is_file():
            return f.read_text("utf-8", "replace")
    return ""


def discover(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    root = find_root(path)
    if root is None:
        raise DatasetError(f"{path}: no MegaGlest data (techs/ and tilesets/) found")
    who = creators(_copyright(root))
    found: list[tuple[str, str, str, str, str]] = []  # (model path, id, category, subcategory, creator)
    problems: list[tuple[str, str]] = []
    for unit_file in sorted(root.glob("techs/*/factions/*/units/*/*.xml")):
        unit_dir = unit_file.parent
        if unit_file.stem != unit_dir.name:
            continue
        tech, faction = unit_dir.parts[-5], unit_dir.parts[-3]
        oid = f"megaglest__{safe_id(tech)}__{safe_id(faction)}__{safe_id(unit_dir.name)}"
        xml = _xml(unit_file)
        if xml is None:
            problems.append((oid, f"{unit_file}: unreadable XML"))
            continue
        model = stop_model(xml)
        if model is None:
            problems.append((oid, f"{unit_file}: no skill with an animation"))
            continue
        rel = posixpath.normpath((unit_dir.relative_to(root) / model).as_posix())
        found.append((rel, oid, unit_category(unit_dir.name, xml), f"{tech}/{faction}",
                      who.get(faction.lower(), DEFAULT_CREATOR)))
    for res_file in sorted(root.glob("techs/*/resources/*/*.xml")):
        xml = _xml(res_file)
        model = xml.find(".//model") if xml is not None else None
        if model is not None and model.get("path"):
            tech = res_file.parts[-4]
            rel = posixpath.normpath((res_file.parent.relative_to(root) / model.get("path")).as_posix())
            found.append((rel, f"megaglest__{safe_id(tech)}__resource__{safe_id(res_file.stem)}", "rock",
                          f"{tech}/resources", DEFAULT_CREATOR))
    for ts_file in sorted(root.glob("tilesets/*/*.xml")):
        if ts_file.stem != ts_file.parent.name:
            continue
        xml = _xml(ts_file)
        if xml is None:
            problems.append((f"megaglest__tileset__{safe_id(ts_file.stem)}", f"{ts_file}: unreadable XML"))
            continue
        for m in xml.iter("model"):
            if not m.get("path"):
                continue
            rel = posixpath.normpath((ts_file.parent.relative_to(root) / m.get("path")).as_posix())
            stem = posixpath.splitext(posixpath.basename(rel))[0]
            found.append((rel, f"megaglest__tileset__{safe_id(ts_file.stem)}__{safe_id(stem)}", object_category(rel),
                          f"tilesets/{ts_file.stem}", who.get("tileset:" + ts_file.stem.lower(), DEFAULT_CREATOR)))

    objects, seen, used = [], {}, set()
    for rel, oid, cat, sub, creator in found:
        f = root / rel
        if not f.is_file():
            problems.append((oid, f"model {rel} missing"))
            continue
        key = _content_key(f)
        if key in seen:
            continue  # a byte-identical copy of an object listed already
        seen[key] = oid
        objects.append(SourceObject(
            object_id=unique_id(oid, used), container=str(root), model_path=rel, library="megaglest",
            name=posixpath.splitext(posixpath.basename(rel))[0], category=cat, subcategory=sub, creator=creator,
            license=LICENSE, license_text="Creative Commons Attribution-ShareAlike 3.0 Unported "
                                          "(Debian's megaglest-data copyright)",
            license_url=LICENSE_URL, license_files=["/" + COPYRIGHT], reader=READER, source=PACKAGE))
    return objects, problems


def _content_key(model: Path) -> str:
    """Hash of a model file and of the texture files it names (what makes two copies identical)."""
    h = hashlib.sha256()
    data = model.read_bytes()
    h.update(data)
    try:
        for mesh in read_g3d(data):
            if mesh.texture:
                t = model.parent / mesh.texture
                h.update(t.read_bytes() if t.is_file() else mesh.texture.encode())
    except ModelError:
        pass
    return h.hexdigest()


# ---------------------------------------------------------------------- loading
def _team_colour(object_id: str):
    k = int.from_bytes(hashlib.sha256(f"megaglest-team:{object_id}".encode()).digest()[:4], "big")
    return TEAM_COLOURS[k % len(TEAM_COLOURS)]


def load(obj: SourceObject, box: Container) -> LoadedModel:
    """Frame 0 of every mesh of the model, textured from files next to it."""
    from ..mesh_load import texture_from_bytes

    try:
        data = box.read(obj.model_path)
    except OSError as exc:
        raise ModelError(f"cannot read {obj.model_path}: {exc}") from None
    meshes = read_g3d(data)
    folder = posixpath.dirname(obj.model_path)
    parts, warnings = [], []
    team = _team_colour(obj.object_id)
    for m in meshes:
        if len(m.faces) == 0 or m.opacity < 0.02:
            continue
        corners = m.faces.reshape(-1)
        pos, nrm = m.positions[corners], m.normals[corners]
        bad = ~np.isfinite(nrm).all(1) | (np.linalg.norm(nrm, axis=1) < 1e-6)
        if bad.any():
            from ..parts import crease_normals

            nrm = np.where(bad[:, None], crease_normals(pos), nrm)
        nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        tex, uvs = None, None
        if m.texture and m.uvs is not None:
            name = posixpath.normpath(posixpath.join(folder, m.texture.replace("\\", "/")))
            try:
                tex = texture_from_bytes(box.read(name), name)
                if m.properties & CUSTOM_COLOUR:
                    tex = tint_by_alpha(tex, team, mode="mix")
                uvs = m.uvs[corners]
            except FileNotFoundError:
                warnings.append(f"texture {m.texture} missing, drawn untextured")
                tex = None
            except Exception as exc:  # noqa: BLE001 - a broken texture must not drop the object
                warnings.append(f"texture {m.texture} unreadable ({type(exc).__name__}), drawn untextured")
                tex = None
        colour = np.array([*(np.clip(m.diffuse, 0, 1) if tex is None else (1, 1, 1)), min(m.opacity, 1.0)], np.float32)
        cutout = tex is not None and not (m.properties & CUSTOM_COLOUR) and tex[..., 3].min() < 250
        parts.append(Part(pos.astype(np.float32), nrm.astype(np.float32),
                          None if uvs is None else uvs.astype(np.float32), np.ones((len(pos), 4), np.float32),
                          colour, tex, blend=bool(m.opacity < 0.98), cutout=cutout, name=m.name))
    if not parts:
        raise ModelError("no triangles (every mesh empty or invisible)")
    return LoadedModel(parts, warnings)
