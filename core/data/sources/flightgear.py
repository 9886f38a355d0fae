"""FlightGear (Debian's ``flightgear-data-models`` and ``flightgear-data-ai``): AC3D ``.ac`` models.

Objects: every ``.ac`` under ``Models/`` and ``AI/Aircraft/`` except the helper models that
:func:`skip_reason` names: sky, weather and effect folders (``Astro``, ``Weather``, ``Effects``),
light folders, and files whose name marks a light, a flare, a shadow, a wake, a contrail, a
propeller disc or a landing aid. Many AI aircraft come in one ``.ac`` a livery: they are separate
objects of one geometry group (the builder groups them). Models without textures are kept
(drawn in their material colours). Both packages are GPL-2+ (Debian's copyright: "Curtis L. Olson
and the FlightGear team").

AC3D (text; https://www.inivis.com/ac3d/man/ac3dfileformat.html): ``AC3Db``, ``MATERIAL`` lines
(``rgb``, ``amb``, ``emis``, ``spec``, ``shi``, ``trans``), then a tree of ``OBJECT world|group|poly``
with ``name``, ``data`` (skipped), ``texture``, ``texrep``, ``texoff``, ``rot`` (3×3, row-major), ``loc``,
``crease``, ``url``, ``numvert`` (vertex lines), ``numsurf`` (``SURF`` flags: type in the low nibble,
0 = polygon, 1 / 2 = lines; ``0x10`` smooth, ``0x20`` two-sided; ``mat``; ``refs`` lines ``index u v``)
and ``kids``. An object's vertices are in its own frame: world = parent · (``rot`` · v + ``loc``).
Polygons are triangulated as fans, lines dropped. UV ``v`` counts from the image's bottom row (as
OBJ's); texture files sit beside the model (PNG, SGI ``.rgb``, DDS …). Models are Y up.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DatasetError
from ..parts import LoadedModel, ModelError, Part, crease_normals
from .common import Container, SourceObject, safe_id, unique_id

READER = "flightgear"
PACKAGES = ("flightgear-data-models", "flightgear-data-ai")
INSTALLED = "usr/share/games/flightgear"
LICENSE = "GPL-2.0-or-later"
LICENSE_URL = "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html"
CREATOR = "Curtis L. Olson and the FlightGear team"
#: Folders (any level) that hold no objects: sky, weather, effects, lights.
_SKIP_FOLDERS = ("astro", "weather", "effects", "lights", "light")
#: Words of a file name that mark a helper model.
_SKIP_WORDS = ("light", "lights", "flare", "tracer", "contrail", "shadow", "wake", "sillage", "flash", "strobe",
               "beacon", "navl", "navr", "navback", "propdisc", "prop_spin", "propeller_disc", "flols", "datum",
               "glide", "wave", "square", "smoke", "exhaust", "lod")
_CATEGORIES = (  # (first folder under Models/ or AI/, category)
    ("aircraft", "vehicle"), ("maritime", "vehicle"), ("transport", "vehicle"), ("autopush", "vehicle"),
    ("military", "vehicle"), ("buildings", "building"), ("commercial", "building"), ("residential", "building"),
    ("industrial", "building"), ("power", "building"), ("agriculture", "building"), ("airport", "building"),
    ("volcanoes", "rock"), ("geometry", "vehicle"),
)


@dataclass
class ACMaterial:
    rgb: tuple[float, float, float] = (0.8, 0.8, 0.8)
    trans: float = 0.0


@dataclass
class ACSurfaces:
    """Triangles of one object and material: ``positions`` ``(3T, 3)`` model coordinates,
    ``uvs`` ``(3T, 2)`` (``texrep`` / ``texoff`` applied), ``texture`` (relative to the model) or
    ``None``, ``material`` index."""

    positions: np.ndarray
    uvs: np.ndarray
    texture: str | None
    material: int


class _Lines:
    """The file's non-blank lines; ``next`` splits one into tokens (quotes only where a name can be)."""

    def __init__(self, text: str):
        self.lines = [ln for ln in (x.strip() for x in text.splitlines()) if ln]
        self.i = 0

    def at_end(self) -> bool:
        return self.i >= len(self.lines)

    def next(self) -> list[str]:
        if self.i >= len(self.lines):
            raise ModelError("truncated AC3D file")
        line = self.lines[self.i]
        self.i += 1
        if '"' in line:
            try:
                return shlex.split(line, posix=True)
            except ValueError:  # an unbalanced quote in a name
                return line.split()
        return line.split()

    def block(self, n: int) -> list[str]:
        """The next ``n`` lines, unsplit."""
        if self.i + n > len(self.lines):
            raise ModelError("truncated AC3D file")
        out = self.lines[self.i:self.i + n]
        self.i += n
        return out


