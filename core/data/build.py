"""``splatgen data build``: render objects to multi-view RGBA datasets at the canonical framing.

Layout of a built dataset ``DIR``::

    DIR/README.md            dataset card: how it was made, counts per split and category, licences
    DIR/dataset.json         splits (object ids), per-object metadata, skipped objects and why
    DIR/build_log.txt        the last run: one line per skipped object / warning
    DIR/<object_id>/transforms.json   cameras, instant-ngp / nerfstudio convention (OpenGL c2w)
    DIR/<object_id>/rgba_000.png ...  straight-alpha RGBA views, size × size
    DIR/<object_id>/meta.json         creator, licence, category, source, normalisation, lighting, ...
    DIR/<object_id>/surface.safetensors  surface samples (points, normals) in the normalised frame
    DIR/<object_id>/signature.png     4 tiny views from fixed cameras, flat and lit (near-duplicates, saturation)

Every object is normalised (catalog rotation, catalog size, centred, bounding-sphere radius
``framing.OBJECT_RADIUS``, Y up) and seen by ``views`` cameras at ``framing.CAMERA_DISTANCE`` with
field of view ``framing.FOV_DEG``, azimuth uniform in [0, 360) and elevation uniform in
``framing.ELEVATION_RANGE_DEG``. The cameras of an object depend only on ``(seed, object_id)``.

Each object is lit by its own lights (:func:`splatgen.core.data.lighting.sample_lighting`: key
direction and colour temperature, fill and ambient levels drawn from ``(seed, object_id)``), fixed in
the world across its views.

An object's folder appears atomically (rendered into a hidden temporary folder, then renamed), so
a re-run skips finished objects and redoes interrupted ones. Objects that cannot be loaded are
logged and skipped; the build always completes.

Objects of identical normalised geometry or near-identical signature views form a *group*, and
the split (90 / 5 / 5, balanced per category) moves whole groups (:mod:`splatgen.core.data.split`),
so twins never straddle train and test. ``dataset.json`` and the card are written from the folders
(:mod:`splatgen.core.data.index`); ``splatgen data regroup`` rewrites them without rendering.
"""

from __future__ import annotations

import collections
import datetime as _dt
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import framing
from ..errors import DatasetError
from .sources import SourceObject, discover, licence_allowed
from .index import (DATASET_FORMAT, DATASET_VERSION, FRAME_NAME, SURFACE_FILE, is_complete,  # noqa: F401 - re-exported
                    load_index, regroup, scan_objects, write_index)
from .split import HASH_QUANTUM, SPLIT_FRACTIONS, SPLITS, geometry_hash, split_of  # noqa: F401 - re-exported

#: An object whose every view has fewer opaque pixels than this is skipped as empty.
MIN_VISIBLE_PIXELS = 4
LIGHTING_MODES = ("varied", "fixed")


# ---------------------------------------------------------------------- deterministic choices
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
    from .sources.common import Container

    if path not in _CONTAINERS:
        while len(_CONTAINERS) >= 4:
            _CONTAINERS.pop(next(iter(_CONTAINERS))).close()
        _CONTAINERS[path] = Container(path)
    return _CONTAINERS[path]


def _init_worker(lp_threads: int | None) -> None:
    if lp_threads:
        # llvmpipe sizes its thread pool from this when the context is created
        os.environ["LP_NUM_THREADS"] = str(lp_threads)


