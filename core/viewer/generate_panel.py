"""The generation controls of ``splatgen view --generate``: a folder in viser's GUI panel.

Photo upload (and the prepared 128² input shown back), guidance, skip weight, steps, scheduler, strength,
seed, number of samples, *Generate* / *Cancel* with a progress bar, *Resample occluded* of the sample
shown, and a picker over every sample made so far. The widgets only call the handler methods
(:meth:`GeneratePanel.load_photo`, :meth:`generate`, :meth:`resample`, :meth:`pick_sample`,
:meth:`cancel`), which tests and other code may call directly.

Generation runs on one worker thread (one job at a time) that reports per-step progress and honours
*Cancel* within a step; viser's server thread and the frame renderer stay free, so the page keeps
orbiting while a sample is being drawn. Errors a user can cause (a photo with no object, bad
settings) end up as one line in the panel's status.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import SplatgenError
from ..gaussians import Gaussians
from ..images import to_uint8
from .page_safety import escape_markdown

#: Progress and status updates sent to the browser at most this often (seconds).
_UPDATE_INTERVAL = 0.1
#: Largest photo accepted from the upload button, bytes (viser's messages are capped at 50 MB).
MAX_UPLOAD_BYTES = 40 * 1024 * 1024


@dataclass
class _Entry:
    """One sample in the picker."""

    label: str
    sample: object  # generator.Sample


class GeneratePanel:
    """Generation controls bound to a viser server.

    Args:
        server: the ``viser.ViserServer`` whose GUI panel gets the controls.
        generator: a loaded :class:`~splatgen.core.generator.Generator`.
        show: called with the Gaussians to display (the sample picked).
        order: where the folder goes in the panel.
    """

    def __init__(self, server, generator, show: Callable[[Gaussians], None], *, order: float = -1.0):
        from ..generator import MAX_SAMPLES, MAX_STEPS
        from ..models.denoiser import SCHEDULERS

        self.server = server
        self.generator = generator
        self._show = show
        self.prepared = None               # PreparedImage of the current photo
        self.entries: list[_Entry] = []    # every sample made so far, in the picker's order
        self.current: int | None = None    # index into entries of the sample shown
        self._shown: _Entry | None = None
        self.status = "Upload a photo to start."
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._cancel = threading.Event()
        self._next_resample_seed = 1000
        self._last_push = 0.0
        self._closed = False

        d = generator.defaults
        stochastic = bool(getattr(generator, "stochastic", True))
        gui = server.gui
        with gui.add_folder("Generate", order=order):
            self.upload = gui.add_upload_button("Upload photo", mime_type="image/*", icon=None,
                                                hint="Any common image; the object is cut out and framed.")
            self.input_image = gui.add_image(np.full((128, 128, 3), 255, np.uint8), label="Prepared input",
                                             visible=False)
            self.guidance = gui.add_slider("Guidance", 0.0, 10.0, 0.1, float(min(max(d.guidance or 0.0, 0.0), 10.0)),
                                           disabled=not stochastic,
                                           hint="Classifier-free guidance weight (1 = none).")
            self.skip_weight = gui.add_slider("Skip weight", 0.0, 2.0, 0.05,
                                              float(min(max(d.skip_weight if d.skip_weight is not None else 1.0, 0.0), 2.0)),
                                              hint="Weight of the input photo's skip features.")
            self.steps = gui.add_slider("Steps", 1, min(200, MAX_STEPS), 1, int(min(max(d.steps or 50, 1), 200)),
                                        disabled=not stochastic, hint="Denoising steps.")
            self.scheduler = gui.add_dropdown("Scheduler", tuple(SCHEDULERS),
                                              initial_value=d.scheduler if d.scheduler in SCHEDULERS else SCHEDULERS[0],
                                              disabled=not stochastic)
            teacher = generator.starts_from_teacher
            self.strength = gui.add_slider("Strength", 0.05, 1.0, 0.05,
                                           float(min(max(d.strength if d.strength is not None else 1.0, 0.05), 1.0)),
                                           disabled=not (stochastic and teacher),
                                           hint="Share of the schedule to run: 1 = from pure noise; lower starts "
                                                "from the regressor's object.")
            self.seed = gui.add_number("Seed", 0, min=0, max=2**31 - 1, step=1,
                                       hint="Sample i uses seed + i.")
            self.num_samples = gui.add_slider("Samples", 1, min(16, MAX_SAMPLES), 1, 1, disabled=not stochastic)
            self.colour_match = gui.add_checkbox("Match the photo's colours", True,
                                                 hint="One colour correction per sample, fitted on its view from "
                                                      "the photo's camera")
            self.generate_button = gui.add_button("Generate", disabled=True)
            self.cancel_button = gui.add_button("Cancel", color="red", visible=False)
            self.progress = gui.add_progress_bar(0.0, visible=False, animated=True)
            self.status_md = gui.add_markdown(self.status)
            self.sample_picker = gui.add_dropdown("Sample", ("(none yet)",), disabled=True)
            self.resample_button = gui.add_button("Resample occluded", disabled=True,
                                                  hint="Redraw what the photo does not show, keeping what it does.")
        # what the widgets allow, kept here: a client can send other options and limits too
        self._schedulers = tuple(SCHEDULERS)
        self._limits = {name: (getattr(self, name).min, getattr(self, name).max, getattr(self, name).label)
                        for name in ("guidance", "skip_weight", "steps", "strength", "seed", "num_samples")}
        self._wire()

    # ------------------------------------------------------------------ widgets → handlers
    def _wire(self) -> None:
        @self.upload.on_upload
        def _(event) -> None:
            f = event.target.value
            self.handle_upload(f.name, f.content)

        @self.generate_button.on_click
        def _(_event) -> None:
            self._guarded(self.generate)

        @self.cancel_button.on_click
        def _(_event) -> None:
            self.cancel()

        @self.resample_button.on_click
        def _(_event) -> None:
            self._guarded(self.resample)

        @self.sample_picker.on_update
        def _(event) -> None:
            labels = [e.label for e in self.entries]   # ours: a client may send other options too
            value = self.sample_picker.value
            if value in labels and labels.index(value) != self.current:
                self._guarded(self.pick_sample, labels.index(value))

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except SplatgenError as exc:
            self._error(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown, never raised into viser
            traceback.print_exc()
            self._error(f"failed: {exc}")

    # ------------------------------------------------------------------ handlers
    @property
    def busy(self) -> bool:
        w = self._worker
        return w is not None and w.is_alive()

    def settings(self):
        """The :class:`~splatgen.core.generator.GenerationSettings` the widgets show."""
        from ..generator import GenerationSettings

        def number(name: str, whole: bool = False):
            """Widget ``name``'s value as a client sent it: checked to be a finite number within the
            widget's range as made here (viser checks nothing a client sends)."""
            lo, hi, label = self._limits[name]
            try:
                v = float(getattr(self, name).value)
            except (TypeError, ValueError):
                raise SplatgenError(f"{label}: not a number") from None
            if not (math.isfinite(v) and lo <= v <= hi):
                raise SplatgenError(f"{label}: {v:g} is out of range ({lo:g} to {hi:g})")
            if whole and v != int(v):
                raise SplatgenError(f"{label}: {v:g} is not a whole number")
            return int(v) if whole else v

        scheduler = str(self.scheduler.value)
        if scheduler not in self._schedulers:
            raise SplatgenError("Scheduler: not one of the choices")
        return GenerationSettings(guidance=number("guidance"), skip_weight=number("skip_weight"),
                                  steps=number("steps", True), scheduler=scheduler, seed=number("seed", True),
                                  num_samples=number("num_samples", True), strength=number("strength"),
                                  colour_match=bool(self.colour_match.value))

    def load_photo(self, source, name: str | None = None):
        """Prepare ``source`` (path, bytes, or an already prepared image) as the input photo and show
        it. Raises ``ImageError``."""
        from ..imageprep import PreparedImage, prepare_image

        prepared = source if isinstance(source, PreparedImage) else prepare_image(source, name=name)
        with self._lock:
            self.prepared = prepared
        rgb = to_uint8(prepared.image[:3].permute(1, 2, 0).cpu().numpy())
        self.input_image.image = rgb
        self.input_image.visible = True
        self.generate_button.disabled = self.busy
        self._set_status(f"Photo **{escape_markdown(prepared.name or name or 'upload')}** ready "
                         f"(mask: {escape_markdown(prepared.mask_source)}). Press *Generate*.")
        self.last_error = None
        return prepared

    def handle_upload(self, name: str, content: bytes) -> bool:
        """What the upload button does with a file: prepare it as the photo, or show why not.
        Returns whether the photo was taken."""
        name = name or "upload"
        try:
            if self.busy:
                raise SplatgenError("busy: wait for the running job or cancel it")
            if len(content) > MAX_UPLOAD_BYTES:
                raise SplatgenError(f"{name}: the file is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
            self.load_photo(bytes(content), name=name)
            return True
        except SplatgenError as exc:
            self._error(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown, never raised into viser
            self._error(f"{name}: cannot read the photo ({exc})")
        return False

    def generate(self, settings=None) -> threading.Thread:
        """Start generating from the current photo with ``settings`` (default: the widgets' values);
        the samples join the picker and the first is shown. Returns the worker thread."""
        with self._lock:
            if self.prepared is None:
                raise SplatgenError("no photo yet: upload one first")
            settings = self.settings() if settings is None else settings
            settings = self.generator.validate(settings) if hasattr(self.generator, "validate") \
                else self.generator.resolve(settings)
            image = self.prepared.image
            return self._start(lambda progress, cancel: self._do_generate(image, settings, progress, cancel),
                               f"Generating {settings.num_samples} sample{'s' * (settings.num_samples > 1)}")

    def resample(self, seed: int | None = None) -> threading.Thread:
        """Start redrawing the occluded part of the sample shown (a new seed unless given); the
        result joins the picker and is shown. Returns the worker thread."""
        with self._lock:
            if not getattr(self.generator, "stochastic", True):
                raise SplatgenError("this model makes one fixed result per photo: there is nothing to redraw")
            if self.current is None or self.prepared is None:
                raise SplatgenError("no sample to resample yet: generate one first")
            entry = self.entries[self.current]
            if seed is None:
                seed = self._next_resample_seed
                self._next_resample_seed += 1
            image = self.prepared.image
            return self._start(lambda progress, cancel: self._do_resample(image, entry, int(seed), progress, cancel),
                               f"Resampling the occluded part of {entry.label} (seed {seed})")

    def pick_sample(self, index: int) -> None:
        """Show sample ``index`` (0-based, in the picker's order)."""
        if not 0 <= index < len(self.entries):
            raise SplatgenError(f"no sample {index + 1}; there are {len(self.entries)}")
        entry = self.entries[index]
        self.current = index
        if self._shown is not entry:
            self._show(entry.sample.gaussians)
            self._shown = entry
        if self.sample_picker.value != entry.label:
            self.sample_picker.value = entry.label  # the widget's callback sees the same index: no loop
        self.resample_button.disabled = self.busy or not getattr(self.generator, "stochastic", True)

    def cancel(self) -> None:
        """Ask the running job to stop (within one denoising step)."""
        if self.busy:
            self._cancel.set()
            self._set_status("Cancelling…")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job; ``True`` when none is running any more."""
        w = self._worker
        if w is not None:
            w.join(timeout)
        return not self.busy

    def close(self, timeout: float = 30.0) -> None:
        """Cancel any job and wait for the worker thread to end."""
        self._closed = True
        self._cancel.set()
        self.wait(timeout)

    # ------------------------------------------------------------------ the worker
    def _start(self, job, what: str) -> threading.Thread:
        if self._closed:
            raise SplatgenError("the viewer is shutting down")
        if self.busy:
            raise SplatgenError("busy: wait for the running job or cancel it")
        self._cancel = threading.Event()
        cancel = self._cancel
        self.last_error = None
        self._set_busy(True)
        self._set_status(f"{what}…")
        self._last_push = 0.0

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done < total and now - self._last_push < _UPDATE_INTERVAL:
                return
            self._last_push = now
            self.progress.value = float(min(100.0, max(0.0, 100.0 * done / max(total, 1))))
            self._set_status(f"{what}… step {done}/{total}")

        def run() -> None:
            from ..generator import Cancelled

            t0 = time.perf_counter()
            try:
                job(progress, cancel)
            except Cancelled:
                self._set_status("Cancelled.")
            except SplatgenError as exc:
                self._error(str(exc))
            except Exception as exc:  # noqa: BLE001 - reported in the panel, never lost
                traceback.print_exc(file=sys.stderr)
                self._error(f"failed: {exc}")
            else:
                self._set_status(f"{what}: done in {time.perf_counter() - t0:.1f} s. "
                                 f"Showing **{escape_markdown(self.entries[self.current].label)}**.")
            finally:
                self._set_busy(False)

        self._worker = threading.Thread(target=run, name="splatgen-generate", daemon=True)
        self._worker.start()
        return self._worker

    def _do_generate(self, image, settings, progress, cancel) -> None:
        samples = self.generator.generate(image, settings, progress=progress, cancel=cancel)
        first = len(self.entries)
        for s in samples:
            self.entries.append(_Entry(f"Sample {len(self.entries) + 1} (seed {s.seed})", s))
        self._refresh_picker()
        self.pick_sample(first)

    def _do_resample(self, image, entry: _Entry, seed: int, progress, cancel) -> None:
        new = self.generator.resample(image, entry.sample, "occluded", seed, progress=progress, cancel=cancel)
        base = entry.label.split(" (")[0]
        self.entries.append(_Entry(f"Sample {len(self.entries) + 1} ({base} resampled, seed {seed})", new))
        self._refresh_picker()
        self.pick_sample(len(self.entries) - 1)

    # ------------------------------------------------------------------ widget state
    def _refresh_picker(self) -> None:
        self.sample_picker.options = tuple(e.label for e in self.entries)
        self.sample_picker.disabled = False

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.disabled = busy or self.prepared is None
        self.upload.disabled = busy
        self.cancel_button.visible = busy
        self.progress.visible = busy
        if busy:
            self.progress.value = 0.0
        self.resample_button.disabled = busy or self.current is None or not getattr(self.generator, "stochastic", True)

    def _set_status(self, text: str) -> None:
        """Show ``text`` (Markdown made here: any user string in it went through
        :func:`~.page_safety.escape_markdown`)."""
        self.status = text
        self.status_md.content = text

    def _error(self, message: str) -> None:
        """Show an error; its text may quote what a user sent (a file name), so all of it is escaped."""
        self.last_error = message
        self._set_status(f"**Error:** {escape_markdown(message)}")


__all__ = ["GeneratePanel", "MAX_UPLOAD_BYTES"]
