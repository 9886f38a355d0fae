"""The window's model work: loading the generators, generating samples, resampling one, cancelling.

:class:`Generation` submits jobs to the window's model worker (``window.runner``; bodies in
:mod:`splatgen.app.tasks`) and turns their results into gallery entries and undoable edits; the
controls show the progress the jobs report. Nothing here computes.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

from . import tasks
from .samples import ResampleCommand, SampleEntry
from .worker import Job


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def resample_summary(part: str, info: dict) -> str:
    """One plain sentence on what a resample did (``info``: the new sample's ``info``)."""
    if "input_view_psnr" in info:
        p = float(info["input_view_psnr"])
        kept = "unchanged" if p >= 35 else "almost unchanged" if p >= 28 else "somewhat changed"
        return f"Redrew {part}; the side the photo shows is {kept}."
    if "redrawn_splats" in info:
        return f"Redrew {part} ({int(info['redrawn_splats']):,} splats)."
    return f"Redrew {part}."


class Generation:
    """Generation and resampling for ``window`` (a :class:`~.main_window.MainWindow`).

    ``pending``: generate as soon as both the input and the model are ready (set by
    ``open_image(..., generate=True)`` or a Generate that came too early).
    """

    def __init__(self, window):
        self.window = window
        self.pending = False
        self._model_info: dict[str, tasks.ModelInfo] = {}
        self._run = 0
        self._run_started = 0.0
        self._run_count = 0

    def new_run(self) -> int:
        """A new run number for gallery entries (a generation, or a run reopened from the history)."""
        self._run += 1
        return self._run

    # ------------------------------------------------------------------ models
    def load_models(self) -> None:
        """List the installed generators in the controls and load the remembered (or first) one."""
        from splatgen.core.generator import available_models

        w = self.window
        keys = list(available_models())
        if not keys:
            w.controls.set_models([])
            w.controls.set_model_info(None)
            w.status("No generator model is installed (assets/models is empty): run scripts/install.sh "
                     "in a fresh checkout.", error=True)
            return
        current = w.settings.model if w.settings.model in keys else keys[0]
        w.controls.set_models(keys, current)
        self.select_model(current)

    def select_model(self, key: str) -> None:
        """Make ``key`` the model of the controls (loaded in the worker the first time)."""
        w = self.window
        if w.controls.left_values is not None:
            w.settings.set_generation(*w.controls.left_values)
            w.controls.left_values = None
        w.settings.model = key
        if key in self._model_info:
            self._model_ready(self._model_info[key])
            return
        w.controls.set_model_info(None)
        w.runner.submit(Job("model", tasks.load_model(w.models, key), f"load model {key}",
                            on_done=self._model_ready,
                            on_error=lambda exc: w.report(exc, f"Loading the model {key}")), replace=True)

    def _model_ready(self, info: tasks.ModelInfo) -> None:
        w = self.window
        self._model_info[info.key] = info
        if info.key != w.controls.model_key():
            return
        w.controls.set_model_info(info, w.settings.generation(info.key))
        import torch

        n = torch.get_num_threads()
        where = "CUDA" if info.device.startswith("cuda") else f"CPU, {_plural(n, 'thread')}"
        view = w.viewport.renderer_name.split("(")[0].strip()
        w.device_label.setText(f"{info.key} on {where} · view: {view or 'OpenGL'}")
        w.update_busy()
        if self.pending and w.prepared is not None:
            self.generate()

    # ------------------------------------------------------------------ generation
    def generate(self) -> None:
        """Generate samples of the current input with the controls' settings."""
        w = self.window
        if w.prepared is None:
            if w.io.is_running("prepare"):
                self.pending = True
                return
            w.status("Open an image first (drop one on the window, Ctrl+O, or click an example).", error=True)
            return
        info = w.controls.info
        if info is None:
            self.pending = True
            w.status("Waiting for the model to load…")
            return
        self.pending = False
        if w.runner.is_running("generate"):
            return
        elevation, fov = w.input_panel.camera_setting()
        settings = replace(w.controls.settings(), elevation=elevation, fov=fov)
        w.settings.set_generation(info.key, w.controls.values())
        self.new_run()
        run, record, prepared, photo = self._run, w.input_record, w.prepared, w.input_path
        n = settings.num_samples if info.stochastic else 1
        self._run_started = time.perf_counter()
        self._run_count = 0
        w.run_started.emit(run)
        w.status(f"Generating {n} sample{'s' if n > 1 else ''} of {record.name}…")
        w.controls.set_progress(0, max(1, int(settings.steps or 1)), "starting")

        def partial(p: tasks.Produced) -> None:
            entry = SampleEntry(p.sample, p.thumbnail, record, info.key, info.stochastic, run=run, run_id=p.run_id)
            w.store.insert(entry, w.store.group_end(entry))
            self._run_count += 1
            if self._run_count == 1:
                w.gallery.show_entry(entry)

        def done(produced) -> None:
            dt = time.perf_counter() - self._run_started
            w.status(f"Generated {_plural(len(produced), 'sample')} in {dt:.1f} s.")
            w.controls.set_message(f"Done: {_plural(len(produced), 'sample')} in {dt:.1f} s")
            w.generation_finished(run, produced)

        def cancelled() -> None:
            w.status(f"Cancelled; {_plural(self._run_count, 'finished sample')} kept.")
            w.controls.set_message(f"Cancelled ({self._run_count} kept)")
            w.generation_finished(run, None)

        def failed(exc) -> None:
            w.controls.set_message(f"Failed ({_plural(self._run_count, 'sample')} kept)")
            w.report(exc, "Generating")
            w.generation_finished(run, None, failed=exc)

        w.runner.submit(Job("generate", tasks.generate(w.models, info.key, record.image, settings,
                                                       w.autosave, record.name, photo, prepared),
                            f"generate {n} × {settings.steps} steps",
                            on_partial=partial, on_done=done, on_cancelled=cancelled,
                            on_progress=w.controls.set_progress, on_error=failed))
        w.update_busy()

    def cancel(self) -> None:
        """Esc: leave the brush, else stop generating / resampling / preparing."""
        w = self.window
        if w.acts["brush"].isChecked():
            w.acts["brush"].setChecked(False)
            return
        if w.runner.cancel("generate", "resample") | w.io.cancel("prepare"):
            w.status("Cancelling…")
        self.pending = False

    # ------------------------------------------------------------------ resampling
    def resample(self, entry: SampleEntry | None, brush=None) -> None:
        """Redraw part of ``entry`` with a new seed: the occluded part, or the region ``brush`` (the
        viewport's brush request) painted; the result replaces the entry as an undoable edit."""
        w = self.window
        if entry is None:
            return
        if not entry.stochastic:
            w.status(f"{entry.model_key} makes one fixed result per photo, so there is nothing to redraw: "
                     "choose the diffusion model to resample.", error=True)
            return
        seed = random.SystemRandom().randrange(0, 2**31 - 1)
        what = "Resample occluded" if brush is None else "Resample painted region"
        part = "the hidden side" if brush is None else "the painted region"
        w.status(f"Redrawing {part} of {entry.source.name} (seed {entry.sample.seed})…")
        w.controls.set_message(f"Redrawing {part}…")

        def done(p: tasks.Produced) -> None:
            if w.store.index_of(entry) < 0:     # removed meanwhile: keep it as a new entry
                w.store.insert(SampleEntry(p.sample, p.thumbnail, entry.source, entry.model_key, True, run=entry.run,
                                           run_id=entry.run_id))
            else:
                w._undo_note = None
                w.undo_stack.push(ResampleCommand(w.store, entry, p.sample, p.thumbnail, what))
            if brush is not None:
                w.viewport.clear_brush()
            w.status(f"{resample_summary(part, p.sample.info)} Undo with Ctrl+Z.{w._undo_note or ''}")
            w.controls.set_message(f"Done: redrew {part} (new seed {seed})")

        def cancelled() -> None:
            w.status(f"Stopped redrawing {part}; the sample is unchanged.")
            w.controls.set_message("Cancelled")

        def failed(exc) -> None:
            w.controls.set_message("Failed: the sample is unchanged")
            w.report(exc, what)

        w.runner.submit(Job("resample", tasks.resample(w.models, entry.model_key, entry.source.image,
                                                       entry.sample, seed, brush, w.autosave,
                                                       entry.source.name, entry.resampled + 1, entry.run_id),
                            what, on_done=done, on_progress=w.controls.set_progress,
                            on_cancelled=cancelled, on_error=failed))
        w.update_busy()

    def resample_occluded(self) -> None:
        self.resample(self.window.current_entry())

    def resample_painted(self) -> None:
        w = self.window
        req = w.viewport.brush_request()
        if req is None:
            w.status("Paint over the part to redraw first (Brush, then left-drag in the view).", error=True)
            return
        self.resample(w.current_entry(), brush=req)
