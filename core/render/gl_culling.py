"""Occlusion culling of the OpenGL splat renderer: the transmittance pyramid and when it pays.

Why front to back: the sorted splats are drawn in a few batches of equal size (:func:`batches`);
before each batch a max-pyramid of the transmittance ``T = 1 - A`` is built (Hi-Z style, from
4×4-pixel blocks up: :class:`TransmittancePyramid`). Pass 1 (``shaders/project.vert``) drops every
splat whose whole footprint already has ``T < min_transmittance`` (default 1e-4, where gsplat stops
a pixel) and shrinks the pixel box of the others to the pyramid blocks that have not. Each pixel's
error is below ``min_transmittance`` (what the skipped fragments could still add); where fill rate
is nearly the whole cost (llvmpipe) this halves the fragments of dense scenes. Each pyramid costs a
few full-screen passes and a wait for the batch before it, which light scenes never earn back: with
``occlusion_culling="auto"`` the renderer culls a camera only when :func:`optical_depth` says the
scene is deep enough (:data:`CULLING_DEPTH`). Unlike gsplat (and the torch renderer) a pixel does
not stop compositing exactly when its ``T`` would fall to 1e-4 (blending cannot read the
framebuffer); the splat that gsplat leaves out there is kept here, a difference of at most that
splat's ``T·α`` at such pixels (usually < 1e-2).
"""

from __future__ import annotations

import numpy as np

from ..cameras import camera_coordinate
from . import gl_shaders
from .gl_shaders import ALPHA_MAX, BLUR, EXTEND_MAX

#: What ``GLSplatRenderer(occlusion_culling=...)`` takes: always (where the context can), never, or
#: where it pays.
CULLING = (True, False, "auto")
#: "auto" culls a camera when optical_depth ≥ this × ln(1 / min_transmittance): below 1× culling made
#: every measured frame slower on llvmpipe, from 2× up faster every time (benchmarks/README.md,
#: "OpenGL occlusion culling").
CULLING_DEPTH = 2.0
#: Front-to-back batches, each culled against the ones before it.
NUM_BATCHES = 8
#: Fewer splats than this are drawn in one batch (no culling).
MIN_BATCHED = 4096
#: Hi-Z pyramid levels (enough for 32k-pixel images); ``project.vert`` holds this many rectangles.
MAX_LEVELS = 16
#: Texture units the pyramid's two textures are bound to while pass 1 reads them.
UNIT_HIZ_BASE, UNIT_HIZ_UPPER = 4, 5
_DEPTH_SAMPLES = 16384         # optical_depth looks at about this many splats (an even subsample)


