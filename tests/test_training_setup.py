"""What makes device training fast without changing what it computes: the decoded-view cache, the
multi-tensor EMA, the training configuration shared by the command line and the benchmarks."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from splatgen.core.cli import build_parser
from splatgen.core.errors import SplatgenError
from splatgen.core.training import viewbank
from splatgen.core.training.benchmark import synthetic_bank
from splatgen.core.training.config import TrainConfig
from splatgen.core.training.trainer import EMA

FURNITURE = Path("/usr/share/sweethome3d/furniture")


@pytest.mark.skipif(not FURNITURE.is_dir(), reason="sweethome3d-furniture is not installed")
def test_the_view_cache_returns_the_decoded_split_without_decoding_again(tmp_path, monkeypatch):
    from splatgen.core.data.build import build_dataset

    root = tmp_path / "ds"
    build_dataset(FURNITURE, root, views=3, limit=3, workers=1, progress=False)
    plain = viewbank.load_view_bank(root)
    cache = tmp_path / "cache"
    first = viewbank.load_view_bank(root, cache_dir=cache)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy", ".npy"]
    assert not list(cache.glob("*.partial"))

    def no_decoding(*a, **k):
        raise AssertionError("the cached split was decoded again")

    monkeypatch.setattr("splatgen.core.data.dataset.load_split_arrays", no_decoding)
    again = viewbank.load_view_bank(root, cache_dir=cache)
    for bank in (first, again):
        assert torch.equal(bank.images, plain.images) and torch.equal(bank.viewmats, plain.viewmats)
        assert bank.names == plain.names
    # another split is another cache entry, decoded afresh
    monkeypatch.undo()
    assert viewbank.load_view_bank(root, split="train", cache_dir=cache).names == plain.names
    (root / "dataset.json").write_text((root / "dataset.json").read_text() + " ")  # the dataset changed
    viewbank.load_view_bank(root, cache_dir=cache)
    assert len(list(cache.glob("*.images.npy"))) == 2


def test_the_ema_update_is_the_per_tensor_lerp():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(4, 2))
    ema = EMA(model, decay=0.9)
    reference = copy.deepcopy(ema.model)
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(2, 3, 6, 6))  # moves BatchNorm's running statistics (buffers)
        ema.update(model, step)
        d = min(0.9, (1 + step) / (10 + step))
        with torch.no_grad():
            for r, p in zip(reference.parameters(), model.parameters()):
                r.mul_(d).add_(p, alpha=1 - d)
            for r, b in zip(reference.buffers(), model.buffers()):
                r.copy_(b)
    for a, b in zip(ema.model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert not torch.equal(ema.model[0].weight, model[0].weight)


def test_train_options_default_to_the_config_and_fill_it():
    args = build_parser().parse_args(["train", "var", "--data", "d", "--out", "o", "--batch-size", "8"])
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.field_names()})
    assert config.batch_size == 8 and config.model == "var" and config.out == Path("o")
    untouched = TrainConfig(model="var", data="d", out="o")
    for name in TrainConfig.field_names() - {"batch_size"}:
        assert getattr(config, name) == getattr(untouched, name), name
    assert config.to_json()["out"] == "o" and config.max_steps == 100_000  # neither limit given
    with pytest.raises(SplatgenError, match="mirror"):
        TrainConfig(model="var", data="d", out="o", mirror=2.0)
    with pytest.raises(SplatgenError, match="unknown model"):
        TrainConfig(model="vae", data="d", out="o")


def test_the_synthetic_bank_is_a_split_at_the_canonical_framing():
    bank = synthetic_bank(3, 5, "cpu")
    assert bank.images.shape == (3, 5, 128, 128, 4) and bank.images.dtype == torch.uint8
    alpha = bank.images[..., 3].float() / 255
    covered = (alpha > 0.5).float().mean((-1, -2))
    assert ((covered > 0.1) & (covered < 0.5)).all()  # an object in the middle, background around it
    batch = bank.sample(2, 2, torch.Generator().manual_seed(0))
    assert torch.allclose(batch.viewmats[:, 0], torch.eye(4).expand(2, 4, 4), atol=1e-5)
    assert np.isfinite(batch.rgb.numpy()).all()


def test_ms_ssim_is_one_for_equal_images_and_falls_with_noise_and_blur():
    from splatgen.core.metrics import ms_ssim

    gen = torch.Generator().manual_seed(1)
    a = torch.rand(2, 128, 128, 3, generator=gen)
    noisy = (a + 0.2 * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(a.permute(0, 3, 1, 2), 5, 1, 2).permute(0, 2, 3, 1)
    same, n, b = ms_ssim(a, a), ms_ssim(noisy, a), ms_ssim(blurred, a)
    assert same.shape == (2,) and torch.allclose(same, torch.ones(2), atol=1e-5)
    assert (n < 0.99).all() and (b < 0.99).all()
    assert (ms_ssim((a + 0.05 * torch.randn(a.shape, generator=gen)).clamp(0, 1), a) > n).all()  # less noise, closer


def test_ssim_as_banded_matmuls_equals_the_2d_gaussian_window_convolution():
    """The matmul form of SSIM's blur against an independent 2D convolution with the 11×11 window."""
    import torch.nn.functional as F

    from splatgen.core.metrics import ssim

    x = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).float()[None, None]

    def reference(a, b):  # (N, H, W, C) → (N,)
        n, h, w, c = a.shape
        X, Y = (t.permute(0, 3, 1, 2).reshape(-1, 1, h, w) for t in (a, b))
        mx, my = F.conv2d(X, window), F.conv2d(Y, window)
        sxx, syy = F.conv2d(X * X, window) - mx ** 2, F.conv2d(Y * Y, window) - my ** 2
        sxy = F.conv2d(X * Y, window) - mx * my
        s = ((2 * mx * my + 1e-4) * (2 * sxy + 9e-4)) / ((mx ** 2 + my ** 2 + 1e-4) * (sxx + syy + 9e-4))
        return s.reshape(n, c, -1).mean(dim=(1, 2))

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 40, 56, 3, generator=gen)
    b = (a + 0.1 * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    b[2] = a[2]  # identical images: SSIM 1
    got = ssim(a, b)
    assert torch.allclose(got, reference(a, b), atol=1e-5)
    assert got[2] == pytest.approx(1.0, abs=1e-6) and got[0] < 0.95
    # gradients flow to both inputs
    a.requires_grad_(True)
    ssim(a, b).sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_the_saturation_ratio_sees_washed_out_colours_and_skips_grey_objects():
    from splatgen.core.evaluation import saturation_ratio

    gen = torch.Generator().manual_seed(0)
    image = torch.rand(32, 32, 3, generator=gen)
    alpha = torch.zeros(32, 32, 1)
    alpha[8:24, 8:24] = 1.0
    grey = image.mean(-1, keepdim=True).expand(-1, -1, 3)
    assert saturation_ratio(image, image, alpha) == pytest.approx(1.0, abs=1e-3)
    assert saturation_ratio(0.5 * image + 0.5 * grey, image, alpha) < 0.7
    washed_outside = image.clone()
    washed_outside[:8] = grey[:8]  # the background rows do not count
    assert saturation_ratio(washed_outside, image, alpha) == pytest.approx(1.0, abs=1e-3)
    assert np.isnan(saturation_ratio(grey, grey, alpha))


def test_a_loss_at_twice_the_size_sees_the_gaps_between_small_splats():
    """A grid of splats, one per pixel centre, matches the views at their own size whether the splats
    are tiny or wide; rendered twice as large, the tiny ones leave gaps and only that loss shows it."""
    from types import SimpleNamespace

    from splatgen.core.gaussians import Gaussians
    from splatgen.core.training.recon import reconstruction_loss, upsampled_views
    from splatgen.core.training.viewbank import ViewBatch

    s, z, f = 24, 2.0, 24.0
    yy, xx = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
    means = torch.stack([(xx - s / 2) * z / f, (yy - s / 2) * z / f, torch.full_like(xx, z)], -1).reshape(1, -1, 3)
    n = means.shape[1]
    colour = torch.tensor([0.8, 0.2, 0.1])
    K = torch.tensor([[f, 0, s / 2], [0, f, s / 2], [0, 0, 1.0]])
    batch = ViewBatch(input=torch.zeros(1, 4, s, s), rgb=colour.expand(1, 1, s, s, 3).clone(),
                      alpha=torch.ones(1, 1, s, s, 1), viewmats=torch.eye(4)[None, None], Ks=K[None, None],
                      objects=torch.zeros(1, dtype=torch.long))
    rgb2, alpha2, K2 = upsampled_views(batch, 2)
    assert rgb2.shape == (1, 1, 2 * s, 2 * s, 3) and torch.allclose(K2[0, 0, :2], 2 * K[:2])

    def mse(pixels_sigma: float, scale: int) -> float:
        g = Gaussians.from_activated(means, torch.tensor([1.0, 0, 0, 0]).expand(1, n, 4),
                                     torch.full((1, n, 3), pixels_sigma * z / f), torch.full((1, n), 0.99),
                                     colour.expand(1, n, 3))
        config = SimpleNamespace(loss_scale=scale, zoom_weight=0.5, ssim_weight=0.2, alpha_weight=0.1)
        _, metrics = reconstruction_loss(SimpleNamespace(gaussians=g, mean=None), batch, config, "torch")
        key = "_zoom" if scale > 1 else ""
        assert (scale > 1) == ("mse_zoom" in metrics)  # the native-size term is always there
        return float(metrics["mse" + key] + metrics["alpha_l1" + key])

    tiny, wide = 0.2, 0.7  # standard deviations in pixels of the views' size
    assert mse(tiny, 2) > 4 * mse(tiny, 1)      # the gaps appear only when rendered larger
    assert mse(tiny, 2) > 4 * mse(wide, 2)      # and wide splats have none


def test_an_objects_category_comes_only_from_a_small_json_object(tmp_path):
    import os

    from splatgen.core.evaluation import EvalObject, object_category

    obj = EvalObject("x", tmp_path)
    assert object_category(obj) is None                       # no meta.json
    (tmp_path / "meta.json").write_text('{"category": "toy"}')
    assert object_category(obj) == "toy"
    (tmp_path / "meta.json").write_text("[1, 2]")
    assert object_category(obj) is None                       # not an object
    (tmp_path / "meta.json").unlink()
    os.symlink("/dev/zero", tmp_path / "meta.json")           # endless: read no further than a meta.json can be
    assert object_category(obj) is None
