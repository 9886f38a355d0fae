"""0 A.D. (Debian's ``0ad-data``): actors of PMD meshes and DDS textures, read in place from ``public.zip``.

An object is an *actor* (``art/actors/**.xml``): per ``<group>`` the variant of highest frequency
(the first one on ties) contributes a mesh (``<mesh>gaia/oak_tree_a.dae</mesh>``, shipped as
``art/meshes/gaia/oak_tree_a.dae.cached.pmd``), textures (``baseTex``: ``art/textures/skins/X``,
shipped as ``X.cached.dds``), an object colour and props — other actors attached at the mesh's prop
points (``root``: the model's origin). Variants may pull in ``art/variants/**.xml`` through a ``file``
attribute. The assembled actor is what the game shows: a building with its roof tiles and props, a
soldier with head, helmet, shield and spear. Skinned meshes take frame 0 of the actor's ``idle``
animation (``art/animation/X.dae.cached.psa``; bone states in model space, vertices moved by
``Σ w · pose · rest⁻¹``), so riders sit on their horses; without one they keep the rest pose.

Materials (``art/materials/*.xml``) decide what the texture's alpha means, as the game's
``model_common.fs`` does: with ``USE_PLAYERCOLOR`` (``player_*``) or ``USE_OBJECTCOLOR`` the
colour is ``tex.rgb · mix(colour, 1, tex.a)`` and the surface is opaque (alpha is a tint mask, not
transparency; one of the game's own player colours is chosen per object); with
``USE_TRANSPARENT`` (``basic_trans*``) alpha is a cut-out; otherwise alpha is ignored. The PMD
and PSA binary formats are read by :mod:`.zeroad_formats`.

Not objects (:func:`skip_reason`): foundations, destruction and rubble, decals, particles,
``temp``/``test`` actors, map labels, animal parts (``props/horse``, ``props/camel``,
``props/fauna``, ``props/units/elephant``: manes, tails, straps), and actors that another actor only
uses as a piece attached at its ``root`` (a building's roof or clutter: it is in the dataset as part
of that building). Animal parts still appear on their animals as props.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DatasetError
from ..parts import LoadedModel, ModelError, Part
from .common import Container, SourceObject, safe_id, tint_by_alpha, unique_id
from .zeroad_formats import PMD, read_pmd, read_psa_frame

READER = "0ad"
PACKAGE = "0ad-data"
#: Where Debian installs the archive, relative to the file-system root (or a ``dpkg-deb -x`` tree).
INSTALLED = "usr/share/games/0ad/mods/public/public.zip"
LICENSE = "CC-BY-SA-3.0"
LICENSE_URL = "https://creativecommons.org/licenses/by-sa/3.0/"
CREATOR = "Wildfire Games"
ACTORS = "art/actors/"
#: Props deeper than this below the actor are ignored (guards against prop cycles).
MAX_PROP_DEPTH = 4
#: Attach points whose props are not part of a standing object: arrows in flight, and ammunition
#: shown only while a siege engine is loaded (``loaded-projectile``, ``loaded-ammo`` …).
SKIP_ATTACHPOINTS = ("projectile",)
SKIP_ATTACHPOINT_PREFIXES = ("loaded-",)

#: Path components that mark helper actors; a component equal to one, or starting with one and "_".
_SKIP_COMPONENTS = ("temp", "test", "particle", "particles", "labels")
#: Words in an actor's file name that mark foundations, destruction stages and ground decals.
_SKIP_WORDS = ("fndn", "foundation", "destruct", "destruction", "rubble", "decal")
#: Folders of animal parts (manes, tails, straps, armour, antlers): pieces that only make sense on the animal.
_PART_FOLDERS = ("props/horse/", "props/camel/", "props/fauna/", "props/units/elephant/")


# ---------------------------------------------------------------------- actors
@dataclass
class Actor:
    """The chosen variants of one actor, merged: what one instance of it in the game looks like."""

    path: str
    mesh: str | None = None
    textures: dict[str, str] = field(default_factory=dict)
    material: str = "default.xml"
    color: tuple[float, float, float] | None = None
    props: dict[str, list[str]] = field(default_factory=dict)  # attach point -> actor paths
    idle: str | None = None  # the first animation named "idle", as the actor names it
    has_decal: bool = False
    has_particles: bool = False


def _frequency(elem: ET.Element, default: float = 0.0) -> float:
    try:
        return float(elem.get("frequency", default))
    except ValueError:
        return default


def _parse_xml(data: bytes, name: str) -> ET.Element:
    try:
        return ET.fromstring(data.decode("utf-8-sig", "replace").strip())
    except ET.ParseError as exc:
        raise ModelError(f"{name}: unreadable XML ({exc})") from None


class ActorReader:
    """Resolves actors, variants and materials of one ``public.zip`` (cached: the archive is read in place)."""

    def __init__(self, box: Container):
        self.box = box
        self._variants: dict[str, ET.Element | None] = {}
        self._materials: dict[str, set[str]] = {}
        self._actors: dict[str, Actor] = {}

    def variant_file(self, name: str, depth: int = 0) -> ET.Element | None:
        key = "art/variants/" + name
        if key not in self._variants:
            self._variants[key] = None
            if self.box.find(key) is not None and depth < 8:
                self._variants[key] = _parse_xml(self.box.read(key), key)
        return self._variants[key]

    def _variant_layers(self, v: ET.Element, depth: int = 0) -> list[ET.Element]:
        """The variant and the files it includes, outermost file first (later layers override)."""
        layers = []
        if v.get("file") and depth < 8:
            inner = self.variant_file(v.get("file"), depth)
            if inner is not None:
                layers += self._variant_layers(inner, depth + 1)
        return layers + [v]

    def _choose(self, group: ET.Element) -> ET.Element | None:
        best, best_f = None, -1.0
        for v in group.findall("variant"):
            f = _frequency(v, -1.0)
            if f < 0 and v.get("file"):
                inner = self.variant_file(v.get("file"))
                f = _frequency(inner) if inner is not None else 0.0
            f = max(f, 0.0)
            if f > best_f:
                best, best_f = v, f
        return best

    def actor(self, path: str) -> Actor:
        """The actor at ``path`` (``art/actors/...xml``) with each group's most frequent variant."""
        if path in self._actors:
            return self._actors[path]
        if self.box.find(path) is None:
            raise ModelError(f"actor {path} not in the archive")
        root = _parse_xml(self.box.read(path), path)
        if root.tag == "qualitylevels":  # an actor in several quality levels: take the first
            inner = root.find("actor")
            if inner is None:
                raise ModelError(f"{path}: no <actor> in <qualitylevels>")
            root = inner
        if root.tag != "actor":
            raise ModelError(f"{path}: root element <{root.tag}>, not <actor>")
        act = Actor(path)
        mat = root.findtext("material")
        if mat:
            act.material = mat.strip()
        for group in root.findall("group"):
            v = self._choose(group)
            if v is None:
                continue
            for layer in self._variant_layers(v):
                mesh = layer.findtext("mesh")
                if mesh and mesh.strip():
                    act.mesh = mesh.strip()
                for t in layer.iter("texture"):
                    if t.get("name") and t.get("file"):
                        act.textures[t.get("name")] = t.get("file")
                c = layer.findtext("color")
                if c:
                    try:
                        rgb = [float(x) / 255.0 for x in c.split()]
                        if len(rgb) == 3:
                            act.color = tuple(rgb)
                    except ValueError:
                        pass
                vm = layer.findtext("material")
                if vm and vm.strip():
                    act.material = vm.strip()
                seen = set()
                for p in layer.iter("prop"):
                    point = p.get("attachpoint") or "root"
                    if point not in seen:  # a variant's props replace earlier ones at that point
                        act.props[point] = []
                        seen.add(point)
                    if p.get("actor"):
                        act.props[point].append(p.get("actor"))
                for anim in layer.iter("animation"):
                    if (anim.get("name") or "").lower() == "idle" and anim.get("file"):
                        act.idle = anim.get("file")
                        break
                if layer.find("decal") is not None:
                    act.has_decal = True
                if layer.find("particles") is not None:
                    act.has_particles = True
        self._actors[path] = act
        return act

    def material_defines(self, name: str) -> set[str]:
        """Shader defines switched on by ``art/materials/<name>`` (``USE_PLAYERCOLOR`` …), plus
        ``alpha_blending`` when the material blends."""
        if name not in self._materials:
            defines: set[str] = set()
            key = "art/materials/" + name
            if self.box.find(key) is not None:
                try:
                    root = _parse_xml(self.box.read(key), key)
                    defines = {d.get("name") for d in root.iter("define") if d.get("value", "1") != "0"}
                    if root.find("alpha_blending") is not None:
                        defines.add("alpha_blending")
                except ModelError:
                    pass
            self._materials[name] = defines
        return self._materials[name]

    def player_colours(self) -> list[tuple[float, float, float]]:
        """The game's default player colours (``simulation/data/settings/player_defaults.json``), Gaia excluded."""
        key = "simulation/data/settings/player_defaults.json"
        try:
            data = json.loads(self.box.read(key).decode("utf-8-sig"))
            cols = [tuple(p["Color"][c] / 255.0 for c in "rgb") for p in data["PlayerData"][1:]]
            if cols:
                return cols
        except (OSError, KeyError, ValueError, TypeError):
            pass
        return [(21 / 255, 55 / 255, 149 / 255)]


