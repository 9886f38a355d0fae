"""The input panel: where a photo comes in and how it was prepared for the model.

Shows the example photos shipped in ``assets/examples/`` (one click loads one), an Open button,
the original image, the prepared 128² input (the object cropped, centred, scaled and composited on
the training background) and its mask, the foreground-ratio control (the object's longer side as a
fraction of the input) and "skip background removal". Preparation itself runs in the worker; this
widget only shows results.

Fixing the cut-out: with the Object / Background brush the user paints strokes on the original,
with Box drags a rectangle to start from; each one re-runs GrabCut with those hints
(:mod:`splatgen.core.cutout`, job body :func:`splatgen.app.tasks.refine_cutout`) in a worker thread
(the window's ``io`` runner, else one of the panel's own), the new mask is kept for the photo in
:func:`splatgen.app.tasks.cutouts` and ``preparation_changed`` asks for the photo to be prepared
again, now with that mask. Signals: ``open_requested()``, ``image_chosen(str path)``,
``preparation_changed()`` (ratio, background option or cut-out edited), ``cutout_changed()``,
``camera_changed()``.

The photo's camera (:mod:`splatgen.core.photo_camera`): an elevation slider and a field-of-view
slider. The elevation starts in the *auto* state, showing the shipped estimator's reading of the
prepared input (read when the input is shown: a small CNN, milliseconds); moving the slider sets it by
hand, *Auto* goes back to the estimate. The field of view starts at the canonical 40°, the one every
shipped model was trained at (another value is recorded with the samples and the model says it
assumed 40°). Both are drawn over the model input as a ground grid, up axis and horizon
(:func:`~splatgen.core.photo_camera.draw_ground_grid`; *Camera guide* hides it) and remembered per
photo for the session. :meth:`InputPanel.camera_setting` gives them to a request (``None`` = auto).
Like the object size, they are not on the undo stack (which holds edits of samples).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import QPointF, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import (QButtonGroup, QCheckBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                             QPushButton, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from splatgen.core import framing, photo_camera
from splatgen.core.cutout import Cutout, Stroke
from splatgen.core.images import to_uint8

from . import tasks

from .plain_text import plain_tooltip, rich_escape
from .splat_view import array_to_qimage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif")


def examples_dir() -> Path:
    import splatgen.assets

    return Path(next(iter(splatgen.assets.__path__))) / "examples"


def example_images() -> list[Path]:
    """The example photos shipped with splatgen, by name."""
    d = examples_dir()
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if d.is_dir() else []


def example_icon(path: Path) -> QIcon:
    """An example photo's icon: the object cropped out of its transparent surroundings."""
    try:
        from splatgen.core.image_loading import open_image

        with open_image(path) as im:
            im = im.convert("RGBA")
            box = im.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
            if box:
                x0, y0, x1, y1 = box
                side = max(x1 - x0, y1 - y0) + 8
                cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
                im = im.crop((cx - side // 2, cy - side // 2, cx + side - side // 2, cy + side - side // 2))
            return QIcon(QPixmap.fromImage(array_to_qimage(np.asarray(im))))
    except Exception:  # noqa: BLE001 - any picture will do for an icon
        return QIcon(str(path))


def checkerboard(h: int, w: int, cell: int = 8) -> np.ndarray:
    """``(h, w, 3)`` float light-grey checkerboard (shows transparency)."""
    yy, xx = np.mgrid[:h, :w]
    c = ((yy // cell + xx // cell) % 2).astype(np.float32)
    return np.repeat((0.82 + 0.1 * c)[..., None], 3, axis=2)


def over_checkerboard(rgba: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 straight RGBA → ``(H, W, 3)`` uint8 over a checkerboard."""
    rgba = np.asarray(rgba)
    if rgba.shape[2] == 3:
        return rgba
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = checkerboard(*rgba.shape[:2], cell=max(4, rgba.shape[0] // 16))
    out = rgba[..., :3].astype(np.float32) / 255.0 * a + bg * (1 - a)
    return to_uint8(out)


class ImageLabel(QWidget):
    """A picture drawn scaled to fit (aspect kept; smooth when shrinking, sharp pixels when
    enlarging). Painted, not a ``QLabel`` pixmap, so its size hint never follows the picture (a label
    that resizes its pixmap on resize can make layouts oscillate)."""

    def __init__(self, placeholder: str = "", parent=None, min_side: int = 96):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._placeholder = placeholder
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(160, 160)

    def set_array(self, array: np.ndarray | None) -> None:
        self._pixmap = None if array is None else QPixmap.fromImage(array_to_qimage(np.asarray(array, np.uint8)))
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        r = self.rect().adjusted(0, 0, -1, -1)
        p.fillRect(r, pal.base())
        p.setPen(pal.mid().color())
        p.drawRect(r)
        if self._pixmap is None:
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, self._placeholder)
            return
        target = self.target_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, target.width() < self._pixmap.width())
        p.drawPixmap(target, self._pixmap)
        self.paint_over(p, target)

    def target_rect(self) -> QRect:
        """Where the picture is drawn (widget pixels)."""
        avail = self.rect().adjusted(0, 0, -1, -1).adjusted(2, 2, -1, -1)
        if self._pixmap is None:
            return avail
        pw, ph = self._pixmap.width(), self._pixmap.height()
        s = min(avail.width() / pw, avail.height() / ph)
        w, h = max(1, int(pw * s)), max(1, int(ph * s))
        return QRect(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2, w, h)

    def paint_over(self, p: QPainter, target: QRect) -> None:
        """Drawn on top of the picture (nothing here)."""


class PaintableImage(ImageLabel):
    """The original photo, on which the cut-out's hints are painted: ``mode`` ``"fg"`` / ``"bg"`` (a
    brush stroke, emitted as ``stroke_painted(Stroke)``), ``"rect"`` (a dragged box, emitted as
    ``rect_dragged((x0, y0, x1, y1))``) or None (no painting). Coordinates are normalised to the
    picture; the hints so far (:meth:`set_hints`) are drawn over it."""

    stroke_painted = pyqtSignal(object)
    rect_dragged = pyqtSignal(object)
    BRUSH_RADIUS = 0.012  # of the photo's longer side

    def __init__(self, placeholder: str = "", parent=None, min_side: int = 96):
        super().__init__(placeholder, parent, min_side)
        self.mode: str | None = None
        self._drag: list[tuple[float, float]] = []
        self._hints: Cutout | None = None

    def set_hints(self, cutout: Cutout | None) -> None:
        self._hints = cutout
        self.update()

    def to_image(self, pos) -> tuple[float, float]:
        t = self.target_rect()
        return (min(1.0, max(0.0, (pos.x() - t.x()) / max(1, t.width()))),
                min(1.0, max(0.0, (pos.y() - t.y()) / max(1, t.height()))))

    def mousePressEvent(self, event) -> None:
        if self.mode is None or not self.has_image() or event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self._drag = [self.to_image(event.position())]
        self.update()

    def mouseMoveEvent(self, event) -> None:
        if not self._drag:
            return super().mouseMoveEvent(event)
        pt = self.to_image(event.position())
        if self.mode == "rect":
            self._drag = [self._drag[0], pt]
        else:
            self._drag.append(pt)
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        if not self._drag:
            return super().mouseReleaseEvent(event)
        self._drag.append(self.to_image(event.position()))
        pts, self._drag = self._drag, []
        self.update()
        if self.mode == "rect":
            (x0, y0), (x1, y1) = pts[0], pts[-1]
            if abs(x1 - x0) > 0.02 and abs(y1 - y0) > 0.02:
                self.rect_dragged.emit((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        elif self.mode in ("fg", "bg"):
            self.stroke_painted.emit(Stroke(self.mode == "fg", tuple(pts), self.BRUSH_RADIUS))

    def paint_over(self, p: QPainter, t: QRect) -> None:
        side = max(t.width(), t.height())

        def pt(x, y):
            return QPointF(t.x() + x * t.width(), t.y() + y * t.height())

        def box(r, colour):
            p.setPen(QPen(colour, 2, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(pt(r[0], r[1]), pt(r[2], r[3])))

        def line(points, colour, radius):
            pen = QPen(colour, max(2.0, 2 * radius * side))
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            p.setPen(pen)
            qp = [pt(*q) for q in points]
            if len(qp) == 1:
                p.drawPoint(qp[0])
            for a, b in zip(qp, qp[1:]):
                p.drawLine(a, b)

        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        fg, bg = QColor(40, 200, 60, 170), QColor(230, 50, 50, 170)
        if self._hints is not None:
            if self._hints.rect is not None:
                box(self._hints.rect, QColor(40, 120, 230))
            for s in self._hints.strokes:
                line(s.points, fg if s.foreground else bg, s.radius)
        if self._drag:
            if self.mode == "rect" and len(self._drag) > 1:
                box((*self._drag[0], *self._drag[-1]), QColor(40, 120, 230))
            elif self.mode in ("fg", "bg"):
                line(self._drag, fg if self.mode == "fg" else bg, self.BRUSH_RADIUS)


class InputPanel(QGroupBox):
    open_requested = pyqtSignal()
    image_chosen = pyqtSignal(str)
    preparation_changed = pyqtSignal()
    cutout_changed = pyqtSignal()
    camera_changed = pyqtSignal()

    def __init__(self, default_ratio: float, parent=None):
        super().__init__("Input", parent)
        self.setObjectName("inputPanel")
        self.default_ratio = float(default_ratio)
        self.path: str | None = None      # the photo shown
        self.runner = None                # the worker for cut-out jobs (None: the window's io runner, else our own)
        self._own_runner = None
        layout = QVBoxLayout(self)

        row = QHBoxLayout()
        self.open_button = QPushButton("Open image…", objectName="openImage")
        self.open_button.setToolTip("Open a photo (Ctrl+O), or drop an image file anywhere on the window")
        self.open_button.clicked.connect(self.open_requested)
        row.addWidget(self.open_button)
        self.example_buttons: list[QToolButton] = []
        for path in example_images():
            b = QToolButton(objectName=f"example_{path.stem}")
            b.setIcon(example_icon(path))
            b.setIconSize(QSize(36, 36))
            b.setToolTip(f"Example: {path.stem.replace('_', ' ')}")
            b.setAutoRaise(True)
            b.clicked.connect(lambda _=False, p=str(path): self.image_chosen.emit(p))
            row.addWidget(b)
            self.example_buttons.append(b)
        row.addStretch(1)
        layout.addLayout(row)

        grid = QGridLayout()
        self.original = PaintableImage("drop an image here")
        self.original.stroke_painted.connect(self.add_stroke)
        self.original.rect_dragged.connect(self.set_rect)
        self.prepared = ImageLabel("")
        self.mask = ImageLabel("")
        for w in (self.prepared, self.mask):
            w.setMinimumSize(80, 80)
        grid.addWidget(QLabel("Original"), 0, 0)
        grid.addWidget(self.original, 1, 0, 1, 2)
        grid.addWidget(QLabel("Model input"), 2, 0)
        grid.addWidget(QLabel("Mask"), 2, 1)
        grid.addWidget(self.prepared, 3, 0)
        grid.addWidget(self.mask, 3, 1)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(3, 2)
        layout.addLayout(grid, 1)

        ratio_row = QHBoxLayout()
        ratio_row.addWidget(QLabel("Object size"))
        self.ratio_slider = QSlider(Qt.Orientation.Horizontal, objectName="ratioSlider", minimum=20, maximum=100)
        self.ratio = QDoubleSpinBox(objectName="foregroundRatio", decimals=2, minimum=0.2, maximum=1.0, singleStep=0.01)
        tip = ("Foreground ratio: the object's longer side as a fraction of the model input "
               f"(training views: {self.default_ratio:.2f} on average)")
        self.ratio.setToolTip(tip)
        self.ratio_slider.setToolTip(tip)
        self.ratio_reset = QToolButton(text="↺", objectName="ratioReset")
        self.ratio_reset.setToolTip(f"Back to {self.default_ratio:.2f}")
        ratio_row.addWidget(self.ratio_slider, 1)
        ratio_row.addWidget(self.ratio)
        ratio_row.addWidget(self.ratio_reset)
        layout.addLayout(ratio_row)
        self.ratio_slider.valueChanged.connect(lambda v: self.ratio.setValue(v / 100.0))
        self.ratio.valueChanged.connect(self._ratio_changed)
        self.ratio_reset.clicked.connect(lambda: self.ratio.setValue(self.default_ratio))

        fix_row = QHBoxLayout()
        fix_row.addWidget(QLabel("Fix cut-out"))
        self.brush_group = QButtonGroup(self)
        self.brush_group.setExclusive(False)
        self.brush_buttons: dict[str, QToolButton] = {}
        for mode, text, tip in (("fg", "Object", "Paint over parts of the object the cut-out missed"),
                                ("bg", "Background", "Paint over background the cut-out kept"),
                                ("rect", "Box", "Drag a box around the object to start the cut-out afresh")):
            b = QToolButton(text=text, objectName=f"cutout_{mode}", checkable=True)
            b.setToolTip(tip)
            b.toggled.connect(lambda on, m=mode: self.set_brush(m if on else None))
            self.brush_group.addButton(b)
            self.brush_buttons[mode] = b
            fix_row.addWidget(b)
        self.cutout_reset = QToolButton(text="Reset", objectName="cutoutReset")
        self.cutout_reset.setToolTip("Forget the painted hints: back to the automatic cut-out")
        self.cutout_reset.clicked.connect(self.reset_cutout)
        fix_row.addWidget(self.cutout_reset)
        fix_row.addStretch(1)
        layout.addLayout(fix_row)

        self._build_camera_rows(layout)

        self.skip_bg = QCheckBox("Skip background removal", objectName="skipBackground")
        self.skip_bg.setToolTip("Use the image as it is: its alpha channel if it has one, else the whole picture "
                                "is the object")
        self.skip_bg.toggled.connect(lambda _: self.preparation_changed.emit())
        layout.addWidget(self.skip_bg)

        self.info = QLabel("", objectName="inputInfo")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.info)
        self.set_ratio(self.default_ratio)

    # ------------------------------------------------------------------ the photo's camera
    def _build_camera_rows(self, layout) -> None:
        self.estimate: photo_camera.ElevationEstimate | None = None   # of the shown input
        self.elevation_auto = True
        self._cameras: dict[str, tuple[float | None, float]] = {}    # photo → (elevation or None = auto, fov)
        self._prepared_rgb: np.ndarray | None = None
        lo, hi = photo_camera.ELEVATION_LIMITS_DEG
        row = QHBoxLayout()
        row.addWidget(QLabel("Elevation"))
        self.elevation_slider = QSlider(Qt.Orientation.Horizontal, objectName="photoElevationSlider",
                                        minimum=int(lo), maximum=int(hi))
        self.elevation = QDoubleSpinBox(objectName="photoElevation", decimals=1, minimum=lo, maximum=hi, singleStep=1.0,
                                        suffix=" °")
        tip = ("The photo's camera height above the object's horizon: it decides which way is up in the result. "
               "Auto: estimated from the model input (the estimator knows -10° to 40°; set a steeper photo by hand)")
        for w in (self.elevation_slider, self.elevation):
            w.setToolTip(tip)
        self.elevation_auto_button = QToolButton(text="Auto", objectName="photoElevationAuto", checkable=True)
        self.elevation_auto_button.setToolTip("Use the estimated elevation")
        row.addWidget(self.elevation_slider, 1)
        row.addWidget(self.elevation)
        row.addWidget(self.elevation_auto_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Field of view"))
        flo, fhi = photo_camera.FOV_LIMITS_DEG
        self.fov_slider = QSlider(Qt.Orientation.Horizontal, objectName="photoFovSlider", minimum=int(flo), maximum=int(fhi))
        self.fov = QDoubleSpinBox(objectName="photoFov", decimals=1, minimum=flo, maximum=fhi, singleStep=1.0, suffix=" °")
        tip = (f"The model input's field of view. The models were all trained at {framing.FOV_DEG:g}°: another "
               "value is recorded with the samples and drawn here, and the model says it assumed "
               f"{framing.FOV_DEG:g}°")
        for w in (self.fov_slider, self.fov):
            w.setToolTip(tip)
        self.fov_reset = QToolButton(text="↺", objectName="photoFovReset")
        self.fov_reset.setToolTip(f"Back to {framing.FOV_DEG:g}°")
        self.camera_guide = QCheckBox("Camera guide", objectName="cameraGuide", checked=True)
        self.camera_guide.setToolTip("Draw the chosen camera's ground grid (blue), up axis (red) and horizon (green) "
                                     "over the model input")
        row.addWidget(self.fov_slider, 1)
        row.addWidget(self.fov)
        row.addWidget(self.fov_reset)
        layout.addLayout(row)
        layout.addWidget(self.camera_guide)
        self.elevation_slider.valueChanged.connect(lambda v: self.elevation.setValue(float(v)))
        self.elevation.valueChanged.connect(self._elevation_changed)
        self.elevation_auto_button.toggled.connect(self._auto_toggled)
        self.fov_slider.valueChanged.connect(lambda v: self.fov.setValue(float(v)))
        self.fov.valueChanged.connect(self._fov_changed)
        self.fov_reset.clicked.connect(lambda: self.fov.setValue(framing.FOV_DEG))
        self.camera_guide.toggled.connect(lambda _: self._show_guide())
        self._set_camera(None, framing.FOV_DEG)

    def _set_camera(self, elevation: float | None, fov: float) -> None:
        """Show ``elevation`` (None: auto, the estimate) and ``fov`` without emitting per widget."""
        self.elevation_auto = elevation is None
        value = self.auto_elevation() if elevation is None else float(elevation)
        widgets = (self.elevation, self.elevation_slider, self.elevation_auto_button, self.fov, self.fov_slider)
        for w in widgets:
            w.blockSignals(True)
        self.elevation.setValue(value)
        self.elevation_slider.setValue(round(value))
        self.elevation_auto_button.setChecked(self.elevation_auto)
        self.fov.setValue(float(fov))
        self.fov_slider.setValue(round(float(fov)))
        for w in widgets:
            w.blockSignals(False)
        self._camera_edited(emit=False)

    def auto_elevation(self) -> float:
        """The elevation *auto* stands for: the estimate of the shown input, else the canonical one."""
        return self.estimate.elevation_deg if self.estimate is not None else float(framing.INPUT_ELEVATION_DEG)

    def _elevation_changed(self, value: float) -> None:
        self.elevation_slider.blockSignals(True)
        self.elevation_slider.setValue(round(value))
        self.elevation_slider.blockSignals(False)
        self.elevation_auto = False
        self.elevation_auto_button.blockSignals(True)
        self.elevation_auto_button.setChecked(False)
        self.elevation_auto_button.blockSignals(False)
        self._camera_edited()

    def _auto_toggled(self, on: bool) -> None:
        if on:
            self._set_camera(None, self.fov.value())
            self.camera_changed.emit()
        else:
            self.elevation_auto = False
            self._camera_edited()

    def _fov_changed(self, value: float) -> None:
        self.fov_slider.blockSignals(True)
        self.fov_slider.setValue(round(value))
        self.fov_slider.blockSignals(False)
        self._camera_edited()

    def _camera_edited(self, emit: bool = True) -> None:
        if self.path:
            self._cameras[self.path] = self.camera_setting()
        if self.elevation_auto:
            how = (f"auto: estimated, ±{self.estimate.spread_deg:.0f}°" if self.estimate is not None
                   else "auto: no estimator, the canonical elevation")
        else:
            how = "set by hand"
        self.elevation_auto_button.setToolTip(f"Use the estimated elevation (now {how})")
        self.elevation.setPrefix("auto " if self.elevation_auto else "")
        self._show_guide()
        if emit:
            self.camera_changed.emit()

    def camera_setting(self) -> tuple[float | None, float]:
        """(elevation in degrees, or None for auto = the estimate; field of view in degrees) for a request."""
        return (None if self.elevation_auto else float(self.elevation.value())), float(self.fov.value())

    def camera_values(self) -> tuple[float, float]:
        """The elevation and field of view shown (auto resolved to the estimate), degrees."""
        return float(self.elevation.value()), float(self.fov.value())

    def _show_guide(self) -> None:
        rgb = self._prepared_rgb
        if rgb is None:
            return
        if self.camera_guide.isChecked():
            elevation, fov = self.camera_values()
            rgb = photo_camera.draw_ground_grid(rgb, elevation, fov)
        self.prepared.set_array(rgb)

    # ------------------------------------------------------------------ values
    def set_ratio(self, value: float) -> None:
        self.ratio.blockSignals(True)
        self.ratio_slider.blockSignals(True)
        self.ratio.setValue(value)
        self.ratio_slider.setValue(round(value * 100))
        self.ratio.blockSignals(False)
        self.ratio_slider.blockSignals(False)

    def _ratio_changed(self, value: float) -> None:
        self.ratio_slider.blockSignals(True)
        self.ratio_slider.setValue(round(value * 100))
        self.ratio_slider.blockSignals(False)
        self.preparation_changed.emit()

    def foreground_ratio(self) -> float:
        return float(self.ratio.value())

    def remove_background(self) -> bool:
        return not self.skip_bg.isChecked()

    # ------------------------------------------------------------------ the cut-out
    def set_brush(self, mode: str | None) -> None:
        """``"fg"`` / ``"bg"`` (paint strokes), ``"rect"`` (drag a box) or None (no painting)."""
        for m, b in self.brush_buttons.items():
            b.blockSignals(True)
            b.setChecked(m == mode)
            b.blockSignals(False)
        self.original.mode = mode
        self.original.setCursor(Qt.CursorShape.ArrowCursor if mode is None else Qt.CursorShape.CrossCursor)

    def cutout(self) -> Cutout | None:
        """The shown photo's corrected cut-out (None: the automatic one)."""
        return tasks.cutouts().get(self.path) if self.path else None

    def add_stroke(self, stroke: Stroke) -> None:
        old = self.cutout() or Cutout()
        self._refine(Cutout(strokes=[*old.strokes, stroke], rect=old.rect, mask=old.mask))

    def set_rect(self, rect) -> None:
        self._refine(Cutout(strokes=[], rect=tuple(float(v) for v in rect), mask=None))

    def reset_cutout(self) -> None:
        if self.path and self.cutout() is not None:
            tasks.cutouts().set(self.path, None)
            self.original.set_hints(None)
            self.cutout_changed.emit()
            self.preparation_changed.emit()

    def _runner(self):
        if self.runner is not None:
            return self.runner
        io = getattr(self.window(), "io", None)
        from .worker import Runner

        if isinstance(io, Runner):
            return io
        if self._own_runner is None:
            self._own_runner = Runner(self, name="splatgen-cutout")
        return self._own_runner

    def _refine(self, cutout: Cutout) -> None:
        if not self.path:
            return
        from .worker import Job

        path = self.path
        self.original.set_hints(cutout)
        self.info.setText(self.info.text().split(" · refining")[0] + " · refining the cut-out…")

        def done(mask) -> None:
            cutout.mask = mask
            try:
                tasks.cutouts().set(path, cutout)
            except OSError:
                return
            self.cutout_changed.emit()
            self.preparation_changed.emit()

        def failed(exc) -> None:
            self.original.set_hints(self.cutout())
            self.info.setText(f"the cut-out could not be refined: {rich_escape(str(exc))}")

        self._runner().submit(Job("cutout", tasks.refine_cutout(path, cutout), f"refine the cut-out of {path}",
                                  on_done=done, on_error=failed), replace=True)

    def shutdown(self) -> None:
        """Stop the panel's own worker thread, if it made one."""
        if self._own_runner is not None:
            self._own_runner.shutdown()
            self._own_runner = None

    # ------------------------------------------------------------------ results
    def show_prepared(self, prepared, path: str) -> None:
        """Show a :class:`~splatgen.core.imageprep.PreparedImage`."""
        self.path = str(path)
        self.original.set_hints(self.cutout())
        self.original.set_array(over_checkerboard(prepared.original))
        rgb = to_uint8(prepared.image[:3].permute(1, 2, 0).numpy())
        self._prepared_rgb = rgb
        self.prepared.set_array(rgb)
        try:
            self.estimate = photo_camera.estimate_elevation(prepared.image)
        except Exception:  # noqa: BLE001 - a broken estimator folder: the canonical elevation, said in the tooltip
            self.estimate = None
        self._set_camera(*self._cameras.get(self.path, (None, framing.FOV_DEG)))
        self.mask.set_array(np.repeat(to_uint8(np.asarray(prepared.mask))[..., None], 3, 2))
        how, tip = {"alpha": ("alpha mask", "The mask is the image's alpha channel"),
                    "grabcut": ("background cut out", "The background was removed (GrabCut)"),
                    "none": ("whole image", "The whole image is the object (no background removal)"),
                    "mask": ("cut-out fixed by hand", "The mask is the cut-out corrected with painted hints")
                    }.get(getattr(prepared, "mask_source", ""), ("", ""))
        w, h = getattr(prepared, "source_size", (0, 0)) or (0, 0)
        size = f" · {w}×{h}" if w else ""
        self.info.setText(f"<b>{rich_escape(Path(path).name)}</b>{size} · {how}")
        self.info.setToolTip(plain_tooltip(f"{path}\n{tip}; the object spans {prepared.foreground_ratio:.2f} "
                                           "of the model input"))

    def clear(self) -> None:
        for w in (self.original, self.prepared, self.mask):
            w.set_array(None)
        self.path = None
        self._prepared_rgb, self.estimate = None, None
        self.original.set_hints(None)
        self.info.setText("")
