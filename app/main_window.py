"""The main window: wires the input panel, the controls, the views, the gallery and the worker.

Layout: input and generation controls on the left; the view (single sample or tiles) with its
toolbar in the middle; the gallery of samples below it; messages in the status bar. Everything
slow (preparing an image, loading a model, generating, resampling, exporting) is a job for the
worker thread (:mod:`splatgen.app.worker`, bodies in :mod:`splatgen.app.tasks`); this class only
reacts to the results. Errors become a message (status bar and a non-blocking dialog) with what to
do; samples that were finished are kept whatever fails later.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, QUrl
from PyQt6.QtGui import QAction, QActionGroup, QColor, QDesktopServices, QKeySequence, QUndoStack
from PyQt6.QtWidgets import (QColorDialog, QComboBox, QFileDialog, QLabel, QMainWindow, QMenu, QScrollArea,
                             QSplitter, QStackedWidget, QToolBar, QVBoxLayout, QWidget)

from splatgen.core.imageprep import DEFAULT_FOREGROUND_RATIO

from . import tasks
from .controls import GenerationControls
from .errors import describe, show_error
from .gallery import Gallery
from .input_panel import IMAGE_SUFFIXES, InputPanel, example_images
from .orbit_camera import OrbitCamera
from .samples import InputRecord, RemoveCommand, ResampleCommand, SampleEntry, SampleStore
from .settings import Settings
from .tiles import MAX_TILES, TiledView
from .viewport import Viewport
from .worker import Job, Runner

log = logging.getLogger("splatgen.app")

APP_NAME = "splatgen"
_MODES = (("rgb", "RGB"), ("depth", "Depth"), ("alpha", "Alpha"))
_SPLAT_FILTER = "Gaussian splats, INRIA 3DGS (*.ply);;Gaussian splats, antimatter15 (*.splat)"


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
    ``autosave_dir``: where every sample is also saved as it arrives (``""``: the user's cache
    folder, ``None``: nowhere)."""

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
            from PyQt6.QtCore import QStandardPaths

            base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericCacheLocation)
            autosave_dir = Path(base) / "splatgen" / "samples" if base else None
        self.autosave = tasks.Autosave(autosave_dir)
        self.store = SampleStore(self)
        self.undo_stack = QUndoStack(self)
        self.camera = OrbitCamera()
        self.prepared = None                     # PreparedImage of the current input
        self.input_path: str | None = None
        self.input_record: InputRecord | None = None
        self.messages: list[str] = []            # status messages shown (newest last)
        self.errors: list = []                   # UserMessages shown
        self.browser = None                      # handle of the browser viewer, if started
        self._run = 0
        self._run_started = 0.0
        self._pending_generate = False
        self._pending_path: str | None = None
        self._model_info: dict[str, tasks.ModelInfo] = {}
        self._prep_timer = QTimer(self, singleShot=True, interval=300)
        self._prep_timer.timeout.connect(self._reprepare)

        self._build_widgets(backend)
        self._build_actions()
        self._build_menus_and_toolbar()
        for child in self.findChildren(QWidget):   # a file dropped anywhere opens it (no text fields take it)
            child.setAcceptDrops(False)
        self._connect()
        self._restore()
        self._load_models()
        self._update_actions()

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

    def _action(self, name: str, text: str, slot=None, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        a.setObjectName(name)
        if isinstance(shortcut, QKeySequence.StandardKey):
            a.setShortcuts(QKeySequence.keyBindings(shortcut))
        elif isinstance(shortcut, str):
            a.setShortcut(QKeySequence(shortcut))
        elif shortcut:
            a.setShortcuts([QKeySequence(k) for k in shortcut])
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        if slot is not None:
            (a.toggled if checkable else a.triggered).connect(slot)
        self.addAction(a)
        self.acts[name] = a
        return a

    def _build_actions(self) -> None:
        self.acts: dict[str, QAction] = {}
        A = self._action
        A("open", "&Open image…", lambda: self.open_dialog(), QKeySequence.StandardKey.Open, "Open a photo of an object")
        A("export_ply", "Export sample as .&ply…", lambda: self.export_sample(suffix=".ply"), "Ctrl+E",
          "Save the current sample as an INRIA 3DGS .ply (opens in SuperSplat and other viewers)")
        A("export_splat", "Export sample as .&splat…", lambda: self.export_sample(suffix=".splat"), None,
          "Save the current sample as a .splat file (32 bytes a splat)")
        A("export_turntable", "Export &turntable video…", lambda: self.export_turntable(), None,
          "Render an orbit around the current sample to an MP4 video")
        A("screenshot", "Save &screenshot…", lambda: self.save_screenshot(), "Ctrl+Shift+S",
          "Save the view as a PNG image (full resolution, without the overlay)")
        A("contact_sheet", "Export &contact sheet…", lambda: self.export_contact_sheet(), None,
          "A PNG grid: one row per sample (the selected ones, else the latest run), six views each")
        A("browser", "Show in &browser", lambda: self.show_in_browser(), None,
          "Open the current sample in the web viewer (also reachable from other machines)")
        A("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)

        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Undo))
        undo.setObjectName("undo")
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) + [QKeySequence("Ctrl+Shift+Z")])
        redo.setObjectName("redo")
        self.acts["undo"], self.acts["redo"] = undo, redo
        A("remove", "&Remove sample", lambda: self.remove_samples(), QKeySequence.StandardKey.Delete,
          "Take the selected samples out of the gallery (undoable)")
        A("clear", "Clear &gallery", lambda: self.remove_samples(list(self.store.entries)), None,
          "Remove every sample (undoable)")

        A("generate", "&Generate", lambda: self.generate(), ["Ctrl+Return", "Ctrl+Enter"],
          "Generate samples of the prepared input")
        A("cancel", "&Cancel", lambda: self.cancel(), "Esc", "Stop generating / resampling (within one step)")
        A("resample", "Resample &occluded", lambda: self.resample_occluded(), "Ctrl+R",
          "Redraw what the input view does not show, with a new seed; the visible side stays")
        A("brush", "&Brush", self._brush_toggled, "B",
          "Paint a region in the view to redraw it (left paints, right erases, wheel sizes)", checkable=True)
        A("resample_brush", "Resample &painted region", lambda: self.resample_painted(), "Ctrl+Shift+R",
          "Redraw the splats under the painted region with a new seed")
        A("randomise", "Randomise &seed", lambda: self.controls.randomise_seed(), "Ctrl+D")

        A("frame", "&Frame object", lambda: self.current_view().frame_object(), "F", "Fit the object in the view")
        A("reset", "&Reset camera", lambda: self.current_view().reset_camera(), "R", "Back to the input camera")
        A("tiled", "&Tiles and variance", self._tiled_toggled, "T",
          "Show several samples side by side under one camera, with their variance heat-map", checkable=True)
        A("heatmap", "Variance &heat-map", self._heatmap_toggled, None,
          "Show the per-pixel variance across the tiled samples", checkable=True)
        A("background", "&Background colour…", lambda: self.choose_background(), None, "Colour behind the splats")
        A("overlay", "&Overlay", self._overlay_toggled, None, "FPS, splat count and resolution", checkable=True)
        self.acts["overlay"].setChecked(True)
        self.mode_group = QActionGroup(self)
        for mode, label in _MODES:
            a = A(f"mode_{mode}", label, None, None, f"Show {label.lower()}", checkable=True)
            a.setActionGroup(self.mode_group)
            a.triggered.connect(lambda _=False, m=mode: self.set_mode(m))
        A("open_log", "Open the &log folder", self._open_log, None)
        A("open_autosave", "Open the &autosave folder", self._open_autosave, None,
          "Every sample is also saved there as it is made (the last 10 sessions are kept)")
        A("about", "&About splatgen", self._about, None)

    def _build_menus_and_toolbar(self) -> None:
        a = self.acts
        m = self.menuBar().addMenu("&File")
        m.addAction(a["open"])
        self.recent_menu = m.addMenu("Open &recent")
        self.examples_menu = m.addMenu("&Examples")
        for p in example_images():
            self.examples_menu.addAction(p.stem.replace("_", " "), lambda p=str(p): self.open_image(p))
        m.addSeparator()
        for k in ("export_ply", "export_splat", "export_turntable", "contact_sheet", "screenshot"):
            m.addAction(a[k])
        m.addSeparator()
        m.addAction(a["browser"])
        m.addSeparator()
        m.addAction(a["quit"])
        m = self.menuBar().addMenu("&Edit")
        for k in ("undo", "redo"):
            m.addAction(a[k])
        m.addSeparator()
        m.addAction(a["remove"])
        m.addAction(a["clear"])
        m = self.menuBar().addMenu("&Generate")
        for k in ("generate", "cancel", "randomise"):
            m.addAction(a[k])
        m.addSeparator()
        for k in ("resample", "brush", "resample_brush"):
            m.addAction(a[k])
        m = self.menuBar().addMenu("&View")
        for k in ("frame", "reset"):
            m.addAction(a[k])
        m.addSeparator()
        m.addAction(a["tiled"])
        m.addAction(a["heatmap"])
        m.addSeparator()
        for mode, _ in _MODES:
            m.addAction(a[f"mode_{mode}"])
        m.addAction(a["background"])
        m.addAction(a["overlay"])
        m = self.menuBar().addMenu("&Help")
        m.addAction(a["open_log"])
        m.addAction(a["open_autosave"])
        m.addAction(a["about"])
        self._fill_recent()

        tb = self.view_toolbar
        tb.setIconSize(tb.iconSize() * 0.8)
        tb.addAction(a["tiled"])
        self.mode_box = QComboBox(objectName="modeBox")
        for mode, label in _MODES:
            self.mode_box.addItem(label, mode)
        self.mode_box.setToolTip("What the view shows")
        self.mode_box.currentIndexChanged.connect(lambda i: self.set_mode(self.mode_box.itemData(i)))
        tb.addWidget(self.mode_box)
        tb.addAction(a["background"])
        tb.addAction(a["frame"])
        tb.addAction(a["reset"])
        tb.addSeparator()
        tb.addAction(a["resample"])
        tb.addAction(a["brush"])
        tb.addAction(a["resample_brush"])
        tb.addSeparator()
        tb.addAction(a["undo"])
        tb.addAction(a["redo"])
        tb.addSeparator()
        export = QMenu("Export", self)
        for k in ("export_ply", "export_splat", "export_turntable", "contact_sheet", "screenshot"):
            export.addAction(a[k])
        ea = export.menuAction()
        ea.setObjectName("exportMenu")
        ea.triggered.connect(lambda: self.export_sample(suffix=".ply"))
        tb.addAction(ea)

    def _connect(self) -> None:
        ip, c = self.input_panel, self.controls
        ip.open_requested.connect(lambda: self.open_dialog())
        ip.image_chosen.connect(lambda p: self.open_image(p))
        ip.preparation_changed.connect(self._prep_timer.start)
        c.generate_requested.connect(lambda: self.generate())
        c.cancel_requested.connect(lambda: self.cancel())
        c.model_changed.connect(self._select_model)
        self.gallery.current_changed.connect(self._show_entry)
        self.gallery.selection_changed.connect(lambda _: self._update_tiles())
        self.gallery.remove_requested.connect(self.remove_samples)
        self.gallery.export_requested.connect(lambda e: self.export_sample(entry=e))
        self.store.inserted.connect(lambda *_: (self._update_tiles(), self._update_actions()))
        self.store.removed.connect(lambda *_: (self._update_tiles(), self._update_actions()))
        self.store.changed.connect(lambda *_: self._update_tiles())
        for runner in (self.runner, self.io):
            runner.job_started.connect(lambda _: self._update_busy())
            runner.job_ended.connect(lambda _: self._update_busy())
        self.viewport.brush_changed.connect(lambda _: self._update_actions())
        self.viewport.brush_exit_requested.connect(lambda: self.acts["brush"].setChecked(False))
        self.viewport.brush_apply_requested.connect(lambda: self.resample_painted())
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
        self.set_mode(s.mode)
        self.acts["heatmap"].setChecked(s.heatmap)
        self.tiles.set_heatmap(s.heatmap)

    # ================================================================== helpers
    def status(self, text: str, *, error: bool = False, timeout_ms: int = 0) -> None:
        self.messages.append(text)
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
        self.status(f"{msg.title}: {msg.one_line()}", error=True)
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

    def _update_busy(self) -> None:
        gen_busy = self.runner.is_running("generate", "resample")
        self.controls.set_busy(gen_busy)
        self.acts["generate"].setEnabled(not gen_busy)
        self.acts["cancel"].setEnabled(gen_busy or self.io.is_running("prepare"))
        self._update_actions()

    def _update_actions(self) -> None:
        e = self.current_entry()
        has = e is not None
        busy = self.runner.is_running("generate", "resample")
        for k in ("export_ply", "export_splat", "export_turntable", "screenshot", "browser"):
            self.acts[k].setEnabled(has)
        self.acts["contact_sheet"].setEnabled(len(self.store) > 0)
        self.acts["remove"].setEnabled(has)
        self.acts["clear"].setEnabled(len(self.store) > 0)
        can_resample = has and e.stochastic and not busy
        self.acts["resample"].setEnabled(can_resample)
        self.acts["brush"].setEnabled(has and e.stochastic)
        self.acts["resample_brush"].setEnabled(can_resample and self.viewport.has_brush)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for p in files:
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_image(p)).setToolTip(p)
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear recent", lambda: (self.settings.clear_recent(), self._fill_recent()))
        self.recent_menu.setEnabled(bool(files))

    # ================================================================== models
    def _load_models(self) -> None:
        from splatgen.core.generator import available_models

        keys = list(available_models())
        if not keys:
            self.controls.set_models([])
            self.controls.set_model_info(None)
            self.status("No generator model is installed (assets/models is empty): run scripts/install.sh "
                        "in a fresh checkout.", error=True)
            return
        current = self.settings.model if self.settings.model in keys else keys[0]
        self.controls.set_models(keys, current)
        self._select_model(current)

    def _select_model(self, key: str) -> None:
        if self.controls.left_values is not None:
            self.settings.set_generation(*self.controls.left_values)
            self.controls.left_values = None
        self.settings.model = key
        if key in self._model_info:
            self._model_ready(self._model_info[key])
            return
        self.controls.set_model_info(None)
        self.runner.submit(Job("model", tasks.load_model(self.models, key), f"load model {key}",
                               on_done=self._model_ready,
                               on_error=lambda exc: self.report(exc, f"Loading the model {key}")), replace=True)

    def _model_ready(self, info: tasks.ModelInfo) -> None:
        self._model_info[info.key] = info
        if info.key != self.controls.model_key():
            return
        self.controls.set_model_info(info, self.settings.generation(info.key))
        import torch

        n = torch.get_num_threads()
        where = "CUDA" if info.device.startswith("cuda") else f"CPU, {n} thread{'s' if n != 1 else ''}"
        view = self.viewport.renderer_name.split("(")[0].strip()
        self.device_label.setText(f"{info.key} on {where} · view: {view or 'OpenGL'}")
        self._update_busy()
        if self._pending_generate and self.prepared is not None:
            self.generate()

    # ================================================================== input
    def open_dialog(self) -> None:
        exts = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", self.settings.folder("open"),
                                              f"Images ({exts});;All files (*)")
        if path:
            self.settings.set_folder("open", path)
            self.open_image(path)

    def open_image(self, path: str, *, generate: bool = False) -> None:
        """Prepare ``path`` as the input (in the worker); ``generate``: start generating when ready."""
        p = Path(path)
        if not p.exists():
            self.report(FileNotFoundError(2, "no such file", str(p)), "Opening the image")
            return
        if p.is_dir():
            self.report(IsADirectoryError(21, "is a folder, not an image", str(p)), "Opening the image")
            return
        self._pending_generate = generate
        self._prepare(str(p))

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
        if first:
            self.settings.add_recent(path)
            self._fill_recent()
        self.status(f"Ready: {Path(path).name}. Generate to make samples.", timeout_ms=8000)
        if self._pending_generate:
            self.generate()

    def _prepare_failed(self, path: str, exc: BaseException) -> None:
        self._pending_generate = False
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
        self.open_image(paths[0])
        if len(paths) > 1:
            self.status(f"Opened {Path(paths[0]).name}; only one image at a time is used.")

    # ================================================================== generation
    def generate(self) -> None:
        """Generate samples of the current input with the controls' settings."""
        if self.prepared is None:
            if self.io.is_running("prepare"):
                self._pending_generate = True
                return
            self.status("Open an image first (drop one on the window, Ctrl+O, or click an example).", error=True)
            return
        info = self.controls.info
        if info is None:
            self._pending_generate = True
            self.status("Waiting for the model to load…")
            return
        self._pending_generate = False
        if self.runner.is_running("generate"):
            return
        settings = self.controls.settings()
        self.settings.set_generation(info.key, self.controls.values())
        self._run += 1
        run, record = self._run, self.input_record
        n = settings.num_samples if info.stochastic else 1
        self._run_started = time.perf_counter()
        self._run_count = 0
        self.status(f"Generating {n} sample{'s' if n > 1 else ''} of {record.name}…")
        self.controls.set_progress(0, max(1, int(settings.steps or 1)), "starting")

        def partial(p: tasks.Produced) -> None:
            entry = SampleEntry(p.sample, p.thumbnail, record, info.key, info.stochastic, run=run)
            self.store.insert(entry)
            self._run_count += 1
            if self._run_count == 1:
                self.gallery.show_entry(entry)

        def done(produced) -> None:
            dt = time.perf_counter() - self._run_started
            self.status(f"Generated {len(produced)} sample{'s' if len(produced) != 1 else ''} in {dt:.1f} s.")
            self.controls.set_message(f"Done: {len(produced)} sample{'s' if len(produced) != 1 else ''} in {dt:.1f} s")

        def cancelled() -> None:
            self.status(f"Cancelled; {self._run_count} finished sample{'s' if self._run_count != 1 else ''} kept.")
            self.controls.set_message(f"Cancelled ({self._run_count} kept)")

        self.runner.submit(Job("generate", tasks.generate(self.models, info.key, record.image, settings,
                                                          self.autosave, record.name),
                               f"generate {n} × {settings.steps} steps",
                               on_partial=partial, on_done=done, on_cancelled=cancelled,
                               on_progress=self.controls.set_progress,
                               on_error=lambda exc: self.report(exc, "Generating")))
        self._update_busy()

    def cancel(self) -> None:
        if self.acts["brush"].isChecked():
            self.acts["brush"].setChecked(False)
            return
        if self.runner.cancel("generate", "resample") | self.io.cancel("prepare"):
            self.status("Cancelling…")
        self._pending_generate = False

    def _resample(self, entry: SampleEntry, brush=None) -> None:
        if entry is None:
            return
        if not entry.stochastic:
            self.status(f"{entry.model_key} is deterministic: nothing to resample.", error=True)
            return
        seed = random.SystemRandom().randrange(0, 2**31 - 1)
        what = "Resample occluded" if brush is None else "Resample painted region"
        self.status(f"{what}: seed {entry.sample.seed} → {seed}…")

        def done(p: tasks.Produced) -> None:
            if self.store.index_of(entry) < 0:     # removed meanwhile: keep it as a new entry
                self.store.insert(SampleEntry(p.sample, p.thumbnail, entry.source, entry.model_key, True, run=entry.run))
            else:
                self.undo_stack.push(ResampleCommand(self.store, entry, p.sample, p.thumbnail, what))
            if brush is not None:
                self.viewport.clear_brush()
            info = p.sample.info
            extra = f", input view kept at {info['input_view_psnr']:.1f} dB" if "input_view_psnr" in info else \
                f", {info['redrawn_splats']:,} splats redrawn" if "redrawn_splats" in info else ""
            self.status(f"{what}: done (seed {seed}{extra}). Undo with Ctrl+Z.")

        self.runner.submit(Job("resample", tasks.resample(self.models, entry.model_key, entry.source.image,
                                                          entry.sample, seed, brush, self.autosave,
                                                          entry.source.name, entry.resampled + 1),
                               what, on_done=done, on_progress=self.controls.set_progress,
                               on_cancelled=lambda: self.status(f"{what}: cancelled."),
                               on_error=lambda exc: self.report(exc, what)))
        self._update_busy()

    def resample_occluded(self) -> None:
        self._resample(self.current_entry())

    def resample_painted(self) -> None:
        req = self.viewport.brush_request()
        if req is None:
            self.status("Paint over the part to redraw first (Brush, then left-drag in the view).", error=True)
            return
        self._resample(self.current_entry(), brush=req)

    def _brush_toggled(self, on: bool) -> None:
        if on and self.view_stack.currentWidget() is not self.viewport:
            self.acts["tiled"].setChecked(False)
        self.viewport.set_brush_mode(on)
        if on:
            self.viewport.setFocus()
            self.status("Brush: paint the region to redraw, then Enter (or Ctrl+Shift+R). Esc leaves the brush.")
        self._update_actions()

    def remove_samples(self, entries=None) -> None:
        entries = entries if entries is not None else (self.gallery.selected_entries() or
                                                       [e for e in [self.current_entry()] if e])
        if entries:
            self.undo_stack.push(RemoveCommand(self.store, list(entries)))
            self.status(f"Removed {len(entries)} sample{'s' if len(entries) != 1 else ''} (Ctrl+Z brings them back).")

    # ================================================================== views
    def _show_entry(self, entry: SampleEntry | None) -> None:
        self.viewport.set_sample(None if entry is None else entry.sample)
        if self.browser is not None and entry is not None:
            try:
                self.browser.set_gaussians(entry.sample.gaussians)
            except Exception as exc:  # noqa: BLE001 - the viewer is optional
                log.warning("browser viewer update failed: %s", exc)
        self._update_actions()
        self._update_tiles()

    def tile_entries(self) -> list[SampleEntry]:
        """The selected samples when two or more are selected, else those of the latest run (≤ 8)."""
        sel = self.gallery.selected_entries()
        if len(sel) >= 2:
            return sel[:MAX_TILES]
        cur = self.current_entry()
        run = cur.run if cur is not None else (self.store.entries[-1].run if self.store.entries else None)
        return self.store.of_run(run)[:MAX_TILES] if run is not None else []

    def _update_tiles(self) -> None:
        self.tiles.set_entries([(e.label, e.sample) for e in self.tile_entries()])

    def _tiled_toggled(self, on: bool) -> None:
        if on and self.acts["brush"].isChecked():
            self.acts["brush"].setChecked(False)
        self.view_stack.setCurrentWidget(self.tiles if on else self.viewport)
        self.current_view().update()
        if on and len(self.tile_entries()) < 2:
            self.status("Tiles show two or more samples: generate several, or select them in the gallery.")

    def _heatmap_toggled(self, on: bool) -> None:
        self.settings.heatmap = on
        self.tiles.set_heatmap(on)

    def _overlay_toggled(self, on: bool) -> None:
        for v in (self.viewport, self.tiles):
            v.show_overlay = on
            v.update()

    def set_mode(self, mode: str) -> None:
        if mode not in dict(_MODES):
            return
        self.settings.mode = mode
        self.viewport.set_mode(mode)
        self.tiles.set_mode(mode)
        self.acts[f"mode_{mode}"].setChecked(True)
        i = self.mode_box.findData(mode) if hasattr(self, "mode_box") else -1
        if i >= 0 and self.mode_box.currentIndex() != i:
            self.mode_box.setCurrentIndex(i)

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

    # ================================================================== export
    def _save_path(self, title: str, suggested: str, filters: str) -> str | None:
        path, chosen = QFileDialog.getSaveFileName(self, title, str(Path(self.settings.folder("export")) / suggested),
                                                   filters)
        if not path:
            return None
        if not Path(path).suffix:
            ext = chosen.split("(*")[-1].rstrip(")").strip() if "(*" in chosen else ""
            path += ext
        self.settings.set_folder("export", path)
        return path

    def _suggest(self, entry: SampleEntry, suffix: str) -> str:
        return f"{entry.source.name}-seed{entry.sample.seed}{suffix}"

    def _export_job(self, what: str, fn) -> None:
        self.status(f"{what}…")
        self.io.submit(Job("export", fn, what, on_done=lambda msg: self.status(msg),
                               on_error=lambda exc: self.report(exc, what)))

    def export_sample(self, path: str | None = None, *, entry: SampleEntry | None = None, suffix: str = ".ply") -> None:
        entry = entry or self.current_entry()
        if entry is None:
            self.status("No sample to export yet.", error=True)
            return
        if path is None:
            filters = _SPLAT_FILTER if suffix == ".ply" else ";;".join(reversed(_SPLAT_FILTER.split(";;")))
            path = self._save_path("Export sample", self._suggest(entry, suffix), filters)
            if path is None:
                return
        if Path(path).suffix.lower() not in (".ply", ".splat"):
            self.status(f"{Path(path).name}: choose a .ply or .splat file name.", error=True)
            return
        self._export_job(f"Exporting {Path(path).name}", tasks.save_sample(path, entry.sample))

    def export_turntable(self, path: str | None = None, frames: int = 90, size: int = 512) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        path = path or self._save_path("Export turntable video", self._suggest(entry, ".mp4"),
                                       "MP4 video (*.mp4);;GIF animation (*.gif)")
        if path:
            self._export_job(f"Rendering the turntable {Path(path).name}",
                             tasks.save_turntable(path, entry.sample, frames, size, self.viewport.background))

    def export_contact_sheet(self, path: str | None = None) -> None:
        entries = self.gallery.selected_entries()
        if len(entries) < 2:
            entries = self.tile_entries() or list(self.store.entries)
        if not entries:
            return
        path = path or self._save_path("Export contact sheet", f"{entries[0].source.name}-samples.png",
                                       "PNG image (*.png)")
        if path:
            self._export_job(f"Rendering the contact sheet {Path(path).name}",
                             tasks.save_contact_sheet(path, [e.sample for e in entries],
                                                      background=self.viewport.background))

    def screenshot(self):
        """The current view as ``(H, W, 3)`` uint8, without the overlay."""
        view = self.current_view()
        keep = view.show_overlay
        view.show_overlay = False
        try:
            return view.grab_array()
        finally:
            view.show_overlay = keep

    def save_screenshot(self, path: str | None = None) -> None:
        entry = self.current_entry()
        name = self._suggest(entry, ".png") if entry else "splatgen.png"
        path = path or self._save_path("Save screenshot", name, "PNG image (*.png);;JPEG image (*.jpg)")
        if path:
            self._export_job(f"Saving {Path(path).name}", tasks.save_image(path, self.screenshot()))

    def show_in_browser(self) -> None:
        """Show the current sample in the web viewer (started in the worker on first use)."""
        entry = self.current_entry()
        if entry is None:
            return
        if self.browser is not None:
            self.browser.set_gaussians(entry.sample.gaussians)
            QDesktopServices.openUrl(QUrl(self.browser.url))
            self.status(f"Browser viewer at {self.browser.url}")
            return
        if self.io.is_running("browser"):
            return

        def started(handle) -> None:
            self.browser = handle
            cur = self.current_entry()
            if cur is not None and cur.sample is not entry.sample:
                handle.set_gaussians(cur.sample.gaussians)
            self.status(f"Browser viewer at {handle.url}")
            QDesktopServices.openUrl(QUrl(handle.url))

        def failed(exc: BaseException) -> None:
            if isinstance(exc, ImportError):
                self.status(f"The browser viewer is not available in this installation ({exc}).", error=True)
            else:
                self.report(exc, "Starting the browser viewer")

        self.status("Starting the browser viewer…")
        self.io.submit(Job("browser", tasks.start_browser(entry.sample.gaussians), "start the browser viewer",
                               on_done=started, on_error=failed))

    # ================================================================== misc
    def _open_log(self) -> None:
        from .errors import log_path

        p = log_path()
        if p is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(p.parent)))
            self.status(f"Log: {p}")

    def _open_autosave(self) -> None:
        folder = self.autosave.folder or self.autosave.root
        if folder is None:
            self.status("Autosave is off.")
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        self.status(f"Autosaved samples: {folder}")

    def _about(self) -> None:
        from PyQt6.QtWidgets import QMessageBox

        QMessageBox.about(self, "About splatgen",
                          "<b>splatgen</b> — one photo in, many plausible 3D Gaussian-splat completions out "
                          "(latent diffusion over Splatter Images).<br>Drop an image, Generate, orbit, "
                          "resample, export.")

    def closeEvent(self, event) -> None:
        try:
            self.settings.set_window(self.saveGeometry(), self.saveState())
            if self.controls.info is not None:
                self.settings.set_generation(self.controls.info.key, self.controls.values())
            self.settings.sync()
        except Exception:  # noqa: BLE001 - never block closing
            log.exception("saving settings failed")
        self.runner.shutdown()
        self.io.shutdown(timeout_ms=60000)   # let a running export finish
        if self.browser is not None:
            try:
                self.browser.stop()
            except Exception:  # noqa: BLE001
                pass
            self.browser = None
        super().closeEvent(event)
