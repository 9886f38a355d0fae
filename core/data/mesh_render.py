"""Normalising meshes to the canonical framing, and rasterising RGBA views.

Three steps, each usable alone:

1. :func:`~splatgen.core.data.mesh_load.load_parts` (in ``mesh_load.py``, importable from here too)
   reads a model (OBJ/MTL/textures, GLB/GLTF, PLY, STL, OFF) through trimesh into :class:`Part` s.
2. :func:`normalisation_matrix` computes the 4×4 that maps the model into the canonical world:
   catalog rotation applied, per-axis catalog size applied, bounding box centred on the origin,
   bounding sphere radius ``framing.OBJECT_RADIUS``; world Y is up.
3. :class:`MeshRenderer` rasterises the parts with OpenGL (moderngl; EGL, so llvmpipe works
   headless) for OpenCV cameras (``viewmats (C, 4, 4)`` world-to-camera, ``K (3, 3)``), so that a
   world point X lands at pixel ``u = fx·x/z + cx``, ``v = fy·y/z + cy`` with ``(x, y, z)`` the
   camera-space point and row 0 at the top, exactly as gsplat projects it. Antialiasing is 2×
   supersampling, averaged in premultiplied colour; output is straight (unpremultiplied) RGBA8.

Lighting is Lambertian and fixed in the world for all the cameras of a call (a key light, a weaker
fill and a sky/ground ambient term; :mod:`splatgen.core.data.lighting` holds the default rig and
the per-object variation the dataset builder uses), so a surface has the same colour in every view —
what a view-independent Gaussian colour can reproduce. Surfaces are two-sided (normals face the
camera). Colours are treated as display (sRGB) values throughout; no tone mapping.
"""

from __future__ import annotations

import math

import numpy as np

from .. import framing
# the default lights (world space, Y up) live with per-object lighting in lighting.py
from .lighting import AMBIENT, DEFAULT_LIGHTING, FILL_LIGHT, KEY_LIGHT, SKY, Lighting  # noqa: F401
# loading lives in mesh_load.py; these names stay importable from here
from .mesh_load import MAX_TEXTURE_SIDE, _to_rgba_array, load_parts, texture_from_bytes  # noqa: F401
from .parts import CREASE_ANGLE_DEG, LoadedModel, ModelError, Part, crease_normals  # noqa: F401
from ..render.foreign_context import foreign_context_released, release_current_egl

#: Texture alpha below which an opaque part's fragment is cut out (leaves, grilles).
ALPHA_CUTOFF = 0.5


