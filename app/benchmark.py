"""``splatgen bench viewport``: frames per second of the GUI viewport (and of the tiled view's grid)
while the camera orbits.

``core`` does not import the app: this module joins ``splatgen bench`` through the
``splatgen.benchmarks`` entry point (``pyproject.toml``), with the ``add_parser`` / ``run`` shape of
every command (see :mod:`splatgen.core.commands.bench`).

The scene is a generated sample (the shipped diffusion model on an example photo: 128·128·2 =
32,768 splats, nothing pruned) or a splat file (``--splats``). Each frame moves the
:class:`~splatgen.app.orbit_camera.OrbitCamera` as a mouse drag does (so the renderer re-sorts every
frame) and draws through :class:`~splatgen.app.viewport_renderer.ViewportRenderer`, the viewport's
own drawing code, into an 8-bit RGBA framebuffer the size of the view:

* ``gl`` — the OpenGL splat renderer straight into the framebuffer (a headless EGL context here;
  the ``QOpenGLWidget``'s context in the app), at full resolution and at the reduced resolution
  the viewport uses while the camera moves;
* ``gsplat`` — gsplat on CUDA, mapped to 8-bit on the GPU, downloaded and drawn as a texture (when
  no OpenGL context can be made, only the CUDA part up to the downloaded frame is timed, and the
  result says so).

With ``--tiles N …`` the tiled view's grid is timed too: ``N`` generated samples (seeds 0 … N-1)
as one batch in one renderer, drawn in the tiles the view gives them in a ``size``² window (with its
variance map's tile beside), one render call a frame, at full resolution and at the view's moving
resolution; and how long *Order by disagreement* takes to score them.

A frame's time runs from the camera update to the finished image (``glFinish`` / CUDA sync). No Qt
is needed, so it runs on machines without PyQt6 too.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

# The viewport's modules are imported where they are used: `splatgen --help` loads this module to
# list the benchmark, and should not pay for the generator and the renderers then.

#: Pixels of horizontal drag per frame (0.4°/px: 1.2° a frame, a brisk orbit).
DRAG_PX = 3.0


def bench_samples(splats: str | Path | None = None, device: str = "cpu", steps: int = 20, count: int = 1):
    """The scenes: ``splats`` (a .ply/.splat, once) or ``count`` freshly generated samples of the
    armchair example photo (``steps`` DDIM steps, seeds 0 … count-1). Returns (list of Gaussians on
    CPU, description)."""
    if splats is not None:
        from splatgen.core.io import load_splats

        return [load_splats(splats)], f"splat file {Path(splats).name}"
    from splatgen.core.generator import GenerationSettings, load_generator
    from splatgen.core.imageprep import prepare_image

    import splatgen.assets

    photo = Path(next(iter(splatgen.assets.__path__))) / "examples" / "armchair.png"
    gen = load_generator("diffusion", device)
    image = prepare_image(photo).image
    samples = gen.generate(image, GenerationSettings(steps=steps, seed=0, num_samples=count))
    seeds = "seed 0" if count == 1 else f"seeds 0-{count - 1}"
    return [s.gaussians.to("cpu") for s in samples], f"diffusion sample{'s' if count > 1 else ''} of {photo.name} " \
                                                    f"({steps} steps, {seeds})"


def time_orbit(renderer, ctx, size: int, frames: int, scale: float = 1.0, tiles=None) -> dict:
    """Orbit ``frames`` frames at ``size``² (rendered at ``scale``×) with ``renderer`` (a
    :class:`~splatgen.app.viewport_renderer.ViewportRenderer`; with a batch, drawn in ``tiles``) and
    time each one."""
    from .orbit_camera import OrbitCamera
    from .viewport_renderer import scaled_camera

    cam = OrbitCamera()
    fbo = None
    if ctx is not None:
        fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((size, size), 4)])
    K = cam.intrinsics(*(tiles[0][2:] if tiles else (size, size)))
    sync = (lambda: torch.cuda.synchronize()) if renderer.backend == "gsplat" else (lambda: None)
    last = {}

    def frame():
        cam.orbit(DRAG_PX, 0.0)
        vm = cam.viewmat()
        if fbo is not None:
            renderer.draw(fbo, vm, K, size, size, scale=scale, tiles=tiles)
            ctx.finish()
        else:
            s = max(1, round(size * scale))
            Ks, scaled = scaled_camera(K, size, size, s, s, tiles)
            last["img"] = renderer.frame_cuda(vm, Ks, s, s, tiles=scaled)
        sync()

    for _ in range(5):                     # warm-up: shaders, buffers, CUDA kernels
        frame()
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        frame()
        times.append((time.perf_counter() - t0) * 1e3)
    if fbo is not None:
        img = np.frombuffer(fbo.read(components=3), np.uint8).reshape(size, size, 3)
        drawn = float((np.abs(img.astype(int) - 255).max(-1) > 25).mean())
        fbo.release()
    else:
        drawn = float((np.abs(last["img"].astype(int) - 255).max(-1) > 25).mean())
    t = np.sort(np.asarray(times))
    med = float(np.median(t))
    return {"median_ms": round(med, 3), "p90_ms": round(float(t[int(0.9 * (len(t) - 1))]), 3),
            "min_ms": round(float(t[0]), 3), "fps": round(1000.0 / med, 1), "frames": frames,
            "object_pixels": None if drawn is None else round(drawn, 4)}


def run_viewport_benchmark(backends: list[str] | None = None, sizes=(512, 1024), frames: int = 120,
                           splats: str | Path | None = None, tiles=(), log=print) -> dict:
    """FPS per backend × size while orbiting (full resolution, and the viewport's moving resolution),
    of one sample and of the tiled view's grid of each count in ``tiles``.

    Returns ``{"machine", "scene", "results": [{"backend", "size", "scale", "fps", "median_ms", ...}],
    "disagreement": [{"samples", "seconds"}]}``; grid rows have ``"samples"`` (their count).
    """
    from splatgen.core.benchmarks import machine_info
    from splatgen.core.render import backend_device, batch_scenes, choose_backend
    from splatgen.core.render.gl_backend import create_headless_context
    from splatgen.core.turntable import tile_boxes

    from .viewport_renderer import ViewportRenderer, fit_scale

    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    best = choose_backend(have_gl=True)   # the viewport's own choice: gsplat with CUDA, else gl
    backends = backends or [best]
    scenes, scene = bench_samples(splats, backend_device(best), count=max([1, *tiles]))
    g = scenes[0]
    log(f"scene: {scene}, {g.num_gaussians:,} splats{' each' if len(scenes) > 1 else ''}")
    results = []
    for backend in backends:
        no_context = ""
        try:
            ctx = create_headless_context()
        except Exception as exc:  # noqa: BLE001
            no_context = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            if backend == "gl":
                results.append({"backend": backend, "skipped": f"no OpenGL context: {no_context}"})
                continue
            log(f"no OpenGL context ({no_context}): timing gsplat up to the frame on the host only")
            ctx = None
        try:
            renderer = ViewportRenderer(ctx, backend)
        except Exception as exc:  # noqa: BLE001
            results.append({"backend": backend, "skipped": str(exc).splitlines()[0][:200]})
            continue
        if renderer.backend != backend:
            results.append({"backend": backend, "skipped": f"not available here (got {renderer.backend})"})
            continue
        path = ("GLSplatRenderer into an RGBA8 framebuffer" if backend == "gl" else
                "gsplat → 8-bit on GPU → host → GL texture → framebuffer" if ctx is not None else
                f"gsplat → 8-bit on GPU → host (no GL context: upload and draw not timed; {no_context})")
        for count in (1, *tiles):
            renderer.set_gaussians(g if count == 1 else batch_scenes(scenes[:count]))
            for size in sizes:
                # the tiled view's grid: its samples' tiles, the variance map's last
                boxes = None if count == 1 else tile_boxes(count + 1, size, size)[:count]
                row = {"backend": backend, "size": size, "scale": 1.0, "renderer": renderer.renderer_name,
                       "path": path if count == 1 else f"{path}, {count} tiles in one call"}
                if count > 1:
                    row["samples"] = count
                row.update(time_orbit(renderer, ctx, size, frames, tiles=boxes))
                results.append(row)
                log(_format(row))
                moving = fit_scale(row["median_ms"])
                if moving < 1.0:           # what the view shows while the camera moves
                    row2 = {**row, "scale": round(moving, 3)}
                    row2.update(time_orbit(renderer, ctx, size, frames, moving, tiles=boxes))
                    results.append(row2)
                    log(_format(row2))
        if ctx is not None:
            from splatgen.core.render.foreign_context import release_current_egl

            renderer.release()
            ctx.release()
            release_current_egl()   # a destroyed EGL context stays current until unbound
    scoring = []
    if tiles:
        from splatgen.core.disagreement import sample_disagreement

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))   # as the app runs (tasks.set_torch_threads)
        try:
            sample_disagreement(scenes[:2])    # warm-up: the renderer's context and shaders
            for count in tiles:
                t0 = time.perf_counter()
                sample_disagreement(scenes[:count])
                scoring.append({"samples": count, "seconds": round(time.perf_counter() - t0, 3),
                                "torch_threads": torch.get_num_threads()})
                log(f"order by disagreement, {count} samples: {scoring[-1]['seconds']:.2f} s")
        finally:
            torch.set_num_threads(threads)
    machine = machine_info()
    machine["load_average_1min"] = {"before": load_before,
                                    "after": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    return {"machine": machine, "scene": scene, "splats": int(g.num_gaussians), "drag_deg_per_frame":
            DRAG_PX * 0.4, "results": results, "disagreement": scoring}


def _format(row: dict) -> str:
    res = f"{row['size']}²" + ("" if row["scale"] == 1.0 else f" at {row['scale']:.2f}× (moving)")
    what = f"{row['samples']} tiles" if "samples" in row else "1 sample"
    return (f"{row['backend']:>6} {what:>9} {res:<24} {row['fps']:8.1f} FPS  median {row['median_ms']:.2f} ms  "
            f"p90 {row['p90_ms']:.2f} ms")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``splatgen bench viewport`` and its options."""
    v = sub.add_parser("viewport", help="GUI viewport FPS while orbiting a generated 32k-splat sample",
                       description="Frames per second of the desktop app's viewport drawing code while the "
                       "camera orbits a generated sample: the OpenGL splat renderer into a framebuffer, or "
                       "gsplat on CUDA.")
    v.add_argument("--backends", nargs="+", choices=("gl", "gsplat"), help="default: gsplat with CUDA, else gl")
    v.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    v.add_argument("--frames", type=int, default=120, help="frames timed per size (after 5 warm-up frames)")
    v.add_argument("--splats", type=Path, help="orbit this .ply/.splat instead of generating a sample")
    v.add_argument("--tiles", nargs="+", type=int, default=[], metavar="N",
                   help="also the tiled view's grid of N generated samples (e.g. 16 64; the view shows up to 64)")
    v.add_argument("--out-dir", type=Path, default=Path("benchmarks"))
    return v


def run(args: argparse.Namespace) -> int:
    from splatgen.core.benchmarks import write_result

    from splatgen.core.errors import SettingsError

    if any(n < 2 for n in args.tiles):
        raise SettingsError(f"--tiles takes counts of 2 or more, got {args.tiles}")
    if args.tiles and args.splats:
        raise SettingsError("--tiles times generated samples; leave out --splats")
    result = run_viewport_benchmark(args.backends, tuple(args.sizes), args.frames, args.splats, tuple(args.tiles))
    result["command"] = ("splatgen bench viewport" + (f" --backends {' '.join(args.backends)}" if args.backends else "")
                         + f" --sizes {' '.join(map(str, args.sizes))} --frames {args.frames}"
                         + (f" --splats {args.splats}" if args.splats else "")
                         + (f" --tiles {' '.join(map(str, args.tiles))}" if args.tiles else ""))
    path = write_result("viewport-grid" if args.tiles else "viewport", result, args.out_dir)
    print(f"wrote {path}")
    return 0
