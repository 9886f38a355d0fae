"""The main window: lays out the input panel, the controls, the views and the gallery, and wires them.

Layout: input and generation controls on the left; the view (single sample or tiles) with its
toolbar in the middle; the gallery of samples below it; messages in the status bar. The window
composes three pieces: its actions, menus and toolbar (:mod:`.actions`), model work — loading,
generating, resampling (:mod:`.generation`) — and exports (:mod:`.exports`); it keeps the input
(opening and preparing an image) and the views. Everything slow is a job for a worker thread
(:mod:`splatgen.app.worker`, bodies in :mod:`splatgen.app.tasks`); the window only reacts to the
results. Errors become a message (status bar and a non-blocking dialog) with what to do; samples that
were finished are kept whatever fails later.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QColor, QDesktopServices
from PyQt6.QtWidgets import (QColorDialog, QFileDialog, QLabel, QMainWindow, QScrollArea, QSplitter, QStackedWidget,
                             QToolBar, QVBoxLayout, QWidget)

from splatgen.core.heap import release_heap
from splatgen.core.imageprep import DEFAULT_FOREGROUND_RATIO

from . import tasks
from .actions import VIEW_MODES, WindowActions
from .controls import GenerationControls
from .camera import Captures
from .cleanup import Cleanup
from .phone_upload import PhoneUploads
from .errors import describe, show_error
from .exports import Exports
from .gallery import Gallery
from .generated_views import GeneratedViews
from .generation import Generation
from .history import History
from .input_panel import IMAGE_SUFFIXES, InputPanel
from .orbit_camera import OrbitCamera
from .samples import InputRecord, RemoveCommand, SampleEntry, SampleStore
from .settings import Settings
from .tile_order import TileOrder
from .tiles import MAX_TILES, TiledView
from .undo_history import UndoHistory
from .viewport import VALUE_MODES, Viewport
from .worker import Job, Runner

log = logging.getLogger("splatgen.app")

APP_NAME = "splatgen"


def default_runs_dir() -> Path | None:
    """The user's runs folder: ``<data folder>/splatgen/runs`` (None if the platform has none)."""
    from PyQt6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base) / "splatgen" / "runs" if base else None


def _hex(rgb) -> str:
    return QColor.fromRgbF(*rgb).name()


def _rgb(name: str) -> tuple[float, float, float]:
    c = QColor(name)
    if not c.isValid():
        c = QColor("#ffffff")
    return c.redF(), c.greenF(), c.blueF()


