"""OpenGL splat renderer: depth-sorted, instanced, alpha-blended quads (as web splat viewers draw).

Not differentiable; meant for fast viewing without CUDA, headless through EGL or inside a Qt
``QOpenGLWidget`` (any moderngl context, OpenGL ≥ 3.3; occlusion culling needs 4.0, and is
left out below that). It follows the image model of
:mod:`splatgen.core.render`, with gsplat's constants (α ≤ 0.999, α < 1/255 skipped, 3.33σ extent,
0.3 px² low-pass, clamped Jacobian):

* **Static upload** (:meth:`GLSplatRenderer.set_gaussians`, once per scene): per Gaussian the mean
  and opacity, the 3D covariance ``Σ = R S² Rᵀ`` and the base colour go into RGBA32F data textures.
* **Per frame, CPU**: camera-space depth of the centres, cull ``z`` outside ``(near, far)``, stable
  radix argsort near → far, upload the order (4 bytes a splat). Skipped when the camera's z axis
  (the third row of the view matrix), near and far are those of the previous frame: the order
  depends on nothing else. For SH degree ≥ 1 the view-dependent colour is evaluated with
  :func:`~splatgen.core.render.sh.eval_sh` and uploaded when the camera centre moves.
* **Pass 1, "project"** (vertex shader + transform feedback, one point per splat, in sorted order):
  EWA projection ``Σ' = J W Σ Wᵀ Jᵀ + 0.3 I`` with gsplat's clamping of ``x/z, y/z`` to the image
  plus 0.3× the half field of view, and the footprint: the ellipse where ``α ≥ 1/255``
  (``dᵀΣ'⁻¹d ≤ 2 ln(255 o)``, at most 3.33σ: gsplat's opacity-aware extent). The quad drawn for it
  is the smaller of the rectangle along the ellipse's axes and the pixel box it still has to cover
  (its bounding box on screen, shrunk by occlusion culling, below). The fragment shader gets the
  "whitened" offset ``w = Σ'^{-½} d`` interpolated across the quad (linear in the pixel position, so
  exact for any parallelogram), and ``dᵀΣ'⁻¹d = |w|²``. Done once per splat rather than once per
  quad corner, because the vertex stage of llvmpipe is single-threaded.
* **Pass 2, "splat"**: one instanced triangle strip (4 vertices) per splat, reading pass 1's output as
  per-instance attributes. The fragment shader evaluates ``α = min(0.999, o·exp(-½|w|²))`` at the
  pixel centre, discards ``α < 1/255``, and writes ``(α c, α)`` (and, when depth is asked for,
  ``(α z, α)`` to a second RGBA32F attachment). Splats are drawn front to back with the
  premultiplied *under* operator, blend ``(ONE_MINUS_DST_ALPHA, ONE)``: exactly the compositing
  ``C = Σ T_k α_k c_k``, ``A = 1 - Π(1 - α_k)``, ``D = Σ T_k α_k z_k``. Accumulation is in
  float32, except for the frames of a ``display_8bit`` renderer (the GUI viewport, the frames
  ``splatgen view`` streams): RGBA8, as the web splat viewers blend. Every blend step then rounds
  to 1/255 and a contribution below half a step is lost: measured against float32, a PSNR of
  46 dB on the dense 16k random ball and 52–53 dB on objects, at most 10–12 steps off at single
  pixels (``benchmarks/gl-display-8bit-*.json``), for a frame about 10–20% faster on llvmpipe.
* **Occlusion culling** (why front to back): the sorted splats are drawn in a few batches of equal
  size; before each batch a max-pyramid of the transmittance ``T = 1 - A`` is built (Hi-Z style,
  from 4×4-pixel blocks up). Pass 1 drops every splat whose whole footprint already has
  ``T < min_transmittance`` (default 1e-4, where gsplat stops a pixel) and shrinks the pixel box
  of the others to the pyramid blocks that have not. Each pixel's error is below
  ``min_transmittance`` (what the skipped fragments could still add); on llvmpipe, where fill rate
  is nearly the whole cost, this halves the fragments of dense scenes. Each pyramid costs a
  few full-screen passes and a wait for the batch before it, which light scenes never earn back
  (on llvmpipe they render up to twice as fast without): by default (``occlusion_culling="auto"``)
  the renderer culls only where it pays, see :func:`optical_depth`. Unlike gsplat (and
  the torch renderer) a pixel does not stop compositing exactly when its ``T`` would fall to 1e-4
  (blending cannot read the framebuffer); the splat that gsplat leaves out there is kept here, a
  difference of at most that splat's ``T·α`` at such pixels (usually < 1e-2).
* **Resolve**: a full-screen pass finishes ``rgb = C + (1 - A)·bg``, ``depth = D / A`` (0 where
  ``A = 0``): into float32 images that are read back (offscreen), into the caller's framebuffer
  (mode ``"rgb"``, ``"alpha"`` or ``"depth"``, optionally flipped for a bottom-left-origin window),
  or into an RGBA8 target read back as bytes (:meth:`GLSplatRenderer.render_rgb8`, a viewer's frame).

Image orientation: offscreen images come back with row 0 = top (pixel ``v ∈ [0, 1)``), like the
torch and gsplat renderers.

Quick use::

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

import contextlib
import functools
import threading
from typing import Sequence

import numpy as np
import torch

from .. import framing
from ..cameras import camera_coordinate
from ..gaussians import Gaussians, quat_to_rotation_matrix
from . import RenderError, RenderOutput
from .foreign_context import foreign_context_released, release_current_egl
from .sh import eval_sh

#: Data textures are this many texels wide; Gaussian i sits at texel (i % TEX_WIDTH, i // TEX_WIDTH).
TEX_WIDTH = 4096
#: α is clamped to this (gsplat's and the torch renderer's value; the original 3DGS used 0.99).
ALPHA_MAX = 0.999
#: Contributions with α below this are skipped (gsplat, 3DGS).
ALPHA_MIN = 1.0 / 255.0
#: Pixels (and whole splats) behind a transmittance below this are skipped (gsplat's early stop).
T_MIN = 1e-4
#: The floor for on-screen viewing (the GUI viewport, ``splatgen view``): below one step of an 8-bit
#: display, and about 15% fewer fragments than :data:`T_MIN` on dense scenes.
VIEW_MIN_TRANSMITTANCE = 1.0 / 255.0
#: What :meth:`GLSplatRenderer.render` can show / return.
MODES = ("rgb", "alpha", "depth")
_NUM_BATCHES = 8               # front-to-back batches, each culled against the ones before it
_MIN_BATCHED = 4096            # fewer splats than this are drawn in one batch (no culling)
_DEPTH_SAMPLES = 16384         # optical_depth looks at about this many splats (an even subsample)
_BLUR = 0.3                    # px² added to every projected covariance (gsplat's low-pass)
_EXTEND_MAX = 3.33             # footprints reach at most this many standard deviations (gsplat)
CULLING = (True, False, "auto")
#: "auto" culls a camera when optical_depth ≥ this × ln(1 / min_transmittance). Measured on llvmpipe
#: (2 cores; 512² and 1024²; random balls of depth 5-31, the teddy bear example, a generated
#: object; both transmittance floors; benchmarks/gl-culling-cpu2-2026-11-22.json): a frame took
#: 7-124% longer with culling every time up to 1×; at 1.5-1.7× from 8% shorter to 48% longer
#: (the teddy bear: 46-48% longer); from 2× up 17-52% shorter every time.
CULLING_DEPTH = 2.0
_HIZ_SPAN = 8                  # a splat is tested against at most HIZ_SPAN² pyramid texels
_MAX_LEVELS = 16               # Hi-Z pyramid levels (enough for 32k-pixel images)
_MAX_TARGET_BYTES = 1 << 28    # cap on the stacked offscreen targets (2 × RGBA32F per pixel)
_PROJ_STRIDE = 64              # bytes per splat written by pass 1 (4 × vec4)

# Texture units.
_UNIT_HIZ_BASE, _UNIT_HIZ_UPPER, _UNIT_ACCUM, _UNIT_ACCUM_DEPTH = 4, 5, 6, 7

# ------------------------------------------------------------------------------------- shaders
# Pass 1: one vertex per splat of a batch (front-to-back order); results captured by transform
# feedback into a buffer that pass 2 reads as per-instance attributes (same order).
_PROJECT_VS = """
#version 330
uniform sampler2D u_mean;    // xyz = world mean, w = opacity
uniform sampler2D u_cov_a;   // Σ00 Σ01 Σ02 Σ11   (world, 3D covariance)
uniform sampler2D u_cov_b;   // Σ12 Σ22 - -
uniform sampler2D u_color;   // rgb (clamped at 0 below)
uniform vec3 u_r0;           // rows of the world-to-camera rotation
uniform vec3 u_r1;
uniform vec3 u_r2;
uniform vec3 u_t;            // world-to-camera translation
uniform vec4 u_intr;         // fx fy cx cy (pixels)
uniform vec4 u_lim;          // clamp range of x/z and y/z for the Jacobian: lo.x hi.x lo.y hi.y
uniform ivec2 u_image;       // W, H
uniform int u_tex_width;
// Hi-Z: max transmittance per 2^l x 2^l pixel block; level 2 is u_hiz_base, levels 3.. lie side by
// side in u_hiz_upper at u_hiz_rect[l] = (x, y, w, h). u_hiz_levels = 0: no culling (first batch).
uniform int u_hiz_levels;
uniform ivec4 u_hiz_rect[16];
uniform sampler2D u_hiz_base;
uniform sampler2D u_hiz_upper;
uniform float u_t_min;
#define HIZ_SPAN {HIZ_SPAN}

