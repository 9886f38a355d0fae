"""``splatgen data verify``: the readers, run on real package files, against facts read independently.

Tests write tiny files of each format themselves, so a reader and a test writer that share a
misreading both pass. This module checks the readers on the packages' own files instead, against:

* **assimp** (Debian's ``assimp-utils``, where it reads the format): triangle counts and the
  bounding box of AC3D (FlightGear) and OBJ (SweetHome3D) models, from ``assimp info``;
* **numbers the files or the games state themselves**: the bounding box every SPM header carries
  (SuperTuxKart's exporter writes it), and the unit heights MegaGlest's unit definitions declare;
* **the games' left and right**: prop points named ``…_L`` / ``…_R`` on 0 A.D. bodies and the
  front-left / front-right wheels of SuperTuxKart karts must lie on the model's left and right in
  the reader's output frame (right-handed, Y up), which catches a frame mirrored the wrong way;
* **references resolve**: the textures models name exist (a wrong path rule shows up here).

Each check is a :class:`Check`; :func:`verify_sources` returns a :class:`Report` (``text()``,
``to_json()``). Nothing here renders.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .parts import ModelError


@dataclass
class Check:
    """One fact compared: ``ok`` when the reader agrees; ``n`` items checked, ``failed`` examples."""

    source: str
    reader: str
    name: str
    ok: bool
    n: int
    detail: str
    failed: list[str] = field(default_factory=list)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def text(self) -> str:
        lines = []
        for c in self.checks:
            lines.append(f"{'ok  ' if c.ok else 'FAIL'} {c.reader:<13} {c.name:<34} n={c.n:<5} {c.detail}")
            lines += [f"       {f}" for f in c.failed[:5]]
        lines.append(f"{sum(c.ok for c in self.checks)} of {len(self.checks)} checks agree")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _sample(items: list, k: int) -> list:
    """``k`` items spread evenly over ``items`` (all when ``k`` is 0 or more than there are)."""
    if k <= 0 or k >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in dict.fromkeys(idx)]


# ---------------------------------------------------------------------- assimp
def assimp_info(assimp: str, path: str | Path, timeout: float = 120.0) -> dict | None:
    """``{"faces", "vertices", "min", "max"}`` from ``assimp info`` (its default import: triangulated),
    or ``None`` when assimp cannot read the file."""
    try:
        r = subprocess.run([assimp, "info", str(path)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = r.stdout
    faces = re.search(r"^Faces:\s+(\d+)", out, re.M)
    verts = re.search(r"^Vertices:\s+(\d+)", out, re.M)
    lo = re.search(r"^Minimum point\s+\(([^)]*)\)", out, re.M)
    hi = re.search(r"^Maximum point\s+\(([^)]*)\)", out, re.M)
    if r.returncode != 0 or not faces:
        return None
    return {"faces": int(faces.group(1)), "vertices": int(verts.group(1)) if verts else None,
            "min": [float(x) for x in lo.group(1).split()] if lo else None,
            "max": [float(x) for x in hi.group(1).split()] if hi else None}


def _bbox_close(a_lo, a_hi, b_lo, b_hi, rel: float = 1e-3) -> bool:
    a_lo, a_hi, b_lo, b_hi = (np.asarray(x, float) for x in (a_lo, a_hi, b_lo, b_hi))
    scale = max(float(np.max(a_hi - a_lo)), 1e-9)
    return bool(np.abs(a_lo - b_lo).max() <= rel * scale and np.abs(a_hi - b_hi).max() <= rel * scale)


def _assimp_check(src: str, reader: str, items: list[tuple[str, Path, int, np.ndarray]], assimp: str) -> list[Check]:
    """``items``: (label, file, triangles we read, our vertex positions in the file's frame)."""
    n, same_faces, close_faces, same_box, unread, bad_f, bad_b = 0, 0, 0, 0, 0, [], []
    for label, path, tris, pts in items:
        info = assimp_info(assimp, path)
        if info is None:
            unread += 1
            continue
        n += 1
        if info["faces"] == tris:
            same_faces += 1
        else:
            bad_f.append(f"{label}: ours {tris} triangles, assimp {info['faces']}")
        if abs(info["faces"] - tris) <= 0.005 * max(tris, 1):
            close_faces += 1
        if info["min"] and len(pts) and _bbox_close(pts.min(0), pts.max(0), info["min"], info["max"]):
            same_box += 1
        else:
            bad_b.append(f"{label}: ours {np.round(pts.min(0), 3).tolist()}..{np.round(pts.max(0), 3).tolist()}, "
                         f"assimp {info['min']}..{info['max']}")
    note = f"; {unread} assimp could not read" if unread else ""
    return [Check(src, reader, "triangles = assimp's faces", n > 0 and close_faces >= 0.95 * n, n,
                  f"{same_faces} of {n} equal, {close_faces} within 0.5 %{note}", bad_f),
            Check(src, reader, "bounding box = assimp's", n > 0 and same_box >= 0.95 * n, n,
                  f"{same_box} of {n} within 0.1 % of the extent", bad_b)]


# ---------------------------------------------------------------------- per reader
def _verify_flightgear(src: str, objects, k: int, assimp: str) -> list[Check]:
    from .sources import Container, flightgear

    items, missing, named = [], 0, 0
    box = Container(objects[0].container)
    for o in _sample(objects, k):
        try:
            materials, groups, _ = flightgear.read_ac(box.read(o.model_path).decode("latin-1"))
        except ModelError:
            continue
        pts = np.concatenate([g.positions for g in groups]) if groups else np.zeros((0, 3))
        items.append((o.model_path, Path(o.container) / o.model_path, len(pts) // 3, pts))
        for t in {g.texture for g in groups if g.texture}:
            named += 1
            folder = posixpath.dirname(o.model_path)
            if box.find(posixpath.normpath(posixpath.join(folder, t))) is None and \
                    box.find(posixpath.join(folder, posixpath.basename(t))) is None:
                missing += 1
    checks = _assimp_check(src, "flightgear", items, assimp)
    checks.append(Check(src, "flightgear", "named textures exist", True, named,
                        f"{named - missing} of {named} found beside the model (recorded, not a failure: "
                        "the packages ship some models without their liveries)"))
    return checks


def _verify_mesh(src: str, objects, k: int, assimp: str) -> list[Check]:
    """SweetHome3D / loose OBJ: the trimesh path against assimp on the same files (unpacked to a temp dir)."""
    from .mesh_load import load_parts
    from .sources import Container

    items = []
    tmp = Path(tempfile.mkdtemp(prefix="splatgen-verify-"))
    try:
        for i, o in enumerate(_sample([o for o in objects if o.model_path.lower().endswith(".obj")], k)):
            with Container(o.container) as box:
                try:
                    model = load_parts(box, o.model_path)
                except ModelError:
                    continue
                folder = posixpath.dirname(o.model_path)
                dest = tmp / str(i)
                for name in box.names():
                    if posixpath.dirname(name) == folder:
                        (dest / posixpath.basename(name)).parent.mkdir(parents=True, exist_ok=True)
                        (dest / posixpath.basename(name)).write_bytes(box.read(name))
            pts = np.concatenate([p.positions for p in model.parts])
            items.append((o.object_id, dest / posixpath.basename(o.model_path), model.n_triangles, pts))
        return _assimp_check(src, "mesh", items, assimp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _verify_supertuxkart(src: str, objects, k: int) -> list[Check]:
    from .sources import Container, supertuxkart as stk

    box = Container(objects[0].container)
    n, agree, bad = 0, 0, []
    files = sorted({m for o in objects for m, _ in o.options.get("models", [])})
    for f in _sample(files, k):
        try:
            data = box.read(f)
            buffers, skinned = stk.read_spm(data)
        except (ModelError, OSError):
            continue
        pts = np.concatenate([b.positions for b in buffers]) if buffers else np.zeros((0, 3))
        if not len(pts):
            continue
        stored = np.frombuffer(data, "<f4", 6, 4)
        n += 1
        # the exporter's box may be of the mesh's own frame as stored; compare either corner order
        if _bbox_close(pts.min(0), pts.max(0), stored[:3], stored[3:], rel=2e-3):
            agree += 1
        else:
            bad.append(f"{f}{' (skinned)' if skinned else ''}: ours {np.round(pts.min(0), 3).tolist()}.."
                       f"{np.round(pts.max(0), 3).tolist()}, header {np.round(stored, 3).tolist()}")
    checks = [Check(src, "supertuxkart", "vertices fill the header's box", n > 0 and agree >= 0.9 * n, n,
                    f"{agree} of {n} within 0.2 % of the extent", bad)]
    # left and right: kart.xml names its wheels; in the reader's frame front-left must be on the left
    n, agree, bad = 0, 0, []
    for o in objects:
        if not o.object_id.startswith("stk__kart__"):
            continue
        kart = Path(o.container) / posixpath.dirname(o.model_path) / "kart.xml"
        try:
            root = ET.fromstring(kart.read_bytes())
        except (OSError, ET.ParseError):
            continue
        pos = {w.tag: np.array([float(x) for x in w.get("position").split()]) * [1, 1, -1]
               for w in root.iter() if w.get("position") and w.tag in ("front-left", "front-right", "rear-left", "rear-right")}
        if len(pos) < 4:
            continue
        n += 1
        forward = (pos["front-left"] + pos["front-right"] - pos["rear-left"] - pos["rear-right"]) / 2
        right = (pos["front-right"] + pos["rear-right"] - pos["front-left"] - pos["rear-left"]) / 2
        if np.dot(np.cross(forward, [0, 1, 0]), right) > 0:  # right-handed, Y up: forward × up = right
            agree += 1
        else:
            bad.append(o.object_id)
    checks.append(Check(src, "supertuxkart", "kart wheels: left is left", n > 0 and agree == n, n,
                        f"{agree} of {n} karts have front-right on the right of forward", bad))
    return checks


def _verify_0ad(src: str, objects, k: int) -> list[Check]:
    from .sources import Container, zeroad

    box = Container(objects[0].container)
    reader = zeroad.ActorReader(box)
    # every PMD of the archive parses to its last byte (the size field and the sections agree)
    pmds = [n for n in box.names() if n.endswith(".pmd")]
    bad_pmd = []
    bodies = []
    for name in pmds:
        try:
            pmd = zeroad.read_pmd(box.read(name))
        except ModelError as exc:
            bad_pmd.append(f"{name}: {exc}")
            continue
        pp = pmd.prop_points
        if len(pmd.bones) and any(p.endswith("_R") and p[:-2] + "_L" in pp for p in pp):
            bodies.append((name, pp))
    checks = [Check(src, "0ad", "every PMD parses to its last byte", not bad_pmd, len(pmds),
                    f"{len(pmds) - len(bad_pmd)} of {len(pmds)}", bad_pmd)]
    n, agree, bad = 0, 0, []
    M = np.diag([1.0, 1.0, -1.0])  # the reader's game → model frame
    for name, pp in bodies:
        pairs = [(p[:-2] + "_L", p) for p in pp if p.endswith("_R") and p[:-2] + "_L" in pp]
        right = np.mean([M @ (pp[r][:3, 3] - pp[left][:3, 3]) for left, r in pairs], axis=0)
        front = [p for p in pp if p in ("breastplate", "bevor", "seax_front")]
        back = [p for p in pp if p in ("backplate", "back", "seax_back")]
        if not front or not back:
            continue
        n += 1
        forward = M @ (np.mean([pp[p][:3, 3] for p in front], 0) - np.mean([pp[p][:3, 3] for p in back], 0))
        if np.dot(np.cross(forward, [0, 1, 0]), right) > 0:
            agree += 1
        else:
            bad.append(name)
    checks.append(Check(src, "0ad", "bodies: _R prop points on the right", n > 0 and agree == n, n,
                        f"{agree} of {n} bodies with front/back and _L/_R prop points", bad))
    named = found = 0
    missing = []
    for o in _sample(objects, k):
        try:
            act = reader.actor(o.model_path)
        except ModelError:
            continue
        if act.textures.get("baseTex"):
            named += 1
            if any(box.find(t) is not None for t in zeroad.texture_file(act.textures["baseTex"])):
                found += 1
            else:
                missing.append(f"{o.model_path}: {act.textures['baseTex']}")
        if act.mesh:
            named += 1
            if any(box.find(t) is not None for t in zeroad.mesh_file(act.mesh)):
                found += 1
            else:
                missing.append(f"{o.model_path}: {act.mesh}")
    checks.append(Check(src, "0ad", "actors' meshes and textures exist", named > 0 and found >= 0.98 * named, named,
                        f"{found} of {named} references resolve", missing))
    return checks


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):  # mean rank of ties
            r[x == v] = r[x == v].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def _verify_megaglest(src: str, objects, k: int) -> list[Check]:
    from .sources import Container, megaglest

    box = Container(objects[0].container)
    root = Path(objects[0].container)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.g3d"))
    bad, v4 = [], 0
    for f in files:
        data = box.read(f)
        if data[3:4] != b"\x04":
            continue
        v4 += 1
        try:
            megaglest.read_g3d(data)
        except ModelError as exc:
            bad.append(f"{f}: {exc}")
    checks = [Check(src, "megaglest", "every G3D v4 parses to its last byte", not bad, v4,
                    f"{v4 - len(bad)} of {v4} ({len(files) - v4} files of older versions left alone)", bad)]
    # the unit definitions declare a height (in cells): taller declared units have taller models (Y up)
    heights, extents = [], []
    for o in objects:
        if "__resource__" in o.object_id or o.subcategory.startswith("tilesets"):
            continue
        unit_xml = root / posixpath.dirname(posixpath.dirname(o.model_path)) / (
            posixpath.basename(posixpath.dirname(posixpath.dirname(o.model_path))) + ".xml")
        try:
            h = ET.fromstring(unit_xml.read_bytes()).find(".//height")
            meshes = megaglest.read_g3d(box.read(o.model_path))
        except (OSError, ET.ParseError, ModelError):
            continue
        pts = np.concatenate([m.positions for m in meshes if len(m.positions)]) if meshes else np.zeros((0, 3))
        if h is None or not h.get("value") or not len(pts):
            continue
        heights.append(float(h.get("value")))
        extents.append(pts.max(0) - pts.min(0))
    if heights:
        ext = np.asarray(extents)
        rho = {axis: _spearman(np.asarray(heights), ext[:, i]) for i, axis in enumerate("xyz")}
        best = max(rho, key=rho.get)
        checks.append(Check(src, "megaglest", "declared unit height follows Y", best == "y" and rho["y"] > 0.3,
                            len(heights), "Spearman ρ(declared height, model extent): "
                            + ", ".join(f"{a} {r:+.2f}" for a, r in rho.items())))
    named = found = 0
    missing = []
    for o in _sample(objects, k):
        try:
            meshes = megaglest.read_g3d(box.read(o.model_path))
        except ModelError:
            continue
        for m in meshes:
            if m.texture:
                named += 1
                t = posixpath.normpath(posixpath.join(posixpath.dirname(o.model_path), m.texture))
                if box.find(t) is not None:
                    found += 1
                else:
                    missing.append(f"{o.model_path}: {m.texture}")
    checks.append(Check(src, "megaglest", "named textures exist", named > 0 and found >= 0.98 * named, named,
                        f"{found} of {named} found", missing))
    return checks


def verify_sources(sources: list[str | os.PathLike], per_source: int = 40, assimp: str = "assimp",
                   out: str | os.PathLike | None = None) -> Report:
    """Run every check that applies to each source; write the JSON report to ``out`` if given."""
    from .sources import discover, reader_for

    report = Report()
    for src in sources:
        reader = reader_for(src).READER
        objects, _ = discover(src)
        if not objects:
            continue
        if reader == "flightgear":
            report.checks += _verify_flightgear(str(src), objects, per_source, assimp)
        elif reader == "supertuxkart":
            report.checks += _verify_supertuxkart(str(src), objects, per_source)
        elif reader == "0ad":
            report.checks += _verify_0ad(str(src), objects, per_source)
        elif reader == "megaglest":
            report.checks += _verify_megaglest(str(src), objects, per_source)
        elif reader == "mesh":
            report.checks += _verify_mesh(str(src), objects, per_source, assimp)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    return report
