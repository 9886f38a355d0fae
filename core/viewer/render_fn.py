"""From nerfview's camera state to pixels: the one place the browser viewer turns a camera into an image.

**Cameras.** nerfview hands the render callback a ``CameraState(fov, aspect, c2w)``, built in
``nerfview.Viewer.get_camera_state`` from the browser camera that viser reports: ``c2w = [R | t]``
with ``R`` from ``camera.wxyz`` and ``t = camera.position``. viser documents both as the ``R, t``
of ``P_world = R p_camera + t`` with OpenCV camera axes (+Z forward, +Y down, +X right; see
``viser.CameraHandle.wxyz``), so ``c2w`` is an **OpenCV camera-to-world** matrix and our
world-to-camera ``viewmat`` is simply its inverse — no axis flip here (the only OpenGL ↔ OpenCV
conversion of the project stays in :mod:`splatgen.core.cameras`, and none is needed).
``fov`` is viser's *vertical* field of view in radians and ``aspect`` the canvas width / height;
the intrinsics are :func:`~splatgen.core.cameras.intrinsics_from_fov` along y, the same focal
length ``H / 2 / tan(fov / 2)`` and centre ``(W/2, H/2)`` as nerfview's ``CameraState.get_K``.

**Rendering.** :class:`FrameRenderer` owns one backend — gsplat on CUDA, else the OpenGL renderer
(llvmpipe / EGL), else the torch reference — on a thread of its own. The GL renderer is not
thread-safe, and nerfview runs one render thread per browser tab and may abort a frame by raising
from a trace function at any Python line of its thread; keeping the renderer on its own thread
means such an abort can never leave the renderer half-updated (the abandoned frame just finishes and
is dropped). Only the newest request is kept.

**The callback.** :class:`SplatRenderFn` is what ``nerfview.Viewer`` calls. It honours the camera
state and nerfview's image size (the preview size while previewing a camera path), draws RGB,
expected depth (shaded as every view shades it) or alpha, and never raises anything but nerfview's own interrupt:
nerfview ends the whole process (``os._exit(1)``) on any other exception from a render callback, so
failures become a plain background frame plus a message in the panel.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .. import framing
from ..cameras import camera_coordinate, intrinsics_from_fov
from ..gaussians import Gaussians
from ..images import to_uint8
from ..render import backend_device
from ..render.depth_shading import depth_range, scene_bounds, shade_depth
from ..render.gl_backend import VIEW_MIN_TRANSMITTANCE

#: What the viewer can show.
MODES = ("rgb", "depth", "alpha")
#: Server-side frames are drawn at least this many rows tall (keeping nerfview's aspect). nerfview
#: sizes the frames it asks for while the camera moves from the pixels per second of the last frame;
#: a renderer with a large fixed cost per frame (the GL renderer on a CPU machine: sorting and passes)
#: makes that estimate collapse to its 30-row minimum (benchmarks/README.md, "Browser viewer").
MIN_SERVER_ROWS = 240

try:  # nerfview's frame-abort exception must pass through the callback untouched
    from nerfview._renderer import InterruptRenderException as _Interrupt
except Exception:  # pragma: no cover - a nerfview without it
    class _Interrupt(Exception):  # type: ignore[no-redef]
        pass


# ----------------------------------------------------------------------------- cameras
def camera_viewmat(camera_state) -> torch.Tensor:
    """OpenCV world-to-camera ``(4, 4)`` float32 from nerfview's ``camera_state.c2w`` (OpenCV c2w)."""
    c2w = torch.as_tensor(np.asarray(camera_state.c2w, dtype=np.float64)).reshape(4, 4)
    if not torch.isfinite(c2w).all():
        raise ValueError("camera c2w is not finite")
    return torch.linalg.inv(c2w).float()


def camera_intrinsics(camera_state, width: int, height: int) -> torch.Tensor:
    """Pixel intrinsics ``(3, 3)`` for a ``width × height`` image of nerfview's camera (vertical fov)."""
    fov = float(camera_state.fov)
    if not 0.0 < fov < math.pi:
        raise ValueError(f"camera fov {fov} rad is outside (0, pi)")
    return intrinsics_from_fov(math.degrees(fov), int(width), int(height), fov_axis="y")