class MainWindow(QMainWindow):
    """The splatgen desktop app's window. ``settings``: where choices are remembered;
    ``backend``: viewport renderer (``"auto"``, ``"gl"``, ``"gsplat"``); ``device``: for the models;
    ``autosave_dir``: the runs folder, where every generation is kept as a run, each sample saved
    as it arrives (``""``: the user's data folder, ``~/.local/share/splatgen/runs`` on Linux;
    ``None``: nowhere).

    Pieces: ``generation`` (:class:`~.generation.Generation`), ``exports``
    (:class:`~.exports.Exports`), ``history`` (:class:`~.history.History`), ``captures``
    (:class:`~.camera.Captures`: *Take photo*, ``camera_source``), ``phone``
    (:class:`~.phone_upload.PhoneUploads`), ``cleanup`` (:class:`~.cleanup.Cleanup`: *Clean up…*), ``tile_order``
    (:class:`~.tile_order.TileOrder`: *Order by disagreement*), ``action_set``
    (:class:`~.actions.WindowActions`; ``acts`` maps names to its ``QAction`` objects).
    Signals ``run_started(int run)`` and ``run_finished(int run, bool ok)``: a generation started /
    ended (ok: it finished; else it was cancelled or failed). ``demo``: the
    :class:`~.demo.DemoMode` while demo mode is on, else None.
    """

    run_started = pyqtSignal(int)
    run_finished = pyqtSignal(int, bool)

    def __init__(self, settings: Settings | None = None, *, backend: str = "auto", device: str = "auto",
                 autosave_dir: str | Path | None = ""):
        super().__init__()
        self.settings = settings or Settings()
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1280, 820)
        self.runner = Runner(self, name="splatgen-models")   # model work: load, generate, resample
        self.io = Runner(self, name="splatgen-io")            # light work: prepare images, export, viewer
        self.models = tasks.ModelCache(device)
        if autosave_dir == "":
            autosave_dir = default_runs_dir()
        self.autosave = tasks.Autosave(autosave_dir, self.settings.keep_runs)
        self.store = SampleStore(self)
        self.undo_stack = UndoHistory(self.store, int(self.settings.undo_limit_mb * 1024 * 1024), self)
        self.undo_stack.dropped.connect(self._undo_dropped)
        self.camera = OrbitCamera()
        self.prepared = None                     # PreparedImage of the current input
        self.input_path: str | None = None
        self.input_record: InputRecord | None = None
        self.messages: list[str] = []            # status messages shown (newest last)
        self.errors: list = []                   # UserMessages shown
        self._pending_path: str | None = None
        self._undo_note: str | None = None
        self._shown_photo: str | None = None     # the photo of the sample in the viewport
        self._prep_timer = QTimer(self, singleShot=True, interval=300)
        self._prep_timer.timeout.connect(self._reprepare)
        self.demo = None
        self.tile_order = TileOrder(self)
        self.camera_source: str | int | None = None   # --camera-source: a device index or a video file

        self._build_widgets(backend)
        self.generation = Generation(self)
        self.exports = Exports(self)
        self.history = History(self)
        self.captures = Captures(self)
        self.phone = PhoneUploads(self)
        self.cleanup = Cleanup(self)
        self.action_set = WindowActions(self)
        self.acts = self.action_set.acts
        self.action_set.build_menus()
        self.recent_menu = self.action_set.recent_menu
        self.mode_box = self.action_set.build_toolbar(self.view_toolbar)
        for child in self.findChildren(QWidget):   # a file dropped anywhere opens it (no text fields take it)
            child.setAcceptDrops(False)
        self._connect()
        self._restore()
        self.generation.load_models()
        self.action_set.update_enabled()

    # ================================================================== construction
    def _build_widgets(self, backend: str) -> None:
        self.input_panel = InputPanel(DEFAULT_FOREGROUND_RATIO)
        self.controls = GenerationControls()
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(4, 4, 4, 4)
        lv.addWidget(self.input_panel, 1)
        lv.addWidget(self.controls, 0)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.viewport = Viewport(self.camera, backend=backend)
        self.viewport.value_colours = self._value_colours
        self.tiles = TiledView(self.camera, backend=backend)
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.viewport)
        self.view_stack.addWidget(self.tiles)
        self.gallery = Gallery(self.store)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.setSpacing(2)
        self.view_toolbar = QToolBar("View")
        rv.addWidget(self.view_toolbar)
        rv.addWidget(self.view_stack, 1)
        self.generated_views = GeneratedViews()   # a multi-view sample's generated views (View ▸ Generated views)
        self.generated_views.hide()
        rv.addWidget(self.generated_views)
        rv.addWidget(self.gallery)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 950])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self.setCentralWidget(splitter)

        self.device_label = QLabel("")
        self.statusBar().addPermanentWidget(self.device_label)

    def _connect(self) -> None:
        ip, c, gen, ex = self.input_panel, self.controls, self.generation, self.exports
        ip.open_requested.connect(lambda: self.open_dialog())
        ip.image_chosen.connect(lambda p: self.open_image(p))
        ip.preparation_changed.connect(self._prep_timer.start)
        c.generate_requested.connect(lambda: gen.generate())
        c.cancel_requested.connect(lambda: gen.cancel())
        c.model_changed.connect(gen.select_model)
        self.gallery.current_changed.connect(self._show_entry)
        self.gallery.selection_changed.connect(lambda _: self._update_tiles())
        self.gallery.remove_requested.connect(self.remove_samples)
        self.gallery.export_requested.connect(lambda e: ex.export_sample(entry=e))
        self.store.inserted.connect(lambda *_: (self._update_tiles(), self.action_set.update_enabled()))
        self.store.removed.connect(lambda *_: (self._update_tiles(), self.action_set.update_enabled()))
        self.store.changed.connect(lambda *_: self._update_tiles())
        for runner in (self.runner, self.io):
            runner.job_started.connect(lambda _: self.update_busy())
            runner.job_ended.connect(lambda _: self.update_busy())
        self.viewport.brush_changed.connect(lambda _: self.action_set.update_enabled())
        self.viewport.brush_exit_requested.connect(lambda: self.acts["brush"].setChecked(False))
        self.viewport.brush_apply_requested.connect(lambda: gen.resample_painted())
        self.generated_views.view_chosen.connect(self._view_chosen)
        for view in (self.viewport, self.tiles):
            view.gl_failed.connect(lambda msg: self.status(msg, error=True))

    def _restore(self) -> None:
        s = self.settings
        geometry, state = s.window()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if s.foreground_ratio:
            self.input_panel.set_ratio(s.foreground_ratio)
        self.input_panel.skip_bg.blockSignals(True)
        self.input_panel.skip_bg.setChecked(not s.remove_background)
        self.input_panel.skip_bg.blockSignals(False)
        bg = _rgb(s.background)
        self.viewport.set_background(bg)
        self.tiles.set_background(bg)
        self.generated_views.set_background(bg)
        self.acts["views"].setChecked(s.generated_views)
        self.set_mode(s.mode)
        self.acts["heatmap"].setChecked(s.heatmap)
        self.tiles.set_heatmap(s.heatmap)
        self.acts["order"].setChecked(s.order_tiles)

    # ================================================================== helpers
    def status(self, text: str, *, error: bool = False, timeout_ms: int = 0) -> None:
        self.messages.append(text)
        if len(self.messages) > 2000:            # a day-long session keeps the newest only
            del self.messages[:1000]
        log.info("status: %s", text)
        self.statusBar().showMessage(text, timeout_ms)
        if error:
            self.statusBar().setStyleSheet("QStatusBar { color: #b00020; }")
        else:
            self.statusBar().setStyleSheet("")

    def report(self, exc: BaseException, what: str) -> None:
        """An error of ``what`` (e.g. "Generating"): status bar + non-blocking dialog."""
        msg = describe(exc, what)
        self.errors.append(msg)
        del self.errors[:-200]
        self.status(f"{msg.title}: {msg.one_line()}", error=True)
        if self.demo is None:                    # an unattended demo shows no dialog nobody would close
            show_error(msg, self)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Process events until both workers are idle (scripts, tests)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.runner.wait_idle(max(0.0, end - time.monotonic())) and \
                    self.io.wait_idle(max(0.0, end - time.monotonic())) and not (self.runner.busy or self.io.busy):
                return True
        return False

    def current_view(self):
        return self.view_stack.currentWidget()

    def current_entry(self) -> SampleEntry | None:
        return self.gallery.current_entry()

    def generation_finished(self, run: int, produced, failed: BaseException | None = None) -> None:
        """A generation run ended (``produced``: its samples when it finished; None when cancelled or
        failed): the history lists it."""
        if self.history.dock.isVisible():
            self.history.refresh()
        self.run_finished.emit(run, produced is not None)

    def update_busy(self) -> None:
        """The controls and actions follow what the workers run."""
        self.controls.set_busy(self.runner.is_running("generate", "resample"))
        self.action_set.update_busy()

    # ================================================================== the pieces' commands (menus, scripts, tests)
    def generate(self) -> None:
        """Generate samples of the current input with the controls' settings."""
        self.generation.generate()

    def cancel(self) -> None:
        self.generation.cancel()

    def resample_occluded(self) -> None:
        self.generation.resample_occluded()

    def resample_painted(self) -> None:
        self.generation.resample_painted()

    def export_sample(self, path: str | None = None, *, entry: SampleEntry | None = None, suffix: str = ".ply") -> None:
        self.exports.export_sample(path, entry=entry, suffix=suffix)

    def export_turntable(self, path: str | None = None, frames: int = 90, size: int = 512) -> None:
        self.exports.export_turntable(path, frames, size)

    def export_contact_sheet(self, path: str | None = None) -> None:
        self.exports.export_contact_sheet(path)

    def screenshot(self):
        """The current view as ``(H, W, 3)`` uint8, without the overlay."""
        return self.exports.screenshot()

    def save_screenshot(self, path: str | None = None) -> None:
        self.exports.save_screenshot(path)

    def show_in_browser(self) -> None:
        self.exports.show_in_browser()

    @property
    def browser(self):
        """The running browser viewer, if "Show in browser" started one."""
        return self.exports.browser

    @browser.setter
    def browser(self, handle) -> None:
        self.exports.browser = handle

    def remove_samples(self, entries=None) -> None:
        entries = entries if entries is not None else (self.gallery.selected_entries() or
                                                       [e for e in [self.current_entry()] if e])
        if entries:
            n = len(entries)
            cmd = RemoveCommand(self.store, list(entries))
            self._undo_note = None
            self.undo_stack.push(cmd)
            what = f"Removed {n} sample{'s' if n != 1 else ''}"
            release_heap()                   # what the removal (or a drop) freed goes back to the system
            if self.undo_stack.holds(cmd):
                self.status(f"{what} (Ctrl+Z brings them back).{self._undo_note or ''}")
            else:
                self.status(f"{what}; too large to undo within the undo memory bound "
                            f"({self.undo_stack.limit_bytes / 2**20:.0f} MB), so their memory is freed.")

    def _undo_dropped(self, n: int, freed: int) -> None:
        """The undo history dropped its ``n`` oldest edits to stay within its memory bound."""
        note = (f" The {n} oldest undo step{'s' if n != 1 else ''} were dropped to stay within "
                f"{self.undo_stack.limit_bytes / 2**20:.0f} MB ({freed / 2**20:.1f} MB freed).")
        self._undo_note = note
        self.status(note.strip(), timeout_ms=10000)

    # ================================================================== input
    def open_dialog(self) -> None:
        from splatgen.core.io import SPLAT_EXTENSIONS

        images = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        splats = " ".join(f"*{s}" for s in SPLAT_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(self, "Open an image or a splat file", self.settings.folder("open"),
                                              f"Images and splat files ({images} {splats});;Images ({images});;"
                                              f"Splat files ({splats});;All files (*)")
        if path:
            self.settings.set_folder("open", path)
            self.open_path(path)

    def open_path(self, path: str) -> None:
        """Open ``path``: a splat file (by its suffix) is shown as a sample, anything else is a photo."""
        from splatgen.core.io import SPLAT_EXTENSIONS

        lower = Path(path).name.lower()
        if any(lower.endswith(suffix) and len(lower) > len(suffix) for suffix in SPLAT_EXTENSIONS):
            self.open_splats(path)
        else:
            self.open_image(path)

    def open_splats(self, path: str) -> None:
        """Show a splat file (.ply, .compressed.ply, .spz, .glb, .splat) in the gallery and viewport, to
        orbit, compare in the tiles and export in another format; it has no photo, so nothing to redraw."""
        self.status(f"Opening {Path(path).name}…")
        self.io.submit(Job("open splats", tasks.load_splat_file(path), f"open {path}",
                           on_done=lambda got: self._splats_opened(path, *got),
                           on_error=lambda exc: self.report(exc, "Opening the splat file")))

    def _splats_opened(self, path: str, sample, thumb) -> None:
        entry = SampleEntry(sample, thumb, InputRecord(None, Path(path).name, path), "a splat file", stochastic=False,
                            run=self.generation.new_run())
        self.store.insert(entry)
        self.gallery.show_entry(entry)
        self.status(f"Opened {Path(path).name}: {sample.gaussians.num_gaussians:,} splats.")

    def open_image(self, path: str, *, generate: bool = False) -> None:
        """Prepare ``path`` as the input (in the worker); ``generate``: start generating when ready."""
        p = Path(path)
        if not p.exists():
            self.report(FileNotFoundError(2, "no such file", str(p)), "Opening the image")
            return
        if p.is_dir():
            self.report(IsADirectoryError(21, "is a folder, not an image", str(p)), "Opening the image")
            return
        self.generation.pending = generate
        self._prepare(str(p))

    def open_captured(self, rgb, name: str = "camera", *, generate: bool = False) -> Path:
        """Open a picture held in memory (a camera frame) as the input (:meth:`.camera.Captures.open`)."""
        return self.captures.open(rgb, name, generate=generate)

    def take_photo(self):
        """*Take photo*: the camera's live preview; the photo taken becomes the input."""
        return self.captures.take_photo()

    def _prepare(self, path: str) -> None:
        ratio, remove_bg = self.input_panel.foreground_ratio(), self.input_panel.remove_background()
        self._pending_path = path
        self.status(f"Preparing {Path(path).name}…")
        self.io.submit(Job("prepare", tasks.prepare(path, ratio, remove_bg), f"prepare {path}",
                           on_done=lambda prepared: self._prepared(path, prepared),
                           on_error=lambda exc: self._prepare_failed(path, exc)), replace=True)

    def _reprepare(self) -> None:
        self.settings.foreground_ratio = self.input_panel.foreground_ratio()
        self.settings.remove_background = self.input_panel.remove_background()
        if self.input_path:
            self._prepare(self.input_path)

    def _prepared(self, path: str, prepared) -> None:
        first = path != self.input_path
        self.prepared, self.input_path = prepared, path
        self.input_record = InputRecord(prepared.image, Path(path).stem, path)
        self.input_panel.show_prepared(prepared, path)
        self.setWindowTitle(f"{Path(path).name} — {APP_NAME}")
        if first and self.demo is None:         # a visitor's photo is never remembered
            self.settings.add_recent(path)
            self.action_set.fill_recent()
            self.viewport.reset_camera()   # a new photo: back to the input view
            self.tiles.camera_moved(settle=False)
        self.status(f"Ready: {Path(path).name}. Generate to make samples.", timeout_ms=8000)
        if self.generation.pending:
            self.generation.generate()

    def _prepare_failed(self, path: str, exc: BaseException) -> None:
        self.generation.pending = False
        self.report(exc, f"Opening {Path(path).name}")

    # drag and drop, anywhere on the window
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        self.open_path(paths[0])
        if len(paths) > 1:
            self.status(f"Opened {Path(paths[0]).name}; only one file at a time is used.")

    # ================================================================== views
    def _show_entry(self, entry: SampleEntry | None) -> None:
        """Show ``entry`` in the viewport; a sample of another photo than the one shown before starts
        from its input view (an orbit of one object means nothing for another)."""
        photo = None if entry is None else (entry.source.path or entry.source.name)
        other_photo = entry is not None and photo != self._shown_photo
        self.viewport.set_sample(None if entry is None else entry.sample, reset_camera=other_photo)
        self.generated_views.set_sample(None if entry is None else entry.sample)
        self.views_toggled(self.acts["views"].isChecked(), remember=False)
        if entry is not None:
            self._shown_photo = photo
        self.exports.follow(entry)
        self.action_set.update_enabled()
        self._update_tiles()

    def tile_entries(self) -> list[SampleEntry]:
        """The selected samples when two or more are selected, else those of the latest run (≤ :data:`MAX_TILES`)."""
        sel = self.gallery.selected_entries()
        if len(sel) >= 2:
            return sel[:MAX_TILES]
        cur = self.current_entry()
        run = cur.run if cur is not None else (self.store.entries[-1].run if self.store.entries else None)
        return self.store.of_run(run)[:MAX_TILES] if run is not None else []

    def _update_tiles(self) -> None:
        self.tiles.set_entries(self.tile_order.arrange(self.tile_entries()))

    def brush_toggled(self, on: bool) -> None:
        if on and self.view_stack.currentWidget() is not self.viewport:
            self.acts["tiled"].setChecked(False)
        self.viewport.set_brush_mode(on)
        if on:
            self.viewport.setFocus()
            self.status("Brush: paint the region to redraw, then Enter (or Ctrl+Shift+R). Esc leaves the brush.")
        self.action_set.update_enabled()

    def tiled_toggled(self, on: bool) -> None:
        if on and self.acts["brush"].isChecked():
            self.acts["brush"].setChecked(False)
        self.view_stack.setCurrentWidget(self.tiles if on else self.viewport)
        self.current_view().update()
        if on and len(self.tile_entries()) < 2:
            self.status("Tiles show two or more samples: generate several, or select them in the gallery.")

    def heatmap_toggled(self, on: bool) -> None:
        self.settings.heatmap = on
        self.tiles.set_heatmap(on)

    def order_toggled(self, on: bool) -> None:
        """*Order by disagreement* (:mod:`.tile_order`) on or off."""
        self.settings.order_tiles = on
        self.tile_order.set_on(on)
        self._update_tiles()

    def views_toggled(self, on: bool, *, remember: bool = True) -> None:
        """*Generated views* on or off: the strip shows when it is on and the sample has views."""
        if remember:
            self.settings.generated_views = on
        self.generated_views.setVisible(on and self.generated_views.has_views)

    def _view_chosen(self, k: int, viewmat) -> None:
        """A generated view was clicked: the orbit camera goes to its camera (its azimuth)."""
        if viewmat is not None:
            self.camera.reset(viewmat)
        self.camera.azimuth = self.generated_views.azimuths[k]
        for view in (self.viewport, self.tiles):
            view.camera_moved(settle=False)
        self.status(f"Generated view {k + 1}: the splats from its camera (azimuth {self.camera.azimuth:.0f}°).",
                    timeout_ms=6000)

    def overlay_toggled(self, on: bool) -> None:
        for v in (self.viewport, self.tiles):
            v.show_overlay = on
            v.update()

    def _value_colours(self, sample, mode: str):
        """The viewport's sample coloured for a value mode (:mod:`.value_colours`); None to draw it plainly."""
        from splatgen.core.errors import SplatgenError

        from .value_colours import observed_colours, spread_colours

        if mode == "observed":
            if sample.info.get("no_input_camera"):
                self.status("An opened splat file has no photo, so nothing in it is observed; shown in RGB.")
                return None
            try:
                return observed_colours(sample)
            except SplatgenError as exc:  # e.g. too many splat/pixel pairs for the CPU renderer
                self.status(f"Observed / invented cannot be computed for this sample ({exc}); shown in RGB.")
                return None
        entry = next((e for e in self.store.entries if e.sample is sample), None)
        siblings = [e.sample for e in self.store.entries if entry is not None and e.run == entry.run
                    and e.source.path == entry.source.path]
        coloured = spread_colours(sample, siblings)
        if coloured is None:
            self.status("Spread needs two or more samples of this photo from one Generate; shown in RGB.")
        return coloured

    def set_mode(self, mode: str) -> None:
        if mode not in dict(VIEW_MODES):
            return
        self.settings.mode = mode
        self.viewport.set_mode(mode)
        self.tiles.set_mode("rgb" if mode in VALUE_MODES else mode)  # the tiles show colours as they are
        self.acts[f"mode_{mode}"].setChecked(True)
        box = getattr(self, "mode_box", None)
        i = box.findData(mode) if box is not None else -1
        if i >= 0 and box.currentIndex() != i:
            box.setCurrentIndex(i)

    def choose_background(self, color: str | None = None) -> None:
        if color is None:
            c = QColorDialog.getColor(QColor(self.settings.background), self, "Background colour")
            if not c.isValid():
                return
            color = c.name()
        rgb = _rgb(color)
        self.settings.background = _hex(rgb)
        self.viewport.set_background(rgb)
        self.tiles.set_background(rgb)
        self.generated_views.set_background(rgb)

    # ================================================================== misc
    def open_log(self) -> None:
        from .errors import log_path

        p = log_path()
        if p is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(p.parent)))
            self.status(f"Log: {p}")

    def open_autosave(self) -> None:
        folder = self.autosave.root
        if folder is None:
            self.status("The run history is off: generations are not kept.")
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        self.status(f"Runs (every generation, its photo, settings and samples): {folder}")

    def about(self) -> None:
        from PyQt6.QtWidgets import QMessageBox

        QMessageBox.about(self, "About splatgen",
                          "<b>splatgen</b> — one photo in, many plausible 3D Gaussian-splat completions out "
                          "(latent diffusion over Splatter Images).<br>Drop an image, Generate, orbit, "
                          "resample, export.")

    # ================================================================== demo mode and full screen
    def toggle_full_screen(self) -> None:
        """F11: full screen on or off."""
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def start_demo(self, **kwargs):
        """Demo mode on (:class:`~.demo.DemoMode`; ``kwargs`` go to it). Returns it."""
        if self.demo is None:
            from .demo import DemoMode

            self.demo = DemoMode(self, **kwargs)
            self.demo.start()
        return self.demo

    def stop_demo(self, keep: bool | None = None) -> None:
        """Demo mode off; the visitors' runs are removed unless ``keep`` (default: the setting)."""
        if self.demo is not None:
            demo, self.demo = self.demo, None
            demo.stop(keep)

    def closeEvent(self, event) -> None:
        self.stop_demo()
        try:
            self.settings.set_window(self.saveGeometry(), self.saveState())
            if self.controls.info is not None:
                self.settings.set_generation(self.controls.info.key, self.controls.values())
            self.settings.sync()
        except Exception:  # noqa: BLE001 - never block closing
            log.exception("saving settings failed")
        self.runner.shutdown()
        self.io.shutdown(timeout_ms=60000)   # let a running export finish
        self.exports.close()
        self.phone.close()
        self.captures.close()
        super().closeEvent(event)
