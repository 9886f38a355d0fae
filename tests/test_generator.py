"""The Generator API on the shipped models: samples, seeds, progress, cancel, resampling, bad models."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
import torch

from splatgen.core.cameras import orbit_viewmat
from splatgen.core.generator import (Cancelled, GenerationSettings, LatentDiffusionGenerator, ModelError,
                                     RegressorGenerator, SettingsError, available_models, load_generator,
                                     models_dir)
from splatgen.core.metrics import psnr
from splatgen.core.render import render

STEPS = 4


@pytest.fixture(scope="module")
def gen(shipped_generator):
    return shipped_generator


@pytest.fixture(scope="module")
def image(example_image):
    return example_image


@pytest.fixture(scope="module")
def two_samples(generated_samples):
    """Seeds 3 and 4 (conftest's ``generated_samples``), denoised in :data:`STEPS` steps."""
    assert [(s.seed, s.settings.steps) for s in generated_samples] == [(3, STEPS), (4, STEPS)]
    return generated_samples


def _view(sample, viewmat=None):
    vm = sample.input_viewmat if viewmat is None else viewmat
    return render(sample.gaussians, vm[None], sample.K, 128, 128, backend="torch")


def test_default_model_is_the_latent_diffusion_model(gen):
    assert isinstance(gen, LatentDiffusionGenerator) and gen.stochastic
    # the shipped defaults: DPM-Solver++ at 20 steps (within 0.01 dB of 50 DDIM steps, benchmarks/README.md)
    assert (gen.defaults.steps, gen.defaults.scheduler) == (20, "dpm") and gen.defaults.guidance > 1.0


def test_samples_show_the_input_object_in_the_input_view(two_samples, image):
    target = image[:3].permute(1, 2, 0)
    for s in two_samples:
        assert s.gaussians.shape == (128 * 128 * 2,)
        out = _view(s)
        assert float(psnr(out.rgb[0].clamp(0, 1), target)) > 22.0
        seen, truth = out.alpha[0, ..., 0] > 0.5, image[3] > 0.5
        iou = (seen & truth).sum() / (seen | truth).sum()
        assert float(iou) > 0.75


def test_seeds_reproduce_samples_and_batching_does_not_change_them(gen, image, two_samples):
    single = gen.generate(image, GenerationSettings(num_samples=1, seed=4, steps=two_samples[1].settings.steps))[0]
    assert single.seed == two_samples[1].seed == 4
    torch.testing.assert_close(single.gaussians.means, two_samples[1].gaussians.means, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(two_samples[0].gaussians.means, two_samples[1].gaussians.means, atol=1e-3)


def test_samples_agree_on_the_input_view_and_differ_behind(two_samples):
    a, b = two_samples
    back = orbit_viewmat(180.0, 15.0)
    p_input = float(psnr(_view(a).rgb, _view(b).rgb))
    p_back = float(psnr(_view(a, back).rgb, _view(b, back).rgb))
    assert p_input > p_back + 5.0, (p_input, p_back)


def test_progress_per_step_and_cancel_within_one_step(gen, image):
    calls = []
    gen.generate(image, GenerationSettings(steps=STEPS, strength=1.0), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, STEPS) for i in range(1, STEPS + 1)]
    cancel, seen = threading.Event(), []

    def progress(done, total):
        seen.append(done)
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        gen.generate(image, GenerationSettings(steps=10, strength=1.0), progress=progress, cancel=cancel)
    assert seen == [1, 2]


def test_on_sample_hands_on_each_sample_as_it_is_decoded(gen, image, two_samples):
    calls, got = [], []
    samples = gen.generate(image, GenerationSettings(num_samples=2, seed=3, steps=STEPS),
                           progress=lambda d, t: calls.append((d, t)),
                           on_sample=lambda sample, i: got.append((i, sample, len(calls))))
    assert [i for i, _, _ in got] == [0, 1] and [s for _, s, _ in got] == samples
    # the first sample runs alone and arrives after its own steps, before the second one's
    assert got[0][2] == STEPS and got[1][2] == 2 * STEPS and calls[-1] == (2 * STEPS, 2 * STEPS)
    for a, b in zip(samples, two_samples):  # the same samples as a call without on_sample
        assert a.seed == b.seed
        torch.testing.assert_close(a.gaussians.means, b.gaussians.means, atol=1e-4, rtol=1e-4)
    cancel, kept = threading.Event(), []

    def keep_and_cancel(sample, i):
        kept.append(sample)
        cancel.set()

    with pytest.raises(Cancelled):
        gen.generate(image, GenerationSettings(num_samples=2, seed=3, steps=STEPS), cancel=cancel,
                     on_sample=keep_and_cancel)
    assert [s.seed for s in kept] == [3]


def test_resample_occluded_keeps_the_input_view_and_changes_the_back(gen, image, two_samples):
    s = two_samples[0]
    again = gen.resample(image, s, "occluded", seed=11)
    back = orbit_viewmat(180.0, 15.0)
    p_input = float(psnr(_view(s).rgb, _view(again).rgb))
    p_back = float(psnr(_view(s, back).rgb, _view(again, back).rgb))
    assert p_input >= 35.0
    assert p_back < p_input - 5.0
    assert again.info["region"] == "occluded" and again.seed == 11


def test_resample_a_region_changes_only_those_splats(gen, image, two_samples):
    s = two_samples[0]
    region = torch.zeros(s.gaussians.shape, dtype=torch.bool)
    region[: region.numel() // 2] = True
    again = gen.resample(image, s, region, seed=12)
    torch.testing.assert_close(again.gaussians.means[~region], s.gaussians.means[~region])
    assert not torch.allclose(again.gaussians.means[region], s.gaussians.means[region], atol=1e-3)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(guidance=float("nan")), dict(skip_weight=-1.0),
                                 dict(num_samples=0), dict(scheduler="euler"), dict(seed=-1), dict(strength=0.0),
                                 dict(strength=1.5), dict(strength=float("nan"))])
