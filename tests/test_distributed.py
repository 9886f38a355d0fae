"""Training under ``torchrun`` with DistributedDataParallel, on the CPU (two gloo ranks).

The multi-GPU path (NCCL, one GPU per rank) shares every line of this but the backend and the
device: the ranks join the group in ``setup_run``, the model is wrapped by ``wrap_ddp``, each rank
holds its shard of the split, the ranks agree on the clock, rank 0 alone writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from splatgen.core.training.viewbank import load_view_bank

FURNITURE = Path("/usr/share/sweethome3d/furniture")
REPO = Path(__file__).resolve().parents[1]
SHIPPED_REGRESSOR = REPO / "assets" / "models" / "regressor"

pytestmark = pytest.mark.skipif(not FURNITURE.is_dir(), reason="sweethome3d-furniture is not installed")

#: One optimiser-free backward pass of the real reconstruction loss over items ``rank::world`` of a
#: fixed 4-item batch, through ``setup_run`` and ``wrap_ddp``; rank 0 saves the (all-reduced) gradients.
GRADIENT_SCRIPT = textwrap.dedent("""
    import sys, torch
    from safetensors.torch import save_file
    from splatgen.core.models.splatter_net import SplatterNet
    from splatgen.core.models.weights import load_network
    from splatgen.core.render import choose_backend
    from splatgen.core.training.config import TrainConfig
    from splatgen.core.training.recon import reconstruction_loss
    from splatgen.core.training.trainer import average_gradients, end_run, setup_run, wrap_ddp
    from splatgen.core.training.viewbank import load_view_bank

    data, regressor, out = sys.argv[1:4]
    torch.set_num_threads(1)
    ctx = setup_run("cpu")
    bank = load_view_bank(data, ctx.device)          # every rank the whole split: the batch is fixed
    objects = torch.arange(4) % bank.num_objects
    batch = bank.batch(objects, torch.zeros(4, dtype=torch.long), torch.ones(4, 1, dtype=torch.long))
    mine = slice(ctx.rank, None, ctx.world_size)
    from splatgen.core.training.viewbank import ViewBatch
    part = ViewBatch(*(getattr(batch, f)[mine] for f in ViewBatch.__dataclass_fields__))
    net = load_network(SplatterNet, regressor, "regressor").float().train().requires_grad_(True)
    config = TrainConfig(model="regressor", data=data, out=out, device="cpu")
    backend = choose_backend(ctx.device, differentiable=True)
    # 1. wrapped in DDP (the regressor, VAR and denoiser loops); 2. plain, then average_gradients (mv stages)
    for how, model in (("ddp", wrap_ddp(net, ctx)), ("average", net)):
        net.zero_grad(set_to_none=True)
        loss, _ = reconstruction_loss(model(part.input), part, config, backend)
        loss.backward()
        if how == "average":
            average_gradients(list(net.parameters()), ctx)
        if ctx.rank == 0:
            save_file({n: p.grad.contiguous() for n, p in net.named_parameters() if p.grad is not None},
                      f"{out}/grads-{how}-world{ctx.world_size}.safetensors")
    end_run(ctx)
""")


@pytest.fixture(scope="module")
def dataset(tiny_furniture_dataset) -> Path:
    """4 real objects × 4 views at the models' 128² (conftest's, shared by the session)."""
    return tiny_furniture_dataset


def torchrun(nproc: int, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node nproc ARGS`` on the CPU (one thread a rank)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def test_two_ranks_gradients_equal_one_process_on_the_whole_batch(dataset, tmp_path):
    from safetensors.torch import load_file

    script = tmp_path / "grads.py"
    script.write_text(GRADIENT_SCRIPT)
    for nproc in (1, 2):
        r = torchrun(nproc, script, dataset, SHIPPED_REGRESSOR, tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
    one = load_file(tmp_path / "grads-ddp-world1.safetensors")
    flat1 = torch.cat([one[k].flatten() for k in one])
    assert len(one) > 50 and flat1.norm() > 0
    for how in ("ddp", "average"):
        # the ranks' gradients of their half-batch means, averaged: the gradient of the whole batch's mean
        two = load_file(tmp_path / f"grads-{how}-world2.safetensors")
        assert two.keys() == one.keys(), how
        flat2 = torch.cat([two[k].flatten() for k in one])
        assert torch.allclose(flat2, flat1, rtol=1e-4, atol=1e-6 * float(flat1.abs().max())), \
            f"{how}: relative difference {float((flat2 - flat1).norm() / flat1.norm()):.2e}"


def test_ranks_hold_disjoint_shards_that_cover_the_split(dataset):
    whole = load_view_bank(dataset)
    shards = [load_view_bank(dataset, rank=r, world_size=2) for r in range(2)]
    assert sorted(n for s in shards for n in s.names) == sorted(whole.names)
    assert not set(shards[0].names) & set(shards[1].names)
    i = whole.names.index(shards[1].names[0])
    assert torch.equal(shards[1].images[0], whole.images[i])


def test_torchrun_training_stops_together_and_rank_zero_alone_writes(dataset, tmp_path):
    """Two ranks train the regressor on a time budget: both stop at one step (else DDP would hang
    and the run time out), one log without duplicate steps, one checkpoint and export."""
    out = tmp_path / "run"
    r = torchrun(2, "-m", "splatgen.core.cli", "train", "regressor", "--data", dataset, "--device", "cpu",
                 "--init-from", SHIPPED_REGRESSOR, "--batch-size", 1, "--num-targets", 1, "--num-context", 1,
                 "--log-every", 5, "--max-minutes", 0.02, "--max-steps", 10 ** 6, "--out", out,
                 "--export", out / "export")
    assert r.returncode == 0, r.stderr[-3000:]
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps and len(steps) == len(set(steps)), steps
    assert "x2" in r.stdout, r.stdout[-2000:]                      # the run says it has two ranks
    assert r.stdout.count("done: step") == 2                       # each rank ended, at the same step
    done = {line.split("(")[0] for line in r.stdout.splitlines() if "done: step" in line}
    assert len(done) == 1, done
    assert (out / "checkpoint").is_dir() and (out / "export" / "config.json").is_file()


def test_torchrun_trains_a_multi_view_stage_on_two_ranks(dataset, tmp_path):
    out = tmp_path / "mvae"
    r = torchrun(2, "-m", "splatgen.core.cli", "train", "mv-autoencoder", "--data", dataset, "--device", "cpu",
                 "--batch-size", 1, "--num-views", 2, "--log-every", 1, "--max-steps", 3, "--out", out,
                 "--export", out / "export")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "x2" in r.stdout and r.stdout.count("done: step 3 ") == 2, r.stdout[-2000:]
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and 3 in steps
    assert (out / "export" / "config.json").is_file()


@pytest.mark.parametrize("model", ["camera", "perceptual"])
def test_single_process_trainers_refuse_torchrun(model, dataset, tmp_path, monkeypatch, capsys):
    from splatgen.core.cli import main
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = main(["train", model, "--data", str(dataset), "--out", str(tmp_path / "run")])
    assert code != 0 and "start it without torchrun" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
