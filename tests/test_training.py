"""`splatgen train` on a small real dataset (SweetHome3D meshes from Debian, rendered here), on the CPU.

Checks what a multi-session training campaign relies on: steps run and log finite losses, a resumed
run continues bit-exactly where an uninterrupted one would be, ``--decoder-only`` leaves the VAR's
latent space untouched, the denoiser trains over a frozen VAR, and bad datasets / checkpoints stop
with one clear message.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from splatgen.core.cli import main
from splatgen.core.models.weights import load_network
from splatgen.core.data.build import build_dataset

FURNITURE = Path("/usr/share/sweethome3d/furniture")
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "models"
FAST = ["--device", "cpu", "--batch-size", "2", "--num-targets", "2", "--log-every", "1", "--num-context", "1"]

pytestmark = pytest.mark.skipif(not FURNITURE.is_dir(), reason="sweethome3d-furniture is not installed")


@pytest.fixture(scope="module")
def dataset(tiny_furniture_dataset) -> Path:
    """4 real objects × 4 views at the models' 128² (conftest's, shared by the session)."""
    return tiny_furniture_dataset


@pytest.fixture(autouse=True)
def small_previews(monkeypatch):
    """The diffusion runs' closing preview grid at 1 object x 1 sample x 2 steps instead of 4 x 3 x 25:
    the same code path without 300 guided denoiser passes per run, most of a CPU run's time here."""
    from splatgen.core.training import diffusion

    monkeypatch.setattr(diffusion, "preview", functools.partial(diffusion.preview, objects=1, samples=1, steps=2))