def test_bad_settings_are_refused(gen, image, bad):
    with pytest.raises(SettingsError):
        gen.generate(image, GenerationSettings(**bad))


def test_bad_image_shape_is_refused(gen):
    with pytest.raises(SettingsError, match="prepare"):
        gen.generate(torch.zeros(3, 64, 64))


def test_regressor_is_deterministic(image, shipped_regressor):
    reg = shipped_regressor
    assert isinstance(reg, RegressorGenerator) and not reg.stochastic
    a = reg.generate(image, GenerationSettings(seed=1))
    got = []
    b = reg.generate(image, GenerationSettings(seed=2, num_samples=3), on_sample=lambda s, i: got.append((s, i)))
    assert len(a) == len(b) == 1 and got == [(b[0], 0)]
    torch.testing.assert_close(a[0].gaussians.means, b[0].gaussians.means)
    assert float(psnr(_view(a[0]).rgb[0].clamp(0, 1), image[:3].permute(1, 2, 0))) > 22.0


def test_a_brush_finds_the_same_splats_in_a_mask_too_big_to_use_as_is(image, shipped_regressor):
    from splatgen.core.generator.resample import BRUSH_SIDE, brush_region

    sample = shipped_regressor.generate(image)[0]
    small, big = BRUSH_SIDE, 4 * BRUSH_SIDE  # the big mask is pooled down to BRUSH_SIDE first
    regions = []
    for size in (small, big):
        brush = torch.zeros(size, size, dtype=torch.bool)
        brush[:, : size // 2] = True  # the left half of the input view
        K = sample.K.clone().double()
        K[:2] *= size / sample.image_size
        regions.append(brush_region(sample.gaussians, brush.numpy(), sample.input_viewmat.numpy(), K.numpy()))
    a, b = regions
    assert a.dtype == torch.bool and a.shape == sample.gaussians.shape
    assert 0 < int(a.sum()) < a.numel() // 2  # some splats, not the hidden ones nor the right half
    assert torch.equal(a, b)


# ---------------------------------------------------------------------- the registry
def test_the_model_list_holds_the_registered_kinds_default_first(tmp_path, monkeypatch):
    from splatgen.core.generator import model_folder

    for name, kind in (("a-regressor", "regressor"), ("diffusion", "latent-diffusion"), ("future", "no-such-kind")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "splatgen.json").write_text(json.dumps({"format": 1, "kind": kind}))
    (tmp_path / "not-a-model").mkdir()
    monkeypatch.setattr(model_folder, "models_dir", lambda: tmp_path)
    assert list(available_models()) == ["diffusion", "a-regressor"]


def test_a_registry_entry_is_all_a_new_generator_needs(tmp_path, monkeypatch):
    from splatgen.core.generator import GENERATORS, Generator

    class Instant(Generator):
        kind = "instant"

        @classmethod
        def from_folder(cls, path, manifest, device):
            made = cls()
            made.name, made.device = manifest["name"], device
            return made

    folder = tmp_path / "instant"
    folder.mkdir()
    (folder / "splatgen.json").write_text(json.dumps({"format": 1, "kind": "instant", "name": "fast"}))
    with pytest.raises(ModelError, match="'kind' must be one of"):
        load_generator(folder, "cpu")
    monkeypatch.setitem(GENERATORS, "instant", Instant)
    made = load_generator(folder, "cpu")
    assert isinstance(made, Instant) and made.name == "fast" and made.path == folder
    assert made.device == torch.device("cpu")


# ---------------------------------------------------------------------- broken model folders
@pytest.fixture()
def model_copy(tmp_path):
    """A copy of the shipped set; returns its diffusion folder (the teacher regressor lies beside it)."""
    dst = tmp_path / "models"
    shutil.copytree(models_dir(), dst)
    return dst / "diffusion"


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelError, match="no such model folder"):
        load_generator(tmp_path / "nope")


