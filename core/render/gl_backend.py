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
import threading

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
    """The ``"gl"`` backend of :func:`splatgen.core.render.render` for one scene.

    Args:
        gaussians: shape ``(N,)``.
        viewmats: world-to-camera ``(C, 4, 4)``, OpenCV axes. Ks: ``(C, 3, 3)`` pixel intrinsics.
        width, height: image size, pixels. background: ``(3,)`` RGB in [0, 1].
        near, far: z clipping distances, world units. sh_degree: SH degree (default: all held).

    Returns:
        :class:`RenderOutput` of float32 tensors on the Gaussians' device: ``rgb (C, H, W, 3)``,
        ``alpha (C, H, W, 1)``, ``depth (C, H, W, 1)``; row 0 is the top of the image.
    """
    global _uploaded
    renderer = _default_renderer()
    vm = torch.as_tensor(viewmats).detach().to("cpu", torch.float64).reshape(-1, 4, 4).numpy()
    ks = torch.as_tensor(Ks).detach().to("cpu", torch.float64).reshape(-1, 3, 3).numpy()
    bg = torch.as_tensor(background).detach().to("cpu", torch.float32).reshape(3).numpy()
    with _lock:
        key = _scene_key(gaussians)
        if _uploaded is None or _uploaded[0] != key:
            renderer.set_gaussians(gaussians)
            _uploaded = (key, gaussians.tensors())
        rgb, alpha, depth = renderer.render_many(vm, ks, width, height, background=bg, near=near,
                                                 far=far, sh_degree=sh_degree)
    dev = gaussians.device
    return RenderOutput(*(torch.from_numpy(a).to(dev) for a in (rgb, alpha, depth)))


__all__ = ["GLSplatRenderer", "available", "render_gl", "renderer_name", "last_culled", "create_headless_context",
           "optical_depth", "opacity_integral", "view_averaged_area", "CULLING", "CULLING_DEPTH", "MODES", "TEX_WIDTH",
           "ALPHA_MAX", "ALPHA_MIN", "T_MIN", "VIEW_MIN_TRANSMITTANCE"]