def render_object(obj: SourceObject, out: str, views: int, size: int, seed: int,
                  supersample: int = 2, lighting: str = "varied", surface_points: int = 0) -> dict:
    """Load, normalise, render and write one object. Never raises for bad input.

    ``lighting`` ``"varied"`` lights the object with its own :func:`~splatgen.core.data.lighting.sample_lighting`,
    ``"fixed"`` with the default rig. ``surface_points`` > 0 also writes that many surface samples.
    Returns ``{"id", "ok", "reason" (if not ok), "warnings", "seconds", "meta" (if ok)}``.
    """
    from PIL import Image

    from .. import cameras
    from .lighting import DEFAULT_LIGHTING, sample_lighting
    from .mesh_render import ModelError, normalisation_matrix, transform_parts
    from .signature import SIGNATURE_FILE, render_signature, save_signature
    from .sources import load_model
    from .surface import save_surface, sample_surface, surface_seed

    t0 = time.perf_counter()
    result = {"id": obj.object_id, "ok": False, "warnings": []}
    tmp = Path(out) / f".tmp-{obj.object_id}-{os.getpid()}"
    try:
        model = load_model(obj, _container(obj.container))
        result["warnings"] = model.warnings
        M = normalisation_matrix(model.parts, obj.model_rotation, obj.size_cm)
        parts = transform_parts(model.parts, M)
        az, el = sample_cameras(views, seed, obj.object_id)
        viewmats = cameras.orbit_viewmats(az.tolist(), el.tolist(), framing.CAMERA_DISTANCE)
        K = cameras.canonical_intrinsics(size)
        light = sample_lighting(seed, obj.object_id) if lighting == "varied" else DEFAULT_LIGHTING
        rgba = _renderer(supersample).render(parts, viewmats.numpy(), K.numpy(), size, size, lighting=light)
        signature = render_signature(_renderer(supersample), parts, light)
        visible = (rgba[..., 3] > 127).reshape(views, -1).sum(1)
        if visible.max() < MIN_VISIBLE_PIXELS:
            raise ModelError("renders empty (nothing opaque in any view)")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        if surface_points > 0:
            try:
                points, normals = sample_surface(parts, surface_points, surface_seed(seed, obj.object_id))
            except ValueError as exc:
                raise ModelError(f"no surface to sample ({exc})") from None
            save_surface(tmp / SURFACE_FILE, points, normals)
        save_signature(tmp / SIGNATURE_FILE, signature)
        names = [FRAME_NAME.format(i) for i in range(views)]
        for name, img in zip(names, rgba):
            Image.fromarray(img, "RGBA").save(tmp / name, compress_level=6)
        cameras.save_transforms(tmp / "transforms.json", viewmats, K, size, size, file_paths=names)
        meta = obj.meta()
        meta.update({
            "split": split_of(obj.object_id),  # of the object alone; dataset.json has the split by group
            "geometry_hash": geometry_hash(parts),
            "lighting": light.meta() | {"mode": lighting},
            "surface_points": int(surface_points),
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


def _process_gone(pid: str) -> bool:
    """Whether process ``pid`` (digits) has ended; anything else is not a name of ours: kept."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def build_dataset(
    source: str | os.PathLike | list,
    out: str | os.PathLike,
    *,
    views: int = 24,
    size: int = framing.IMAGE_SIZE,
    limit: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    supersample: int = 2,
    progress: bool = True,
    licences: list[str] | None = None,
    lighting: str = "varied",
    surface_points: int = 10_000,
    sample: int | None = None,
) -> BuildSummary:
    """Build (or resume) a dataset from ``source`` (one path or several) into ``out``; see the module docstring.

    Each source path is read by the reader that recognises it (:func:`splatgen.core.data.sources.discover`).
    ``limit`` keeps the first K objects *of each source*; ``sample`` keeps K objects spread evenly
    over each source's sorted list instead (a quick look at its variety). ``licences`` keeps only objects whose
    licence is one of these families or ids (``["cc0", "cc-by"]``; see
    :func:`~splatgen.core.data.sources.licence_allowed`). ``lighting`` is ``"varied"`` (per object)
    or ``"fixed"``; ``surface_points`` > 0 stores that many surface samples an object.
    ``workers`` rendering processes (default: one per two CPU cores, each rasterising with two
    threads); 0 renders in this process (no crash isolation, no start-up cost).
    Raises :class:`DatasetError` when the source holds nothing, or when nothing at all could be
    rendered.
    """
    if views < 1 or size < 8:
        raise DatasetError(f"need views >= 1 and size >= 8 (got views={views}, size={size})")
    if lighting not in LIGHTING_MODES:
        raise DatasetError(f"lighting must be one of {', '.join(LIGHTING_MODES)} (got {lighting!r})")
    t0 = time.perf_counter()
    out = Path(out)
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    objects, problems = [], []
    filtered = 0
    for src in sources:
        objs, probs = discover(src)
        kept = [o for o in objs if licence_allowed(o.license, licences)]
        filtered += len(objs) - len(kept)
        if sample is not None and 0 < sample < len(kept):
            kept = [kept[i] for i in dict.fromkeys(np.linspace(0, len(kept) - 1, sample).round().astype(int))]
        objects += kept[: max(0, int(limit))] if limit is not None else kept
        problems += probs
    seen: set[str] = set()
    for o in objects:
        if o.object_id in seen:
            raise DatasetError(f"object id {o.object_id} found twice: the same source given twice?")
        seen.add(o.object_id)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".tmp-*"):  # left by an interrupted run: ours by name, and its process has ended
        if stale.is_dir() and not stale.is_symlink() and _process_gone(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    summary = BuildSummary(out=out)
    todo = []
    for o in objects:
        if is_complete(out / o.object_id, views, size, seed, lighting, surface_points):
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
        emit(f"# sources {', '.join(str(Path(s).resolve()) for s in sources)} -> {out.resolve()}; views {views}, "
             f"size {size}, seed {seed}, limit {limit} a source, lighting {lighting}, surface points {surface_points}, "
             f"licences {','.join(licences) if licences else 'all'} ({filtered} objects left out by licence), "
             f"workers {workers}; {len(objects)} objects, {summary.resumed} already complete")
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

        args = (str(out), views, size, seed, supersample, lighting, surface_points)
        if workers == 0:  # in this process: no start-up cost, no protection from driver crashes
            for o in todo:
                handle(render_object(o, *args))
        else:
            _run_parallel(todo, args, workers, handle, emit)

        summary.seconds = time.perf_counter() - t0
        emit(f"# done: {summary.rendered} rendered, {summary.resumed} resumed, {len(summary.skipped)} skipped, "
             f"{summary.warnings} warnings, {summary.seconds:.1f} s")

    index = write_index(out, views=views, size=size, seed=seed, skipped=summary.skipped,
                        sources=[str(Path(s).resolve()) for s in sources], seconds=summary.seconds, limit=limit,
                        licences=licences)
    summary.counts = {k: len(v) for k, v in index["splits"].items()}
    if not index["objects"]:
        raise DatasetError(f"{out}: no object could be rendered; reasons in {log_path}")
    from .sheet import contact_sheets

    contact_sheets(out)  # the card shows them
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


__all__ = ["build_dataset", "render_object", "split_of", "sample_cameras", "write_index", "load_index",
           "is_complete", "SPLITS", "FRAME_NAME", "BuildSummary"]
