"""The one-step student (seed 002): starts as the regressor, learns from the stand-in teacher's
collection, loads as a generator that draws the teacher's noise per seed and refines with the teacher.

Real parts throughout: the shipped regressor and latent-diffusion model (the stand-in teacher), a
real image set (Debian's stamp photos and a built dataset's views, :mod:`test_distil`'s fixtures),
rendered pixels compared."""

from __future__ import annotations

import json

import pytest
import torch

from splatgen.core.distil.collect import collect, load_quads
from splatgen.core.distil.images import ImageSet
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.generator.benchmark import example_input
from splatgen.core.generator.model_folder import models_dir
from splatgen.core.models.one_step import STAGES, OneStepNet, stage_channels
from splatgen.core.models.splatter_image import CHANNELS_PER_GAUSSIAN
from test_distil import dataset, image_set, stamps  # noqa: F401 - module fixtures reused

DIFFUSION = models_dir() / "diffusion"


@pytest.fixture(scope="module")
def regressor():
    return load_generator(models_dir() / "regressor", device="cpu").net.float()


def test_the_stages_decode_every_channel_once_positions_first(regressor):
    order = [c for k in range(len(STAGES)) for c in stage_channels(k)]
    assert sorted(order) == list(range(CHANNELS_PER_GAUSSIAN)) and order[:4] == [0, 1, 2, 3]  # depth, offset
    assert [name for name, _ in STAGES] == ["positions", "shape", "appearance"]


def test_a_new_student_is_the_regressor_whatever_the_noise_and_guidance(regressor):
    net = OneStepNet.from_regressor(regressor, (1, 4, 16, 16)).eval()
    x = example_input()[None]
    with torch.no_grad():
        want = regressor(x).raw
        for seed, w in ((0, 1.0), (1, 2.0), (2, 7.5)):
            noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed))
            assert (net(x, noise, w).raw - want).abs().max().item() < 1e-4
        # the noise and the guidance reach the output once their weights move off zero
        torch.nn.init.normal_(net.noise_in.weight, std=0.05)
        torch.nn.init.normal_(net.guidance_film[-1].weight, std=0.05)
        a = net(x, torch.randn(1, 4, 16, 16), 2.0).gaussians.means
        b = net(x, torch.randn(1, 4, 16, 16), 2.0).gaussians.means
        c = net(x, torch.zeros(1, 4, 16, 16), 2.0).raw - net(x, torch.zeros(1, 4, 16, 16), 6.0).raw
    assert (a - b).abs().max().item() > 1e-3 and c.abs().max().item() > 1e-4


@pytest.fixture(scope="module")
def collection(image_set, tmp_path_factory):  # noqa: F811 - the imported fixture
    out = tmp_path_factory.mktemp("quads") / "q"
    collect(DIFFUSION, image_set, out, noises_per_image=1, guidances=(2.0,), steps=2, batch_size=4, device="cpu",
            num_views=3)
    return out


def test_the_stand_in_teacher_collects_its_own_samples_views(collection, image_set):  # noqa: F811
    """Each item's views are the latent-diffusion generator's own DDIM sample of that seed, rendered at
    the orbit's cameras: recomputed through the generator (colour matching off), view 0 matches."""
    from splatgen.core import framing
    from splatgen.core.cameras import canonical_intrinsics
    from splatgen.core.render import render

    index = json.loads((collection / "index.json").read_text())
    assert index["teacher_kind"] == "latent-diffusion" and index["noise_shape"] == [1, 4, 16, 16]
    q = load_quads(collection)
    n = len(ImageSet(image_set))
    assert q["views"].shape == (n, 3, 128, 128, 4) and q["noise"].shape == q["latents"].shape == (n, 1, 4, 16, 16)
    assert torch.allclose(q["viewmats"][:, 0], torch.eye(4).expand(n, 4, 4), atol=1e-5)  # view 0: the input camera
    teacher = load_generator(DIFFUSION, device="cpu")
    images = ImageSet(image_set)
    k = 1
    row = next(j for j, r in enumerate(images.rows) if r["id"] == int(q["image"][k]))
    torch.testing.assert_close(q["noise"][k, 0].float(), teacher.noise(int(q["seed"][k]))[0], atol=1e-3, rtol=1e-3)
    sample = teacher.generate(images.inputs([row])[0], GenerationSettings(
        seed=int(q["seed"][k]), steps=2, scheduler="ddim", guidance=2.0, strength=1.0, colour_match=False,
        elevation=float(q["elevation"][k])))[0]
    cam = sample.input_viewmat[None]  # object frame → input camera: the render of view 0
    out = render(sample.gaussians, cam, canonical_intrinsics(128), 128, 128,
                 background=torch.tensor(framing.BACKGROUND, dtype=torch.float32))
    got = q["views"][k, 0, ..., :3].float() / 255
    assert (out.rgb[0].clamp(0, 1) - got).abs().max().item() < 0.02
    # other views see other sides: they differ from view 0
    assert (q["views"][k, 1].float() - q["views"][k, 0].float()).abs().mean().item() > 1.0