def mesh_file(mesh: str) -> list[str]:
    """Archive names to try for an actor's ``<mesh>`` (``X.dae`` is shipped converted, as ``X.dae.cached.pmd``)."""
    base = "art/meshes/" + mesh.lstrip("/")
    return [base + ".cached.pmd", base] if not base.endswith(".pmd") else [base, base + ".cached.pmd"]


def animation_file(name: str) -> list[str]:
    """Archive names to try for an ``<animation file=…>`` (shipped as ``X.dae.cached.psa``)."""
    base = "art/animation/" + name.lstrip("/")
    return [base + ".cached.psa", base]


def texture_file(name: str) -> list[str]:
    """Archive names to try for a ``<texture file=…>`` (shipped converted, as ``X.cached.dds``)."""
    base = "art/textures/skins/" + name.lstrip("/")
    return [base + ".cached.dds", base]


# ---------------------------------------------------------------------- what is an object
def skip_reason(actor_path: str, as_prop: bool = False) -> str | None:
    """Why an actor (by its archive path) is not an object, or ``None``: helper actors by name.
    ``as_prop``: whether it is left off the actor that props it (animal parts are kept there)."""
    rel = actor_path[len(ACTORS):] if actor_path.startswith(ACTORS) else actor_path
    parts = [p.lower() for p in rel.split("/")]
    for comp in parts[:-1] + [posixpath.splitext(parts[-1])[0]]:
        for word in _SKIP_COMPONENTS:
            if comp == word or comp.startswith(word + "_"):
                return f"{word} actor"
    if not as_prop and any(rel.lower().startswith(f) for f in _PART_FOLDERS):
        return "animal part"
    stem = posixpath.splitext(parts[-1])[0]
    for word in _SKIP_WORDS:
        if re.search(rf"(^|[_\-.]){word}", stem) or stem.startswith(word):
            return f"{word} actor"
    return None