def train(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    torch.set_num_threads(2)
    code = main(["train", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture
def train_command(run_splatgen):
    """``train_command(*args) -> (exit code, stderr)``: ``splatgen train ARGS`` in a process of its own,
    what a user sees on stderr (conftest's ``run_splatgen``)."""
    def run(*args) -> tuple[int, str]:
        r = run_splatgen("train", *args)
        return r.returncode, r.stderr

    return run


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """A model folder's tensors, int8-stored ones dequantized, as float32 (fp16 and int8 folders compare)."""
    from splatgen.core.models.weights import read_weights
    return {k: v.float() if v.is_floating_point() else v for k, v in read_weights(folder).items()}


def test_regressor_steps_log_finite_losses_and_resume_exactly(dataset, tmp_path, capsys):
    # from the shipped weights: a random regressor's splats cover whole views and are slow to render
    # on the CPU (test_resume_from_an_incompatible_checkpoint trains one from scratch)
    shipped = SHIPPED / "regressor"
    first = json.loads((shipped / "config.json").read_text())["trained_steps"]
    common = ["--init-from", shipped, "--data", dataset, *FAST, "--batch-size", 1, "--num-targets", 1]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(capsys, "regressor", "--out", straight, "--max-steps", first + 2, "--export", straight / "export",
                 *common)[0] == 0
    assert train(capsys, "regressor", "--out", split, "--max-steps", first + 1, *common)[0] == 0
    assert train(capsys, "regressor", "--out", split, "--max-steps", first + 2, "--resume", *common)[0] == 0

    log = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [first + 1, first + 2]
    for r in log:
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("loss", "mse", "psnr_input", "grad_norm"))
        assert 0.0 < r["mse"] < 1.0 and r["psnr_novel"] > 5.0
    resumed = [json.loads(line) for line in (split / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed] == [first + 1, first + 2]
    assert resumed[-1]["loss"] == pytest.approx(log[-1]["loss"], rel=1e-6)

    a, b = weights(straight / "checkpoint" / "model"), weights(split / "checkpoint" / "model")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resuming changed the result"
    assert json.loads((split / "checkpoint" / "trainer.json").read_text())["step"] == first + 2
    assert list(split.glob("samples_*.png")), "no sample grid written"
    # the export is a model folder of its own: it loads as a generator and makes an object
    from splatgen.core.generator import GenerationSettings, load_generator
    gen = load_generator(straight / "export", device="cpu")
    assert gen.kind == "regressor"
    sample = gen.generate(torch.rand(4, 128, 128), GenerationSettings(seed=0))[0]
    assert sample.gaussians.means.shape[-2] > 1000


def test_var_decoder_only_keeps_the_latent_space(dataset, tmp_path, capsys):
    var = SHIPPED / "diffusion" / "var"
    steps = json.loads((var / "config.json").read_text())["trained_steps"]
    code, err = train(capsys, "var", "--decoder-only", "--init-from", var, "--data", dataset, "--out", tmp_path / "v",
                      "--max-steps", steps + 1, "--lr", "1e-3", "--warmup", "1", "--export", tmp_path / "export", *FAST)
    assert code == 0, err
    before, after = weights(var), weights(tmp_path / "export")
    frozen = [k for k in before if k.split(".")[0] in ("encoder", "view_encoder", "to_latent")]
    trained = [k for k in before if k.split(".")[0] in ("reconstructor", "from_latent", "top_proj")]
    assert frozen and trained
    # the export is fp16: compare at that precision (the shipped VAR is int8, dequantized to float32)
    assert all(torch.equal(before[k].half(), after[k].half()) for k in frozen), "an encoder weight moved"
    assert sum(not torch.equal(before[k].half(), after[k].half()) for k in trained) > len(trained) // 2
    assert json.loads((tmp_path / "export" / "config.json").read_text())["trained_steps"] == steps + 1


def test_diffusion_trains_over_the_frozen_var(dataset, tmp_path, capsys):
    den = SHIPPED / "diffusion" / "denoiser"
    cfg = json.loads((den / "config.json").read_text())
    code, err = train(capsys, "diffusion", "--var", SHIPPED / "diffusion" / "var", "--init-from", den, "--data", dataset,
                      "--out", tmp_path / "d", "--max-steps", cfg["trained_steps"] + 2, "--export", tmp_path / "export",
                      "--teacher", SHIPPED / "regressor", "--teacher-latent", "--latent-pool", 4, *FAST)
    assert code == 0, err
    exported = json.loads((tmp_path / "export" / "config.json").read_text())
    # the latent normalisation belongs to the VAR's latent space and must travel with the weights
    assert exported["latent_scale"] == cfg["latent_scale"] and exported["latent_shift"] == cfg["latent_shift"]
    assert exported["teacher_sha256"] == cfg["teacher_sha256"] and exported["teacher_channels"] == 128
    assert exported["teacher_latent"] is True
    records = [json.loads(line) for line in (tmp_path / "d" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 2 and all(0.0 < x < 10.0 for x in losses)
    # the run ends with a preview: samples of the new weights, rendered into a grid and scored
    assert records[-1]["step"] == cfg["trained_steps"] + 2 and records[-1]["preview_psnr_input"] > 5.0
    assert (tmp_path / "d" / f"samples_{cfg['trained_steps'] + 2:07d}.png").is_file()


def test_latent_pool_holds_var_encodings_and_depends_only_on_the_step(dataset):
    from splatgen.core.models.splatter_net import SplatterNet
    from splatgen.core.training.latent_pool import LatentPool
    from splatgen.core.training.viewbank import load_view_bank

    torch.set_num_threads(2)
    var = load_network(SplatterNet, SHIPPED / "diffusion" / "var")
    bank = load_view_bank(dataset)
    pool = LatentPool(var, bank, 1, size=12, chunk=3, mirror_prob=0.0)
    pool.advance(10)
    assert len(pool) == 12 and not pool.mirrored.any()
    # an item's condition is the VAR's features of its input view
    i = 4
    inp = bank.batch(pool.objects[i:i + 1], pool.views[i:i + 1], torch.zeros(1, 0, dtype=torch.long)).input
    with torch.no_grad():
        features = var.encode_image(inp)[-1]
    assert torch.allclose(pool.condition[i].float(), features[0], atol=2e-3 * features.abs().max())
    assert pool.mean.shape[1:] == var.latent_shape and torch.isfinite(pool.logvar).all()
    # stepping renews one chunk per step; the result equals a pool filled at that step from scratch
    held = pool.condition.clone()
    pool.advance(12)
    assert torch.equal(pool.condition[3:9], held[3:9])  # chunks 11 and 12 went to slots 3 and 0 (items 9-11, 0-2)
    fresh = LatentPool(var, bank, 1, size=12, chunk=3, mirror_prob=0.0)
    fresh.advance(12)
    assert torch.equal(fresh.condition, pool.condition) and torch.equal(fresh.mean, pool.mean)
    g = torch.Generator().manual_seed(0)
    (c1, z1), (c2, z2) = pool.sample(64, g), pool.sample(64, g)
    assert c1.dtype == c2.dtype == torch.float32 and not torch.equal(z1, z2)
    # the items' views to render into: the input view first, then other views of the same object
    views = pool.view_batch(torch.tensor([i, 0]), 2, g)
    assert torch.equal(views.input[:1], inp) and views.rgb.shape[1] == 3
    torch.testing.assert_close(views.viewmats[:, 0], torch.eye(4).expand(2, 4, 4), atol=1e-6, rtol=0)
    assert not torch.equal(views.rgb[0, 1], views.rgb[0, 0])


def test_latent_pool_appends_the_teachers_features(dataset):
    from splatgen.core.models.splatter_net import SplatterNet
    from splatgen.core.training.latent_pool import LatentPool
    from splatgen.core.training.viewbank import load_view_bank

    torch.set_num_threads(2)
    load = lambda name: load_network(SplatterNet, SHIPPED / name)  # noqa: E731
    var, teacher = load("diffusion/var"), load("regressor")
    bank = load_view_bank(dataset)
    pool = LatentPool(var, bank, 1, size=6, chunk=3, mirror_prob=1.0, teacher=teacher)
    pool.advance(3)
    assert pool.condition.shape[1] == 256 and pool.mirrored.all()
    i = 2
    inp = bank.batch(pool.objects[i:i + 1], pool.views[i:i + 1], torch.zeros(1, 0, dtype=torch.long)).input.flip(-1)
    with torch.no_grad():
        expected = torch.cat([var.encode_image(inp)[-1], teacher.encode_image(inp)[-1]], 1)[0]
    assert torch.allclose(pool.condition[i].float(), expected, atol=2e-3 * expected.abs().max())


def test_diffusion_with_a_latent_pool_resumes_exactly(dataset, tmp_path, capsys):
    den = SHIPPED / "diffusion" / "denoiser"
    first = json.loads((den / "config.json").read_text())["trained_steps"]
    common = ["--var", SHIPPED / "diffusion" / "var", "--teacher", SHIPPED / "regressor", "--teacher-latent",
              "--init-from", den, "--data", dataset, "--latent-pool", 2, "--pool-reuse", 1, *FAST, "--batch-size", 1]
    straight, split = tmp_path / "straight", tmp_path / "split"
    capsys.readouterr()
    assert main(["train", "diffusion", "--out", str(straight), "--max-steps", str(first + 2), *map(str, common)]) == 0
    assert "latent pool: 2 VAR encodings" in capsys.readouterr().out
    assert train(capsys, "diffusion", "--out", split, "--max-steps", first + 1, *common)[0] == 0
    assert train(capsys, "diffusion", "--out", split, "--max-steps", first + 2, "--resume", *common)[0] == 0
    a, b = weights(straight / "checkpoint" / "model"), weights(split / "checkpoint" / "model")
    # to float tolerance: the resumed run differs from the straight one in the last bits of some
    # weights (at most 6e-8 with the shipped v2 weights; bit-exact with v1's), not in what it learnt
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"resuming changed {k}")


def test_a_new_denoiser_takes_its_size_from_the_options_and_keeps_it(dataset, tmp_path, capsys, train_command):
    run, export = tmp_path / "run", tmp_path / "export"
    args = ["diffusion", "--var", SHIPPED / "diffusion" / "var", "--data", dataset, "--out", run, "--latent-pool", 4,
            *FAST]
    code, err = train(capsys, *args, "--max-steps", 1, "--denoiser-channels", 32, 64, "--export", export)
    assert code == 0, err
    cfg = json.loads((export / "config.json").read_text())
    assert cfg["block_out_channels"] == [32, 64] and cfg["layers_per_block"] == 1
    assert 0.0 < cfg["latent_scale"] < 10.0  # measured on the pool's encodings
    # a resumed run (and one started --init-from the export) keeps the size of its weights
    code, err = train(capsys, *args, "--max-steps", 2, "--resume", "--denoiser-channels", 64, 64, 64)
    assert code == 0, err
    code, err = train(capsys, "diffusion", "--var", SHIPPED / "diffusion" / "var", "--data", dataset, "--out",
                      tmp_path / "again", "--init-from", export, "--max-steps", 2, "--latent-pool", 4, *FAST)
    assert code == 0, err
    code, err = train_command("diffusion", "--var", SHIPPED / "diffusion" / "var", "--data", dataset, "--out",
                              tmp_path / "bad", "--denoiser-channels", 48, 64, *FAST)
    assert code != 0 and "multiples of 32" in err and "Traceback" not in err


def test_a_teacher_joins_a_denoiser_without_changing_what_it_computes(dataset, tmp_path, capsys, train_command):
    from splatgen.core.models.denoiser import LatentDenoiser
    from splatgen.core.generator.teacher import weights_sha256

    var, regressor = SHIPPED / "diffusion" / "var", SHIPPED / "regressor"
    plain, grown = tmp_path / "plain", tmp_path / "grown"
    base = ["diffusion", "--var", var, "--data", dataset, "--latent-pool", 4, *FAST, "--denoiser-channels", 32, 32]
    assert train(capsys, *base, "--out", tmp_path / "r0", "--max-steps", 1, "--export", plain)[0] == 0
    # zero steps from the plain weights with a teacher: the same function of the VAR features
    code, err = train(capsys, *base, "--out", tmp_path / "r1", "--init-from", plain, "--teacher", regressor,
                      "--max-steps", 1, "--export", grown)
    assert code == 0, err
    cfg = json.loads((grown / "config.json").read_text())
    assert cfg["teacher_channels"] == 128 and cfg["teacher_sha256"] == weights_sha256(regressor)
    a, b = LatentDenoiser.from_pretrained(str(plain)).eval(), LatentDenoiser.from_pretrained(str(grown)).eval()
    assert torch.count_nonzero(b.teacher_proj.weight) == 0
    c = torch.randn(2, 256, 16, 16)
    x, t = torch.randn(2, 4, 16, 16), torch.tensor([10, 900])
    with torch.no_grad():
        torch.testing.assert_close(b(x, t, b.project_condition(c)), a(x, t, a.project_condition(c[:, :128])))
    # the teacher cannot be dropped or swapped, nor added to a run being resumed
    code, err = train_command(*base, "--out", tmp_path / "r2", "--init-from", grown, "--max-steps", 2)
    assert code != 0 and "pass --teacher" in err and "Traceback" not in err
    code, err = train_command(*base, "--out", tmp_path / "r2", "--init-from", grown, "--teacher", var, "--max-steps", 2)
    assert code != 0 and "must be a regressor" in err and "Traceback" not in err
    code, err = train_command(*base, "--out", tmp_path / "r0", "--resume", "--teacher", regressor, "--max-steps", 2)
    assert code != 0 and "trained without a teacher" in err and "Traceback" not in err
    # another regressor of the same width: allowed from weights (the digest follows), not when resuming
    other = tmp_path / "other-regressor"
    shutil.copytree(regressor, other)
    w = load_file(str(other / "diffusion_pytorch_model.safetensors"))
    w = {k: (v + 1e-3 if v.is_floating_point() else v) for k, v in w.items()}
    save_file(w, str(other / "diffusion_pytorch_model.safetensors"))
    moved = tmp_path / "moved"
    code, err = train_command(*base, "--out", tmp_path / "r3", "--init-from", grown, "--teacher", other,
                              "--max-steps", 2, "--export", moved)
    assert code == 0, err
    assert json.loads((moved / "config.json").read_text())["teacher_sha256"] == weights_sha256(other)
    code, err = train_command(*base, "--out", tmp_path / "r3", "--resume", "--teacher", regressor, "--max-steps", 3)
    assert code != 0 and "checkpoint to resume was trained with" in err and "Traceback" not in err


def test_render_items_supervise_the_denoiser_through_the_decoder(dataset, tmp_path, capsys, train_command):
    den = SHIPPED / "diffusion" / "denoiser"
    first = json.loads((den / "config.json").read_text())["trained_steps"]
    args = ["diffusion", "--var", SHIPPED / "diffusion" / "var", "--teacher", SHIPPED / "regressor", "--teacher-latent",
            "--init-from", den, "--data", dataset, "--latent-pool", 2, *FAST]
    code, err = train(capsys, *args, "--out", tmp_path / "d", "--max-steps", first + 2, "--render-items", 1)
    assert code == 0, err
    log = [json.loads(line) for line in (tmp_path / "d" / "log.jsonl").read_text().splitlines() if "render_loss" in line]
    assert len(log) == 2
    for r in log:  # the total is the latent loss plus the weighted render loss of the decoded clean latent
        assert 0.0 < r["render_loss"] < 1.0 and r["render_psnr_input"] > 15.0 and r["render_psnr_novel"] > 8.0
        assert r["loss"] == pytest.approx(r["latent_loss"] + r["render_loss"], rel=1e-4)
    code, err = train_command(*args, "--out", tmp_path / "e", "--render-items", 3)
    assert code != 0 and "between 0 and the batch size" in err and "Traceback" not in err


# ---------------------------------------------------------------------- bad input
def test_missing_and_empty_datasets(tmp_path, train_command):
    code, err = train_command("regressor", "--data", tmp_path / "nowhere", "--out", tmp_path / "r", *FAST)
    assert code != 0 and "nowhere" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, err = train_command("regressor", "--data", tmp_path / "empty", "--out", tmp_path / "r", *FAST)
    assert code != 0 and "empty" in err and "Traceback" not in err


def test_dataset_of_the_wrong_size(tmp_path, train_command):
    root = tmp_path / "small"
    build_dataset(FURNITURE, root, views=2, size=64, limit=2, workers=1, progress=False)
    code, err = train_command("regressor", "--data", root, "--out", tmp_path / "r", *FAST)
    assert code != 0 and "64" in err and "128" in err and "Traceback" not in err


def test_resume_from_an_incompatible_checkpoint(dataset, tmp_path, capsys, train_command):
    run = tmp_path / "run"
    # a regressor from scratch (one item, one novel view: its random splats are slow to render)
    assert train(capsys, "regressor", "--data", dataset, "--out", run, "--max-steps", 1, *FAST,
                 "--batch-size", 1, "--num-targets", 1)[0] == 0
    (record,) = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert record["step"] == 1 and all(torch.isfinite(torch.tensor(record[k])) for k in ("loss", "mse", "grad_norm"))
    code, err = train_command("var", "--data", dataset, "--out", run, "--max-steps", 2, "--resume", *FAST)
    assert code != 0 and "do not match" in err and "Traceback" not in err


def test_diffusion_needs_a_var(dataset, tmp_path, train_command):
    code, err = train_command("diffusion", "--var", SHIPPED / "regressor", "--data", dataset, "--out", tmp_path / "d",
                      *FAST)
    assert code != 0 and "not a VAR" in err and "Traceback" not in err
    code, err = train_command("regressor", "--decoder-only", "--data", dataset, "--out", tmp_path / "r", *FAST)
    assert code != 0 and "--decoder-only" in err and "Traceback" not in err


def test_mirrored_views_are_views_of_the_mirrored_object():
    """The mirror augmentation's flipped images and reflected cameras are exactly what the reflected
    object looks like: render a scene, mirror the batch, render the reflected scene, compare."""
    from splatgen.core.cameras import canonical_intrinsics, orbit_viewmats, relative_viewmats
    from splatgen.core.gaussians import random_gaussians
    from splatgen.core.metrics import psnr
    from splatgen.core.render import render
    from splatgen.core.training.viewbank import ViewBatch, mirror

    size = 64
    scene = random_gaussians(3000, radius=0.45, scale_range=(0.01, 0.04), seed=3)
    world = orbit_viewmats([20.0, 75.0, 160.0, 250.0], 15.0)             # (4, 4, 4): view 0 = input
    rel = relative_viewmats(world, world[0])
    local = scene.transformed(world[0])                                     # the object in the input camera's frame
    K = canonical_intrinsics(size).expand(4, 3, 3)

    def views(g, viewmats):
        out = render(g, viewmats, K, size, size, backend="torch")
        return out.rgb, out.alpha

    rgb, alpha = views(local, rel)
    inp = torch.cat([rgb[0], alpha[0]], -1).permute(2, 0, 1)
    batch = ViewBatch(torch.stack([inp, inp]), torch.stack([rgb, rgb]), torch.stack([alpha, alpha]),
                      torch.stack([rel, rel]), torch.stack([K, K]), torch.tensor([0, 0]))
    m = mirror(batch, torch.tensor([True, False]))

    reflected = type(local)(  # x → -x; rotations R → S R S, i.e. quaternion (w, x, -y, -z)
        means=local.means * torch.tensor([-1.0, 1.0, 1.0]), quats=local.quats * torch.tensor([1.0, 1.0, -1.0, -1.0]),
        log_scales=local.log_scales, opacity_logits=local.opacity_logits, sh=local.sh)
    want_rgb, want_alpha = views(reflected, m.viewmats[0])
    assert torch.allclose(m.viewmats[0, 0], torch.eye(4), atol=1e-6)      # the input camera stays put
    assert psnr(m.rgb[0], want_rgb).min() > 40 and psnr(m.alpha[0], want_alpha).min() > 40
    assert torch.equal(m.input[0], batch.input[0].flip(-1))
    assert not torch.equal(m.rgb[0], batch.rgb[0])                          # it did change …
    for a, b in zip((m.input, m.rgb, m.alpha, m.viewmats), (batch.input, batch.rgb, batch.alpha, batch.viewmats)):
        assert torch.equal(a[1], b[1])                                      # … only the chosen item


def test_resume_must_keep_decoder_only(dataset, tmp_path, capsys, train_command):
    var = SHIPPED / "diffusion" / "var"
    steps = json.loads((var / "config.json").read_text())["trained_steps"]
    run = tmp_path / "v"
    assert train(capsys, "var", "--decoder-only", "--init-from", var, "--data", dataset, "--out", run,
                 "--max-steps", steps + 1, *FAST)[0] == 0
    code, err = train_command("var", "--data", dataset, "--out", run, "--resume", "--max-steps", steps + 2, *FAST)
    assert code != 0 and "--decoder-only" in err and "Traceback" not in err


def test_the_teachers_latent_joins_the_condition(dataset, tmp_path, capsys, train_command):
    from splatgen.core.models.denoiser import LatentDenoiser
    from splatgen.core.models.splatter_net import SplatterNet
    from splatgen.core.generator.teacher import teacher_latent
    from splatgen.core.training.latent_pool import LatentPool
    from splatgen.core.training.viewbank import load_view_bank

    torch.set_num_threads(2)
    var_dir, regressor = SHIPPED / "diffusion" / "var", SHIPPED / "regressor"
    base = ["diffusion", "--var", var_dir, "--teacher", regressor, "--data", dataset, "--latent-pool", 2, *FAST,
            "--denoiser-channels", 32, 32]
    plain, grown = tmp_path / "plain", tmp_path / "grown"
    assert train(capsys, *base, "--out", tmp_path / "r0", "--max-steps", 1, "--export", plain)[0] == 0
    # zero steps from weights with the teacher's features only: the latent's projection starts at zero
    code, err = train(capsys, *base, "--init-from", plain, "--teacher-latent", "--out", tmp_path / "r1",
                      "--max-steps", 1, "--export", grown)
    assert code == 0, err
    a, b = LatentDenoiser.from_pretrained(str(plain)).eval(), LatentDenoiser.from_pretrained(str(grown)).eval()
    assert b.config.teacher_latent and b.condition_width == 256 + 4
    assert torch.count_nonzero(b.teacher_latent_proj.weight) == 0
    c = torch.randn(2, 260, 16, 16)
    x, t = torch.randn(2, 4, 16, 16), torch.tensor([10, 900])
    with torch.no_grad():
        torch.testing.assert_close(b(x, t, b.project_condition(c)), a(x, t, a.project_condition(c[:, :256])))
    # the pool's condition ends with the teacher's latent of each item's (mirrored) input view
    load = lambda d: load_network(SplatterNet, d)  # noqa: E731
    var, teacher = load(var_dir), load(regressor)
    bank = load_view_bank(dataset)
    pool = LatentPool(var, bank, 1, size=4, chunk=2, mirror_prob=1.0, teacher=teacher, teacher_latent=True)
    pool.advance(2)
    i = 1
    inp = bank.batch(pool.objects[i:i + 1], pool.views[i:i + 1], torch.zeros(1, 0, dtype=torch.long)).input.flip(-1)
    expected = teacher_latent(var, teacher, inp)[0]
    assert pool.condition.shape[1] == 260
    assert torch.allclose(pool.condition[i, 256:].float(), expected, atol=2e-3 * expected.abs().max())
    # it cannot be dropped, added to a run being resumed, or come without its teacher
    code, err = train_command(*base, "--init-from", grown, "--out", tmp_path / "r2", "--max-steps", 2)
    assert code != 0 and "pass --teacher-latent" in err and "Traceback" not in err
    code, err = train_command(*base, "--out", tmp_path / "r0", "--resume", "--teacher-latent", "--max-steps", 2)
    assert code != 0 and "without the teacher's latent" in err and "Traceback" not in err
    code, err = train_command("diffusion", "--var", var_dir, "--data", dataset, *FAST, "--teacher-latent",
                              "--out", tmp_path / "r3", "--max-steps", 1)
    assert code != 0 and "needs --teacher" in err and "Traceback" not in err


def test_the_learning_rate_warms_up_then_follows_a_cosine_to_lr_final():
    from splatgen.core.training.trainer import LoopClock, scheduled_lr
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    clock = LoopClock(max_steps=1010, max_minutes=None)
    lrs = [scheduled_lr(opt, 1e-3, step, 10, 100, clock, lr_final=1e-5) for step in range(10, 1011)]
    assert lrs[0] == pytest.approx(1e-5) and lrs[99] == pytest.approx(1e-3)   # linear warm-up from step 10
    assert opt.param_groups[0]["lr"] == lrs[-1] == pytest.approx(1e-5)          # the end of the budget
    mid = 10 + 100 + (1000 - 100) // 2                                            # half-way through the decay
    assert 1e-5 < lrs[mid - 10] < 1e-3
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:])), "the decay is not monotone"
    # without lr_final the rate stays at base after the warm-up; a time budget sets the progress too
    assert scheduled_lr(opt, 1e-3, 900, 10, 100, clock) == pytest.approx(1e-3)
    timed = LoopClock(max_steps=None, max_minutes=1e-9)
    assert scheduled_lr(opt, 1e-3, 900, 10, 100, timed, lr_final=2e-5) == pytest.approx(2e-5)


def test_step_minutes_count_steady_steps_only(monkeypatch):
    """The first step (compilation) and the time after a checkpoint are not optimiser-step time."""
    from splatgen.core.training import trainer
    now = [100.0]
    monkeypatch.setattr(trainer.time, "monotonic", lambda: now[0])
    clock = trainer.LoopClock(max_steps=None, max_minutes=None)
    for dt in (50.0, 1.0, 1.0, 1.0):   # a 50 s first step (compiling), then three 1 s steps
        now[0] += dt
        clock.count_step()
    assert clock.step_seconds == pytest.approx(3.0)
    clock.pause()
    now[0] += 20.0                     # a checkpoint and the step after it
    clock.count_step()
    now[0] += 2.0
    clock.count_step()
    assert clock.step_minutes == pytest.approx(5.0 / 60)


def test_lr_final_above_lr_is_refused(tmp_path):
    from splatgen.core.errors import SplatgenError
    from splatgen.core.training.config import TrainConfig
    with pytest.raises(SplatgenError, match="lr-final"):
        TrainConfig(model="regressor", data=tmp_path, out=tmp_path, lr=1e-4, lr_final=1e-3)
