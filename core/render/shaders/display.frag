#version 330
// On screen: one of the modes, optionally flipped so that image row 0 is at the window's top.
// Depth is shaded as depth_shading.shade_depth does it (the one rule for showing depth).
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
