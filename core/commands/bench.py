"""``splatgen bench``: speed figures, printed and written as JSON under ``benchmarks/``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..benchmarks import write_result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure speed; results go to benchmarks/*.json",
                       description="Benchmarks. Results are printed and written as JSON with the machine and date.")
    bench_sub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)

    r = bench_sub.add_parser("render", help="ms/frame and FPS per renderer backend, size and splat count")
    r.add_argument("--backends", nargs="+", choices=("torch", "gl", "gsplat"),
                   help="default: every backend this machine has")
    r.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    r.add_argument("--counts", nargs="+", type=int, default=[16384, 65536, 262144])
    r.add_argument("--repeat", type=int, default=10)
    r.add_argument("--out-dir", type=Path, default=Path("benchmarks"))
    r.set_defaults(func=run_render)

    q = bench_sub.add_parser("parity", help="PSNR between two renderer backends on random scenes")
    q.add_argument("--reference", choices=("torch", "gl", "gsplat"), default="torch")
    q.add_argument("--other", choices=("torch", "gl", "gsplat"), default="gsplat")
    q.add_argument("--out-dir", type=Path, default=Path("benchmarks"))
    q.set_defaults(func=run_parity)

    g = bench_sub.add_parser("generate", help="model load, regressor pass, 50-step diffusion samples")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--guidance", type=float, default=2.0)
    g.add_argument("--repeat", type=int, default=3)
    g.add_argument("--threads", type=int, default=2, help="CPU threads (default 2, the reference machine)")
    g.add_argument("--no-compile", action="store_true", help="CUDA: skip the torch.compile variant")
    g.add_argument("--out-dir", type=Path, default=Path("benchmarks"))
    g.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from ..generator.benchmark import run_generate_benchmark

    result = run_generate_benchmark(args.device, args.steps, args.guidance, args.repeat, args.threads,
                                    not args.no_compile)
    result["command"] = (f"splatgen bench generate --device {args.device} --steps {args.steps} --guidance "
                         f"{args.guidance} --repeat {args.repeat} --threads {args.threads}"
                         + (" --no-compile" if args.no_compile else ""))
    path = write_result("generate", result, args.out_dir)
    print(f"wrote {path}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    from ..render.benchmark import run_render_benchmark

    result = run_render_benchmark(args.backends, tuple(args.sizes), tuple(args.counts), args.repeat)
    result["command"] = "splatgen bench render " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in (("backends", args.backends), ("sizes", args.sizes), ("counts", args.counts),
                     ("repeat", args.repeat)) if v)
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
