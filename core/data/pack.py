"""``splatgen data pack``: a built split → a few compact shards to carry to the GPU machine.

A packed dataset ``OUT`` holds::

    OUT/index.json                  splits → shards → object ids; per-object metadata; settings
    OUT/<split>-00000.safetensors   objects of one split, about ``shard_mib`` MiB a shard
    OUT/DATASET_CARD.md             the built dataset's card (licences and credits travel along)

Each shard is a safetensors file (no pickle) holding, for its ``k``-th object (key prefix
``"{k:05d}."``):

* ``images`` ``(B,)`` uint8 — the object's V views, each one straight-RGBA WebP image (lossless
  by default; lossy colour + lossless alpha when a quality is given), concatenated;
* ``offsets`` ``(V + 1,)`` int64 — view ``i`` is ``images[offsets[i]:offsets[i + 1]]``;
* ``viewmats`` ``(V, 4, 4)`` float32 — OpenCV world-to-camera (read from ``transforms.json``
  through :func:`splatgen.core.cameras.load_transforms`);
* ``Ks`` ``(V, 3, 3)`` float32 — pixel intrinsics;
* ``surface`` ``(M, 3)`` float16 — the object's surface samples (``surface.safetensors``: points in
  the normalised frame, for the shape metrics of ``splatgen eval``), only for objects built with them
  and only in the splits of ``surface_splits`` (by default val and test: training never reads them,
  and at about 60 KB an object they would be larger than its views). float16 keeps a point within
  1.3e-4 world units (the object's radius is 0.5), far below any metric's threshold; normals stay out.

The shard's safetensors metadata names its objects (``"objects"``: a JSON list of ids, in ``k``
order). Views decode independently, so a loader decodes only the views it samples.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .build import load_index
from .surface import FILE_NAME as SURFACE_FILE
from .surface import load_surface

PACK_FORMAT = "splatgen-shards"
PACK_VERSION = 1


def encode_view(rgba: np.ndarray, quality: int | None = None) -> bytes:
    """``(H, W, 4)`` uint8 straight RGBA → WebP bytes.

    ``quality=None`` (default) is lossless and bit-exact — the colour under fully transparent pixels
    too (the builder writes 0 there), so a packed view decodes to the very pixels of its PNG; about
    1.6 KB a 128² view (1 % more than letting the encoder change those invisible pixels), and it
    decodes several times faster than lossy WebP. An integer 1–100 is lossy colour at that quality
    with lossless alpha (about 0.9 KB at 90), where the encoder may change the colour under fully
    transparent pixels, which nobody sees once composited.
    """
    from PIL import Image

    buf = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    if quality is None:
        image.save(buf, "WEBP", lossless=True, quality=80, method=4, exact=True)
    else:
        image.save(buf, "WEBP", quality=int(quality), alpha_quality=100, method=4, exact=False)
    return buf.getvalue()


def codec_loss(data: str | os.PathLike, qualities: list[int | None], split: str = "train", objects: int = 60,
               views: int = 4) -> dict:
    """What a WebP quality costs on a built split: for ``objects`` objects spread over ``split``
    (``views`` views each), bytes a view and PSNR (dB) of the decoded views against the PNGs: of the
    colour composited on the framing background over the whole view (``psnr_rgb``) and over the
    object's pixels only (``psnr_rgb_object``: alpha > 0 in the PNG), and of the alpha.
    ``{quality: {"bytes_per_view", "psnr_rgb", "psnr_rgb_object", "psnr_alpha", "max_alpha_error"}}``
    (``None``: lossless)."""
    from .. import framing
    from ..image_loading import VIEW_FORMATS, read_rgba
    from .dataset import decode_view

    data = Path(data)
    index = load_index(data)
    ids = sorted(index["splits"][split])
    ids = [ids[i] for i in dict.fromkeys(np.linspace(0, len(ids) - 1, min(objects, len(ids))).round().astype(int))]
    bg = np.asarray(framing.BACKGROUND, np.float64)
    views_px = []
    for oid in ids:
        frames = sorted((data / oid).glob("rgba_*.png"))
        for f in frames[:: max(1, len(frames) // views)][:views]:
            views_px.append(read_rgba(f, formats=VIEW_FORMATS))

    def composite(v):
        a = v[..., 3:4] / 255.0
        return v[..., :3] / 255.0 * a + bg * (1 - a)

    def psnr(mse):
        return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))

    out = {}
    for q in qualities:
        n_bytes, se_rgb, se_a, max_a, se_obj, n_obj = 0, 0.0, 0.0, 0, 0.0, 0
        for v in views_px:
            blob = encode_view(v, q)
            n_bytes += len(blob)
            d = decode_view(blob)
            err = (composite(d) - composite(v)) ** 2
            se_rgb += float(err.mean())
            on = v[..., 3] > 0
            se_obj += float(err[on].sum() / 3)
            n_obj += int(on.sum())
            diff_a = np.abs(d[..., 3].astype(int) - v[..., 3].astype(int))
            se_a += float(((diff_a / 255.0) ** 2).mean())
            max_a = max(max_a, int(diff_a.max()))
        k = max(1, len(views_px))
        out[q] = {"bytes_per_view": round(n_bytes / k, 1), "psnr_rgb": round(psnr(se_rgb / k), 2),
                  "psnr_rgb_object": round(psnr(se_obj / max(1, n_obj)), 2),
                  "psnr_alpha": round(psnr(se_a / k), 2), "max_alpha_error": max_a, "views": len(views_px)}
    return out


#: Splits whose objects keep their surface samples when packed (what evaluation measures).
SURFACE_SPLITS = ("val", "test")


def _encode_object(args: tuple) -> tuple[str, dict[str, np.ndarray] | None, str | None]:
    """Read one object folder and encode its views (and its surface samples when ``with_surface``
    and it has them); returns ``(id, arrays, error)``."""
    folder, quality, with_surface = args
    from ..cameras import load_transforms
    from ..image_loading import VIEW_FORMATS, read_rgba

    folder = Path(folder)
    try:
        cams = load_transforms(folder)
        blobs = []
        for fp in cams.file_paths:
            rgba = read_rgba(folder / fp, formats=VIEW_FORMATS)
            blobs.append(encode_view(rgba, quality))
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays = {
            "images": np.frombuffer(b"".join(blobs), dtype=np.uint8).copy(),
            "offsets": offsets,
            "viewmats": cams.viewmats.numpy().astype(np.float32),
            "Ks": cams.Ks.numpy().astype(np.float32),
        }
        if with_surface and (folder / SURFACE_FILE).is_file():
            points, _ = load_surface(folder / SURFACE_FILE)
            if points.ndim != 2 or points.shape[1] != 3 or not len(points) or not np.isfinite(points).all():
                raise ValueError(f"{SURFACE_FILE}: surface samples must be finite (M, 3) points, got {points.shape}")
            arrays["surface"] = points.astype(np.float16)
        return folder.name, arrays, None
    except Exception as exc:  # noqa: BLE001 - reported and left out, never aborts the pack
        return folder.name, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _previous_index(out: Path, index: dict) -> dict:
    """The ``index.json`` already in ``out`` if it packs the same kind of views, else ``{}``."""
    try:
        prev = json.loads((out / "index.json").read_text())
    except (OSError, ValueError):
        return {}
    if prev.get("format") != PACK_FORMAT or (prev.get("views"), prev.get("size")) != (index["views"], index["size"]):
        return {}
    return prev


def _packed_files(out: Path) -> set[str]:
    """Shard files the ``index.json`` in ``out`` lists (what an earlier pack wrote there), any format."""
    try:
        prev = json.loads((out / "index.json").read_text())
        return {str(shard["file"]) for shards in prev["splits"].values() for shard in shards}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


@dataclass
class PackSummary:
    out: Path
    objects: dict[str, int]
    views: dict[str, int]
    bytes: dict[str, int]
    failed: dict[str, str]
    seconds: float

    def line(self) -> str:
        parts = [f"{s}: {self.objects[s]} objects, {self.views[s]} views, {self.bytes[s] / 2**20:.1f} MiB"
                 for s in self.objects]
        extra = f"; {len(self.failed)} failed" if self.failed else ""
        return "; ".join(parts) + f" in {self.seconds:.0f} s{extra} → {self.out}"


def pack_dataset(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    splits: tuple[str, ...] | list[str] = ("train",),
    quality: int | None = None,
    shard_mib: float = 4.0,
    workers: int | None = None,
    progress: bool = True,
    surface_splits: tuple[str, ...] | list[str] = SURFACE_SPLITS,
) -> PackSummary:
    """Pack ``splits`` of the dataset built in ``data`` into shards in ``out`` (replacing its shards);
    the objects of ``splits`` that are also in ``surface_splits`` keep their surface samples.

    A split that holds no objects (a small dataset can leave val or test empty: the split is a hash
    of the object id) is recorded in ``index.json`` as packed with no shards, so that loading it
    says it is empty rather than that it was never packed; :class:`DatasetError` only when every
    requested split is empty.
    """
    from safetensors.numpy import save_file

    from .build import _progress

    t0 = time.perf_counter()
    data, out = Path(data), Path(out)
    index = load_index(data)
    splits = list(dict.fromkeys(splits))
    for s in splits:
        if s not in index["splits"]:
            raise DatasetError(f"{data}: no split {s!r} (has {', '.join(index['splits'])})")
    if not any(index["splits"][s] for s in splits):
        raise DatasetError(f"{data}: nothing to pack: split(s) {', '.join(splits)} hold no objects")
    ours = _packed_files(out)
    foreign = sorted(p.name for split in splits for p in out.glob(f"{split}-*.safetensors") if p.name not in ours)
    if foreign:  # only shards an earlier pack listed in its index.json are ever replaced
        raise DatasetError(f"{out}: holds {foreign[0]}, which no earlier `splatgen data pack` wrote there; "
                           "it is left alone: move it away or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:  # other splits packed here before stay
        for old in out.glob(f"{split}-*.safetensors"):
            old.unlink()
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    previous = _previous_index(out, index)
    packed = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "source": str(data.resolve()),
        "views": index["views"],
        "size": index["size"],
        "framing": index["framing"],
        "codec": "webp-lossless" if quality is None else "webp",
        "quality": quality,
        "splits": {k: v for k, v in previous.get("splits", {}).items() if k not in splits},
        "objects": {k: v for k, v in previous.get("objects", {}).items() if v.get("split") not in splits},
    }
    summary = PackSummary(out, {}, {}, {}, {}, 0.0)
    limit = int(shard_mib * 2**20)
    with ProcessPoolExecutor(max_workers=workers) as ex, _progress(progress) as bar:
        for split in splits:
            ids = sorted(index["splits"][split])
            task = bar.add_task(f"packing {split}", total=len(ids), last="")
            shards, current, current_ids, current_bytes = [], {}, [], 0
            n_views, n_bytes = 0, 0

            def flush():
                nonlocal current, current_ids, current_bytes, n_bytes
                if not current_ids:
                    return
                name = f"{split}-{len(shards):05d}.safetensors"
                save_file(current, str(out / name), metadata={"objects": json.dumps(current_ids),
                                                               "format": PACK_FORMAT})
                n_bytes += (out / name).stat().st_size
                shards.append({"file": name, "objects": current_ids})
                current, current_ids, current_bytes = {}, [], 0

            jobs = ((str(data / oid), quality, split in surface_splits) for oid in ids)
            for oid, arrays, err in ex.map(_encode_object, jobs, chunksize=4):
                bar.update(task, advance=1, last=oid[:40])
                if err is not None:
                    summary.failed[oid] = err
                    continue
                k = len(current_ids)
                for key, arr in arrays.items():
                    current[f"{k:05d}.{key}"] = arr
                current_ids.append(oid)
                current_bytes += sum(a.nbytes for a in arrays.values())
                n_views += len(arrays["offsets"]) - 1
                meta = index["objects"].get(oid, {})
                packed["objects"][oid] = {
                    "split": split, "shard": len(shards), "index": k,
                    **{key: meta.get(key) for key in ("name", "category", "creator", "license", "library")},
                }
                if "surface" in arrays:
                    packed["objects"][oid]["surface_points"] = len(arrays["surface"])
                if current_bytes >= limit:
                    flush()
            flush()
            packed["splits"][split] = shards
            summary.objects[split] = sum(len(s["objects"]) for s in shards)
            summary.views[split] = n_views
            summary.bytes[split] = n_bytes
    if not any(summary.objects.values()):
        raise DatasetError(f"{data}: nothing could be packed ({len(summary.failed)} objects failed)")
    packed["failed"] = summary.failed
    (out / "index.json").write_text(json.dumps(packed, indent=1, ensure_ascii=False))
    if (data / "README.md").is_file():
        shutil.copyfile(data / "README.md", out / "DATASET_CARD.md")
    summary.seconds = time.perf_counter() - t0
    return summary
