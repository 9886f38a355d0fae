"""How fast can sorted, alpha-blended quads draw the 16k random ball on llvmpipe? A lower bound.

The open target of issue #2 is the OpenGL renderer at ≥ 20 FPS (≤ 50 ms a frame) for the benchmark's
16k random ball (``bench_scene(16384)``) at 512² on the 2-core CPU machine. This script separates
what the scene demands from what the renderer spends, in the viewer configuration (the GUI
viewport's: colour only, 8-bit accumulation, pixels done at transmittance 1.5/255, see
``GLSplatRenderer._draw``):

1. **Fragment counts** (``"fragments"``; deterministic, computed in numpy with the renderer's
   footprint rules: the EWA covariance with the 0.3 px² blur (the torch renderer's ``project``),
   the opacity-aware ellipse α ≥ 1/255, the quad the smaller of the rectangle along the ellipse's
   axes and its pixel box). Per mode, ``quad_pixels`` (rasterised), ``alpha_fragments`` (of those,
   α ≥ 1/255) and ``needed`` (α ≥ 1/255 at pixels not yet done: the per-pixel oracle, the same
   for every mode):

   - ``unculled``: every splat's quad, whole;
   - ``culled``: the renderer's occlusion culling emulated (``_NUM_BATCHES`` equal
     batches; before each, per 2^l-pixel block the largest transmittance; a splat tested at the
     finest level where its box spans ≤ ``_HIZ_SPAN`` blocks, dropped when every block is done,
     else its box shrunk to the bounding box of the live blocks);
   - ``ideal``: the best any one-quad-per-splat renderer can do: every splat knows the exact
     transmittance left by all splats before it and is drawn as the bounding box of the pixels it
     still adds to (or its rectangle, if smaller), or not at all.

   The emulation is checked against the GPU's own count (``"emulation_check"``): ``samples_passed`` (an occlusion query:
   fragments not discarded) against the emulated α ≥ 1/255 fragments plus the full-screen passes.
   Without culling they agree to a few fragments. With culling the GPU draws some more: it
   accumulates in 8 bits, where small contributions round away, so its pixels are done later
   than the float emulation's (the real renderer is further from the ideal, not nearer).
2. **llvmpipe's costs on this machine**: a frame of the ball without culling (every quad pixel
   rasterised, shaded and blended) and the same with a constant colour and no blending (the
   rasteriser's floor), both as ns per quad pixel after the per-splat cost, which is measured with
   every scale × 0.02 (quads of about a pixel).
3. **The bounds** (``"bound_ms_*"``): the per-splat cost + the ideal mode's quad pixels × the
   floor (a constant colour and no blending: no splat renderer) or × the shaded and blended cost
   (what the picture needs), against the renderer's culled frame as shipped. Each time is the
   best of ``ROUNDS`` medians of ``REPEAT`` frames.

    .venv/bin/python scripts/experiments/gl_fill_bound.py benchmarks/gl-fill-bound-cpu2-DATE.json
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from record import save_result  # noqa: E402

from splatgen.core import framing  # noqa: E402
from splatgen.core.benchmarks import bench_camera, bench_scene, machine_info, time_call  # noqa: E402
from splatgen.core.gaussians import Gaussians  # noqa: E402
from splatgen.core.render import gl_backend, gl_culling, gl_shaders  # noqa: E402
from splatgen.core.render.torch_backend import project  # noqa: E402

ROUNDS, REPEAT = 3, 10
SIZE = 512
#: What the viewer configuration counts as done (8-bit accumulation; GLSplatRenderer._draw).
T_DONE = 1.5 / 255.0


def projected(g: Gaussians, viewmat: np.ndarray, K: np.ndarray):
    """Per splat in front-to-back order: centre (u, v) in pixels, the 2D covariance (a, b, c) in px²
    with the blur (the torch renderer's projection, gsplat's and the OpenGL shader's rules), opacity
    and the footprint's k² (the ellipse where α ≥ 1/255)."""
    g = g.to("cpu", torch.float64)
    proj = project(g, torch.from_numpy(viewmat), torch.from_numpy(K), SIZE, SIZE, framing.NEAR, framing.FAR)
    order = torch.argsort(proj["depth"], stable=True)
    uv, cov = proj["mean2d"][order].numpy(), proj["cov2d"][order].numpy()
    opacity = g.opacities[proj["ids"][order]].numpy()
    k2 = np.minimum(2.0 * np.log(np.maximum(255.0 * opacity, 1.0)), gl_shaders.EXTEND_MAX ** 2)
    return [(*uv[i], *cov[i], opacity[i], k2[i]) for i in range(len(order)) if k2[i] > 0]


def block_max(trans: np.ndarray, level: int) -> np.ndarray:
    n = 1 << level
    h, w = -(-trans.shape[0] // n), -(-trans.shape[1] // n)
    padded = np.zeros((h * n, w * n))
    padded[: trans.shape[0], : trans.shape[1]] = trans
    return padded.reshape(h, n, w, n).max(axis=(1, 3))


def count_fragments(splats, size: int, mode: str) -> dict:
    """Walk the splats front to back over a ``size²`` transmittance image. ``mode``: "unculled",
    "culled" (the renderer's Hi-Z emulated) or "ideal" (exact per-splat boxes)."""
    trans = np.ones((size, size))
    quad_pixels = drawn = needed = 0.0
    n = len(splats)
    bounds = [n * i // gl_culling.NUM_BATCHES for i in range(gl_culling.NUM_BATCHES + 1)]
    batch_of_start = {b: i for i, b in enumerate(bounds[:-1])}
    pyramid = None
    for j, (u, v, a, b, c, o, k2) in enumerate(splats):
        if mode == "culled" and j in batch_of_start and batch_of_start[j] > 0:
            pyramid = {lv: block_max(trans, lv) for lv in range(2, 12)}
        hx, hy = np.sqrt(k2 * a), np.sqrt(k2 * c)
        x0, x1 = max(int(np.ceil(u - hx - 0.5)), 0), min(int(np.floor(u + hx - 0.5)), size - 1)
        y0, y1 = max(int(np.ceil(v - hy - 0.5)), 0), min(int(np.floor(v + hy - 0.5)), size - 1)
        if x0 > x1 or y0 > y1:
            continue
        if pyramid is not None:
            lv = 2
            while lv < 11 and max((x1 >> lv) - (x0 >> lv), (y1 >> lv) - (y0 >> lv)) > gl_shaders.HIZ_SPAN - 1:
                lv += 1
            live = pyramid[lv][y0 >> lv:(y1 >> lv) + 1, x0 >> lv:(x1 >> lv) + 1] >= T_DONE
            if not live.any():
                continue
            rows, cols = np.flatnonzero(live.any(1)), np.flatnonzero(live.any(0))
            bx, by = x0 >> lv, y0 >> lv
            x0, x1 = max(x0, (bx + cols[0]) << lv), min(x1, ((bx + cols[-1] + 1) << lv) - 1)
            y0, y1 = max(y0, (by + rows[0]) << lv), min(y1, ((by + rows[-1] + 1) << lv) - 1)
        det = a * c - b * b
        rect = 4.0 * k2 * np.sqrt(det)
        dx, dy = np.meshgrid(np.arange(x0, x1 + 1) + 0.5 - u, np.arange(y0, y1 + 1) + 0.5 - v)
        alpha = np.minimum(gl_shaders.ALPHA_MAX, o * np.exp(-0.5 * (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det))
        visible = alpha >= gl_shaders.ALPHA_MIN
        under = trans[y0:y1 + 1, x0:x1 + 1]
        adds = visible & (under >= T_DONE)
        if mode == "ideal":
            if adds.any():
                rows, cols = np.flatnonzero(adds.any(1)), np.flatnonzero(adds.any(0))
                quad_pixels += min(rect, (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1))
                drawn += visible[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].sum()
        else:
            quad_pixels += min(rect, (x1 - x0 + 1) * (y1 - y0 + 1))
            drawn += visible.sum()
        needed += adds.sum()
        under *= np.where(visible, 1.0 - alpha, 1.0)
    return {"quad_pixels": quad_pixels, "alpha_fragments": float(drawn), "needed": float(needed)}


def best_median_ms(frame) -> float:
    return min(time_call(frame, repeat=REPEAT)["median_ms"] for _ in range(ROUNDS))


_CONSTANT_FS = """
#version 330
noperspective in vec2 v_w;
flat in vec4 v_color;
flat in float v_z;
layout(location = 0) out vec4 f_color;
#if WITH_DEPTH
layout(location = 1) out vec4 f_depth;
#endif
void main() {
    // A constant colour; the inputs are kept alive so that the vertex stage is the same.
    f_color = vec4(0.01) + 1e-30 * vec4(v_w, v_color.x, v_z);
#if WITH_DEPTH
    f_depth = vec4(0.0);
#endif
}
"""


def gpu_measurements(ball: Gaussians, viewmat: np.ndarray, K: np.ndarray) -> dict:
    import moderngl

    ctx = gl_backend.create_headless_context()
    out = {}
    with ctx:
        rb = ctx.renderbuffer((SIZE, SIZE), 4)
        fbo = ctx.framebuffer(color_attachments=[rb])

        def viewer(occlusion_culling, scene=ball, fs=None, blend=True):
            read = gl_shaders.read
            if fs is not None:   # the renderer compiles this text in place of shaders/splat.frag
                gl_shaders.read = lambda name: fs.lstrip("\n") if name == "splat.frag" else read(name)
            try:
                r = gl_backend.GLSplatRenderer(ctx, occlusion_culling=occlusion_culling, display_8bit=True,
                                               min_transmittance=gl_backend.VIEW_MIN_TRANSMITTANCE)
            finally:
                gl_shaders.read = read
            if not blend:   # ONE, ZERO: the source replaces the pixel (llvmpipe then blends nothing)
                state = r._set_state
                r._set_state = lambda: (state(), setattr(ctx, "blend_func", (moderngl.ONE, moderngl.ZERO)))
            r.set_gaussians(scene)

            def frame():
                r.render(viewmat, K, SIZE, SIZE, fbo=fbo, background=(1.0, 1.0, 1.0))
                ctx.finish()
            return r, frame

        for name, culling in (("culled", True), ("unculled", False)):
            r, frame = viewer(culling)
            query = ctx.query(samples=True)
            with query:
                frame()
            out[f"samples_passed_{name}"] = int(query.samples)
            out[f"frame_ms_{name}"] = best_median_ms(frame)
            r.release()
        r, frame = viewer(False, fs=_CONSTANT_FS, blend=False)
        out["frame_ms_unculled_constant_no_blend"] = best_median_ms(frame)
        r.release()
        tiny = Gaussians(ball.means, ball.quats, ball.log_scales + float(np.log(0.02)), ball.opacity_logits, ball.sh)
        r, frame = viewer(False, scene=tiny)
        out["frame_ms_unculled_scales_x0.02"] = best_median_ms(frame)
        r.release()
        fbo.release()
        rb.release()
    ctx.release()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSON file to write")
    args = parser.parse_args()
    ball = bench_scene(16384)
    vm, K = bench_camera(SIZE)
    viewmat, K = vm[0].double().numpy(), K[0].double().numpy()
    splats = projected(ball, viewmat, K)
    counts = {mode: count_fragments(splats, SIZE, mode) for mode in ("unculled", "culled", "ideal")}
    for mode, c in counts.items():
        print(f"{mode:9s} quad pixels {c['quad_pixels'] / 1e6:6.2f}M  α≥1/255 fragments {c['alpha_fragments'] / 1e6:6.2f}M"
              f"  needed {c['needed'] / 1e6:5.2f}M")
    gpu = gpu_measurements(ball, viewmat, K)
    # The full-screen passes' fragments: the display pass, and per culled batch after the first the
    # pyramid's base (one per 4×4 pixels) and its upper levels (one per texel of each).
    levels = [-(-SIZE // 4)]
    while levels[-1] > 1:
        levels.append(-(-levels[-1] // 2))
    pyramid = (gl_culling.NUM_BATCHES - 1) * sum(w * w for w in levels)
    splats_ms = gpu["frame_ms_unculled_scales_x0.02"]
    unculled_px = counts["unculled"]["quad_pixels"]
    ns_full = (gpu["frame_ms_unculled"] - splats_ms) / unculled_px * 1e6
    ns_floor = (gpu["frame_ms_unculled_constant_no_blend"] - splats_ms) / unculled_px * 1e6
    bound = splats_ms + counts["ideal"]["quad_pixels"] * ns_floor / 1e6
    bound_shaded = splats_ms + counts["ideal"]["quad_pixels"] * ns_full / 1e6
    result = {
        "machine": machine_info(), "renderer": gl_backend.renderer_name(), "size": SIZE,
        "scene": "bench_scene(16384), bench_camera(512)", "t_done": T_DONE,
        "fragments": {mode: {k: round(v) for k, v in c.items()} for mode, c in counts.items()},
        "emulation_check": {
            "samples_passed_culled": gpu["samples_passed_culled"],
            "emulated_culled": round(counts["culled"]["alpha_fragments"] + SIZE * SIZE + pyramid),
            "samples_passed_unculled": gpu["samples_passed_unculled"],
            "emulated_unculled": round(counts["unculled"]["alpha_fragments"] + SIZE * SIZE),
        },
        "times_ms": {k: round(v, 2) for k, v in gpu.items() if k.startswith("frame_ms")},
        "ns_per_quad_pixel_full": round(ns_full, 2),
        "ns_per_quad_pixel_floor": round(ns_floor, 2),
        "bound_ms_ideal_boxes_at_floor": round(bound, 1),
        "bound_ms_ideal_boxes_shaded": round(bound_shaded, 1),
    }
    print(f"frame, culled as shipped: {gpu['frame_ms_culled']:.1f} ms; unculled {gpu['frame_ms_unculled']:.1f} ms; "
          f"constant colour, no blend {gpu['frame_ms_unculled_constant_no_blend']:.1f} ms; "
          f"scales x0.02 {splats_ms:.1f} ms")
    print(f"per quad pixel: {ns_full:.2f} ns shaded and blended, {ns_floor:.2f} ns floor")
    print(f"bound, ideal boxes + per-splat cost: {bound:.1f} ms at the floor, {bound_shaded:.1f} ms shaded and "
          "blended; target 50 ms")
    print("emulation check:", result["emulation_check"])
    save_result(result, args.out)


if __name__ == "__main__":
    main()
