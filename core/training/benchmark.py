"""``splatgen bench train``: training throughput of each shipped network, through the real loops.

Each model runs its own training loop (:func:`.recon.train_reconstruction`,
:func:`.diffusion.train_diffusion`) for ``warmup + steps`` optimiser steps into a temporary run folder;
the rate is read from the loop's own log over the steps after the warm-up (which absorbs kernel
selection, the allocator's growth and, for diffusion, the latent pool's first fill), so the figure is
what a real run gets. Objects/s counts training items per second: objects for the regressor and the
VAR (each with ``1 + num_targets`` rendered views), latents for the denoiser.

Data: ``--data`` (a built or packed dataset) or, without it, a synthetic split of soft discs of
random colour at the canonical framing — the networks' cost does not depend on what the images show.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from .. import framing
from ..devices import pick_device
from ..benchmarks import machine_info
from ..cameras import orbit_viewmats
from .config import TrainConfig
from .viewbank import ViewBank, load_view_bank

#: The batch sizes the shipped networks train with (scripts/device/train_eval.sh).
DEFAULT_BATCH = {"regressor": 32, "var": 32, "diffusion": 1024}


def synthetic_bank(objects: int, views: int, device, seed: int = 0) -> ViewBank:
    """``objects`` soft discs (random colour, radius and centre) seen from ``views`` orbit cameras."""
    g = torch.Generator().manual_seed(seed)
    s = framing.IMAGE_SIZE
    yy, xx = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
    centre = s / 2 + (torch.rand(objects, views, 2, generator=g) - 0.5) * 0.1 * s
    radius = s * (0.2 + 0.15 * torch.rand(objects, views, 1, 1, generator=g))
    d = ((xx - centre[..., 0, None, None]) ** 2 + (yy - centre[..., 1, None, None]) ** 2).sqrt()
    alpha = ((radius - d) / 2).clamp(0, 1)
    colour = torch.rand(objects, 1, 1, 1, 3, generator=g) * (0.6 + 0.4 * torch.rand(objects, views, s, s, 1,
                                                                                      generator=g))
    images = torch.cat([colour, alpha[..., None]], -1).mul(255).round().to(torch.uint8)
    az = torch.linspace(0, 360, views + 1)[:-1].tolist()
    el = [framing.ELEVATION_RANGE_DEG[0] + (framing.ELEVATION_RANGE_DEG[1] - framing.ELEVATION_RANGE_DEG[0]) * (i % 3) / 2
          for i in range(views)]
    vm = orbit_viewmats(az, el).float()
    return ViewBank(images, vm.expand(objects, -1, -1, -1).contiguous(), device=device)


def train_config(model: str, out: Path, steps: int, log_every: int, batch_size: int, device: str,
                 var: str | None, teacher: str | None, extra: dict | None = None) -> TrainConfig:
    """The configuration of a benchmark run: ``splatgen train``'s defaults, no checkpoint until the end."""
    diffusion = {"var": var, "teacher": teacher, "teacher_latent": bool(teacher)} if model == "diffusion" else {}
    return TrainConfig(model=model, data=Path("unused"), out=out, max_steps=steps, log_every=log_every,
                       batch_size=batch_size, device=device, checkpoint_minutes=1e9, **diffusion, **(extra or {}))


def time_model(model: str, bank: ViewBank, *, steps: int, warmup: int, batch_size: int, device: str,
               var: str | None = None, teacher: str | None = None, extra: dict | None = None) -> dict:
    """Run ``model``'s training loop for ``warmup + steps`` steps; steps/s and items/s after the warm-up."""
    from .diffusion import train_diffusion
    from .recon import train_reconstruction

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / model
        # one log window for the warm-up, then windows of `steps` / 4 whose rates are averaged
        window = max(1, steps // 4)
        warmup = max(window, (warmup + window - 1) // window * window)
        config = train_config(model, out, warmup + steps, window, batch_size, device, var, teacher, extra)
        loop = train_diffusion if model == "diffusion" else train_reconstruction
        t0 = time.perf_counter()
        loop(config, lambda dev: bank if bank.images.device == torch.device(dev) else
             ViewBank(bank.images, bank.viewmats, device=dev))
        wall = time.perf_counter() - t0
        records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    timed = [r for r in records if "steps_per_s" in r and r["step"] > warmup]
    steps_per_s = sum(r["steps_per_s"] for r in timed) / len(timed)
    return {"model": model, "batch_size": batch_size, "warmup_steps": warmup, "timed_steps": steps,
            "steps_per_s": steps_per_s, "items_per_s": steps_per_s * batch_size, "wall_s": wall,
            "last_loss": timed[-1].get("loss")}


def run_train_benchmark(models, *, data: str | None, steps: int, warmup: int, batch_sizes: dict, device: str,
                        var: str, teacher: str | None, objects: int = 256, views: int = 24,
                        extra: dict | None = None, compile: bool = False) -> dict:
    """Time each of ``models``; ``extra`` holds diffusion-only settings, ``compile`` applies to all."""
    dev = str(pick_device(device))
    bank = load_view_bank(data, dev) if data else synthetic_bank(objects, views, dev)
    rows = []
    for model in models:
        rows.append(time_model(model, bank, steps=steps, warmup=warmup, batch_size=batch_sizes[model], device=dev,
                               var=var, teacher=teacher,
                               extra={**((extra or {}) if model == "diffusion" else {}), "compile": compile}))
        r = rows[-1]
        print(f"{model:10s} batch {r['batch_size']:5d}  {r['steps_per_s']:7.2f} steps/s  "
              f"{r['items_per_s']:9.1f} items/s", flush=True)
    return {"benchmark": "train", "machine": machine_info(),
            "data": data or f"synthetic: {objects} objects x {views} views", "rows": rows}
