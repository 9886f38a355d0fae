"""``splatgen data build``: render objects to multi-view RGBA datasets at the canonical framing.

Layout of a built dataset ``DIR``::

    DIR/README.md            dataset card: how it was made, counts per split and category, licences
    DIR/dataset.json         splits (object ids), per-object metadata, skipped objects and why
    DIR/build_log.txt        the last run: one line per skipped object / warning
    DIR/<object_id>/transforms.json   cameras, instant-ngp / nerfstudio convention (OpenGL c2w)
    DIR/<object_id>/rgba_000.png ...  straight-alpha RGBA views, size × size
    DIR/<object_id>/meta.json         creator, licence, category, source file, normalisation, ...

Every object is normalised (catalog rotation, catalog size, centred, bounding-sphere radius
``framing.OBJECT_RADIUS``, Y up) and seen by ``views`` cameras at ``framing.CAMERA_DISTANCE`` with
field of view ``framing.FOV_DEG``, azimuth uniform in [0, 360) and elevation uniform in
``framing.ELEVATION_RANGE_DEG``. The cameras of an object depend only on ``(seed, object_id)``.

An object's folder appears atomically (rendered into a hidden temporary folder, then renamed), so
a re-run skips finished objects and redoes interrupted ones. Objects that cannot be loaded are
logged and skipped; the build always completes. The split is a hash of the object id (90 / 5 / 5),
so it does not change when objects are added or removed.
"""

from __future__ import annotations

import collections
import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import framing
from ..atomic import atomic_write
from ..errors import DatasetError
from .sources import SourceObject, discover

#: Fractions of objects in each split, in order; the rest of [0, 1) after train and val is test.
SPLIT_FRACTIONS = (("train", 0.90), ("val", 0.05), ("test", 0.05))
SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)
FRAME_NAME = "rgba_{:03d}.png"
DATASET_FORMAT = "splatgen-multiview"
DATASET_VERSION = 1
#: An object whose every view has fewer opaque pixels than this is skipped as empty.
MIN_VISIBLE_PIXELS = 4


