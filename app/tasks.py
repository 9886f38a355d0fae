"""The GUI's background tasks: each function here builds a job body that runs in the worker thread
(:mod:`splatgen.app.worker`) and calls the core: image preparation, model loading, generation,
resampling, thumbnails, exports, and the run history (:class:`Autosave` keeps every generation as
a run; listing, reopening and exporting runs). Nothing here touches a widget.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from splatgen.core.errors import SplatgenError

from .worker import JobCancelled
from splatgen.core.runs import THUMB_SIZE, settings_tag

log = logging.getLogger("splatgen.app")



@dataclass(frozen=True)
class ModelInfo:
    """What the controls need to know about a loaded generator."""

    key: str                     # folder name in assets/models ("diffusion", "regressor")
    label: str                   # the model's own name
    kind: str
    stochastic: bool
    defaults: object             # GenerationSettings, fully resolved
    device: str
    teacher: bool = False        # can start from the teacher regressor's object (strength < 1)


@dataclass
class Produced:
    """A sample as it arrives in the UI: the sample and its gallery thumbnail ``(S, S, 3)`` uint8."""

    sample: object               # splatgen.core.generator.Sample
    thumbnail: np.ndarray
    index: int = 0               # position within its generation run
    total: int = 1
    run_id: str = ""             # the run of the history it was kept in ("" if none)
    resampled: int = 0           # how many resamples it has been through


class ModelCache:
    """Generators by model key, loaded on first use (worker thread only)."""

    def __init__(self, device: str = "auto"):
        self.device = device
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, key: str):
        from splatgen.core.generator import load_generator

        with self._lock:
            if key not in self._models:
                log.info("loading model %s on %s", key, self.device)
                self._models[key] = load_generator(key, self.device)
            return self._models[key]

    def info(self, key: str) -> ModelInfo:
        gen = self.get(key)
        return ModelInfo(key=key, label=str(gen.name), kind=str(gen.kind), stochastic=bool(gen.stochastic),
                         defaults=gen.defaults, device=str(gen.device),
                         teacher=gen.starts_from_teacher)


def set_torch_threads() -> int:
    """Leave one core to the UI and the software renderer: torch gets ``cores - 1`` threads (≥ 1)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    n = max(1, cores - 1)
    torch.set_num_threads(n)
    return n


# ---------------------------------------------------------------------- jobs
def load_model(cache: ModelCache, key: str):
    def run(ctx):
        return cache.info(key)
    return run


#: The user's cut-outs of this session, per photo (:class:`splatgen.core.cutout.CutoutMemory`);
#: :func:`prepare` uses a photo's corrected mask whenever background removal is on.
CUTOUTS = None


def cutouts():
    global CUTOUTS
    if CUTOUTS is None:
        from splatgen.core.cutout import CutoutMemory

        CUTOUTS = CutoutMemory()
    return CUTOUTS


def prepare(path: str, foreground_ratio: float, remove_background: bool):
    """→ :class:`splatgen.core.imageprep.PreparedImage`, with the user's corrected cut-out of
    ``path`` (:func:`cutouts`) as its mask when there is one and background removal is on."""
    def run(ctx):
        from splatgen.core.imageprep import prepare_image

        fixed = cutouts().get(path) if remove_background else None
        if fixed is not None and fixed.mask is not None:
            from splatgen.core.cutout import full_size_mask
            from splatgen.core.image_loading import _orientation, open_image

            with open_image(path) as im:  # the oriented photo's size, from its header
                size = im.size[::-1] if _orientation(im) in (5, 6, 7, 8) else im.size
            return prepare_image(path, foreground_ratio=foreground_ratio, mask=full_size_mask(fixed.mask, size))
        return prepare_image(path, foreground_ratio=foreground_ratio, remove_background=remove_background)
    return run


