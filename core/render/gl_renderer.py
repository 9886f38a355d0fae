"""The OpenGL splat renderer: depth-sorted, instanced, alpha-blended quads (as web splat viewers draw).

Not differentiable; meant for fast viewing without CUDA, headless through EGL or inside a Qt
``QOpenGLWidget`` (any moderngl context, OpenGL ≥ 3.3; occlusion culling needs 4.0, and is left
out below that). It follows the image model of :mod:`splatgen.core.render`, with gsplat's
constants (α ≤ 0.999, α < 1/255 skipped, 3.33σ extent, 0.3 px² low-pass, clamped Jacobian). The
shaders are files under ``shaders/`` (:mod:`.gl_shaders`); occlusion culling is :mod:`.gl_culling`.

* **Static upload** (:meth:`GLSplatRenderer.set_gaussians`, once per scene): per Gaussian the mean
  and opacity, the 3D covariance ``Σ = R S² Rᵀ`` and the base colour go into RGBA32F data textures.
* **Per frame, CPU**: camera-space depth of the centres, cull ``z`` outside ``(near, far)``, stable
  radix argsort near → far, upload the order (4 bytes a splat). Skipped when the camera's z axis
  (the third row of the view matrix), near and far are those of the previous frame: the order
  depends on nothing else. For SH degree ≥ 1 the view-dependent colour is evaluated with
  :func:`~splatgen.core.render.sh.eval_sh` and uploaded when the camera centre moves.
* **Pass 1, "project"** (``project.vert`` + transform feedback, one point per splat, in sorted
  order): EWA projection ``Σ' = J W Σ Wᵀ Jᵀ + 0.3 I`` with gsplat's clamping of ``x/z, y/z`` to the
  image plus 0.3× the half field of view, and the footprint: the ellipse where ``α ≥ 1/255``
  (``dᵀΣ'⁻¹d ≤ 2 ln(255 o)``, at most 3.33σ: gsplat's opacity-aware extent). The quad drawn for it
  is the smaller of the rectangle along the ellipse's axes and the pixel box it still has to cover
  (its bounding box on screen, shrunk by occlusion culling). The fragment shader gets the
  "whitened" offset ``w = Σ'^{-½} d`` interpolated across the quad (linear in the pixel position, so
  exact for any parallelogram), and ``dᵀΣ'⁻¹d = |w|²``. Done once per splat rather than once per
  quad corner, because the vertex stage of llvmpipe is single-threaded.
* **Pass 2, "splat"** (``splat.vert`` / ``splat.frag``): one instanced triangle strip (4 vertices)
  per splat, reading pass 1's output as per-instance attributes. The fragment shader evaluates
  ``α = min(0.999, o·exp(-½|w|²))`` at the pixel centre, discards ``α < 1/255``, and writes
  ``(α c, α)`` (and, when depth is asked for, ``(α z, α)`` to a second RGBA32F attachment). Splats
  are drawn front to back with the premultiplied *under* operator, blend ``(ONE_MINUS_DST_ALPHA,
  ONE)``: exactly the compositing ``C = Σ T_k α_k c_k``, ``A = 1 - Π(1 - α_k)``,
  ``D = Σ T_k α_k z_k``. Accumulation is in float32, except for the frames of a ``display_8bit``
  renderer (the GUI viewport, the frames ``splatgen view`` streams): RGBA8, as the web splat viewers
  blend. Every blend step then rounds to 1/255 and a contribution below half a step is lost, for a
  faster frame on llvmpipe (the measured difference: benchmarks/README.md, "8-bit display frames").
* **Tiles** (a batch of scenes ``(B, N)``, one camera): scene ``b`` is drawn in box ``b`` of the
  frame, all boxes one size (a grid of samples side by side). One sort orders every splat by scene,
  then near → far; then passes 1 and 2 run scene by scene over its range of that order, pass 2 in
  its box's viewport and scissor (the projection into a box does not depend on which box; a
  scene's projected splats are drawn while they are still in the CPU's caches, which llvmpipe
  needs). No occlusion culling here.
* **Resolve**: a full-screen pass finishes ``rgb = C + (1 - A)·bg``, ``depth = D / A`` (0 where
  ``A = 0``): into float32 images that are read back (offscreen, ``resolve.frag``), into the
  caller's framebuffer (mode ``"rgb"``, ``"alpha"`` or ``"depth"``, optionally flipped for a
  bottom-left-origin window, ``display.frag``), or into an RGBA8 target read back as bytes
  (:meth:`GLSplatRenderer.render_rgb8`, a viewer's frame).

Image orientation: offscreen images come back with row 0 = top (pixel ``v ∈ [0, 1)``), like the
torch and gsplat renderers.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from .. import framing
from ..cameras import camera_coordinate
from ..gaussians import Gaussians, quat_to_rotation_matrix
from . import RenderError, depth_shading, gl_culling, gl_shaders
from .foreign_context import foreign_context_released, release_current_egl
from .gl_culling import CULLING, CULLING_DEPTH, MIN_BATCHED, UNIT_HIZ_BASE, UNIT_HIZ_UPPER, TransmittancePyramid
from .gl_shaders import ALPHA_MAX, BLUR, EXTEND_MAX, HIZ_SPAN
from .sh import eval_sh

#: Data textures are this many texels wide; Gaussian i sits at texel (i % TEX_WIDTH, i // TEX_WIDTH).
TEX_WIDTH = 4096
#: Pixels (and whole splats) behind a transmittance below this are skipped (gsplat's early stop).
T_MIN = 1e-4
#: The floor for on-screen viewing (the GUI viewport, ``splatgen view``): below one step of an 8-bit
#: display, and about 15% fewer fragments than :data:`T_MIN` on dense scenes.
VIEW_MIN_TRANSMITTANCE = 1.0 / 255.0
#: What :meth:`GLSplatRenderer.render` can show / return.
MODES = ("rgb", "alpha", "depth")
_MAX_TARGET_BYTES = 1 << 28    # cap on the stacked offscreen targets (2 × RGBA32F per pixel)
_PROJ_STRIDE = 64              # bytes per splat written by pass 1 (4 × vec4)

# Texture units (the pyramid's, gl_culling.UNIT_HIZ_*, are 4 and 5).
_UNIT_ACCUM, _UNIT_ACCUM_DEPTH = 6, 7


def create_headless_context():
    """A standalone moderngl context with no window: EGL (llvmpipe without a GPU), else the platform's
    default. The renderer, ``splatgen bench render`` and ``bench viewport`` all open theirs here."""
    import moderngl

    # Ask for 4.3 first: some drivers hand out exactly the version requested, and occlusion
    # culling needs GLSL 4.0; fall back to the 3.3 the renderer needs at least.
    attempts = ({"backend": "egl", "require": 430}, {"backend": "egl", "require": 330}, {"require": 330})
    for i, kwargs in enumerate(attempts):
        try:
            return moderngl.create_context(standalone=True, **kwargs)
        except Exception:  # noqa: BLE001 - moderngl raises plain Exception when a context is refused
            if i == len(attempts) - 1:
                raise


def _argsort_positive(z: np.ndarray) -> np.ndarray:
    """Stable ascending argsort of positive float32 values, exact.

    Positive floats order like their bit patterns as unsigned integers; two stable passes over 16-bit
    halves (least significant first) are a radix sort, which numpy does in linear time for 16-bit
    keys: about 4× faster than a comparison sort at 262k values.
    """
    bits = np.ascontiguousarray(z, dtype=np.float32).view(np.uint32)
    if bits.shape[0] < 4096:
        return np.argsort(bits, kind="stable")
    first = np.argsort((bits & 0xFFFF).astype(np.uint16), kind="stable")
    second = np.argsort((bits[first] >> 16).astype(np.uint16), kind="stable")
    return first[second]


def _check_mode(mode: str) -> int:
    if mode not in MODES:
        raise RenderError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return MODES.index(mode)


class GLSplatRenderer:
    """Owns the shader programs and GPU buffers of one splat scene in one OpenGL context.

    Args:
        ctx: an existing ``moderngl.Context`` (e.g. ``moderngl.create_context()`` inside a Qt
            ``QOpenGLWidget.initializeGL``; the caller keeps it current while calling us), or
            ``None`` to create and own a headless EGL context (made current around each call, so
            the renderer can be used from any one thread at a time).
        occlusion_culling: skip splats (and the parts of splats) that lie wholly behind pixels whose
            transmittance is already below ``min_transmittance``: ``True`` (whenever the context
            can), ``False``, or ``"auto"`` (the default: for each camera, only when the scene's
            estimated :meth:`optical_depth` reaches :data:`CULLING_DEPTH` × ``ln(1 /
            min_transmittance)``; lighter scenes render faster without). :attr:`last_culled` tells
            what the last camera drawn did.
        min_transmittance: the transmittance below which a pixel takes nothing more; each pixel's
            error is below it. The default, :data:`T_MIN` = 1e-4, is gsplat's early stop. Viewers
            pass :data:`VIEW_MIN_TRANSMITTANCE` (1/255, below one step of an 8-bit display).
        display_8bit: accumulate the frames drawn into a caller's framebuffer (:meth:`render` with
            ``fbo``, modes ``"rgb"`` and ``"alpha"``) in an RGBA8 target instead of RGBA32F, as the
            web splat viewers do, and the same for :meth:`render_rgb8`: faster on llvmpipe, each
            blend step rounded to 1/255 (benchmarks/README.md, "8-bit display frames"). Offscreen
            float images (:meth:`render_many`, :meth:`render` without ``fbo``) are accumulated in
            float32 whatever this says.

    Usage: :meth:`set_gaussians` once per scene (or batch of scenes, drawn in tiles), then
    :meth:`render` (or :meth:`render_many`, or :meth:`render_rgb8` for a viewer's 8-bit frame) per
    frame. The renderer sets the GL state it needs (blending, viewport, scissor, no depth test or
    face culling) and does not restore it; drawing into a caller's framebuffer leaves that
    framebuffer bound. Not thread-safe.
    """

    def __init__(self, ctx=None, *, occlusion_culling: bool | str = "auto", min_transmittance: float = T_MIN,
                 display_8bit: bool = False):
        import moderngl

        if not 0.0 < min_transmittance < 1.0:
            raise RenderError(f"min_transmittance must be in (0, 1), got {min_transmittance}")
        if occlusion_culling not in CULLING:
            raise RenderError(f"occlusion_culling must be True, False or 'auto', got {occlusion_culling!r}")
        self._mgl = moderngl
        self.occlusion_culling = occlusion_culling
        self.min_transmittance = float(min_transmittance)
        self.display_8bit = bool(display_8bit)
        self._owns_ctx = ctx is None
        if ctx is None:
            with foreign_context_released():
                ctx = create_headless_context()
                release_current_egl()  # creation left it current; each use makes it current again
        self.ctx = ctx
        if self.ctx.version_code < 330:
            raise RenderError(f"the splat renderer needs OpenGL 3.3, the context has {self.ctx.version_code}")
        with self._current():
            c = self.ctx
            src = gl_shaders.source
            self._project_prog = c.program(
                vertex_shader=src("project.vert", HIZ_SPAN=HIZ_SPAN, BLUR=BLUR, EXTEND_MAX=EXTEND_MAX),
                varyings=["o_geom", "o_geom2", "o_geom3", "o_color"], varyings_capture_mode="interleaved")
            # Keyed by "with depth": colour only (one RGBA32F target), or colour and depth (two).
            self._splat_progs = {
                d: c.program(vertex_shader=src("splat.vert"),
                             fragment_shader=src("splat.frag", ALPHA_MAX=ALPHA_MAX, WITH_DEPTH=d))
                for d in (False, True)}
            fullscreen = src("fullscreen.vert")
            self._resolve_progs = {d: c.program(vertex_shader=fullscreen,
                                                fragment_shader=src("resolve.frag", WITH_DEPTH=d))
                                   for d in (False, True)}
            try:   # the pyramid gathers texels (GLSL 4.0); without it there is no occlusion culling
                self._pyramid = TransmittancePyramid(c, _UNIT_ACCUM)
            except moderngl.Error:
                self._pyramid = None
            self._display_prog = c.program(vertex_shader=fullscreen, fragment_shader=src("display.frag"))
            p = self._project_prog
            for unit, name in enumerate(("u_mean", "u_cov_a", "u_cov_b", "u_color")):
                p[name].value = unit
            p["u_hiz_base"].value = UNIT_HIZ_BASE
            p["u_hiz_upper"].value = UNIT_HIZ_UPPER
            p["u_tex_width"].value = TEX_WIDTH
            for prog in (*self._resolve_progs.values(), self._display_prog):
                prog["u_accum"].value = _UNIT_ACCUM
                if "u_accum_depth" in prog:
                    prog["u_accum_depth"].value = _UNIT_ACCUM_DEPTH
            self._fullscreen_vaos = {id(prog): c.vertex_array(prog, [])
                                     for prog in (self._display_prog, *self._resolve_progs.values())}
            self._splat_locs = {d: [prog[n].location for n in ("i_geom", "i_geom2", "i_geom3", "i_color")]
                                for d, prog in self._splat_progs.items()}
            info = c.info
            self._max_size = int(min(info["GL_MAX_RENDERBUFFER_SIZE"], info["GL_MAX_TEXTURE_SIZE"],
                                     *info["GL_MAX_VIEWPORT_DIMS"]))
            self.renderer_name = str(info.get("GL_RENDERER", ""))
        self._n = 0                 # Gaussians uploaded
        self._capacity = 0          # splats the order / projected buffers can hold
        self._textures: list = []
        self._index_buf = self._proj_buf = self._project_vao = None
        self._splat_vaos: dict = {}
        self._targets: dict = {}    # "accum", "accum_depth", "resolve", "resolve_depth" -> (fbo, *textures)
        self._sh_degree = 0
        self._sh = self._sh_means = None
        self._order_key = None      # what the uploaded order was sorted for
        self._order_count = 0
        self._color_key = None      # what the uploaded colours were evaluated for
        self._valid = np.zeros(0, np.uint32)
        self._means = np.zeros((0, 3), np.float32)
        self._scenes = 0            # scenes of an uploaded batch (0: one scene, not a batch)
        self._scene = np.zeros(0, np.uint16)    # per valid splat: its scene in the batch
        self._ranges = np.zeros(1, np.int64)    # the sorted order's start of each scene, and its end
        self._bounds = (np.zeros(3), 0.0)   # centre and radius of the means
        self._view_area = self._opacity_int = np.zeros(0)   # per valid splat, for optical_depth
        #: Whether the last camera drawn was occlusion-culled (see ``occlusion_culling``).
        self.last_culled = False

    # ------------------------------------------------------------------ context handling
    @contextlib.contextmanager
    def _current(self):
        """The owned headless context, made current for the ``with`` block (no-op for a caller's).

        A GLX context of another toolkit current on this thread (Qt's) is stepped aside meanwhile
        and made current again afterwards (see :mod:`.foreign_context`)."""
        if not self._owns_ctx:
            yield
            return
        with foreign_context_released(), self.ctx:
            yield

    def _fullscreen(self, prog) -> None:
        self._fullscreen_vaos[id(prog)].render(self._mgl.TRIANGLES, vertices=3)

    def release(self) -> None:
        """Free the GPU objects (and the context when we own it)."""
        with self._current():
            objs = [*self._textures, self._index_buf, self._proj_buf, self._project_vao,
                    *self._splat_vaos.values(), *(o for t in self._targets.values() for o in t),
                    *self._fullscreen_vaos.values(), self._project_prog, *self._splat_progs.values(),
                    *self._resolve_progs.values(), self._display_prog, self._pyramid]
            for obj in objs:
                if obj is not None:
                    obj.release()
            self._textures, self._targets, self._pyramid, self._splat_vaos = [], {}, None, {}
            self._fullscreen_vaos = {}
            self._index_buf = self._proj_buf = self._project_vao = None
            self._capacity = 0
            self._order_key = self._color_key = None
        if self._owns_ctx:
            with foreign_context_released():  # destroying a context unbinds the thread's current one
                self.ctx.release()

    # ------------------------------------------------------------------ scene upload
    @property
    def num_gaussians(self) -> int:
        return self._n

    @property
    def max_size(self) -> int:
        """The longest image side this context can render, pixels."""
        return self._max_size

    def set_gaussians(self, gaussians: Gaussians) -> None:
        """Upload one scene (shape ``(N,)``), or a batch of scenes ``(B, N)`` drawn in tiles (``tiles``
        of :meth:`render` / :meth:`render_many`; scenes of other sizes: pad them with splats below
        opacity 1/255, :func:`splatgen.core.render.batch_scenes`). The static data goes to the GPU
        here, once. CPU copies are kept of the means (for sorting) and, for SH degree ≥ 1, of the
        coefficients.
        """
        if len(gaussians.shape) not in (1, 2):
            raise RenderError("GLSplatRenderer renders one scene (N,) or a batch (B, N), got Gaussians of shape "
                              f"{tuple(gaussians.shape)}")
        g = gaussians.detach().to("cpu", torch.float32)
        scenes, per_scene = (g.shape[0], g.shape[1]) if len(g.shape) == 2 else (0, g.num_gaussians)
        if scenes > np.iinfo(np.uint16).max:
            raise RenderError(f"at most {np.iinfo(np.uint16).max} scenes a batch, got {scenes}")
        g = g.map(lambda t: t.reshape(-1, *t.shape[len(g.shape):]))
        n = g.num_gaussians
        means = g.means.numpy()
        opac = g.opacities.numpy()
        rot = quat_to_rotation_matrix(g.quats)
        cov = ((rot * g.scales[..., None, :] ** 2) @ rot.transpose(-1, -2)).numpy()   # R S² Rᵀ
        rows = max(1, -(-n // TEX_WIDTH))

        def texels(*cols):
            data = np.zeros((rows * TEX_WIDTH, 4), np.float32)
            if n:
                data[:n, :len(cols)] = np.stack(cols, axis=-1)
            return data

        data = [
            texels(means[:, 0], means[:, 1], means[:, 2], opac),
            texels(cov[:, 0, 0], cov[:, 0, 1], cov[:, 0, 2], cov[:, 1, 1]),
            texels(cov[:, 1, 2], cov[:, 2, 2]),
            texels(*eval_sh(g.sh[:, :1], torch.zeros(n, 3)).numpy().T),   # max(0, 0.5 + C0 f_dc)
        ]
        # Splats whose α can never reach 1/255 are never sorted nor drawn.
        self._valid = np.flatnonzero(opac * 255.0 >= 1.0).astype(np.uint32)
        self._means = np.ascontiguousarray(means[self._valid])
        self._scenes = scenes
        self._scene = (self._valid // max(1, per_scene)).astype(np.uint16)
        self._view_area = gl_culling.view_averaged_area(g.scales.numpy()[self._valid])
        self._opacity_int = gl_culling.opacity_integral(opac[self._valid])
        self._bounds = depth_shading.scene_bounds(self._means)
        self._sh_degree = g.sh_degree
        self._sh = g.sh if g.sh_degree > 0 else None
        self._sh_means = g.means if g.sh_degree > 0 else None
        with self._current():
            for tex in self._textures:
                tex.release()
            self._textures = []
            for arr in data:
                tex = self.ctx.texture((TEX_WIDTH, rows), 4, arr.tobytes(), dtype="f4")
                tex.filter = (self._mgl.NEAREST, self._mgl.NEAREST)
                self._textures.append(tex)
            self._ensure_capacity(max(1, len(self._valid)))
        self._order_key = None
        self._color_key = ("base",)
        self._n = n

    def _ensure_capacity(self, count: int) -> None:
        if count <= self._capacity:
            return
        for obj in (self._index_buf, self._proj_buf, self._project_vao, *self._splat_vaos.values()):
            if obj is not None:
                obj.release()
        cap = 1 << max(10, (count - 1).bit_length())
        self._index_buf = self.ctx.buffer(reserve=cap * 4, dynamic=True)
        self._proj_buf = self.ctx.buffer(reserve=cap * _PROJ_STRIDE)
        self._project_vao = self.ctx.vertex_array(self._project_prog, [(self._index_buf, "1u", "a_index")])
        attrs = (self._proj_buf, "4f 4f 4f 4f/i", "i_geom", "i_geom2", "i_geom3", "i_color")
        self._splat_vaos = {d: self.ctx.vertex_array(prog, [attrs]) for d, prog in self._splat_progs.items()}
        self._capacity = cap

    def optical_depth(self, viewmat, K, width: int, height: int, *, near: float = framing.NEAR,
                      far: float = framing.FAR) -> float:
        """The uploaded scene's estimated :func:`~.gl_culling.optical_depth` seen by one camera (``viewmat (4, 4)``,
        ``K (3, 3)``, ``width × height`` pixels): what ``occlusion_culling="auto"`` decides by."""
        return gl_culling.optical_depth(self._means, self._view_area, self._opacity_int, np.asarray(viewmat).reshape(4, 4),
                             np.asarray(K).reshape(3, 3), width, height, near, far)

    def _set_colors(self, campos: np.ndarray, sh_degree: int | None) -> None:
        """View-dependent colour for SH degree ≥ 1 (CPU, then one texture upload when it changed)."""
        deg = self._sh_degree if sh_degree is None else min(int(sh_degree), self._sh_degree)
        if deg <= 0:
            if self._color_key != ("base",):   # degree 0 asked for after a view-dependent frame
                self._upload_colors(eval_sh(self._sh[:, :1], torch.zeros(self._sh.shape[0], 3)).numpy())
                self._color_key = ("base",)
            return
        key = (deg, campos.tobytes())
        if self._color_key == key:
            return
        dirs = torch.nn.functional.normalize(self._sh_means - torch.from_numpy(campos).float(), dim=-1)
        self._upload_colors(eval_sh(self._sh, dirs, deg).numpy())
        self._color_key = key

    def _upload_colors(self, rgb: np.ndarray) -> None:
        tex = self._textures[3]
        data = np.zeros((tex.width * tex.height, 4), np.float32)
        data[: rgb.shape[0], :3] = rgb
        tex.write(data.tobytes())

    # ------------------------------------------------------------------ render targets
    def _target(self, name: str, width: int, height: int):
        """Render target of at least ``width × height``: (fbo, *colour textures), grown on demand.

        ``"accum"``: RGBA32F sums; ``"accum8"``: RGBA8 sums (``display_8bit``); ``"accum_depth"``: the
        same as ``"accum"`` plus RGBA32F depth sums;
        ``"resolve"``: RGBA32F rgb and R32F alpha; ``"resolve_depth"``: the same plus R32F depth;
        ``"frame8"``: an RGBA8 picture (:meth:`render_rgb8`).
        """
        old = self._targets.get(name)
        if old is None or old[1].width < width or old[1].height < height:
            w, h = width, height
            if old is not None:
                w, h = max(w, old[1].width), max(h, old[1].height)
                for obj in old:
                    obj.release()
            comps = {"accum": (4,), "accum8": (4,), "accum_depth": (4, 4), "resolve": (4, 1),
                     "resolve_depth": (4, 1, 1), "frame8": (4,)}[name]
            dtype = "f1" if name in ("accum8", "frame8") else "f4"
            texs = [self.ctx.texture((w, h), n, dtype=dtype) for n in comps]
            for tex in texs:
                tex.filter = (self._mgl.NEAREST, self._mgl.NEAREST)
            self._targets[name] = (self.ctx.framebuffer(color_attachments=texs), *texs)
        return self._targets[name]

    # ------------------------------------------------------------------ per frame
    def _sort(self, viewmat: np.ndarray, near: float, far: float) -> int:
        """Front-to-back order of the splats with near < z < far → index buffer; returns the count.
        For a batch, the order is by scene first (stable, so near → far within each), and
        :attr:`_ranges` says where each scene's part starts.

        The order depends only on the camera's z axis (third row of the view matrix), near and far:
        when those did not change since the last call, nothing is sorted nor uploaded.
        """
        key = (viewmat[2].tobytes(), float(near), float(far))
        if key == self._order_key:
            return self._order_count
        z = camera_coordinate(self._means, viewmat[2])
        keep = np.flatnonzero((z > near) & (z < far))
        order = keep[_argsort_positive(z[keep])]
        if self._scenes:
            scene = self._scene[order]
            order = order[np.argsort(scene, kind="stable")]
            self._ranges = np.concatenate([[0], np.cumsum(np.bincount(scene, minlength=self._scenes))])
        idx = self._valid[order]
        if idx.shape[0]:
            self._index_buf.write(idx.tobytes())
        self._order_key, self._order_count = key, idx.shape[0]
        return idx.shape[0]

    def _set_camera(self, viewmat: np.ndarray, K: np.ndarray, width: int, height: int) -> None:
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        # gsplat's clamp range: the image border plus 0.3 × tan(half fov) beyond it on each side
        # (= ±1.3 tan(half fov) for a centred principal point).
        tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
        lim = (-(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x,
               -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
        p = self._project_prog
        p["u_r0"].value = tuple(viewmat[0, :3])
        p["u_r1"].value = tuple(viewmat[1, :3])
        p["u_r2"].value = tuple(viewmat[2, :3])
        p["u_t"].value = tuple(viewmat[:3, 3])
        p["u_intr"].value = (fx, fy, cx, cy)
        p["u_lim"].value = lim
        p["u_image"].value = (width, height)

    def _draw(self, accum: str, with_depth: bool, viewmat, K, width: int, height: int, origin_y: int, *,
              near, far, sh_degree, tiles=None) -> None:
        """Sort, project and splat one camera into rows ``origin_y…`` of the accumulation target ``accum``;
        with ``tiles`` (a batch), scene ``b`` into box ``tiles[b]`` of those rows, ``K`` a box's intrinsics."""
        self.last_culled = False
        if self._n == 0:
            return
        count = self._sort(viewmat, near, far)
        if count == 0:
            return
        if self._sh_degree > 0:
            R, t = viewmat[:3, :3], viewmat[:3, 3]
            self._set_colors(-(R.T @ t), sh_degree)
        if tiles is not None:
            width, height = tiles[0][2:]
        self._set_camera(viewmat, K, width, height)
        fbo, color_tex = self._targets[accum][:2]
        prog, vao, locs = self._splat_progs[with_depth], self._splat_vaos[with_depth], self._splat_locs[with_depth]
        for unit, tex in enumerate(self._textures):
            tex.use(unit)
        vp = (0, origin_y, width, height)
        prog["u_size"].value = (float(width), float(height))
        t_min = self.min_transmittance
        if accum == "accum8":
            # An 8-bit alpha of 254 holds any T in [0.5/255, 1.5/255), and splats with α < 0.5 add
            # nothing there (their share rounds away): such pixels count as done.
            t_min = max(t_min, 1.5 / 255.0)
        self._project_prog["u_t_min"].value = t_min
        if tiles is not None:
            self._project_prog["u_hiz_levels"].value = 0
            for (x, y, w, h), start, stop in zip(tiles, self._ranges[:-1], self._ranges[1:]):
                if stop > start:
                    self._project(fbo, vp, int(start), int(stop))
                    self._splat(vao, locs, (x, origin_y + y, w, h), int(start), int(stop))
            return
        cull = (self.occlusion_culling is not False and self._pyramid is not None and width >= 2
                and height >= 2 and count >= MIN_BATCHED)
        if cull and self.occlusion_culling == "auto":
            depth = self.optical_depth(viewmat, K, width, height, near=near, far=far)
            cull = bool(depth >= CULLING_DEPTH * -np.log(self.min_transmittance))
        self.last_culled = cull
        batches = gl_culling.batches(count) if cull else [(0, count)]
        for b, (start, stop) in enumerate(batches):
            levels = 0
            if b > 0:
                levels, rects = self._pyramid.build(color_tex, origin_y, width, height)
                self._project_prog["u_hiz_rect"].write(rects)
            self._project_prog["u_hiz_levels"].value = levels
            self._project(fbo, vp, start, stop)
            self._splat(vao, locs, vp, start, stop)

    def _project(self, fbo, viewport, start: int, stop: int) -> None:
        """Pass 1 over the sorted splats ``start…stop`` (their results at the same place in the projected buffer)."""
        # Pass 1 samples the pyramid atlases; the splat target is bound (draws need a complete
        # framebuffer even with rasterizer discard) but not read.
        fbo.use()
        self.ctx.viewport = viewport
        self.ctx.scissor = viewport
        self._project_vao.transform(self._proj_buf, self._mgl.POINTS, vertices=stop - start, first=start,
                                    buffer_offset=start * _PROJ_STRIDE)

    def _splat(self, vao, locs, viewport, start: int, stop: int) -> None:
        """Pass 2: the projected splats ``start…stop`` blended into ``viewport`` of the bound target."""
        self.ctx.viewport = viewport
        self.ctx.scissor = viewport   # keep guard-band fragments out of the cameras (and tiles) beside
        for i, loc in enumerate(locs):
            vao.bind(loc, "f", self._proj_buf, "4f", offset=start * _PROJ_STRIDE + 16 * i,
                     stride=_PROJ_STRIDE, divisor=1)
        self.ctx.enable(self._mgl.BLEND)
        vao.render(self._mgl.TRIANGLE_STRIP, vertices=4, instances=stop - start)

    def _set_state(self) -> None:
        mgl = self._mgl
        self.ctx.disable(mgl.DEPTH_TEST | mgl.CULL_FACE)
        # The premultiplied "under" operator, front to back: dst += (1 - dst.a) · src.
        self.ctx.blend_func = mgl.ONE_MINUS_DST_ALPHA, mgl.ONE
        self.ctx.blend_equation = mgl.FUNC_ADD

    def _accumulate(self, with_depth: bool, viewmats, Ks, width, height, *, near, far, sh_degree,
                    display: bool = False, tiles=None):
        """Render cameras stacked vertically (camera c at rows ``c·H…``) into the accumulation target
        (the 8-bit one for a ``display`` frame of a ``display_8bit`` renderer) and bind its textures."""
        if not near > 0:
            raise RenderError(f"near must be positive, got {near}")
        accum = "accum_depth" if with_depth else ("accum8" if display and self.display_8bit else "accum")
        fbo = self._target(accum, width, height * len(viewmats))[0]
        fbo.use()
        self.ctx.scissor = None
        fbo.clear(0.0, 0.0, 0.0, 0.0)
        self._set_state()
        for c in range(len(viewmats)):
            self._draw(accum, with_depth, viewmats[c], Ks[c], width, height, c * height, near=near, far=far,
                       sh_degree=sh_degree, tiles=tiles)
        self.ctx.scissor = None
        textures = self._targets[accum]
        textures[1].use(_UNIT_ACCUM)
        if with_depth:
            textures[2].use(_UNIT_ACCUM_DEPTH)

    def _check_size(self, width: int, height: int) -> None:
        if not (0 < width <= self._max_size and 0 < height <= self._max_size):
            raise RenderError(f"image size {width}x{height} outside the GL limit of 1..{self._max_size} pixels")

    def _check_tiles(self, tiles, width: int, height: int):
        """``tiles`` as a tuple of ``(x, y, w, h)`` int boxes: one per scene of the uploaded batch, all
        of one size, inside the ``width × height`` frame (``None`` for one scene)."""
        if tiles is None:
            if self._scenes:
                raise RenderError(f"a batch of {self._scenes} scenes is drawn in tiles: pass one box per scene")
            return None
        boxes = tuple(tuple(int(v) for v in box) for box in tiles)
        if len(boxes) != self._scenes:
            raise RenderError(f"{len(boxes)} tiles for a batch of {self._scenes} scenes")
        for x, y, w, h in boxes:
            if (w, h) != boxes[0][2:] or w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
                raise RenderError(f"tile {(x, y, w, h)}: tiles must be boxes of one size inside the "
                                  f"{width}x{height} frame")
        return boxes

    def render_many(
        self,
        viewmats,
        Ks,
        width: int,
        height: int,
        *,
        background: Sequence[float] = framing.BACKGROUND,
        near: float = framing.NEAR,
        far: float = framing.FAR,
        sh_degree: int | None = None,
        outputs: Sequence[str] = ("rgb", "alpha", "depth"),
        tiles: Sequence[tuple[int, int, int, int]] | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Render ``C`` cameras offscreen (float32 throughout) and read them back.

        Args:
            viewmats: world-to-camera ``(C, 4, 4)``, OpenCV axes.
            Ks: pixel intrinsics ``(C, 3, 3)`` (or one ``(3, 3)`` for all); with ``tiles``, of one tile.
            width, height: image size in pixels.
            background: RGB in [0, 1].
            near, far: clipping distances along the camera z axis, world units.
            sh_degree: SH degree for colour (default: all the Gaussians hold).
            outputs: which of ``"rgb"``, ``"alpha"``, ``"depth"`` to read back, in this order;
                depth is only accumulated when asked for.
            tiles: for a batch of ``B`` scenes (:meth:`set_gaussians`), where each is drawn in every
                image: ``B`` boxes ``(x, y, w, h)``, pixels from the top left, all of one size; the
                rest of the image is background. ``None`` (one scene).

        Returns:
            A tuple with one numpy float32 array per entry of ``outputs``: ``rgb (C, H, W, 3)``
            (background composited, clamped to [0, 1]), ``alpha (C, H, W, 1)``, ``depth (C, H, W, 1)``
            (expected camera z, 0 where alpha is 0); row 0 is the top of the image.
        """
        for name in outputs:
            _check_mode(name)
        viewmats = np.asarray(viewmats, np.float64).reshape(-1, 4, 4)
        Ks = np.asarray(Ks, np.float64).reshape(-1, 3, 3)
        C = viewmats.shape[0]
        if Ks.shape[0] == 1 and C > 1:
            Ks = np.repeat(Ks, C, 0)
        if Ks.shape[0] != C:
            raise RenderError(f"{C} viewmats but {Ks.shape[0]} intrinsics")
        self._check_size(width, height)
        tiles = self._check_tiles(tiles, width, height)
        with_depth = "depth" in outputs
        bg = tuple(float(x) for x in np.asarray(background, np.float64).reshape(3))
        result = {name: np.empty((C, height, width, 3 if name == "rgb" else 1), np.float32) for name in outputs}
        attachment = {"rgb": 0, "alpha": 1, "depth": 2}
        # Cameras are stacked vertically in one target so that each output is one read for all of
        # them; chunked when the stack would be too tall or too big.
        per_chunk = max(1, min(C, self._max_size // height, _MAX_TARGET_BYTES // (32 * width * height)))
        with self._current():
            for start in range(0, C, per_chunk):
                stop = min(C, start + per_chunk)
                self._accumulate(with_depth, viewmats[start:stop], Ks[start:stop], width, height,
                                 near=near, far=far, sh_degree=sh_degree, tiles=tiles)
                rows = (stop - start) * height
                target = self._target("resolve_depth" if with_depth else "resolve", width, rows)
                target[0].use()
                self.ctx.viewport = (0, 0, width, rows)
                self.ctx.disable(self._mgl.BLEND)
                prog = self._resolve_progs[with_depth]
                prog["u_background"].value = bg
                self._fullscreen(prog)
                for name, arr in result.items():
                    target[0].read_into(arr[start:stop], (0, 0, width, rows), arr.shape[-1],
                                        attachment=attachment[name], dtype="f4")
        return tuple(result[name] for name in outputs)

    def render(
        self,
        viewmat,
        K,
        width: int,
        height: int,
        *,
        background: Sequence[float] = framing.BACKGROUND,
        mode: str = "rgb",
        fbo=None,
        viewport_origin: tuple[int, int] = (0, 0),
        flip_y: bool = True,
        near: float = framing.NEAR,
        far: float = framing.FAR,
        sh_degree: int | None = None,
        depth_range: tuple[float, float] | None = None,
        tiles: Sequence[tuple[int, int, int, int]] | None = None,
    ):
        """Render one camera, offscreen (read back) or into the caller's framebuffer.

        Args:
            viewmat: world-to-camera ``(4, 4)``, OpenCV axes. K: pixel intrinsics ``(3, 3)`` (with
                ``tiles``: of one tile).
            width, height: image size in pixels (device pixels of the framebuffer).
            background: RGB in [0, 1].
            mode: ``"rgb"`` (colour over the background), ``"alpha"`` or ``"depth"``.
            fbo: ``None`` renders offscreen and returns the ``mode`` image as numpy float32, row 0 =
                top: ``rgb (H, W, 3)``, ``alpha (H, W, 1)`` or ``depth (H, W, 1)`` (expected camera
                z, 0 where nothing is drawn). A ``moderngl.Framebuffer`` (e.g. a QOpenGLWidget's,
                through ``ctx.detect_framebuffer(widget.defaultFramebufferObject())``) receives the
                image (opaque; alpha shown as grey, depth as white (near) to black (far) over the
                background) in the ``width × height`` area at ``viewport_origin``; returns ``None``
                and leaves ``fbo`` bound.
            viewport_origin: with ``fbo``: lower-left corner of the drawn area, framebuffer pixels.
            flip_y: with ``fbo``: put image row 0 at the top of a bottom-left-origin framebuffer
                (windows; ``False`` keeps row 0 at the bottom, as offscreen images are stored).
            near, far: clipping distances along the camera z axis, world units.
            sh_degree: SH degree for colour (default: all the Gaussians hold).
            depth_range: with ``fbo`` and ``mode="depth"``: the depths shown white and black
                (default: :func:`~.depth_shading.depth_range`, the nearest and farthest the scene's
                bounding sphere can be).
            tiles: a batch's boxes, one per scene, as in :meth:`render_many`; with ``fbo``, only the
                boxes are drawn into it (the rest of its area is left as it is).

        Re-rendering is cheap when the camera did not move: the splat order is kept (see
        :meth:`_sort`), and only the projection and the fragments are redone.
        """
        mode_id = _check_mode(mode)
        viewmat = np.asarray(viewmat, np.float64).reshape(4, 4)
        K = np.asarray(K, np.float64).reshape(3, 3)
        if fbo is None:
            return self.render_many(viewmat[None], K[None], width, height, background=background, near=near,
                                    far=far, sh_degree=sh_degree, outputs=(mode,), tiles=tiles)[0][0]
        self._check_size(width, height)
        tiles = self._check_tiles(tiles, width, height)
        with_depth = mode == "depth"
        if depth_range is None:
            depth_range = depth_shading.depth_range(self._bounds, viewmat, near, far)
        with self._current():
            self._accumulate(with_depth, viewmat[None], K[None], width, height, near=near, far=far,
                             sh_degree=sh_degree, display=True, tiles=tiles)
            self._show(fbo, (int(viewport_origin[0]), int(viewport_origin[1]), width, height), mode_id,
                       background, flip_y, depth_range, tiles)
        return None

    def render_rgb8(
        self,
        viewmat,
        K,
        width: int,
        height: int,
        *,
        background: Sequence[float] = framing.BACKGROUND,
        near: float = framing.NEAR,
        far: float = framing.FAR,
        sh_degree: int | None = None,
    ) -> np.ndarray:
        """One camera's colour over ``background`` as the 8-bit image a viewer streams: uint8
        ``(H, W, 3)``, row 0 = top. The on-screen path (accumulated in 8 bits with ``display_8bit``)
        drawn into an RGBA8 target of our own and read back as bytes: a quarter of the float32
        readback of :meth:`render_many` and no conversion afterwards. Arguments as :meth:`render`."""
        viewmat = np.asarray(viewmat, np.float64).reshape(4, 4)
        K = np.asarray(K, np.float64).reshape(3, 3)
        self._check_size(width, height)
        self._check_tiles(None, width, height)
        image = np.empty((height, width, 3), np.uint8)
        with self._current():
            self._accumulate(False, viewmat[None], K[None], width, height, near=near, far=far,
                             sh_degree=sh_degree, display=True)
            fbo = self._target("frame8", width, height)[0]
            self._show(fbo, (0, 0, width, height), MODES.index("rgb"), background, False, None)
            fbo.read_into(image, (0, 0, width, height), 3, dtype="f1")
        return image

    def _show(self, fbo, viewport: tuple[int, int, int, int], mode_id: int, background, flip_y: bool,
              depth_range, tiles=None) -> None:
        """Draw the accumulated frame (mode ``MODES[mode_id]``) over ``background`` into the
        ``viewport`` (x, y, W, H) of ``fbo``, or only its ``tiles`` (image boxes, top-left origin);
        leaves ``fbo`` bound. Needs the context current."""
        fbo.use()
        self.ctx.viewport = viewport
        self.ctx.disable(self._mgl.BLEND)
        p = self._display_prog
        p["u_viewport"].value = viewport
        p["u_background"].value = tuple(float(x) for x in np.asarray(background, np.float64).reshape(3))
        p["u_flip"].value = int(bool(flip_y))
        p["u_mode"].value = mode_id
        lo, hi = (0.0, 1.0) if depth_range is None else (float(depth_range[0]), float(depth_range[1]))
        p["u_depth_range"].value = (lo, hi if hi > lo else lo + 1e-6)
        vx, vy, _, vh = viewport
        for x, y, w, h in tiles or [(0, 0, viewport[2], vh)]:
            self.ctx.scissor = (vx + x, vy + (vh - y - h if flip_y else y), w, h)
            self._fullscreen(p)
        self.ctx.scissor = None

