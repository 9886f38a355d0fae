"""A built dataset on disk: its layout, which object folders are finished, and ``dataset.json``.

``dataset.json`` (:func:`write_index`) is made from the object folders alone (their ``meta.json``
and ``signature.png``): groups of near-duplicates and the split by group
(:mod:`splatgen.core.data.split`), counts, the lit/flat saturation of the signature views
(:mod:`splatgen.core.data.saturation`), and the dataset card (:mod:`splatgen.core.data.card`).
:func:`regroup` redoes all that for a dataset already rendered (no rendering: seconds for
thousands of objects), e.g. after the grouping rules change.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import os
import sys
from pathlib import Path

import numpy as np

from .. import framing
from ..atomic import atomic_write
from ..errors import DatasetError
from .split import SPLITS

FRAME_NAME = "rgba_{:03d}.png"
DATASET_FORMAT = "splatgen-multiview"
DATASET_VERSION = 1
SURFACE_FILE = "surface.safetensors"


def is_complete(folder: Path, views: int, size: int, seed: int | None = None, lighting: str | None = None,
                surface_points: int | None = None) -> bool:
    """Whether ``folder`` holds a finished object rendered with these settings (``None``: any)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("views") != views or meta.get("size") != size:
        return False
    if seed is not None and meta.get("seed") != seed:
        return False
    if lighting is not None and (meta.get("lighting") or {}).get("mode", "fixed") != lighting:
        return False
    if surface_points is not None and int(meta.get("surface_points") or 0) != surface_points:
        return False
    if meta.get("surface_points") and not (folder / SURFACE_FILE).is_file():
        return False
    return (folder / "transforms.json").is_file() and all(
        (folder / FRAME_NAME.format(i)).is_file() for i in range(views))


def scan_objects(out: Path, views: int | None = None, size: int | None = None) -> dict[str, dict]:
    """``meta.json`` of every finished object folder under ``out`` (matching views/size if given)."""
    found = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if views is not None and size is not None:
            if not is_complete(d, views, size):
                continue
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        found[d.name] = meta
    return found


def _command(out: Path, sources: list[str], views: int, size: int, seed: int, limit: int | None) -> str:
    """The command line that made (or resumes) the dataset: the one typed, else its equivalent."""
    if sys.argv and Path(sys.argv[0]).name == "splatgen" and sys.argv[1:3] == ["data", "build"]:
        return " ".join(["splatgen"] + sys.argv[1:])
    return (f"splatgen data build --source {sources[0] if sources else '?'} --out {out} --views {views} "
            f"--size {size} --seed {seed}" + (f" --limit {limit}" if limit is not None else ""))


def write_index(out: Path, *, views: int, size: int, seed: int, skipped: dict[str, str],
                sources: list[str], seconds: float, limit: int | None = None,
                licences: list[str] | None = None, command: str | None = None, date: str | None = None) -> dict:
    """Write ``dataset.json`` and the dataset card ``README.md`` from the object folders on disk."""
    from .card import dataset_card
    from .split import RENDER_RMS, balanced_split, load_signatures, near_duplicate_groups

    out = Path(out)
    objects = scan_objects(out, views, size)
    signatures = load_signatures(out, objects)
    group_of, merged = near_duplicate_groups(objects, signatures)
    split = balanced_split(objects, group_of)
    splits: dict[str, list[str]] = {name: [] for name in SPLITS}
    for oid in objects:
        splits[split[oid]].append(oid)
    members: dict[str, list[str]] = collections.defaultdict(list)
    for oid, rep in group_of.items():
        members[rep].append(oid)
    groups = {rep: sorted(ids) for rep, ids in sorted(members.items()) if len(ids) > 1}
    for oid, m in objects.items():
        m["group"] = group_of[oid]
    keep = ("name", "category", "creator", "license", "license_url", "library", "source", "source_file", "textured",
            "n_triangles", "group")
    index = {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "views": views,
        "size": size,
        "seed": seed,
        "frame_name": FRAME_NAME,
        "framing": {
            "fov_deg": framing.FOV_DEG,
            "camera_distance": framing.CAMERA_DISTANCE,
            "object_radius": framing.OBJECT_RADIUS,
            "elevation_range_deg": list(framing.ELEVATION_RANGE_DEG),
            "background": list(framing.BACKGROUND),
        },
        "splits": splits,
        "objects": {oid: {k: m.get(k) for k in keep} | {"split": split[oid]} for oid, m in objects.items()},
        "groups": groups,
        "merged": merged | {"groups": len(groups), "objects_in_groups": sum(len(v) for v in groups.values()),
                            "with_signature": len(signatures), "render_rms": RENDER_RMS},
        "saturation": signature_saturation(objects, signatures),
        "verification": _verification(out),
        "skipped": dict(sorted(skipped.items())),
        "build": {
            "sources": sources,
            "date": date or _dt.datetime.now().isoformat(timespec="seconds"),
            "indexed": _dt.datetime.now().isoformat(timespec="seconds"),
            "seconds_last_run": round(seconds, 1),
            "limit": limit,
            "licences": licences,
            "command": command or _command(out, sources, views, size, seed, limit),
        },
    }
    atomic_write(out / "dataset.json", json.dumps(index, indent=1, ensure_ascii=False).encode())
    (out / "README.md").write_text(dataset_card(index, objects), encoding="utf-8")
    return index


