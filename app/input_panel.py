"""The input panel: where a photo comes in and how it was prepared for the model.

Shows the example photos shipped in ``assets/examples/`` (one click loads one), an Open button,
the original image, the prepared 128² input (the object cropped, centred, scaled and composited on
the training background) and its mask, the foreground-ratio control (the object's longer side as a
fraction of the input) and "skip background removal". Preparation itself runs in the worker; this
widget only shows results. Signals: ``open_requested()``, ``image_chosen(str path)``,
``preparation_changed()`` (ratio or background option edited).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import QRect, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QPainter, QPixmap
from PyQt6.QtWidgets import (QCheckBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                             QPushButton, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from splatgen.core.images import to_uint8

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
        avail = r.adjusted(2, 2, -1, -1)
        pw, ph = self._pixmap.width(), self._pixmap.height()
        s = min(avail.width() / pw, avail.height() / ph)
        w, h = max(1, int(pw * s)), max(1, int(ph * s))
        target = QRect(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2, w, h)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, s < 1.0)
        p.drawPixmap(target, self._pixmap)


class InputPanel(QGroupBox):
    open_requested = pyqtSignal()
    image_chosen = pyqtSignal(str)
    preparation_changed = pyqtSignal()

    def __init__(self, default_ratio: float, parent=None):
        super().__init__("Input", parent)
        self.setObjectName("inputPanel")
        self.default_ratio = float(default_ratio)
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
        self.original = ImageLabel("drop an image here")
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

        self.skip_bg = QCheckBox("Skip background removal", objectName="skipBackground")
        self.skip_bg.setToolTip("Use the image as it is: its alpha channel if it has one, else the whole picture "
                                "is the object")
        self.skip_bg.toggled.connect(lambda _: self.preparation_changed.emit())
        layout.addWidget(self.skip_bg)

        self.info = QLabel("", objectName="inputInfo")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.info)
        self.set_ratio(self.default_ratio)

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

    # ------------------------------------------------------------------ results
    def show_prepared(self, prepared, path: str) -> None:
        """Show a :class:`~splatgen.core.imageprep.PreparedImage`."""
        self.original.set_array(over_checkerboard(prepared.original))
        rgb = to_uint8(prepared.image[:3].permute(1, 2, 0).numpy())
        self.prepared.set_array(rgb)
        self.mask.set_array(np.repeat(to_uint8(np.asarray(prepared.mask))[..., None], 3, 2))
        how, tip = {"alpha": ("alpha mask", "The mask is the image's alpha channel"),
                    "grabcut": ("background cut out", "The background was removed (GrabCut)"),
                    "none": ("whole image", "The whole image is the object (no background removal)")
                    }.get(getattr(prepared, "mask_source", ""), ("", ""))
        w, h = getattr(prepared, "source_size", (0, 0)) or (0, 0)
        size = f" · {w}×{h}" if w else ""
        self.info.setText(f"<b>{rich_escape(Path(path).name)}</b>{size} · {how}")
        self.info.setToolTip(plain_tooltip(f"{path}\n{tip}; the object spans {prepared.foreground_ratio:.2f} "
                                           "of the model input"))

    def clear(self) -> None:
        for w in (self.original, self.prepared, self.mask):
            w.set_array(None)
        self.info.setText("")