def test_folder_without_manifest(tmp_path):
    with pytest.raises(ModelError, match="splatgen.json"):
        load_generator(tmp_path)


def test_corrupted_weights(model_copy):
    w = model_copy / "denoiser" / "diffusion_pytorch_model.safetensors"
    w.write_bytes(w.read_bytes()[: 1000])
    with pytest.raises(ModelError, match="cannot load the denoiser"):
        load_generator(model_copy)


def test_mismatched_denoiser(model_copy):
    cfg_path = model_copy / "denoiser" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["block_out_channels"] = [32, 64, 64]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="cannot load the denoiser"):
        load_generator(model_copy)


def test_garbage_manifest(model_copy):
    (model_copy / "splatgen.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable manifest"):
        load_generator(model_copy)


# ---------------------------------------------------------------------- the teacher regressor
def test_the_teacher_features_steer_the_samples(gen, image):
    from splatgen.core.generator.sampling import sample_latents

    assert gen.teacher is not None and not gen.teacher.config.variational
    features, condition = gen.encode(image)
    c_var = gen.var.config.channels[-1]
    assert condition.shape == (1, gen.denoiser.condition_width, 16, 16)
    assert gen.denoiser.condition_width == c_var + gen.denoiser.config.teacher_channels + \
        (gen.var.config.latent_channels if gen.denoiser.config.teacher_latent else 0)
    assert torch.equal(condition[:, :c_var], features[-1])
    noise = gen.noise(0)
    with_teacher = sample_latents(gen.denoiser, condition, steps=STEPS, noise=noise)
    blind = condition.clone()
    blind[:, c_var:] = 0
    without = sample_latents(gen.denoiser, blind, steps=STEPS, noise=noise)
    assert (with_teacher - without).abs().max() > 0.05 * with_teacher.abs().max()


def test_another_regressor_is_refused_as_the_teacher(model_copy):
    from safetensors.torch import load_file, save_file

    weights = model_copy.parent / "regressor" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 1.01
    save_file(tensors, str(weights))
    with pytest.raises(ModelError, match="not the one the denoiser was trained with"):
        load_generator(model_copy)


