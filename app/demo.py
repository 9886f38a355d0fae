"""Demo mode (``splatgen-gui --demo``, *View → Demo mode*): the app at a conference booth, unattended.

Full screen with large controls (a demo bar: *Take photo*, *Generate*, *Forget this visitor*, and
smaller for the presenter *Photos from a phone*, *Keep visitors' runs*, *Leave demo*; F11 still
toggles full screen, Esc leaves the demo). The view
shows the tiles of all samples, turning slowly once nobody has touched anything for
:data:`TURN_AFTER_S`; after ``demo/attract_after_s`` idle seconds an attract loop cycles the shipped
examples (``assets/examples``), each shown ``demo/cycle_s`` seconds. Their samples are generated
ahead, once, and kept as runs in a cache folder (``<cache>/splatgen/demo-cache``), so a loop never
regenerates them. Any input leaves the loop and shows the last visitor's result again.

Visitors are forgotten: while the demo runs, every generation is kept as a run in a temporary
folder (the photo, captured frames too, lives there), removed when the demo ends unless the
presenter chose to keep the runs (then they move into the run history); the gallery holds only
the current visitor, and *Forget this visitor* deletes their run and photo at once. A generation
that fails ends like one that was cancelled; one that hangs (the model worker shows no sign of
life for ``demo/watchdog_s``) gets its worker restarted (:meth:`~.worker.Runner.restart`); either
way the attract loop resumes.

Time comes from ``clock`` and the loop advances in :meth:`DemoMode.tick` (a 40 ms timer calls it;
tests pass their own clock and call it themselves), so a day can be simulated in seconds.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QApplication, QLabel, QSizePolicy, QToolBar, QWidget

from splatgen.core.heap import release_heap

from . import tasks
from .input_panel import example_images
from .worker import Job

log = logging.getLogger("splatgen.app")

#: Samples per example in the attract loop (one for a deterministic model).
ATTRACT_SAMPLES = 4
#: Idle seconds before the tiles start turning, and how fast they turn (degrees of azimuth a second).
TURN_AFTER_S = 3.0
TURN_DEG_PER_S = 12.0
TICK_MS = 40
#: Events that count as somebody being there.
INPUT_EVENTS = {QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel, QEvent.Type.KeyPress,
                QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.TabletPress}
DEMO_STYLE = """
QWidget { font-size: 16pt; }
QToolBar#demoBar { spacing: 4px; padding: 4px; }
QToolBar#demoBar QToolButton { font-size: 20pt; padding: 8px 12px; min-height: 56px; }
QToolBar#demoBar QToolButton#demoSmall { font-size: 12pt; padding: 4px 8px; min-height: 0; }
QLabel#demoBanner { font-size: 20pt; padding: 0 16px; }
"""


def default_cache_dir() -> Path | None:
    """Where the attract loop's samples are kept between demos: ``<cache>/splatgen/demo-cache``."""
    from PyQt6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericCacheLocation)
    return Path(base) / "splatgen" / "demo-cache" if base else None