def batches(count: int, num: int | None = None) -> list[tuple[int, int]]:
    """Front-to-back batches ``[start, stop)`` of equal size (``num``: default :data:`NUM_BATCHES`).

    The first batch is drawn without culling; every later one is culled against what the earlier
    ones made opaque (more batches cull a little more, at one pyramid build each; beyond about 8 the
    gain is small). Only for culled cameras: scenes of fewer than :data:`MIN_BATCHED` splats, or too
    light to pay for pyramids (``occlusion_culling="auto"``), are drawn in one batch.
    """
    num = NUM_BATCHES if num is None else num
    bounds = [count * i // num for i in range(num + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def opacity_integral(opacity: np.ndarray, terms: int = 64) -> np.ndarray:
    """``∫ -ln(1 - α) dA`` over a splat's footprint, in units of ``sqrt(det Σ')`` (px² when Σ' is in px²).

    With ``α = o·exp(-u)``, ``u = ½ dᵀΣ'⁻¹d`` and ``dA = 2π sqrt(det Σ') du`` over the drawn ellipse
    ``u ≤ k²/2`` (``k² = min(2 ln(255 o), 3.33²)``, the footprint where α ≥ 1/255):
    ``2π Σ_n oⁿ (1 - e^{-n k²/2}) / n²`` (a dilogarithm difference), summed to ``terms`` terms
    (at o = 0.999 the rest is below 1%). ``opacity (N,)`` → ``(N,)`` float64; 0 where o < 1/255.
    """
    o = np.clip(np.asarray(opacity, np.float64), 0.0, ALPHA_MAX)
    half_k2 = 0.5 * np.minimum(2.0 * np.log(np.maximum(255.0 * o, 1.0)), EXTEND_MAX ** 2)
    total = np.zeros_like(o)
    power = np.ones_like(o)
    for n in range(1, terms + 1):
        power *= o
        total += power * (1.0 - np.exp(-n * half_k2)) / (n * n)
    return 2.0 * np.pi * total


def view_averaged_area(scales: np.ndarray) -> np.ndarray:
    """``sqrt(det)`` of a 3D Gaussian's covariance projected along a direction, averaged over directions.

    Seen along a unit direction ``d`` (orthographically, in the Gaussian's frame) the 2×2 covariance
    has ``det = s₁²s₂²s₃² Σ dᵢ²/sᵢ²``; its square root averaged over ``d`` is at most
    ``sqrt((s₂²s₃² + s₁²s₃² + s₁²s₂²) / 3)`` (Jensen), which this returns: ``scales (N, 3)`` linear,
    world units → ``(N,)`` world units². Exact for spheres; 15% high for flat discs.
    """
    s2 = np.square(np.asarray(scales, np.float64))
    return np.sqrt((s2[:, 1] * s2[:, 2] + s2[:, 0] * s2[:, 2] + s2[:, 0] * s2[:, 1]) / 3.0)


def optical_depth(means: np.ndarray, view_area: np.ndarray, opacity_int: np.ndarray, viewmat: np.ndarray,
                  K: np.ndarray, width: int, height: int, near: float, far: float) -> float:
    """Estimated ``Σ -ln(1 - α)`` over the splats at the average pixel the object covers.

    A pixel's transmittance after all its splats is ``exp(-that sum)``; occlusion culling can only
    skip fragments where it has fallen below ``min_transmittance`` before the last splat, so it can
    only pay once the sum is well past ``ln(1 / min_transmittance)`` (:data:`CULLING_DEPTH` times
    that). Each splat adds :func:`opacity_integral` × ``sqrt(det Σ')``, its projected area taken as
    :func:`view_averaged_area` × ``fx fy / z²`` (at least the 0.3 px² blur); the covered pixels are
    the on-screen bounding box of the splat centres. A rough figure, cheap enough for every frame (an
    even subsample of at most about 16k splats): against the same sum over the exact projected
    covariances it came within 10% on random balls and the teddy bear example, and 2.5× high on a
    generated sample (far below the threshold either way).

    Args:
        means: ``(N, 3)`` float32 world centres. view_area: ``(N,)`` world units²
            (:func:`view_averaged_area`). opacity_int: ``(N,)`` (:func:`opacity_integral`).
        viewmat: world-to-camera ``(4, 4)``, OpenCV axes. K: pixel intrinsics ``(3, 3)``.
        width, height: image size, pixels. near, far: the z range drawn, world units.
    """
    n = means.shape[0]
    step = max(1, -(-n // _DEPTH_SAMPLES))
    vm = np.asarray(viewmat, np.float32)
    sample = means[::step]
    x, y, z = (camera_coordinate(sample, vm[i]) for i in range(3))
    zs = np.where(z > 0, z, 1.0)
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    u = fx * x / zs + cx
    v = fy * y / zs + cy
    on = (z > near) & (z < far) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    if not on.any():
        return 0.0
    area = np.maximum(view_area[::step][on] * (fx * fy) / np.square(zs[on]), BLUR)
    total = step * float((opacity_int[::step][on] * area).sum())
    box = (u[on].max() - u[on].min() + 1.0) * (v[on].max() - v[on].min() + 1.0)
    return total / float(box)


class TransmittancePyramid:
    """The max-pyramid of transmittance that pass 1 culls against, in one moderngl context.

    Level l holds, per 2^l × 2^l pixel block, the largest ``T = 1 - A`` of the camera's image in the
    accumulation target. Level 2 has a texture of its own ("base", ``hiz_base.frag``); levels 3.. lie
    side by side in a second one ("upper", ``hiz_upper.frag``), all built from the base in one pass,
    so that a pyramid costs two passes, not one a level.

    Args:
        ctx: the ``moderngl.Context`` (current while any method runs).
        accum_unit: the texture unit the accumulation target's colour texture is bound to for reading.

    Raises ``moderngl.Error`` when the context cannot compile the programs (they gather texels,
    GLSL 4.0): there is no occlusion culling then.
    """

    def __init__(self, ctx, accum_unit: int):
        import moderngl

        self._mgl = moderngl
        self.ctx = ctx
        fullscreen = gl_shaders.source("fullscreen.vert")
        self._base_prog = ctx.program(vertex_shader=fullscreen, fragment_shader=gl_shaders.source("hiz_base.frag"))
        try:
            self._upper_prog = ctx.program(vertex_shader=fullscreen,
                                           fragment_shader=gl_shaders.source("hiz_upper.frag"))
        except moderngl.Error:
            self._base_prog.release()
            raise
        self._accum_unit = accum_unit
        self._base_prog["u_accum"].value = accum_unit
        self._upper_prog["u_hiz_base"].value = UNIT_HIZ_BASE
        self._vaos = [ctx.vertex_array(p, []) for p in (self._base_prog, self._upper_prog)]
        self._levels = None      # (size, [(base tex, fbo), (upper tex, fbo)], level rects)

    def _textures(self, width: int, height: int):
        """Textures of the pyramid of a ``width × height`` image (kept while the size stays).

        Returns ``(size, [(base tex, fbo), (upper tex, fbo)], rects)``, ``rects[l] = (x, y, w, h)``.
        """
        if self._levels is not None and self._levels[0] == (width, height):
            return self._levels
        self._release_textures()
        rects = [(0, 0, width, height), (0, 0, (width + 1) // 2, (height + 1) // 2)]  # unused: 0, 1
        w, h = -(-width // 4), -(-height // 4)
        rects.append((0, 0, w, h))
        x = 0
        while (w > 1 or h > 1) and len(rects) < MAX_LEVELS:
            w, h = (w + 1) // 2, (h + 1) // 2
            rects.append((x, 0, w, h))
            x += w
        sizes = [rects[2][2:], (max(1, x), max([r[3] for r in rects[3:]], default=1))]
        pairs = []
        for size in sizes:
            tex = self.ctx.texture(size, 1, dtype="f4")
            tex.filter = (self._mgl.NEAREST, self._mgl.NEAREST)
            tex.repeat_x = tex.repeat_y = False
            pairs.append((tex, self.ctx.framebuffer(color_attachments=[tex])))
        self._levels = ((width, height), pairs, rects)
        return self._levels

    def build(self, color_tex, origin_y: int, width: int, height: int) -> tuple[int, bytes]:
        """Rebuild the pyramid from the accumulated alpha of the camera at rows ``origin_y…`` of
        ``color_tex`` and bind its textures to :data:`UNIT_HIZ_BASE` / :data:`UNIT_HIZ_UPPER`.

        Returns the number of levels and the level rectangles as ``ivec4[MAX_LEVELS]`` bytes (pass 1's
        ``u_hiz_levels`` and ``u_hiz_rect``). Leaves blending off and the upper level's framebuffer bound.
        """
        _, ((base, base_fbo), (upper, upper_fbo)), rects = self._textures(width, height)
        rect_data = np.zeros((MAX_LEVELS, 4), np.int32)
        rect_data[: len(rects)] = rects
        self.ctx.disable(self._mgl.BLEND)
        color_tex.use(self._accum_unit)
        base_fbo.use()
        self.ctx.viewport = self.ctx.scissor = (0, 0, *base.size)
        self._base_prog["u_src_rect"].value = (0, origin_y, width, height)
        self._vaos[0].render(self._mgl.TRIANGLES, vertices=3)
        base.use(UNIT_HIZ_BASE)
        if len(rects) > 3:
            upper_fbo.use()
            self.ctx.viewport = self.ctx.scissor = (0, 0, *upper.size)
            up = self._upper_prog
            up["u_base_size"].value = base.size
            up["u_hiz_levels"].value = len(rects)
            up["u_hiz_rect"].write(rect_data.tobytes())
            self._vaos[1].render(self._mgl.TRIANGLES, vertices=3)
        upper.use(UNIT_HIZ_UPPER)
        return len(rects), rect_data.tobytes()

    def _release_textures(self) -> None:
        if self._levels is not None:
            for pair in self._levels[1]:
                for obj in pair:
                    obj.release()
            self._levels = None

    def release(self) -> None:
        """Free the programs and textures (the context must be current)."""
        self._release_textures()
        for obj in (*self._vaos, self._base_prog, self._upper_prog):
            obj.release()
        self._vaos = []
