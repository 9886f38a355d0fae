"""Where a training step's time goes: torch.profiler over the regressor's / VAR's step, as the loop runs it.

    python3 scripts/experiments/train_profile.py [--model regressor|var] [--batch-size 32] [--steps 20]

Builds the model, optimiser, EMA and a synthetic view bank as ``splatgen train`` does, runs warm-up
steps, then profiles ``--steps`` steps and prints the top CUDA kernels and CPU ops, the GPU's busy
fraction of the wall time, and the step time split into forward, loss (render included), backward
and optimiser (each synchronised, so the split itself adds syncs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from splatgen.core.models.splatter_net import SplatterNet
from splatgen.core.training.benchmark import synthetic_bank
from splatgen.core.training.config import TrainConfig
from splatgen.core.training.recon import encoder_views, reconstruction_loss
from splatgen.core.training.trainer import EMA, make_optimizer, optimise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="regressor", choices=("regressor", "var"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = True
    cfg = TrainConfig(model=a.model, data=Path("unused"), out=Path("/tmp/unused"), batch_size=a.batch_size)
    variational = a.model == "var"
    model = SplatterNet(variational=variational).to(dev)
    opt = make_optimizer(model.parameters(), cfg.lr, dev)
    ema = EMA(model, cfg.ema_decay)
    bank = synthetic_bank(128, 24, dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    amp = torch.autocast("cuda", dtype=torch.bfloat16)

    def step(i: int, split: dict | None = None):
        t = [time.perf_counter()]

        def mark():
            if split is not None:
                torch.cuda.synchronize()
                t.append(time.perf_counter())

        batch = bank.sample(cfg.batch_size, cfg.num_targets, gen, cfg.mirror)
        mark()
        with amp:
            out = model(batch.input, **encoder_views(batch, cfg.num_context)) if variational else model(batch.input)
        mark()
        loss, _ = reconstruction_loss(out, batch, cfg, "gsplat")
        mark()
        optimise(loss, model, opt, ema, i, cfg.grad_clip)
        mark()
        if split is not None:
            for k, (t0, t1) in zip(("sample", "forward", "loss+render", "backward+optimiser+ema"), zip(t, t[1:])):
                split[k] = split.get(k, 0.0) + (t1 - t0) * 1e3

    for i in range(15):
        step(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(i)
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / a.steps * 1e3
    split: dict = {}
    for i in range(a.steps):
        step(i, split)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(a.steps):
            step(i)
        torch.cuda.synchronize()
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    print(f"{a.model} batch {a.batch_size}: {wall:.1f} ms/step ({a.batch_size / wall * 1e3:.0f} objects/s); "
          f"GPU kernels {gpu_us / a.steps / 1e3:.1f} ms/step")
    print("synchronised split (ms/step):", {k: round(v / a.steps, 2) for k, v in split.items()})
    table = events.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60)
    print(table)
    cpu = events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60)
    print(cpu)
    if a.out:
        a.out.write_text(table + "\n\n" + cpu)


if __name__ == "__main__":
    main()
