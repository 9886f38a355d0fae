#version 330
// Pass 2: α at the pixel centre, written premultiplied for the front-to-back "under" blend.
// Defines (gl_shaders.source): ALPHA_MAX, WITH_DEPTH (0 or 1: also accumulate α z).
noperspective in vec2 v_w;
flat in vec4 v_color;
flat in float v_z;

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
