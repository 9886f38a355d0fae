"""What every splat view of the app shares: :class:`SplatView`, a ``QOpenGLWidget`` that draws splats
straight into its framebuffer.

An :class:`~splatgen.app.orbit_camera.OrbitCamera` driven by the mouse and keyboard (left drag
orbits, right or middle drag pans, the wheel zooms, arrow keys orbit, F frames the object, R returns
to the input camera), the background colour, the display mode (``"rgb"``, ``"depth"``,
``"alpha"``), reduced resolution while the camera moves when a full-resolution frame takes longer
than ~33 ms (:func:`~splatgen.app.viewport_renderer.fit_scale`; full resolution ~0.2 s after it
stops) and an overlay with FPS, splat count and resolution. Drawing goes through
:class:`~splatgen.app.viewport_renderer.ViewportRenderer` (the OpenGL splat renderer here, gsplat on
CUDA). The single-sample :class:`~splatgen.app.viewport.Viewport` and the
:class:`~splatgen.app.tiles.TiledView` are its subclasses.
"""

from __future__ import annotations

import collections
import logging
import time

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter
from PyQt6.QtOpenGLWidgets import QOpenGLWidget
from PyQt6.QtWidgets import QLabel

from .orbit_camera import KEY_ORBIT_DEG, OrbitCamera
from .viewport_renderer import TextureBlitter, ViewportRenderer, fit_scale

log = logging.getLogger("splatgen.app")

#: Seconds without camera motion before the full-resolution frame is drawn.
SETTLE_S = 0.2
#: After the view is first shown, how long Qt has to create its OpenGL context (milliseconds) before
#: the view says it has none.
CONTEXT_CHECK_MS = 1500
#: What a view without any OpenGL context says (in the view and the status bar).
NO_CONTEXT = ("The viewport cannot draw: Qt could not create an OpenGL context on this display (no GLX/EGL, "
              "or a remote or virtual display without OpenGL). Generating, the gallery, autosave and exports "
              "still work; to see the splats, use File > Show in browser, or run on a display with OpenGL "
              "(with Mesa, LIBGL_ALWAYS_SOFTWARE=1 gives a software one).")


def qimage_to_array(image: QImage) -> np.ndarray:
    """A ``QImage`` → ``(H, W, 3)`` uint8 RGB (copy)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits().asstring(bpl * h), np.uint8).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def array_to_qimage(array: np.ndarray) -> QImage:
    """``(H, W, 3|4)`` uint8 → ``QImage`` (copy)."""
    a = np.ascontiguousarray(array)
    h, w, c = a.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(a.data, w, h, w * c, fmt).copy()


def _gl_functions(qt_context):
    """Qt's OpenGL 4.1 core function table for ``qt_context`` (cached on it), or None."""
    funcs = getattr(qt_context, "_splatgen_funcs", None)
    if funcs is None:
        try:
            from PyQt6.QtOpenGL import QOpenGLVersionFunctionsFactory, QOpenGLVersionProfile
            from PyQt6.QtGui import QSurfaceFormat

            profile = QOpenGLVersionProfile()
            profile.setVersion(4, 1)
            profile.setProfile(QSurfaceFormat.OpenGLContextProfile.CoreProfile)
            funcs = QOpenGLVersionFunctionsFactory.get(profile, qt_context) or False
        except Exception:  # noqa: BLE001 - fall back to the C library
            funcs = False
        qt_context._splatgen_funcs = funcs
    return funcs or None


def _reset_gl_state(widget, ctx) -> None:
    """Put back the GL state that Qt's own painting (the overlay's text) assumes and moderngl may
    have changed: pixel (un)pack alignment 4 (else Qt's glyph uploads come out sheared), no scissor."""
    GL_UNPACK_ALIGNMENT, GL_PACK_ALIGNMENT = 0x0CF5, 0x0D05
    funcs = getattr(widget, "_gl_funcs", None)
    if funcs is None:          # looked up once per context (the lookup costs milliseconds)
        funcs = widget._gl_funcs = _gl_functions(widget.context()) or False
    funcs = funcs or None
    if funcs is not None:
        funcs.glPixelStorei(GL_UNPACK_ALIGNMENT, 4)
        funcs.glPixelStorei(GL_PACK_ALIGNMENT, 4)
    else:
        global _libgl
        if _libgl is None:
            import ctypes
            import ctypes.util

            try:
                _libgl = ctypes.CDLL(ctypes.util.find_library("GL") or "libGL.so.1")
            except OSError:
                _libgl = False
        if _libgl:
            _libgl.glPixelStorei(GL_UNPACK_ALIGNMENT, 4)
            _libgl.glPixelStorei(GL_PACK_ALIGNMENT, 4)
    ctx.scissor = None


_libgl = None


