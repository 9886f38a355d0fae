"""Run history: every generation kept as a run folder under a runs root, with a small SQLite index.

A run is one generation request: the photo as it came (``photo.<ext>``), the prepared 128² input
(``input.png``, straight RGBA) and its mask (``mask.png``), the generator and every setting, and
its samples — each an unpruned ``.ply`` (the whole Splatter-Image slot grid, so a reopened sample
can still be resampled) with a ``.png`` thumbnail beside it — plus ``run.json`` holding the rest
(seeds, cameras, timings, status). Layout::

    <root>/index.sqlite                 one row per finished run (a cache of the run.json files)
    <root>/<YYYYmmdd-HHMMSS-xxxxxx>/     a finished run
    <root>/.<id>.partial/               a run being written (never listed)

Crash safety: a run is written into its ``.partial`` folder (every file atomically, see
:mod:`splatgen.core.atomic`; ``run.json`` rewritten after each sample) and renamed to its id only
when finished, so a process killed half-way never leaves a listed run with missing files. The
writer holds an exclusive ``flock`` on ``.lock`` inside; a partial folder whose lock is free was
abandoned: it is recovered as an ``"interrupted"`` run if it holds at least one whole sample (the
autosave promise: no finished sample is lost), else removed. The index is rebuilt from the folders
whenever they disagree with it (or it is unreadable).

Run folders are untrusted input (copied in by hand, or from another machine): only names matching
the id pattern are runs, file names in ``run.json`` must be plain names of regular files inside
the folder (no ``/``, no ``..``, no symbolic links), and nothing here writes or deletes outside
the root. No Qt here; the desktop app and ``splatgen generate --runs DIR`` (:func:`record_run`)
share these folders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path, atomic_write
from .errors import SplatgenError

log = logging.getLogger("splatgen.runs")

RUN_FILE = "run.json"
INDEX_FILE = "index.sqlite"
LOCK_FILE = ".lock"
FORMAT = 1
#: A run id: creation time (local) and six random hex digits; sorts by time.
ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
#: What a file named in run.json may be called: a plain name, no folders, not hidden.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif")
#: Largest run.json read (a hostile folder cannot make listing slow).
MAX_RUN_JSON = 4 * 2**20
#: Without ``fcntl`` (Windows) a partial folder older than this counts as abandoned.
ABANDONED_AFTER_S = 12 * 3600
#: Thumbnail side (pixels) and the view it is rendered from (degrees).
THUMB_SIZE = 112
THUMB_AZIMUTH, THUMB_ELEVATION = 35.0, 20.0

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RunError(SplatgenError):
    """A run cannot be created, read, deleted or exported (the message names it)."""


@dataclass(frozen=True)
class RunInfo:
    """One listed run (an index row): ``id``, ``created`` (Unix seconds), the photo's ``name``,
    the ``generator``, how many ``samples``, ``status`` (``done``, ``cancelled``, ``failed``,
    ``interrupted``), its ``folder`` and ``thumbnail`` (PNG path or None)."""

    id: str
    created: float
    name: str
    generator: str
    samples: int
    status: str
    folder: Path
    thumbnail: Path | None = None


@dataclass
class Run:
    """A run read back: its :class:`RunInfo`, the whole ``run.json`` (``meta``), and loaders."""

    info: RunInfo
    meta: dict = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.info.folder

    def file(self, name: str | None) -> Path | None:
        """``name`` (from run.json) inside the folder if it is a plain name of a regular file there."""
        return _member(self.folder, name)

    def input_rgba(self) -> np.ndarray | None:
        """The prepared input ``(S, S, 4)`` uint8 straight RGBA, or None if the run has none."""
        p = self.file(self.meta.get("input"))
        if p is None:
            return None
        from .image_loading import read_rgba

        return read_rgba(p, formats=("PNG",))

    def samples(self) -> list[dict]:
        """The sample records of run.json whose files are present (in the order they were made)."""
        return [s for s in self.meta.get("samples", []) if self.file(s.get("file")) is not None]

    def load_sample(self, record: dict):
        """A sample record → :class:`splatgen.core.generator.Sample` (splats from its ``.ply``)."""
        import torch

        from .generator.base import GenerationSettings, Sample
        from .io import load_splats

        path = self.file(record.get("file"))
        if path is None:
            raise RunError(f"run {self.info.id}: sample file {record.get('file')!r} is missing")
        fields = set(GenerationSettings.__dataclass_fields__)
        settings = GenerationSettings(**{k: v for k, v in (record.get("settings") or {}).items() if k in fields})
        return Sample(gaussians=load_splats(path),
                      input_viewmat=torch.tensor(record["input_viewmat"], dtype=torch.float32).reshape(4, 4),
                      K=torch.tensor(record["K"], dtype=torch.float32).reshape(3, 3),
                      seed=int(record.get("seed", 0)), settings=settings, model=str(record.get("model", "")),
                      image_size=int(record.get("image_size", 128)), info=dict(record.get("info") or {}))

    def thumbnail(self, record: dict) -> np.ndarray | None:
        """A sample's thumbnail ``(S, S, 3)`` uint8, if stored."""
        p = self.file(record.get("thumbnail"))
        if p is None:
            return None
        from .image_loading import read_rgba

        return read_rgba(p, formats=("PNG",))[..., :3]


