"""``splatgen train one-step``: distil a teacher's quadruples into the one-step student (seed 002, DD3G).

Data: a collection of ``splatgen distil collect`` (``--data``: {image, noise, guidance, cameras C,
the teacher's views OI}; :mod:`splatgen.core.distil.collect`) and the image set it names. No 3D and
no dataset views: only RGBA images and what the teacher made of them.

Each step draws ``batch_size`` items; the student (:class:`~splatgen.core.models.one_step.OneStepNet`,
a new run starts from ``--init-from REGRESSOR``, so it starts as the regressor) turns the item's
image, noise and guidance into Gaussians, which are rendered at ``num_targets`` of the teacher's
cameras and at the input camera. Loss (:func:`~.recon.reconstruction_loss`: MSE + SSIM + alpha L1):

* **explicit supervision**: the renders at the teacher's cameras against the teacher's views of the
  same noise (view 0 of a collection is the input camera, so these are views 1…N−1);
* **implicit verification** (DD3G names it without defining it; chosen here): the render at the
  input camera against the input image itself, not the teacher's render of it. The teacher is
  only as good as its input view, and the photo is the one view of the object nobody invented: it
  keeps the student's seen side, and its colours, at least as faithful as the teacher's.

AdamW, warm-up then constant or cosine (``--lr-final``) learning rate, EMA of the weights, checkpoints
and ``--max-minutes`` as every loop (:mod:`.trainer`). ``--export`` writes a model folder of kind
``one-step`` naming the teacher the collection came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch

from ..cameras import canonical_intrinsics
from ..distil.collect import load_quads
from ..distil.images import ImageSet
from ..errors import DatasetError, SplatgenError
from ..generator.model_folder import MANIFEST
from ..models.one_step import OneStepNet
from ..models.splatter_net import SplatterNet
from ..models.weights import load_network
from ..render import choose_backend
from .checkpoint import resumed_run_args
from .config import TrainConfig
from .recon import export_model, reconstruction_loss
from .trainer import (EMA, RunLog, RunningMetrics, after_step, bf16_autocast, end_run, make_clock, make_optimizer,
                      optimise, resume_or_init, save_checkpoint, scheduled_lr, setup_run, unwrap)
from .viewbank import ViewBatch


class QuadBank:
    """A collection in memory on the training device: the items' inputs (from the image set), noises,
    guidances, the teacher's views ``(M, N, S, S, 4)`` uint8 and their cameras ``(M, N, 4, 4)``."""

    def __init__(self, folder: Path, device):
        try:
            self.index = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{folder}: not a collection of `splatgen distil collect` ({exc})") from None
        q = load_quads(folder, "cpu")  # checks the index's format and every shard
        try:
            set_folder = Path(self.index["image_set"]["folder"])
        except (KeyError, TypeError):
            raise DatasetError(f"{folder}: its index names no image set (image_set.folder)") from None
        sha = hashlib.sha256((set_folder / "index.json").read_bytes()).hexdigest() \
            if (set_folder / "index.json").is_file() else None
        if sha != self.index.get("image_set_sha256"):
            raise DatasetError(f"{folder}: its image set {set_folder} is missing or not the one it was collected "
                               "from (index.json differs): collect again over the set at hand")
        images = ImageSet(set_folder, split="distil")
        row_of = {int(r["id"]): k for k, r in enumerate(images.rows)}
        missing = sorted({int(i) for i in q["image"].tolist()} - set(row_of))
        if missing:
            raise DatasetError(f"{folder}: items name images {missing[:5]} that its image set's distil split lacks")
        self.inputs = images.inputs([row_of[int(i)] for i in q["image"].tolist()]).to(device)   # (M, 4, S, S)
        # the noise drawn again from each item's seed, as the generator draws it (the shard keeps fp16)
        shape = self.noise_shape
        self.noise = torch.cat([torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)))
                                for seed in q["seed"].tolist()]).to(device)                 # (M, ...)
        self.guidance = q["guidance"].float().to(device)                                       # (M,)
        self.views = q["views"].to(device)                                                     # (M, N, S, S, 4)
        self.viewmats = q["viewmats"].float().to(device)                                       # (M, N, 4, 4)
        self.num_items, self.num_views = self.views.shape[0], self.views.shape[1]
        if self.num_views < 2:
            raise DatasetError(f"{folder}: items need the input camera and at least one other view")
        self.size = int(self.views.shape[2])
        self.K = canonical_intrinsics(self.size).to(device)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """The teacher's ``noise(seed)`` shape, ``(1, …)``, as the generator must draw it."""
        shape = self.index.get("noise_shape")
        if not shape:
            raise DatasetError("the collection's index does not say its teacher's noise shape: collect it again")
        return tuple(int(d) for d in shape)

    def sample(self, batch_size: int, num_targets: int, generator: torch.Generator):
        """(item indices ``(B,)``, a :class:`ViewBatch` whose view 0 is the input image itself and views
        1… are ``num_targets`` of the teacher's other views, drawn without repeats)."""
        dev = self.views.device
        idx = torch.randint(0, self.num_items, (batch_size,), generator=generator, device=dev)
        k = min(num_targets, self.num_views - 1)
        others = torch.rand((batch_size, self.num_views - 1), generator=generator, device=dev).argsort(1)[:, :k] + 1
        views = self.views[idx[:, None], others].float() / 255.0                               # (B, k, S, S, 4)
        inp = self.inputs[idx]                                                                  # (B, 4, S, S)
        rgb = torch.cat([inp[:, None, :3].permute(0, 1, 3, 4, 2), views[..., :3]], 1)
        alpha = torch.cat([inp[:, None, 3:].permute(0, 1, 3, 4, 2), views[..., 3:]], 1)
        eye = torch.eye(4, device=dev).expand(batch_size, 1, 4, 4)
        viewmats = torch.cat([eye, self.viewmats[idx[:, None], others]], 1)
        Ks = self.K.expand(batch_size, k + 1, 3, 3)
        return idx, ViewBatch(input=inp, rgb=rgb, alpha=alpha, viewmats=viewmats, Ks=Ks, objects=idx)