in uint a_index;             // which Gaussian

// The quad drawn (a pixel box or the rectangle along the ellipse's axes) has corners
// centre + s·axis1 + t·axis2 (s, t = ±1), axis2 = ratio·perp(axis1). The whitened offset
// w = M (p - mean) (|w|² = dᵀΣ'⁻¹d) is w_c + s·dw1 + t·dw2 there.
out vec4 o_geom;     // quad centre (px), axis1 (px)
out vec4 o_geom2;    // ratio, z, w_c
out vec4 o_geom3;    // dw1, dw2
out vec4 o_color;    // rgb, opacity

float hiz(int l, ivec2 p) {
    ivec4 rc = u_hiz_rect[l];
    ivec2 q = rc.xy + min(p, rc.zw - 1);
    return l == 2 ? texelFetch(u_hiz_base, q, 0).r : texelFetch(u_hiz_upper, q, 0).r;
}

void cull(float z) {   // a zero-area quad: no fragments
    o_geom = vec4(0.0);
    o_geom2 = vec4(0.0, z, 0.0, 0.0);
    o_geom3 = vec4(0.0);
    o_color = vec4(0.0);
}

void main() {
    ivec2 tc = ivec2(int(a_index) % u_tex_width, int(a_index) / u_tex_width);
    vec4 mo = texelFetch(u_mean, tc, 0);
    vec3 m = vec3(dot(u_r0, mo.xyz), dot(u_r1, mo.xyz), dot(u_r2, mo.xyz)) + u_t;
    float z = m.z;   // near/far culling was done on the CPU while sorting
    o_color = vec4(texelFetch(u_color, tc, 0).rgb, mo.w);
    vec4 ca = texelFetch(u_cov_a, tc, 0);
    vec4 cb = texelFetch(u_cov_b, tc, 0);

    float iz = 1.0 / z;
    float fx = u_intr.x, fy = u_intr.y;
    vec2 center = vec2(fx * m.x * iz + u_intr.z, fy * m.y * iz + u_intr.w);

    // EWA: Jacobian of the projection at the (clamped) mean; T = J W (2x3), Σ' = T Σ Tᵀ.
    float tx = z * clamp(m.x * iz, u_lim.x, u_lim.y);
    float ty = z * clamp(m.y * iz, u_lim.z, u_lim.w);
    vec3 t0 = (fx * iz) * u_r0 - (fx * tx * iz * iz) * u_r2;
    vec3 t1 = (fy * iz) * u_r1 - (fy * ty * iz * iz) * u_r2;
    mat3 S = mat3(ca.x, ca.y, ca.z,
                  ca.y, ca.w, cb.x,
                  ca.z, cb.x, cb.y);
    vec3 St0 = S * t0;
    vec3 St1 = S * t1;
    float a = dot(t0, St0) + {BLUR};
    float b = dot(t0, St1);
    float c = dot(t1, St1) + {BLUR};
    float det = a * c - b * b;
    float opacity = mo.w;
    if (!(det > 0.0)) { cull(z); return; }

    float mid = 0.5 * (a + c);
    float disc = sqrt(max(mid * mid - det, 0.0));
    float lam1 = mid + disc;
    float lam2 = det / lam1;   // = mid - disc without the cancellation
    // The footprint is where α >= 1/255, i.e. the ellipse dᵀΣ'⁻¹d <= k², k² = 2 ln(255 o) (k <= 3.33,
    // gsplat's opacity-aware extent), a hair larger against rounding.
    float k = sqrt(clamp(2.0 * log(255.0 * opacity), 0.0, {EXTEND_MAX} * {EXTEND_MAX})) * 1.001 + 1e-3;
    vec2 e1 = abs(b) > 1e-12 * mid ? normalize(vec2(b, lam1 - a)) : (a >= c ? vec2(1.0, 0.0) : vec2(0.0, 1.0));
    vec2 e2 = vec2(-e1.y, e1.x);

    // Pixels whose centre the ellipse can reach (its bounding box); none: off screen.
    vec2 half_ext = k * sqrt(vec2(a, c));
    ivec2 lo = max(ivec2(ceil(center - half_ext - 0.5)), ivec2(0));
    ivec2 hi = min(ivec2(floor(center + half_ext - 0.5)), u_image - 1);
    if (any(greaterThan(lo, hi))) { cull(z); return; }
    if (u_hiz_levels > 0) {
        // Finest level at which the pixel range spans at most HIZ_SPAN blocks per axis. The splat
        // is culled when every block has T < u_t_min, else its pixel box shrinks to the blocks
        // that have not.
        int l = 2;
        while (l < u_hiz_levels - 1 && any(greaterThan((hi >> l) - (lo >> l), ivec2(HIZ_SPAN - 1)))) l++;
        // Scans from each side stop at the first live block: 4 fetches when all are live.
        ivec2 b0 = lo >> l, b1 = hi >> l;
        int y0 = b0.y, y1 = b1.y, x0 = b0.x, x1 = b1.x;
        bool found = false;
        for (; y0 <= b1.y && !found; ++y0)
            for (int x = b0.x; x <= b1.x && !found; ++x) found = hiz(l, ivec2(x, y0)) >= u_t_min;
        if (!found) { cull(z); return; }   // everything under it is already opaque
        y0--;
        found = false;
        for (; y1 > y0 && !found; --y1)
            for (int x = b0.x; x <= b1.x && !found; ++x) found = hiz(l, ivec2(x, y1)) >= u_t_min;
        if (found) y1++;
        found = false;
        for (; x0 <= b1.x && !found; ++x0)
            for (int y = y0; y <= y1 && !found; ++y) found = hiz(l, ivec2(x0, y)) >= u_t_min;
        x0--;
        found = false;
        for (; x1 > x0 && !found; --x1)
            for (int y = y0; y <= y1 && !found; ++y) found = hiz(l, ivec2(x1, y)) >= u_t_min;
        if (found) x1++;
        lo = max(lo, ivec2(x0, y0) << l);
        hi = min(hi, (ivec2(x1, y1) + 1 << l) - 1);
    }
    // Whitening: w = M d, rows of M = e / sqrt(λ).
    float s1 = inversesqrt(lam1), s2 = inversesqrt(lam2);
    vec2 box = vec2(hi - lo + 1);                 // pixel edges lo .. hi + 1 hold the centres lo .. hi
    if (box.x * box.y < 4.0 * k * k * sqrt(det)) {
        // The pixel box is smaller than the rectangle along the ellipse's axes: draw the box.
        vec2 bc = 0.5 * vec2(lo + hi + 1);
        vec2 h1 = vec2(0.5 * box.x, 0.0), h2 = vec2(0.0, 0.5 * box.y);
        vec2 d = bc - center;
        o_geom = vec4(bc, h1);
        o_geom2 = vec4(box.y / box.x, z, s1 * dot(e1, d), s2 * dot(e2, d));
        o_geom3 = vec4(s1 * dot(e1, h1), s2 * dot(e2, h1), s1 * dot(e1, h2), s2 * dot(e2, h2));
    } else {
        // The rectangle k·sqrt(λ)·e around the ellipse: w = k·(s, t).
        o_geom = vec4(center, e1 * (k / s1));
        o_geom2 = vec4(s1 / s2, z, 0.0, 0.0);
        o_geom3 = vec4(k, 0.0, 0.0, k);
    }
}
"""

_SPLAT_VS = """
#version 330
uniform vec2 u_size;     // image size in pixels (W, H)

