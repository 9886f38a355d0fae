#version 330
// Pass 1: one vertex per splat of a batch (front-to-back order); results captured by transform
// feedback into a buffer that pass 2 reads as per-instance attributes (same order).
// Defines (gl_shaders.source): HIZ_SPAN, BLUR (px²), EXTEND_MAX (standard deviations).
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
    float a = dot(t0, St0) + BLUR;
    float b = dot(t0, St1);
    float c = dot(t1, St1) + BLUR;
    float det = a * c - b * b;
    float opacity = mo.w;
    if (!(det > 0.0)) { cull(z); return; }

    float mid = 0.5 * (a + c);
    float disc = sqrt(max(mid * mid - det, 0.0));
    float lam1 = mid + disc;
    float lam2 = det / lam1;   // = mid - disc without the cancellation
    // The footprint is where α >= 1/255, i.e. the ellipse dᵀΣ'⁻¹d <= k², k² = 2 ln(255 o) (k <= 3.33,
    // gsplat's opacity-aware extent), a hair larger against rounding.
    float k = sqrt(clamp(2.0 * log(255.0 * opacity), 0.0, EXTEND_MAX * EXTEND_MAX)) * 1.001 + 1e-3;
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
