"""The multi-view model (seed 003): its networks, its training stages and its generator, tiny, on the CPU.

Networks are built at test sizes (8² latents, a few thousand weights); views come from the
benchmarks' synthetic bank (soft discs seen from orbit cameras), which costs nothing to make.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from splatgen.core.errors import ModelError, SettingsError
from splatgen.core.gaussians import Gaussians
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.generator.multi_view import orbit_cameras
from splatgen.core.generator.registry import GENERATORS
from splatgen.core.models import mv_autoencoder
from splatgen.core.models.mv_decoder import MultiViewGSDecoder
from splatgen.core.models.mv_denoiser import MultiViewDenoiser
from splatgen.core.models.splatter_image import DEPTH_FAR, DEPTH_NEAR, MAX_OFFSET
from splatgen.core.models.weights import load_network
from splatgen.core.render import render
from splatgen.core.training.benchmark import synthetic_bank
from splatgen.core.training.config import TrainConfig

AE_CHANNELS = (8, 8, 8, 8, 8)  # 128² → 8² latents
NET = dict(latent_size=8, block_out_channels=(16, 32), cross_attention_dim=16, attention_heads=2, token_patch=4)


@pytest.fixture(scope="module")
def bank():
    torch.set_num_threads(2)
    return synthetic_bank(3, 6, "cpu")


def tiny_models(seed: int = 0):
    torch.manual_seed(seed)
    return (mv_autoencoder.make_autoencoder(AE_CHANNELS).eval(), MultiViewDenoiser(num_views=3, **NET).eval(),
            MultiViewGSDecoder(gaussians_per_pixel=1, **NET).eval())


def cameras(n: int) -> torch.Tensor:
    return orbit_cameras(n)[0][None]  # (1, N, 4, 4) in the input camera's frame


def test_shapes_and_the_shipped_sizes_fit_the_budget(bank):
    vae, denoiser, decoder = tiny_models()
    images = torch.rand(2, 3, 4, 128, 128)
    with torch.no_grad():
        z = mv_autoencoder.encode(vae, images)
        assert z.shape == (2, 3, 4, 8, 8) and mv_autoencoder.latent_size(vae) == 8
        assert mv_autoencoder.decode(vae, z).shape == images.shape
        vms = cameras(3).expand(2, -1, -1, -1)
        assert denoiser(z, torch.tensor([5, 900]), z[:, 0], vms).shape == z.shape
        g = decoder(z, vms, z[:, 0])
    assert g.shape == (2, 3 * 8 * 8 * 1) and bool(torch.isfinite(g.means).all())
    with torch.device("meta"):  # the shipped sizes: ≤ 12 MiB of fp16 weights for all three networks
        shipped = [mv_autoencoder.make_autoencoder(), MultiViewDenoiser(), MultiViewGSDecoder()]
    mib = sum(p.numel() for m in shipped for p in m.parameters()) * 2 / 2**20
    assert 5 < mib <= 12, mib
    assert mv_autoencoder.latent_size(shipped[0]) == 32 == shipped[1].config.latent_size == shipped[2].config.latent_size


def test_denoiser_attends_across_views_and_is_equivariant_to_their_order():
    _, denoiser, _ = tiny_models()
    g = torch.Generator().manual_seed(1)
    x, cond = torch.randn(1, 4, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    vms, t = cameras(4), torch.tensor([400])
    with torch.no_grad():
        out = denoiser(x, t, cond, vms)
        other = x.clone()
        other[:, 2] += torch.randn(4, 8, 8, generator=g)  # change view 2's input only
        changed = denoiser(other, t, cond, vms)
        perm = torch.tensor([2, 0, 3, 1])
        permuted = denoiser(x[:, perm], t, cond, vms[:, perm])
    assert (changed[:, 0] - out[:, 0]).abs().max() > 1e-3, "view 0 does not see view 2"
    torch.testing.assert_close(permuted, out[:, perm], atol=2e-5, rtol=1e-4)
    # cameras matter: the same inputs under other cameras give another prediction
    assert (permuted - out).abs().max() > 1e-3
    # the control: with diffusers' plain processor the views no longer see each other
    denoiser.unet.set_attn_processor(AttnProcessor2_0())
    with torch.no_grad():
        alone, alone_changed = denoiser(x, t, cond, vms), denoiser(other, t, cond, vms)
    torch.testing.assert_close(alone_changed[:, 0], alone[:, 0], atol=1e-6, rtol=0)


def test_decoder_gaussians_sit_on_each_views_rays_render_and_pass_gradients(bank):
    vae, _, decoder = tiny_models()
    decoder.train()
    batch = bank.sample(1, 3, torch.Generator().manual_seed(0))  # input + 2 views for the decoder, 1 held out
    with torch.no_grad():
        z = mv_autoencoder.encode(vae, torch.cat([batch.rgb, batch.alpha], -1).permute(0, 1, 4, 2, 3)[:, :3])
    g = decoder(z, batch.viewmats[:, :3], z[:, 0])
    # view k's 64 Gaussians lie on view k's rays: in its camera frame, within the depth range (+ offsets)
    for k in range(3):
        means = g.means[0, 64 * k:64 * (k + 1)].detach()
        cam = means @ batch.viewmats[0, k, :3, :3].T + batch.viewmats[0, k, :3, 3]
        assert bool((cam[:, 2] > DEPTH_NEAR - MAX_OFFSET).all() and (cam[:, 2] < DEPTH_FAR + MAX_OFFSET).all())
    out = render(g, batch.viewmats, batch.Ks, 128, 128, backend="torch")
    assert out.rgb.shape == (1, 4, 128, 128, 3) and out.depth.shape == (1, 4, 128, 128, 1)
    assert float(out.alpha.detach().max()) > 0.05, "the decoded Gaussians cover nothing"
    (out.rgb - batch.rgb).square().mean().backward()
    for name in ("unet.conv_in.weight", "unet.conv_out.weight", "tokens.proj.weight"):
        grad = dict(decoder.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().max()) > 0, name
    attn = [p.grad for n, p in decoder.named_parameters() if "attn1.to_q" in n]
    assert attn and all(gr is not None and float(gr.abs().max()) > 0 for gr in attn)


def test_lora_step_trains_only_the_adapters_and_the_export_merges_them(tmp_path):
    from splatgen.core.training.multiview_diffusion import add_lora, export_distilled

    _, denoiser, _ = tiny_models()
    base = {k: v.clone() for k, v in denoiser.state_dict().items()}
    adapters = add_lora(denoiser, rank=2)
    assert adapters and all(p.requires_grad for p in adapters)
    assert sum(p.requires_grad for p in denoiser.parameters()) == len(adapters)
    g = torch.Generator().manual_seed(2)
    x, cond, vms, t = torch.randn(1, 3, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g), cameras(3), \
        torch.tensor([300])
    with torch.no_grad():
        before = denoiser(x, t, cond, vms)
    opt = torch.optim.AdamW(adapters, lr=0.05)
    for _ in range(2):  # the first step moves B away from 0, the second then moves the output
        opt.zero_grad()
        (denoiser(x, t, cond, vms) - torch.randn(x.shape, generator=g)).square().mean().backward()
        opt.step()
    after_state = denoiser.state_dict()
    for key, value in base.items():  # every base weight bit-identical (peft keeps them as base_layer.*)
        moved = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(after_state.get(key, after_state.get(moved)), value), key
    assert any(float(p.detach().abs().max()) > 0 for n, p in denoiser.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        adapted = denoiser(x, t, cond, vms)
    assert (adapted - before).abs().max() > 1e-3
    export_distilled(denoiser, tmp_path / "merged")
    merged = load_network(MultiViewDenoiser, tmp_path / "merged")  # strict: a plain denoiser, no lora keys
    with torch.no_grad():
        out = merged(x, t, cond, vms)
    assert (out - adapted).abs().max() < 0.1 * (adapted - before).abs().max()


# ------------------------------------------------------------------ the training stages
@pytest.fixture(scope="module")
def trained(bank, tmp_path_factory):
    """One step of each stage (autoencoder, denoiser, decoder) at test sizes, exported: {stage: folder}."""
    from splatgen.core.training.multiview import run_stage

    root = tmp_path_factory.mktemp("mv-train")
    folders = {}

    def run(model: str, **kw):
        config = TrainConfig(model=model, data=Path("unused"), out=root / model, export=str(root / "export" / model),
                             device="cpu", batch_size=1, num_views=2, num_targets=1, log_every=1, max_steps=1,
                             checkpoint_minutes=1e9, **kw)
        folders[model] = Path(config.export)
        return run_stage(config, lambda device, rank=0, world_size=1: bank)

    run("mv-autoencoder", mv_channels=list(AE_CHANNELS))
    ae = str(folders["mv-autoencoder"])
    run("mv-denoiser", mv_channels=[16, 32], autoencoder=ae)
    run("mv-decoder", mv_channels=[16, 32], autoencoder=ae, gaussians_per_pixel=1)
    folders["runs"] = root
    return folders


def test_stages_log_and_the_export_is_the_ema_in_fp16(trained, bank):
    root = trained["runs"]
    for model, keys in (("mv-autoencoder", ("loss", "psnr", "kl")), ("mv-denoiser", ("loss",)),
                        ("mv-decoder", ("loss", "psnr_seen", "psnr_held_out"))):
        record = json.loads((root / model / "log.jsonl").read_text().splitlines()[-1])
        assert record["step"] == 1 and all(torch.isfinite(torch.tensor(record[k])) for k in keys), record
    den_cfg = json.loads((trained["mv-denoiser"] / "config.json").read_text())
    assert den_cfg["trained_steps"] == 1 and den_cfg["latent_scale"] != 1.0  # measured on the data
    batch = bank.sample(1, 2, torch.Generator().manual_seed(3))
    images = torch.cat([batch.rgb, batch.alpha], -1).permute(0, 1, 4, 2, 3)
    for model, cls in (("mv-autoencoder", mv_autoencoder.AutoencoderKL), ("mv-denoiser", MultiViewDenoiser),
                       ("mv-decoder", MultiViewGSDecoder)):
        exported = load_network(cls, trained[model])
        ema = load_network(cls, root / model / "checkpoint" / "ema").half().float()
        assert exported.config == ema.config or model == "mv-autoencoder"
        with torch.no_grad():
            z = mv_autoencoder.encode(load_network(mv_autoencoder.AutoencoderKL, trained["mv-autoencoder"]), images)
            if model == "mv-autoencoder":
                a, b = mv_autoencoder.decode(exported, z), mv_autoencoder.decode(ema, z)
            elif model == "mv-denoiser":
                t = torch.tensor([500])
                a, b = exported(z, t, z[:, 0], batch.viewmats), ema(z, t, z[:, 0], batch.viewmats)
            else:
                a, b = exported(z, batch.viewmats, z[:, 0]).means, ema(z, batch.viewmats, z[:, 0]).means
        assert torch.equal(a, b), model


def test_distill_stage_trains_adapters_over_the_frozen_denoiser_and_reports(trained, bank, tmp_path, monkeypatch):
    from splatgen.core.training import multiview_diffusion
    from splatgen.core.training.multiview import run_stage

    monkeypatch.setattr(multiview_diffusion, "REPORT_OBJECTS", 1)
    monkeypatch.setattr(multiview_diffusion, "REPORT_STEPS", 2)
    config = TrainConfig(model="mv-distill", data=Path("unused"), out=tmp_path / "d", export=str(tmp_path / "merged"),
                         device="cpu", batch_size=1, num_views=2, num_targets=1, log_every=1, max_steps=1, lr=1e-2,
                         warmup=1, cond_dropout=0.0, checkpoint_minutes=1e9, lora_rank=2,
                         autoencoder=str(trained["mv-autoencoder"]), denoiser=str(trained["mv-denoiser"]),
                         decoder=str(trained["mv-decoder"]))
    result = run_stage(config, lambda device, rank=0, world_size=1: bank)
    for key in ("consistency_psnr", "render_psnr", "generated_psnr"):
        assert 0 < result[f"{key}_before"] < 100 and 0 < result[f"{key}_after"] < 100
    record = json.loads((tmp_path / "d" / "log.jsonl").read_text().splitlines()[1])
    assert all(record[k] > 0 for k in ("loss_3d", "real_mse", "generated_mse", "depth_l1")), record
    base = load_network(MultiViewDenoiser, trained["mv-denoiser"]).state_dict()
    from safetensors.torch import load_file

    trainedw = load_file(str(tmp_path / "d" / "checkpoint" / "model" / "diffusion_pytorch_model.safetensors"))
    lora = [k for k in trainedw if "lora_" in k]
    assert lora and any(float(trainedw[k].abs().max()) > 0 for k in lora if "lora_B" in k)
    for key, value in base.items():
        moved = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(trainedw.get(key, trainedw.get(moved)), value), key
    merged = load_network(MultiViewDenoiser, tmp_path / "merged")
    assert merged.config.distilled_steps == 1 and merged.config.trained_steps == 1


# ------------------------------------------------------------------ the generator
def write_model_folder(root: Path, folders: dict[str, Path] | None = None) -> Path:
    """A model folder: the given component folders, or tiny random networks saved here."""
    root.mkdir(parents=True, exist_ok=True)
    if folders is None:
        vae, denoiser, decoder = tiny_models(seed=4)
        for name, net in (("autoencoder", vae), ("denoiser", denoiser), ("decoder", decoder)):
            net.save_pretrained(root / name, safe_serialization=True)
        folders = {k: root / k for k in ("autoencoder", "denoiser", "decoder")}
    manifest = {"format": 1, "kind": "multi-view", "name": "mv-test",
                "components": {k: str(Path(v).resolve()) for k, v in folders.items()}, "defaults": {"steps": 2}}
    (root / "splatgen.json").write_text(json.dumps(manifest))
    return root


def test_generator_makes_gaussians_and_views_through_the_api(bank, tmp_path):
    assert GENERATORS["multi-view"].kind == "multi-view"
    gen = load_generator(write_model_folder(tmp_path / "model"), device="cpu")
    assert gen.stochastic and gen.num_views == 3 and gen.defaults.steps == 2
    image = bank.sample(1, 1, torch.Generator().manual_seed(0)).input[0]
    calls, streamed = [], []
    samples = gen.generate(image, GenerationSettings(num_samples=2, seed=7), progress=lambda d, n: calls.append((d, n)),
                           on_sample=lambda s, i: streamed.append(i))
    assert len(samples) == 2 and streamed == [0, 1] and calls[-1] == (4, 4)  # 2 batches (first alone) × 2 steps
    for s in samples:
        assert s.gaussians.shape == (3 * 8 * 8,) and bool(torch.isfinite(s.gaussians.means).all())
        # in the object frame: the input camera sits at the canonical distance from the origin
        centre = torch.linalg.inv(s.input_viewmat)[:3, 3]
        assert abs(float(centre.norm()) - 2.0) < 1e-4
        views = s.info["views"]
        assert views.shape == (3, 4, 128, 128) and 0 <= float(views.min()) and float(views.max()) <= 1
        assert s.info["view_viewmats"].shape == (3, 4, 4)
        torch.testing.assert_close(s.info["view_viewmats"][0], s.input_viewmat)  # view 0 is the input view
    again = gen.generate(image, GenerationSettings(num_samples=1, seed=8))[0]
    assert torch.equal(again.gaussians.means, samples[1].gaussians.means), "a seed is not reproducible"
    assert not torch.equal(samples[0].gaussians.means, samples[1].gaussians.means)
    with pytest.raises(SettingsError, match="strength"):
        gen.generate(image, GenerationSettings(strength=0.5))
    with pytest.raises(SettingsError, match="redraw"):
        gen.resample(image, samples[0])


def test_generator_from_trained_stages_and_a_mismatched_folder(trained, bank, tmp_path):
    folders = {"autoencoder": trained["mv-autoencoder"], "denoiser": trained["mv-denoiser"],
               "decoder": trained["mv-decoder"]}
    gen = load_generator(write_model_folder(tmp_path / "trained", folders), device="cpu")
    image = bank.sample(1, 1, torch.Generator().manual_seed(1)).input[0]
    sample = gen.generate(image, GenerationSettings(seed=3))[0]
    assert sample.gaussians.shape == (2 * 8 * 8,) and sample.info["views"].shape == (2, 4, 128, 128)
    # a decoder for 16² latents does not fit this autoencoder's 8² ones: one clear error naming the folder
    MultiViewGSDecoder(**{**NET, "latent_size": 16}).save_pretrained(tmp_path / "big", safe_serialization=True)
    bad = write_model_folder(tmp_path / "bad", {**folders, "decoder": tmp_path / "big"})
    with pytest.raises(ModelError, match="decoder"):
        load_generator(bad, device="cpu")


def test_cli_trains_a_stage_and_resume_continues_exactly(trained, bank, tmp_path, monkeypatch, capsys):
    """``splatgen train mv-denoiser`` end to end (the dataset loader swapped for the synthetic bank):
    one run of 2 steps and one of 1 + 1 resumed steps end with the same weights."""
    from safetensors.torch import load_file

    from splatgen.core.cli import main
    from splatgen.core.training import viewbank

    monkeypatch.setattr(viewbank, "load_view_bank", lambda path, device="cpu", **kw: bank)
    common = ["--data", tmp_path, "--autoencoder", trained["mv-autoencoder"], "--device", "cpu", "--batch-size", 1,
              "--num-views", 2, "--log-every", 1, "--mv-channels", 16, 32, "--warmup", 1]

    def train(run: str, *args) -> int:
        return main([str(a) for a in ("train", "mv-denoiser", "-o", tmp_path / run, *args, *common)])

    assert train("straight", "--max-steps", 2) == 0
    assert train("split", "--max-steps", 1) == 0
    assert train("split", "--max-steps", 2, "--resume") == 0
    assert "training mv-denoiser" in capsys.readouterr().out

    def weights(run):
        return load_file(str(tmp_path / run / "checkpoint" / "model" / "diffusion_pytorch_model.safetensors"))

    a, b = weights("straight"), weights("split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resuming changed the result"
    cfg = [json.loads((tmp_path / r / "checkpoint" / "model" / "config.json").read_text()) for r in ("straight", "split")]
    assert cfg[0]["latent_scale"] == cfg[1]["latent_scale"] and cfg[1]["trained_steps"] == 2
    # a stage without the networks it builds on stops with one clear message
    capsys.readouterr()
    assert main(["train", "mv-decoder", "-o", str(tmp_path / "x"), "--data", str(tmp_path), "--device", "cpu"]) == 2
    assert "pass --autoencoder MODEL_FOLDER" in capsys.readouterr().err


def test_view_consistency_compares_the_generated_views_with_renders_of_the_splats_at_their_cameras(bank, tmp_path):
    from splatgen.core.evaluation import view_consistency

    gen = load_generator(write_model_folder(tmp_path / "model"), device="cpu")
    image = bank.sample(1, 1, torch.Generator().manual_seed(2)).input[0]
    sample = gen.generate(image, GenerationSettings(seed=5))[0]
    # an opaque blob off the orbit's axis, so that each camera sees it elsewhere
    n = 200
    pts = torch.randn(n, 3, generator=torch.Generator().manual_seed(0)) * 0.05 + torch.tensor([0.25, 0.0, 0.0])
    sample.gaussians = Gaussians.from_activated(pts, torch.tensor([1.0, 0, 0, 0]).expand(n, 4),
                                                torch.full((n, 3), 0.03), torch.full((n,), 0.95),
                                                torch.tensor([0.9, 0.2, 0.1]).expand(n, 3))
    sample.info.pop("colour_match", None)  # those splats' colours are not matched to anything
    vms = sample.info["view_viewmats"]
    own = render(sample.gaussians, vms, sample.K, 128, 128)
    rgba = torch.cat([own.rgb, own.alpha], -1).permute(0, 3, 1, 2).clamp(0, 1)
    sample.info["views"] = rgba
    assert view_consistency(sample) > 60  # views that are the splats' own renders agree to rounding
    sample.info["views"] = rgba.roll(1, dims=0)  # the right images at the wrong cameras
    rolled = view_consistency(sample)
    assert rolled < 40
    # colours matched to the photo after decoding: the views are compared under the same transform
    from splatgen.core.colour_match import apply_colour_transform

    a, b = torch.diag(torch.tensor([0.7, 1.2, 0.9])), torch.tensor([0.08, -0.05, 0.02])
    sample.info["views"] = rgba
    sample.gaussians = apply_colour_transform(sample.gaussians, a, b)
    sample.info["colour_match"] = {"matrix": a.tolist(), "offset": b.tolist()}
    assert view_consistency(sample) > 45
    del sample.info["colour_match"]
    assert view_consistency(sample) < 35
    del sample.info["views"]
    assert view_consistency(sample) is None
