"""One rendering entry point, three backends.

:func:`render` takes :class:`~splatgen.core.gaussians.Gaussians` and OpenCV cameras (world-to-camera
``viewmats`` and pixel intrinsics ``Ks``, as ``gsplat.rasterization`` takes them) and returns RGB,
alpha and expected depth. The backend is picked automatically (:func:`choose_backend`):

* ``"gsplat"`` — gsplat's CUDA rasterizer (differentiable, batched); used when the Gaussians are on CUDA.
* ``"torch"`` — a pure-PyTorch differentiable rasterizer on sparse pixel/Gaussian pair lists; the
  reference, used for tests and CPU training steps.
* ``"gl"`` — an OpenGL splat renderer (depth-sorted instanced quads, as web splat viewers draw),
  headless through EGL; fast viewing without CUDA, not differentiable; a batch seen by the same
  cameras is drawn side by side in the tiles of one frame. Its
  :class:`~splatgen.core.render.gl_backend.GLSplatRenderer` also draws into a caller's moderngl
  context and framebuffer (a Qt ``QOpenGLWidget``).

All three follow the same image model, so they draw the same picture:

1. camera-space mean ``m = R x + t``; splats with ``m.z`` outside (near, far) are dropped;
2. 2D covariance ``Σ' = J W Σ Wᵀ Jᵀ + 0.3·I`` (EWA, with the 0.3 px² low-pass of 3DGS), 2D mean
   ``(fx m.x/m.z + cx, fy m.y/m.z + cy)``; pixel (i, j) is sampled at its centre (i+0.5, j+0.5);
3. ``α = min(0.999, opacity · exp(-½ dᵀ Σ'⁻¹ d))`` (gsplat's clamp), ignored when ``α < 1/255``
   (so a splat reaches at most ~3.33σ);
4. front-to-back compositing in depth order of the splat centres:
   ``C = Σ_k T_k α_k c_k + T_final · background``, ``T_k = Π_{j<k} (1 - α_j)``; a pixel stops
   before its transmittance would fall below 1e-4 (gsplat's early stop; the GL renderer cannot stop
   single pixels: it skips only what lies wholly behind pixels past that point, see its module);
5. depth is the expected depth ``Σ_k T_k α_k z_k / Σ_k T_k α_k`` (0 where nothing is drawn).

Scenes of different sizes render in one call as a batch: :func:`batch_scenes` pads them to one size.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Sequence

import torch

from .. import framing
from ..errors import SplatgenError
from ..gaussians import Gaussians
from .gl_shaders import ALPHA_MIN

log = logging.getLogger("splatgen.render")

BACKENDS = ("auto", "gsplat", "torch", "gl")


class RenderError(SplatgenError, RuntimeError):
    """A backend cannot render the request (unavailable, bad cameras...)."""


@dataclass
class RenderOutput:
    """Rendered images, channels last, values in [0, 1] for colour and alpha.

    ``rgb`` ``(*B, C, H, W, 3)``, ``alpha`` ``(*B, C, H, W, 1)``, ``depth`` ``(*B, C, H, W, 1)``
    (expected camera-space z, world units; 0 where alpha is 0).
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor


@functools.lru_cache(maxsize=1)
def gsplat_available() -> bool:
    """Whether gsplat can render on this machine: a CUDA device, an importable gsplat and its CUDA code
    built and loaded (a broken install or a failed build counts as absent). Decided once per process;
    where CUDA is there but gsplat is not, one line says so and rendering falls back to the torch
    renderer."""
    if not torch.cuda.is_available():
        return False
    reason = gsplat_problem()
    if reason:
        log.warning("splatgen: gsplat cannot render here (%s): rendering with the torch renderer instead", reason)
        return False
    return True


