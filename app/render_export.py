"""*File → Export turntable…* and *File → Save screenshot…*: the dialogs of rendered exports.

:class:`TurntableDialog` holds a :class:`~splatgen.core.turntable.TurntableSettings` and what to
show: which samples (the current one, the selected ones, the tiled ones, or all of the gallery —
several are tiles of one grid, every tile on the same orbit), frames, duration in seconds (the
frame rate follows and is shown), elevation in degrees, size in pixels (presets up to 3840×2160,
any width × height), background colour, transparency (offered where the format keeps alpha: WebM,
GIF, PNG frames; MP4 has none and the dialog says the colour fills it), format and file.
:class:`ScreenshotDialog` holds a size (the view's, presets up to 4096×4096, or any up to 8192 a
side), transparency (PNG: the render's alpha, 0 where nothing is drawn), background and file.

Both hand their choices to a callback (``on_export``, set by :class:`~.exports.Exports`) that
starts the job; while it runs the dialog shows its progress bar and *Cancel* stops it (between
batches of frames; nothing is written), closing the dialog cancels too, and the dialog closes
itself when the file is written. Nothing here renders or writes a file.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout,
                             QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                             QWidget)

from splatgen.core.turntable import MAX_FRAMES, MAX_SIDE, TurntableSettings

#: Turntable formats: (label, suffix; "" is a folder of PNG frames, whether it keeps alpha).
TURNTABLE_FORMATS = (("MP4 video (H.264, no alpha)", ".mp4", False), ("WebM video (VP9, alpha)", ".webm", True),
                     ("GIF animation", ".gif", True), ("PNG frames (a folder)", "", True))
#: Screenshot formats: (label, suffix, keeps alpha).
SCREENSHOT_FORMATS = (("PNG image", ".png", True), ("JPEG image", ".jpg", False))
TURNTABLE_SIZES = ((512, 512), (1080, 1080), (1280, 720), (1920, 1080), (3840, 2160))
SCREENSHOT_SIZES = ((1920, 1080), (3840, 2160), (4096, 4096))
#: Largest side of a screenshot, pixels (as ``splatgen render``: at most 8192×8192).
SCREENSHOT_MAX_SIDE = 8192
NO_ALPHA_NOTE = "MP4 has no alpha: the background colour fills the frames (WebM, GIF and PNG frames keep it)."


def _hex(rgb) -> str:
    return QColor.fromRgbF(*rgb).name()


def with_suffix(path: str, suffix: str, formats) -> str:
    """``path`` with its format suffix (any of ``formats``') replaced by ``suffix``."""
    if not path:
        return path
    lower = path.lower()
    for _, known, _alpha in formats:
        if known and lower.endswith(known):
            path = path[: -len(known)]
            break
    return path + suffix


class _RenderDialog(QDialog):
    """What both dialogs share: size, background, transparency, format and file, the progress bar,
    Export and Cancel. ``on_export(dialog)`` starts the job and returns it (None: it did not start,
    :meth:`show_message` said why); ``on_cancel()`` cancels it."""

    FORMATS: tuple = ()
    DIALOG = ""

    def __init__(self, parent, title: str, sizes, max_side: int, size: tuple[int, int], background, path: str,
                 transparent: bool):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.on_export = None
        self.on_cancel = None
        self.job = None
        self.background = tuple(background)
        lay = QVBoxLayout(self)
        self.form = QFormLayout()
        lay.addLayout(self.form)
        self.what = QLabel("", objectName="renderWhat", wordWrap=True)

        self.preset = QComboBox(objectName="sizePreset")
        self._sizes = list(sizes)
        for w, h in self._sizes:
            self.preset.addItem(self._size_label(w, h), (w, h))
        self.preset.addItem("Custom", None)
        self.width_box = QSpinBox(objectName="widthBox", minimum=16, maximum=max_side, suffix=" px")
        self.height_box = QSpinBox(objectName="heightBox", minimum=16, maximum=max_side, suffix=" px")
        self.width_box.setValue(size[0])
        self.height_box.setValue(size[1])
        size_row = QWidget()
        row = QHBoxLayout(size_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.preset, 1)
        row.addWidget(self.width_box)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_box)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self.width_box.valueChanged.connect(self._size_changed)
        self.height_box.valueChanged.connect(self._size_changed)
        self._size_changed()

        self.background_button = QPushButton(objectName="backgroundButton")
        self.background_button.clicked.connect(self._choose_background)
        self._show_background()
        self.transparent = QCheckBox("Transparent background", objectName="transparent", checked=transparent)
        self.alpha_note = QLabel("", objectName="alphaNote", wordWrap=True)
        self.format_box = QComboBox(objectName="formatBox")
        for label, suffix, _alpha in self.FORMATS:
            self.format_box.addItem(label, suffix)
        self.path_edit = QLineEdit(path, objectName="pathEdit")
        browse = QPushButton("Choose…", objectName="browse")
        browse.clicked.connect(self._browse)
        file_row = QWidget()
        row = QHBoxLayout(file_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self._file_row = file_row
        self._size_row = size_row
        suffix = next((s for _, s, _a in self.FORMATS if s and path.lower().endswith(s)), None)
        if suffix is None and path and Path(path).suffix == "" and any(s == "" for _, s, _a in self.FORMATS):
            suffix = ""
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(suffix if suffix is not None else
                                                                          self.FORMATS[0][1])))
        self.format_box.currentIndexChanged.connect(self._format_chosen)
        self._format_chosen(self.format_box.currentIndex(), rename=False)

        self.message = QLabel("", objectName="renderMessage", wordWrap=True)
        self.message.setStyleSheet("color: #b00020;")
        self.progress = QProgressBar(objectName="renderProgress", minimum=0, maximum=1, value=0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.export_button = QPushButton("Export", objectName="renderExport", default=True)
        self.export_button.clicked.connect(self._export)
        self.cancel_button = QPushButton("Close", objectName="renderCancel")
        self.cancel_button.clicked.connect(self._cancel_or_close)
        self._finish_layout = lambda: self._add_bottom(lay)

    def _add_bottom(self, lay) -> None:
        self.form.addRow("Size", self._size_row)
        self.form.addRow("Background", self.background_button)
        self.form.addRow("", self.transparent)
        self.form.addRow("", self.alpha_note)
        self.form.addRow("Format", self.format_box)
        self.form.addRow("File", self._file_row)
        lay.addWidget(self.message)
        lay.addWidget(self.progress)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        lay.addLayout(buttons)

    # ------------------------------------------------------------------ size, background, format
    @staticmethod
    def _size_label(w: int, h: int) -> str:
        names = {(1280, 720): " (720p)", (1920, 1080): " (1080p)", (3840, 2160): " (4K)"}
        return f"{w} × {h}{names.get((w, h), '')}"

    def _preset_chosen(self, index: int) -> None:
        size = self.preset.itemData(index)
        if size is not None:
            for box, v in ((self.width_box, size[0]), (self.height_box, size[1])):
                box.blockSignals(True)
                box.setValue(v)
                box.blockSignals(False)

    def _size_changed(self) -> None:
        size = (self.width_box.value(), self.height_box.value())
        i = next((k for k in range(self.preset.count()) if self.preset.itemData(k) == size), self.preset.count() - 1)
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(i)
        self.preset.blockSignals(False)

    def set_size(self, width: int, height: int) -> None:
        self.width_box.setValue(int(width))
        self.height_box.setValue(int(height))

    def chosen_size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width_box.value(), self.height_box.value()

    def _show_background(self) -> None:
        name = _hex(self.background)
        self.background_button.setText(name)
        self.background_button.setStyleSheet(f"QPushButton {{ background: {name}; color: "
                                             f"{'#000' if QColor(name).lightnessF() > 0.5 else '#fff'}; }}")

    def _choose_background(self) -> None:
        c = QColorDialog.getColor(QColor(_hex(self.background)), self, "Background colour")
        if c.isValid():
            self.set_background((c.redF(), c.greenF(), c.blueF()))

    def set_background(self, rgb) -> None:
        self.background = tuple(float(v) for v in rgb)
        self._show_background()

    def suffix(self) -> str:
        return self.format_box.currentData()

    def keeps_alpha(self) -> bool:
        return bool(self.FORMATS[self.format_box.currentIndex()][2])

    def _format_chosen(self, index: int, rename: bool = True) -> None:
        alpha = self.keeps_alpha()
        self.transparent.setEnabled(alpha)
        self.alpha_note.setText("" if alpha else self.no_alpha_note())
        self.alpha_note.setVisible(not alpha)
        if rename:
            self.path_edit.setText(with_suffix(self.path_edit.text(), self.suffix(), self.FORMATS))

    def no_alpha_note(self) -> str:
        return "This format has no alpha: the background colour fills the image."

    def transparent_chosen(self) -> bool:
        return self.transparent.isChecked() and self.keeps_alpha()

    def _browse(self) -> None:
        label, suffix, _ = self.FORMATS[self.format_box.currentIndex()]
        pattern = f"*{suffix}" if suffix else "*"
        path, _ = QFileDialog.getSaveFileName(self, self.windowTitle(), self.path_edit.text(), f"{label} ({pattern})")
        if path:
            self.path_edit.setText(with_suffix(path, suffix, self.FORMATS))

    def path(self) -> str:
        return with_suffix(self.path_edit.text().strip(), self.suffix(), self.FORMATS)

    # ------------------------------------------------------------------ the job
    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def _export(self) -> None:
        self.show_message("")
        if not self.path_edit.text().strip():
            self.show_message("Choose a file to write.")
            return
        if self.on_export is not None:
            job = self.on_export(self)
            if job is not None:
                self.set_running(job)

    def set_running(self, job) -> None:
        self.job = job
        self._enable_inputs(False)
        self.export_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.progress.setMaximum(1)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")

    def _enable_inputs(self, on: bool) -> None:
        for i in range(self.form.rowCount()):
            for role in (QFormLayout.ItemRole.FieldRole, QFormLayout.ItemRole.LabelRole):
                item = self.form.itemAt(i, role)
                if item is not None and item.widget() is not None:
                    item.widget().setEnabled(on)
        if on:
            self._format_chosen(self.format_box.currentIndex(), rename=False)

    def set_progress(self, done: int, total: int, text: str = "") -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(text or "%p%")

    def job_ended(self, ok: bool, message: str = "") -> None:
        """The job finished (``ok``: the dialog closes) or was cancelled / failed (it stays, saying so)."""
        self.job = None
        self._enable_inputs(True)
        self.export_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.progress.setValue(0)
        self.progress.setFormat("")
        if ok:
            self.accept()
        else:
            self.show_message(message)

    def _cancel_or_close(self) -> None:
        if self.job is not None:
            if self.on_cancel is not None:
                self.on_cancel()
            self.progress.setFormat("cancelling…")
        else:
            self.reject()

    def reject(self) -> None:   # Esc, the title bar's close: a running job is cancelled first
        if self.job is not None and self.on_cancel is not None:
            self.on_cancel()
        super().reject()

    def options(self) -> dict:
        """What the window's settings keep of this dialog."""
        w, h = self.chosen_size()
        return {"width": w, "height": h, "transparent": self.transparent.isChecked(), "format": self.suffix()}


class TurntableDialog(_RenderDialog):
    """*Export turntable…*. ``choices``: ``[(label, entries)]`` of what may be shown (first the
    default); ``options``: the last-used values (``frames``, ``seconds``, ``elevation``, ``width``,
    ``height``, ``transparent``)."""

    FORMATS = TURNTABLE_FORMATS
    DIALOG = "turntable"

    def __init__(self, parent, choices, options: dict, background, path: str):
        super().__init__(parent, "Export turntable", TURNTABLE_SIZES, MAX_SIDE,
                         (int(options["width"]), int(options["height"])), background, path,
                         bool(options["transparent"]))
        self.setObjectName("turntableDialog")
        self.samples = QComboBox(objectName="samplesBox")
        for label, entries in choices:
            self.samples.addItem(label, entries)
        self.samples.setToolTip("Several samples are tiles of one grid, every tile on the same orbit")
        self.frames = QSpinBox(objectName="framesBox", minimum=1, maximum=MAX_FRAMES, value=int(options["frames"]))
        self.seconds = QDoubleSpinBox(objectName="secondsBox", minimum=0.1, maximum=600.0, decimals=2,
                                      singleStep=0.5, suffix=" s", value=float(options["seconds"]))
        self.fps = QLabel("", objectName="fpsLabel")
        timing = QWidget()
        row = QHBoxLayout(timing)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.frames)
        row.addWidget(QLabel("frames in"))
        row.addWidget(self.seconds)
        row.addWidget(self.fps, 1)
        self.elevation = QDoubleSpinBox(objectName="elevationBox", minimum=-89.0, maximum=89.0, decimals=1,
                                        suffix=" °", value=float(options["elevation"]))
        self.elevation.setToolTip("The camera's height above the object's horizontal plane, degrees (each "
                                  "sample records its photo's elevation; the input panel sets it)")
        self.frames.valueChanged.connect(self._show_fps)
        self.seconds.valueChanged.connect(self._show_fps)
        self._show_fps()
        self.form.addRow("Samples", self.samples)
        self.form.addRow("One turn", timing)
        self.form.addRow("Elevation", self.elevation)
        self._finish_layout()

    def _show_fps(self) -> None:
        self.fps.setText(f"= {self.frames.value() / self.seconds.value():.3g} fps")

    def no_alpha_note(self) -> str:
        return NO_ALPHA_NOTE

    def chosen_entries(self) -> list:
        return list(self.samples.currentData() or [])

    def settings(self) -> TurntableSettings:
        """The choices as settings (raises :class:`~splatgen.core.errors.SettingsError` when out of range)."""
        w, h = self.chosen_size()
        return TurntableSettings(frames=self.frames.value(), seconds=self.seconds.value(),
                                 elevation_deg=self.elevation.value(), width=w, height=h,
                                 background=self.background, transparent=self.transparent_chosen())

    def options(self) -> dict:
        return {**super().options(), "frames": self.frames.value(), "seconds": self.seconds.value(),
                "elevation": self.elevation.value()}


class ScreenshotDialog(_RenderDialog):
    """*Save screenshot…*: the current view (``what`` says which samples) from its camera at any size.
    ``view_size``: the view's framebuffer size, the first preset."""

    FORMATS = SCREENSHOT_FORMATS
    DIALOG = "screenshot"

    def __init__(self, parent, what: str, view_size: tuple[int, int], options: dict, background, path: str):
        sizes = [tuple(view_size)] + [s for s in SCREENSHOT_SIZES if s != tuple(view_size)]
        size = (int(options["width"]), int(options["height"])) if options.get("width") else tuple(view_size)
        super().__init__(parent, "Save screenshot", sizes, SCREENSHOT_MAX_SIDE, size, background, path,
                         bool(options["transparent"]))
        self.setObjectName("screenshotDialog")
        self.preset.setItemText(0, f"The view ({view_size[0]} × {view_size[1]})")
        self.what.setText(what)
        self.form.addRow("Shows", self.what)
        self._finish_layout()

    def no_alpha_note(self) -> str:
        return "JPEG has no alpha: the background colour fills the image (PNG keeps it)."
