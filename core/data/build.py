"""``splatgen data build``: render objects to multi-view RGBA datasets at the canonical framing.

Layout of a built dataset ``DIR``::

    DIR/README.md            dataset card: how it was made, counts per split and category, licences
    DIR/dataset.json         splits (object ids), per-object metadata, skipped objects and why
    DIR/build_log.txt        the last run: one line per skipped object / warning
    DIR/<object_id>/transforms.json   cameras, instant-ngp / nerfstudio convention (OpenGL c2w)
    DIR/<object_id>/rgba_000.png ...  straight-alpha RGBA views, size × size
    DIR/<object_id>/meta.json         creator, licence, category, source, normalisation, lighting, ...
    DIR/<object_id>/surface.safetensors  surface samples (points, normals) in the normalised frame

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

Objects whose normalised geometry is identical (a hash of their vertices rounded to 1/1000 of the
framing radius: one mesh under several textures, one unit in several factions) form a *group*. The
split is a hash of the group's first object id (90 / 5 / 5), so twins never straddle train and test,
and an object that has no twin keeps the split of its own id when others come and go.
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
from .sources import SourceObject, discover, licence_allowed
from .split import HASH_QUANTUM, SPLIT_FRACTIONS, SPLITS, geometry_hash, split_of  # noqa: F401 - used here and re-exported

FRAME_NAME = "rgba_{:03d}.png"
DATASET_FORMAT = "splatgen-multiview"
DATASET_VERSION = 1
#: An object whose every view has fewer opaque pixels than this is skipped as empty.
MIN_VISIBLE_PIXELS = 4
SURFACE_FILE = "surface.safetensors"
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
                sources: list[str], seconds: float, limit: int | None = None,
                licences: list[str] | None = None) -> dict:
    """Write ``dataset.json`` and the dataset card ``README.md`` from the object folders on disk."""
    from .split import balanced_split, load_signatures, near_duplicate_groups

    objects = scan_objects(out, views, size)
    group_of, merged = near_duplicate_groups(objects, load_signatures(out, objects))
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
        "merged": merged | {"groups": len(groups), "objects_in_groups": sum(len(v) for v in groups.values())},
        "skipped": dict(sorted(skipped.items())),
        "build": {
            "sources": sources,
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "seconds_last_run": round(seconds, 1),
            "limit": limit,
            "licences": licences,
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


#: What each reader does to a model, for the card's "How it was made" (only readers in the dataset appear).
_READER_NOTES = {
    "mesh": "OBJ/MTL (from `.sh3f` zips or folders), GLB/GLTF, PLY, STL, OFF through trimesh; texture paths that "
            "are absolute or in the wrong case are looked up by file name; a SweetHome3D catalog's `modelRotation` "
            "and width × height × depth are applied (as SweetHome3D does).",
    "0ad": "0 A.D. actors read in place from `public.zip`: each group's most frequent variant, PMD meshes with "
           "props at their prop points, DDS textures; `player_*` / object-colour materials tinted by their alpha "
           "mask (one of the game's player colours an object) and drawn opaque, `basic_trans*` alpha as a cut-out; "
           "the game's left-handed frame mirrored (z negated). Foundations, destruction, decals, particles, "
           "temp/test actors and pieces used only at another actor's root are not objects.",
    "megaglest": "MegaGlest G3D v4, frame 0 of each unit's `stop` skill, tileset objects and resources; team-colour "
                 "meshes drawn opaque as mix(team colour, texture, alpha); byte-identical copies listed once.",
    "supertuxkart": "SuperTuxKart SPM: library scenes (the most detailed LOD member, no physics-only shapes), karts "
                    "with wheels, items; the game's left-handed frame mirrored; `materials.xml` decides cut-outs.",
    "flightgear": "FlightGear AC3D (own parser): nested objects, polygon fans, material colours (models without "
                  "textures keep them); sky, weather, effect, light and helper models are not objects.",
}


def _weights_licence_note(licences: list[str]) -> str:
    """What licence weights trained on a dataset with these object licences can carry (README, "Data and licences")."""
    from .sources import licence_allowed

    outside = [k for k in licences if not licence_allowed(k, ["gpl3"])]
    if all(licence_allowed(k, ["permissive"]) for k in licences):
        return ("Weights trained on this dataset: every object is CC0, public domain or CC BY, so they need "
                "only credit to the creators below.")
    text = ("Weights trained on this dataset are treated as an adaptation of it and licensed "
            "GPL-3.0-or-later: CC BY-SA 3.0 → 4.0 (its later-version clause) → GPLv3 (Creative Commons' "
            "declared BY-SA 4.0 compatibility); GPL-2+ → GPLv3; CC0, public domain and CC BY need only credit.")
    if outside:
        text += (" Not compatible with that and to be left out of shipped weights (build with `--licence gpl3`): "
                 + ", ".join(f"`{k}`" for k in outside) + ".")
    return text


def dataset_card(index: dict, objects: dict[str, dict]) -> str:
    """The dataset card (Markdown): provenance, method, counts, licences, credits, groups, skipped objects."""
    splits = index["splits"]
    split = {oid: o["split"] for oid, o in index["objects"].items()}
    n = sum(len(v) for v in splits.values())
    cats = collections.defaultdict(collections.Counter)
    lic = collections.defaultdict(collections.Counter)
    per_source = collections.defaultdict(collections.Counter)
    lic_url, lic_text = {}, {}
    creators = collections.defaultdict(collections.Counter)
    for oid, m in objects.items():
        s = split.get(oid, split_of(oid))
        cats[m.get("category", "?")][s] += 1
        lic[m.get("license", "unknown")][s] += 1
        per_source[m.get("source") or m.get("library", "?")][s] += 1
        lic_url.setdefault(m.get("license", "unknown"), m.get("license_url", ""))
        lic_text.setdefault((m.get("library"), m.get("license")), m.get("license_text", ""))
        creators[(m.get("library", "?"), m.get("license", "unknown"))][m.get("creator", "unknown")] += 1
    n_warn = sum(1 for m in objects.values() if m.get("warnings"))
    n_tex = sum(1 for m in objects.values() if m.get("textured"))
    groups = index.get("groups") or {}
    n_grouped = sum(len(v) for v in groups.values())
    readers = sorted({m.get("reader", "mesh") for m in objects.values()})
    lit = next((m.get("lighting") for m in objects.values() if m.get("lighting")), None) or {}
    n_surface = next((m.get("surface_points") for m in objects.values() if m.get("surface_points")), 0)
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
        "## Sources",
        "",
        _table(["source", *SPLITS, "total"],
               [[k, *[cnt[s] for s in SPLITS], sum(cnt.values())] for k, cnt in sorted(per_source.items())]),
        "",
        "## Splits",
        "",
        _table(["split", "objects", "views"], [[k, len(v), len(v) * index["views"]] for k, v in splits.items()]),
        "",
        "Objects are assigned by group: objects whose normalised geometry is identical (one mesh under "
        "several textures, one unit in several factions) form a group, and a group goes where a hash of its "
        "first object id sends it (SHA-256 of `splatgen-split:<id>`: "
        + ", ".join(f"{k} {int(f * 100)} %" for k, f in SPLIT_FRACTIONS)
        + "), so no test object has a twin in train, and an object without twins keeps its split when "
          f"others are added. {len(groups)} groups hold {n_grouped} objects; the other "
          f"{n - n_grouped} objects are unique. Ids and groups are listed in `dataset.json`.",
        "",
        "## Categories",
        "",
        "From each source's own folders or definitions (see each `meta.json`: `category`, `subcategory`).",
        "",
        _table(["category", *SPLITS, "total"],
               [[c, *[cnt[s] for s in SPLITS], sum(cnt.values())] for c, cnt in sorted(cats.items())]),
        "",
        "## Licences",
        "",
        "Each object keeps the licence of the package or library it came from; `meta.json` in its folder "
        "names its creator, licence, source package, category, source file and the licence files. CC-BY and "
        "CC-BY-SA objects require attribution to their creators (below) when redistributed, and so do renders "
        "of them such as this dataset; CC-BY-SA and GPL renders are shared under the same terms."
        + (f" Built with `--licence {','.join(index['build']['licences'])}`." if index["build"].get("licences") else ""),
        "",
        _table(["licence", *SPLITS, "total", "url"],
               [[k, *[cnt[s] for s in SPLITS], sum(cnt.values()), lic_url.get(k, "")] for k, cnt in sorted(lic.items())]),
        "",
        _weights_licence_note(sorted(lic)),
        "",
        "### Credits",
        "",
    ]
    for (library, licence), cnt in sorted(creators.items()):
        text = lic_text.get((library, licence), "")
        top = sorted(cnt.items(), key=lambda x: (-x[1], x[0]))
        names = ", ".join(f"{c} ({k})" if k > 1 else c for c, k in top[:40])
        more = f", and {len(top) - 40} more (see meta.json)" if len(top) > 40 else ""
        out.append(f"- **{library}** — {licence}{' — ' + text if text else ''}: {names}{more}")
    b = index["build"]
    debian = any(src.startswith("/usr/share/sweethome3d") for src in b["sources"])
    if lit.get("mode") == "varied":
        from . import lighting as L

        light_line = (
            "Lambertian shading, two-sided, no specular; each object has its own lights, fixed in the world "
            "across its views (a view-independent splat colour can match them): a key light at azimuth "
            f"uniform in [0°, 360°), elevation uniform in [{L.KEY_ELEVATION_DEG[0]:g}°, {L.KEY_ELEVATION_DEG[1]:g}°], "
            f"black-body colour of {L.KELVIN_RANGE[0]:g}–{L.KELVIN_RANGE[1]:g} K at intensity "
            f"{L.KEY_RANGE[0]:g}–{L.KEY_RANGE[1]:g}; a neutral fill opposite it (± 40°, elevation "
            f"{L.FILL_ELEVATION_DEG[0]:g}–{L.FILL_ELEVATION_DEG[1]:g}°) at {L.FILL_RANGE[0]:g}–{L.FILL_RANGE[1]:g}; "
            f"neutral ambient {L.AMBIENT_RANGE[0]:g}–{L.AMBIENT_RANGE[1]:g} plus {L.SKY:g} · n_y. Drawn from the "
            "build seed and the object id; recorded in `meta.json` (`lighting`).")
    else:
        light_line = ("Lambertian shading with world-fixed lights (key from above-front-right, weaker fill from "
                      "behind-left, sky/ground ambient), the same for every object, two-sided, no specular.")
    out += [
        "",
        "## How it was made",
        "",
        f"- Command: `{b['command']}` (re-running it resumes; the last run took {b['seconds_last_run']:.0f} s)."
        + (" The SweetHome3D libraries come from Debian's `sweethome3d-furniture` package." if debian else ""),
        *[f"- Reader `{r}`: {_READER_NOTES[r]}" for r in readers if r in _READER_NOTES],
        "- Every model's bounding box is centred at the origin and scaled so the bounding sphere has radius "
        f"{fr['object_radius']}. World Y is up.",
        f"- Cameras look at the origin from distance {fr['camera_distance']} with a {fr['fov_deg']}° field of "
        f"view, world Y up, azimuth uniform in [0°, 360°), elevation uniform in [{lo}°, {hi}°]; the cameras "
        f"of an object depend only on the build seed ({index['seed']}) and its id. Frame 0 is such a "
        "random view too.",
        "- Rasterised with OpenGL (Mesa llvmpipe, headless EGL) at 2× the resolution and box-filtered "
        f"in premultiplied colour; straight-alpha RGBA PNGs. {light_line} Materials: diffuse colour or "
        "texture, texture alpha as cut-out (threshold 0.5) where the source says so, partial opacity as "
        "blended transparency.",
        "- `transforms.json` per object follows instant-ngp / nerfstudio (camera-to-world, OpenGL axes, "
        "`fl_x fl_y cx cy w h`); splatgen reads it back into OpenCV cameras with "
        "`splatgen.core.cameras.load_transforms`. The background to composite on is "
        f"{tuple(fr['background'])}.",
        *([f"- `surface.safetensors` per object: {n_surface} points (`points`) with unit normals (`normals`) "
           "on the drawn surface, area-uniform, in the normalised frame of the cameras (cut-out texels "
           "excluded), for Chamfer / F-score / IoU in evaluation "
           "(`splatgen.core.data.surface.load_surface`)."] if n_surface else []),
        f"- {n_tex} of {n} objects are textured; {n_warn} had warnings (usually missing textures, "
        "drawn with their diffuse colour instead) — see each `meta.json` and `build_log.txt`.",
        "",
    ]
    from .sheet import sheet_name

    out += ["## Contact sheets", "",
            "View 0 of every object (at most 200 a source, spread evenly), one sheet a source "
            "(`splatgen data sheet` redraws them):", ""]
    out += [f"![{src}]({sheet_name(src)})" for src in sorted(per_source)]
    out += ["", "## Verification", "",
            "The readers were checked on the packages' own files against facts read independently (assimp's "
            "triangle counts and boxes, SPM header boxes, declared unit heights, the games' left/right prop points "
            "and wheels, resolving references) by `splatgen data verify`; splatgen records the results in "
            "`benchmarks/data-verify-*.json`.", ""]
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
