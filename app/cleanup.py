"""*Edit > Clean up…*: remove faint splats, floaters and what lies outside a crop box, previewed first.

:class:`CleanupPanel` (a dock) holds the knobs of :class:`~splatgen.core.cleanup.CleanupSettings`:
the opacity below which a splat is faint, the floater search (link distance, the share of the
opacity mass a separate piece needs to stay) and the crop box's six extents (object frame, the
object within a radius of about 0.5). While it is open, :class:`Cleanup` shows the current sample
in the viewport with what would be removed tinted (or hidden), and the crop box as a wireframe;
*Apply* replaces the sample by the cleaned one as an undoable edit
(:class:`~.samples.CleanupCommand`), so exports write the cleaned splats and Ctrl+Z brings the
original back. Samples of a stochastic model keep their splat slots (resampling merges slot by
slot): removed splats become fully transparent there, which every export leaves out; other samples
(splat files, the regressor's) lose them outright.
"""

from __future__ import annotations

from dataclasses import replace

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QDockWidget, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                             QPushButton, QSlider, QVBoxLayout, QWidget)

from splatgen.core import cleanup as core

from .samples import CleanupCommand
from .worker import Job

#: The crop box's extents reach this far from the origin (object-frame units).
CROP_REACH = 1.0
_AXES = "xyz"


class _Knob(QWidget):
    """A slider and a spin box showing one value in [lo, hi] (``step`` apart); ``changed(float)``."""

    changed = pyqtSignal(float)

    def __init__(self, name: str, lo: float, hi: float, step: float, value: float, decimals: int, tip: str = ""):
        super().__init__(objectName=name)
        self.step = step
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=round(lo / step), maximum=round(hi / step))
        self.box = QDoubleSpinBox(objectName=f"{name}Box", minimum=lo, maximum=hi, singleStep=step, decimals=decimals)
        for w in (self.slider, self.box):
            w.setToolTip(tip)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        row.addWidget(self.box)
        self.slider.valueChanged.connect(lambda v: self.box.setValue(v * step))
        self.box.valueChanged.connect(self._box_changed)
        self.setValue(value)

    def _box_changed(self, v: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(v / self.step))
        self.slider.blockSignals(False)
        self.changed.emit(float(v))

    def value(self) -> float:
        return float(self.box.value())

    def setValue(self, v: float) -> None:  # noqa: N802 - Qt's name
        self.box.setValue(float(v))


