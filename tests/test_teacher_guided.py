"""The teacher-guided generator (seed 000): its denoiser, training loop and generator, tiny, on the CPU.

A tiny random SplatterNet stands in for the teacher regressor and a tiny random denoiser for the
trained one (both written to folders here and read back through the real loaders); views come from
the benchmarks' synthetic bank (soft discs seen from orbit cameras).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from splatgen.core.errors import SettingsError, SplatgenError
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.generator.registry import GENERATORS
from splatgen.core.generator.teacher_guided import sample_splatter
from splatgen.core.metrics import psnr
from splatgen.core.models.splatter_denoiser import SplatterDenoiser
from splatgen.core.models.splatter_net import SplatterNet
from splatgen.core.models.weights import load_network
from splatgen.core.render import render
from splatgen.core.training.benchmark import synthetic_bank
from splatgen.core.training.config import TrainConfig
from splatgen.core.training.teacher_guided import (PosteriorSource, TeacherSource, clean_source, measure_stats,
                                                   train_teacher_guided, training_loss)

TEACHER = dict(channels=(8, 16, 32), attention_head_dim=32, gaussians_per_pixel=1)
VAR = dict(channels=(8, 16, 32), attention_head_dim=32, gaussians_per_pixel=1, variational=True,
           view_encoder_channels=(8, 16, 32))
DENOISER = dict(gaussians_per_pixel=1, block_out_channels=(8, 16, 16), norm_num_groups=8, attention_head_dim=8)


@pytest.fixture(scope="module")
def bank():
    torch.set_num_threads(2)
    return synthetic_bank(3, 6, "cpu")


def saved_net(tmp_path_factory, name: str, seed: int, **kw) -> Path:
    """A tiny random SplatterNet written to a folder of its own."""
    torch.manual_seed(seed)
    folder = tmp_path_factory.mktemp("tg") / name
    SplatterNet(**kw).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    return saved_net(tmp_path_factory, "regressor", 0, **TEACHER)


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory) -> Path:
    return saved_net(tmp_path_factory, "var", 2, **VAR)


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    return load_network(SplatterNet, teacher_dir)


def tiny_denoiser(seed: int = 1, **kw) -> SplatterDenoiser:
    torch.manual_seed(seed)
    return SplatterDenoiser(**{**DENOISER, **kw}).eval()


def config(tmp: Path, teacher_dir: Path, **kw) -> TrainConfig:
    return TrainConfig(**{**dict(model="teacher-guided", data=Path("unused"), out=tmp, device="cpu", batch_size=1,
                                 num_targets=1, log_every=1, checkpoint_minutes=1e9, teacher=str(teacher_dir),
                                 splat_channels=[8, 16, 16], warmup=1, lr=1e-3), **kw})


def test_training_noises_the_teachers_output(bank, teacher, teacher_dir, tmp_path):
    den = tiny_denoiser(param_shift=(0.1,) * 15, param_scale=(2.0,) * 15)
    batch = bank.sample(2, 1, torch.Generator().manual_seed(0))
    seen = []
    with torch.no_grad():
        expected = teacher(batch.input).raw

    def forward(x_t, t, cond):  # records what the denoiser is given; answers with the teacher (renders stay cheap)
        seen.append(x_t)
        return den.normalise(expected)

    cfg = config(tmp_path, teacher_dir)
    with torch.no_grad():
        training_loss(forward, den, TeacherSource(teacher), batch, cfg, torch.Generator().manual_seed(1), "torch",
                      timesteps=torch.zeros(2, dtype=torch.long))
        training_loss(forward, den, TeacherSource(teacher), batch, cfg, torch.Generator().manual_seed(1), "torch",
                      timesteps=torch.full((2,), 999))
    early, late = (den.denormalise(x) for x in seen)
    scale = expected.std()
    assert (early - expected).abs().max() < 0.05 * scale * 2  # √(1-ᾱ_0)·ε/param_scale: a trace of noise
    assert (early - expected).abs().max() > 0  # noised, not copied
    # at the end of the schedule the input is noise: no longer the teacher's
    corr = torch.corrcoef(torch.stack([(late - 0.1).flatten(), (expected - 0.1).flatten()]))[0, 1]
    assert abs(float(corr)) < 0.1
    # and the x̂0 preconditioning: at t = 0 the prediction is the input, up to √(1-ᾱ_0)·F
    with torch.no_grad():
        pred = den(seen[0], torch.zeros(2, dtype=torch.long), den.condition(batch.input))
    assert (den.denormalise(pred) - expected).abs().max() < 0.1 * scale


def measured(bank, teacher, tmp_path, teacher_dir) -> dict:
    """Normalisation measured on the tiny teacher, as a new run does (random outputs stay renderable)."""
    return measure_stats(teacher, bank, config(tmp_path, teacher_dir, batch_size=2), "cpu")


def spread(stats: dict) -> dict:
    """Opacity and colour channels spread widely: a random network's samples then differ on the input view."""
    return {**stats, "param_scale": stats["param_scale"][:11] + [0.5] * 4}