def image_size(camera_state, size_or_state) -> tuple[int, int]:
    """``(W, H)`` of the frame to draw.

    ``size_or_state`` is what nerfview passes as the second argument: a ``RenderTabState`` (its
    viewer size, or the render size while a camera path is previewed) or, from older nerfview
    versions and direct calls, a ``(W, H)`` tuple.
    """
    if isinstance(size_or_state, (tuple, list)):
        w, h = size_or_state
    elif getattr(size_or_state, "preview_render", False):
        w, h = size_or_state.render_width, size_or_state.render_height
    else:
        w, h = size_or_state.viewer_width, size_or_state.viewer_height
    w, h = int(w), int(h)
    if w < 1 or h < 1:
        raise ValueError(f"image size {w}x{h}")
    return w, h


# ----------------------------------------------------------------------------- pictures
def compose(mode: str, outputs: dict, background: Sequence[float], depth_range: tuple[float, float]) -> np.ndarray:
    """The picture for ``mode`` from the renderer's ``outputs`` → uint8 ``(H, W, 3)``; depth is shown
    as every view shows it (:func:`~splatgen.core.render.depth_shading.shade_depth`), white at
    ``depth_range[0]`` to black at ``depth_range[1]``."""
    if mode == "depth":
        img = shade_depth(outputs["depth"], outputs["alpha"], background, depth_range)
    elif mode == "rgb":
        if "rgb8" in outputs:
            return outputs["rgb8"]
        img = outputs["rgb"]
    elif mode == "alpha":
        img = np.repeat(outputs["alpha"], 3, axis=-1)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return to_uint8(img)


def outputs_for(mode: str) -> tuple[str, ...]:
    """Which renderer outputs ``mode`` needs (colour comes as the 8-bit picture itself)."""
    return {"rgb": ("rgb8",), "alpha": ("alpha",), "depth": ("alpha", "depth")}[mode]


