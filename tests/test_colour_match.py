"""Colour matching of a sample to the photo (`splatgen.core.colour_match`), on the shipped regressor's
real output for an example photo, measured on rendered pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from splatgen.core import framing
from splatgen.core.cameras import canonical_intrinsics
from splatgen.core.colour_match import apply_colour_transform, match_to_photo
from splatgen.core.evaluation import saturation_ratio
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.imageprep import prepare_image
from splatgen.core.metrics import psnr
from splatgen.core.render import render

REPO = Path(__file__).resolve().parents[1]
BG = torch.tensor(framing.BACKGROUND)


@pytest.fixture(scope="module")
def regressor_output():
    """The shipped regressor's Gaussians for armchair.png in the input camera's frame, and the photo."""
    gen = load_generator(REPO / "assets" / "models" / "regressor", device="cpu")
    photo = prepare_image(REPO / "assets" / "examples" / "armchair.png").image
    with torch.no_grad():
        g = gen.net(photo[None].float()).gaussians[0].to(dtype=torch.float32)
    return gen, g, photo


def input_view(g):
    out = render(g, torch.eye(4)[None], canonical_intrinsics(128), 128, 128, background=BG)
    return out.rgb[0], out.alpha[0]


def test_a_washed_out_sample_gets_its_colours_back(regressor_output):
    _, g, _ = regressor_output
    rgb, alpha = input_view(g)
    # the "photo": the sample's own input view; the sample: the same splats with colours washed out
    # towards grey (saturation × 0.6) and darkened, i.e. a known affine colour error
    grey = torch.full((3, 3), 1 / 3)
    wash = 0.6 * torch.eye(3) + 0.4 * grey
    washed = apply_colour_transform(g, 0.9 * wash, torch.full((3,), -0.02))
    photo = torch.cat([rgb.permute(2, 0, 1), alpha.permute(2, 0, 1)])
    w_rgb, _ = input_view(washed)
    before = float(psnr(w_rgb, rgb))
    sat_before = saturation_ratio(w_rgb, rgb, alpha)
    matched, record = match_to_photo(washed, photo, framing.BACKGROUND)
    m_rgb, m_alpha = input_view(matched)
    after = float(psnr(m_rgb, rgb))
    # the ridge keeps it from being exact: measured 34.2 dB washed out (white background included),
    # 46.8 dB matched
    assert before < 36 and after > before + 8, (before, after)
    assert sat_before < 0.75 and saturation_ratio(m_rgb, rgb, alpha) > 0.95
    assert torch.equal(m_alpha, input_view(washed)[1])               # shape and opacity untouched
    assert len(record["matrix"]) == 3 and len(record["offset"]) == 3


def test_the_view_dependent_colour_follows_the_transform():
    """Every SH band is transformed, so a render from any camera is A·colour + α·b exactly."""
    torch.manual_seed(0)
    from splatgen.core.gaussians import Gaussians
    n = 300
    g = Gaussians(torch.randn(n, 3) * 0.2 + torch.tensor([0, 0, 2.0]), torch.nn.functional.normalize(torch.randn(n, 4), dim=-1),
                  torch.full((n, 3), -3.0), torch.randn(n), torch.randn(n, 16, 3) * 0.08)  # no splat colour clamps
    a = torch.tensor([[1.1, 0.05, -0.02], [0.0, 0.9, 0.1], [0.03, -0.04, 1.05]])
    b = torch.tensor([0.02, -0.03, 0.01])
    t = apply_colour_transform(g, a, b)
    view = torch.eye(4)
    view[0, 3] = 0.1  # a camera off the input one: the higher SH bands matter
    black = torch.zeros(3)
    r0 = render(g, view[None], canonical_intrinsics(64), 64, 64, background=black, backend="torch")
    r1 = render(t, view[None], canonical_intrinsics(64), 64, 64, background=black, backend="torch")
    expected = r0.rgb[0] @ a.T + r0.alpha[0] * b
    inside = ((r0.rgb[0] > 0.02) & (r0.rgb[0] < 0.95)).all(-1) & ((expected > 0.02) & (expected < 0.95)).all(-1)
    assert inside.sum() > 200   # compare where neither render clamps colours
    assert torch.allclose(r1.rgb[0][inside], expected[inside], atol=2e-4)


def test_generators_match_by_default_and_can_be_told_not_to(regressor_output):
    gen, g, photo = regressor_output
    on = gen.generate(photo)[0]
    off = gen.generate(photo, GenerationSettings(colour_match=False))[0]
    assert "colour_match" in on.info and "colour_match" not in off.info
    assert on.settings.as_dict()["colour_match"] is True and off.settings.as_dict()["colour_match"] is False
    assert torch.equal(on.gaussians.means, off.gaussians.means)
    assert not torch.equal(on.gaussians.sh, off.gaussians.sh)
    # the uncorrected sample is exactly the network's output
    from splatgen.core.generator.base import to_object_frame
    assert torch.allclose(off.gaussians.sh, to_object_frame(g, off.settings.elevation).sh)
    # matching brings the input view closer to the photo's saturation
    img, alpha = photo[:3].permute(1, 2, 0), photo[3][..., None]

    def sat(sample):
        out = render(sample.gaussians, sample.input_viewmat[None], sample.K, 128, 128)
        return saturation_ratio(out.rgb[0], img, alpha)

    assert sat(on) > sat(off) and sat(on) > 0.95, (sat(on), sat(off))


def test_a_batch_of_samples_is_matched_in_one_render_each_with_its_own_transform(regressor_output):
    """Three differently washed copies of one sample matched as a batch: each gets what matching it
    alone gives (same transform, same splats), though they were drawn by one render call."""
    from splatgen.core import colour_match
    from splatgen.core.gaussians import Gaussians

    _, g, _ = regressor_output
    rgb, alpha = input_view(g)
    photo = torch.cat([rgb.permute(2, 0, 1), alpha.permute(2, 0, 1)])
    grey = torch.full((3, 3), 1 / 3)
    washes = [apply_colour_transform(g, f * torch.eye(3) + (1 - f) * grey, torch.full((3,), o))
              for f, o in ((0.5, 0.0), (0.8, -0.03), (1.0, 0.05))]
    batch = Gaussians.stack(washes)
    calls = []
    import splatgen.core.render as render_module
    original = render_module.render

    def counting(*args, **kwargs):
        calls.append(args[0].batch_shape)
        return original(*args, **kwargs)

    render_module.render = counting
    try:
        matched, records = colour_match.match_batch_to_photo(batch, photo, framing.BACKGROUND)
    finally:
        render_module.render = original
    # one call for the batch (a backend may draw its scenes one by one inside it), none per sample
    assert calls[0] == torch.Size([3]) and torch.Size([1]) not in calls and calls.count(torch.Size([3])) == 1, calls
    for i, w in enumerate(washes):
        alone, record = match_to_photo(w, photo, framing.BACKGROUND)
        assert records[i] == record
        assert torch.allclose(matched[i].sh, alone.sh, atol=1e-5)
    after = [float(psnr(input_view(matched[i])[0], rgb)) for i in range(3)]
    assert min(after) > 40, after


def test_the_batched_fit_is_the_ridge_least_squares_of_each_render(regressor_output):
    """The normal equations summed with the photo's mask as weights give, per render, the same transform
    as an independent ridge least squares over the object's pixels alone (augmented rows, lstsq); and a
    photo with no object pixel gives the identity."""
    from splatgen.core.colour_match import OBJECT_ALPHA, RIDGE, fit_colour_transforms

    _, g, photo = regressor_output
    rgb, alpha = input_view(g)
    renders = torch.stack([rgb, (rgb * torch.tensor([0.6, 0.9, 1.0])).clamp(0, 1), rgb.flip(0)])
    alphas = torch.stack([alpha, alpha, alpha.flip(0)])
    prgb, palpha = photo[:3].permute(1, 2, 0), photo[3]
    a, b = fit_colour_transforms(renders, alphas, prgb, palpha, BG)
    mask = palpha >= OBJECT_ALPHA
    n = int(mask.sum())
    assert n > 1000
    target = (prgb[mask] - (1 - palpha[mask])[:, None] * BG).double()
    w0 = torch.cat([torch.eye(3), torch.zeros(1, 3)]).double()
    for i in range(3):
        premult = (renders[i][mask] - (1 - alphas[i][..., 0][mask])[:, None] * BG).double()
        x = torch.cat([premult, alphas[i][..., 0][mask].double()[:, None]], 1)
        lam = (RIDGE * n) ** 0.5
        w = torch.linalg.lstsq(torch.cat([x, lam * torch.eye(4).double()]), torch.cat([target, lam * w0])).solution
        assert torch.allclose(a[i].double(), w[:3].T, atol=1e-5) and torch.allclose(b[i].double(), w[3], atol=1e-5)
    assert not torch.allclose(a[0], a[1], atol=1e-3)  # each render its own transform
    a0, b0 = fit_colour_transforms(renders, alphas, prgb, torch.zeros_like(palpha), BG)
    assert torch.equal(a0, torch.eye(3).expand(3, 3, 3)) and torch.equal(b0, torch.zeros(3, 3))
