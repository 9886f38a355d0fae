"""``splatgen bench``: speed figures, printed and written as JSON under ``benchmarks/``.

The benchmarks of ``core`` are defined here (each measurement lives in a ``benchmark`` module beside
the code it times: :mod:`splatgen.core.render.benchmark`, :mod:`splatgen.core.generator.benchmark`,
:mod:`splatgen.core.training.benchmark`, :mod:`splatgen.core.mesh.benchmark`).
Other parts of the distribution add theirs through the ``splatgen.benchmarks`` entry-point group:
each entry names a module with ``add_parser(subparsers)`` and ``run(args)``, the shape of every
command. That is how the desktop app's ``viewport`` benchmark (:mod:`splatgen.app.benchmark`)
joins without ``core`` importing ``app``.
"""

from __future__ import annotations

import argparse
import logging
from importlib.metadata import entry_points
from pathlib import Path

from ..benchmarks import write_result
from ..errors import SplatgenError

log = logging.getLogger(__name__)

#: Entry-point group of the benchmarks defined outside ``core``.
ENTRY_POINT_GROUP = "splatgen.benchmarks"


def plugin_benchmarks() -> dict:
    """The modules of the ``splatgen.benchmarks`` entry points, by name; one that fails to import is left out."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except ImportError as exc:  # e.g. the app's dependencies are not installed
            log.debug("benchmark %s unavailable: %s", ep.name, exc)
    return found


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="measure speed; results go to benchmarks/*.json",
                       description="Benchmarks. Results are printed and written as JSON with the machine and date.")
    bench_sub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)

    r = bench_sub.add_parser("render", help="ms/frame and FPS per renderer backend, size and splat count")
    r.add_argument("--backends", nargs="+", choices=("torch", "gl", "gsplat"),
                   help="default: every backend this machine has")
    r.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    r.add_argument("--counts", nargs="+", type=int, default=[16384, 65536, 262144])
    r.add_argument("--repeat", type=int, default=10)
    r.add_argument("--no-example", dest="example", action="store_false",
                   help="leave out the example splat file (assets/examples/teddy_bear.ply, a real object); "
                   "the random balls of --counts are always timed")
    r.add_argument("--no-generated", dest="generated", action="store_false",
                   help="leave out the object the shipped regressor makes of assets/examples/sofa.png "
                   "(32,768 splats; loads the model)")
    r.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks"))
    r.set_defaults(bench_run=run_render)

    q = bench_sub.add_parser("parity", help="PSNR between two renderer backends on random scenes")
    q.add_argument("--reference", choices=("torch", "gl", "gsplat"), default="torch")
    q.add_argument("--other", choices=("torch", "gl", "gsplat"), default="gsplat")
    q.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks"))
    q.set_defaults(bench_run=run_parity)

    g = bench_sub.add_parser("generate", help="every generator: load, latency of one sample, throughput (samples/s) "
                             "of 64 and 256 samples, GPU utilisation; CUDA graphs against eager")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--guidance", type=float, default=2.0)
    g.add_argument("--repeat", type=int, default=3)
    g.add_argument("--threads", type=int, default=2, help="CPU threads (default 2, the reference machine)")
    g.add_argument("--model", dest="models", action="append", default=None, metavar="MODEL",
                   help="model folder or shipped model name (repeat for several; default: every shipped model)")
    g.add_argument("--counts", default="64,256",
                   help="request sizes whose throughput is timed, comma-separated (default 64,256)")
    g.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks"))
    g.set_defaults(bench_run=run_generate)

    t = bench_sub.add_parser("train", help="training throughput (objects/s) of the regressor, VAR and denoiser",
                             description="Runs each model's real training loop for --warmup + --steps optimiser "
                             "steps and reports steps/s and items/s (objects for regressor/VAR, latents for the "
                             "denoiser) over the steps after the warm-up.")
    t.add_argument("--models", nargs="+", choices=("regressor", "var", "diffusion"),
                   default=["regressor", "var", "diffusion"])
    t.add_argument("--data", help="a built or packed dataset (default: a synthetic split at the canonical framing)")
    t.add_argument("--steps", type=int, default=200, help="timed steps per model")
    t.add_argument("--warmup", type=int, default=50, help="untimed steps first")
    t.add_argument("--batch-size", nargs=3, type=int, metavar=("REGRESSOR", "VAR", "DIFFUSION"),
                   help="batch sizes (default: those the shipped networks train with: 32 32 1024)")
    t.add_argument("--var", default="assets/models/diffusion/var", help="diffusion: the VAR whose latents to model")
    t.add_argument("--teacher", default="assets/models/regressor",
                   help="diffusion: the teacher regressor (with its latent, as the shipped denoiser); '' for none")
    t.add_argument("--latent-pool", type=int, default=16384,
                   help="diffusion: VAR encodings in the pool (splatgen train's default; its fill is not timed)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--compile", action="store_true", help="torch.compile each network (its compile is not timed)")
    t.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks"))
    t.set_defaults(bench_run=run_train)

    m = bench_sub.add_parser("mesh", help="seconds to export a mesh (splatgen mesh), by step, of a generated object "
                             "and the example splat file")
    m.add_argument("--faces", type=int, default=20000)
    m.add_argument("--resolution", type=int, default=128)
    m.add_argument("--views", type=int, default=32)
    m.add_argument("--formats", nargs="+", choices=("glb", "obj"), default=["glb", "obj"])
    m.add_argument("--repeat", type=int, default=3)
    m.add_argument("--threads", type=int, default=2, help="CPU threads (default 2, the reference machine)")
    m.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks"))
    m.set_defaults(bench_run=run_mesh)

    c = bench_sub.add_parser("camera", help="the photo-camera estimator's elevation error (median, mean, p90) on a "
                             "dataset split, prepared as photos are")
    c.add_argument("--data", type=Path, required=True, help="a built or packed dataset holding --split")
    c.add_argument("--split", default="test", help="the split to measure (default test)")
    c.add_argument("--also", nargs="*", default=["val"], metavar="SPLIT",
                   help="further splits of --data measured the same way (default val: the split the weights "
                        "were chosen on)")
    c.add_argument("--model", type=Path, default=None, help="estimator folder (default: the shipped assets/models/camera)")
    c.add_argument("--views-per-object", type=int, default=24)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks"))
    c.set_defaults(bench_run=run_camera)

    for module in plugin_benchmarks().values():
        module.add_parser(bench_sub).set_defaults(bench_run=module.run)
    return p


def run(args: argparse.Namespace) -> int:
    return args.bench_run(args)


def run_train(args: argparse.Namespace) -> int:
    from ..training.benchmark import DEFAULT_BATCH, run_train_benchmark

    batch = dict(zip(("regressor", "var", "diffusion"), args.batch_size)) if args.batch_size else DEFAULT_BATCH
    result = run_train_benchmark(args.models, data=args.data, steps=args.steps, warmup=args.warmup,
                                 batch_sizes=batch, device=args.device, var=args.var, teacher=args.teacher or None,
                                 extra={"latent_pool": args.latent_pool}, compile=args.compile)
    result["command"] = (f"splatgen bench train --models {' '.join(args.models)} --steps {args.steps} --warmup "
                         f"{args.warmup} --batch-size {' '.join(str(batch[m]) for m in ('regressor', 'var', 'diffusion'))}"
                         + (f" --data {args.data}" if args.data else "") + f" --latent-pool {args.latent_pool} --device {args.device}"
                         + (" --compile" if args.compile else ""))
    print("wrote", write_result("train", result, args.out_dir))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from ..generator.benchmark import run_generate_benchmark

    try:
        counts = [int(c) for c in args.counts.split(",") if c.strip()]
    except ValueError:
        raise SplatgenError(f"--counts takes whole numbers separated by commas, got {args.counts!r}") from None
    result = run_generate_benchmark(args.device, args.steps, args.guidance, args.repeat, args.threads,
                                    models=args.models, counts=counts)
    result["command"] = (f"splatgen bench generate --device {args.device} --steps {args.steps} --guidance "
                         f"{args.guidance} --repeat {args.repeat} --threads {args.threads} --counts {args.counts}"
                         + "".join(f" --model {m}" for m in args.models or []))
    path = write_result("generate", result, args.out_dir)
    print(f"wrote {path}")
    return 0


def run_mesh(args: argparse.Namespace) -> int:
    from ..mesh.benchmark import run_mesh_benchmark

    result = run_mesh_benchmark(args.faces, args.resolution, args.views, tuple(args.formats), args.repeat, args.threads)
    result["command"] = (f"splatgen bench mesh --faces {args.faces} --resolution {args.resolution} --views {args.views} "
                         f"--formats {' '.join(args.formats)} --repeat {args.repeat} --threads {args.threads}")
    print("wrote", write_result("mesh", result, args.out_dir))
    return 0


def run_render(args: argparse.Namespace) -> int:
    from ..render.benchmark import run_render_benchmark

    result = run_render_benchmark(args.backends, tuple(args.sizes), tuple(args.counts), args.repeat, args.example,
                                  args.generated)
    result["command"] = "splatgen bench render " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in (("backends", args.backends), ("sizes", args.sizes), ("counts", args.counts),
                     ("repeat", args.repeat)) if v) + ("" if args.example else " --no-example") + (
        "" if args.generated else " --no-generated")
    path = write_result("render", result, args.out_dir)
    print(f"wrote {path}")
    return 0


def run_parity(args: argparse.Namespace) -> int:
    from ..benchmarks import machine_info
    from ..render.parity import compare_backends

    rows = compare_backends(args.reference, args.other)
    result = {"machine": machine_info(), "command": f"splatgen bench parity --reference {args.reference} "
              f"--other {args.other}", "results": rows}
    path = write_result(f"parity-{args.reference}-{args.other}", result, args.out_dir)
    print(f"wrote {path}")
    return 0


def run_camera(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..benchmarks import machine_info
    from ..errors import ModelError
    from ..photo_camera import estimator_folder, load_estimator
    from ..training.camera import evaluate_estimator

    torch.set_num_threads(max(1, args.threads))
    folder = args.model or estimator_folder()
    net = load_estimator(folder)
    if net is None:
        raise ModelError(f"{folder}: no estimator shipped")
    result = {"machine": machine_info(), "model": str(folder), "data": str(args.data)}
    for split in [args.split, *[s for s in args.also if s != args.split]]:
        t0 = time.perf_counter()
        r = evaluate_estimator(net, args.data, split, args.views_per_object)
        r["seconds"] = round(time.perf_counter() - t0, 1)
        result[split] = r
        print(f"{split}: median {r['median_deg']:.2f}° mean {r['mean_deg']:.2f}° p90 {r['p90_deg']:.2f}° over "
              f"{r['views']} views of {r['objects']} objects (constant {r['constant_guess']['elevation_deg']:g}°: "
              f"median {r['constant_guess']['median_deg']:.2f}°)")
    result["command"] = (f"splatgen bench camera --data {args.data} --split {args.split} --also {' '.join(args.also)}"
                         f" --views-per-object {args.views_per_object} --threads {args.threads}"
                         + (f" --model {args.model}" if args.model else ""))
    print("wrote", write_result("camera-elevation", result, args.out_dir))
    return 0