def _floats(tokens: list[str], n: int, what: str) -> list[float]:
    try:
        v = [float(x) for x in tokens[:n]]
    except ValueError:
        raise ModelError(f"AC3D {what}: not numbers ({' '.join(tokens[:n])})") from None
    if len(v) != n:
        raise ModelError(f"AC3D {what}: {len(v)} numbers, need {n}")
    return v


def _number_block(lines: list[str], width: int, what: str) -> np.ndarray:
    try:
        arr = np.array(" ".join(lines).split(), dtype=np.float64)
    except ValueError:
        raise ModelError(f"AC3D {what}: not numbers") from None
    if arr.size != width * len(lines):
        raise ModelError(f"AC3D {what}: expected {width} numbers a line")
    return arr.reshape(-1, width)


def read_ac(text: str) -> tuple[list[ACMaterial], list[ACSurfaces], int]:
    """Parse an AC3D file: materials, triangles grouped by (object, material) in model coordinates,
    and the number of polygon surfaces read. An object that announces more kids than the file holds
    (common in the wild) ends at the end of the file. Raises :class:`ModelError`."""
    src = _Lines(text)
    head = src.next() if not src.at_end() else [""]
    if not head or not head[0].startswith("AC3D"):
        raise ModelError("not an AC3D file (no AC3D header)")
    materials: list[ACMaterial] = []
    groups: list[ACSurfaces] = []
    n_surf = 0

    def read_object(parent: np.ndarray, depth: int) -> None:
        nonlocal n_surf
        if depth > 64:
            raise ModelError("AC3D objects nested too deep")
        rot, loc = np.eye(3), np.zeros(3)
        texture, rep, off = None, np.ones(2), np.zeros(2)
        verts = np.zeros((0, 3))
        tris: dict[int, tuple[list, list]] = {}  # material -> (vertex indices, uvs) of fan triangles
        while True:
            tok = src.next()
            key = tok[0].lower()
            if key == "kids":
                world = np.eye(4)
                world[:3, :3] = parent[:3, :3] @ rot
                world[:3, 3] = parent[:3, :3] @ loc + parent[:3, 3]
                for mat, (idx, uv) in tris.items():
                    if idx:
                        p = verts[np.asarray(idx)]
                        groups.append(ACSurfaces(p @ world[:3, :3].T + world[:3, 3],
                                                 np.asarray(uv, np.float64).reshape(-1, 2) * rep + off, texture, mat))
                for _ in range(int(tok[1])):
                    if src.at_end():
                        return
                    kid = src.next()
                    if kid[0].upper() != "OBJECT":
                        raise ModelError(f"AC3D: expected OBJECT, found {kid[0]}")
                    read_object(world, depth + 1)
                return
            if key == "data":
                n, got = int(tok[1]), 0
                while got < n:  # the data block may span lines
                    got += len(src.block(1)[0]) + 1
            elif key == "texture":
                texture = tok[1] if len(tok) > 1 else None
            elif key == "texrep":
                rep = np.array(_floats(tok[1:], 2, "texrep"))
            elif key == "texoff":
                off = np.array(_floats(tok[1:], 2, "texoff"))
            elif key == "rot":
                rot = np.array(_floats(tok[1:], 9, "rot")).reshape(3, 3)
            elif key == "loc":
                loc = np.array(_floats(tok[1:], 3, "loc"))
            elif key == "numvert":
                n = int(tok[1])
                verts = _number_block(src.block(n), 3, "vertices") if n else np.zeros((0, 3))
            elif key == "numsurf":
                for _ in range(int(tok[1])):
                    surf = src.next()
                    if surf[0].upper() != "SURF":
                        raise ModelError(f"AC3D: expected SURF, found {surf[0]}")
                    flags = int(surf[1], 16)
                    mat = 0
                    while True:
                        t = src.next()
                        if t[0].lower() == "mat":
                            mat = int(t[1])
                        elif t[0].lower() == "refs":
                            refs = _number_block(src.block(int(t[1])), 3, "refs") if int(t[1]) else np.zeros((0, 3))
                            break
                        else:
                            raise ModelError(f"AC3D: unexpected {t[0]} in a surface")
                    if flags & 0x0F != 0 or len(refs) < 3:
                        continue  # lines, or a degenerate polygon
                    n_surf += 1
                    idx = refs[:, 0].astype(np.int64)
                    if idx.max() >= len(verts) or idx.min() < 0:
                        raise ModelError(f"AC3D vertex index {idx.max()} out of range ({len(verts)} vertices)")
                    k = np.arange(1, len(idx) - 1)
                    fan = np.stack([np.zeros_like(k), k, k + 1], 1).reshape(-1)  # a fan
                    acc = tris.setdefault(mat, ([], []))
                    acc[0].extend(idx[fan].tolist())
                    acc[1].extend(refs[fan, 1:].reshape(-1).tolist())
            # name, url, crease, subdiv, hidden, locked, folded and unknown tokens: nothing to do

    try:
        _read_top(src, materials, read_object)
    except (IndexError, ValueError) as exc:  # a line cut short, a count that is not a number
        raise ModelError(f"corrupt AC3D near line {src.i} ({type(exc).__name__}: {exc})") from None
    return materials, groups, n_surf


