"""The pure-PyTorch rasterizer: where splats land, their footprint, compositing order, gradients."""

import math

import pytest
import torch

from splatgen.core.cameras import canonical_intrinsics, intrinsics_from_fov, orbit_viewmat
from splatgen.core.gaussians import Gaussians, random_gaussians, rgb_to_sh0
from splatgen.core.render import render
from splatgen.core.render.torch_backend import project


def one_gaussian(mean, scales, rgb=(1.0, 0.0, 0.0), opacity=0.9, quat=(1.0, 0.0, 0.0, 0.0), dtype=torch.float32):
    t = lambda v: torch.tensor([v], dtype=dtype)  # noqa: E731
    return Gaussians(
        means=t(mean), quats=t(quat), log_scales=torch.log(t(scales)),
        opacity_logits=torch.logit(torch.tensor([opacity], dtype=dtype)),
        sh=rgb_to_sh0(t(rgb))[:, None, :],
    )


def project_point(viewmat, K, point):
    cam = viewmat[:3, :3] @ torch.tensor(point) + viewmat[:3, 3]
    return (K[0, 0] * cam[0] / cam[2] + K[0, 2]).item(), (K[1, 1] * cam[1] / cam[2] + K[1, 2]).item(), cam[2].item()


def alpha_moments(alpha):
    """Centroid (u, v) in +0.5-centred pixel coordinates and the 2×2 second central moment."""
    h, w = alpha.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    m = alpha.sum()
    u, v = (alpha * xs).sum() / m, (alpha * ys).sum() / m
    cxx = (alpha * (xs - u) ** 2).sum() / m
    cyy = (alpha * (ys - v) ** 2).sum() / m
    cxy = (alpha * (xs - u) * (ys - v)).sum() / m
    return u.item(), v.item(), torch.tensor([[cxx, cxy], [cxy, cyy]])


@pytest.mark.parametrize("point", [(0.0, 0.0, 0.0), (0.21, -0.13, 0.1), (-0.3, 0.25, -0.2)])
def test_single_gaussian_lands_where_the_camera_projects_it(point):
    vm = orbit_viewmat(35.0, 15.0)
    K = intrinsics_from_fov(40.0, 160, 120)
    g = one_gaussian(point, (0.02, 0.01, 0.015), quat=(0.9, 0.2, -0.3, 0.1), opacity=0.5)
    out = render(g, vm[None], K[None], 160, 120, backend="torch", background=(0, 0, 0))
    u, v, _ = project_point(vm, K, point)
    cu, cv, moments = alpha_moments(out.alpha[0, ..., 0])
    assert abs(cu - u) < 0.05 and abs(cv - v) < 0.05
    # Footprint: the alpha's second moments are the projected covariance (truncated where α < 1/255,
    # which trims a few per cent of the mass at 3σ).
    a, b, c = project(g, vm, K, 160, 120, 0.05, 100.0)["cov2d"][0]
    cov = torch.tensor([[a, b], [b, c]])
    assert torch.allclose(moments, cov, rtol=0.12, atol=0.05), (moments, cov)
    assert torch.linalg.eigvalsh(cov).min() > 0.3  # covers at least the 0.3 px² blur


def test_footprint_scales_with_distance():
    K = canonical_intrinsics(128)
    g = one_gaussian((0.0, 0.0, 0.0), (0.03, 0.03, 0.03), opacity=0.5)
    sizes = []
    for distance in (2.0, 4.0):
        out = render(g, orbit_viewmat(0.0, 0.0, distance)[None], K[None], 128, 128, backend="torch")
        sizes.append(alpha_moments(out.alpha[0, ..., 0])[2][0, 0].item())
    # σ_px ∝ 1/distance, so the variance (minus the 0.3 px² blur) falls by 4.
    assert (sizes[0] - 0.3) / (sizes[1] - 0.3) == pytest.approx(4.0, rel=0.1)


def test_compositing_order_nearer_splat_wins():
    vm = orbit_viewmat(0.0, 0.0)  # camera on +Z looking at the origin
    K = canonical_intrinsics(64)
    red_near = one_gaussian((0.0, 0.0, 0.2), (0.1, 0.1, 0.1), rgb=(1, 0, 0), opacity=0.95)
    blue_far = one_gaussian((0.0, 0.0, -0.2), (0.1, 0.1, 0.1), rgb=(0, 0, 1), opacity=0.95)
    for first, second in ((red_near, blue_far), (blue_far, red_near)):  # input order must not matter
        out = render(Gaussians.concat([first, second]), vm[None], K[None], 64, 64, backend="torch")
        centre = out.rgb[0, 32, 32]
        assert centre[0] > 0.9 and centre[2] < 0.1
    # Move the blue one in front: now blue wins.
    blue_near = one_gaussian((0.0, 0.0, 0.4), (0.1, 0.1, 0.1), rgb=(0, 0, 1), opacity=0.95)
    out = render(Gaussians.concat([red_near, blue_near]), vm[None], K[None], 64, 64, backend="torch")
    assert out.rgb[0, 32, 32, 2] > 0.9 and out.rgb[0, 32, 32, 0] < 0.1


