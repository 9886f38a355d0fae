"""Training throughput under variants of the step (compile, batch size, pool reuse), one table.

    python3 scripts/experiments/train_speed.py --out DIR [--steps 120] [--only regressor,var,diffusion]

Each row runs ``splatgen bench train``'s real loop (:func:`splatgen.core.training.benchmark.time_model`)
on the synthetic split; rows and the machine go to ``DIR/train-speed.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from splatgen.core.benchmarks import machine_info
from splatgen.core.training.benchmark import synthetic_bank, time_model

VARIANTS = [  # (model, batch, extra settings)
    ("regressor", 32, {}),
    ("regressor", 32, {"compile": True}),
    ("regressor", 64, {"compile": True}),
    ("var", 32, {}),
    ("var", 32, {"compile": True}),
    ("var", 64, {"compile": True}),
    ("diffusion", 1024, {}),
    ("diffusion", 1024, {"compile": True}),
    ("diffusion", 1024, {"compile": True, "pool_reuse": 1_000_000}),  # no pool renewal: the denoiser alone
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--only", default="regressor,var,diffusion")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    bank = synthetic_bank(256, 24, "cuda")
    rows = []
    for model, batch, extra in VARIANTS:
        if model not in a.only.split(","):
            continue
        t0 = time.perf_counter()
        r = time_model(model, bank, steps=a.steps, warmup=a.warmup, batch_size=batch, device="cuda",
                       var="assets/models/diffusion/var", teacher="assets/models/regressor",
                       extra={"latent_pool": 16384, **extra} if model == "diffusion" else extra)
        r.update(extra=extra, total_s=time.perf_counter() - t0)
        rows.append(r)
        print(f"{model:10s} b{batch:5d} {json.dumps(extra):45s} {r['items_per_s']:9.1f} items/s "
              f"({r['total_s']:.0f} s incl. warm-up)", flush=True)
        (a.out / "train-speed.json").write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=1))
    print("\n| model | batch | variant | items/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch_size']} | {json.dumps(r['extra'])} | {r['items_per_s']:.0f} |")


if __name__ == "__main__":
    main()