in vec4 i_geom;
in vec4 i_geom2;
in vec4 i_geom3;
in vec4 i_color;

noperspective out vec2 v_w;
flat out vec4 v_color;   // rgb, opacity
flat out float v_z;

void main() {
    // Triangle strip corners (-1,-1) (1,-1) (-1,1) (1,1). (An octagon around the ellipse would
    // have 17% fewer fragments, but its extra triangles cost llvmpipe more than they save.)
    vec2 corner = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1)) * 2.0 - 1.0;
    vec2 axis2 = i_geom2.x * vec2(-i_geom.w, i_geom.z);
    vec2 p = i_geom.xy + corner.x * i_geom.zw + corner.y * axis2;   // image pixels
    // Image row v goes to framebuffer row v, so a plain readback has the top image row first.
    gl_Position = vec4(p / u_size * 2.0 - 1.0, 0.0, 1.0);
    v_w = i_geom2.zw + corner.x * i_geom3.xy + corner.y * i_geom3.zw;
    v_color = i_color;
    v_z = i_geom2.y;
}
"""

_SPLAT_FS = """
#version 330
noperspective in vec2 v_w;
flat in vec4 v_color;
flat in float v_z;

#define ALPHA_MAX {ALPHA_MAX}
#define WITH_DEPTH {WITH_DEPTH}
layout(location = 0) out vec4 f_color;   // (α c, α)
#if WITH_DEPTH
layout(location = 1) out vec4 f_depth;   // (α z, 0, 0, α)
#endif