def _middle(values: list[float]) -> float:
    """The middle of the collection's guidance values (the student's default guidance)."""
    v = sorted(float(x) for x in values)
    return v[len(v) // 2]


def build_student(config: TrainConfig, out_dir: Path, bank: QuadBank, device) -> OneStepNet:
    """The checkpoint's student (``--resume``), else a new one made from the ``--init-from`` regressor."""
    ckpt = out_dir / "checkpoint" / "model" / "config.json"
    if config.resume and (out_dir / "checkpoint").exists():
        return OneStepNet.from_config(json.loads(ckpt.read_text())).to(device)
    if not config.init_from:
        raise SplatgenError("a new one-step run starts from the regressor: pass --init-from REGRESSOR_FOLDER "
                            "(e.g. assets/models/regressor)")
    init = Path(config.init_from)
    if (init / "config.json").is_file() and json.loads((init / "config.json").read_text()).get("_class_name") == \
            "OneStepNet":
        # load_network hands back a frozen network (for inference): this one trains
        return load_network(OneStepNet, init, "one-step student", error=SplatgenError).to(device).requires_grad_(True)
    regressor = load_network(SplatterNet, init, "regressor", error=SplatgenError)
    if regressor.config.image_size != bank.size:
        raise SplatgenError(f"{init}: a regressor of {regressor.config.image_size}² images; the collection's are "
                            f"{bank.size}²")
    index = bank.index
    return OneStepNet.from_regressor(regressor, bank.noise_shape, teacher_kind=str(index.get("teacher_kind", "")),
                                     teacher_sha256=str(index.get("teacher_sha256", "")),
                                     teacher_steps=int(index.get("steps", 20)),
                                     teacher_scheduler=str(index.get("scheduler", "ddim")),
                                     default_guidance=_middle(index.get("guidances") or [2.0])).to(device)


def write_model_folder(ema_model: OneStepNet, folder: Path, teacher: Path | None) -> None:
    """A model folder: ``student/`` (fp16) and a manifest naming ``teacher`` relative to ``folder``."""
    export_model(ema_model, folder / "student")
    parts = {"student": "student"}
    if teacher is not None and teacher.is_dir():
        parts["teacher"] = os.path.relpath(teacher.resolve(), folder.resolve())
    manifest = {"format": 1, "kind": "one-step", "name": folder.name, "components": parts}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def train_one_step(config: TrainConfig) -> dict:
    """The loop behind ``splatgen train one-step`` (one process; ``--data`` is the collection)."""
    ctx = setup_run(config.device)
    if ctx.distributed:
        raise SplatgenError("`train one-step` runs in one process: start it without torchrun")
    torch.manual_seed(config.seed)
    out_dir = Path(config.out)
    saved = resumed_run_args(out_dir, config.resume)
    if saved is not None and Path(str(saved.get("data"))).resolve() != Path(config.data).resolve():
        raise SplatgenError(f"{out_dir}: this run distils {saved.get('data')}; resume it with that --data, or start "
                            "a new run folder (--init-from its exported model)")
    t_load = time.perf_counter()
    bank = QuadBank(Path(config.data), ctx.device)
    load_s = time.perf_counter() - t_load
    model = build_student(config, out_dir, bank, ctx.device)
    if tuple(model.config.noise_shape) != bank.noise_shape:
        raise SplatgenError(f"the student takes noise {tuple(model.config.noise_shape)}, the collection's teacher "
                            f"draws {bank.noise_shape}: distil it from a collection of its own teacher")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    optimizer = make_optimizer(list(model.parameters()), config.lr, ctx.device)
    ema = EMA(model, config.ema_decay)
    generator = torch.Generator(device=ctx.device).manual_seed(config.seed * 1000)
    # a new run's weights are the student made above (from the regressor): nothing more to load
    step, warmup_start = resume_or_init(out_dir, config.resume, None, model, ema, optimizer, generator, None)
    forward = torch.compile(model, dynamic=False) if config.compile else model
    backend = choose_backend(ctx.device, differentiable=True)
    log = RunLog(out_dir, True)
    clock = make_clock(config, ctx)
    n = sum(p.numel() for p in model.parameters())
    print(f"training one-step: {n / 1e6:.2f}M parameters, {bank.num_items} items x {bank.num_views} teacher views "
          f"({load_s:.1f} s to load), teacher {bank.index.get('teacher', {}).get('name')}, device {ctx.device}, "
          f"from step {step}", flush=True)
    amp = bf16_autocast(ctx.device)
    steps_this_run, running = 0, RunningMetrics()

    def checkpoint() -> None:
        save_checkpoint(out_dir / "checkpoint", model, ema.model, optimizer, step, generator,
                        {"args": config.to_json(), "warmup_start": warmup_start})

    while not clock.done(step, steps_this_run):
        scheduled_lr(optimizer, config.lr, step, warmup_start, config.warmup, clock, config.lr_final)
        idx, batch = bank.sample(config.batch_size, config.num_targets, generator)
        with amp:
            out = forward(batch.input, bank.noise[idx], bank.guidance[idx])
        loss, metrics = reconstruction_loss(out, batch, config, backend)
        grad_norm = optimise(loss, model, optimizer, ema, step, config.grad_clip)
        step += 1
        steps_this_run += 1
        after_step(step, {**metrics, "grad_norm": grad_norm}, running, log, clock, optimizer, config.log_every,
                   True, checkpoint)
    running.check_finite(step)
    ema.model.register_to_config(trained_steps=step)
    unwrap(model).register_to_config(trained_steps=step)
    checkpoint()
    if config.export:
        teacher = bank.index.get("teacher", {}).get("folder")
        write_model_folder(ema.model, Path(config.export), Path(teacher) if teacher else None)
    end_run(ctx)
    return {"step": step, "steps_this_run": steps_this_run, "minutes": clock.minutes, "step_minutes": clock.step_minutes}


__all__ = ["train_one_step", "QuadBank", "build_student", "write_model_folder"]
