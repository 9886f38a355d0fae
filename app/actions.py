"""The main window's actions, menus and view toolbar, and which actions are enabled when.

Every command of the window is one named ``QAction`` (``window.acts["export_ply"]``, …: the menus,
the toolbar, shortcuts and tests all reach a command through its action). Actions only call the
window and its controllers (:mod:`.generation`, :mod:`.exports`); nothing here does work itself.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QComboBox, QMenu

from .input_panel import example_images
from .plain_text import plain_tooltip

#: What the views can show: (mode, label).
VIEW_MODES = (("rgb", "RGB"), ("depth", "Depth"), ("alpha", "Alpha"), ("observed", "Observed / invented"),
              ("spread", "Spread across samples"))
_EXPORTS = ("export_ply", "export_splat", "export_turntable", "contact_sheet", "screenshot")
#: The menu bar: (title, action names); None is a separator, "recent" and "examples" the File submenus.
MENUS = (
    ("&File", ("open", "take_photo", "phone", "recent", "examples", None, *_EXPORTS, None, "browser", None, "quit")),
    ("&Edit", ("undo", "redo", None, "cleanup", None, "remove", "clear")),
    ("&Generate", ("generate", "cancel", "randomise", None, "resample", "brush", "resample_brush")),
    ("&View", ("frame", "reset", None, "tiled", "heatmap", "order", "views", None,
               *(f"mode_{m}" for m, _ in VIEW_MODES),
               "background", "overlay", None, "history", "fullscreen", "demo")),
    ("&Help", ("open_log", "open_autosave", "about")),
)


def key_sequences(spec) -> list[QKeySequence]:
    """Shortcuts of an action from a standard key, a key string, or a list of both; each key once
    (the platform's standard keys may already hold one that is also named: Redo holds Ctrl+Shift+Z
    on Linux, and a key bound twice to one action is an "ambiguous shortcut" that never fires)."""
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    out: list[QKeySequence] = []
    for item in items:
        keys = QKeySequence.keyBindings(item) if isinstance(item, QKeySequence.StandardKey) else [QKeySequence(item)]
        out.extend(k for k in keys if not k.isEmpty() and k not in out)
    return out


class WindowActions:
    """Builds the actions of ``window`` (a :class:`~.main_window.MainWindow`), its menu bar and its view
    toolbar; :meth:`update_enabled` follows the current sample, the gallery and the workers."""

    def __init__(self, window):
        self.window = window
        self.acts: dict[str, QAction] = {}
        self._build_actions()

    def _action(self, name: str, text: str, slot=None, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self.window)
        a.setObjectName(name)
        if shortcut:
            a.setShortcuts(key_sequences(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        if slot is not None:
            (a.toggled if checkable else a.triggered).connect(slot)
        self.window.addAction(a)
        self.acts[name] = a
        return a

    def _build_actions(self) -> None:
        w, A = self.window, self._action
        ex, gen = w.exports, w.generation
        A("open", "&Open image…", lambda: w.open_dialog(), QKeySequence.StandardKey.Open, "Open a photo of an object")
        A("take_photo", "&Take photo…", lambda: w.take_photo(), "Ctrl+Shift+P",
          "A photo from the camera (--camera-source INDEX|FILE), with a live preview")
        A("phone", "Photos from a &phone…", lambda: w.phone.start(), None,
          "An upload page for phones (a QR code to scan); the photos sent wait in the Phone panel")
        A("export_ply", "Export sample as .&ply…", lambda: ex.export_sample(suffix=".ply"), "Ctrl+E",
          "Save the current sample as an INRIA 3DGS .ply (opens in SuperSplat and other viewers)")
        A("export_splat", "Export sample as .&splat…", lambda: ex.export_sample(suffix=".splat"), None,
          "Save the current sample as a .splat file (32 bytes a splat)")
        A("export_turntable", "Export &turntable video…", lambda: ex.export_turntable(), None,
          "An orbit around the current sample, or several side by side on one orbit: MP4, WebM, GIF or PNG "
          "frames, up to 3840×2160, transparent where the format allows")
        A("screenshot", "Save &screenshot…", lambda: ex.save_screenshot(), "Ctrl+Shift+S",
          "Render the view from its camera at any size (e.g. 3840×2160), with a transparent background if "
          "wanted (PNG)")
        A("contact_sheet", "Export &contact sheet…", lambda: ex.export_contact_sheet(), None,
          "A PNG grid: one row per sample (the selected ones, else the latest run), six views each")
        A("browser", "Show in &browser", lambda: ex.show_in_browser(), None,
          "Open the current sample in the web viewer (also reachable from other machines)")
        A("quit", "&Quit", w.close, QKeySequence.StandardKey.Quit)

        undo = w.undo_stack.createUndoAction(w, "&Undo")
        undo.setShortcuts(key_sequences(QKeySequence.StandardKey.Undo))
        undo.setObjectName("undo")
        redo = w.undo_stack.createRedoAction(w, "&Redo")
        redo.setShortcuts(key_sequences([QKeySequence.StandardKey.Redo, "Ctrl+Shift+Z"]))
        redo.setObjectName("redo")
        self.acts["undo"], self.acts["redo"] = undo, redo
        A("cleanup", "Clean &up…", lambda: w.cleanup.open(), None,
          "Remove faint splats, floaters and what lies outside a crop box; previewed first, undoable")
        A("remove", "&Remove sample", lambda: w.remove_samples(), "Del",  # the standard Delete keys hold Ctrl+D too
          "Take the selected samples out of the gallery (undoable)")
        A("clear", "Clear &gallery", lambda: w.remove_samples(list(w.store.entries)), None,
          "Remove every sample (undoable while it fits the undo memory bound, Settings undo/limit_mb)")

        A("generate", "&Generate", lambda: gen.generate(), ["Ctrl+Return", "Ctrl+Enter"],
          "Generate samples of the prepared input")
        A("cancel", "&Cancel", lambda: gen.cancel(), "Esc", "Stop generating / resampling (within one step)")
        A("resample", "Resample &occluded", lambda: gen.resample_occluded(), "Ctrl+R",
          "Redraw what the input view does not show, with a new seed; the visible side stays")
        A("brush", "&Brush", w.brush_toggled, "B",
          "Paint a region in the view to redraw it (left paints, right erases, wheel sizes)", checkable=True)
        A("resample_brush", "Resample &painted region", lambda: gen.resample_painted(), "Ctrl+Shift+R",
          "Redraw the splats under the painted region with a new seed")
        A("randomise", "Randomise &seed", lambda: w.controls.randomise_seed(), "Ctrl+D")

        A("frame", "&Frame object", lambda: w.current_view().frame_object(), "F", "Fit the object in the view")
        A("reset", "&Reset camera", lambda: w.current_view().reset_camera(), "R", "Back to the input camera")
        A("tiled", "&Tiles and variance", w.tiled_toggled, "T",
          "Show several samples side by side under one camera, with their variance heat-map", checkable=True)
        A("heatmap", "Variance &heat-map", w.heatmap_toggled, None,
          "Show the per-pixel variance across the tiled samples", checkable=True)
        A("order", "&Order by disagreement", w.order_toggled, None,
          "Sort the tiles by how much each sample's renders differ from the other tiled samples' (Δ: the mean "
          "squared difference over four views), most unusual first", checkable=True)
        A("views", "&Generated views", w.views_toggled, None,
          "Show the views the multi-view model generated, under the view; click one to see the splats from its camera",
          checkable=True)
        A("background", "&Background colour…", lambda: w.choose_background(), None, "Colour behind the splats")
        A("overlay", "&Overlay", w.overlay_toggled, None, "FPS, splat count and resolution", checkable=True)
        self.acts["overlay"].setChecked(True)
        self.mode_group = QActionGroup(w)
        for mode, label in VIEW_MODES:
            a = A(f"mode_{mode}", label, None, None, f"Show {label.lower()}", checkable=True)
            a.setActionGroup(self.mode_group)
            a.triggered.connect(lambda _=False, m=mode: w.set_mode(m))
        A("fullscreen", "&Full screen", lambda: w.toggle_full_screen(), "F11", "Full screen on or off")
        A("demo", "&Demo mode", lambda: w.start_demo(), None,
          "Full screen, unattended: the samples turn, an attract loop shows the examples when nobody is there, "
          "visitors' photos are forgotten when it ends (Esc leaves)")
        A("open_log", "Open the &log folder", w.open_log, None)
        A("open_autosave", "Open the &runs folder", w.open_autosave, None,
          "Every generation is kept there as a run: photo, settings and each sample as it is made")
        history = w.history.dock.toggleViewAction()
        history.setText("&History")
        history.setObjectName("history")
        history.setShortcut(QKeySequence("Ctrl+H"))
        history.setToolTip("The run history: reopen, compare, delete or export earlier generations")
        w.addAction(history)
        self.acts["history"] = history
        A("about", "&About splatgen", w.about, None)

    # ------------------------------------------------------------------ menus and toolbar
    def build_menus(self) -> None:
        """File, Edit, Generate, View and Help in the window's menu bar (:data:`MENUS`)."""
        w = self.window
        for title, entries in MENUS:
            m = w.menuBar().addMenu(title)
            for k in entries:
                if k is None:
                    m.addSeparator()
                elif k == "recent":
                    self.recent_menu = m.addMenu("Open &recent")
                elif k == "examples":
                    self.examples_menu = m.addMenu("&Examples")
                    for p in example_images():
                        self.examples_menu.addAction(p.stem.replace("_", " "), lambda p=str(p): w.open_image(p))
                else:
                    m.addAction(self.acts[k])
        self.fill_recent()

    def build_toolbar(self, tb) -> QComboBox:
        """Fill the view toolbar ``tb``; returns its mode box (what the view shows)."""
        w, a = self.window, self.acts
        tb.setIconSize(tb.iconSize() * 0.8)
        tb.addAction(a["tiled"])
        mode_box = QComboBox(objectName="modeBox")
        for mode, label in VIEW_MODES:
            mode_box.addItem(label, mode)
        mode_box.setToolTip("What the view shows")
        mode_box.currentIndexChanged.connect(lambda i: w.set_mode(mode_box.itemData(i)))
        tb.addWidget(mode_box)
        for k in ("background", "frame", "reset", None, "resample", "brush", "resample_brush", None, "undo", "redo",
                  None):
            if k is None:
                tb.addSeparator()
            else:
                tb.addAction(a[k])
        export = QMenu("Export", w)
        for k in _EXPORTS:
            export.addAction(a[k])
        ea = export.menuAction()
        ea.setObjectName("exportMenu")
        ea.triggered.connect(lambda: w.exports.export_sample(suffix=".ply"))
        tb.addAction(ea)
        return mode_box

    def fill_recent(self) -> None:
        """File > Open recent from the settings' list."""
        w = self.window
        self.recent_menu.clear()
        files = w.settings.recent_files()
        for p in files:
            self.recent_menu.addAction(Path(p).name.replace("&", "&&"), lambda p=p: w.open_image(p)).setToolTip(
                plain_tooltip(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear recent", lambda: (w.settings.clear_recent(), self.fill_recent()))
        self.recent_menu.setEnabled(bool(files))

    # ------------------------------------------------------------------ state
    def update_busy(self) -> None:
        """Generate / Cancel by what the workers run, then :meth:`update_enabled`."""
        w = self.window
        busy = w.runner.is_running("generate", "resample")
        self.acts["generate"].setEnabled(not busy)
        self.acts["cancel"].setEnabled(busy or w.io.is_running("prepare"))
        self.update_enabled()

    def update_enabled(self) -> None:
        """Enable what applies to the current sample, the gallery and the brush."""
        w, acts = self.window, self.acts
        e = w.current_entry()
        has = e is not None
        busy = w.runner.is_running("generate", "resample")
        for k in ("export_ply", "export_splat", "export_turntable", "screenshot", "browser"):
            acts[k].setEnabled(has)
        acts["contact_sheet"].setEnabled(len(w.store) > 0)
        acts["remove"].setEnabled(has)
        acts["cleanup"].setEnabled(has)
        acts["clear"].setEnabled(len(w.store) > 0)
        acts["views"].setEnabled(w.generated_views.has_views)
        can_resample = has and e.stochastic and not busy
        acts["resample"].setEnabled(can_resample)
        acts["brush"].setEnabled(has and e.stochastic)
        acts["resample_brush"].setEnabled(can_resample and w.viewport.has_brush)
