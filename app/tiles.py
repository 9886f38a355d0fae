"""The tiled view: up to 64 samples side by side under one shared camera, plus a per-pixel variance
heat-map across them for the current view (where the samples disagree: how diverse they are).

The tiles are :func:`splatgen.core.turntable.tile_boxes` (the turntables' and stills' grid), in the
order of :attr:`TiledView.entries`. The samples are one batch (:func:`splatgen.core.render.batch_scenes`)
in one :class:`~splatgen.app.viewport_renderer.ViewportRenderer`, so a frame of the whole grid is one
render call; while the camera moves it renders at reduced resolution, and at full resolution once the
camera stops (:class:`~splatgen.app.splat_view.SplatView`).

The heat-map is ``Var_s[rgb_s(p)]`` averaged over the three channels, ``rgb_s`` the sample ``s``
rendered from the shared camera over the view's background (so silhouettes that differ count too);
it is recomputed whenever the camera stops, at ≤ :data:`HEAT_SIDE` px a tile side, and shown with the
*inferno* colour map from 0 to the view's 99.5th percentile (written in the tile).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter

from splatgen.core.images import to_uint8
from splatgen.core.render import batch_scenes
from splatgen.core.turntable import tile_boxes

from .orbit_camera import OrbitCamera
from .splat_view import SplatView
from .viewport_renderer import scaled_camera

MAX_TILES = 64
#: Longest side, pixels, of the tiles the variance is computed from.
HEAT_SIDE = 256
#: Pixels between tiles (right and bottom of each), and the grey there and around the grid.
GAP = 2
GAP_GREY = 0.16


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
    """Several samples under one camera, and their variance heat-map in the last tile.

    :attr:`rects` holds where each tile was last drawn: ``(x, y, w, h)`` framebuffer pixels from the
    top left, the samples' in :attr:`entries` order, then the heat-map's; :attr:`entries` shows at most
    :data:`MAX_TILES` samples.
    """

    def __init__(self, camera: OrbitCamera | None = None, parent=None, backend: str = "auto"):
        super().__init__(camera, parent, backend)
        self.entries: list[tuple[str, object]] = []      # (label, sample)
        self.heatmap = True
        self._renderer = None
        self._heat_tex = None
        self._heat_key = None
        self.heat_vmax = 0.0
        self.heat_mean = 0.0
        self.heat_values: np.ndarray | None = None
        self.rects: list[tuple[int, int, int, int]] = []
        self.setObjectName("tiledView")

    def set_entries(self, entries: list[tuple[str, object]]) -> None:
        """Show ``(label, sample)`` pairs (at most :data:`MAX_TILES`), in this order."""
        entries = list(entries)[:MAX_TILES]
        changed = len(entries) != len(self.entries) or any(a is not b for (_, a), (_, b) in zip(entries, self.entries))
        self.entries = entries
        if changed:
            self._heat_key = None
            self._upload()
        self.update()

    def _batch(self):
        """The entries' samples as one batch ``(B, N)``, or None without entries."""
        return batch_scenes([s.gaussians for _, s in self.entries]) if self.entries else None

    def _upload(self) -> None:
        """The entries' batch into the renderer (none: the renderer emptied, so that it holds no splats
        of samples no longer shown)."""
        if self._renderer is None or self.ctx is None:
            return
        self.makeCurrent()
        try:
            self._renderer.set_gaussians(self._batch())
        finally:
            self.doneCurrent()

    def set_heatmap(self, on: bool) -> None:
        self.heatmap = bool(on)
        self._heat_key = None
        self.update()

    def set_background(self, rgb) -> None:
        self._heat_key = None
        super().set_background(rgb)

    def init_scene(self) -> None:
        self._renderer = self.make_renderer()
        self._renderer.set_gaussians(self._batch())

    def release_scene(self) -> None:
        if self._renderer is not None:
            self._renderer.release()
            self._renderer = None
        if self._heat_tex is not None:
            self._heat_tex.release()
            self._heat_tex = None

    def show_heat(self) -> bool:
        return self.heatmap and len(self.entries) >= 2

    def draw_scene(self, fbo, width, height, scale):
        fbo.use()
        self.ctx.scissor = None
        fbo.clear(GAP_GREY, GAP_GREY, GAP_GREY, 1.0)
        if not self.entries or self._renderer is None:
            self.rects = []
            return width, height
        self.rects = [(x, y, max(1, w - GAP), max(1, h - GAP))
                      for x, y, w, h in tile_boxes(len(self.entries) + (1 if self.show_heat() else 0), width, height)]
        samples = self.rects[: len(self.entries)]
        vm = self.camera.viewmat()
        K = self.camera.intrinsics(*samples[0][2:])
        res = self._renderer.draw(fbo, vm, K, width, height, scale=scale, mode=self.mode,
                                  background=self.background, tiles=samples)
        if self.show_heat():
            x, y, w, h = self.rects[-1]
            key = (self.camera.state(), w, h, self.background)   # new entries clear it (set_entries)
            if key != self._heat_key and not self.moving:
                self._compute_heat(vm, K, width, height, samples)
                self._heat_key = key
            if self._heat_tex is not None:
                fbo.use()
                self.blitter.draw(self._heat_tex, (x, height - y - h, w, h), flip=True,
                                  dim=0.45 if key != self._heat_key else 1.0)
        return res

    def _compute_heat(self, vm, K, width: int, height: int, tiles) -> None:
        """The variance map of the samples' tiles, rendered at ≤ :data:`HEAT_SIDE` px a side."""
        import moderngl

        tw, th = tiles[0][2:]
        s = min(1.0, HEAT_SIDE / max(tw, th))
        sw, sh = max(1, round(width * s)), max(1, round(height * s))
        Ks, small = scaled_camera(K, width, height, sw, sh, tiles)
        frame = self._renderer.image(vm, Ks, sw, sh, self.background, tiles=small)
        values = variance_map(np.stack([frame[y:y + h, x:x + w] for x, y, w, h in small]))
        colors, self.heat_vmax = heat_colors(values)
        self.heat_values = values
        self.heat_mean = float(values.mean())
        hh, hw = values.shape
        if self._heat_tex is None or self._heat_tex.size != (hw, hh):
            if self._heat_tex is not None:
                self._heat_tex.release()
            self._heat_tex = self.ctx.texture((hw, hh), 3, alignment=1)
            self._heat_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._heat_tex.write(np.ascontiguousarray(colors).tobytes())

    def overlay_lines(self) -> list[str]:
        if not self.entries:
            return ["no samples to tile — generate 2 or more (or select them in the gallery)"]
        splats = sum(s.gaussians.num_gaussians for _, s in self.entries)
        w, h = self.last_resolution
        fw, fh = self.device_size()
        moving = "" if (w, h) == (fw, fh) or not w else f" · {w}×{h} of {fw}×{fh} (moving)"
        return [f"{self.fps():.0f} FPS · {len(self.entries)} samples · {splats:,} splats{moving}"]

    def draw_overlay(self, painter: QPainter) -> None:
        dpr = self.devicePixelRatioF()
        fm = painter.fontMetrics()
        labels = [label for label, _ in self.entries]
        if self.show_heat():
            labels.append(f"variance (0 – {self.heat_vmax:.3g}; mean {self.heat_mean:.2g})")
        for (x, y, w, h), text in zip(self.rects, labels):
            text = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(0, round(w / dpr) - 18))
            rect = QRectF(x / dpr + 4, y / dpr + 4, fm.horizontalAdvance(text) + 10, fm.height() + 4)
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
