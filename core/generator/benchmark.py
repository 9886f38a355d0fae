"""``splatgen bench generate``: every generator's latency for one sample and its throughput for many.

For each model (default: every shipped one): the time to load it; the latency of one sample at
``steps`` (the figure the targets name, e.g. "one 50-step sample") and at the model's own default
settings; the throughput (samples/s) of one request of 64 and of 256 samples, which the generator
batches as the device's memory allows (:mod:`.batching`; deterministic models: latency only); on CUDA the share of the wall time the GPU
was busy running kernels, and for the latent-diffusion model the eager loop against the CUDA-graph
loop (the default there), with their latents compared.

The input is the shipped example splat rendered from the input camera (a real object at the
canonical framing), so the benchmark needs no dataset.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from .. import framing
from ..benchmarks import example_splat_file, machine_info, synchronize, time_call
from .base import GenerationSettings, input_camera

#: Request sizes whose throughput is reported.
COUNTS = (64, 256)


def example_input(device="cpu") -> torch.Tensor:
    """``(4, 128, 128)`` prepared input: the shipped example splat seen from the input camera."""
    from ..io import load_splats
    from ..render import render

    g = load_splats(example_splat_file())
    viewmat, K = input_camera()

    out = render(g, viewmat[None], K, framing.IMAGE_SIZE, framing.IMAGE_SIZE, backend="torch")
    return torch.cat([out.rgb[0], out.alpha[0]], -1).permute(2, 0, 1).clamp(0, 1).to(device)


def gpu_busy_ms(fn: Callable[[], object], device: torch.device) -> float:
    """Milliseconds during one call of ``fn`` in which at least one CUDA kernel ran (the union of the
    kernels' intervals, from the profiler): divided by the call's unprofiled wall time, the GPU's
    utilisation."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        synchronize(device)
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == DeviceType.CUDA and e.time_range.end > e.time_range.start)
    busy, end = 0.0, float("-inf")
    for start, stop in spans:
        if start > end:
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return busy / 1e3


def _settings(gen, steps: int | None, guidance: float | None, n: int) -> GenerationSettings:
    if not gen.stochastic:
        return GenerationSettings(num_samples=n)
    return GenerationSettings(steps=steps, guidance=guidance, num_samples=n, strength=1.0,
                              scheduler=None if steps is None else "ddim")


def benchmark_model(name: str, dev: torch.device, image: torch.Tensor, steps: int, guidance: float, repeat: int,
                    counts: Sequence[int] = COUNTS) -> list[dict]:
    """The rows of one model: load, latency at ``steps`` and at its defaults, throughput per count."""
    from .registry import load_generator

    t0 = time.perf_counter()
    gen = load_generator(name, dev)
    rows = [{"model": name, "what": "load", "median_ms": (time.perf_counter() - t0) * 1e3}]

    def add(what: str, fn, n: int, reps: int, **extra) -> dict:
        r = time_call(fn, warmup=1, repeat=reps, device=dev)
        row = {"model": name, "what": what, "samples": n, **extra, **r,
               "samples_per_s": n / (r["median_ms"] / 1e3)}
        if dev.type == "cuda":
            row["gpu_busy_fraction"] = min(1.0, gpu_busy_ms(fn, dev) / r["median_ms"])
        rows.append(row)
        busy = f"  GPU busy {row['gpu_busy_fraction']:.0%}" if "gpu_busy_fraction" in row else ""
        print(f"{name:10s} {what:46s} {r['median_ms']:9.1f} ms {row['samples_per_s']:8.1f} samples/s{busy}")
        return row

    one_pass = not gen.stochastic or gen.kind == "one-step"  # no sampler: steps mean nothing to it
    configs = [("one pass", None)] if one_pass else [(f"{steps} DDIM steps", steps)]
    if not one_pass:
        d = gen.defaults
        configs.append((f"defaults ({d.steps} {d.scheduler} steps)", None))
    for label, st in configs:
        s = _settings(gen, st, guidance if st or one_pass else None, 1)
        add(f"1 sample, {label}", lambda s=s: gen.generate(image, s), 1, repeat, steps=st or gen.defaults.steps)
    for n in counts if gen.stochastic else ():  # a deterministic model gives one sample whatever is asked
        s = _settings(gen, steps, guidance, n)
        reps = max(1, repeat // 2) if n > 64 else repeat
        add(f"{n} samples, {configs[0][0]}", lambda s=s: gen.generate(image, s), n, reps,
            steps=gen.defaults.steps if one_pass else steps, batch=gen.max_batch)
    return rows


def compare_cuda_graphs(dev: torch.device, image: torch.Tensor, steps: int, guidance: float, repeat: int) -> dict:
    """On CUDA, eager against CUDA graphs: latent diffusion's 4 samples (times, max |latent difference|)
    and the regressor's one pass (times, max |means difference|)."""
    from .registry import load_generator

    gen = load_generator("diffusion", dev)
    s = GenerationSettings(steps=steps, guidance=guidance, num_samples=4, scheduler="ddim", strength=1.0)
    out, latents = {}, {}
    for label, graphs in (("eager", False), ("CUDA graphs", True)):
        gen.use_cuda_graphs(graphs)
        latents[label] = torch.stack([x.latent for x in gen.generate(image, s)])  # also captures the graphs
        out[f"{label}_4_samples_ms"] = time_call(lambda: gen.generate(image, s), warmup=1, repeat=repeat,
                                                 device=dev)["median_ms"]
    out["graphs_vs_eager_max_abs_latent_diff"] = (latents["eager"] - latents["CUDA graphs"]).abs().max().item()
    reg = load_generator("regressor", dev)
    means = {}
    for label, graphs in (("eager", False), ("CUDA graphs", True)):
        reg.use_cuda_graphs(graphs)
        means[label] = reg.generate(image)[0].gaussians.means
        out[f"regressor_{label}_ms"] = time_call(lambda: reg.generate(image), warmup=1, repeat=repeat,
                                                 device=dev)["median_ms"]
    out["regressor_graphs_vs_eager_max_abs_means_diff"] = (means["eager"] - means["CUDA graphs"]).abs().max().item()
    print(f"regressor, CUDA graph vs eager: {out['regressor_CUDA graphs_ms']:.2f} ms vs {out['regressor_eager_ms']:.2f} ms, "
          f"max |means difference| {out['regressor_graphs_vs_eager_max_abs_means_diff']:.2e}")
    print(f"CUDA graphs vs eager (4 samples): {out['CUDA graphs_4_samples_ms']:.1f} ms vs "
          f"{out['eager_4_samples_ms']:.1f} ms, max |latent difference| "
          f"{out['graphs_vs_eager_max_abs_latent_diff']:.2e}")
    return out


def run_generate_benchmark(device: str = "auto", steps: int = 50, guidance: float = 2.0, repeat: int = 3,
                           threads: int | None = 2, models: Sequence[str] | None = None,
                           counts: Sequence[int] = COUNTS) -> dict:
    """Rows of :func:`benchmark_model` for each of ``models`` (default: every shipped model)."""
    from ..devices import pick_device
    from .registry import available_models

    dev = pick_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    image = example_input(dev)
    names = list(models) if models else sorted(available_models())
    rows = [row for name in names for row in benchmark_model(name, dev, image, steps, guidance, repeat, counts)]
    extra = compare_cuda_graphs(dev, image, steps, guidance, repeat) \
        if dev.type == "cuda" and "diffusion" in names else {}
    return {"machine": machine_info(), "device": str(dev),
            "threads": torch.get_num_threads() if dev.type == "cpu" else None,
            "models": names, "counts": list(counts), "results": rows, **extra}