#: (path prefix under art/actors, category), the first match wins; then the rules in :func:`category_of`.
_CATEGORY_PREFIXES = (
    ("fauna/", "fauna"),
    ("flora/", "flora"), ("props/flora/", "flora"), ("fungi/", "flora"), ("campaigns/flora/", "flora"),
    ("geology/", "rock"), ("props/geology/", "rock"),
    ("props/units/weapons/", "tool"), ("props/units/tools/", "tool"), ("props/units/siege_artillery/", "vehicle"),
    ("props/units/heads/", "head"),
    ("props/units/", "prop"), ("props/special/", "prop"), ("props/", "prop"), ("campaigns/props/", "prop"),
    ("structures/", "building"), ("special/", "building"), ("campaigns/structures/", "building"),
    ("units/", "character"), ("campaigns/units/", "character"),
)
#: Words of an actor's file name that make a unit or structure a vehicle (ships, siege engines, chariots).
_SHIP_WORDS = ("ship", "boat", "trireme", "bireme", "quinquereme", "merchantman", "warship", "arrowship")


def category_of(actor_path: str) -> str:
    """Category from the actor's folders (``fauna``, ``flora``, ``rock``, ``building``, ``character``,
    ``vehicle``, ``tool``, ``prop``, ``head``); ships (units or structures), siege engines
    (``units/*/siege_*``) and chariots are ``vehicle``."""
    rel = actor_path[len(ACTORS):] if actor_path.startswith(ACTORS) else actor_path
    rel = rel.lower()
    stem = posixpath.splitext(posixpath.basename(rel))[0]
    words = stem.split("_")
    for prefix, cat in _CATEGORY_PREFIXES:
        if rel.startswith(prefix):
            if cat in ("character", "building") and any(w in _SHIP_WORDS for w in words):
                return "vehicle"
            if cat == "character" and (stem.startswith("siege_") or "chariot" in words):
                return "vehicle"
            return cat
    return "prop"


