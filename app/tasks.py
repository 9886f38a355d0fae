"""The GUI's background tasks: each function here builds a job body that runs in the worker thread
(:mod:`splatgen.app.worker`) and calls the core: image preparation, model loading, generation,
resampling, thumbnails, exports. Nothing here touches a widget.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from splatgen.core.errors import SplatgenError
from splatgen.core.images import to_uint8

log = logging.getLogger("splatgen.app")

#: Thumbnail side, pixels, and the view it is rendered from (degrees).
THUMB_SIZE = 112
THUMB_AZIMUTH, THUMB_ELEVATION = 35.0, 20.0


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


def prepare(path: str, foreground_ratio: float, remove_background: bool):
    """→ :class:`splatgen.core.imageprep.PreparedImage`."""
    def run(ctx):
        from splatgen.core.imageprep import prepare_image

        return prepare_image(path, foreground_ratio=foreground_ratio, remove_background=remove_background)
    return run


def thumbnail(sample, size: int = THUMB_SIZE, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A three-quarter view of a sample, ``(size, size, 3)`` uint8 (fastest renderer here)."""
    from splatgen.core.cameras import canonical_intrinsics, orbit_viewmat
    from splatgen.core.render import render

    g = sample.gaussians
    vm = orbit_viewmat(THUMB_AZIMUTH, THUMB_ELEVATION).to(g.device)
    K = canonical_intrinsics(size).to(g.device)
    with torch.no_grad():
        rgb = render(g, vm[None], K, size, size, background=background).rgb[0]
    return to_uint8(rgb).cpu().numpy()


class Autosave:
    """Every sample the app makes is also written, as it arrives, to a session folder
    (``<root>/<YYYYmmdd-HHMMSS>/<input>-seed<seed>-<settings>[-r<k>][-<n>].ply``), so none is lost to a
    crash or a forgotten export. ``<settings>`` is a short hash of the model and the sample's settings
    (two samples of one seed at different steps get different names); a name already taken gets the
    next free ``-<n>`` (claimed with an exclusive create), so no autosave ever replaces another.
    The newest :data:`KEEP_SESSIONS` session folders are kept. Worker thread only."""

    KEEP_SESSIONS = 10

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None
        self.folder: Path | None = None

    @staticmethod
    def settings_tag(sample) -> str:
        """Six hex digits naming the model and the settings that made ``sample`` (seed and count aside)."""
        import hashlib
        import json

        s = getattr(sample, "settings", None)
        fields = {k: v for k, v in (s.as_dict() if hasattr(s, "as_dict") else {}).items()
                  if k not in ("seed", "num_samples")}
        text = json.dumps({"model": str(getattr(sample, "model", "")), **fields}, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:6]

    def _claim(self, stem: str) -> Path:
        """A new file ``<stem>.ply`` (else ``<stem>-2.ply``, …) in the session folder, created empty."""
        for n in itertools.count(1):
            path = self.folder / (f"{stem}.ply" if n == 1 else f"{stem}-{n}.ply")
            try:
                with open(path, "xb"):
                    return path
            except FileExistsError:
                continue
        raise AssertionError("unreachable")

    def save(self, sample, name: str, resampled: int = 0) -> Path | None:
        if self.root is None:
            return None
        path = None
        try:
            from splatgen.core.export import save_sample as _save

            if self.folder is None:
                import time as _time

                self.folder = self.root / _time.strftime("%Y%m%d-%H%M%S")
                self.folder.mkdir(parents=True, exist_ok=True)
                self._prune()
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "sample"
            path = self._claim(f"{stem}-seed{sample.seed}-{self.settings_tag(sample)}"
                               f"{f'-r{resampled}' if resampled else ''}")
            _save(path, sample)
            return path
        except Exception as exc:  # noqa: BLE001 - autosave must never break generation
            log.warning("autosave failed: %s", exc)
            if path is not None and path.exists() and path.stat().st_size == 0:
                path.unlink(missing_ok=True)
            return None

    def _prune(self) -> None:
        import shutil

        sessions = sorted(p for p in self.root.iterdir() if p.is_dir() and p != self.folder)
        for old in sessions[: max(0, len(sessions) - (self.KEEP_SESSIONS - 1))]:
            shutil.rmtree(old, ignore_errors=True)


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
             name: str = "sample"):
    """Generate ``settings.num_samples`` samples (one for a deterministic model); each reaches the UI
    (``ctx.partial``) as soon as the generator hands it on (``on_sample``), autosaved first.
    Returns the list of :class:`Produced`."""
    def run(ctx):
        gen = cache.get(key)
        s = settings if gen.stochastic else replace(settings, num_samples=1)
        n = int(s.num_samples)
        out: list[Produced] = []

        def on_sample(sample, index: int) -> None:
            if autosave is not None:
                autosave.save(sample, name)
            p = Produced(sample, thumbnail(sample), index=index, total=n)
            out.append(p)
            ctx.partial(p)

        from splatgen.core.generator.base import seed_batches

        sizes = [len(b) for b in seed_batches(int(s.seed or 0), n, int(getattr(gen, "max_batch", n) or n),
                                              first_alone=True)]

        def progress(done: int, total: int) -> None:
            ctx.progress(done, total, progress_text(done, total, sizes))

        ctx.check()
        gen.generate(image, s, progress=progress, cancel=ctx.cancel, on_sample=on_sample)
        return out
    return run


def resample(cache: ModelCache, key: str, image: torch.Tensor, sample, seed: int, brush=None,
             autosave: Autosave | None = None, name: str = "sample", resampled: int = 1):
    """Redraw the occluded part (``brush`` None) or the splats under ``brush`` = (mask ``(H, W)``
    bool, viewmat ``(4, 4)``, K ``(3, 3)``). Returns :class:`Produced`."""
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
        if autosave is not None:
            autosave.save(new, name, resampled)
        return Produced(new, thumbnail(new))
    return run


def save_sample(path: str, sample):
    def run(ctx):
        from splatgen.core.export import save_sample as _save

        n = _save(path, sample)
        return f"Saved {n:,} splats to {path}"
    return run


def save_turntable(path: str, sample, frames: int = 90, size: int = 512, background=(1.0, 1.0, 1.0)):
    def run(ctx):
        from splatgen.core.export import save_turntable as _save

        ctx.progress(0, 1, "rendering the turntable")
        written = _save(path, sample, frames=frames, size=size, background=background)
        note = "" if Path(written) == Path(path) else " (no ffmpeg here: written as GIF)"
        return f"Saved a {frames}-frame turntable to {written}{note}"
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