def test_gradient_reaches_the_denoiser_and_not_the_teacher(bank, teacher, teacher_dir, tmp_path):
    den = tiny_denoiser(**measured(bank, teacher, tmp_path, teacher_dir)).train()
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    batch = bank.sample(2, 2, torch.Generator().manual_seed(3))
    loss, metrics = training_loss(den, den, TeacherSource(teacher), batch, config(tmp_path, teacher_dir), torch.Generator().manual_seed(4),
                                  "torch", timesteps=torch.tensor([300, 800]))
    assert torch.isfinite(loss) and 0 < float(metrics["psnr_novel"]) < 60
    loss.backward()
    grads = {n: p.grad for n, p in den.named_parameters()}
    for name in ("unet.conv_in.weight", "unet.conv_out.weight"):
        assert grads[name] is not None and float(grads[name].abs().max()) > 0, name
    assert sum(g is not None and float(g.abs().max()) > 0 for g in grads.values()) > 0.8 * len(grads)
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    torch.optim.SGD(den.parameters(), lr=0.1).step()
    assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())


@pytest.fixture(scope="module")
def runs(bank, teacher_dir, tmp_path_factory):
    """Two straight steps through the loop (exported) and 1 + 1 resumed steps through ``splatgen train``
    (the dataset loader answering with the synthetic bank): {name: run folder}."""
    from splatgen.core.cli import main
    from splatgen.core.training import viewbank

    root = tmp_path_factory.mktemp("tg-runs")
    train_teacher_guided(config(root / "straight", teacher_dir, max_steps=2, export=str(root / "model")),
                         lambda device, rank=0, world_size=1: bank)
    cli = ["train", "teacher-guided", "--data", str(root / "unused"), "--out", str(root / "resumed"), "--device", "cpu",
           "--batch-size", "1", "--num-targets", "1", "--log-every", "1", "--checkpoint-minutes", "1e9", "--teacher",
           str(teacher_dir), "--splat-channels", "8", "16", "16", "--warmup", "1", "--lr", "1e-3"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(viewbank, "load_view_bank", lambda path, device="cpu", **kw: bank)
        assert main([*cli, "--max-steps", "1"]) == 0
        assert main([*cli, "--max-steps", "2", "--resume"]) == 0
    return {"straight": root / "straight", "resumed": root / "resumed", "model": root / "model"}


def test_resume_one_plus_one_through_the_cli_equals_two_straight(runs):
    for part in ("model/diffusion_pytorch_model.safetensors", "ema/diffusion_pytorch_model.safetensors",
                 "optimizer.safetensors", "rng.safetensors"):
        a, b = (load_file(str(runs[k] / "checkpoint" / part)) for k in ("straight", "resumed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    logs = [json.loads((runs[k] / "log.jsonl").read_text().splitlines()[-1]) for k in ("straight", "resumed")]
    assert logs[0]["step"] == logs[1]["step"] == 2 and logs[0]["loss"] == logs[1]["loss"]
    cfg = json.loads((runs["straight"] / "checkpoint" / "model" / "config.json").read_text())
    assert cfg["trained_steps"] == 2 and cfg["param_scale"] != [1.0] * 15  # measured on the teacher
    assert len(cfg["teacher_sha256"]) == 64


def test_export_loads_through_the_model_folder_with_identical_outputs(runs, bank, teacher_dir):
    manifest = json.loads((runs["model"] / "splatgen.json").read_text())
    assert manifest["kind"] == "teacher-guided" and not Path(manifest["components"]["teacher"]).is_absolute()
    assert (runs["model"] / manifest["components"]["teacher"]).resolve() == teacher_dir.resolve()
    assert not list(runs["model"].glob("**/*.bin")) and not (runs["model"] / "regressor").exists()
    ema = load_network(SplatterDenoiser, runs["straight"] / "checkpoint" / "ema").half().float()
    gen = load_generator(runs["model"], device="cpu")
    assert type(gen).kind == "teacher-guided" and gen.denoiser.config.trained_steps == 2
    image = bank.sample(1, 1, torch.Generator().manual_seed(5)).input
    noise = gen.noise(3)
    expected = sample_splatter(ema, image, noise, steps=2)
    got = sample_splatter(gen.denoiser, image, noise, steps=2)
    assert torch.equal(got, expected)
    sample = gen.generate(image[0], GenerationSettings(seed=3, steps=2))[0]
    from splatgen.core.generator.base import to_object_frame
    from splatgen.core.models.splatter_image import raw_to_gaussians

    placed = to_object_frame(raw_to_gaussians(expected, 1)[0], sample.settings.elevation)  # at the photo's camera
    assert torch.equal(sample.gaussians.means, placed.means)


def write_model_folder(root: Path, teacher_dir: Path, stats: dict, defaults: dict | None = None) -> Path:
    tiny_denoiser(seed=6, **stats).save_pretrained(root / "denoiser", safe_serialization=True)
    manifest = {"format": 1, "kind": "teacher-guided", "name": "tg-test",
                "components": {"denoiser": "denoiser", "teacher": str(teacher_dir.resolve())},
                "defaults": defaults or {"steps": 3}}
    (root / "splatgen.json").write_text(json.dumps(manifest))
    return root


def test_generator_samples_through_the_api_seeds_reproduce_and_differ(bank, teacher, teacher_dir, tmp_path):
    assert GENERATORS["teacher-guided"].kind == "teacher-guided"
    stats = measured(bank, teacher, tmp_path, teacher_dir)
    gen = load_generator(write_model_folder(tmp_path / "m", teacher_dir, stats), device="cpu")
    assert gen.stochastic and gen.starts_from_teacher and gen.defaults.steps == 3
    image = bank.sample(1, 1, torch.Generator().manual_seed(0)).input[0]
    calls, streamed = [], []
    a = gen.generate(image, GenerationSettings(seed=7, num_samples=2), progress=lambda d, n: calls.append((d, n)),
                     on_sample=lambda s, i: streamed.append(i))
    assert len(a) == 2 and streamed == [0, 1] and calls[-1] == (6, 6) and [s.seed for s in a] == [7, 8]
    again = gen.generate(image, GenerationSettings(seed=7))[0]
    assert torch.equal(again.gaussians.means, a[0].gaussians.means)
    assert (a[0].gaussians.means - a[1].gaussians.means).abs().max() > 1e-3
    assert a[0].gaussians.shape == (128 * 128,) and bool(torch.isfinite(a[0].gaussians.means).all())
    guided = gen.generate(image, GenerationSettings(seed=7, guidance=3.0))[0]
    assert (guided.gaussians.means - a[0].gaussians.means).abs().max() > 1e-4  # the unconditional branch counts
    for bad in (GenerationSettings(strength=0.0), GenerationSettings(steps=0), GenerationSettings(scheduler="euler")):
        with pytest.raises(SettingsError):
            gen.generate(image, bad)


def test_strength_keeps_the_input_view_close_to_the_teacher(bank, teacher, teacher_dir, tmp_path):
    stats = spread(measured(bank, teacher, tmp_path, teacher_dir))
    gen = load_generator(write_model_folder(tmp_path / "m", teacher_dir, stats, {"steps": 20}), device="cpu")
    image = bank.sample(1, 1, torch.Generator().manual_seed(1)).input[0]
    def input_view(sample):  # from the sample's own input camera (at the photo's estimated elevation)
        return render(sample.gaussians, sample.input_viewmat[None], sample.K, 128, 128,
                      backend="torch").rgb[0].clamp(0, 1)

    with torch.no_grad():
        reference = input_view(gen.make_sample(teacher(image[None]).gaussians[0], 0, gen.defaults))
        # the teacher's own colours on both sides (colour matching would move both towards the photo)
        near = [float(psnr(input_view(gen.generate(image, GenerationSettings(seed=s, strength=0.05,
                                                                             colour_match=False))[0]),
                           reference)) for s in (0, 1)]
        far = float(psnr(input_view(gen.generate(image, GenerationSettings(seed=0, strength=1.0,
                                                                           colour_match=False))[0]),
                         reference))
    assert min(near) > 30 and far < 25, (near, far)


def test_resample_redraws_the_hidden_side_and_pins_the_input_view(bank, teacher, teacher_dir, tmp_path):
    stats = spread(measured(bank, teacher, tmp_path, teacher_dir))
    gen = load_generator(write_model_folder(tmp_path / "m", teacher_dir, stats, {"steps": 2}), device="cpu")
    image = bank.sample(1, 1, torch.Generator().manual_seed(2)).input[0]
    original = gen.generate(image, GenerationSettings(seed=0))[0]
    fresh = gen.generate(image, GenerationSettings(seed=5))[0]
    viewmat, K = original.input_viewmat, original.K  # the input view (at the photo's estimated elevation)

    def view(sample):
        return render(sample.gaussians, viewmat[None], K, 128, 128, backend="torch").rgb[0].clamp(0, 1)

    redrawn = gen.resample(image, original, "occluded", seed=5)
    assert redrawn.info["region"] == "occluded" and redrawn.seed == 5 and redrawn.info["pin_iterations"] > 0
    before, after = (float(psnr(view(x), view(original))) for x in (fresh, redrawn))
    assert before < 35 and after > before + 1, (before, after)
    assert (redrawn.gaussians.means - original.gaussians.means).abs().max() > 1e-3  # not the original back
    mask = torch.zeros(original.gaussians.shape, dtype=torch.bool)
    mask[:100] = True
    merged = gen.resample(image, original, mask, seed=5)
    assert torch.equal(merged.gaussians.means[:100], fresh.gaussians.means[:100])
    assert torch.equal(merged.gaussians.means[100:], original.gaussians.means[100:])
    with pytest.raises(SettingsError):
        gen.resample(image, original, "everything")


def test_the_shipped_size_fits_and_a_folder_without_its_own_teacher_is_refused(bank, teacher, teacher_dir, tmp_path):
    from splatgen.core.errors import ModelError

    with torch.device("meta"):
        shipped = SplatterDenoiser()
    mib = sum(p.numel() for p in shipped.parameters()) * 2 / 2**20
    assert 4 < mib <= 10, mib  # fp16; the teacher is shared with the regressor, not copied
    stats = measured(bank, teacher, tmp_path, teacher_dir)
    folder = write_model_folder(tmp_path / "m", teacher_dir, stats)
    manifest = json.loads((folder / "splatgen.json").read_text())
    den_cfg = folder / "denoiser" / "config.json"
    cfg = json.loads(den_cfg.read_text())
    den_cfg.write_text(json.dumps({**cfg, "teacher_sha256": "0" * 64}))  # trained with another regressor
    with pytest.raises(ModelError, match="not the one the denoiser was trained with"):
        load_generator(folder, device="cpu")
    den_cfg.write_text(json.dumps(cfg))
    (folder / "splatgen.json").write_text(json.dumps({**manifest, "components": {"denoiser": "denoiser"}}))
    with pytest.raises(ModelError, match="names no 'teacher'"):
        load_generator(folder, device="cpu")
    (folder / "splatgen.json").write_text(json.dumps({**manifest, "components": {"denoiser": "denoiser",
                                                                                  "teacher": "../nowhere"}}))
    with pytest.raises(ModelError, match="keep the regressor folder beside"):
        load_generator(folder, device="cpu")


def test_teacher_backbone_starts_as_the_teacher_at_every_t_and_learns_from_the_noisy_input(bank, teacher, teacher_dir,
                                                                                         tmp_path):
    stats = measured(bank, teacher, tmp_path, teacher_dir)
    torch.manual_seed(5)
    den = SplatterDenoiser(gaussians_per_pixel=1, block_out_channels=TEACHER["channels"], attention_head_dim=32,
                           backbone="teacher", **stats)
    den.init_from_teacher(teacher)
    batch = bank.sample(2, 2, torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = teacher(batch.input).raw
        for t in (0, 400, 999):
            x_t = torch.randn(expected.shape, generator=torch.Generator().manual_seed(t))
            raw = den.denormalise(den(x_t, torch.full((2,), t), den.condition(batch.input)))
            assert (raw - expected).abs().max() < 1e-4 * (1 + expected.abs().max()), t
    # the noisy channels' input weights start at zero and are the ones a step moves first
    w = den.encoder.conv_in.weight
    assert float(w.detach()[:, 5:].abs().max()) == 0 and float(w.detach()[:, :4].abs().max()) > 0
    den.train()
    loss, _ = training_loss(den, den, TeacherSource(teacher), batch, config(tmp_path, teacher_dir), torch.Generator().manual_seed(7),
                            "torch", timesteps=torch.tensor([100, 600]))
    loss.backward()
    assert float(w.grad[:, 5:].abs().max()) > 0
    with pytest.raises(ValueError, match="backbone"):
        SplatterDenoiser(backbone="vit")


def test_chained_steps_feed_the_samplers_own_state_and_train_its_step(bank, teacher, teacher_dir, tmp_path):
    """With --chain-prob 1 the trained step's input is where the 4-step DDIM sampler stands before one of
    its later steps (the denoiser's own earlier predictions), at that step's timestep."""
    from splatgen.core.generator.sampling import guided_denoise

    den = tiny_denoiser(**measured(bank, teacher, tmp_path, teacher_dir))
    batch = bank.sample(2, 1, torch.Generator().manual_seed(8))
    seen = []

    def forward(x_t, t, cond):
        seen.append((x_t.clone(), t.clone(), torch.is_grad_enabled()))
        return den(x_t, t, cond)

    cfg = config(tmp_path, teacher_dir, chain_prob=1.0, cond_dropout=0.0)
    loss, _ = training_loss(forward, den, TeacherSource(teacher), batch, cfg, torch.Generator().manual_seed(9), "torch", step=1)
    assert torch.isfinite(loss)
    # global step 1 trains the sampler's step 1 + 1 mod 3 = 2 of 4: steps 0 and 1 run without gradients (t 999, 749), step 2 (t 499) trains
    assert [int(t[0]) for _, t, _ in seen] == [999, 749, 499] and [g for *_, g in seen] == [False, False, True]
    # the trained input is what the generator's sampler reaches from the same noise
    g = torch.Generator().manual_seed(9)
    torch.randint(0, 1000, (2,), generator=g)
    noise = torch.randn(seen[0][0].shape, generator=g)
    sched = den.make_scheduler("ddim")
    sched.set_timesteps(4)
    cond = den.condition(batch.input)
    with torch.no_grad():
        reached = guided_denoise(lambda inp, t: den(inp, t, cond), sched, noise, [999, 749], 1.0)
    assert torch.allclose(seen[2][0], reached, atol=1e-5)
    # with --chain-prob 0 (the default) every step noises the teacher: one call, with gradients
    seen.clear()
    training_loss(forward, den, TeacherSource(teacher), batch, config(tmp_path, teacher_dir), torch.Generator().manual_seed(9),
                  "torch", step=2)
    assert len(seen) == 1 and seen[0][2]


def test_posterior_source_noises_the_vars_object_from_the_input_and_context_views(bank, teacher, teacher_dir,
                                                                                   var_dir, tmp_path):
    """--noisy-source posterior: x_t at t = 0 is the VAR's posterior-mean object from the input view and
    the first --num-context targets (not the teacher's); other context views give another object, the
    views beyond them do not enter; the VAR stays frozen and the step trains the denoiser."""
    cfg = config(tmp_path, teacher_dir, noisy_source="posterior", var=str(var_dir), num_targets=2, num_context=1)
    source = clean_source(cfg, teacher, "cpu")
    assert isinstance(source, PosteriorSource)
    batch = bank.sample(2, 2, torch.Generator().manual_seed(11))
    var = load_network(SplatterNet, var_dir)
    with torch.no_grad():
        views = torch.cat([batch.rgb[:, :2], batch.alpha[:, :2]], -1).permute(0, 1, 4, 2, 3)
        mean, _ = var.encode_views(views, batch.viewmats[:, :2])
        expected = var.decode(var.encode_image(batch.input), mean, var.config.default_skip_weight).raw
    got = source(batch)
    assert torch.allclose(got, expected, atol=1e-5)
    assert (got - TeacherSource(teacher)(batch)).abs().max() > 1e-3
    # another first target (the context view) changes the object; the last target (unseen) does not
    other = bank.sample(2, 2, torch.Generator().manual_seed(12))
    swap_context = dataclasses.replace(batch, rgb=torch.cat([batch.rgb[:, :1], other.rgb[:, 1:2], batch.rgb[:, 2:]], 1),
                                  alpha=torch.cat([batch.alpha[:, :1], other.alpha[:, 1:2], batch.alpha[:, 2:]], 1),
                                  viewmats=torch.cat([batch.viewmats[:, :1], other.viewmats[:, 1:2],
                                                      batch.viewmats[:, 2:]], 1))
    swap_unseen = dataclasses.replace(batch, rgb=torch.cat([batch.rgb[:, :2], other.rgb[:, 2:]], 1),
                                      alpha=torch.cat([batch.alpha[:, :2], other.alpha[:, 2:]], 1),
                                      viewmats=torch.cat([batch.viewmats[:, :2], other.viewmats[:, 2:]], 1))
    assert (source(swap_context) - got).abs().max() > 1e-4
    assert torch.equal(source(swap_unseen), got)

    den = tiny_denoiser(**measured(bank, teacher, tmp_path, teacher_dir)).train()
    seen = []

    def forward(x_t, t, cond):
        seen.append(x_t)
        return den(x_t, t, cond)

    loss, _ = training_loss(forward, den, source, batch, cfg, torch.Generator().manual_seed(13), "torch",
                            timesteps=torch.zeros(2, dtype=torch.long))
    assert (den.denormalise(seen[0]) - expected).abs().max() < 0.1 * expected.std()
    loss.backward()
    assert float(den.unet.conv_in.weight.grad.abs().max()) > 0
    assert all(not p.requires_grad and p.grad is None for p in source.net.parameters())


def test_posterior_source_refuses_what_it_cannot_noise(teacher, teacher_dir, var_dir, tmp_path):
    with pytest.raises(SplatgenError, match="--var"):
        clean_source(config(tmp_path, teacher_dir, noisy_source="posterior", num_targets=3), teacher, "cpu")
    with pytest.raises(SplatgenError, match="variational"):
        clean_source(config(tmp_path, teacher_dir, noisy_source="posterior", var=str(teacher_dir), num_targets=3),
                     teacher, "cpu")
    with pytest.raises(SplatgenError, match="must exceed"):
        clean_source(config(tmp_path, teacher_dir, noisy_source="posterior", var=str(var_dir), num_targets=2),
                     teacher, "cpu")
    wide = tmp_path / "var4"
    SplatterNet(**{**VAR, "gaussians_per_pixel": 2}).save_pretrained(wide, safe_serialization=True)
    with pytest.raises(SplatgenError, match="layout"):
        clean_source(config(tmp_path, teacher_dir, noisy_source="posterior", var=str(wide), num_targets=3),
                     teacher, "cpu")
    with pytest.raises(SplatgenError, match="noisy-source"):
        config(tmp_path, teacher_dir, noisy_source="prior")


def test_a_posterior_run_through_the_cli_trains_and_records_its_source(bank, teacher_dir, var_dir, tmp_path):
    from splatgen.core.cli import main
    from splatgen.core.training import viewbank

    out = tmp_path / "post"
    cli = ["train", "teacher-guided", "--data", str(tmp_path / "unused"), "--out", str(out), "--device", "cpu",
           "--batch-size", "2", "--num-targets", "2", "--num-context", "1", "--log-every", "1", "--checkpoint-minutes",
           "1e9", "--teacher", str(teacher_dir), "--splat-channels", "8", "16", "16", "--warmup", "1", "--lr", "1e-3",
           "--noisy-source", "posterior", "--var", str(var_dir), "--max-steps", "2"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(viewbank, "load_view_bank", lambda path, device="cpu", **kw: bank)
        assert main(cli) == 0
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 2 and 0 < last["loss"] < 10
    args = json.loads((out / "checkpoint" / "trainer.json").read_text())["args"]
    assert args["noisy_source"] == "posterior" and args["var"] == str(var_dir)
    # resuming it with the teacher as the source is another run: refused before anything is written
    teacher_cli = [a for a in cli if a not in ("posterior", "--var", str(var_dir))]
    teacher_cli[teacher_cli.index("--noisy-source")] = "--no-such"  # drop the flag and its value
    teacher_cli.remove("--no-such")
    before = (out / "log.jsonl").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(viewbank, "load_view_bank", lambda path, device="cpu", **kw: bank)
        assert main([*teacher_cli, "--max-steps", "3", "--resume"]) != 0
    assert (out / "log.jsonl").read_text() == before