def test_a_missing_teacher_is_named(model_copy):
    shutil.rmtree(model_copy.parent / "regressor")
    with pytest.raises(ModelError, match="needs its teacher regressor"):
        load_generator(model_copy)
    manifest = json.loads((model_copy / "splatgen.json").read_text())
    del manifest["components"]["teacher"]
    (model_copy / "splatgen.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="names no 'teacher'"):
        load_generator(model_copy)


# ---------------------------------------------------------------------- starting from the teacher (strength)
def _novel_view(sample_or_gaussians, azimuth=150.0):
    g = getattr(sample_or_gaussians, "gaussians", sample_or_gaussians)
    vm = orbit_viewmat(azimuth, 20.0)
    from splatgen.core.generator.base import input_camera

    return render(g, vm[None], input_camera()[1], 128, 128, backend="torch").rgb[0].clamp(0, 1)


def test_the_teacher_latent_decodes_to_the_regressors_object(gen, image, shipped_regressor):
    from splatgen.core.generator.base import to_object_frame

    regressor = shipped_regressor.generate(image)[0]
    features, _ = gen.encode(image)
    z = gen.start_latent(image, 0.5)
    assert z.shape == (1, *gen.var.latent_shape)
    decoded = to_object_frame(gen.decode(features, z, 1.0)[0])
    alone = to_object_frame(gen.decode(features, gen.var.encode_views(image[None, None].float(),
                                                                       torch.eye(4)[None, None])[0], 1.0)[0])
    reference = _novel_view(regressor)
    # the teacher's latent shows the hidden side as the regressor does; the VAR reading the input alone does not
    assert float(psnr(_novel_view(decoded), reference)) > float(psnr(_novel_view(alone), reference)) + 3.0
    assert gen.start_latent(image, 1.0) is None
    if gen.denoiser.config.teacher_latent:  # the shipped denoiser reads it from its condition: the same latent
        torch.testing.assert_close(gen.start_latent(image, 0.5, gen.encode(image)[1]), z)


def test_strength_starts_the_samples_from_the_teacher(gen, image):
    z_teacher = gen.start_latent(image, 0.5)
    near = gen.generate(image, GenerationSettings(steps=10, strength=0.1, num_samples=2, seed=5))
    far = gen.generate(image, GenerationSettings(steps=10, strength=1.0, num_samples=2, seed=5))
    d_near = max(float((s.latent - z_teacher[0]).norm()) for s in near)
    d_far = min(float((s.latent - z_teacher[0]).norm()) for s in far)
    assert d_near < 0.5 * d_far
    assert not torch.equal(near[0].latent, near[1].latent)  # each seed still draws its own noise
    assert all(s.settings.strength == 0.1 for s in near)


def test_progress_counts_the_steps_that_run(gen, image):
    calls = []
    gen.generate(image, GenerationSettings(steps=10, strength=0.5, num_samples=2),
                 progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]  # two samples denoised together: one chunk of 5 steps


def test_strength_below_one_needs_a_teacher(gen):
    from splatgen.core.models.denoiser import LatentDenoiser

    plain = LatentDenoiser(block_out_channels=(32, 32), attention_head_dim=8)
    blind = LatentDiffusionGenerator(gen.var, plain, device=torch.device("cpu"))
    assert blind.defaults.strength == 1.0
    assert not blind.starts_from_teacher and gen.starts_from_teacher
    with pytest.raises(SettingsError, match="no teacher"):
        blind.validate(GenerationSettings(strength=0.5))
    with pytest.raises(SettingsError, match="teacher"):
        LatentDiffusionGenerator(gen.var, plain, device=torch.device("cpu"), defaults={"strength": 0.5})


def test_a_denoiser_with_the_teachers_latent_reads_it_from_the_condition(gen, image):
    from splatgen.core.models.denoiser import LatentDenoiser

    den = LatentDenoiser(block_out_channels=(32, 32), attention_head_dim=8, teacher_channels=128, teacher_latent=True)
    g = LatentDiffusionGenerator(gen.var, den, device=torch.device("cpu"), teacher=gen.teacher)
    _, condition = g.encode(image)
    assert condition.shape == (1, 128 + 128 + 4, 16, 16)
    torch.testing.assert_close(condition[:, 256:], gen.start_latent(image, 0.5))
    assert len(g.generate(image, GenerationSettings(steps=2, num_samples=2))) == 2