# ---------------------------------------------------------------------- deterministic choices
def split_of(object_id: str) -> str:
    """Deterministic split of an object: a hash of its id, stable when other objects come and go."""
    h = hashlib.sha256(f"splatgen-split:{object_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def camera_seed(seed: int, object_id: str) -> int:
    """Seed of an object's camera sampler: depends on the build seed and the id only."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{object_id}".encode()).digest()[:8], "big")


def sample_cameras(n: int, seed: int, object_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Azimuths (uniform in [0, 360)) and elevations (uniform in the framing range), degrees, ``(n,)``."""
    rng = np.random.default_rng(camera_seed(seed, object_id))
    az = rng.uniform(0.0, 360.0, n)
    lo, hi = framing.ELEVATION_RANGE_DEG
    el = rng.uniform(lo, hi, n)
    return az, el


# ---------------------------------------------------------------------- one object
_RENDERER = None


def _renderer(supersample: int):
    global _RENDERER
    if _RENDERER is None or _RENDERER.supersample != supersample:
        from .mesh_render import MeshRenderer

        _RENDERER = MeshRenderer(supersample=supersample)
    return _RENDERER


_CONTAINERS: dict = {}


def _container(path: str):
    """Open libraries once per process: a zip's directory takes longer to parse than a model to load."""
    from .sources import Container

    if path not in _CONTAINERS:
        while len(_CONTAINERS) >= 4:
            _CONTAINERS.pop(next(iter(_CONTAINERS))).close()
        _CONTAINERS[path] = Container(path)
    return _CONTAINERS[path]


def _init_worker(lp_threads: int | None) -> None:
    if lp_threads:
        # llvmpipe sizes its thread pool from this when the context is created
        os.environ["LP_NUM_THREADS"] = str(lp_threads)


def is_complete(folder: Path, views: int, size: int, seed: int | None = None) -> bool:
    """Whether ``folder`` holds a finished object rendered with these settings."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("views") != views or meta.get("size") != size:
        return False
    if seed is not None and meta.get("seed") != seed:
        return False
    return (folder / "transforms.json").is_file() and all(
        (folder / FRAME_NAME.format(i)).is_file() for i in range(views))


def render_object(obj: SourceObject, out: str, views: int, size: int, seed: int,
                  supersample: int = 2) -> dict:
    """Load, normalise, render and write one object. Never raises for bad input.

    Returns ``{"id", "ok", "reason" (if not ok), "warnings", "seconds", "meta" (if ok)}``.
    """
    from PIL import Image

    from .. import cameras
    from .mesh_render import ModelError, load_parts, normalisation_matrix, transform_parts

    t0 = time.perf_counter()
    result = {"id": obj.object_id, "ok": False, "warnings": []}
    tmp = Path(out) / f".tmp-{obj.object_id}-{os.getpid()}"
    try:
        model = load_parts(_container(obj.container), obj.model_path)
        result["warnings"] = model.warnings
        M = normalisation_matrix(model.parts, obj.model_rotation, obj.size_cm)
        parts = transform_parts(model.parts, M)
        az, el = sample_cameras(views, seed, obj.object_id)
        viewmats = cameras.orbit_viewmats(az.tolist(), el.tolist(), framing.CAMERA_DISTANCE)
        K = cameras.canonical_intrinsics(size)
        rgba = _renderer(supersample).render(parts, viewmats.numpy(), K.numpy(), size, size)
        visible = (rgba[..., 3] > 127).reshape(views, -1).sum(1)
        if visible.max() < MIN_VISIBLE_PIXELS:
            raise ModelError("renders empty (nothing opaque in any view)")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        names = [FRAME_NAME.format(i) for i in range(views)]
        for name, img in zip(names, rgba):
            Image.fromarray(img, "RGBA").save(tmp / name, compress_level=6)
        cameras.save_transforms(tmp / "transforms.json", viewmats, K, size, size, file_paths=names)
        meta = obj.meta()
        meta.update({
            "split": split_of(obj.object_id),
            "views": views,
            "size": size,
            "seed": seed,
            "azimuths_deg": [round(float(a), 4) for a in az],
            "elevations_deg": [round(float(e), 4) for e in el],
            "normalization": [[float(v) for v in row] for row in M],
            "n_triangles": model.n_triangles,
            "n_parts": len(parts),
            "textured": any(p.texture is not None for p in parts),
            "warnings": model.warnings,
            "supersample": supersample,
        })
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        final = Path(out) / obj.object_id
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        result.update(ok=True, meta=meta)
    except ModelError as exc:
        result["reason"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad object never aborts the build
        msg = " ".join(str(exc).split())[:200]
        result["reason"] = f"{type(exc).__name__}: {msg}"
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    result["seconds"] = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------- the build loop
@dataclass
class BuildSummary:
    out: Path
    rendered: int = 0
    resumed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        c = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return (f"{self.rendered} rendered, {self.resumed} already done, {len(self.skipped)} skipped "
                f"in {self.seconds:.0f} s; splits: {c} → {self.out}")


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def build_dataset(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    views: int = 24,
    size: int = framing.IMAGE_SIZE,
    limit: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    supersample: int = 2,
    progress: bool = True,
) -> BuildSummary:
    """Build (or resume) a dataset from ``source`` into ``out``; see the module docstring.

    ``workers`` rendering processes (default: one per two CPU cores, each rasterising with two
    threads); 0 renders in this process (no crash isolation, no start-up cost).
    Raises :class:`DatasetError` when the source holds nothing, or when nothing at all could be
    rendered.
    """
    if views < 1 or size < 8:
        raise DatasetError(f"need views >= 1 and size >= 8 (got views={views}, size={size})")
    t0 = time.perf_counter()
    out = Path(out)
    objects, problems = discover(source)
    if limit is not None:
        objects = objects[: max(0, int(limit))]
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".tmp-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    summary = BuildSummary(out=out)
    todo = []
    for o in objects:
        if is_complete(out / o.object_id, views, size, seed):
            summary.resumed += 1
        else:
            todo.append(o)
    if workers is None:
        # measured on the 2-core CPU machine: one process whose llvmpipe uses both cores beats two
        workers = max(1, (os.cpu_count() or 1) // 2)
    workers = max(0, min(int(workers), len(todo) or 1))

    log_path = out / "build_log.txt"
    with open(log_path, "w", encoding="utf-8") as log, _progress(progress) as bar:
        def emit(line: str) -> None:
            log.write(line + "\n")
            log.flush()

        emit(f"# splatgen data build {_dt.datetime.now().isoformat(timespec='seconds')}")
        emit(f"# source {Path(source).resolve()} -> {out.resolve()}; views {views}, size {size}, seed {seed}, "
             f"limit {limit}, workers {workers}; {len(objects)} objects, {summary.resumed} already complete")
        for oid, reason in problems:
            summary.skipped[oid] = reason
            emit(f"SKIP {oid}: {reason}")
        task = bar.add_task("rendering", total=len(todo), last="")

        def handle(res: dict) -> None:
            for w in res.get("warnings", []):
                emit(f"WARN {res['id']}: {w}")
                summary.warnings += 1
            if res["ok"]:
                summary.rendered += 1
            else:
                summary.skipped[res["id"]] = res["reason"]
                emit(f"SKIP {res['id']}: {res['reason']}")
            bar.update(task, advance=1, last=res["id"][:40])

        args = (str(out), views, size, seed, supersample)
        if workers == 0:  # in this process: no start-up cost, no protection from driver crashes
            for o in todo:
                handle(render_object(o, *args))
        else:
            _run_parallel(todo, args, workers, handle, emit)

        summary.seconds = time.perf_counter() - t0
        emit(f"# done: {summary.rendered} rendered, {summary.resumed} resumed, {len(summary.skipped)} skipped, "
             f"{summary.warnings} warnings, {summary.seconds:.1f} s")

    index = write_index(out, views=views, size=size, seed=seed, skipped=summary.skipped,
                        sources=[str(Path(source).resolve())], seconds=summary.seconds, limit=limit)
    summary.counts = {k: len(v) for k, v in index["splits"].items()}
    if not index["objects"]:
        raise DatasetError(f"{out}: no object could be rendered; reasons in {log_path}")
    return summary


def _run_parallel(todo: list[SourceObject], args: tuple, workers: int, handle, emit) -> None:
    """Render in ``workers`` processes; a crashed worker (a segfault in a driver) costs one retry."""
    import multiprocessing as mp

    pending = collections.deque(todo)
    crashes: collections.Counter = collections.Counter()

    def crashed(o: SourceObject) -> None:
        """A worker died on ``o``: try it once more, then skip it."""
        crashes[o.object_id] += 1
        if crashes[o.object_id] >= 2:
            handle({"id": o.object_id, "ok": False, "reason": "renderer process crashed twice", "warnings": []})
        else:
            pending.appendleft(o)

    # llvmpipe threads: the cores shared out between the processes
    lp_threads = max(1, (os.cpu_count() or workers) // workers)
    while pending:
        broken = False
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(lp_threads,)) as ex:
            futures: dict = {}
            while (pending or futures) and not broken:
                while pending and len(futures) < 2 * workers:
                    o = pending.popleft()
                    futures[ex.submit(render_object, o, *args)] = o
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for f in done:
                    o = futures.pop(f)
                    try:
                        handle(f.result())
                    except BrokenProcessPool:
                        broken = True
                        crashed(o)
            if broken:
                emit("# a worker process died; restarting the pool")
                for f, o in futures.items():
                    try:
                        handle(f.result())
                    except Exception:  # noqa: BLE001 - the pool is gone: retry these
                        crashed(o)


# ---------------------------------------------------------------------- index and card
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
                sources: list[str], seconds: float, limit: int | None = None) -> dict:
    """Write ``dataset.json`` and the dataset card ``README.md`` from the object folders on disk."""
    objects = scan_objects(out, views, size)
    splits: dict[str, list[str]] = {name: [] for name in SPLITS}
    for oid in objects:
        splits[split_of(oid)].append(oid)
    keep = ("name", "category", "creator", "license", "license_url", "library", "source_file", "textured",
            "n_triangles")
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
        "objects": {oid: {k: m.get(k) for k in keep} | {"split": split_of(oid)} for oid, m in objects.items()},
        "skipped": dict(sorted(skipped.items())),
        "build": {
            "sources": sources,
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "seconds_last_run": round(seconds, 1),
            "limit": limit,
            "command": _command(out, sources, views, size, seed, limit),
        },
    }
    atomic_write(out / "dataset.json", json.dumps(index, indent=1, ensure_ascii=False).encode())
    (out / "README.md").write_text(dataset_card(index, objects), encoding="utf-8")
    return index


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def dataset_card(index: dict, objects: dict[str, dict]) -> str:
    """The dataset card (Markdown): provenance, method, counts, licences, credits, skipped objects."""
    splits = index["splits"]
    n = sum(len(v) for v in splits.values())
    cats = collections.defaultdict(collections.Counter)
    lic = collections.defaultdict(collections.Counter)
    lic_url, lic_text = {}, {}
    creators = collections.defaultdict(collections.Counter)
    for oid, m in objects.items():
        s = split_of(oid)
        cats[m.get("category", "?")][s] += 1
        lic[m.get("license", "unknown")][s] += 1
        lic_url.setdefault(m.get("license", "unknown"), m.get("license_url", ""))
        lic_text.setdefault((m.get("library"), m.get("license")), m.get("license_text", ""))
        creators[(m.get("library", "?"), m.get("license", "unknown"))][m.get("creator", "unknown")] += 1
    n_warn = sum(1 for m in objects.values() if m.get("warnings"))
    n_tex = sum(1 for m in objects.values() if m.get("textured"))
    fr = index["framing"]
    lo, hi = fr["elevation_range_deg"]
    out = [
        "# splatgen multi-view dataset",
        "",
        f"{n} objects, each rendered to {index['views']} RGBA views of {index['size']}×{index['size']} pixels "
        f"at splatgen's canonical framing. Built by `splatgen data build` "
        f"({index['build']['date']}) from:",
        "",
        *[f"- `{s}`" for s in index["build"]["sources"]],
        "",
        "## Splits",
        "",
        _table(["split", "objects", "views"], [[k, len(v), len(v) * index["views"]] for k, v in splits.items()]),
        "",
        "Objects are assigned by a hash of their id (SHA-256 of `splatgen-split:<id>`: "
        + ", ".join(f"{k} {int(f * 100)} %" for k, f in SPLIT_FRACTIONS)
        + "), so the split is deterministic and an object keeps its split when others are added. "
          "Ids are listed in `dataset.json`.",
        "",
        "## Categories",
        "",
        _table(["category", *SPLITS, "total"],
               [[c, *[cnt[s] for s in SPLITS], sum(cnt.values())] for c, cnt in sorted(cats.items())]),
        "",
        "## Licences",
        "",
        "Each object keeps the licence of the library it came from; `meta.json` in its folder names "
        "its creator, licence, category, source file and any licence files shipped with the model. "
        "CC-BY objects require attribution to their creators (below) when redistributed, "
        "and so do renders of them such as this dataset.",
        "",
        _table(["licence", *SPLITS, "total", "url"],
               [[k, *[cnt[s] for s in SPLITS], sum(cnt.values()), lic_url.get(k, "")] for k, cnt in sorted(lic.items())]),
        "",
        "### Credits",
        "",
    ]
    for (library, licence), cnt in sorted(creators.items()):
        text = lic_text.get((library, licence), "")
        names = ", ".join(f"{c} ({k})" if k > 1 else c for c, k in sorted(cnt.items(), key=lambda x: (-x[1], x[0])))
        out.append(f"- **{library}** — {licence}{' — ' + text if text else ''}: {names}")
    b = index["build"]
    debian = any(src.startswith("/usr/share/sweethome3d") for src in b["sources"])
    out += [
        "",
        "## How it was made",
        "",
        f"- Command: `{b['command']}` (re-running it resumes; the last run took {b['seconds_last_run']:.0f} s)."
        + (" The SweetHome3D libraries come from Debian's `sweethome3d-furniture` package." if debian else ""),
        "- Each model is loaded with trimesh (OBJ/MTL with textures read straight from the `.sh3f` zip; "
        "texture paths that are absolute or in the wrong case are looked up by file name), the catalog's "
        "`modelRotation` is applied, the model is stretched to the catalog's width × height × depth "
        "(as SweetHome3D does), its bounding box centred at the origin and scaled so the bounding "
        f"sphere has radius {fr['object_radius']}. World Y is up.",
        f"- Cameras look at the origin from distance {fr['camera_distance']} with a {fr['fov_deg']}° field of "
        f"view, world Y up, azimuth uniform in [0°, 360°), elevation uniform in [{lo}°, {hi}°]; the cameras "
        f"of an object depend only on the build seed ({index['seed']}) and its id. Frame 0 is such a "
        "random view too.",
        "- Rasterised with OpenGL (Mesa llvmpipe, headless EGL) at 2× the resolution and box-filtered "
        "in premultiplied colour; straight-alpha RGBA PNGs. Lambertian shading with world-fixed lights "
        "(key from above-front-right, weaker fill from behind-left, sky/ground ambient), two-sided, "
        "no specular, so a surface has the same colour in every view. Materials: diffuse colour or "
        "texture, texture alpha as cut-out (threshold 0.5), MTL `d` < 1 as blended transparency.",
        "- `transforms.json` per object follows instant-ngp / nerfstudio (camera-to-world, OpenGL axes, "
        "`fl_x fl_y cx cy w h`); splatgen reads it back into OpenCV cameras with "
        "`splatgen.core.cameras.load_transforms`. The background to composite on is "
        f"{tuple(fr['background'])}.",
        f"- {n_tex} of {n} objects are textured; {n_warn} had warnings (usually missing textures, "
        "drawn with their diffuse colour instead) — see each `meta.json` and `build_log.txt`.",
        "",
    ]
    skipped = index.get("skipped") or {}
    out += ["## Skipped", ""]
    if skipped:
        out += [f"- `{k}`: {v}" for k, v in skipped.items()]
    else:
        out.append("None.")
    out.append("")
    return "\n".join(out)


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


__all__ = ["build_dataset", "render_object", "split_of", "sample_cameras", "write_index", "load_index",
           "is_complete", "SPLITS", "FRAME_NAME", "BuildSummary"]