void main() {
    // α = o·exp(-½ dᵀΣ'⁻¹d) = o·2^(-½ log2(e) |w|²), at the pixel centre.
    float alpha = min(ALPHA_MAX, v_color.a * exp2(-0.7213475204444817 * dot(v_w, v_w)));
    if (alpha < 1.0 / 255.0) discard;
    f_color = vec4(v_color.rgb * alpha, alpha);
#if WITH_DEPTH
    f_depth = vec4(v_z * alpha, 0.0, 0.0, alpha);
#endif
}
"""

# A triangle covering the viewport, for the pyramid and resolve passes.
_FULLSCREEN_VS = """
#version 330
void main() {
    vec2 p = vec2(float((gl_VertexID & 1) * 4 - 1), float((gl_VertexID >> 1) * 4 - 1));
    gl_Position = vec4(p, 0.0, 1.0);
}
"""

# Hi-Z base level 2: max transmittance T = 1 - A over 4x4 pixels of the accumulation target.
_HIZ_BASE_FS = """
#version 400
uniform sampler2D u_accum;     // accumulated (α c, A)
uniform ivec4 u_src_rect;      // the camera's image in the target: origin, size
out vec4 f_t;

void main() {
    // Four gathers of 2x2 texels' alpha; texels past the image's last row / column are clamped
    // back into it (the image may be followed by another camera's rows in the target).
    ivec2 q0 = 4 * ivec2(gl_FragCoord.xy);
    vec2 inv = 1.0 / vec2(textureSize(u_accum, 0));
    vec4 a = vec4(1.0);
    for (int j = 0; j < 4; j += 2)
        for (int i = 0; i < 4; i += 2) {
            ivec2 q = max(min(q0 + ivec2(i, j), u_src_rect.zw - 2), 0);
            a = min(a, textureGather(u_accum, (vec2(u_src_rect.xy + q) + 1.0) * inv, 3));
        }
    f_t = vec4(1.0 - min(min(a.x, a.y), min(a.z, a.w)), 0.0, 0.0, 1.0);
}
"""

# Hi-Z levels 3..: each texel the max of its 2^(l-2) x 2^(l-2) base texels. All levels in one pass
# (reading only the base level) so that a pyramid costs two passes, not one pass a level.
_HIZ_UPPER_FS = """
#version 400
uniform sampler2D u_hiz_base;
uniform ivec2 u_base_size;
uniform int u_hiz_levels;
uniform ivec4 u_hiz_rect[16];
out vec4 f_t;

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    int l = 3;
    while (l < u_hiz_levels - 1 && p.x >= u_hiz_rect[l + 1].x) l++;
    ivec4 rc = u_hiz_rect[l];
    if (p.y >= rc.w) discard;
    int n = 1 << (l - 2);
    ivec2 q0 = (p - rc.xy) * n;
    ivec2 q1 = min(q0 + n, u_base_size) - 1;
    // Gathers of 2x2 base texels; at the last row / column they are moved back inside the base
    // (a texel of the neighbouring block then counts too: conservative).
    vec2 inv = 1.0 / vec2(textureSize(u_hiz_base, 0));
    vec4 t = vec4(0.0);
    for (int y = q0.y; y <= q1.y; y += 2)
        for (int x = q0.x; x <= q1.x; x += 2) {
            ivec2 q = max(min(ivec2(x, y), u_base_size - 2), 0);
            t = max(t, textureGather(u_hiz_base, (vec2(q) + 1.0) * inv, 0));
        }
    f_t = vec4(max(max(t.x, t.y), max(t.z, t.w)), 0.0, 0.0, 1.0);
}
"""

# Offscreen: the accumulated sums → float32 images, each in an attachment of its own so that it is
# read back straight into its output array: rgb composited on the background (RGBA32F, read as
# RGB), alpha (R32F) and the expected depth (R32F).
_RESOLVE_FS = """
#version 330
uniform sampler2D u_accum;
uniform sampler2D u_accum_depth;
uniform vec3 u_background;
#define WITH_DEPTH {WITH_DEPTH}
layout(location = 0) out vec4 f_rgb;
layout(location = 1) out vec4 f_alpha;
#if WITH_DEPTH
layout(location = 2) out vec4 f_depth;
#endif

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec4 acc = texelFetch(u_accum, p, 0);
    float a = clamp(acc.a, 0.0, 1.0);
    f_rgb = vec4(clamp(acc.rgb + (1.0 - a) * u_background, 0.0, 1.0), 1.0);
    f_alpha = vec4(a, 0.0, 0.0, 0.0);
