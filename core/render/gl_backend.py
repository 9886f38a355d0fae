"""The ``"gl"`` backend: the OpenGL splat renderer behind :func:`splatgen.core.render.render`.

Here is the small public API; the renderer class is :mod:`.gl_renderer` (how it draws), its
occlusion culling :mod:`.gl_culling`, its GLSL programs :mod:`.gl_shaders` (files under
``shaders/``). Quick use::

    out = render(gaussians, viewmats, Ks, 512, 512, backend="gl")       # through the dispatcher

    r = GLSplatRenderer()              # headless (own EGL context); or GLSplatRenderer(ctx) in Qt
    r.set_gaussians(gaussians)
    rgb = r.render(viewmat, K, 512, 512, background=(1, 1, 1))          # numpy (H, W, 3)
    depth = r.render(viewmat, K, 512, 512, mode="depth")                 # numpy (H, W, 1)
    rgb, alpha, depth = r.render_many(viewmats, Ks, 512, 512)            # numpy (C, H, W, ·)

In a ``QOpenGLWidget`` (its context is current in ``initializeGL`` / ``paintGL``)::

    def initializeGL(self):
        self.ctx = moderngl.create_context()                 # wraps Qt's current context
        self.renderer = GLSplatRenderer(self.ctx)
        self.renderer.set_gaussians(gaussians)               # again whenever the scene changes

    def paintGL(self):
        fbo = self.ctx.detect_framebuffer(self.defaultFramebufferObject())
        dpr = self.devicePixelRatioF()
        w, h = round(self.width() * dpr), round(self.height() * dpr)
        K = intrinsics_from_fov(fov, w, h)                   # pixels of the framebuffer
        self.renderer.render(viewmat, K, w, h, background=bg, mode="rgb", fbo=fbo)
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
import torch

from .. import framing
from ..gaussians import Gaussians
from . import RenderError, RenderOutput
from .gl_culling import CULLING, CULLING_DEPTH, opacity_integral, optical_depth, view_averaged_area
from .gl_renderer import MODES, T_MIN, TEX_WIDTH, VIEW_MIN_TRANSMITTANCE, GLSplatRenderer, create_headless_context
from .gl_shaders import ALPHA_MAX, ALPHA_MIN

_lock = threading.Lock()
_default: GLSplatRenderer | None = None
_default_error: Exception | None = None
# The Gaussians last uploaded to the shared renderer: their tensors are kept referenced so ids can
# not be recycled, and (id, _version) tells us whether the same object is rendered again unchanged.
_uploaded: tuple | None = None
#: Most pixels in one frame of a batch's tiles (:func:`render_gl`); a larger batch takes several frames.
TILED_FRAME_PIXELS = 2048 * 2048


def _default_renderer() -> GLSplatRenderer:
    global _default, _default_error
    with _lock:
        if _default is None and _default_error is None:
            try:
                _default = GLSplatRenderer()
            except Exception as exc:   # no EGL / no GL 3.3 / shader failure
                _default_error = exc
        if _default is None:
            raise RenderError(f"OpenGL renderer unavailable: {_default_error}") from _default_error
        return _default


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether a headless EGL context with our shaders can be created here (cached; never raises)."""
    try:
        _default_renderer()
        return True
    except Exception:
        return False


def renderer_name() -> str:
    """The OpenGL renderer string of the headless context (e.g. ``"llvmpipe (LLVM 15.0.6, 256 bits)"``)."""
    return _default_renderer().renderer_name


def last_culled() -> bool:
    """Whether the shared renderer of :func:`render_gl` occlusion-culled the last camera it drew."""
    return _default_renderer().last_culled


def _scene_key(gaussians: Gaussians) -> tuple:
    ts = gaussians.tensors()
    return tuple((id(t), t._version) for t in ts.values())