class DemoMode(QObject):
    """Demo mode of ``window`` (module docstring). ``clock``: seconds (default ``time.monotonic``);
    ``temp_parent``: where the demo's temporary folder is made (default: the system's);
    ``cache_dir``: the attract loop's cache (``""``: :func:`default_cache_dir`, None: none, the
    examples are generated each demo); ``auto_tick``: run :meth:`tick` on a timer."""

    def __init__(self, window, *, clock=None, temp_parent=None, cache_dir: str | Path | None = "",
                 auto_tick: bool = True):
        super().__init__(window)
        self.window = window
        self.clock = clock or time.monotonic
        self.temp_parent = temp_parent
        self.cache_dir = default_cache_dir() if cache_dir == "" else (Path(cache_dir) if cache_dir else None)
        self.auto_tick = auto_tick
        self.active = False
        self.temp: Path | None = None
        self.photos: Path | None = None               # visitors' photos (captured frames) go here
        self.attract = False
        self.attract_cycles = 0
        self.attract_stem: str | None = None
        self.cached: dict[str, list] = {}             # example stem → [(label, sample)]
        self.worker_restarts = 0
        self._examples = example_images()
        self._requested: set[str] = set()
        self._failures: dict[str, int] = {}
        self._scanned = False
        self._forgotten: set[str] = set()
        self._forget_after_run = False
        self._seen_job = None
        self._last_input = self._last_tick = self._attract_since = self._alive = 0.0
        self._saved: dict = {}
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(lambda: self.tick())

    @property
    def settings(self):
        return self.window.settings

    # ================================================================== start and stop
    def start(self) -> None:
        w = self.window
        self.temp = Path(tempfile.mkdtemp(prefix="splatgen-demo-", dir=self.temp_parent))
        self.photos = self.temp / "photos"
        self.photos.mkdir()
        self._saved = {"autosave": w.autosave, "heatmap": w.tiles.heatmap, "style": w.styleSheet(),
                       "cancel_keys": w.acts["cancel"].shortcuts(), "tiled": w.acts["tiled"].isChecked(),
                       "history": w.history.dock.isVisible(), "full": w.isFullScreen()}
        w.autosave = tasks.Autosave(self.temp / "runs", keep_runs=0)
        self._clear_gallery()
        w.acts["cancel"].setShortcuts([])
        self.leave = QAction("Leave demo", w, objectName="demoLeave")
        self.leave.setShortcut(QKeySequence("Esc"))
        self.leave.triggered.connect(lambda: w.stop_demo())
        w.addAction(self.leave)
        self.forget_act = QAction("Forget this visitor", w, objectName="demoForget")
        self.forget_act.setToolTip("Delete this visitor's photo and samples now")
        self.forget_act.triggered.connect(self.forget_visitor)
        self.keep_act = QAction("Keep visitors' runs", w, objectName="demoKeep", checkable=True)
        self.keep_act.setChecked(self.settings.demo_keep_visitors)
        self.keep_act.setToolTip("When the demo ends, move the visitors' runs into the run history "
                                 "instead of deleting them")
        self.keep_act.toggled.connect(lambda on: setattr(self.settings, "demo_keep_visitors", on))
        self.bar = self._build_bar()
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        w.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.banner_bar)
        w.view_toolbar.hide()
        w.setStyleSheet(DEMO_STYLE)
        w.splitter.widget(0).hide()                   # the presenter's panel: back when the demo ends
        w.gallery.hide()                              # the tiles show every sample
        w.menuBar().hide()
        w.history.dock.hide()
        w.tiles.set_heatmap(False)
        w.acts["tiled"].setChecked(True)
        w.showFullScreen()
        QApplication.instance().installEventFilter(self)
        w.run_started.connect(self._visitor_started)
        w.run_finished.connect(self._visitor_ended)
        w.runner.alive.connect(self._worker_alive)
        w.statusBar().messageChanged.connect(self._banner_text)
        self.active = True
        now = self.clock()
        self._last_input = self._last_tick = self._alive = now
        self.banner.setText("Show us an object: take a photo, and watch it become 3D.")
        if self.auto_tick:
            self._timer.start()
        log.info("demo mode on (temporary folder %s)", self.temp)

    def _build_bar(self) -> QToolBar:
        w = self.window
        bar = QToolBar("Demo", w, objectName="demoBar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        big = [w.acts[n] for n in ("take_photo", "generate") if n in w.acts] + [self.forget_act]
        for a in big:
            bar.addAction(a)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        for a in [w.acts[n] for n in ("phone",) if n in w.acts] + [self.keep_act, self.leave]:
            bar.addAction(a)                          # the presenter's: smaller
            bar.widgetForAction(a).setObjectName("demoSmall")
        self.banner = QLabel("", objectName="demoBanner")
        self.banner.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner_bar = QToolBar("Demo message", w, objectName="demoBannerBar")
        self.banner_bar.setMovable(False)
        self.banner_bar.addWidget(self.banner)
        return bar

    def stop(self, keep: bool | None = None) -> int:
        """End the demo: the visitors' runs move into the run history if ``keep`` (default: the
        setting), and the temporary folder — every visitor photo in it — is removed. Returns how
        many runs were kept."""
        if not self.active:
            return 0
        w = self.window
        self.active = False
        self._timer.stop()
        QApplication.instance().removeEventFilter(self)
        for signal, slot in ((w.run_started, self._visitor_started), (w.run_finished, self._visitor_ended),
                             (w.runner.alive, self._worker_alive),
                             (w.statusBar().messageChanged, self._banner_text)):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        keep = self.settings.demo_keep_visitors if keep is None else keep
        w.runner.cancel("generate", "resample", "demo-cache")
        w.io.cancel("prepare", "demo-load")
        w.runner.wait_idle(10)
        w.io.wait_idle(10)
        demo_runs, saved = w.autosave.runs, self._saved["autosave"]
        w.autosave = saved
        kept = 0
        if keep and demo_runs is not None and saved.runs is not None:
            for info in demo_runs.list():
                try:
                    shutil.move(str(info.folder), str(saved.runs.root / info.id))
                    kept += 1
                except OSError as exc:
                    log.warning("could not keep run %s: %s", info.id, exc)
            saved.runs.list()                         # index them
        self._clear_gallery()
        self._clear_input()
        w.phone.close()                               # photos queued from phones were in the demo's folder
        shutil.rmtree(self.temp, ignore_errors=True)
        self.cached.clear()
        w.removeAction(self.leave)
        for bar in (self.bar, self.banner_bar):
            w.removeToolBar(bar)
            bar.deleteLater()
        w.view_toolbar.show()
        w.acts["cancel"].setShortcuts(self._saved["cancel_keys"])
        w.setStyleSheet(self._saved["style"])
        w.splitter.widget(0).show()
        w.gallery.show()
        w.menuBar().show()
        w.history.dock.setVisible(self._saved["history"])
        w.tiles.set_heatmap(self._saved["heatmap"])
        w.acts["tiled"].setChecked(self._saved["tiled"])
        if not self._saved["full"]:
            w.showNormal()
        w._update_tiles()
        release_heap()
        where = f"; {kept} visitor run{'s' if kept != 1 else ''} kept in the history" if keep else \
            "; the visitors' photos and samples are deleted"
        w.status(f"Demo mode ended{where}.")
        log.info("demo mode off (%d attract cycles, %d worker restarts)", self.attract_cycles, self.worker_restarts)
        return kept

    # ================================================================== time
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if self.active and event.type() in INPUT_EVENTS:
            self.activity()
        return False

    def activity(self) -> None:
        """Somebody is there: the attract loop ends, the last visitor's result is shown again."""
        self._last_input = self.clock()
        if self.attract:
            self.stop_attract()

    def tick(self, now: float | None = None) -> None:
        """Advance the demo to ``now`` (default: the clock): turn the tiles, run the attract loop,
        watch the model worker, make the examples' samples when they are missing."""
        if not self.active:
            return
        w = self.window
        now = self.clock() if now is None else now
        dt = max(0.0, min(now - self._last_tick, 0.5))
        self._last_tick = now
        current = w.runner.current
        if current is not self._seen_job:              # a job started since the last look: alive
            self._seen_job, self._alive = current, now
        if current is not None and now - self._alive > self.settings.demo_watchdog_s:
            self.restart_worker(f"no sign of life from '{current.description or current.kind}' for "
                                f"{now - self._alive:.0f} s")
            return
        self._request_cache()
        idle = now - self._last_input
        if idle >= TURN_AFTER_S and dt > 0:
            w.camera.orbit_degrees(TURN_DEG_PER_S * dt, 0.0)
            w.current_view().camera_moved()
        if w.runner.is_running("generate", "resample") or w.io.is_running("prepare"):
            return
        if idle >= self.settings.demo_attract_after_s:
            if not self.attract:
                self.start_attract(now)
            elif now - self._attract_since >= self.settings.demo_cycle_s:
                self.next_attract(now)

    def _worker_alive(self, job) -> None:
        self._alive = self.clock()

    def restart_worker(self, reason: str) -> None:
        """Give up on the model worker's job: a fresh worker thread (and model cache) takes over."""
        w = self.window
        job = w.runner.current
        w.models = tasks.ModelCache(w.models.device)
        w.runner.restart(reason)
        self.worker_restarts += 1
        self._alive = self.clock()
        self._seen_job = w.runner.current
        if job is not None and job.kind == "model" and w.controls.info is None:
            w.generation.select_model(w.controls.model_key())
        w.status("The model stopped answering and was restarted.")

    # ================================================================== the attract loop
    def ready_examples(self) -> list[str]:
        return [p.stem for p in self._examples if p.stem in self.cached]

    def start_attract(self, now: float | None = None) -> bool:
        """Begin cycling the examples whose samples are ready (False if none is yet)."""
        if not self.ready_examples():
            return False
        self.attract = True
        self.attract_stem = None
        self.next_attract(self.clock() if now is None else now)
        return True

    def next_attract(self, now: float) -> None:
        ready = self.ready_examples()
        if not ready:
            self.stop_attract()
            return
        i = (ready.index(self.attract_stem) + 1) % len(ready) if self.attract_stem in ready else 0
        self.attract_stem = ready[i]
        w = self.window
        w.tiles.set_entries(self.cached[self.attract_stem])
        w.view_stack.setCurrentWidget(w.tiles)
        self._attract_since = now
        self.attract_cycles += 1
        self.banner.setText(f"This was a photo of a {self.attract_stem.replace('_', ' ')}. "
                            "Show us yours: press Take photo!")

    def stop_attract(self) -> None:
        self.attract = False
        self.attract_stem = None
        w = self.window
        w._update_tiles()
        w.view_stack.setCurrentWidget(w.tiles)
        self.banner.setText("Your object, in 3D." if len(w.store) else
                            "Show us an object: take a photo, and watch it become 3D.")

    def _request_cache(self) -> None:
        """Find the examples' samples in the cache, then generate those missing (one job each)."""
        w = self.window
        info = w.controls.info
        if info is None or w.runner.is_running("generate", "resample"):
            return
        if not self._scanned:
            self._scanned = True
            if self.cache_dir is not None:
                w.io.submit(Job("demo-load", _find_cached(self.cache_dir, info.key, self._examples),
                                "demo: cached examples", on_done=self._cached_found,
                                on_error=lambda exc: log.warning("demo cache unreadable: %s", exc)))
            return
        if w.io.is_running("demo-load"):
            return
        n = ATTRACT_SAMPLES if info.stochastic else 1
        from splatgen.core.generator import GenerationSettings

        for path in self._examples:
            stem = path.stem
            if stem in self.cached or stem in self._requested or self._failures.get(stem, 0) >= 2:
                continue
            self._requested.add(stem)
            autosave = tasks.Autosave(self.cache_dir, keep_runs=3 * max(1, len(self._examples))) \
                if self.cache_dir else None
            w.runner.submit(Job("demo-cache", tasks.generate_example(
                w.models, info.key, str(path), GenerationSettings(num_samples=n, seed=0), autosave,
                w.input_panel.default_ratio), f"demo: example {stem}",
                on_done=lambda produced, s=stem: self._cached_made(s, produced),
                on_error=lambda exc, s=stem: self._cache_failed(s, exc),
                on_cancelled=lambda s=stem: self._requested.discard(s)))

    def _cached_found(self, found: dict) -> None:
        for stem, samples in found.items():
            self.cached[stem] = [(f"{stem.replace('_', ' ')} · seed {s.seed}", s) for s in samples]

    def _cached_made(self, stem: str, produced) -> None:
        self._requested.discard(stem)
        if self.active and produced:
            self.cached[stem] = [(f"{stem.replace('_', ' ')} · seed {p.sample.seed}", p.sample) for p in produced]

    def _cache_failed(self, stem: str, exc) -> None:
        self._requested.discard(stem)
        self._failures[stem] = self._failures.get(stem, 0) + 1
        log.warning("demo: could not make the example %s: %s", stem, exc)

    # ================================================================== visitors
    def _visitor_started(self, run: int) -> None:
        """A visitor's generation: the previous visitor leaves the gallery; the cache waits."""
        w = self.window
        self.attract = False
        old = [e for e in w.store.entries if e.run != run]
        for e in old:
            w.store.remove(e)
        w.undo_stack.clear()
        w.runner.cancel("demo-cache")
        self._last_input = self.clock()
        self.banner.setText("Making your object…")

    def _visitor_ended(self, run: int, ok: bool) -> None:
        runs = self.window.autosave.runs
        for run_id in list(self._forgotten):          # a forgotten run that was still being written
            if runs is not None:
                runs.delete(run_id)
        if self._forget_after_run:
            self._forget_after_run = False
            self.forget_visitor()
            return
        if ok:
            self._last_input = self.clock()
            self.stop_attract()
        else:
            self.start_attract()                      # failed or stopped: back to the loop

    def forget_visitor(self) -> None:
        """Delete the current visitor's run(s) and photo now, and clear them from the window."""
        w = self.window
        if w.runner.is_running("generate", "resample"):
            w.runner.cancel("generate", "resample")
            self._forget_after_run = True
        ids = {e.run_id for e in w.store.entries if e.run_id}
        self._forgotten |= ids
        photo = w.input_path
        self._clear_gallery()
        runs = w.autosave.runs
        for run_id in ids:
            if runs is not None:
                runs.delete(run_id)
        if photo and self.photos is not None and Path(photo).parent == self.photos:
            Path(photo).unlink(missing_ok=True)
        self._clear_input()
        w.status("Forgot this visitor: their photo and samples are deleted.")
        self.start_attract()

    def _clear_gallery(self) -> None:
        w = self.window
        for e in list(w.store.entries):
            w.store.remove(e)
        w.undo_stack.clear()
        release_heap()

    def _clear_input(self) -> None:
        w = self.window
        w.prepared = w.input_path = w.input_record = None
        w.input_panel.clear()
        w.viewport.set_sample(None)

    def _banner_text(self, text: str) -> None:
        if text and not self.attract:
            self.banner.setText(text)


def _find_cached(cache_dir: Path, model_key: str, examples: list[Path]):
    """Job body: the newest finished cache run of each example with ``model_key`` whose photo is the
    example's bytes → ``{stem: [Sample]}``."""
    def run(ctx):
        from splatgen.core.runs import Runs

        runs = Runs(cache_dir)
        wanted = {p.stem: p.read_bytes() for p in examples}
        found: dict[str, list] = {}
        for info in runs.list():
            if info.name not in wanted or info.name in found or info.generator != model_key or info.status != "done":
                continue
            r = runs.open(info.id)
            photo = r.file(r.meta.get("photo"))
            if photo is None or photo.read_bytes() != wanted[info.name]:
                continue
            found[info.name] = [r.load_sample(rec) for rec in r.samples()]
        return found
    return run