def test_background_depth_and_alpha():
    vm = orbit_viewmat(0.0, 0.0)
    K = canonical_intrinsics(64)
    g = one_gaussian((0.0, 0.0, 0.0), (0.05, 0.05, 0.05), rgb=(0, 1, 0), opacity=0.99)
    out = render(g, vm[None], K[None], 64, 64, backend="torch", background=(0.2, 0.4, 0.6))
    assert torch.allclose(out.rgb[0, 0, 0], torch.tensor([0.2, 0.4, 0.6]))
    assert out.alpha[0, 0, 0, 0] == 0 and out.depth[0, 0, 0, 0] == 0
    assert out.alpha[0, 32, 32, 0] > 0.9
    assert out.depth[0, 32, 32, 0].item() == pytest.approx(2.0, abs=1e-4)
    # composited: colour = α·green + (1-α)·background
    a = out.alpha[0, 32, 32, 0]
    assert torch.allclose(out.rgb[0, 32, 32], a * torch.tensor([0, 1.0, 0]) + (1 - a) * torch.tensor([0.2, 0.4, 0.6]),
                          atol=1e-5)


def test_behind_camera_is_not_drawn():
    vm = orbit_viewmat(0.0, 0.0)
    g = one_gaussian((0.0, 0.0, 3.0), (0.05, 0.05, 0.05))  # behind the camera at z=+2
    out = render(g, vm[None], canonical_intrinsics(32)[None], 32, 32, backend="torch")
    assert out.alpha.max() == 0


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    g = random_gaussians(6, radius=0.15, scale_range=(0.05, 0.1), sh_degree=1, seed=3).to(dtype=torch.float64)
    vm = orbit_viewmat(20.0, 10.0).double()
    K = intrinsics_from_fov(40.0, 24, 20).double()
    target = torch.rand(1, 20, 24, 3, dtype=torch.float64)

    def loss_of(params):
        out = render(Gaussians(**params), vm[None], K[None], 24, 20, backend="torch", background=(0.3, 0.3, 0.3))
        return ((out.rgb - target) ** 2).sum() + out.alpha.sum() + 0.1 * out.depth.sum()

    params = {k: v.clone().requires_grad_(True) for k, v in g.tensors().items()}
    loss_of(params).backward()
    eps = 1e-6
    for name, value in g.tensors().items():
        direction = torch.randn_like(value)
        plus = {k: v.clone() for k, v in g.tensors().items()}
        minus = {k: v.clone() for k, v in g.tensors().items()}
        plus[name] = value + eps * direction
        minus[name] = value - eps * direction
        with torch.no_grad():
            fd = (loss_of(plus) - loss_of(minus)) / (2 * eps)
        analytic = (params[name].grad * direction).sum()
        assert analytic.item() == pytest.approx(fd.item(), rel=1e-4, abs=1e-6), name


def test_batched_scenes_render_like_single_ones():
    a = random_gaussians(300, seed=1)
    b = random_gaussians(300, seed=2)
    vms = torch.stack([orbit_viewmat(0, 10), orbit_viewmat(90, 30)])
    K = canonical_intrinsics(48)
    both = render(Gaussians.stack([a, b]), vms, K, 48, 48, backend="torch")
    assert both.rgb.shape == (2, 2, 48, 48, 3)
    single = render(b, vms, K, 48, 48, backend="torch")
    assert torch.allclose(both.rgb[1], single.rgb)


def test_sh_colour_depends_on_view():
    g = one_gaussian((0.0, 0.0, 0.0), (0.1, 0.1, 0.1), rgb=(0.5, 0.5, 0.5), opacity=0.99)
    sh = torch.zeros(1, 4, 3)
    sh[0, 0] = g.sh[0, 0]
    sh[0, 3] = torch.tensor([1.0, 0.0, 0.0])  # x-dependent red
    g = Gaussians(g.means, g.quats, g.log_scales, g.opacity_logits, sh)
    K = canonical_intrinsics(32)
    left = render(g, orbit_viewmat(-90, 0)[None], K[None], 32, 32, backend="torch").rgb[0, 16, 16, 0]
    right = render(g, orbit_viewmat(90, 0)[None], K[None], 32, 32, backend="torch").rgb[0, 16, 16, 0]
    # Viewing direction x = -sin(az): red is C1·(-x)·1 different on the two sides.
    assert abs(left - right) > 0.5
    assert math.isfinite(left) and math.isfinite(right)


@pytest.mark.parametrize("size", [96, 256])   # 16-bit and 32-bit pixel keys
def test_pairs_are_sorted_by_pixel_then_depth(size):
    from splatgen.core.render.torch_backend import _pairs

    g = random_gaussians(3000, radius=0.4, scale_range=(0.01, 0.04), seed=5)
    vm = orbit_viewmat(20.0, 10.0)
    K = intrinsics_from_fov(45.0, size, size)
    proj = project(g, vm, K, size, size, 0.01, 100.0)
    order = torch.argsort(proj["depth"])
    gid, pix = _pairs(proj["mean2d"][order], proj["cov2d"][order], proj["conic"][order],
                      torch.sigmoid(g.opacity_logits[proj["ids"][order]]), size, size)
    assert gid.numel() > 10 * size   # the scene really overlaps itself
    assert int(pix.max()) >= size * size // 2 and int(pix.min()) >= 0
    same_pixel = pix[1:] == pix[:-1]
    assert bool((pix[1:] >= pix[:-1]).all())
    # gid indexes the depth-sorted splats: nearer first inside each pixel's run.
    assert bool((gid[1:][same_pixel] > gid[:-1][same_pixel]).all())