def render_gl(
    gaussians: Gaussians,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    *,
    background: torch.Tensor,
    near: float = framing.NEAR,
    far: float = framing.FAR,
    sh_degree: int | None = None,
) -> RenderOutput:
    """The ``"gl"`` backend of :func:`splatgen.core.render.render` for one scene, or for a batch
    seen by the same cameras: its scenes are drawn side by side in the tiles of one frame (as many
    as :data:`TILED_FRAME_PIXELS` allows; a larger batch takes several), and cut out again.

    Args:
        gaussians: shape ``(N,)`` or ``(B, N)``.
        viewmats: world-to-camera ``(C, 4, 4)``, OpenCV axes. Ks: ``(C, 3, 3)`` pixel intrinsics.
        width, height: image size, pixels. background: ``(3,)`` RGB in [0, 1].
        near, far: z clipping distances, world units. sh_degree: SH degree (default: all held).

    Returns:
        :class:`RenderOutput` of float32 tensors on the Gaussians' device: ``rgb (*B, C, H, W, 3)``,
        ``alpha (*B, C, H, W, 1)``, ``depth (*B, C, H, W, 1)``; row 0 is the top of the image.
    """
    global _uploaded
    renderer = _default_renderer()
    vm = torch.as_tensor(viewmats).detach().to("cpu", torch.float64).reshape(-1, 4, 4).numpy()
    ks = torch.as_tensor(Ks).detach().to("cpu", torch.float64).reshape(-1, 3, 3).numpy()
    bg = torch.as_tensor(background).detach().to("cpu", torch.float32).reshape(3).numpy()
    kwargs = dict(background=bg, near=near, far=far, sh_degree=sh_degree)
    with _lock:
        if len(gaussians.shape) == 2:
            rgb, alpha, depth = _render_tiled(renderer, gaussians, vm, ks, width, height, **kwargs)
            _uploaded = None
        else:
            key = _scene_key(gaussians)
            if _uploaded is None or _uploaded[0] != key:
                renderer.set_gaussians(gaussians)
                _uploaded = (key, gaussians.tensors())
            rgb, alpha, depth = renderer.render_many(vm, ks, width, height, **kwargs)
    dev = gaussians.device
    return RenderOutput(*(torch.from_numpy(a).to(dev) for a in (rgb, alpha, depth)))


def _render_tiled(renderer: GLSplatRenderer, gaussians: Gaussians, vm: np.ndarray, ks: np.ndarray, width: int,
                  height: int, **kwargs) -> tuple[np.ndarray, ...]:
    """A batch ``(B, N)`` from cameras ``vm (C, 4, 4)`` / ``ks (C, 3, 3)``: ``rgb (B, C, H, W, 3)``,
    ``alpha`` and ``depth (B, C, H, W, 1)``, drawn a frame of tiles (a grid of ``width × height``
    boxes) at a time."""
    scenes, cameras = gaussians.shape[0], vm.shape[0]
    per_frame = max(1, min(scenes, TILED_FRAME_PIXELS // (width * height)))
    cols = max(1, min(renderer.max_size // width, math.ceil(math.sqrt(per_frame))))
    rows = max(1, min(math.ceil(per_frame / cols), renderer.max_size // height))
    per_frame = min(per_frame, cols * rows)
    boxes = [(c * width, r * height, width, height) for r, c in (divmod(i, cols) for i in range(per_frame))]
    out = [np.empty((scenes, cameras, height, width, k), np.float32) for k in (3, 1, 1)]
    for start in range(0, scenes, per_frame):
        group = gaussians[start:start + per_frame]
        renderer.set_gaussians(group)
        frames = renderer.render_many(vm, ks, cols * width, rows * height, tiles=boxes[:group.shape[0]], **kwargs)
        for k, (x, y, _, _) in enumerate(boxes[:group.shape[0]]):
            for dst, frame in zip(out, frames):
                dst[start + k] = frame[:, y:y + height, x:x + width]
    return tuple(out)


__all__ = ["GLSplatRenderer", "available", "render_gl", "renderer_name", "last_culled", "create_headless_context",
           "optical_depth", "opacity_integral", "view_averaged_area", "CULLING", "CULLING_DEPTH", "MODES", "TEX_WIDTH",
           "ALPHA_MAX", "ALPHA_MIN", "T_MIN", "VIEW_MIN_TRANSMITTANCE"]