# ---------------------------------------------------------------------- normalisation
def normalisation_matrix(
    parts: list[Part],
    rotation: list[list[float]] | np.ndarray | None = None,
    size_cm: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """The ``(4, 4)`` float64 that maps model coordinates to the canonical world.

    ``rotation`` (3×3, ``x' = R x``) is applied first; then, when ``size_cm`` = (width, depth,
    height) is given, each axis is scaled so the box has the catalog's proportions (x = width,
    y = height, z = depth — SweetHome3D stretches models to their catalog size); then the box is
    centred at the origin and scaled uniformly so half its diagonal is ``framing.OBJECT_RADIUS``.
    Raises :class:`ModelError` for zero-size or non-finite bounds.
    """
    pts = np.concatenate([p.positions for p in parts]).astype(np.float64)
    R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    q = pts @ R.T
    lo, hi = q.min(0), q.max(0)
    ext = hi - lo
    if not np.isfinite(ext).all():
        raise ModelError("non-finite bounds")
    if ext.max() <= 1e-9 * max(1.0, float(np.abs(q).max())):
        raise ModelError("zero-size bounds (all vertices at one point)")
    S = np.ones(3)
    if size_cm is not None:
        width, depth, height = size_cm
        target = np.array([width, height, depth], dtype=np.float64)
        ok = ext > 1e-6 * ext.max()  # a flat axis (a rug, a poster) keeps its thickness
        S[ok] = target[ok] / ext[ok]
        if (~ok).any():
            S[~ok] = math.exp(float(np.log(S[ok]).mean()))
    M = np.diag(S) @ R
    q2 = pts @ M.T
    lo, hi = q2.min(0), q2.max(0)
    centre = (lo + hi) / 2
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    if not radius > 0:
        raise ModelError("zero-size bounds")
    k = framing.OBJECT_RADIUS / radius
    out = np.eye(4)
    out[:3, :3] = k * M
    out[:3, 3] = -k * centre
    return out


def transform_parts(parts: list[Part], matrix: np.ndarray) -> list[Part]:
    """Parts moved by a ``(4, 4)`` affine ``matrix`` (normals by its inverse transpose)."""
    A, t = matrix[:3, :3], matrix[:3, 3]
    N = np.linalg.inv(A).T
    out = []
    for p in parts:
        n = p.normals.astype(np.float64) @ N.T
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        out.append(Part((p.positions.astype(np.float64) @ A.T + t).astype(np.float32), n.astype(np.float32),
                        p.uvs, p.colors, p.base_color, p.texture, p.blend, p.cutout, p.name))
    return out


# ---------------------------------------------------------------------- rasterising
_VERTEX_SHADER = """
#version 330
uniform mat4 u_clip_from_world;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
in vec4 in_col;
out vec3 v_pos;
out vec3 v_nrm;
out vec2 v_uv;
out vec4 v_col;
void main() {
    v_pos = in_pos;
    v_nrm = in_nrm;
    v_uv = in_uv;
    v_col = in_col;
    gl_Position = u_clip_from_world * vec4(in_pos, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform sampler2D u_tex;
uniform bool u_use_tex;
uniform bool u_cutout;
uniform bool u_blend;
uniform float u_cutoff;
uniform vec4 u_color;
uniform vec3 u_cam_pos;
uniform vec3 u_key_dir;
uniform vec3 u_key;
uniform vec3 u_fill_dir;
uniform vec3 u_fill;
uniform vec3 u_ambient;
uniform float u_sky;
in vec3 v_pos;
in vec3 v_nrm;
in vec2 v_uv;
in vec4 v_col;
out vec4 f_color;
void main() {
    vec4 base = v_col * u_color;
    if (u_use_tex) {
        // OBJ/GLTF v runs up from the image's bottom row; the texture is uploaded top row first
        base *= texture(u_tex, vec2(v_uv.x, 1.0 - v_uv.y));
    }
    if (!u_blend) {
        if (u_cutout && base.a < u_cutoff) discard;
        base.a = 1.0;
    } else if (base.a < 0.004) {
        discard;
    }
    vec3 n = normalize(v_nrm);
    if (dot(n, u_cam_pos - v_pos) < 0.0) n = -n;  // two-sided
    vec3 light = u_ambient + u_sky * n.y
               + u_key * max(dot(n, u_key_dir), 0.0)
               + u_fill * max(dot(n, u_fill_dir), 0.0);
    vec3 rgb = clamp(base.rgb * light, 0.0, 1.0);
    f_color = vec4(rgb * base.a, base.a);  // premultiplied, so averaging and blending are exact
}
"""


def gl_projection(K: np.ndarray, width: int, height: int,
                  near: float = framing.NEAR, far: float = framing.FAR) -> np.ndarray:
    """``(4, 4)`` clip-from-camera matrix for an OpenCV camera ``K (3, 3)`` (x right, y down, z fwd).

    Pixel ``(u, v)`` (``u = fx·x/z + cx``, +0.5-centred, row 0 at the top) maps to normalised
    device coordinates ``x_ndc = 2u/W - 1`` and ``y_ndc = 1 - 2v/H`` (OpenGL's y points up, so the
    image read back from OpenGL is flipped once, vertically). Depth: z = near → -1, z = far → +1.
    """
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    P = np.zeros((4, 4))
    P[0, 0] = 2 * fx / width
    P[0, 2] = 2 * cx / width - 1
    P[1, 1] = -2 * fy / height
    P[1, 2] = 1 - 2 * cy / height
    P[2, 2] = (far + near) / (far - near)
    P[2, 3] = -2 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


class MeshRenderer:
    """An offscreen OpenGL rasteriser for :class:`Part` s; one per process (it owns a GL context).

    ``supersample`` renders at that many times the resolution and box-filters down (2 → 4 samples
    a pixel), in premultiplied colour.
    """

    def __init__(self, supersample: int = 2):
        import moderngl

        self._mgl = moderngl
        # Another GL context current on this thread (Qt's, the splat renderer's) is stepped aside
        # while ours works; ours is made current only for the duration of each call.
        with foreign_context_released():
            try:
                self.ctx = moderngl.create_context(standalone=True, backend="egl")
            except Exception:  # noqa: BLE001 - fall back to the platform default (GLX, WGL, CGL)
                self.ctx = moderngl.create_context(standalone=True)
            self._setup(supersample)
            release_current_egl()

    def _setup(self, supersample: int) -> None:
        self.prog = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.supersample = int(supersample)
        self._fbo = None
        self._fbo_size = None
        self._white = self.ctx.texture((1, 1), 4, bytes([255, 255, 255, 255]))
        self._set_lighting(DEFAULT_LIGHTING)
        self.prog["u_cutoff"].value = ALPHA_CUTOFF
        self.prog["u_tex"].value = 0

    def _set_lighting(self, lighting: Lighting) -> None:
        self.prog["u_key_dir"].value = tuple(lighting.key_dir)
        self.prog["u_key"].value = tuple(lighting.key_rgb)
        self.prog["u_fill_dir"].value = tuple(lighting.fill_dir)
        self.prog["u_fill"].value = tuple(lighting.fill_rgb)
        self.prog["u_ambient"].value = tuple(lighting.ambient_rgb)
        self.prog["u_sky"].value = float(lighting.sky)

    def _framebuffer(self, w: int, h: int):
        if self._fbo_size != (w, h):
            if self._fbo is not None:
                self._fbo.release()
            self._fbo = self.ctx.framebuffer(
                color_attachments=[self.ctx.renderbuffer((w, h), 4)],
                depth_attachment=self.ctx.depth_renderbuffer((w, h)),
            )
            self._fbo_size = (w, h)
        return self._fbo

    def render(self, parts: list[Part], viewmats: np.ndarray, K: np.ndarray,
               width: int, height: int, lighting: Lighting | None = None) -> np.ndarray:
        """Render ``parts`` (world coordinates) for each camera under ``lighting`` (fixed in the
        world for all the cameras; default :data:`~splatgen.core.data.lighting.DEFAULT_LIGHTING`).

        ``viewmats (C, 4, 4)`` OpenCV world-to-camera, ``K (3, 3)`` pixel intrinsics for a
        ``width``×``height`` image. Returns ``(C, height, width, 4)`` uint8 straight RGBA, row 0 at
        the top; alpha 0 where nothing was drawn (RGB 0 there).
        """
        with foreign_context_released(), self.ctx:
            self._set_lighting(lighting or DEFAULT_LIGHTING)
            return self._render(parts, viewmats, K, width, height)

    def _render(self, parts: list[Part], viewmats: np.ndarray, K: np.ndarray,
                width: int, height: int) -> np.ndarray:
        mgl, ctx, prog = self._mgl, self.ctx, self.prog
        s = self.supersample
        W, H = width * s, height * s
        Ks = np.asarray(K, dtype=np.float64).copy()
        Ks[:2] *= s  # +0.5-centred pixels: scaling the continuous image coordinates is exact
        P = gl_projection(Ks, W, H)
        fbo = self._framebuffer(W, H)
        resources, draws = [], []
        try:
            textures: dict[int, object] = {}
            for p in parts:
                n = len(p.positions)
                uv = p.uvs if p.uvs is not None else np.zeros((n, 2), np.float32)
                data = np.concatenate([p.positions, p.normals, uv, p.colors], axis=1).astype("f4")
                vbo = ctx.buffer(data.tobytes())
                vao = ctx.vertex_array(prog, [(vbo, "3f 3f 2f 4f", "in_pos", "in_nrm", "in_uv", "in_col")])
                resources += [vao, vbo]
                tex = None
                if p.texture is not None and p.uvs is not None:
                    key = id(p.texture)
                    if key not in textures:
                        img = np.ascontiguousarray(p.texture)
                        t = ctx.texture((img.shape[1], img.shape[0]), 4, img.tobytes())
                        t.build_mipmaps()
                        t.filter = (mgl.LINEAR_MIPMAP_LINEAR, mgl.LINEAR)
                        t.repeat_x = t.repeat_y = True
                        textures[key] = t
                        resources.append(t)
                    tex = textures[key]
                centroid = p.positions.mean(0) if n else np.zeros(3)
                draws.append((p, vao, tex, centroid))
            out = np.empty((len(viewmats), H, W, 4), dtype=np.uint8)
            fbo.use()
            ctx.viewport = (0, 0, W, H)
            for ci, vm in enumerate(np.asarray(viewmats, dtype=np.float64)):
                clip = P @ vm
                cam_pos = -vm[:3, :3].T @ vm[:3, 3]
                prog["u_clip_from_world"].write(clip.T.astype("f4").tobytes())  # GLSL is column-major
                prog["u_cam_pos"].value = tuple(cam_pos)
                fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                ctx.enable(mgl.DEPTH_TEST)
                ctx.disable(mgl.CULL_FACE)
                ctx.disable(mgl.BLEND)
                fbo.depth_mask = True
                for p, vao, tex, _ in draws:
                    if not p.blend:
                        self._draw(p, vao, tex)
                # semi-transparent parts: over the opaque ones, far to near, without writing depth
                transparent = [d for d in draws if d[0].blend]
                if transparent:
                    ctx.enable(mgl.BLEND)
                    ctx.blend_func = mgl.ONE, mgl.ONE_MINUS_SRC_ALPHA
                    fbo.depth_mask = False
                    transparent.sort(key=lambda d: -float(np.linalg.norm(d[3] - cam_pos)))
                    for p, vao, tex, _ in transparent:
                        self._draw(p, vao, tex)
                    fbo.depth_mask = True
                    ctx.disable(mgl.BLEND)
                buf = fbo.read(components=4, dtype="f1")
                out[ci] = np.frombuffer(buf, dtype=np.uint8).reshape(H, W, 4)[::-1]
        finally:
            for r in resources:
                r.release()
        return _downsample(out, s)

    def _draw(self, p: Part, vao, tex) -> None:
        prog = self.prog
        prog["u_color"].value = tuple(float(c) for c in p.base_color)
        prog["u_use_tex"].value = tex is not None
        prog["u_cutout"].value = bool(p.cutout)
        prog["u_blend"].value = bool(p.blend)
        (tex or self._white).use(0)
        vao.render(self._mgl.TRIANGLES)

    def release(self) -> None:
        with foreign_context_released():
            self.ctx.release()


def _downsample(premult: np.ndarray, s: int) -> np.ndarray:
    """``(C, sH, sW, 4)`` premultiplied uint8 → ``(C, H, W, 4)`` straight uint8 by s×s box filter."""
    acc = np.zeros((premult.shape[0], premult.shape[1] // s, premult.shape[2] // s, 4), dtype=np.uint16)
    for dy in range(s):  # integer sums of strided views: far faster than a float mean over axes
        for dx in range(s):
            acc += premult[:, dy::s, dx::s]
    alpha = acc[..., 3:4].astype(np.float32)
    rgb = acc[..., :3].astype(np.float32) * (255.0 / np.maximum(alpha, 1.0))
    out = np.empty(acc.shape, dtype=np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    out[..., 3:4] = (alpha / (s * s) + 0.5).astype(np.uint8)
    return out