# ---------------------------------------------------------------------- helpers
def new_run_id(now: float | None = None) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(3)


def safe_stem(name: str) -> str:
    """A photo's name as a file-name stem: letters, digits, ``-_.`` (others become ``_``)."""
    stem = "".join(c if c.isalnum() and c.isascii() or c in "-_." else "_" for c in str(name))[:60].lstrip(".")
    return stem or "sample"


def settings_tag(sample) -> str:
    """Six hex digits naming the model and the settings that made ``sample`` (seed and count aside)."""
    import hashlib

    s = getattr(sample, "settings", None)
    fields = {k: v for k, v in (s.as_dict() if hasattr(s, "as_dict") else {}).items()
              if k not in ("seed", "num_samples")}
    text = json.dumps({"model": str(getattr(sample, "model", "")), **fields}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _member(folder: Path, name) -> Path | None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return None
    p = folder / name
    return p if _regular_file(p) else None


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(_jsonable(data), indent=1).encode(), error=RunError)


def _read_json(folder: Path) -> dict | None:
    p = folder / RUN_FILE
    if not _regular_file(p):
        return None
    try:
        if p.stat().st_size > MAX_RUN_JSON:
            return None
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write_png(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio

    with atomic_path(path, keep_suffix=True, error=RunError) as tmp:
        iio.imwrite(tmp, np.ascontiguousarray(np.asarray(image, np.uint8)))


def sample_thumbnail(sample, size: int = THUMB_SIZE, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A three-quarter view of a sample (:data:`THUMB_AZIMUTH`, :data:`THUMB_ELEVATION`), ``(size, size, 3)`` uint8."""
    import torch

    from .cameras import canonical_intrinsics, orbit_viewmat
    from .images import to_uint8
    from .render import render

    g = sample.gaussians
    vm = orbit_viewmat(THUMB_AZIMUTH, THUMB_ELEVATION).to(g.device)
    K = canonical_intrinsics(size).to(g.device)
    with torch.no_grad():
        rgb = render(g, vm[None], K, size, size, background=background).rgb[0]
    return to_uint8(rgb).cpu().numpy()


# ---------------------------------------------------------------------- writing a run
class RunWriter:
    """A run being written (in ``<root>/.<id>.partial``). :meth:`add_sample` as samples arrive,
    then :meth:`finish` (renames it into place and indexes it) or :meth:`abort`. Use it as a
    context manager: an exception in the block finishes it as ``"failed"`` (kept if it holds a
    sample), which is also what a crash leads to on the next listing (``"interrupted"``)."""

    def __init__(self, runs: "Runs", meta: dict):
        self.runs = runs
        self.id = meta["id"]
        self.meta = meta
        self.folder = runs.root / f".{self.id}.partial"
        self.final = runs.root / self.id
        self._lock_fd: int | None = None
        self._t0 = time.perf_counter()
        self.closed = False

    def _lock(self) -> None:
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd

    def _save(self) -> None:
        folder = self.final if self.closed else self.folder
        _write_json(folder / RUN_FILE, self.meta)

    def add_sample(self, sample, *, thumbnail: np.ndarray | None = None, resampled: int = 0,
                   index: int | None = None) -> Path:
        """Write ``sample`` (a :class:`~splatgen.core.generator.Sample`) as
        ``<photo>-seed<seed>-<settings>[-r<k>][-<n>].ply`` (+ ``.png`` thumbnail) and record it."""
        if self.closed:
            raise RunError(f"run {self.id} is already finished")
        return _add_sample(self.folder, self.meta, sample, thumbnail, resampled, index,
                           time.perf_counter() - self._t0, self._save)

    def finish(self, status: str = "done", timings: dict | None = None) -> RunInfo | None:
        """Put the run in place (``status``: done / cancelled / failed) and index it. A run that is
        not ``done`` and holds no sample is dropped instead (returns None)."""
        if self.closed:
            return self.runs.info(self.id)
        if status != "done" and not self.meta["samples"]:
            self.abort()
            return None
        self.meta["status"] = status
        self.meta["timings"] = {**self.meta.get("timings", {}), **(timings or {}),
                                "total_s": round(time.perf_counter() - self._t0, 4)}
        _write_json(self.folder / RUN_FILE, self.meta)
        os.replace(self.folder, self.final)
        self.closed = True
        self._unlock(self.final)
        return self.runs._index_folder(self.final)

    def abort(self) -> None:
        """Drop the run: its folder and everything written so far."""
        if self.closed:
            return
        self.closed = True
        self._unlock(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _unlock(self, folder: Path) -> None:
        with contextlib.suppress(OSError):
            (folder / LOCK_FILE).unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.closed:
            self.finish("done" if exc_type is None else "failed")


def _add_sample(folder: Path, meta: dict, sample, thumbnail, resampled: int, index, seconds: float, save) -> Path:
    from .export import camera_metadata, model_licence
    from .io import save_splats

    base = f"{safe_stem(meta.get('name', 'sample'))}-seed{sample.seed}-{settings_tag(sample)}" \
           f"{f'-r{resampled}' if resampled else ''}"
    taken = {s.get("file") for s in meta["samples"]}
    n = 1
    while True:
        stem = base if n == 1 else f"{base}-{n}"
        if f"{stem}.ply" not in taken and not os.path.lexists(folder / f"{stem}.ply"):
            break
        n += 1
    path = folder / f"{stem}.ply"
    model = str(getattr(sample, "model", ""))
    save_splats(path, sample.gaussians.detach().to("cpu"), {"model": model, "licence": model_licence(model),
                                                            **camera_metadata(sample)})
    record = {"file": path.name, "bytes": path.stat().st_size, "seed": int(sample.seed), "model": model,
              "settings": sample.settings.as_dict() if hasattr(sample.settings, "as_dict") else {},
              "image_size": int(getattr(sample, "image_size", 128)),
              "input_viewmat": sample.input_viewmat.detach().cpu().double().reshape(-1).tolist(),
              "K": sample.K.detach().cpu().double().reshape(-1).tolist(),
              "info": dict(getattr(sample, "info", {}) or {}), "resampled": int(resampled),
              "index": int(index if index is not None else len(meta["samples"])), "seconds": round(seconds, 4)}
    if thumbnail is not None:
        _write_png(folder / f"{stem}.png", thumbnail)
        record["thumbnail"] = f"{stem}.png"
        meta.setdefault("thumbnail", record["thumbnail"])
    meta["samples"].append(record)
    save()
    return path


# ---------------------------------------------------------------------- the runs root
class Runs:
    """The runs under ``root`` (created if missing): :meth:`create`, :meth:`list`, :meth:`open`,
    :meth:`delete`, :meth:`export_zip`. Safe to use from several threads and processes at once
    (each call opens its own index connection)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"{self.root}: cannot create the runs folder ({exc.strerror or exc})") from None
        if not _real_dir(self.root):
            raise RunError(f"{self.root}: not a folder")

    # ------------------------------------------------------------------ index
    def _db(self, fn):
        """``fn(connection)`` in one transaction of the index; an unreadable index is rebuilt (it only
        caches the run folders) and ``fn`` run again."""
        path = self.root / INDEX_FILE
        if os.path.lexists(path) and not _regular_file(path):   # a planted link or folder: not ours
            raise RunError(f"{path}: not a regular file; remove it to rebuild the index")
        for attempt in (0, 1):
            con = None
            try:
                con = sqlite3.connect(path, timeout=10)
                con.execute("PRAGMA synchronous = OFF")    # a cache of the folders: rebuilt if ever damaged
                with con:
                    con.execute("CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, created REAL, name TEXT, "
                                "generator TEXT, samples INTEGER, status TEXT, thumbnail TEXT, mtime INTEGER)")
                    return fn(con)
            except sqlite3.DatabaseError:
                if attempt:
                    raise
                log.warning("%s: unreadable index, rebuilt from the run folders", path)
                if con is not None:
                    con.close()
                    con = None
                path.unlink(missing_ok=True)
            finally:
                if con is not None:
                    con.close()

    def _row(self, run_id: str, meta: dict) -> tuple:
        """An index row; ``mtime`` is the folder's (it changes whenever a file in it is added,
        replaced or removed, so a row whose folder changed since is checked again)."""
        try:
            mtime = os.lstat(self.root / run_id).st_mtime_ns
        except OSError:
            mtime = 0
        return (run_id, float(meta.get("created", 0.0)), str(meta.get("name", "")), str(meta.get("generator", "")),
                len(meta.get("samples", [])), str(meta.get("status", "done")), meta.get("thumbnail"), mtime)

    def _index_folder(self, folder: Path) -> RunInfo | None:
        meta = _valid_meta(folder)
        if meta is None:
            return None
        self._db(lambda con: con.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                         self._row(folder.name, meta)))
        return self._info(self._row(folder.name, meta))

    def _info(self, row) -> RunInfo:
        run_id, created, name, generator, samples, status, thumb, _ = row
        folder = self.root / run_id
        return RunInfo(run_id, created, name, generator, samples, status, folder, _member(folder, thumb))

    # ------------------------------------------------------------------ API
    def create(self, *, name: str, generator: str, settings: dict | None = None, photo=None,
               photo_suffix: str = ".png", prepared=None, extra: dict | None = None) -> RunWriter:
        """Start a run of photo ``name`` with ``generator`` (its name) and ``settings`` (a dict, or
        a settings object with ``as_dict``). ``photo``: the original as a path or bytes (copied);
        ``prepared``: a :class:`~splatgen.core.imageprep.PreparedImage` (input.png, mask.png and its
        preparation timings are kept). ``extra``: more JSON fields for run.json."""
        if hasattr(settings, "as_dict"):
            settings = settings.as_dict()
        created = time.time()
        run_id = new_run_id(created)
        meta = {"format": FORMAT, "id": run_id, "created": created, "name": str(name), "generator": str(generator),
                "settings": dict(settings or {}), "status": "running", "samples": [], "timings": {},
                **(extra or {})}
        writer = RunWriter(self, meta)
        try:
            os.mkdir(writer.folder)
            writer._lock()
            if photo is not None:
                if isinstance(photo, (str, os.PathLike)):
                    suffix = Path(photo).suffix.lower()
                    data = Path(photo).read_bytes()
                else:
                    suffix, data = photo_suffix.lower(), bytes(photo)
                meta["photo"] = "photo" + (suffix if suffix in PHOTO_SUFFIXES else ".bin")
                atomic_write(writer.folder / meta["photo"], data, error=RunError)
            if prepared is not None:
                _write_png(writer.folder / "input.png", prepared.rgba)
                mask = np.clip(np.asarray(prepared.mask, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
                _write_png(writer.folder / "mask.png", mask)
                meta.update(input="input.png", mask="mask.png",
                            preparation={"foreground_ratio": float(prepared.foreground_ratio),
                                         "mask_source": str(getattr(prepared, "mask_source", "")),
                                         "source_size": list(getattr(prepared, "source_size", (0, 0)))})
                meta["timings"]["prepare_ms"] = dict(getattr(prepared, "timings", None) or {})
            writer._save()
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, OSError):
                raise RunError(f"{self.root}: cannot write a run ({exc.strerror or exc})") from None
            raise
        return writer

    def list(self) -> list[RunInfo]:
        """The finished runs, newest first. Recovers or removes abandoned partial runs and brings the
        index in line with the folders first."""
        self.recover()
        folders = {e.name: e.stat(follow_symlinks=False).st_mtime_ns for e in os.scandir(self.root)
                   if ID_PATTERN.match(e.name) and e.is_dir(follow_symlinks=False)}

        def sync(con) -> dict:
            rows = {r[0]: r for r in con.execute("SELECT * FROM runs")}
            for run_id in list(rows):
                if folders.get(run_id) != rows[run_id][7]:      # gone, or changed since indexed
                    con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                    del rows[run_id]
            for run_id in sorted(set(folders) - set(rows)):
                meta = _valid_meta(self.root / run_id)
                if meta is not None:
                    rows[run_id] = self._row(run_id, meta)
                    con.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[run_id])
            return rows

        rows = self._db(sync)
        return [self._info(r) for r in sorted(rows.values(), key=lambda r: (r[1], r[0]), reverse=True)]

    def info(self, run_id: str) -> RunInfo | None:
        folder = self._folder(run_id)
        meta = _valid_meta(folder) if folder is not None else None
        return None if meta is None else self._info(self._row(run_id, meta))

    def open(self, run_id: str) -> Run:
        """A finished run, read back (:class:`Run`). :class:`RunError` if there is no such valid run."""
        folder = self._folder(run_id)
        meta = _valid_meta(folder) if folder is not None else None
        if meta is None:
            raise RunError(f"{self.root}: no run {run_id!r}")
        return Run(self._info(self._row(run_id, meta)), meta)

    def add_sample(self, run_id: str, sample, *, thumbnail: np.ndarray | None = None, resampled: int = 0,
                   index: int | None = None) -> Path | None:
        """Add a sample to a finished run (a resample of one of its samples); None if the run is gone."""
        folder = self._folder(run_id)
        meta = _valid_meta(folder) if folder is not None else None
        if meta is None:
            return None
        path = _add_sample(folder, meta, sample, thumbnail, resampled, index, 0.0,
                           lambda: _write_json(folder / RUN_FILE, meta))
        self._index_folder(folder)
        return path

    def delete(self, run_id: str) -> bool:
        """Remove a run's folder and index row at once. Returns whether there was one."""
        if not isinstance(run_id, str) or not ID_PATTERN.match(run_id):
            return False
        folder = self.root / run_id
        found = os.path.lexists(folder)
        if found and not _real_dir(folder):
            os.unlink(folder)                         # a link planted under a run's name: only the link goes
        elif found:
            shutil.rmtree(folder)                     # never follows links inside
        self._db(lambda con: con.execute("DELETE FROM runs WHERE id = ?", (run_id,)))
        return found

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` runs (``keep`` ≤ 0: none). Returns the ids deleted."""
        if keep <= 0:
            return []
        old = [r.id for r in self.list()[keep:]]
        for run_id in old:
            self.delete(run_id)
        return old

    def export_zip(self, run_id: str, path: str | os.PathLike) -> Path:
        """Write the run as one zip (``<id>/run.json``, the photo, input, mask, samples, thumbnails:
        only the files run.json names), atomically."""
        run = self.open(run_id)
        names = [RUN_FILE] + [run.meta.get(k) for k in ("photo", "input", "mask")]
        for s in run.meta.get("samples", []):
            names += [s.get("file"), s.get("thumbnail")]
        files = [(n, run.file(n)) for n in dict.fromkeys(names) if n]
        path = Path(path)
        with atomic_path(path, keep_suffix=True, error=RunError) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for name, src in files:
                    if src is not None:
                        z.write(src, f"{run_id}/{name}")
        return path

    def recover(self) -> list[str]:
        """Finish abandoned partial runs (their writer died): as ``"interrupted"`` if they hold a
        whole sample, else remove them. Returns the ids recovered."""
        recovered = []
        for e in os.scandir(self.root):
            m = re.match(r"^\.(\d{8}-\d{6}-[0-9a-f]{6})\.partial$", e.name)
            if not m or not e.is_dir(follow_symlinks=False):
                continue
            folder = Path(e.path)
            with _abandoned(folder) as gone:
                if not gone:
                    continue
                meta = _read_json(folder)
                if meta is not None and meta.get("id") == m.group(1):
                    meta["samples"] = [s for s in meta.get("samples", []) if isinstance(s, dict)
                                       and _whole(folder, s)]
                if meta is None or not meta.get("samples") or os.path.lexists(self.root / m.group(1)):
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                meta["status"] = "interrupted"
                _write_json(folder / RUN_FILE, meta)
                (folder / LOCK_FILE).unlink(missing_ok=True)
                os.replace(folder, self.root / m.group(1))
            self._index_folder(self.root / m.group(1))
            recovered.append(m.group(1))
        return recovered

    def _folder(self, run_id) -> Path | None:
        if not isinstance(run_id, str) or not ID_PATTERN.match(run_id):
            return None
        folder = self.root / run_id
        return folder if _real_dir(folder) else None


def _whole(folder: Path, record: dict) -> bool:
    p = _member(folder, record.get("file"))
    return p is not None and p.stat().st_size == record.get("bytes")


@contextlib.contextmanager
def _abandoned(folder: Path):
    """Yields whether the partial run ``folder`` has no live writer (holding its lock meanwhile)."""
    lock = folder / LOCK_FILE
    if fcntl is None or not _regular_file(lock):
        try:
            old = time.time() - os.lstat(folder).st_mtime > ABANDONED_AFTER_S
        except OSError:
            old = False
        yield old
        return
    fd = os.open(lock, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False                               # its writer is alive
            return
        yield True
    finally:
        os.close(fd)


def _valid_meta(folder: Path) -> dict | None:
    """run.json of a finished run folder if it is whole: its id is the folder's name and every
    sample file it names is there, a regular file of the recorded size."""
    meta = _read_json(folder)
    if meta is None or meta.get("id") != folder.name or not isinstance(meta.get("samples"), list):
        return None
    if not all(isinstance(s, dict) and _whole(folder, s) for s in meta["samples"]):
        return None
    return meta


def record_run(root: str | os.PathLike, *, name: str, generator: str, settings, samples, photo=None,
               prepared=None, timings: dict | None = None, thumbnails: bool = True) -> RunInfo | None:
    """Keep finished ``samples`` (a list of :class:`~splatgen.core.generator.Sample`) as one run
    under ``root`` in a single call — what ``splatgen generate --runs DIR`` needs. ``photo``: the
    original's path (or bytes); ``prepared``: its :class:`~splatgen.core.imageprep.PreparedImage`;
    ``timings``: seconds to record (e.g. ``{"generate_s": 3.2}``); ``thumbnails``: render one per
    sample for the app's history. Returns the run's :class:`RunInfo`."""
    with Runs(root).create(name=name, generator=generator, settings=settings, photo=photo,
                           prepared=prepared) as run:
        for i, s in enumerate(samples):
            run.add_sample(s, thumbnail=sample_thumbnail(s) if thumbnails else None, index=i)
        return run.finish("done", timings)