def _read_top(src: _Lines, materials: list[ACMaterial], read_object) -> None:
    while not src.at_end():
        tok = src.next()
        if tok[0].upper() == "MATERIAL":
            rgb, trans = (0.8, 0.8, 0.8), 0.0
            for j, t in enumerate(tok):
                if t == "rgb":
                    rgb = tuple(_floats(tok[j + 1:], 3, "material rgb"))
                elif t == "trans":
                    trans = _floats(tok[j + 1:], 1, "material trans")[0]
            materials.append(ACMaterial(rgb, trans))
        elif tok[0].upper() == "OBJECT":
            read_object(np.eye(4), 0)
        else:
            raise ModelError(f"AC3D: unexpected {tok[0]} at the top level")


# ---------------------------------------------------------------------- discovery
def find_root(path: str | os.PathLike) -> Path | None:
    """The FlightGear data folder (holding ``Models`` or ``AI``) for a source path."""
    p = Path(path)
    for cand in (p, p / INSTALLED, p / "flightgear"):
        if (cand / "Models").is_dir() or (cand / "AI" / "Aircraft").is_dir():
            return cand
    return None


def detect(path: str | os.PathLike) -> bool:
    return find_root(path) is not None


#: Where the package's data is below a file-system root (``/`` or a ``dpkg-deb -x`` tree), or ``None``.
locate = find_root


def skip_reason(rel: str) -> str | None:
    """Why a model (path relative to the data folder) is not an object, or ``None``."""
    parts = rel.lower().split("/")
    for folder in parts[:-1]:
        if folder in _SKIP_FOLDERS:
            return f"{folder} folder"
    words = re.split(r"[^a-z0-9]+|(?<=[a-z])(?=\d)", posixpath.splitext(parts[-1])[0])
    for w in _SKIP_WORDS:
        if w in words:
            return f"{w} helper"
    return None