def gsplat_problem() -> str | None:
    """Why gsplat cannot render on this CUDA machine (None: it can). Loading its CUDA code may build it
    first (a minute or two, once per machine)."""
    try:
        import gsplat  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any broken install
        return f"gsplat does not import: {exc}"
    try:
        from gsplat.cuda._backend import _C
    except Exception as exc:  # noqa: BLE001
        return f"its CUDA code does not build or load: {exc}"
    if _C is None:
        return "its CUDA code did not build (see the messages above)"
    return None


def choose_backend(device: str | torch.device | None = None, *, differentiable: bool = False,
                   have_gl: bool | None = None) -> str:
    """Which renderer draws work on ``device``: splatgen's one rule for picking a backend.

    ``"gsplat"`` on CUDA (when its CUDA code loads: :func:`gsplat_available`); else ``"torch"`` when
    gradients are needed or the Gaussians are on a CUDA device gsplat cannot serve (``differentiable``); else
    ``"gl"`` when OpenGL can draw (``have_gl``; default: a headless context can be made here,
    :func:`.gl_backend.available`; a viewport that brings its own context passes ``True``); else
    ``"torch"``.

    Args:
        device: where the Gaussians are; ``None``: this machine as a whole (CUDA when
            :func:`gsplat_available`), for viewers that choose before they have a scene.
    """
    on_cuda = device is not None and torch.device(device).type == "cuda"
    if (on_cuda or (device is None and torch.cuda.is_available())) and gsplat_available():
        return "gsplat"
    if differentiable or on_cuda:
        return "torch"
    if have_gl is None:
        from . import gl_backend

        have_gl = gl_backend.available()
    return "gl" if have_gl else "torch"


def backend_device(backend: str) -> str:
    """The device a backend renders from: ``"cuda"`` for gsplat, else ``"cpu"``."""
    return "cuda" if backend == "gsplat" else "cpu"


def pick_backend(gaussians: Gaussians, backend: str = "auto", *, differentiable: bool = False) -> str:
    """Resolve ``"auto"`` for ``gaussians`` by :func:`choose_backend` (gradients are needed when
    ``differentiable`` or when any of their tensors requires grad); check an explicit choice."""
    if backend not in BACKENDS:
        raise RenderError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    grads = torch.is_grad_enabled() and any(t.requires_grad for t in gaussians.tensors().values())
    return choose_backend(gaussians.device, differentiable=differentiable or grads)


def _as_background(background, device, dtype) -> torch.Tensor:
    if background is None:
        background = framing.BACKGROUND
    return torch.as_tensor(background, device=device, dtype=dtype).reshape(3)


#: The opacity logit of the splats :func:`batch_scenes` pads with (opacity 1e-13: never drawn).
PAD_OPACITY_LOGIT = -30.0


def batch_scenes(scenes: Sequence[Gaussians]) -> Gaussians:
    """Scenes ``(N_b,)`` of any sizes as one batch ``(B, N)`` for :func:`render`.

    Each scene keeps only the splats a renderer can draw (opacity ≥ 1/255, step 3 of the image model)
    and is padded up to the longest one with splats that are never drawn (at the origin, σ = e⁻¹⁰,
    opacity logit :data:`PAD_OPACITY_LOGIT`); SH degrees are padded to the highest. On the scenes' device.
    """
    if not scenes:
        raise RenderError("no scenes to batch")
    kept = [g[g.opacities >= ALPHA_MIN] for g in scenes]
    degree = max(g.sh_degree for g in kept)
    n = max(1, max(g.num_gaussians for g in kept))

    def padded(g: Gaussians) -> Gaussians:
        g = g.with_sh_degree(degree)
        pad = n - g.num_gaussians
        if pad == 0:
            return g
        quats = g.quats.new_zeros((pad, 4))
        quats[:, 0] = 1.0
        filler = Gaussians(means=g.means.new_zeros((pad, 3)), quats=quats,
                           log_scales=g.log_scales.new_full((pad, 3), -10.0),
                           opacity_logits=g.opacity_logits.new_full((pad,), PAD_OPACITY_LOGIT),
                           sh=g.sh.new_zeros((pad, *g.sh.shape[1:])))
        return Gaussians.concat([g, filler])

    return Gaussians.stack([padded(g) for g in kept])