def find_archive(path: str | os.PathLike) -> Path | None:
    """``public.zip`` for a source path: the zip itself, a ``mods/public`` folder, a 0ad data folder,
    or a file-system root / ``dpkg-deb -x`` tree holding Debian's install."""
    p = Path(path)
    if p.is_file():
        return p if p.name == "public.zip" else None
    for rel in ("public.zip", "public/public.zip", "mods/public/public.zip", INSTALLED):
        if (p / rel).is_file():
            return p / rel
    return None


def detect(path: str | os.PathLike) -> bool:
    return find_archive(path) is not None


#: Where the package's data is below a file-system root (``/`` or a ``dpkg-deb -x`` tree), or ``None``.
locate = find_archive


def discover(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    """Every actor of the archive that is an object (see the module docstring), sorted by path."""
    archive = find_archive(path)
    if archive is None:
        raise DatasetError(f"{path}: no 0 A.D. public.zip found")
    with Container(archive) as box:
        reader = ActorReader(box)
        actor_paths = sorted(n for n in box.names() if n.startswith(ACTORS) and n.endswith(".xml"))
        if not actor_paths:
            raise DatasetError(f"{archive}: no actors under {ACTORS}")
        actors: dict[str, Actor] = {}
        problems: list[tuple[str, str]] = []
        ids: dict[str, str] = {}
        used: set[str] = set()
        for a in actor_paths:
            ids[a] = unique_id("0ad__" + "__".join(safe_id(p) for p in a[len(ACTORS):-4].split("/")), used)
            if skip_reason(a):
                continue
            try:
                actors[a] = reader.actor(a)
            except ModelError as exc:
                problems.append((ids[a], str(exc)))
        # pieces: actors that other actors attach at their root (and nowhere else)
        at_root, elsewhere = set(), set()
        for act in actors.values():
            for point, props in act.props.items():
                for p in props:
                    (at_root if point == "root" else elsewhere).add(ACTORS + p)
        objects = []
        for a, act in actors.items():
            if a in at_root and a not in elsewhere:
                continue
            if act.has_decal or (act.mesh is None and not any(act.props.values())):
                continue  # a ground decal, a particle emitter, an empty actor
            rel = a[len(ACTORS):]
            objects.append(SourceObject(
                object_id=ids[a], container=str(archive), model_path=a, library="0ad",
                name=posixpath.splitext(posixpath.basename(rel))[0], category=category_of(a),
                subcategory=posixpath.dirname(rel), creator=CREATOR, license=LICENSE,
                license_text="Creative Commons Attribution-ShareAlike 3.0 (Debian's 0ad-data copyright: "
                             "Copyright 2010 Wildfire Games, License: CC-BY-SA-3.0)",
                license_url=LICENSE_URL, license_files=["/usr/share/doc/0ad-data/copyright"],
                reader=READER, source=PACKAGE))
    return objects, problems


# ---------------------------------------------------------------------- loading
def _decode_texture(data: bytes) -> np.ndarray:
    from ..mesh_load import texture_from_bytes

    return texture_from_bytes(data)


def _player_colour(reader: ActorReader, object_id: str):
    cols = reader.player_colours()
    k = int.from_bytes(hashlib.sha256(f"0ad-player:{object_id}".encode()).digest()[:4], "big")
    return cols[k % len(cols)]


#: Game frame (left-handed, Y up) → splatgen's model frame (right-handed, Y up).
_MIRROR_Z = np.diag([1.0, 1.0, -1.0, 1.0])


def _actor_parts(reader: ActorReader, path: str, world: np.ndarray, depth: int, colour,
                 warnings: list[str], textures: dict, out: list[Part]) -> None:
    act = reader.actor(path)
    pmd = None
    if act.mesh:
        name = next((n for n in mesh_file(act.mesh) if reader.box.find(n) is not None), None)
        if name is None:
            warnings.append(f"mesh {act.mesh} of {path} not in the archive")
        else:
            pmd = read_pmd(reader.box.read(name))
            positions, normals, points = pmd.positions, pmd.normals, pmd.prop_points
            if len(pmd.bones) and act.idle:
                positions, normals, points = _idle_pose(reader, act, pmd, warnings)
            if len(pmd.faces):
                out.append(_pmd_part(reader, act, pmd, world, colour, warnings, textures, positions, normals))
    if depth >= MAX_PROP_DEPTH:
        return
    points = points if pmd is not None else {}
    for point, props in act.props.items():
        if point in SKIP_ATTACHPOINTS or point.startswith(SKIP_ATTACHPOINT_PREFIXES) or not props:
            continue
        if point in points:
            at = world @ points[point]
        elif point == "root":
            at = world
        else:
            warnings.append(f"prop point {point} missing on {act.mesh or path}; its props left out")
            continue
        for prop in props:
            ppath = ACTORS + prop
            if skip_reason(ppath, as_prop=True):
                continue
            try:
                _actor_parts(reader, ppath, at, depth + 1, colour, warnings, textures, out)
            except ModelError as exc:
                warnings.append(f"prop {prop} left out: {exc}")


def _idle_pose(reader: ActorReader, act: Actor, pmd: PMD, warnings: list[str]):
    """Positions, normals and prop points of a skinned mesh at frame 0 of the actor's idle animation
    (a rider sits, a soldier stands at ease); the rest pose when that animation cannot be used."""
    name = next((n for n in animation_file(act.idle) if reader.box.find(n) is not None), None)
    try:
        if name is None:
            raise ModelError(f"animation {act.idle} not in the archive")
        pose = read_psa_frame(reader.box.read(name))
        if len(pose) != len(pmd.bones):
            raise ModelError(f"animation {act.idle} has {len(pose)} bones, the mesh {len(pmd.bones)}")
        return pmd.posed(pose)
    except ModelError as exc:
        warnings.append(f"{exc}; {act.mesh} drawn in its rest pose")
        return pmd.positions, pmd.normals, pmd.prop_points


def _pmd_part(reader: ActorReader, act: Actor, pmd: PMD, world: np.ndarray, colour,
              warnings: list[str], textures: dict, positions: np.ndarray, normals: np.ndarray) -> Part:
    corners = pmd.faces.reshape(-1)
    M = _MIRROR_Z @ world  # model (game) → right-handed frame
    pos = positions[corners].astype(np.float64) @ M[:3, :3].T + M[:3, 3]
    nrm = normals[corners].astype(np.float64) @ np.linalg.inv(M[:3, :3])  # inverse transpose, row form
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    defines = reader.material_defines(act.material)
    tex, uvs = None, None
    base = act.textures.get("baseTex")
    if base and pmd.uvs.shape[1] > 0:
        name = next((n for n in texture_file(base) if reader.box.find(n) is not None), None)
        if name is None:
            warnings.append(f"texture {base} missing, drawn untextured")
        else:
            key = (name, act.material, act.color)
            if key not in textures:
                try:
                    img = _decode_texture(reader.box.read(name))
                    if "USE_PLAYERCOLOR" in defines:
                        img = tint_by_alpha(img, colour, mode="multiply")
                    elif "USE_OBJECTCOLOR" in defines:
                        img = tint_by_alpha(img, act.color or (1.0, 1.0, 1.0), mode="multiply")
                    elif "USE_TRANSPARENT" not in defines:
                        img = img.copy()
                        img[..., 3] = 255
                    textures[key] = img
                except Exception as exc:  # noqa: BLE001 - a broken texture must not drop the object
                    warnings.append(f"texture {base} unreadable ({type(exc).__name__}), drawn untextured")
                    textures[key] = None
            tex = textures[key]
            if tex is not None:
                uv = pmd.uvs[corners, 0].astype(np.float64)
                uvs = uv  # as stored: v = 0 is the decoded image's bottom row (module docstring)
    cutout = "USE_TRANSPARENT" in defines
    return Part(pos.astype(np.float32), nrm.astype(np.float32), None if uvs is None else uvs.astype(np.float32),
                np.ones((len(pos), 4), np.float32), np.array([1, 1, 1, 1] if tex is not None else [0.8, 0.8, 0.8, 1],
                                                             np.float32),
                tex, blend=False, cutout=cutout and tex is not None, name=act.mesh or act.path)


def load(obj: SourceObject, box: Container) -> LoadedModel:
    """The assembled actor ``obj.model_path`` (mesh, textures, props) in a right-handed Y-up frame."""
    reader = getattr(box, "_splatgen_0ad_reader", None)
    if reader is None:  # one per opened archive: variants and materials are read once
        reader = ActorReader(box)
        box._splatgen_0ad_reader = reader
    warnings: list[str] = []
    parts: list[Part] = []
    _actor_parts(reader, obj.model_path, np.eye(4), 0, _player_colour(reader, obj.object_id), warnings, {}, parts)
    if not parts:
        why = "; ".join(dict.fromkeys(warnings)) or "actor without a mesh, or every mesh empty"
        raise ModelError(f"no triangles ({why})")
    return LoadedModel(parts, list(dict.fromkeys(warnings)))
