"""The distillation image set (issue #33, seed 002): RGBA images of single objects, no 3D.

The one-step student learns the teacher's lifting from images alone, so its set needs many objects
that the 3D dataset does not hold. Two sources, 128² RGBA uint8 at the generator's input framing:

* **Photos among Debian's ``tuxpaint-stamps-default``** (``/usr/share/tuxpaint/stamps``; ~800 PNG
  cut-outs with alpha, GPL-2, by Bill Kendrick and contributors), each framed exactly as a photo is
  for generation (:func:`splatgen.core.imageprep.prepare_image`, its alpha as the mask, the training
  data's foreground ratio). The package mixes photographs with
  drawings, letters and symbols. A stamp is kept as a photo when it is not a tuxpaint *colorable* or
  *tintable* stamp (its ``.dat``: a mask meant to be painted), not under a ``cartoon`` folder, not a
  premade ``_mirror`` copy, and :func:`photo_scores` finds it photographic: few of its opaque pixels
  sit in a patch of one flat colour (share ≤ :data:`MAX_FLAT_SHARE`; drawings, letters and signs are
  filled with flat colour, photos have sensor noise and shading: the median stamp kept has 0.2 %) and
  it has more than a handful of colours (distinct colours per opaque pixel at 6 bits a channel
  ≥ :data:`MIN_COLOUR_SHARE`: line drawings with smooth edges are rejected here).
* **Views of a built or packed dataset's split** (``views_per_object`` per object, spread over its
  orbit), as rendered (already at that framing), with each object's licence and creator from the
  dataset's index.

A share :data:`HOLDOUT_SHARE` of the photos (chosen by a hash of their path, so the choice does not
move when the package grows) forms the ``holdout`` split, never distilled on: the real photos on
which #33 compares the student with its teacher.

Output folder: ``images-NNNNN.safetensors`` (``{"rgba": (N, 128, 128, 4) uint8}``, straight alpha),
``index.json`` (``format``, ``sources``, ``images``: per image ``id``, ``split`` ``distil`` | ``holdout``,
``shard``, ``index``, ``source`` ``stamp`` | ``dataset``, ``origin`` (the stamp's path under the stamps
folder, or ``OBJECT#VIEW``), ``category``, ``licence``, ``creator``, ``photo_scores`` (colour, flat-colour share)) and ``LICENCES.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import framing
from ..atomic import atomic_path, atomic_write
from ..errors import DatasetError, ImageError

#: Where Debian's tuxpaint-stamps-default puts its stamps.
STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
STAMPS_PACKAGE = "tuxpaint-stamps-default"
STAMPS_LICENCE, STAMPS_CREATOR = "GPL-2.0-or-later", "Bill Kendrick and the Tux Paint contributors"
#: The largest share of flat-colour pixels of a kept stamp, and its least share of distinct colours
#: (chosen by looking at the package's stamps near both bounds; the counts are in benchmarks/README.md).
MAX_FLAT_SHARE = 0.15
MIN_COLOUR_SHARE = 0.01
#: Share of the kept photos held out of distillation (the real-photo check).
HOLDOUT_SHARE = 0.1
#: Images per shard: 1,024 × 64 KiB = 64 MiB uncompressed.
SHARD_IMAGES = 1024
FORMAT = 1


@dataclass
class ImageEntry:
    """One image of the set before framing: where it comes from and under what licence."""

    source: str              # "stamp" | "dataset"
    origin: str              # stamp path under the stamps folder, or "OBJECT#VIEW"
    category: str
    licence: str
    creator: str
    photo_scores: tuple[float, float] | None = None  # (colour share, flat share) of a stamp
    path: Path | None = None  # the stamp file
    split: str = "distil"


def photo_scores(rgba: np.ndarray) -> tuple[float, float]:
    """``(colour_share, flat_share)`` of ``rgba`` ``(H, W, 4)`` uint8 over its opaque pixels (alpha ≥ 250):
    distinct colours per pixel (each channel quantised to 6 bits), and the share of pixels whose four
    neighbours have the same colour (within 1 of 255 a channel). (0, 1) when nothing is opaque."""
    a = rgba.astype(np.int16)
    opaque = a[..., 3] >= 250
    if not opaque.any():
        return 0.0, 1.0
    q = (a[..., :3][opaque] >> 2).astype(np.int32)
    colour = len(np.unique((q[:, 0] << 12) | (q[:, 1] << 6) | q[:, 2])) / len(q)
    c, inner = a[..., :3], opaque[1:-1, 1:-1]
    if not inner.any():
        return float(colour), 1.0
    mid = c[1:-1, 1:-1]
    same = np.ones(mid.shape[:2], bool)
    for nb in (c[1:-1, 2:], c[1:-1, :-2], c[2:, 1:-1], c[:-2, 1:-1]):
        same &= np.abs(mid - nb).max(-1) <= 1
    return float(colour), float((same & inner).sum() / inner.sum())


def is_photo(scores: tuple[float, float]) -> bool:
    colour, flat = scores
    return flat <= MAX_FLAT_SHARE and colour >= MIN_COLOUR_SHARE


def _stamp_flags(png: Path) -> set[str]:
    """The tuxpaint flags of a stamp: its own ``.dat`` or that of its base name (``frog-1.png`` → ``frog.dat``)."""
    flags: set[str] = set()
    stem = png.stem
    for candidate in (png.with_suffix(".dat"), png.with_name(stem.rsplit("-", 1)[0] + ".dat")):
        if candidate.is_file():
            try:
                flags |= {line.strip().split("=")[0].split(" ")[0] for line in candidate.read_text(errors="replace").splitlines()}
            except OSError:
                pass
            break
    return flags


def held_out(key: str, share: float = HOLDOUT_SHARE) -> bool:
    """Whether ``key`` falls in the held-out share: a stable hash, not a random draw."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def find_stamp_photos(root: str | os.PathLike = STAMPS_DIR) -> tuple[list[ImageEntry], list[tuple[str, str]]]:
    """The photos among the stamps under ``root`` (module docstring), sorted by path, and
    ``(path, why)`` for every PNG left out."""
    from ..image_loading import load_image

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no stamps folder (install Debian's {STAMPS_PACKAGE}, or pass its folder)")
    kept, skipped = [], []
    for png in sorted(root.rglob("*.png")):
        parts = png.relative_to(root).parts
        rel = "/".join(parts)
        flags = _stamp_flags(png)
        if flags & {"colorable", "tintable"}:
            skipped.append((rel, "a stamp meant to be painted (colorable / tintable)"))
            continue
        if "cartoon" in parts[:-1] or png.stem.endswith("_mirror"):
            skipped.append((rel, "a cartoon or a premade mirror copy"))
            continue
        try:
            px = load_image(png).pixels
        except ImageError as exc:
            skipped.append((rel, f"unreadable ({exc})"))
            continue
        rgba = px if px.shape[2] == 4 else np.dstack([px, np.full(px.shape[:2], 255, np.uint8)])
        scores = photo_scores(rgba)
        if not is_photo(scores):
            skipped.append((rel, f"a drawing (flat-colour share {scores[1]:.3f}, colour share {scores[0]:.3f})"))
            continue
        category = parts[0] if len(parts) > 1 else "stamps"
        kept.append(ImageEntry("stamp", rel, category, STAMPS_LICENCE, STAMPS_CREATOR,
                               (round(scores[0], 4), round(scores[1], 4)), png,
                               "holdout" if held_out(rel) else "distil"))
    return kept, skipped


def dataset_views(dataset: str | os.PathLike, split: str = "train", views_per_object: int = 1
                  ) -> tuple[list[ImageEntry], np.ndarray]:
    """``views_per_object`` views of every object of a (packed or built) dataset's split, spread over its
    orbit (only those are decoded): (entries, their images ``(N, S, S, 4)`` uint8 straight alpha)."""
    from ..data.dataset import MultiViewDataset

    source = MultiViewDataset(dataset, split=split, num_targets=1).source
    if source.size != framing.IMAGE_SIZE:
        raise DatasetError(f"{dataset}: its views are {source.size}² pixels, the image set's {framing.IMAGE_SIZE}²: "
                           f"build the dataset with --size {framing.IMAGE_SIZE}")
    entries, out = [], []
    for o, name in enumerate(source.ids):
        v = len(source.cameras(o)[0])
        if not 1 <= views_per_object <= v:
            raise DatasetError(f"--views-per-object takes 1 to {v} (the dataset's views), got {views_per_object}")
        picks = [round(k * v / views_per_object) for k in range(views_per_object)]
        info = source.meta.get(name, {})
        for view, image in zip(picks, source.views(o, picks)):
            entries.append(ImageEntry("dataset", f"{name}#{view}", info.get("category") or "unknown",
                                      info.get("license") or "unknown", info.get("creator") or "unknown"))
            out.append(image)
    size = framing.IMAGE_SIZE
    return entries, np.stack(out) if out else np.zeros((0, size, size, 4), np.uint8)


def frame_stamp(path: Path) -> np.ndarray:
    """A stamp framed as the generator's input: ``(S, S, 4)`` uint8 straight alpha."""
    from ..imageprep import prepare_image

    return prepare_image(path, remove_background=False).rgba


def build_image_set(out: str | os.PathLike, stamps: str | os.PathLike | None = STAMPS_DIR,
                    dataset: str | os.PathLike | None = None, *, split: str = "train", views_per_object: int = 1,
                    shard_images: int = SHARD_IMAGES) -> dict:
    """Write the image set (module docstring) to the new folder ``out``; returns its index.
    ``stamps`` / ``dataset``: the sources (either may be None, not both)."""
    out = Path(out)
    if stamps is None and dataset is None:
        raise DatasetError("the image set needs a source: the stamps folder, a dataset, or both")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: not empty; the image set is written to a new folder")
    entries, images, skipped = [], [], []
    if stamps is not None:
        found, skipped = find_stamp_photos(stamps)
        for entry in found:
            try:
                images.append(frame_stamp(entry.path))
                entries.append(entry)
            except ImageError as exc:
                skipped.append((entry.origin, str(exc)))
    if dataset is not None:
        found, views = dataset_views(dataset, split, views_per_object)
        entries += found
        images += list(views)
    if not entries:
        raise DatasetError("no image of the sources could be used")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for start in range(0, len(entries), shard_images):
        shard = start // shard_images
        block = np.stack(images[start:start + shard_images])
        with atomic_path(out / f"images-{shard:05d}.safetensors", error=DatasetError) as tmp:
            save_file({"rgba": torch.from_numpy(np.ascontiguousarray(block))}, str(tmp))
        for i, e in enumerate(entries[start:start + shard_images]):
            rows.append({"id": start + i, "split": e.split, "shard": shard, "index": i, "source": e.source,
                         "origin": e.origin, "category": e.category, "licence": e.licence, "creator": e.creator,
                         "photo_scores": e.photo_scores})
    sources = {}
    if stamps is not None:
        sources["stamps"] = {"folder": str(stamps), "package": STAMPS_PACKAGE, "version": _package_version(STAMPS_PACKAGE),
                             "max_flat_share": MAX_FLAT_SHARE, "min_colour_share": MIN_COLOUR_SHARE,
                             "kept": sum(r["source"] == "stamp" for r in rows), "skipped": len(skipped)}
    if dataset is not None:
        sources["dataset"] = {"folder": str(dataset), "split": split, "views_per_object": views_per_object}
    index = {"format": FORMAT, "size": framing.IMAGE_SIZE, "sources": sources,
             "counts": {s: sum(r["split"] == s for r in rows) for s in ("distil", "holdout")}, "images": rows}
    atomic_write(out / "index.json", (json.dumps(index, indent=1) + "\n").encode())
    atomic_write(out / "LICENCES.md", _licences(rows, sources).encode())
    return index


def _package_version(package: str) -> str | None:
    import subprocess

    try:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None


def _licences(rows: list[dict], sources: dict) -> str:
    counts: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r["source"], r["licence"], r["creator"])
        counts[key] = counts.get(key, 0) + 1
    lines = ["# Licences of the distillation image set", "",
             "Every image keeps the licence of what it was made from (per image in `index.json`).", "",
             "| source | licence | creator | images |", "|---|---|---|---|"]
    lines += [f"| {s} | {lic} | {c} | {n} |" for (s, lic, c), n in sorted(counts.items())]
    if "stamps" in sources:
        lines += ["", f"Stamps: Debian's `{STAMPS_PACKAGE}` ({sources['stamps'].get('version') or 'version unknown'}), "
                      "GNU GPL version 2 or later; its copyright file is "
                      f"/usr/share/doc/{STAMPS_PACKAGE}/copyright."]
    return "\n".join(lines) + "\n"


