"""What every benchmark shares: the machine that ran it, timing, test scenes, writing the result.

Each measurement is a ``benchmark`` module beside the code it times (``render/benchmark.py``,
``generator/benchmark.py``, ``viewer/benchmark.py``, ``data/benchmark.py``, ``mesh/benchmark.py``,
``app/benchmark.py``); ``splatgen bench`` (:mod:`splatgen.core.commands.bench`) runs most of them. Results are JSON files
under ``benchmarks/`` (machine, date, versions, numbers), never asserted by tests. Each benchmark
prints a short table as well.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from . import framing
from .cameras import intrinsics_from_fov, orbit_viewmat
from .gaussians import Gaussians, random_gaussians


def machine_info() -> dict:
    """Where a benchmark ran: CPU, cores, GPU, library versions, date."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu,
        "cpu_threads": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import gsplat

        info["gsplat"] = gsplat.__version__
    except Exception:  # noqa: BLE001 - informational only
        info["gsplat"] = None
    try:
        from .render import gl_backend

        info["gl_renderer"] = getattr(gl_backend, "renderer_name", lambda: "yes")() if gl_backend.available() else None
    except Exception:  # noqa: BLE001
        info["gl_renderer"] = None
    return info


def synchronize(device: torch.device | str | None = None) -> None:
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], *, warmup: int = 2, repeat: int = 10, min_seconds: float = 0.0,
              device=None) -> dict:
    """Median / min wall time of ``fn`` in milliseconds (device work synchronised)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 10 * repeat:
            break
    times.sort()
    return {"median_ms": times[len(times) // 2], "min_ms": times[0], "runs": len(times)}


def bench_scene(n: int, device="cpu") -> Gaussians:
    """A random object-sized scene of ``n`` Gaussians; splat size shrinks as n grows, as in real scenes.

    At 16k splats the standard deviations span 0.005–0.03 world units inside a ball of radius 0.5.
    A dense stress scene: seen by :func:`bench_camera`, it covers 43% of the image at 16k splats and
    its average covered pixel lies behind an optical depth (``Σ -ln(1 - α)``) of about 19 (31 at
    65k), where the mesh-sampled teddy bear example (20k splats) has about 8 and splatgen's own
    objects (:func:`generated_sample`, 32k splats) 0.4–1.6
    (:func:`splatgen.core.render.gl_backend.optical_depth`).
    """
    shrink = (n / 16384) ** (-1.0 / 3.0)
    return random_gaussians(n, radius=0.5, scale_range=(0.005 * shrink, 0.03 * shrink), seed=n).to(device)


def example_splat_file() -> Path:
    """The shipped example splat file, ``assets/examples/teddy_bear.ply`` (a real object: 20,000 splats
    on a mesh's surface), which several benchmarks time beside their random scenes."""
    return _examples_dir() / "teddy_bear.ply"


#: The example photo whose generated object the benchmarks time (see :func:`generated_sample`).
GENERATED_PHOTO = "sofa.png"


def generated_sample(device="cpu") -> Gaussians:
    """What splatgen itself makes: the shipped regressor's object for the example photo
    :data:`GENERATED_PHOTO` (deterministic; one Splatter Image, 128·128·2 = 32,768 splats).

    Seen by :func:`bench_camera` it covers 11% of the image (alpha > 0.5) at an estimated optical
    depth of 1.6 (:func:`splatgen.core.render.gl_backend.optical_depth`; the armchair's object: 0.4),
    where the 16k random ball covers 43% at 19 and the teddy bear example 12% at 8.
    """
    from .generator import GenerationSettings, load_generator
    from .imageprep import prepare_image

    generator = load_generator("regressor", "cpu")
    sample = generator.generate(prepare_image(_examples_dir() / GENERATED_PHOTO).image, GenerationSettings(seed=0))[0]
    return sample.gaussians.to(device)


def _examples_dir() -> Path:
    import splatgen.assets

    return Path(next(iter(splatgen.assets.__path__))) / "examples"


def bench_camera(size: int):
    """An orbit camera at the canonical distance and field of view, ``size``² pixels."""
    return orbit_viewmat(30.0, 20.0)[None], intrinsics_from_fov(framing.FOV_DEG, size, size)[None]


def write_result(name: str, result: dict, out_dir: str | os.PathLike = "benchmarks") -> Path:
    """Write ``result`` as ``out_dir/<name>-<gpu-or-cpu>-<date>.json`` and return the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = result.get("machine", {})
    tag = (machine.get("gpu") or "cpu{}".format(machine.get("cpu_threads", ""))).replace(" ", "_")
    date = machine.get("date", "")[:10]
    path = out_dir / f"{name}-{tag}-{date}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def fps(ms: float) -> float:
    return 1000.0 / ms if ms > 0 else math.inf