#if WITH_DEPTH
    vec4 dz = texelFetch(u_accum_depth, p, 0);
    f_depth = vec4(dz.a > 0.0 ? dz.r / dz.a : 0.0, 0.0, 0.0, 0.0);
#endif
}
"""

# On screen: one of the modes, optionally flipped so that image row 0 is at the window's top.
_DISPLAY_FS = """
#version 330
uniform sampler2D u_accum;
uniform sampler2D u_accum_depth;
uniform ivec4 u_viewport;    // x, y, W, H of the window area
uniform vec3 u_background;
uniform int u_flip;
uniform int u_mode;          // 0 rgb, 1 alpha, 2 depth
uniform vec2 u_depth_range;  // depth shown white .. black
out vec4 f_color;

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy) - u_viewport.xy;
    if (u_flip == 1) p.y = u_viewport.w - 1 - p.y;
    vec4 acc = texelFetch(u_accum, p, 0);
    float a = clamp(acc.a, 0.0, 1.0);
    vec3 c;
    if (u_mode == 0) {
        c = acc.rgb + (1.0 - a) * u_background;
    } else if (u_mode == 1) {
        c = vec3(a);
    } else {
        vec4 dz = texelFetch(u_accum_depth, p, 0);
        float d = dz.a > 0.0 ? dz.r / dz.a : 0.0;
        float t = clamp((d - u_depth_range.x) / (u_depth_range.y - u_depth_range.x), 0.0, 1.0);
        c = a * vec3(1.0 - t) + (1.0 - a) * u_background;
    }
    f_color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