def render(
    gaussians: Gaussians,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    *,
    background: Sequence[float] | torch.Tensor | None = None,
    backend: str = "auto",
    near: float = framing.NEAR,
    far: float = framing.FAR,
    sh_degree: int | None = None,
) -> RenderOutput:
    """Render Gaussians from one or more cameras.

    Args:
        gaussians: shape ``(*B, N)``; a batch of scenes ``B`` renders each scene from its own cameras.
        viewmats: world-to-camera ``(C, 4, 4)`` or ``(*B, C, 4, 4)``, OpenCV axes.
        Ks: intrinsics ``(C, 3, 3)``, ``(*B, C, 3, 3)`` or one ``(3, 3)`` for all cameras, pixels.
        width, height: image size in pixels.
        background: RGB in [0, 1] composited behind the splats (default: the canonical background).
        backend: ``"auto"``, ``"gsplat"``, ``"torch"`` or ``"gl"``.
        near, far: clipping distances along the camera z axis, world units.
        sh_degree: SH degree to use for colour (default: all the Gaussians hold).

    Returns:
        :class:`RenderOutput` with ``(*B, C, H, W, ·)`` tensors on the Gaussians' device.
    """
    batch = tuple(gaussians.batch_shape)
    viewmats = torch.as_tensor(viewmats, dtype=gaussians.dtype, device=gaussians.device)
    Ks = torch.as_tensor(Ks, dtype=gaussians.dtype, device=gaussians.device)
    if viewmats.dim() == 2:
        viewmats = viewmats[None]
    if viewmats.shape[-2:] != (4, 4):
        raise RenderError(f"viewmats must be (..., 4, 4), got {tuple(viewmats.shape)}")
    shared = viewmats.dim() == 3 and Ks.dim() <= 3        # every scene seen by the same cameras
    viewmats = viewmats.expand(*batch, *viewmats.shape[-3:]) if viewmats.dim() == 3 else viewmats
    if Ks.dim() == 2:
        Ks = Ks.expand(*viewmats.shape[:-2], 3, 3)
    elif Ks.dim() == 3:
        Ks = Ks.expand(*batch, *Ks.shape)
    if tuple(viewmats.shape[:-3]) != batch or tuple(Ks.shape[:-2]) != tuple(viewmats.shape[:-2]):
        raise RenderError(f"cameras {tuple(viewmats.shape)} / {tuple(Ks.shape)} do not match "
                          f"Gaussians of shape {tuple(gaussians.shape)}")
    if width <= 0 or height <= 0:
        raise RenderError(f"image size must be positive, got {width}x{height}")
    bg = _as_background(background, gaussians.device, gaussians.dtype)
    name = pick_backend(gaussians, backend)
    kwargs = dict(background=bg, near=near, far=far, sh_degree=sh_degree)
    if name == "gsplat":
        from .gsplat_backend import render_gsplat

        return render_gsplat(gaussians, viewmats, Ks, width, height, **kwargs)
    # The GL backend draws a batch seen by the same cameras side by side in one frame; otherwise the
    # torch and GL backends render one scene at a time.
    if name == "gl" and len(batch) == 1 and shared:
        from .gl_backend import render_gl

        return render_gl(gaussians, viewmats[0], Ks[0], width, height, **kwargs)
    if batch:
        outs = [render(gaussians[i], viewmats[i], Ks[i], width, height, background=bg, backend=name,
                       near=near, far=far, sh_degree=sh_degree) for i in range(batch[0])]
        return RenderOutput(*(torch.stack([getattr(o, f) for o in outs]) for f in ("rgb", "alpha", "depth")))
    if name == "torch":
        from .torch_backend import render_torch

        return render_torch(gaussians, viewmats, Ks, width, height, **kwargs)
    from .gl_backend import render_gl

    return render_gl(gaussians, viewmats, Ks, width, height, **kwargs)