VERIFY_FILE = "verify.json"


def _verification(out: Path) -> list[dict]:
    """The checks of ``splatgen data verify --out DIR/verify.json`` if the dataset folder has them."""
    try:
        checks = json.loads((out / VERIFY_FILE).read_text()).get("checks", [])
    except (OSError, ValueError, AttributeError):
        return []
    keep = ("reader", "name", "ok", "n", "detail")
    return [{k: c.get(k) for k in keep} for c in checks if isinstance(c, dict)]


def signature_saturation(objects: dict[str, dict], signatures: dict[str, np.ndarray]) -> dict:
    """Mean saturation of the lit against the flat signature views (same pixels), over all objects and
    per source: ``{"all": {"objects", "lit", "flat", "ratio"}, "sources": {source: {...}}}``."""
    from .saturation import pixel_mask, saturation

    acc: dict[str, list] = {}
    for oid, sig in signatures.items():
        flat, lit = sig[0], sig[1]
        m = pixel_mask(flat) & pixel_mask(lit)
        if not m.any():
            continue
        src = objects.get(oid, {}).get("source") or "?"
        row = [1, float(saturation(lit[..., :3][m]).sum()), float(saturation(flat[..., :3][m]).sum()), int(m.sum())]
        for key in (src, "\0all"):
            a = acc.setdefault(key, [0, 0.0, 0.0, 0])
            for i, v in enumerate(row):
                a[i] += v

    def summary(a):
        n, lit, flat, px = a
        return {"objects": n, "lit": round(lit / px, 4), "flat": round(flat / px, 4),
                "ratio": round(lit / flat, 4) if flat else None}

    return {"all": summary(acc.pop("\0all")) if "\0all" in acc else {"objects": 0},
            "sources": {k: summary(v) for k, v in sorted(acc.items())}}


def load_index(root: str | os.PathLike) -> dict:
    """Read ``dataset.json`` of a built dataset; :class:`DatasetError` if missing or malformed."""
    path = Path(root) / "dataset.json"
    if not Path(root).is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{root}: no dataset.json — not a dataset built by `splatgen data build`") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from None
    if index.get("format") != DATASET_FORMAT or not isinstance(index.get("splits"), dict):
        raise DatasetError(f"{path}: not a splatgen dataset index")
    return index


def regroup(root: str | os.PathLike) -> dict:
    """Rewrite ``dataset.json`` and the card of a built dataset from its object folders, with the
    current grouping and split rules; nothing is rendered. Returns the new index."""
    old = load_index(root)
    b = old.get("build", {})
    return write_index(Path(root), views=old["views"], size=old["size"], seed=old["seed"],
                       skipped=old.get("skipped", {}), sources=b.get("sources", []),
                       seconds=b.get("seconds_last_run", 0.0), limit=b.get("limit"), licences=b.get("licences"),
                       command=b.get("command"), date=b.get("date"))


__all__ = ["FRAME_NAME", "DATASET_FORMAT", "DATASET_VERSION", "SURFACE_FILE", "is_complete", "scan_objects",
           "write_index", "load_index", "regroup", "signature_saturation"]
