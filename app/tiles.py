"""The tiled view: 2–8 samples side by side under one shared camera, plus a per-pixel variance
heat-map across them for the current view (where the samples disagree: how diverse they are).

The heat-map is ``Var_s[rgb_s(p)]`` averaged over the three channels, ``rgb_s`` the sample ``s``
rendered from the shared camera over the view's background (so silhouettes that differ count too);
it is recomputed whenever the camera stops, at ≤ :data:`HEAT_SIDE` px a side, and shown with the
*inferno* colour map from 0 to the view's 99.5th percentile (written in the tile).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter

from splatgen.core.images import to_uint8
from splatgen.core.turntable import grid_shape

from .orbit_camera import OrbitCamera
from .splat_view import SplatView

MAX_TILES = 8
#: Longest side, pixels, of the images the variance is computed from.
HEAT_SIDE = 256


def tile_grid(n: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """``n`` tiles over a ``width``×``height`` framebuffer, row-major from the top left, as
    ``(x, y, w, h)`` with a bottom-left origin (GL viewports). Columns are chosen so tiles are as
    large and as square as possible."""
    if n <= 0:
        return []
    cols, rows = grid_shape(n, width, height)   # the turntables' and screenshots' grid too
    tw, th = width // cols, height // rows
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        out.append((c * tw, height - (r + 1) * th, tw, th))
    return out


def variance_map(images: np.ndarray) -> np.ndarray:
    """Per-pixel variance across samples: ``images`` ``(S, H, W, 3)`` float in [0, 1] → ``(H, W)``
    (population variance over ``S``, mean over the channels)."""
    images = np.asarray(images, np.float32)
    if images.shape[0] < 2:
        return np.zeros(images.shape[1:3], np.float32)
    return images.var(axis=0).mean(axis=-1)


def _inferno_lut() -> np.ndarray:
    try:
        from matplotlib import colormaps

        return to_uint8(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3])
    except Exception:  # noqa: BLE001 - a plain black-red-yellow-white ramp without matplotlib
        t = np.linspace(0, 1, 256)
        return to_uint8(np.stack([3 * t, 3 * t - 1, 3 * t - 2], 1))


_LUT: np.ndarray | None = None


def heat_colors(values: np.ndarray, vmax: float | None = None) -> tuple[np.ndarray, float]:
    """``(H, W)`` values → ``(H, W, 3)`` uint8 (inferno, 0 … ``vmax``; default the 99.5th percentile),
    and the ``vmax`` used."""
    global _LUT
    if _LUT is None:
        _LUT = _inferno_lut()
    values = np.asarray(values, np.float32)
    if vmax is None:
        vmax = float(np.percentile(values, 99.5)) if values.size else 0.0
    vmax = max(float(vmax), 1e-6)
    idx = to_uint8(values / vmax)
    return _LUT[idx], vmax


class TiledView(SplatView):
    """Several samples under one camera, and their variance heat-map in the last tile."""

    def __init__(self, camera: OrbitCamera | None = None, parent=None, backend: str = "auto"):
        super().__init__(camera, parent, backend)
        self.entries: list[tuple[str, object]] = []      # (label, sample)
        self.heatmap = True
        self._renderers: list = []
        self._uploaded: list = []                         # sample object uploaded per renderer
        self._heat_tex = None
        self._heat_key = None
        self.heat_vmax = 0.0
        self.heat_mean = 0.0
        self.heat_values: np.ndarray | None = None
        self._rects: list[tuple[int, int, int, int]] = []
        self.setObjectName("tiledView")

    def set_entries(self, entries: list[tuple[str, object]]) -> None:
        """Show ``(label, sample)`` pairs (at most :data:`MAX_TILES`)."""
        self.entries = list(entries)[:MAX_TILES]
        self._heat_key = None
        self._release_unused()
        self.update()

    def _release_unused(self) -> None:
        """Free the renderers beyond the tiles shown and empty those whose sample is no longer shown
        (a renderer holds its sample's splats), so samples taken out of the gallery are not kept
        alive by a hidden tiled view."""
        keep, shown = len(self.entries), {id(s) for _, s in self.entries}
        stale = [i for i, u in enumerate(self._uploaded[:keep]) if u is not None and id(u) not in shown]
        if self.ctx is None or (len(self._renderers) <= keep and not stale):
            return
        self.makeCurrent()
        try:
            for r in self._renderers[keep:]:
                r.release()
            for i in stale:
                self._renderers[i].set_gaussians(None)
                self._uploaded[i] = None
        finally:
            self.doneCurrent()
        del self._renderers[keep:], self._uploaded[keep:]

    def set_heatmap(self, on: bool) -> None:
        self.heatmap = bool(on)
        self._heat_key = None
        self.update()

    def set_background(self, rgb) -> None:
        self._heat_key = None
        super().set_background(rgb)

    def release_scene(self) -> None:
        for r in self._renderers:
            r.release()
        self._renderers, self._uploaded = [], []
        if self._heat_tex is not None:
            self._heat_tex.release()
            self._heat_tex = None

    def _sync_renderers(self) -> None:
        while len(self._renderers) < len(self.entries):
            self._renderers.append(self.make_renderer())
            self._uploaded.append(None)
        for i, (_, sample) in enumerate(self.entries):
            if self._uploaded[i] is not sample:
                self._renderers[i].set_gaussians(sample.gaussians)
                self._uploaded[i] = sample

    def show_heat(self) -> bool:
        return self.heatmap and len(self.entries) >= 2

    def draw_scene(self, fbo, width, height, scale):
        fbo.use()
        self.ctx.scissor = None
        fbo.clear(0.16, 0.16, 0.16, 1.0)
        if not self.entries:
            return width, height
        self._sync_renderers()
        n = len(self.entries) + (1 if self.show_heat() else 0)
        self._rects = tile_grid(n, width, height)
        gap = 2
        vm = self.camera.viewmat()
        first = None
        for i, (_, _sample) in enumerate(self.entries):
            x, y, w, h = self._rects[i]
            w2, h2 = max(1, w - gap), max(1, h - gap)
            res = self._renderers[i].draw(fbo, vm, self.camera.intrinsics(w2, h2), w2, h2, scale=scale,
                                          mode=self.mode, background=self.background, origin=(x, y + gap))
            first = first or res
        if self.show_heat():
            x, y, w, h = self._rects[-1]
            w2, h2 = max(1, w - gap), max(1, h - gap)
            key = (self.camera.state(), w2, h2, tuple(id(s) for _, s in self.entries), self.background)
            if key != self._heat_key and not self.moving:
                self._compute_heat(vm, w2, h2)
                self._heat_key = key
            if self._heat_tex is not None:
                fbo.use()
                self.blitter.draw(self._heat_tex, (x, y + gap, w2, h2), flip=True,
                                  dim=0.45 if key != self._heat_key else 1.0)
        return first or (width, height)

    def _compute_heat(self, vm, w: int, h: int) -> None:
        import moderngl

        s = min(1.0, HEAT_SIDE / max(w, h))
        hw, hh = max(1, round(w * s)), max(1, round(h * s))
        K = self.camera.intrinsics(hw, hh)
        images = np.stack([r.image(vm, K, hw, hh, self.background)
                           for r in self._renderers[: len(self.entries)]])
        values = variance_map(images)
        colors, self.heat_vmax = heat_colors(values)
        self.heat_values = values
        self.heat_mean = float(values.mean())
        if self._heat_tex is None or self._heat_tex.size != (hw, hh):
            if self._heat_tex is not None:
                self._heat_tex.release()
            self._heat_tex = self.ctx.texture((hw, hh), 3, alignment=1)
            self._heat_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._heat_tex.write(np.ascontiguousarray(colors).tobytes())

    def overlay_lines(self) -> list[str]:
        if not self.entries:
            return ["no samples to tile — generate 2 or more (or select them in the gallery)"]
        splats = sum(r.num_splats for r in self._renderers[: len(self.entries)])
        return [f"{self.fps():.0f} FPS · {len(self.entries)} samples · {splats:,} splats"]

    def draw_overlay(self, painter: QPainter) -> None:
        dpr = self.devicePixelRatioF()
        fh = self.height()
        fm = painter.fontMetrics()
        labels = [label for label, _ in self.entries]
        if self.show_heat():
            labels.append(f"variance (0 – {self.heat_vmax:.3g}; mean {self.heat_mean:.2g})")
        for (x, y, w, h), text in zip(self._rects, labels):
            top = fh - (y + h) / dpr
            rect = QRectF(x / dpr + 4, top + 4, fm.horizontalAdvance(text) + 10, fm.height() + 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 120))
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(QPointF(rect.left() + 5, rect.top() + 2 + fm.ascent()), text)
        super().draw_overlay(painter)

    def frame_object(self) -> None:
        if not self.entries:
            return
        g = self.entries[0][1].gaussians
        self.camera.frame(g.means.detach().cpu().numpy(), g.opacities.detach().cpu().numpy())
        self.camera_moved(settle=False)

    def reset_camera(self) -> None:
        vm = self.entries[0][1].input_viewmat.detach().cpu().numpy() if self.entries else None
        self.camera.reset(vm)
        self.camera_moved(settle=False)