class CleanupPanel(QWidget):
    """The knobs, a one-line summary of what would be removed, and Apply / Close.
    Signals: ``settings_changed()``, ``apply_requested()``, ``close_requested()``."""

    settings_changed = pyqtSignal()
    apply_requested = pyqtSignal()
    close_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("cleanupPanel")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.min_opacity = _Knob("minOpacity", 0.0, 0.5, 0.005, core.DEFAULT_MIN_OPACITY, 3,
                                 "Splats less opaque than this are removed (0 keeps every visible splat)")
        form.addRow("Faint below", self.min_opacity)
        self.floaters = QCheckBox("Remove floaters", objectName="floaters", checked=True)
        self.floaters.setToolTip("Remove splats not connected to the object")
        form.addRow(self.floaters)
        self.link = _Knob("link", 0.01, 0.2, 0.005, core.DEFAULT_LINK, 3,
                          "Splats closer than about this (object units; the object spans about 1) are connected")
        form.addRow("Link distance", self.link)
        self.mass = _Knob("minMass", 0.0, 1.0, 0.01, core.DEFAULT_MIN_MASS_FRACTION, 2,
                          "A separate piece stays if it holds at least this share of the opacity (strength: "
                          "higher removes larger pieces; 1 keeps only the largest)")
        form.addRow("Keep pieces ≥", self.mass)
        lay.addLayout(form)

        self.crop = QGroupBox("Crop box", objectName="crop", checkable=True, checked=False)
        self.crop.setToolTip("Remove every splat whose centre lies outside the box (object frame, Y up)")
        crop_form = QFormLayout(self.crop)
        self.extents: dict[str, _Knob] = {}
        for axis in _AXES:
            for end, sign in (("min", -1), ("max", 1)):
                name = f"{axis}{end}"
                self.extents[name] = k = _Knob(name, -CROP_REACH, CROP_REACH, 0.01, 0.6 * sign, 2,
                                               f"The box's {'lower' if sign < 0 else 'upper'} {axis} bound")
                crop_form.addRow(f"{axis} {end}", k)
                k.changed.connect(self._extent_changed)
        lay.addWidget(self.crop)

        self.hide_removed = QCheckBox("Hide what is removed (else tinted pink)", objectName="hideRemoved")
        lay.addWidget(self.hide_removed)
        self.summary = QLabel("", objectName="cleanupSummary", wordWrap=True)
        lay.addWidget(self.summary)
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply", objectName="cleanupApply")
        self.apply_button.setToolTip("Remove them from the sample (undoable with Ctrl+Z)")
        self.reset_button = QPushButton("Defaults", objectName="cleanupDefaults")
        close = QPushButton("Close", objectName="cleanupClose")
        for b in (self.apply_button, self.reset_button, close):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        lay.addStretch(1)

        for k in (self.min_opacity, self.link, self.mass):
            k.changed.connect(lambda _: self.settings_changed.emit())
        for c in (self.floaters, self.crop, self.hide_removed):
            c.toggled.connect(lambda _: self.settings_changed.emit())
        self.floaters.toggled.connect(lambda on: (self.link.setEnabled(on), self.mass.setEnabled(on)))
        self.apply_button.clicked.connect(self.apply_requested)
        self.reset_button.clicked.connect(self.set_defaults)
        close.clicked.connect(self.close_requested)

    def _extent_changed(self, _value: float) -> None:
        for axis in _AXES:      # keep min ≤ max: the other end follows
            lo, hi = self.extents[f"{axis}min"], self.extents[f"{axis}max"]
            if lo.value() > hi.value():
                (hi if self.sender() is lo else lo).setValue(self.sender().value())
        self.settings_changed.emit()

    def set_defaults(self) -> None:
        self.min_opacity.setValue(core.DEFAULT_MIN_OPACITY)
        self.floaters.setChecked(True)
        self.link.setValue(core.DEFAULT_LINK)
        self.mass.setValue(core.DEFAULT_MIN_MASS_FRACTION)
        self.crop.setChecked(False)

    def set_box(self, lo, hi) -> None:
        """Set the crop box's extents (clipped to ±:data:`CROP_REACH`)."""
        for i, axis in enumerate(_AXES):
            self.extents[f"{axis}max"].setValue(hi[i])
            self.extents[f"{axis}min"].setValue(lo[i])

    def box(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        return (tuple(self.extents[f"{a}min"].value() for a in _AXES),
                tuple(self.extents[f"{a}max"].value() for a in _AXES))

    def settings(self) -> core.CleanupSettings:
        return core.CleanupSettings(min_opacity=self.min_opacity.value(), floaters=self.floaters.isChecked(),
                                    link=self.link.value(), min_mass_fraction=self.mass.value(),
                                    crop=self.box() if self.crop.isChecked() else None)


class Cleanup:
    """The clean-up of ``window`` (a :class:`~.main_window.MainWindow`): ``panel`` in ``dock``;
    ``result``: the :class:`~splatgen.core.cleanup.CleanupResult` previewed now (None when closed)."""

    def __init__(self, window):
        self.window = window
        self.panel = CleanupPanel()
        self.dock = QDockWidget("Clean up", window)
        self.dock.setObjectName("cleanupDock")
        self.dock.setWidget(self.panel)
        self.dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.entry = None
        self.result: core.CleanupResult | None = None
        self._timer = QTimer(window, singleShot=True, interval=120)   # one preview per burst of changes
        self._timer.timeout.connect(self.refresh)
        self.panel.settings_changed.connect(self._timer.start)
        self.panel.apply_requested.connect(self.apply)
        self.panel.close_requested.connect(self.close)
        self.dock.visibilityChanged.connect(self._visibility)
        window.gallery.current_changed.connect(lambda _: self.dock.isVisible() and self._timer.start())

    def open(self) -> None:
        """Show the panel and the preview of the current sample; an unticked crop box is fitted to it."""
        entry = self.window.current_entry()
        if entry is None:
            self.window.status("Open or generate a sample to clean up first.", error=True)
            return
        if not self.panel.crop.isChecked():     # the box starts around what the other rules keep
            g = entry.sample.gaussians
            kept = g.means[core.cleanup_mask(g, replace(self.panel.settings(), crop=None)).keep].detach()
            if len(kept):
                self.panel.set_box((kept.min(0).values - 0.01).tolist(), (kept.max(0).values + 0.01).tolist())
        self.dock.show()
        self.dock.raise_()
        self.refresh()

    def close(self) -> None:
        self.dock.hide()

    def _visibility(self, shown: bool) -> None:
        if shown:
            self._timer.start()
        else:
            self._timer.stop()
            self.result, self.entry = None, None
            vp = self.window.viewport
            if vp.preview is not None:
                vp.set_preview(None)

    def refresh(self) -> None:
        """Preview the panel's settings on the current sample (the viewport and the summary line)."""
        w = self.window
        if not self.dock.isVisible():
            return
        self.entry = entry = w.current_entry()
        if entry is None or w.viewport.sample is not entry.sample:
            self.result = None
            self.panel.summary.setText("No sample in the view.")
            self.panel.apply_button.setEnabled(False)
            return
        s = self.panel.settings()
        g = entry.sample.gaussians
        self.result = r = core.cleanup_mask(g, s)
        shown = core.preview_gaussians(g, r.keep, hide=self.panel.hide_removed.isChecked())
        w.viewport.set_preview(shown, s.crop)
        self.panel.summary.setText(f"This {r.summary()}.")
        self.panel.apply_button.setEnabled(r.removed > 0)

    def apply(self) -> None:
        """Replace the previewed sample by the cleaned one (an undoable edit, once its thumbnail is drawn)."""
        w = self.window
        self.refresh()
        entry, r = self.entry, self.result
        if entry is None or r is None or r.removed == 0:
            w.status("Nothing to remove with these settings.")
            return
        sample = entry.sample
        cleaned = core.apply_keep(sample.gaussians, r.keep, compact=not entry.stochastic)
        info = {**sample.info, "cleanup": {"removed": r.removed, "faint": r.faint, "cropped": r.cropped,
                                           "floaters": r.floaters}}
        new = replace(sample, gaussians=cleaned, info=info)
        what = f"Clean up ({r.removed:,} splats)"

        def body(ctx):
            from . import tasks

            return tasks.thumbnail(new)

        def done(thumb) -> None:
            if w.store.index_of(entry) < 0 or entry.sample is not sample:
                w.status("The sample changed while it was being cleaned up; nothing was applied.", error=True)
                return
            w._undo_note = None
            w.undo_stack.push(CleanupCommand(w.store, entry, new, thumb, what))
            w.status(f"Removed {r.removed:,} splats ({r.faint:,} faint, {r.cropped:,} outside the box, "
                     f"{r.floaters:,} floaters); {r.kept:,} remain. Undo with Ctrl+Z.{w._undo_note or ''}")

        w.io.submit(Job("cleanup", body, what, on_done=done, on_error=lambda exc: w.report(exc, "Cleaning up")))