def refine_cutout(path: str, cutout):
    """Job body: GrabCut with the hints of ``cutout`` (:class:`splatgen.core.cutout.Cutout`: strokes,
    rectangle, and its previous mask, else the automatic cut-out) on ``path`` → the new mask
    ``(h, w)`` bool at the working scale (the caller stores it)."""
    def run(ctx):
        from splatgen.core import cutout as cut
        from splatgen.core.image_loading import DECODE_SIDE, load_image

        px = load_image(path, draft_side=DECODE_SIDE).pixels
        ctx.check()
        work = cut.working_copy(px)
        previous = cutout.mask
        if previous is None and cutout.rect is None:
            previous = cut.automatic_mask(px)
        ctx.check()
        return cut.refine_cutout(work, previous, cutout.strokes, cutout.rect)
    return run


def thumbnail(sample, size: int = THUMB_SIZE, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A three-quarter view of a sample, ``(size, size, 3)`` uint8 (fastest renderer here)."""
    from splatgen.core.runs import sample_thumbnail

    return sample_thumbnail(sample, size, background)


def disagreement(samples):
    """Job body: each sample's mean disagreement with the others, ``(S,)`` float64
    (:func:`splatgen.core.disagreement.sample_disagreement`)."""
    def run(ctx):
        from splatgen.core.disagreement import sample_disagreement

        return sample_disagreement([s.gaussians for s in samples])
    return run


def load_splat_file(path: str):
    """Job body: a splat file (any format of :mod:`splatgen.core.io`) → ``(sample, thumbnail)``; the
    sample sits at the canonical input camera, as the app's own samples do."""
    def run(ctx):
        from splatgen.core.generator.base import GenerationSettings, Sample, input_camera
        from splatgen.core.io import load_splats

        g = load_splats(path)
        ctx.check()
        viewmat, K = input_camera()
        sample = Sample(gaussians=g, input_viewmat=viewmat, K=K, seed=0, settings=GenerationSettings(),
                        model=f"file {Path(path).name}", image_size=128,
                        info={"no_input_camera": True})  # no photo: nothing is "observed" in it
        return sample, thumbnail(sample)
    return run


class Autosave:
    """Every generation the app makes is kept as a run of the run history
    (:mod:`splatgen.core.runs`) under ``root``: :meth:`start` opens the run when generation starts
    (photo, prepared input, mask, model and settings), :meth:`save` writes each sample into it as
    it arrives (``<input>-seed<seed>-<settings>[-r<k>][-<n>].ply``, with its thumbnail), so none is
    lost to a crash or a forgotten export, and the run is finished (or dropped when cancelled
    before its first sample) when the job ends. A resample is added to its sample's run. The
    newest ``keep_runs`` runs are kept (0: all). ``root`` None: nothing is written. Never raises:
    a failing disk costs the history, not the generation. Worker threads only (any of them).
    """

    KEEP_RUNS = 100

    def __init__(self, root: str | Path | None, keep_runs: int | None = None):
        self.root = Path(root) if root else None
        self.keep_runs = self.KEEP_RUNS if keep_runs is None else int(keep_runs)
        self.folder: Path | None = None          # the latest run's folder
        self._runs = None

    @property
    def runs(self):
        """The :class:`splatgen.core.runs.Runs` under ``root`` (None when off or unusable)."""
        if self._runs is None and self.root is not None:
            try:
                from splatgen.core.runs import Runs

                self._runs = Runs(self.root)
            except Exception as exc:  # noqa: BLE001
                log.warning("run history off: %s", exc)
        return self._runs

    settings_tag = staticmethod(settings_tag)

    def start(self, name: str, model: str, settings, photo: str | None = None, prepared=None,
              stochastic: bool = True):
        """A new run (a :class:`splatgen.core.runs.RunWriter`), or None."""
        runs = self.runs
        if runs is None:
            return None
        try:
            photo_ok = photo if photo and Path(photo).is_file() else None
            writer = runs.create(name=name, generator=model, settings=settings, photo=photo_ok, prepared=prepared,
                                 extra={"stochastic": bool(stochastic)})
            self.folder = writer.final
            return writer
        except Exception as exc:  # noqa: BLE001 - the history must never break generation
            log.warning("cannot start a run: %s", exc)
            return None

    def save(self, sample, name: str = "", resampled: int = 0, run=None, thumbnail=None,
             index: int | None = None) -> Path | None:
        """Write ``sample`` into ``run`` (a writer from :meth:`start`, or the id of a finished run)."""
        try:
            if run is None:
                return None
            if isinstance(run, str):
                return self.runs.add_sample(run, sample, thumbnail=thumbnail, resampled=resampled) \
                    if self.runs is not None and run else None
            return run.add_sample(sample, thumbnail=thumbnail, resampled=resampled, index=index)
        except Exception as exc:  # noqa: BLE001
            log.warning("autosave failed: %s", exc)
            return None

    def finish(self, run, status: str = "done", timings: dict | None = None):
        """Finish a writer from :meth:`start` (dropped if not done and empty), then prune. → RunInfo | None."""
        if run is None:
            return None
        try:
            info = run.finish(status, timings)
            if self.keep_runs > 0:
                self.runs.prune(self.keep_runs)
            return info
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot finish the run: %s", exc)
            with contextlib.suppress(Exception):
                run.abort()
            return None


def progress_text(done: int, total: int, batch_sizes: list[int]) -> str:
    """What a generation run is doing, for people: ``"sample 1 of 4 · step 50/50"``, or
    ``"samples 2–4 of 4 · step 3/50"`` while a batch draws several at once. ``done`` / ``total``:
    denoising steps of the whole run, the batches (``batch_sizes``, in order) taking equal shares."""
    n = sum(batch_sizes)
    if not batch_sizes or total <= 0:
        return f"step {done}/{total}"
    per = max(1, total // len(batch_sizes))
    k = min(len(batch_sizes) - 1, max(0, (done - 1) // per))   # the batch the last step belonged to
    step = done - k * per
    first = sum(batch_sizes[:k]) + 1
    last = first + batch_sizes[k] - 1
    which = f"sample {first}" if first == last else f"samples {first}–{last}"
    return f"{which} of {n} · step {step}/{per}" if n > 1 else f"step {step}/{per}"


def generate(cache: ModelCache, key: str, image: torch.Tensor, settings, autosave: Autosave | None = None,
             name: str = "sample", photo: str | None = None, prepared=None):
    """Generate ``settings.num_samples`` samples (one for a deterministic model); each reaches the UI
    (``ctx.partial``) as soon as the generator hands it on (``on_sample``), kept in a new run of
    ``autosave`` first (``photo``: the original's path, ``prepared``: its PreparedImage). The run is
    finished as done, cancelled or failed with the job. Returns the list of :class:`Produced`."""
    def run(ctx):
        import time as _time

        t0 = _time.perf_counter()
        gen = cache.get(key)
        s = settings if gen.stochastic else replace(settings, num_samples=1)
        n = int(s.num_samples)
        out: list[Produced] = []
        writer = autosave.start(name, key, s, photo, prepared, gen.stochastic) if autosave is not None else None
        run_id = writer.id if writer is not None else ""

        def on_sample(sample, index: int) -> None:
            thumb = thumbnail(sample)
            if autosave is not None:
                autosave.save(sample, name, run=writer, thumbnail=thumb, index=index)
            p = Produced(sample, thumb, index=index, total=n, run_id=run_id)
            out.append(p)
            ctx.partial(p)

        from splatgen.core.generator import Cancelled
        from splatgen.core.generator.base import seed_batches

        sizes = [len(b) for b in seed_batches(int(s.seed or 0), n, int(getattr(gen, "max_batch", n) or n),
                                              first_alone=True)]

        def progress(done: int, total: int) -> None:
            ctx.progress(done, total, progress_text(done, total, sizes))

        status = "failed"
        try:
            ctx.check()
            gen.generate(image, s, progress=progress, cancel=ctx.cancel, on_sample=on_sample)
            status = "done"
        except (Cancelled, JobCancelled):
            status = "cancelled"
            raise
        finally:
            if autosave is not None:
                autosave.finish(writer, status, {"generate_s": round(_time.perf_counter() - t0, 4)})
        return out
    return run


def resample(cache: ModelCache, key: str, image: torch.Tensor, sample, seed: int, brush=None,
             autosave: Autosave | None = None, name: str = "sample", resampled: int = 1, run_id: str = ""):
    """Redraw the occluded part (``brush`` None) or the splats under ``brush`` = (mask ``(H, W)``
    bool, viewmat ``(4, 4)``, K ``(3, 3)``); the new sample joins the run ``run_id``. Returns :class:`Produced`."""
    def run(ctx):
        gen = cache.get(key)
        if not gen.stochastic:
            raise SplatgenError(f"{gen.name} makes one fixed result per photo, so there is nothing to redraw; "
                                f"choose the diffusion model")
        if brush is None:
            region = "occluded"
        else:
            from splatgen.core.generator.resample import brush_weights

            ctx.progress(0, 1, "finding the painted splats")
            region = brush_weights(sample.gaussians, *brush)
            if not bool(region.any()):
                raise SplatgenError("the brush covers no visible splat of this sample: paint over the object")
        ctx.check()
        new = gen.resample(image, sample, region, seed=int(seed), progress=lambda d, t: ctx.progress(
            d, t, f"redrawing · step {d}/{t}"), cancel=ctx.cancel)
        thumb = thumbnail(new)
        if autosave is not None:
            autosave.save(new, name, resampled, run=run_id, thumbnail=thumb)
        return Produced(new, thumb, run_id=run_id)
    return run


def save_sample(path: str, sample):
    def run(ctx):
        from splatgen.core.export import save_sample as _save

        n = _save(path, sample)
        return f"Saved {n:,} splats to {path}"
    return run


def save_turntable(path: str, samples, settings):
    """Job body: the turntable of ``samples`` (one or several, tiled) with ``settings``
    (:class:`splatgen.core.turntable.TurntableSettings`) → ``path``. Progress is reported per batch
    of frames; a cancel is honoured before the next batch, and leaves no file."""
    def run(ctx):
        from splatgen.core.turntable import container_alpha, frames_of, save_turntable as _save

        ctx.progress(0, settings.frames, f"turntable: frame 0 of {settings.frames}")
        written = _save(path, samples, settings, cancelled=ctx.cancel.is_set,
                        progress=lambda done, total: ctx.progress(done, total, f"turntable: frame {done} of {total}"))
        if Path(written) != Path(path):
            note = " (no ffmpeg here: written as GIF)"
        elif settings.transparent and not container_alpha(path):
            note = " (MP4 has no alpha: filled with the background colour)"
        else:
            note = ""
        shown = settings.replace(transparent=settings.transparent and container_alpha(written))
        return f"Saved a turntable ({frames_of(samples, shown)}) to {written}{note}"
    return run


def save_still(path: str, samples, viewmat, width: int, height: int, *, fov_deg: float, background,
               transparent: bool):
    """Job body: the samples (Gaussians or samples; several are a grid of tiles) from ``viewmat``
    ``(4, 4)`` OpenCV world-to-camera at ``width``×``height`` pixels, the field of view ``fov_deg``
    across each tile's shorter side → an image file (RGBA with the render's alpha when
    ``transparent``; :func:`splatgen.core.turntable.render_still`)."""
    def run(ctx):
        from splatgen.core.export import write_image
        from splatgen.core.turntable import render_still

        ctx.progress(0, 1, f"rendering {width}×{height}")
        image = render_still(samples, torch.as_tensor(viewmat, dtype=torch.float32), width, height, fov_deg=fov_deg,
                             background=background, transparent=transparent)
        ctx.check()
        ctx.progress(1, 1, "writing")
        write_image(path, image)
        alpha = ", transparent" if transparent else ""
        return f"Saved a {width}×{height} screenshot{alpha} to {path}"
    return run


def save_contact_sheet(path: str, samples: list, views: int = 6, size: int = 128, background=(1.0, 1.0, 1.0)):
    def run(ctx):
        from splatgen.core.export import contact_sheet, write_image

        ctx.progress(0, 1, "rendering the contact sheet")
        sheet = contact_sheet(samples, views=views, size=size, background=background)
        write_image(path, sheet)
        return f"Saved a contact sheet of {len(samples)} sample(s) × {views} views to {path}"
    return run


def start_browser(gaussians):
    """Start the browser viewer (:func:`splatgen.core.viewer.serve_splats`) → its handle."""
    def run(ctx):
        from splatgen.core.viewer import serve_splats

        return serve_splats(gaussians)
    return run


def save_image(path: str, image: np.ndarray, what: str = "screenshot"):
    def run(ctx):
        from splatgen.core.export import write_image

        write_image(path, image)
        return f"Saved the {what} to {path}"
    return run


# ---------------------------------------------------------------------- the run history
@dataclass
class Reopened:
    """A run read back for the gallery: its photo's prepared input ``image`` ``(4, S, S)`` (None if
    the run kept none), the model key, and its samples as :class:`Produced`."""

    run_id: str
    name: str
    photo: str
    image: object
    model_key: str
    stochastic: bool
    samples: list


def list_runs(runs):
    """→ ``[(RunInfo, thumbnail (S, S, 3) uint8 | None)]``, newest first."""
    def run(ctx):
        from splatgen.core.image_loading import read_rgba

        out = []
        for info in runs.list():
            thumb = None
            if info.thumbnail is not None:
                try:
                    thumb = read_rgba(info.thumbnail, formats=("PNG",), max_pixels=512 * 512)[..., :3]
                except Exception:  # noqa: BLE001 - a run without a readable thumbnail is still a run
                    thumb = None
            out.append((info, thumb))
        return out
    return run


def load_runs(runs, run_ids: list[str]):
    """Read runs back (samples, thumbnails, prepared input) → list of :class:`Reopened`."""
    def run(ctx):
        from splatgen.core.imageprep import composite

        out = []
        for run_id in run_ids:
            ctx.check()
            r = runs.open(run_id)
            rgba = r.input_rgba()
            produced = []
            for rec in r.samples():
                s = r.load_sample(rec)
                th = r.thumbnail(rec)
                if th is None or th.shape != (THUMB_SIZE, THUMB_SIZE, 3):
                    th = thumbnail(s)
                produced.append(Produced(s, th, int(rec.get("index", 0)), run_id=run_id,
                                         resampled=int(rec.get("resampled", 0))))
            photo = r.file(r.meta.get("photo"))
            stochastic = r.meta.get("stochastic", (r.meta.get("settings") or {}).get("scheduler") != "none")
            out.append(Reopened(run_id, str(r.meta.get("name", run_id)), str(photo or r.folder),
                                None if rgba is None else composite(rgba), str(r.meta.get("generator", "")),
                                bool(stochastic), produced))
        return out
    return run


def export_run(runs, run_id: str, path: str):
    def run(ctx):
        runs.export_zip(run_id, path)
        return f"Exported run {run_id} to {path}"
    return run


def generate_example(cache: ModelCache, key: str, path: str, settings, autosave: Autosave | None,
                     foreground_ratio: float):
    """Prepare the photo ``path`` and generate it (as :func:`generate`, kept as a run of ``autosave``):
    demo mode's attract loop makes its examples' samples ahead with it. Returns the :class:`Produced`."""
    def run(ctx):
        prepared = prepare(path, foreground_ratio, True)(ctx)
        ctx.check()
        return generate(cache, key, prepared.image, settings, autosave, Path(path).stem, str(path), prepared)(ctx)
    return run
