"""The live viewport: one sample, orbitable, with a brush for region resampling.

:class:`Viewport` is a :class:`~splatgen.app.splat_view.SplatView` (camera, modes, moving
resolution, overlay) that shows one sample, or a preview of an edit on it in its place
(:meth:`Viewport.set_preview`: the clean-up's, with its crop box drawn as a wireframe). In brush
mode the left button paints the region to resample (right button erases, wheel sizes the brush);
:meth:`Viewport.brush_request` hands the painted mask ``(H, W)`` bool with the camera it was painted
in (framebuffer pixels).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen

from .orbit_camera import OrbitCamera
from .splat_view import SplatView
from .viewport_renderer import ViewportRenderer

#: The display modes that colour each splat by a value (splatgen.core.provenance) and draw it as RGB.
VALUE_MODES = ("observed", "spread")

class Viewport(SplatView):
    """One sample, orbitable, with a brush for region resampling."""

    brush_changed = pyqtSignal(bool)     # whether something is painted
    brush_exit_requested = pyqtSignal()  # Esc in brush mode
    brush_apply_requested = pyqtSignal()  # Enter in brush mode

    def __init__(self, camera: OrbitCamera | None = None, parent=None, backend: str = "auto"):
        super().__init__(camera, parent, backend)
        self.renderer: ViewportRenderer | None = None
        self.sample = None
        self.preview = None             # Gaussians shown instead of the sample's (an edit's preview)
        #: (sample, mode) → the sample recoloured by a per-splat value, or None (main_window's value_colours)
        self.value_colours = None
        self._value_cache = (None, None, None)
        self.preview_box = None         # ((x0, y0, z0), (x1, y1, z1)) object-frame box drawn over it
        self.brush_mode = False
        self.brush_radius = 18.0        # widget pixels
        self._brush_img: QImage | None = None
        self._brush_painted = False
        self._brush_camera = None
        self._cursor = None
        self.render_scene = True        # False: show the background only (tests, "hidden")
        self.setObjectName("viewport")

    # ------------------------------------------------------------------ scene
    def init_scene(self) -> None:
        self.renderer = self.make_renderer()
        shown = self._shown()
        if shown is not None:
            self.renderer.set_gaussians(shown)

    def release_scene(self) -> None:
        if self.renderer is not None:
            self.renderer.release()
            self.renderer = None

    def set_sample(self, sample, *, reset_camera: bool = False) -> None:
        """Show ``sample`` (None: nothing); the camera stays unless ``reset_camera``."""
        first = self.sample is None
        self.sample = sample
        self.preview = self.preview_box = None
        self.clear_brush()
        self._upload()
        if sample is not None and (reset_camera or first):
            self.camera.reset(sample.input_viewmat.detach().cpu().numpy())
            self.camera_changed.emit()
        self.update()

    def set_preview(self, gaussians, box=None) -> None:
        """Show ``gaussians`` ``(N,)`` in place of the sample's, and the box ``((x0, y0, z0), (x1, y1,
        z1))`` (object frame) as a wireframe; ``None``: back to the sample. Another sample ends it."""
        self.preview, self.preview_box = gaussians, box
        self._upload()
        self.update()

    def shown_gaussians(self):
        """The Gaussians the view draws ``(N,)``: an edit's preview, else the sample's (recoloured in
        a value mode), else None (screenshots at any size render these)."""
        return self._shown()

    def _shown(self):
        """The Gaussians on screen: the preview's, else the sample's (recoloured in a value mode), else None."""
        if self.preview is not None:
            return self.preview
        if self.sample is None:
            return None
        if self.mode in VALUE_MODES and self.value_colours is not None:
            sample, mode, coloured = self._value_cache
            if sample is not self.sample or mode != self.mode:
                coloured = self.value_colours(self.sample, self.mode)
                self._value_cache = (self.sample, self.mode, coloured)
            if coloured is not None:
                return coloured
        return self.sample.gaussians

    def set_mode(self, mode: str) -> None:
        changed = (mode in VALUE_MODES) != (self.mode in VALUE_MODES) or mode in VALUE_MODES
        super().set_mode(mode)
        if changed:
            self._upload()

    def _upload(self) -> None:
        if self.renderer is not None and self.ctx is not None:
            self.makeCurrent()
            try:
                self.renderer.set_gaussians(self._shown())
            finally:
                self.doneCurrent()

    def draw_scene(self, fbo, width, height, scale):
        if self.renderer is None:
            return super().draw_scene(fbo, width, height, scale)
        return self.renderer.draw(fbo, self.camera.viewmat(), self.camera.intrinsics(width, height), width, height,
                                  scale=scale, mode="rgb" if self.mode in VALUE_MODES else self.mode,
                                  background=self.background)

    def overlay_lines(self) -> list[str]:
        n = self.renderer.num_splats if self.renderer is not None else 0
        w, h = self.last_resolution
        fw, fh = self.device_size()
        res = f"{w}×{h}" + ("" if (w, h) == (fw, fh) or not w else f" of {fw}×{fh} (moving)")
        lines = [f"{self.fps():.0f} FPS · {n:,} splats · {res}" if n else "no sample — drop an image, then Generate"]
        if n:
            lines.append(f"{self.mode} · {self.renderer_name.split('(')[0].strip()}")
        if self.preview is not None:
            lines.insert(0, "clean-up preview (Apply removes what is tinted or hidden)")
        if self.brush_mode:
            lines.insert(0, "brush: left paints, right erases, wheel sizes · Enter resamples · Esc leaves")
        return lines

    def frame_object(self) -> None:
        if self.sample is None:
            return
        g = self.sample.gaussians
        self.camera.frame(g.means.detach().cpu().numpy(), g.opacities.detach().cpu().numpy())
        self.camera_moved(settle=False)

    def reset_camera(self) -> None:
        vm = None if self.sample is None else self.sample.input_viewmat.detach().cpu().numpy()
        self.camera.reset(vm)
        self.clear_brush()
        self.camera_moved(settle=False)

    # ------------------------------------------------------------------ brush
    def set_brush_mode(self, on: bool) -> None:
        self.brush_mode = bool(on)
        if not on:
            self.clear_brush()
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.setMouseTracking(on)
        self.update()

    def camera_locked(self) -> bool:
        return self.brush_mode

    def clear_brush(self) -> None:
        had = self._brush_painted
        self._brush_img = None
        self._brush_painted = False
        self._brush_camera = None
        if had:
            self.brush_changed.emit(False)
        self.update()

    @property
    def has_brush(self) -> bool:
        return self._brush_painted

    def _ensure_brush(self) -> QImage:
        w, h = self.device_size()
        if self._brush_img is None or (self._brush_img.width(), self._brush_img.height()) != (w, h):
            self._brush_img = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
            self._brush_img.fill(Qt.GlobalColor.transparent)
            self._brush_painted = False
            self._brush_camera = (self.camera.viewmat(), self.camera.intrinsics(w, h), (w, h))
        return self._brush_img

    def paint_brush(self, pos: QPointF, erase: bool = False) -> None:
        """Paint (or erase) a disc at widget position ``pos``."""
        img = self._ensure_brush()
        dpr = self.devicePixelRatioF()
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 0) if erase else QColor(255, 40, 40, 110))
        r = self.brush_radius * dpr
        p.drawEllipse(QPointF(pos.x() * dpr, pos.y() * dpr), r, r)
        p.end()
        was = self._brush_painted
        self._brush_painted = bool(self.brush_mask().any())
        if was != self._brush_painted:
            self.brush_changed.emit(self._brush_painted)
        self.update()

    def brush_mask(self) -> np.ndarray:
        """The painted region ``(H, W)`` bool in framebuffer pixels (all False when none)."""
        if self._brush_img is None:
            w, h = self.device_size()
            return np.zeros((h, w), bool)
        img = self._brush_img
        bpl = img.bytesPerLine()
        buf = np.frombuffer(img.constBits().asstring(bpl * img.height()), np.uint8).reshape(img.height(), bpl)
        argb = buf[:, : img.width() * 4].reshape(img.height(), img.width(), 4)
        return argb[..., 3] > 0

    def brush_request(self):
        """``(mask (H, W) bool, viewmat (4, 4), K (3, 3))`` of the painted region, or None."""
        if not self._brush_painted or self._brush_camera is None:
            return None
        vm, K, _ = self._brush_camera
        return self.brush_mask(), vm, K

    def keyPressEvent(self, event) -> None:
        if self.brush_mode and event.key() == Qt.Key.Key_Escape:
            self.brush_exit_requested.emit()
        elif self.brush_mode and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.brush_apply_requested.emit()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:
        if self.brush_mode and self.sample is not None:
            self.setFocus()
            self._drag_button = event.button()
            self.paint_brush(event.position(), erase=event.button() != Qt.MouseButton.LeftButton)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self.brush_mode:
            self._cursor = event.position()
            if self._drag_button is not None and self.sample is not None:
                self.paint_brush(event.position(), erase=self._drag_button != Qt.MouseButton.LeftButton)
            else:
                self.update()
            return
        super().mouseMoveEvent(event)

    def wheelEvent(self, event) -> None:
        if self.brush_mode:
            steps = event.angleDelta().y() / 120.0
            self.brush_radius = float(min(200.0, max(3.0, self.brush_radius * 1.15 ** steps)))
            self.update()
            return
        super().wheelEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._brush_painted:
            self.clear_brush()

    def box_lines(self) -> list[tuple[QPointF, QPointF]]:
        """The edges of :attr:`preview_box` in widget coordinates (edges behind the camera left out)."""
        if self.preview_box is None:
            return []
        lo, hi = (np.asarray(c, np.float64) for c in self.preview_box)
        corners = np.array([[(hi if i & 1 else lo)[0], (hi if i & 2 else lo)[1], (hi if i & 4 else lo)[2], 1.0]
                            for i in range(8)])
        w, h = self.device_size()
        cam = corners @ self.camera.viewmat().T
        pix = cam[:, :3] @ np.asarray(self.camera.intrinsics(w, h), np.float64).T
        dpr = self.devicePixelRatioF()
        out = []
        for a in range(8):
            for bit in (1, 2, 4):
                b = a | bit
                if b != a and cam[a, 2] > 1e-3 and cam[b, 2] > 1e-3:
                    pa, pb = pix[a, :2] / pix[a, 2] / dpr, pix[b, :2] / pix[b, 2] / dpr
                    out.append((QPointF(*pa), QPointF(*pb)))
        return out

    def draw_overlay(self, painter: QPainter) -> None:
        edges = self.box_lines()
        if edges:
            painter.setPen(QPen(QColor(255, 160, 0), 1.5, Qt.PenStyle.DashLine))
            for a, b in edges:
                painter.drawLine(a, b)
        if self._brush_img is not None and self._brush_painted:
            painter.drawImage(QRectF(self.rect()), self._brush_img)
        if self.brush_mode and self._cursor is not None:
            painter.setPen(QPen(QColor(255, 60, 60), 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._cursor, self.brush_radius, self.brush_radius)
        super().draw_overlay(painter)
