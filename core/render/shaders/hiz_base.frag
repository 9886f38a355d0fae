#version 400
// Hi-Z base level 2: max transmittance T = 1 - A over 4x4 pixels of the accumulation target.
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