def category_of(rel: str) -> str:
    parts = rel.lower().split("/")
    if parts[0] == "ai":
        return "vehicle"
    first = parts[1] if len(parts) > 2 and parts[0] == "models" else parts[0]
    return dict(_CATEGORIES).get(first, "prop")


def discover(path: str | os.PathLike) -> tuple[list[SourceObject], list[tuple[str, str]]]:
    root = find_root(path)
    if root is None:
        raise DatasetError(f"{path}: no FlightGear data (Models/ or AI/Aircraft/) found")
    objects, used = [], set()
    for base, package in (("Models", PACKAGES[0]), ("AI/Aircraft", PACKAGES[1])):
        folder = root / base
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.suffix.lower() != ".ac" or not f.is_file():
                continue
            rel = f.relative_to(root).as_posix()
            if skip_reason(rel):
                continue
            oid = unique_id("fg__" + "__".join(safe_id(p) for p in rel[:-3].split("/")), used)
            objects.append(SourceObject(
                object_id=oid, container=str(root), model_path=rel, library="flightgear", name=f.stem,
                category=category_of(rel), subcategory=posixpath.dirname(rel), creator=CREATOR, license=LICENSE,
                license_text="GNU General Public License, version 2 or later (Debian's " + package + " copyright)",
                license_url=LICENSE_URL, license_files=[f"/usr/share/doc/{package}/copyright"], reader=READER,
                source=package))
    return objects, []


# ---------------------------------------------------------------------- loading
def load(obj: SourceObject, box: Container) -> LoadedModel:
    """The model's polygons, one part per (object, material), textured from files beside it."""
    from ..mesh_load import texture_from_bytes

    try:
        text = box.read(obj.model_path).decode("latin-1")
    except OSError as exc:
        raise ModelError(f"cannot read {obj.model_path}: {exc}") from None
    materials, groups, _ = read_ac(text)
    folder = posixpath.dirname(obj.model_path)
    parts, warnings = [], []
    textures: dict[str, np.ndarray | None] = {}
    for g in groups:
        pos = np.asarray(g.positions, np.float32).reshape(-1, 3)
        if not len(pos):
            continue
        mat = materials[g.material] if g.material < len(materials) else ACMaterial()
        opacity = 1.0 - min(max(mat.trans, 0.0), 1.0)
        if opacity < 0.02:
            continue
        tex = None
        if g.texture:
            if g.texture not in textures:
                name = posixpath.normpath(posixpath.join(folder, g.texture.replace("\\", "/")))
                hit = box.find(name) or box.find(posixpath.join(folder, posixpath.basename(name)))
                if hit is None:
                    warnings.append(f"texture {g.texture} missing, drawn untextured")
                    textures[g.texture] = None
                else:
                    try:
                        textures[g.texture] = texture_from_bytes(box.read(hit), hit)
                    except Exception as exc:  # noqa: BLE001 - a broken texture must not drop the object
                        warnings.append(f"texture {g.texture} unreadable ({type(exc).__name__}), drawn untextured")
                        textures[g.texture] = None
            tex = textures[g.texture]
        colour = np.array([*(mat.rgb if tex is None else (1.0, 1.0, 1.0)), opacity], np.float32)
        cutout = tex is not None and tex[..., 3].min() < 250
        parts.append(Part(pos, crease_normals(pos), None if tex is None else np.asarray(g.uvs, np.float32),
                          np.ones((len(pos), 4), np.float32), np.clip(colour, 0, 1), tex,
                          blend=opacity < 0.98, cutout=cutout, name=f"{obj.model_path}:{g.material}"))
    if not parts:
        raise ModelError("no triangles (no polygons, or every material transparent)")
    return LoadedModel(parts, list(dict.fromkeys(warnings)))