def plain_image(width: int, height: int, background: Sequence[float], *, small: bool = False) -> np.ndarray:
    """A frame of background colour, uint8 ``(H, W, 3)``; ``small`` gives a 1/16-size one (the browser
    stretches background images to the canvas, so a flat colour needs few pixels)."""
    if small:
        width, height = max(1, width // 16), max(1, height // 16)
    colour = to_uint8(np.asarray(background, np.float64))
    return np.broadcast_to(colour, (height, width, 3)).copy()


def visible_count(means: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int,
                  near: float = framing.NEAR, far: float = framing.FAR) -> int:
    """How many splat centres ``(N, 3)`` lie in the camera's view frustum (between near and far)."""
    if means.shape[0] == 0:
        return 0
    x, y, z = (camera_coordinate(means, viewmat[i]) for i in range(3))   # not BLAS: see there
    front = (z > near) & (z < far)
    zs = np.where(front, z, 1.0)
    u = K[0, 0] * x / zs + K[0, 2]
    v = K[1, 1] * y / zs + K[1, 2]
    return int(np.count_nonzero(front & (u >= 0) & (u < width) & (v >= 0) & (v < height)))


# ----------------------------------------------------------------------------- the renderer thread
class RendererClosed(RuntimeError):
    """The frame renderer was closed while a frame was asked for."""


@dataclass
class _Job:
    viewmat: np.ndarray
    K: np.ndarray
    width: int
    height: int
    outputs: tuple[str, ...]
    background: tuple[float, float, float]
    done: threading.Lock = field(default_factory=threading.Lock)
    result: dict | None = None
    error: BaseException | None = None
    seconds: float = 0.0


class FrameRenderer:
    """One render backend on its own thread: ``set_gaussians`` from anywhere, ``render`` from anywhere.

    ``backend``: ``"gsplat"`` (CUDA), ``"gl"`` (headless OpenGL) or ``"torch"``. Only the newest
    pending request is rendered; an older one still waiting is answered with ``None``.
    """

    def __init__(self, backend: str, device: str | torch.device | None = None):
        if backend not in ("gsplat", "gl", "torch"):
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = backend
        self.device = torch.device(device or backend_device(backend))
        self._cond = threading.Condition()
        self._pending: _Job | None = None
        self._closed = False
        self._scene: Gaussians | None = None
        self._scene_version = 0
        self._num = 0
        self._ready = threading.Event()
        self._init_error: BaseException | None = None
        self.last_frame_ms = 0.0
        self._thread = threading.Thread(target=self._run, name="splatgen-viewer-render", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._init_error is not None:
            self._thread.join()
            raise self._init_error

    # -------------------------------------------------------------- public
    @property
    def num_gaussians(self) -> int:
        return self._num

    def set_gaussians(self, gaussians: Gaussians) -> None:
        """Use ``gaussians`` ``(N,)`` from the next frame on (uploaded on the render thread)."""
        if len(gaussians.shape) != 1:
            raise ValueError(f"the viewer shows one scene, got Gaussians of shape {tuple(gaussians.shape)}")
        with self._cond:
            self._scene = gaussians.detach()
            self._scene_version += 1
            self._num = gaussians.num_gaussians

    def render(self, viewmat, K, width: int, height: int, *, outputs: Sequence[str] = ("rgb",),
               background: Sequence[float] = framing.BACKGROUND) -> dict | None:
        """Render one camera → ``{name: (H, W, C)}`` for ``outputs``: float32 ``rgb``, ``alpha``, ``depth``,
        or ``rgb8``, the uint8 colour picture (alone: with OpenGL, the 8-bit on-screen path, see
        :meth:`~splatgen.core.render.gl_backend.GLSplatRenderer.render_rgb8`).

        Returns ``None`` when a newer request replaced this one before it started. Raises
        :class:`RendererClosed` after :meth:`close`, and whatever the backend raised.
        """
        job = _Job(np.asarray(viewmat, np.float64).reshape(4, 4), np.asarray(K, np.float64).reshape(3, 3),
                   int(width), int(height), tuple(outputs), tuple(float(x) for x in background))
        job.done.acquire()
        with self._cond:
            if self._closed:
                raise RendererClosed("the viewer's renderer is closed")
            if self._pending is not None:  # superseded: answer the older request with nothing
                self._pending.done.release()
            self._pending = job
            self._cond.notify()
        # Blocking in C (no Python lines run while waiting), so nerfview's trace-based interrupt
        # cannot fire in the middle of the handshake; it may fire after, dropping the frame.
        job.done.acquire()
        if job.error is not None:
            raise job.error
        if job.result is not None:
            self.last_frame_ms = job.seconds * 1000.0
        return job.result

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (frames being waited for end with :class:`RendererClosed`), free the backend."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._cond:  # a request that slipped in as the thread ended
            job, self._pending = self._pending, None
        if job is not None:
            job.error = RendererClosed("the viewer's renderer is closed")
            job.done.release()

    # -------------------------------------------------------------- the thread
    def _run(self) -> None:
        gl = None
        try:
            if self.backend == "gl":
                from ..render.gl_backend import GLSplatRenderer

                gl = GLSplatRenderer(min_transmittance=VIEW_MIN_TRANSMITTANCE, display_8bit=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor
            self._init_error = exc
            self._ready.set()
            return
        self._ready.set()
        uploaded = -1
        scene_dev: Gaussians | None = None
        try:
            while True:
                with self._cond:
                    while self._pending is None and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        job, self._pending = self._pending, None
                        if job is not None:
                            job.error = RendererClosed("the viewer's renderer is closed")
                            job.done.release()
                        return
                    job, self._pending = self._pending, None
                    scene, version = self._scene, self._scene_version
                try:
                    if scene is None:
                        raise RuntimeError("no splats to show")
                    if version != uploaded:
                        if gl is not None:
                            gl.set_gaussians(scene)
                        else:
                            scene_dev = scene.to(self.device, torch.float32)
                        uploaded = version
                    t0 = time.perf_counter()
                    job.result = self._draw(gl, scene_dev, job)
                    job.seconds = time.perf_counter() - t0
                except BaseException as exc:  # noqa: BLE001 - the caller reports it
                    job.error = exc
                job.done.release()
        finally:
            if gl is not None:
                try:
                    gl.release()
                except Exception:  # noqa: BLE001 - shutting down anyway
                    pass

    def _draw(self, gl, scene: Gaussians | None, job: _Job) -> dict:
        if gl is not None:
            if job.outputs == ("rgb8",):
                return {"rgb8": gl.render_rgb8(job.viewmat, job.K, job.width, job.height, background=job.background)}
            arrays = gl.render_many(job.viewmat[None], job.K[None], job.width, job.height,
                                    background=job.background, outputs=job.outputs)
            return {name: a[0] for name, a in zip(job.outputs, arrays)}
        from ..render import render

        with torch.no_grad():
            out = render(scene, torch.from_numpy(job.viewmat).float()[None], torch.from_numpy(job.K).float()[None],
                         job.width, job.height, background=job.background, backend=self.backend)
        result = {}
        for name in job.outputs:
            if name == "rgb8":   # converted where it was rendered: a quarter of the bytes to copy
                result[name] = to_uint8(out.rgb[0]).cpu().numpy()
            else:
                result[name] = getattr(out, name)[0].float().cpu().numpy()
        return result


# ----------------------------------------------------------------------------- the nerfview callback
@dataclass
class FrameStats:
    """What the last server-side frame cost and showed (for the panel)."""

    width: int = 0
    height: int = 0
    ms: float = 0.0
    visible: int = 0
    frames: int = 0


class SplatRenderFn:
    """The render callback handed to ``nerfview.Viewer``: ``fn(camera_state, render_tab_state) → uint8 (H, W, 3)``.

    ``display="browser"`` means the browser draws the RGB splats itself (viser's
    ``add_gaussian_splats``); the callback then only returns a small flat background frame for RGB,
    and renders depth / alpha on the server. ``display="server"`` renders every mode here.
    ``on_frame(stats)`` is called after each server-side frame; ``on_error(message)`` once per new
    failure message.
    """

    def __init__(self, renderer: FrameRenderer, *, display: str = "server", mode: str = "rgb",
                 background: Sequence[float] = framing.BACKGROUND, on_frame=None, on_error=None):
        self.renderer = renderer
        self.display = display
        self.mode = mode
        self.background = tuple(float(x) for x in background)
        self.stats = FrameStats()
        self.on_frame = on_frame
        self.on_error = on_error
        self._means = np.zeros((0, 3), np.float32)
        self._bounds = scene_bounds(self._means)
        self._closed = False
        self._last_error: str | None = None

    def set_gaussians(self, gaussians: Gaussians) -> None:
        self._means = gaussians.means.detach().to("cpu", torch.float32).numpy().reshape(-1, 3).copy()
        self._bounds = scene_bounds(self._means)
        self.renderer.set_gaussians(gaussians)

    def close(self) -> None:
        """From now on return flat frames at once (the server is shutting down)."""
        self._closed = True

    def server_side(self) -> bool:
        """Whether the current display and mode draw on the server."""
        return self.display == "server" or self.mode != "rgb"

    def __call__(self, camera_state, size_or_state=None) -> np.ndarray:
        bg = self.background
        try:
            w, h = image_size(camera_state, size_or_state if size_or_state is not None else (640, 480))
        except Exception:  # noqa: BLE001 - never raise into nerfview
            w, h = 64, 48
        try:
            if self._closed or self.renderer.num_gaussians == 0:
                return plain_image(w, h, bg, small=True)
            if not self.server_side():
                return plain_image(w, h, bg, small=True)
            mode = self.mode
            if h < MIN_SERVER_ROWS:
                w, h = max(1, round(w * MIN_SERVER_ROWS / h)), MIN_SERVER_ROWS
            viewmat = camera_viewmat(camera_state)
            K = camera_intrinsics(camera_state, w, h)
            out = self.renderer.render(viewmat, K, w, h, outputs=outputs_for(mode), background=bg)
            if out is None:  # superseded by a newer request
                return plain_image(w, h, bg, small=True)
            img = compose(mode, out, bg, depth_range(self._bounds, viewmat.numpy()))
            s = self.stats
            s.width, s.height, s.ms = w, h, self.renderer.last_frame_ms
            s.visible = visible_count(self._means, viewmat.numpy(), K.numpy(), w, h)
            s.frames += 1
            self._last_error = None
            if self.on_frame is not None:
                self.on_frame(s)
            return img
        except _Interrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - nerfview would end the process on any exception
            if isinstance(exc, RendererClosed) or self._closed:
                return plain_image(w, h, bg, small=True)
            message = f"render failed: {exc}"
            if message != self._last_error:
                self._last_error = message
                print(f"splatgen view: {message}", file=sys.stderr)
                if self.on_error is not None:
                    try:
                        self.on_error(message)
                    except Exception:  # noqa: BLE001
                        pass
            return plain_image(w, h, bg, small=True)


__all__ = ["MODES", "FrameRenderer", "SplatRenderFn", "FrameStats", "RendererClosed", "camera_viewmat",
           "camera_intrinsics", "image_size", "compose", "plain_image", "visible_count",
           "outputs_for"]
