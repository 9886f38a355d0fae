#version 330
// Pass 2, "splat": one instanced quad (triangle strip, 4 vertices) per splat, reading pass 1's
// output as per-instance attributes.
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
