#version 400
// Hi-Z levels 3..: each texel the max of its 2^(l-2) x 2^(l-2) base texels. All levels in one pass
// (reading only the base level) so that a pyramid costs two passes, not one pass a level.
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
