"""The strip of generated views under the viewport, for samples of the multi-view generator.

The multi-view generator (:mod:`splatgen.core.generator.multi_view`) keeps the N views it generated
in each sample: ``sample.info["views"]`` ``(N, 4, S, S)`` RGBA in [0, 1] (straight alpha) and their
cameras ``sample.info["view_viewmats"]`` ``(N, 4, 4)`` (OpenCV world-to-camera, object frame).
:class:`GeneratedViews` shows them as thumbnails, each composited over the viewport's background
colour (``rgb·α + background·(1 − α)``) and labelled with its azimuth in degrees (from its camera,
as :meth:`~.orbit_camera.OrbitCamera.reset` measures it; ``360°·k/N`` when there are no cameras).
Clicking view ``k`` emits ``view_chosen(k, viewmat | None)``: the window turns the orbit camera to it,
so the generated view and the splats' render from the same camera can be compared. Samples of other
generators have no views: :meth:`GeneratedViews.set_sample` returns False and the strip is empty.
"""

from __future__ import annotations

import math

import numpy as np
from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import QHBoxLayout, QScrollArea, QToolButton, QWidget

from .splat_view import array_to_qimage

#: Shown size of a thumbnail, pixels.
THUMB_PX = 96


def view_azimuths(viewmats, n: int) -> list[float]:
    """Azimuths in degrees [0, 360) of ``n`` views: from ``viewmats`` ``(n, 4, 4)`` (the camera centre
    around the origin, azimuth 0 on +Z), else ``360·k/n``."""
    if viewmats is None:
        return [360.0 * k / n for k in range(n)]
    out = []
    for vm in np.asarray(viewmats, np.float64).reshape(-1, 4, 4)[:n]:
        centre = -vm[:3, :3].T @ vm[:3, 3]
        out.append(math.degrees(math.atan2(centre[0], centre[2])) % 360.0)
    return out


def composite_views(views, background) -> np.ndarray:
    """``views`` ``(N, 4, S, S)`` RGBA in [0, 1] over ``background`` (r, g, b) → ``(N, S, S, 3)`` uint8."""
    v = np.asarray(views, np.float32)
    rgb, a = v[:, :3], v[:, 3:4]
    bg = np.asarray(background, np.float32).reshape(1, 3, 1, 1)
    out = np.clip(rgb * a + bg * (1.0 - a), 0.0, 1.0)
    return np.round(out.transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)


def sample_views(sample):
    """``(views (N, 4, S, S) ndarray, viewmats (N, 4, 4) ndarray | None)`` of ``sample``, or None."""
    info = getattr(sample, "info", None) or {}
    views = info.get("views")
    if views is None:
        return None
    views = views.detach().cpu().numpy() if hasattr(views, "detach") else np.asarray(views)
    if views.ndim != 4 or views.shape[1] != 4 or len(views) == 0:
        return None
    vms = info.get("view_viewmats")
    if vms is not None:
        vms = vms.detach().cpu().numpy() if hasattr(vms, "detach") else np.asarray(vms)
    return views, vms


class GeneratedViews(QScrollArea):
    """A horizontal strip of a sample's generated views (see the module docstring)."""

    view_chosen = pyqtSignal(int, object)   # index, viewmat (4, 4) ndarray or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(THUMB_PX + 44)
        self._inner = QWidget()
        self._row = QHBoxLayout(self._inner)
        self._row.setContentsMargins(2, 2, 2, 2)
        self._row.addStretch(1)
        self.setWidget(self._inner)
        self.buttons: list[QToolButton] = []
        self.azimuths: list[float] = []
        self.images: list[np.ndarray] = []   # the composited views (S, S, 3) uint8, as shown
        self.background = (1.0, 1.0, 1.0)
        self._views = None

    @property
    def has_views(self) -> bool:
        return self._views is not None

    def set_sample(self, sample) -> bool:
        """Show ``sample``'s generated views (None or a sample without them: none). Returns whether it has any."""
        self._views = sample_views(sample) if sample is not None else None
        self._fill()
        return self.has_views

    def set_background(self, rgb) -> None:
        self.background = tuple(float(c) for c in rgb)
        self._fill()

    def _fill(self) -> None:
        for b in self.buttons:
            self._row.removeWidget(b)
            b.deleteLater()
        self.buttons, self.azimuths, self.images = [], [], []
        if self._views is None:
            return
        views, vms = self._views
        self.images = list(composite_views(views, self.background))
        self.azimuths = view_azimuths(vms, len(views))
        for k, (img, az) in enumerate(zip(self.images, self.azimuths)):
            b = QToolButton()
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(img))))
            b.setIconSize(QSize(THUMB_PX, THUMB_PX))
            b.setText(f"{az:.0f}°")
            b.setToolTip(f"Generated view {k + 1} of {len(views)} at azimuth {az:.1f}°: click to see the splats "
                         "from its camera")
            vm = None if vms is None else vms[k]
            b.clicked.connect(lambda _=False, k=k, vm=vm: self.view_chosen.emit(k, vm))
            self._row.insertWidget(k, b)
            self.buttons.append(b)