"""


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


def _batches(count: int, num: int | None = None) -> list[tuple[int, int]]:
    """Front-to-back batches ``[start, stop)`` of equal size.

    The first batch is drawn without culling; every later one is culled against what the earlier
    ones made opaque (more batches cull a little more, at one pyramid build each; beyond about 8 the
    gain is small). Only for culled cameras: scenes of fewer than ``_MIN_BATCHED`` splats, or too
    light to pay for pyramids (``occlusion_culling="auto"``), are drawn in one batch.
    """
    num = _NUM_BATCHES if num is None else num
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
    half_k2 = 0.5 * np.minimum(2.0 * np.log(np.maximum(255.0 * o, 1.0)), _EXTEND_MAX ** 2)
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
    that, measured). Each splat adds :func:`opacity_integral` × ``sqrt(det Σ')``, its
    projected area taken as :func:`view_averaged_area` × ``fx fy / z²`` (at least the 0.3 px² blur);
    the covered pixels are the on-screen bounding box of the splat centres. A rough figure, cheap
    enough for every frame (an even subsample of at most about 16k splats): against the same sum
    over the exact projected covariances it came within 10% on random balls and the teddy bear
    example, and 2.5× high on a generated sample (far below the threshold either way).

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
    area = np.maximum(view_area[::step][on] * (fx * fy) / np.square(zs[on]), _BLUR)
    total = step * float((opacity_int[::step][on] * area).sum())
    box = (u[on].max() - u[on].min() + 1.0) * (v[on].max() - v[on].min() + 1.0)
    return total / float(box)


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
            web splat viewers do, and the same for :meth:`render_rgb8`: about 10–20% faster on
            llvmpipe, a picture within 46–53 dB PSNR of the float one (module docstring;
            ``scripts/experiments/gl_display_8bit.py``). Offscreen float images (:meth:`render_many`,
            :meth:`render` without ``fbo``) are accumulated in float32 whatever this says.

    Usage: :meth:`set_gaussians` once per scene, then :meth:`render` (or :meth:`render_many`, or
    :meth:`render_rgb8` for a viewer's 8-bit frame) per frame. The renderer sets the GL state it needs (blending, viewport, scissor, no depth test or
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
            self._project_prog = c.program(
                vertex_shader=_PROJECT_VS.replace("{HIZ_SPAN}", str(_HIZ_SPAN))
                .replace("{EXTEND_MAX}", repr(_EXTEND_MAX)).replace("{BLUR}", repr(_BLUR)),
                varyings=["o_geom", "o_geom2", "o_geom3", "o_color"], varyings_capture_mode="interleaved")
            fs = _SPLAT_FS.replace("{ALPHA_MAX}", repr(ALPHA_MAX))
            # Keyed by "with depth": colour only (one RGBA32F target), or colour and depth (two).
            self._splat_progs = {
                d: c.program(vertex_shader=_SPLAT_VS, fragment_shader=fs.replace("{WITH_DEPTH}", str(int(d))))
                for d in (False, True)}
            self._resolve_progs = {d: c.program(vertex_shader=_FULLSCREEN_VS,
                                                fragment_shader=_RESOLVE_FS.replace("{WITH_DEPTH}", str(int(d))))
                                   for d in (False, True)}
            try:   # the pyramid gathers texels (GLSL 4.0); without it there is no occlusion culling
                self._hiz_base_prog = c.program(vertex_shader=_FULLSCREEN_VS, fragment_shader=_HIZ_BASE_FS)
                self._hiz_upper_prog = c.program(vertex_shader=_FULLSCREEN_VS, fragment_shader=_HIZ_UPPER_FS)
            except moderngl.Error:
                self._hiz_base_prog = self._hiz_upper_prog = None
            self._display_prog = c.program(vertex_shader=_FULLSCREEN_VS, fragment_shader=_DISPLAY_FS)
            p = self._project_prog
            for unit, name in enumerate(("u_mean", "u_cov_a", "u_cov_b", "u_color")):
                p[name].value = unit
            p["u_hiz_base"].value = _UNIT_HIZ_BASE
            p["u_hiz_upper"].value = _UNIT_HIZ_UPPER
            p["u_tex_width"].value = TEX_WIDTH
            if self._hiz_base_prog is not None:
                self._hiz_base_prog["u_accum"].value = _UNIT_ACCUM
                self._hiz_upper_prog["u_hiz_base"].value = _UNIT_HIZ_BASE
            for prog in (*self._resolve_progs.values(), self._display_prog):
                prog["u_accum"].value = _UNIT_ACCUM
                if "u_accum_depth" in prog:
                    prog["u_accum_depth"].value = _UNIT_ACCUM_DEPTH
            self._fullscreen_vaos = {id(prog): c.vertex_array(prog, [])
                                     for prog in (self._hiz_base_prog, self._hiz_upper_prog, self._display_prog,
                                                  *self._resolve_progs.values()) if prog is not None}
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
        self._hiz = None            # (size, [(base tex, fbo), (upper tex, fbo)], level rects)
        self._sh_degree = 0
        self._sh = self._sh_means = None
        self._order_key = None      # what the uploaded order was sorted for
        self._order_count = 0
        self._color_key = None      # what the uploaded colours were evaluated for
        self._valid = np.zeros(0, np.uint32)
        self._means = np.zeros((0, 3), np.float32)
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
                    *self._resolve_progs.values(), self._hiz_base_prog, self._hiz_upper_prog, self._display_prog]
            if self._hiz is not None:
                objs += [o for pair in self._hiz[1] for o in pair]
            for obj in objs:
                if obj is not None:
                    obj.release()
            self._textures, self._targets, self._hiz, self._splat_vaos = [], {}, None, {}
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

    def set_gaussians(self, gaussians: Gaussians) -> None:
        """Upload one scene (shape ``(N,)``): the static data goes to the GPU here, once.

        CPU copies are kept of the means (for sorting) and, for SH degree ≥ 1, of the coefficients.
        """
        if len(gaussians.shape) != 1:
            raise RenderError("GLSplatRenderer renders one scene, got Gaussians of shape "
                              f"{tuple(gaussians.shape)}")
        g = gaussians.detach().to("cpu", torch.float32)
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
        self._view_area = view_averaged_area(g.scales.numpy()[self._valid])
        self._opacity_int = opacity_integral(opac[self._valid])
        if len(self._means):
            centre = self._means.mean(0).astype(np.float64)
            self._bounds = (centre, float(np.sqrt(((self._means - centre) ** 2).sum(1).max())))
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
        """The uploaded scene's estimated :func:`optical_depth` seen by one camera (``viewmat (4, 4)``,
        ``K (3, 3)``, ``width × height`` pixels): what ``occlusion_culling="auto"`` decides by."""
        return optical_depth(self._means, self._view_area, self._opacity_int, np.asarray(viewmat).reshape(4, 4),
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

    def _hiz_pyramid(self, width: int, height: int):
        """Textures of the transmittance pyramid of a ``width × height`` image.

        Level l holds one texel per 2^l × 2^l pixels. Level 2 has a texture of its own ("base");
        levels 3.. lie side by side in a second one ("upper"), built from the base in one pass.
        Returns ``(size, [(base tex, fbo), (upper tex, fbo)], rects)``, ``rects[l] = (x, y, w, h)``.
        """
        if self._hiz is not None and self._hiz[0] == (width, height):
            return self._hiz
        if self._hiz is not None:
            for pair in self._hiz[1]:
                for obj in pair:
                    obj.release()
        rects = [(0, 0, width, height), (0, 0, (width + 1) // 2, (height + 1) // 2)]  # unused: 0, 1
        w, h = -(-width // 4), -(-height // 4)
        rects.append((0, 0, w, h))
        x = 0
        while (w > 1 or h > 1) and len(rects) < _MAX_LEVELS:
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
        self._hiz = ((width, height), pairs, rects)
        return self._hiz

    def _build_hiz(self, color_tex, origin_y: int, width: int, height: int) -> int:
        """Rebuild the pyramid from the accumulated alpha of the camera at rows ``origin_y…``.

        Returns the number of levels (the ``u_hiz_levels`` of pass 1).
        """
        _, ((base, base_fbo), (upper, upper_fbo)), rects = self._hiz_pyramid(width, height)
        rect_data = np.zeros((_MAX_LEVELS, 4), np.int32)
        rect_data[: len(rects)] = rects
        self.ctx.disable(self._mgl.BLEND)
        color_tex.use(_UNIT_ACCUM)
        base_fbo.use()
        self.ctx.viewport = self.ctx.scissor = (0, 0, *base.size)
        self._hiz_base_prog["u_src_rect"].value = (0, origin_y, width, height)
        self._fullscreen(self._hiz_base_prog)
        base.use(_UNIT_HIZ_BASE)
        if len(rects) > 3:
            upper_fbo.use()
            self.ctx.viewport = self.ctx.scissor = (0, 0, *upper.size)
            up = self._hiz_upper_prog
            up["u_base_size"].value = base.size
            up["u_hiz_levels"].value = len(rects)
            up["u_hiz_rect"].write(rect_data.tobytes())
            self._fullscreen(up)
        upper.use(_UNIT_HIZ_UPPER)
        self._project_prog["u_hiz_rect"].write(rect_data.tobytes())
        return len(rects)

    # ------------------------------------------------------------------ per frame
    def _sort(self, viewmat: np.ndarray, near: float, far: float) -> int:
        """Front-to-back order of the splats with near < z < far → index buffer; returns the count.

        The order depends only on the camera's z axis (third row of the view matrix), near and far:
        when those did not change since the last call, nothing is sorted nor uploaded.
        """
        key = (viewmat[2].tobytes(), float(near), float(far))
        if key == self._order_key:
            return self._order_count
        z = camera_coordinate(self._means, viewmat[2])
        keep = np.flatnonzero((z > near) & (z < far))
        idx = self._valid[keep[_argsort_positive(z[keep])]]
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
              near, far, sh_degree) -> None:
        """Sort, project and splat one camera into rows ``origin_y…`` of the accumulation target ``accum``."""
        self.last_culled = False
        if self._n == 0:
            return
        count = self._sort(viewmat, near, far)
        if count == 0:
            return
        if self._sh_degree > 0:
            R, t = viewmat[:3, :3], viewmat[:3, 3]
            self._set_colors(-(R.T @ t), sh_degree)
        self._set_camera(viewmat, K, width, height)
        fbo, color_tex = self._targets[accum][:2]
        prog, vao, locs = self._splat_progs[with_depth], self._splat_vaos[with_depth], self._splat_locs[with_depth]
        for unit, tex in enumerate(self._textures):
            tex.use(unit)
        mgl = self._mgl
        vp = (0, origin_y, width, height)
        prog["u_size"].value = (float(width), float(height))
        cull = (self.occlusion_culling is not False and self._hiz_base_prog is not None and width >= 2
                and height >= 2 and count >= _MIN_BATCHED)
        if cull and self.occlusion_culling == "auto":
            depth = self.optical_depth(viewmat, K, width, height, near=near, far=far)
            cull = bool(depth >= CULLING_DEPTH * -np.log(self.min_transmittance))
        self.last_culled = cull
        batches = _batches(count) if cull else [(0, count)]
        t_min = self.min_transmittance
        if accum == "accum8":
            # An 8-bit alpha of 254 holds any T in [0.5/255, 1.5/255), and splats with α < 0.5 add
            # nothing there (their share rounds away): such pixels count as done.
            t_min = max(t_min, 1.5 / 255.0)
        for b, (start, stop) in enumerate(batches):
            levels = 0
            if b > 0:
                levels = self._build_hiz(color_tex, origin_y, width, height)
            self._project_prog["u_hiz_levels"].value = levels
            self._project_prog["u_t_min"].value = t_min
            # Pass 1 samples the pyramid atlases; the splat target is bound (draws need a complete
            # framebuffer even with rasterizer discard) but not read.
            fbo.use()
            self.ctx.viewport = vp
            self.ctx.scissor = vp   # keep guard-band fragments out of the cameras stacked beside
            self._project_vao.transform(self._proj_buf, mgl.POINTS, vertices=stop - start, first=start,
                                        buffer_offset=start * _PROJ_STRIDE)
            for i, loc in enumerate(locs):
                vao.bind(loc, "f", self._proj_buf, "4f", offset=start * _PROJ_STRIDE + 16 * i,
                         stride=_PROJ_STRIDE, divisor=1)
            self.ctx.enable(mgl.BLEND)
            vao.render(mgl.TRIANGLE_STRIP, vertices=4, instances=stop - start)

    def _set_state(self) -> None:
        mgl = self._mgl
        self.ctx.disable(mgl.DEPTH_TEST | mgl.CULL_FACE)
        # The premultiplied "under" operator, front to back: dst += (1 - dst.a) · src.
        self.ctx.blend_func = mgl.ONE_MINUS_DST_ALPHA, mgl.ONE
        self.ctx.blend_equation = mgl.FUNC_ADD

    def _accumulate(self, with_depth: bool, viewmats, Ks, width, height, *, near, far, sh_degree,
                    display: bool = False):
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
                       sh_degree=sh_degree)
        self.ctx.scissor = None
        textures = self._targets[accum]
        textures[1].use(_UNIT_ACCUM)
        if with_depth:
            textures[2].use(_UNIT_ACCUM_DEPTH)

    def _check_size(self, width: int, height: int) -> None:
        if not (0 < width <= self._max_size and 0 < height <= self._max_size):
            raise RenderError(f"image size {width}x{height} outside the GL limit of 1..{self._max_size} pixels")

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
    ) -> tuple[np.ndarray, ...]:
        """Render ``C`` cameras offscreen (float32 throughout) and read them back.

        Args:
            viewmats: world-to-camera ``(C, 4, 4)``, OpenCV axes.
            Ks: pixel intrinsics ``(C, 3, 3)`` (or one ``(3, 3)`` for all).
            width, height: image size in pixels.
            background: RGB in [0, 1].
            near, far: clipping distances along the camera z axis, world units.
            sh_degree: SH degree for colour (default: all the Gaussians hold).
            outputs: which of ``"rgb"``, ``"alpha"``, ``"depth"`` to read back, in this order;
                depth is only accumulated when asked for.

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
                                 near=near, far=far, sh_degree=sh_degree)
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
    ):
        """Render one camera, offscreen (read back) or into the caller's framebuffer.

        Args:
            viewmat: world-to-camera ``(4, 4)``, OpenCV axes. K: pixel intrinsics ``(3, 3)``.
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
                (default: the nearest and farthest the scene's bounding sphere can be).

        Re-rendering is cheap when the camera did not move: the splat order is kept (see
        :meth:`_sort`), and only the projection and the fragments are redone.
        """
        mode_id = _check_mode(mode)
        viewmat = np.asarray(viewmat, np.float64).reshape(4, 4)
        K = np.asarray(K, np.float64).reshape(3, 3)
        if fbo is None:
            return self.render_many(viewmat[None], K[None], width, height, background=background, near=near,
                                    far=far, sh_degree=sh_degree, outputs=(mode,))[0][0]
        self._check_size(width, height)
        with_depth = mode == "depth"
        if depth_range is None:
            depth_range = self._default_depth_range(viewmat, near, far)
        with self._current():
            self._accumulate(with_depth, viewmat[None], K[None], width, height, near=near, far=far,
                             sh_degree=sh_degree, display=True)
            self._show(fbo, (int(viewport_origin[0]), int(viewport_origin[1]), width, height), mode_id,
                       background, flip_y, depth_range)
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
        image = np.empty((height, width, 3), np.uint8)
        with self._current():
            self._accumulate(False, viewmat[None], K[None], width, height, near=near, far=far,
                             sh_degree=sh_degree, display=True)
            fbo = self._target("frame8", width, height)[0]
            self._show(fbo, (0, 0, width, height), MODES.index("rgb"), background, False, None)
            fbo.read_into(image, (0, 0, width, height), 3, dtype="f1")
        return image

    def _show(self, fbo, viewport: tuple[int, int, int, int], mode_id: int, background, flip_y: bool,
              depth_range) -> None:
        """Draw the accumulated frame (mode ``MODES[mode_id]``) over ``background`` into the
        ``viewport`` (x, y, W, H) of ``fbo``; leaves ``fbo`` bound. Needs the context current."""
        fbo.use()
        self.ctx.viewport = viewport
        self.ctx.scissor = viewport
        self.ctx.disable(self._mgl.BLEND)
        p = self._display_prog
        p["u_viewport"].value = viewport
        p["u_background"].value = tuple(float(x) for x in np.asarray(background, np.float64).reshape(3))
        p["u_flip"].value = int(bool(flip_y))
        p["u_mode"].value = mode_id
        lo, hi = (0.0, 1.0) if depth_range is None else (float(depth_range[0]), float(depth_range[1]))
        p["u_depth_range"].value = (lo, hi if hi > lo else lo + 1e-6)
        self._fullscreen(p)
        self.ctx.scissor = None

    def _default_depth_range(self, viewmat: np.ndarray, near: float, far: float) -> tuple[float, float]:
        centre, radius = self._bounds
        z = float(viewmat[2, :3] @ centre + viewmat[2, 3])
        return max(near, z - radius), min(far, max(z + radius, near + 1e-6))


# ------------------------------------------------------------------------------ module-level API
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


__all__ = ["GLSplatRenderer", "available", "render_gl", "renderer_name", "last_culled", "optical_depth",
           "opacity_integral", "view_averaged_area", "CULLING", "CULLING_DEPTH", "MODES", "TEX_WIDTH", "ALPHA_MAX",
           "ALPHA_MIN", "T_MIN", "VIEW_MIN_TRANSMITTANCE"]
