"""Renderer benchmark: ms/frame and FPS of every available backend over sizes and splat counts."""

from __future__ import annotations

import torch

from ..benchmarks import bench_camera, bench_scene, example_splat_file, fps, machine_info, time_call
from ..gaussians import Gaussians
from ..io import load_splats
from . import RenderError, render


def available_backends() -> list[str]:
    names = ["torch"]
    from . import gl_backend

    if gl_backend.available():
        names.append("gl")
    if torch.cuda.is_available():
        names.append("gsplat")
    return names


#: The ``"scene"`` of the rows timing bench_scene's random balls (dense stress scenes); the example
#: splat file's rows name the file.
RANDOM_BALL = "random ball"


def run_render_benchmark(
    backends: list[str] | None = None,
    sizes: tuple[int, ...] = (256, 512, 1024),
    counts: tuple[int, ...] = (16384, 65536, 262144),
    repeat: int = 10,
    example: bool = True,
    log=print,
) -> dict:
    """Time ``render`` per backend × scene × square image size; plus torch forward+backward at 128².

    Scenes: a random ball (:func:`~splatgen.core.benchmarks.bench_scene`) of each of ``counts``
    splats, and with ``example`` the example splat file
    (:func:`~splatgen.core.benchmarks.example_splat_file`).

    Returns ``{"machine": ..., "results": [{"backend", "scene", "gaussians", "size", "median_ms", "fps",
    ...}]}``; rows of the ``gl`` backend say whether it used occlusion culling (``"culled"``).
    Combinations a backend refuses (e.g. too many pairs for the CPU rasterizer) are recorded with
    ``"skipped"`` and the reason.
    """
    backends = backends or available_backends()
    results = []
    for backend in backends:
        device = "cuda" if backend == "gsplat" else "cpu"
        scenes = [(RANDOM_BALL, lambda n=n: bench_scene(n, device)) for n in counts]
        if example:
            scenes.append((example_splat_file().name, lambda: load_splats(example_splat_file()).to(device)))
        for name, make in scenes:
            scene = make()
            for size in sizes:
                vm, K = bench_camera(size)
                row = {"backend": backend, "scene": name, "gaussians": scene.num_gaussians, "size": size}
                try:
                    with torch.no_grad():
                        timing = time_call(lambda: render(scene, vm, K, size, size, backend=backend),
                                           repeat=repeat, device=device)
                    row.update(timing, fps=fps(timing["median_ms"]))
                    if backend == "gl":
                        from . import gl_backend

                        row["culled"] = gl_backend.last_culled()
                except (RenderError, RuntimeError, MemoryError) as exc:
                    row["skipped"] = str(exc).splitlines()[0][:200]
                results.append(row)
                log(_format_row(row))
    train = []
    for backend in [b for b in backends if b in ("torch", "gsplat")]:
        device = "cuda" if backend == "gsplat" else "cpu"
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


def _format_row(row: dict) -> str:
    scene = "" if row.get("scene", RANDOM_BALL) == RANDOM_BALL else f" ({row['scene']})"
    head = f"{row['backend']:>6} {row['gaussians']:>7} splats{scene} {row['size']:>4}²"
    if "skipped" in row:
        return f"{head}  skipped: {row['skipped']}"
    extra = f" ({row['pass']})" if "pass" in row else f"  {row['fps']:8.1f} FPS"
    if row.get("culled"):
        extra += "  (occlusion-culled)"
    return f"{head}  {row['median_ms']:9.2f} ms{extra}"