class SplatView(QOpenGLWidget):
    """Camera interaction, frame timing and overlay common to the single and tiled views.

    Subclasses implement :meth:`draw_scene` (GL drawing, the context current) and may add overlay
    text in :meth:`draw_overlay`. Signals: ``camera_changed()``, ``gl_failed(str)``,
    ``frame_drawn(float ms)``.
    """

    camera_changed = pyqtSignal()
    gl_failed = pyqtSignal(str)
    frame_drawn = pyqtSignal(float)

    def __init__(self, camera: OrbitCamera | None = None, parent=None, backend: str = "auto"):
        super().__init__(parent)
        self.camera = camera or OrbitCamera()
        self.backend_preference = backend
        self.background = (1.0, 1.0, 1.0)
        self.mode = "rgb"
        self.show_overlay = True
        self.ctx = None
        self.blitter: TextureBlitter | None = None
        self.gl_error: str | None = None
        self._message_label: QLabel | None = None
        self._context_checked = False
        self.renderer_name = ""
        self._fbo_cache: dict[int, object] = {}
        self._moving = False
        self._settle = QTimer(self, singleShot=True, interval=int(SETTLE_S * 1000))
        self._settle.timeout.connect(self._settled)
        self._drag_button = None
        self._last_pos = QPointF()
        self.full_ms: float | None = None           # last full-resolution frame, milliseconds
        self.frame_times = collections.deque(maxlen=20)   # (ms, scale) of recent frames
        self.last_resolution = (0, 0)
        self.frames_drawn = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(160, 120)
        self.setMouseTracking(False)

    # ------------------------------------------------------------------ GL lifecycle
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._context_checked:
            self._context_checked = True
            QTimer.singleShot(CONTEXT_CHECK_MS, self._check_context)

    def _check_context(self) -> None:
        """Qt never calls :meth:`initializeGL` when it cannot create a context at all: say so."""
        if self.ctx is None and self.gl_error is None and not self.isValid():
            log.error("viewport: no OpenGL context")
            self.fail(NO_CONTEXT)

    def fail(self, message: str) -> None:
        """The view cannot draw: ``message`` in the view itself (a label: without a context Qt paints
        nothing of the view) and, through ``gl_failed``, in the status bar."""
        self.gl_error = message
        if self._message_label is None:
            self._message_label = QLabel(self, objectName="viewMessage")
            self._message_label.setWordWrap(True)
            self._message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._message_label.setMargin(16)
            self._message_label.setStyleSheet("QLabel { background: #282828; color: #e6e6e6; }")
        self._message_label.setText(message)
        self._message_label.setGeometry(self.rect())
        self._message_label.show()
        self.gl_failed.emit(message)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._message_label is not None:
            self._message_label.setGeometry(self.rect())

    def initializeGL(self) -> None:
        if self._message_label is not None and self.gl_error == NO_CONTEXT:   # a late context after all
            self._message_label.hide()
            self.gl_error = None
        try:
            import moderngl

            self.ctx = moderngl.create_context()
            if self.ctx.version_code < 330:
                raise RuntimeError(f"OpenGL 3.3 is needed, this context has {self.ctx.version_code}")
            self.blitter = TextureBlitter(self.ctx)
            self.init_scene()
        except Exception as exc:  # noqa: BLE001 - shown in the widget and the status bar
            self.gl_error = f"The viewport cannot use OpenGL here: {exc}"
            log.exception("viewport OpenGL initialisation failed")
            self.ctx = None
            QTimer.singleShot(0, lambda: self.gl_failed.emit(self.gl_error))
        ctx = self.context()
        if ctx is not None:
            ctx.aboutToBeDestroyed.connect(self._cleanup_gl)

    def _cleanup_gl(self) -> None:
        if self.ctx is None:
            return
        self.makeCurrent()
        try:
            self.release_scene()
            if self.blitter is not None:
                self.blitter.release()
        except Exception:  # noqa: BLE001 - the context is going away anyway
            log.debug("GL cleanup failed", exc_info=True)
        self.ctx = None
        self._gl_funcs = None
        self.doneCurrent()

    def init_scene(self) -> None:
        """Create renderers (context current)."""

    def release_scene(self) -> None:
        """Free renderers (context current)."""

    def make_renderer(self) -> ViewportRenderer:
        r = ViewportRenderer(self.ctx, self.backend_preference, blitter=self.blitter)
        self.renderer_name = r.renderer_name
        return r

    def _framebuffer(self):
        fid = int(self.defaultFramebufferObject())
        fbo = self._fbo_cache.get(fid)
        if fbo is None:
            self._fbo_cache = {fid: self.ctx.detect_framebuffer(fid)}
            fbo = self._fbo_cache[fid]
        return fbo

    def device_size(self) -> tuple[int, int]:
        dpr = self.devicePixelRatioF()
        return max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr))

    @property
    def moving(self) -> bool:
        return self._moving

    def current_scale(self) -> float:
        return fit_scale(self.full_ms) if (self._moving and self.full_ms is not None) else 1.0

    def paintGL(self) -> None:
        painter = QPainter(self)
        try:
            if self.ctx is None:
                painter.fillRect(self.rect(), QColor(40, 40, 40))
                painter.setPen(QColor(230, 230, 230))
                painter.drawText(QRectF(self.rect()).adjusted(12, 12, -12, -12),
                                 Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter,
                                 self.gl_error or "OpenGL is not ready")
                return
            painter.beginNativePainting()
            try:
                w, h = self.device_size()
                scale = self.current_scale()
                t0 = time.perf_counter()
                fbo = self._framebuffer()
                self.last_resolution = self.draw_scene(fbo, w, h, scale) or (w, h)
                self.ctx.finish()
                ms = (time.perf_counter() - t0) * 1e3
            finally:
                _reset_gl_state(self, self.ctx)
                painter.endNativePainting()
            self.frames_drawn += 1
            self.frame_times.append((ms, scale))
            if scale == 1.0:
                self.full_ms = ms if self.full_ms is None else 0.5 * (self.full_ms + ms)
            if self.show_overlay:
                self.draw_overlay(painter)
            self.frame_drawn.emit(ms)
        finally:
            painter.end()

    def draw_scene(self, fbo, width: int, height: int, scale: float):
        """Draw into ``fbo`` (device pixels ``width``×``height``); returns the rendered resolution."""
        fbo.use()
        fbo.clear(*self.background, 1.0)
        return width, height

    # ------------------------------------------------------------------ overlay
    def fps(self) -> float:
        """Frames per second the renderer sustains at the current resolution (median of recent frames)."""
        if not self.frame_times:
            return 0.0
        times = sorted(ms for ms, _ in list(self.frame_times)[-9:])
        return 1000.0 / max(times[len(times) // 2], 1e-3)

    def overlay_lines(self) -> list[str]:
        return []

    def draw_overlay(self, painter: QPainter) -> None:
        lines = self.overlay_lines()
        if not lines:
            return
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.9))
        painter.setFont(font)
        fm = painter.fontMetrics()
        pad = 6
        width = max(fm.horizontalAdvance(t) for t in lines) + 2 * pad
        height = fm.height() * len(lines) + 2 * pad
        box = QRectF(8, self.height() - height - 8, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 130))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        for i, t in enumerate(lines):
            painter.drawText(QPointF(box.left() + pad, box.top() + pad + fm.ascent() + i * fm.height()), t)

    # ------------------------------------------------------------------ camera
    def camera_moved(self, *, settle: bool = True) -> None:
        """The camera changed: redraw (reduced resolution until it settles)."""
        if settle:
            self._moving = True
            self._settle.start()
        self.camera_changed.emit()
        self.update()

    def _settled(self) -> None:
        self._moving = False
        self.update()
        self.on_settled()

    def on_settled(self) -> None:
        """Hook: the camera stopped."""

    def frame_object(self) -> None:
        """F: fit the object in view."""

    def reset_camera(self) -> None:
        """R: the input camera."""
        self.camera.reset()
        self.camera_moved(settle=False)

    def set_background(self, rgb) -> None:
        self.background = tuple(float(c) for c in rgb)
        self.update()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.update()

    def camera_locked(self) -> bool:
        return False

    def mousePressEvent(self, event) -> None:
        self.setFocus()
        if self.camera_locked():
            return
        self._drag_button = event.button()
        self._last_pos = event.position()

    def mouseMoveEvent(self, event) -> None:
        if self._drag_button is None or self.camera_locked():
            return
        pos = event.position()
        d = pos - self._last_pos
        self._last_pos = pos
        if d.x() == 0 and d.y() == 0:
            return
        if self._drag_button == Qt.MouseButton.LeftButton and not (event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.camera.orbit(d.x(), d.y(), min(self.width(), self.height()))
        else:
            self.camera.pan(d.x(), d.y(), self.width(), self.height())
        self.camera_moved()

    def mouseReleaseEvent(self, event) -> None:
        self._drag_button = None
        if self._moving:
            self._settle.start()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps and not self.camera_locked():
            self.camera.zoom(steps)
            self.camera_moved()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if self.camera_locked():
            return super().keyPressEvent(event)
        step = KEY_ORBIT_DEG * (3 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1)
        moves = {Qt.Key.Key_Left: (-step, 0), Qt.Key.Key_Right: (step, 0),
                 Qt.Key.Key_Up: (0, step), Qt.Key.Key_Down: (0, -step)}
        if key in moves:
            self.camera.orbit_degrees(*moves[key])
            self.camera_moved()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal, Qt.Key.Key_PageUp):
            self.camera.zoom(1)
            self.camera_moved()
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_PageDown):
            self.camera.zoom(-1)
            self.camera_moved()
        elif key == Qt.Key.Key_F:
            self.frame_object()
        elif key == Qt.Key.Key_R:
            self.reset_camera()
        else:
            super().keyPressEvent(event)

    def grab_array(self) -> np.ndarray:
        """The framebuffer as ``(H, W, 3)`` uint8 (device pixels; includes the overlay)."""
        return qimage_to_array(self.grabFramebuffer())
