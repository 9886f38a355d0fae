"""Renderer benchmark: ms/frame and FPS of every available backend over sizes and splat counts.

Scenes: random balls (dense stress scenes), the example splat file (a mesh-sampled object) and an
object splatgen generates. Every row times :func:`~splatgen.core.render.render` (RGB, alpha and
depth, float32, returned as tensors). OpenGL rows also time the frame the GUI viewport draws: the
same renderer configured as the viewport uses it (colour only, accumulated in 8 bits
(``display_8bit``) and drawn straight into an 8-bit framebuffer, pixels stop at
:data:`~.gl_backend.VIEW_MIN_TRANSMITTANCE`, nothing read back).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..benchmarks import (GENERATED_PHOTO, bench_camera, bench_scene, example_splat_file, fps, generated_sample,
                          machine_info, time_call)
from ..errors import SplatgenError
from ..gaussians import Gaussians
from ..io import load_splats
from . import RenderError, backend_device, gsplat_available, render


def available_backends() -> list[str]:
    """Every backend that can render here (``"torch"`` always)."""
    names = ["torch"]
    from . import gl_backend

    if gl_backend.available():
        names.append("gl")
    if gsplat_available():
        names.append("gsplat")
    return names


#: The ``"scene"`` of the rows timing bench_scene's random balls (dense stress scenes); the example
#: splat file's rows name the file.
RANDOM_BALL = "random ball"
#: The ``"scene"`` of the rows timing :func:`~splatgen.core.benchmarks.generated_sample`.
GENERATED = f"generated ({GENERATED_PHOTO})"


def run_render_benchmark(
    backends: list[str] | None = None,
    sizes: tuple[int, ...] = (256, 512, 1024),
    counts: tuple[int, ...] = (16384, 65536, 262144),
    repeat: int = 10,
    example: bool = True,
    generated: bool = True,
    log=print,
) -> dict:
    """Time ``render`` per backend × scene × square image size; plus torch forward+backward at 128².

    Scenes: a random ball (:func:`~splatgen.core.benchmarks.bench_scene`) of each of ``counts``
    splats, with ``example`` the example splat file
    (:func:`~splatgen.core.benchmarks.example_splat_file`) and with ``generated`` the shipped
    regressor's object for an example photo (:func:`~splatgen.core.benchmarks.generated_sample`).

    Returns ``{"machine": ..., "results": [{"backend", "scene", "gaussians", "size", "median_ms", "fps",
    "covered", ...}]}`` (``covered``: the fraction of pixels with alpha > 0.5). Rows of the ``gl``
    backend also say whether it used occlusion culling (``"culled"``) and give the viewer frame
    (``"viewer_ms"``, ``"viewer_fps"``, ``"viewer_culled"``; see the module docstring).
    Combinations a backend refuses (e.g. too many pairs for the CPU rasterizer) are recorded with
    ``"skipped"`` and the reason.
    """
    backends = backends or available_backends()
    results = []
    generated_cpu = None
    if generated:   # made once, on the CPU (deterministic)
        try:
            generated_cpu = generated_sample()
        except SplatgenError as exc:   # no usable shipped model: the other scenes are still timed
            log(f"generated object left out: {exc}")
    for backend in backends:
        device = backend_device(backend)
        scenes = [(RANDOM_BALL, lambda n=n: bench_scene(n, device)) for n in counts]
        if example:
            scenes.append((example_splat_file().name, lambda: load_splats(example_splat_file()).to(device)))
        if generated_cpu is not None:
            scenes.append((GENERATED, lambda: generated_cpu.to(device)))
        with _ViewerFrame() if backend == "gl" else contextlib.nullcontext() as viewer:
            for name, make in scenes:
                scene = make()
                if viewer is not None:
                    viewer.set_gaussians(scene)
                for size in sizes:
                    vm, K = bench_camera(size)
                    row = {"backend": backend, "scene": name, "gaussians": scene.num_gaussians, "size": size}
                    last = {}   # the last timed frame's output, for the covered fraction
                    try:
                        with torch.no_grad():
                            timing = time_call(lambda: last.update(out=render(scene, vm, K, size, size,
                                                                              backend=backend)),
                                               repeat=repeat, device=device)
                        row.update(timing, fps=fps(timing["median_ms"]),
                                   covered=round(float((last["out"].alpha.cpu().numpy() > 0.5).mean()), 4))
                        if backend == "gl":
                            from . import gl_backend

                            row["culled"] = gl_backend.last_culled()
                            row.update(viewer.time(vm[0].numpy(), K[0].numpy(), size, repeat))
                    except (RenderError, RuntimeError, MemoryError) as exc:
                        row["skipped"] = str(exc).splitlines()[0][:200]
                    results.append(row)
                    log(_format_row(row))
    train = []
    for backend in [b for b in backends if b in ("torch", "gsplat")]:
        device = backend_device(backend)
        scene = bench_scene(16384, device)
        params = {k: v.clone().requires_grad_(True) for k, v in scene.tensors().items()}
        vm, K = bench_camera(128)

        def step():
            out = render(Gaussians(**params), vm, K, 128, 128, backend=backend)
            (out.rgb.square().mean() + out.alpha.mean()).backward()

        timing = time_call(step, repeat=repeat, device=device)
        row = {"backend": backend, "gaussians": 16384, "size": 128, "pass": "forward+backward", **timing}
        train.append(row)
        log(_format_row(row))
    return {"machine": machine_info(), "results": results, "forward_backward": train}


class _ViewerFrame:
    """The OpenGL renderer as the GUI viewport uses it, in a context of its own: colour only,
    accumulated in 8 bits into an 8-bit framebuffer, :data:`~.gl_backend.VIEW_MIN_TRANSMITTANCE`,
    no readback.
    A context manager: leaving it frees the renderer, the framebuffers and the context."""

    def __init__(self):
        from . import gl_backend

        self.ctx = gl_backend.create_headless_context()
        with self.ctx:
            self.renderer = gl_backend.GLSplatRenderer(self.ctx, min_transmittance=gl_backend.VIEW_MIN_TRANSMITTANCE,
                                                       display_8bit=True)
        self._fbos: dict = {}    # size -> (framebuffer, its RGBA8 renderbuffer)

    def set_gaussians(self, gaussians: Gaussians) -> None:
        with self.ctx:
            self.renderer.set_gaussians(gaussians.to("cpu"))

    def time(self, viewmat: np.ndarray, K: np.ndarray, size: int, repeat: int) -> dict:
        """ms per frame (drawn and finished) at ``size``²: ``viewer_ms``, ``viewer_fps``, ``viewer_culled``."""
        with self.ctx:
            if size not in self._fbos:
                rb = self.ctx.renderbuffer((size, size), 4)
                self._fbos[size] = (self.ctx.framebuffer(color_attachments=[rb]), rb)
            fbo = self._fbos[size][0]

            def frame():
                self.renderer.render(viewmat, K, size, size, fbo=fbo, background=(1.0, 1.0, 1.0))
                self.ctx.finish()

            timing = time_call(frame, repeat=repeat)
        return {"viewer_ms": timing["median_ms"], "viewer_fps": fps(timing["median_ms"]),
                "viewer_culled": self.renderer.last_culled}

    def __enter__(self) -> "_ViewerFrame":
        return self

    def __exit__(self, *exc) -> None:
        with self.ctx:
            for fbo, rb in self._fbos.values():
                fbo.release()
                rb.release()
            self.renderer.release()
        self.ctx.release()


def _format_row(row: dict) -> str:
    scene = "" if row.get("scene", RANDOM_BALL) == RANDOM_BALL else f" ({row['scene']})"
    head = f"{row['backend']:>6} {row['gaussians']:>7} splats{scene} {row['size']:>4}²"
    if "skipped" in row:
        return f"{head}  skipped: {row['skipped']}"
    extra = f" ({row['pass']})" if "pass" in row else f"  {row['fps']:8.1f} FPS"
    if row.get("culled"):
        extra += "  (occlusion-culled)"
    if "viewer_ms" in row:
        extra += f"; viewer frame {row['viewer_ms']:.2f} ms, {row['viewer_fps']:.1f} FPS"
    return f"{head}  {row['median_ms']:9.2f} ms{extra}"
