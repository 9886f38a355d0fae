#version 330
// Offscreen: the accumulated sums → float32 images, each in an attachment of its own so that it is
// read back straight into its output array: rgb composited on the background (RGBA32F, read as
// RGB), alpha (R32F) and the expected depth (R32F).
// Defines (gl_shaders.source): WITH_DEPTH (0 or 1).
uniform sampler2D u_accum;
uniform sampler2D u_accum_depth;
uniform vec3 u_background;
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