def test_train_export_generate_and_refine(collection, dataset, tmp_path, run_splatgen):  # noqa: F811
    """`splatgen train one-step` on the collection (2 steps) exports a model folder that loads as the
    `one-step` generator: the seed's noise is the teacher's, one pass gives a sample per seed, and
    refine returns the teacher's samples for the same seeds."""
    out, export = tmp_path / "run", tmp_path / "one-step"
    r = run_splatgen("train", "one-step", "--data", str(collection), "--out", str(out), "--init-from",
                     str(models_dir() / "regressor"), "--batch-size", "2", "--num-targets", "2", "--max-steps", "2",
                     "--log-every", "1", "--device", "cpu", "--export", str(export))
    assert r.returncode == 0, r.stderr
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logs] == [1, 2] and all(x["psnr_input"] > 25 for x in logs)
    manifest = json.loads((export / "splatgen.json").read_text())
    assert manifest["kind"] == "one-step" and (export / manifest["components"]["teacher"]).resolve() == DIFFUSION.resolve()
    gen = load_generator(export, device="cpu")
    assert gen.kind == "one-step" and gen.student.config.teacher_kind == "latent-diffusion"
    assert torch.equal(gen.noise(11), gen.teacher.noise(11))
    image = example_input()
    samples = gen.generate(image, GenerationSettings(seed=11, num_samples=2))
    assert [s.seed for s in samples] == [11, 12] and samples[0].gaussians.num_gaussians == 128 * 128 * 2
    assert all(s.model == gen.name for s in samples) and "colour_match" in samples[0].info
    refined = gen.refine(image, GenerationSettings(seed=11, num_samples=1, steps=2))
    assert refined[0].model == gen.teacher.name and refined[0].seed == 11
    # a sample's own settings (one pass: steps 1, no scheduler) refine with the teacher's learnt sampler
    assert gen.refine(image, samples[0].settings)[0].settings.scheduler == "ddim"
    from splatgen.core.errors import SettingsError

    with pytest.raises(SettingsError, match="one-step"):
        gen.resample(image, samples[0])
    # eval reports the student's agreement with its teacher on the same seeds (a dataset object)
    from splatgen.core.evaluation import evaluate, find_objects

    objects = find_objects(dataset, split="train")[:1]
    report = evaluate(gen, objects, GenerationSettings(num_samples=2, seed=0), progress=False)
    assert report["kind"] == "one-step" and 15 < report["teacher_agreement_novel_psnr"] < 60
    assert report["teacher_agreement_input_psnr"] > report["teacher_agreement_novel_psnr"] - 10
    assert report["teacher_novel_psnr"] is not None and report["teacher_best_of_k_novel_psnr"] >= report["teacher_novel_psnr"] - 1e-6
    # resuming continues the run's step count
    r = run_splatgen("train", "one-step", "--data", str(collection), "--out", str(out), "--resume",
                     "--batch-size", "2", "--num-targets", "2", "--max-steps", "3", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == 3


def test_a_new_run_needs_the_regressor_to_start_from(collection, tmp_path, run_splatgen):
    r = run_splatgen("train", "one-step", "--data", str(collection), "--out", str(tmp_path / "r"), "--max-steps", "1",
                     "--device", "cpu")
    assert r.returncode != 0 and "--init-from" in r.stderr and "Traceback" not in r.stderr


def test_a_damaged_collection_index_is_one_line_not_a_traceback(collection, tmp_path, run_splatgen):
    import shutil

    broken = tmp_path / "q"
    shutil.copytree(collection, broken)
    index = json.loads((broken / "index.json").read_text())
    del index["image_set"]
    (broken / "index.json").write_text(json.dumps(index))
    r = run_splatgen("train", "one-step", "--data", str(broken), "--out", str(tmp_path / "r"), "--init-from",
                     str(models_dir() / "regressor"), "--max-steps", "1", "--device", "cpu")
    assert r.returncode != 0 and "names no image set" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()  # nothing written for a run that could not start