class ImageSet:
    """A written image set, read back: ``rgba`` ``(N, S, S, 4)`` uint8 and the index rows, of one split
    (``distil``, ``holdout`` or None for all)."""

    def __init__(self, folder: str | os.PathLike, split: str | None = "distil"):
        folder = Path(folder)
        try:
            index = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{folder}: not an image set ({exc})") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("images"), list):
            raise DatasetError(f"{folder}: not an image set of format {FORMAT}")
        size = index.get("size", framing.IMAGE_SIZE)
        rows = [r for r in index["images"] if isinstance(r, dict) and (split is None or r.get("split") == split)]
        shards: dict[int, torch.Tensor] = {}
        picked = []
        for r in rows:
            shard, i = r.get("shard"), r.get("index")
            if not (isinstance(shard, int) and isinstance(i, int) and shard >= 0 and i >= 0):
                raise DatasetError(f"{folder}: a bad image entry {r!r}")
            if shard not in shards:
                name = f"images-{shard:05d}.safetensors"  # built from an int: never a path out of the folder
                try:
                    rgba = load_file(str(folder / name))["rgba"]
                except Exception as exc:  # noqa: BLE001 - a missing or damaged shard, named
                    raise DatasetError(f"{folder / name}: missing or unreadable ({exc})") from None
                if rgba.dtype != torch.uint8 or rgba.dim() != 4 or tuple(rgba.shape[1:]) != (size, size, 4):
                    raise DatasetError(f"{folder / name}: not ({size}, {size}, 4) uint8 images")
                shards[shard] = rgba
            if i >= len(shards[shard]):
                raise DatasetError(f"{folder}: image {r.get('id')} points past the end of shard {shard}")
            picked.append(shards[shard][i])
        self.rgba = torch.stack(picked) if picked else torch.zeros((0, size, size, 4), dtype=torch.uint8)
        self.rows, self.folder, self.index = rows, folder, index

    def __len__(self) -> int:
        return len(self.rows)

    def inputs(self, idx, background=framing.BACKGROUND) -> torch.Tensor:
        """Images ``idx`` as the generator's input ``(B, 4, S, S)`` float: RGB on the background + alpha
        (:func:`splatgen.core.imageprep.composite`, the training input's arithmetic)."""
        from ..imageprep import composite

        return torch.stack([composite(self.rgba[i].numpy(), background) for i in idx])


__all__ = ["photo_scores", "is_photo", "find_stamp_photos", "dataset_views", "build_image_set", "ImageSet", "ImageEntry",
           "held_out", "STAMPS_DIR", "MAX_FLAT_SHARE", "MIN_COLOUR_SHARE", "HOLDOUT_SHARE"]
