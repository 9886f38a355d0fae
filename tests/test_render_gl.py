"""The OpenGL splat renderer (headless EGL): placement, footprint, order, background, depth, parity
with the torch reference, the reusable renderer class (own or caller's context, caller's framebuffer)."""

import math

import numpy as np
import pytest
import torch

from splatgen.core.cameras import canonical_intrinsics, intrinsics_from_fov, orbit_viewmat, orbit_viewmats
from splatgen.core.gaussians import Gaussians, quat_to_rotation_matrix, random_gaussians, rgb_to_sh0
from splatgen.core.render import gl_backend, gl_renderer, render
from splatgen.core.render.depth_shading import shade_depth
from splatgen.core.render.sh import eval_sh

if not gl_backend.available():
    pytest.skip("no headless OpenGL (EGL) context here", allow_module_level=True)


def make_gaussians(means, scales, rgbs, opacities, quats=None) -> Gaussians:
    means = torch.as_tensor(means, dtype=torch.float32).reshape(-1, 3)
    n = means.shape[0]
    quats = torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1) if quats is None else torch.as_tensor(quats).reshape(n, 4)
    return Gaussians(
        means=means,
        quats=quats.float(),
        log_scales=torch.log(torch.as_tensor(scales, dtype=torch.float32).reshape(n, 3)),
        opacity_logits=torch.logit(torch.as_tensor(opacities, dtype=torch.float32).reshape(n)),
        sh=rgb_to_sh0(torch.as_tensor(rgbs, dtype=torch.float32).reshape(n, 3))[:, None, :],
    )


def projected(g: Gaussians, vm: torch.Tensor, K: torch.Tensor, width: int, height: int):
    """Independent float64 projection of Gaussian 0: (u, v), camera z, Σ' (2×2) per the image model."""
    vm, K = vm.double(), K.double()
    R, t = vm[:3, :3], vm[:3, 3]
    m = R @ g.means[0].double() + t
    x, y, z = m.tolist()
    fx, fy, cx, cy = K[0, 0].item(), K[1, 1].item(), K[0, 2].item(), K[1, 2].item()
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = z * min(max(x / z, -(cx / fx + 0.3 * tan_x)), (width - cx) / fx + 0.3 * tan_x)
    ty = z * min(max(y / z, -(cy / fy + 0.3 * tan_y)), (height - cy) / fy + 0.3 * tan_y)
    J = torch.tensor([[fx / z, 0.0, -fx * tx / z**2], [0.0, fy / z, -fy * ty / z**2]], dtype=torch.float64)
    rot = quat_to_rotation_matrix(g.quats[0].double())
    cov3 = rot @ torch.diag(g.scales[0].double() ** 2) @ rot.T
    cov2 = J @ R @ cov3 @ R.T @ J.T + 0.3 * torch.eye(2, dtype=torch.float64)
    return (fx * x / z + cx, fy * y / z + cy), z, cov2


def alpha_moments(alpha: np.ndarray):
    """Alpha-weighted centroid (+0.5-centred pixel coordinates) and 2×2 second central moment."""
    h, w = alpha.shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    s = alpha.sum()
    u, v = (alpha * xs).sum() / s, (alpha * ys).sum() / s
    cxx = (alpha * (xs - u) ** 2).sum() / s
    cyy = (alpha * (ys - v) ** 2).sum() / s
    cxy = (alpha * (xs - u) * (ys - v)).sum() / s
    return u, v, np.array([[cxx, cxy], [cxy, cyy]])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (-10.0 * torch.log10(((a.double() - b.double()) ** 2).mean().clamp_min(1e-20))).item()


# ------------------------------------------------------------------------------------ placement
CASES = [
    # point, scales, quat, image size, intrinsics
    ((0.0, 0.0, 0.0), (0.05, 0.02, 0.03), (0.9, 0.2, -0.3, 0.1), (128, 128), None),
    ((0.21, -0.13, 0.1), (0.03, 0.015, 0.02), (0.7, -0.1, 0.5, 0.3), (160, 96), None),
    ((-0.3, 0.25, -0.2), (0.04, 0.01, 0.02), (0.2, 0.9, 0.1, -0.4), (150, 110), "offcentre"),
]


@pytest.mark.parametrize("point,scales,quat,size,kind", CASES)
def test_single_gaussian_lands_where_the_camera_projects_it(point, scales, quat, size, kind):
    w, h = size
    vm = orbit_viewmat(35.0, 15.0)
    K = intrinsics_from_fov(40.0, w, h)
    if kind == "offcentre":
        K[0, 2] += 7.3
        K[1, 2] -= 4.1
    g = make_gaussians([point], [scales], [(0.2, 0.6, 0.9)], [0.5], quats=[quat])
    out = render(g, vm[None], K[None], w, h, backend="gl", background=(0, 0, 0))
    assert out.rgb.shape == (1, h, w, 3) and out.alpha.shape == (1, h, w, 1) and out.depth.shape == (1, h, w, 1)
    assert out.rgb.dtype == torch.float32
    (u, v), _, cov = projected(g, vm, K, w, h)
    alpha = out.alpha[0, ..., 0].double().numpy()
    cu, cv, moments = alpha_moments(alpha)
    assert abs(cu - u) < 0.1 and abs(cv - v) < 0.1, ((cu, cv), (u, v))
    # Second moments ≈ Σ' (a little less: the footprint ends where α < 1/255, ~3.1σ for o = 0.5).
    np.testing.assert_allclose(moments, cov.numpy(), rtol=0.1, atol=0.05 * np.abs(cov.numpy()).max())

    # Stronger: every pixel equals the image model evaluated independently (α, footprint, no clamp).
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    d = np.stack([xs - u, ys - v], -1)
    inv = np.linalg.inv(cov.numpy())
    expect = 0.5 * np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, inv, d))
    expect[expect < 1 / 255] = 0.0
    assert np.abs(alpha - expect).max() < 1e-4


def test_image_rows_start_at_the_top():
    vm = orbit_viewmat(0.0, 0.0)
    K = canonical_intrinsics(64)
    up = make_gaussians([(0.0, 0.3, 0.0)], [(0.02, 0.02, 0.02)], [(1, 0, 0)], [0.9])  # world +Y is up
    a = render(up, vm, K, 64, 64, backend="gl").alpha[0, ..., 0]
    row = torch.nonzero(a > 0.5)[:, 0].float().mean()
    assert row < 32 - 5  # above the centre = small row index


# ------------------------------------------------------------------------------ compositing
@pytest.mark.parametrize("swap", [False, True])
def test_nearer_gaussian_dominates(swap):
    vm = orbit_viewmat(0.0, 0.0)  # camera on +Z at distance 2 looking at the origin
    K = canonical_intrinsics(64)
    z_red, z_green = (0.3, -0.3) if not swap else (-0.3, 0.3)  # world z toward the camera = nearer
    g = make_gaussians([(0, 0, z_red), (0, 0, z_green)], [(0.1, 0.1, 0.02)] * 2, [(1, 0, 0), (0, 1, 0)],
                       [0.97, 0.97])
    rgb = render(g, vm, K, 64, 64, backend="gl", background=(0, 0, 1)).rgb[0, 32, 32]
    near_c, far_c = (rgb[0], rgb[1]) if not swap else (rgb[1], rgb[0])
    assert near_c > 0.9 and far_c < 0.1, rgb
    # Exactly the compositing formula: α_near c_near + (1 - α_near) α_far c_far + T bg, α = min(0.999, o·g).
    (u, v), _, cov = projected(g[:1], vm, K, 64, 64)
    dd = np.array([32.5 - u, 32.5 - v])
    a1 = min(0.999, 0.97 * math.exp(-0.5 * dd @ np.linalg.inv(cov.numpy()) @ dd))
    (u2, v2), _, cov2 = projected(g[1:], vm, K, 64, 64)
    dd2 = np.array([32.5 - u2, 32.5 - v2])
    a2 = min(0.999, 0.97 * math.exp(-0.5 * dd2 @ np.linalg.inv(cov2.numpy()) @ dd2))
    a_near, a_far = (a1, a2) if not swap else (a2, a1)
    assert abs(near_c.item() - a_near) < 1e-4
    assert abs(far_c.item() - (1 - a_near) * a_far) < 1e-4
    assert abs(rgb[2].item() - (1 - a_near) * (1 - a_far)) < 1e-4


def test_background_where_nothing_is():
    vm = orbit_viewmat(0.0, 0.0)
    K = canonical_intrinsics(64)
    g = make_gaussians([(-0.4, -0.4, 0.0)], [(0.02, 0.02, 0.02)], [(1, 1, 1)], [0.9])
    bg = (0.2, 0.4, 0.6)
    out = render(g, vm, K, 64, 64, backend="gl", background=bg)
    empty = out.alpha[0, ..., 0] == 0
    assert empty.float().mean() > 0.9
    assert torch.allclose(out.rgb[0][empty], torch.tensor(bg).expand(int(empty.sum()), 3))
    assert (out.depth[0, ..., 0][empty] == 0).all()
    # Partly covered pixels: rgb = α c + (1 - α) bg.
    partial = (out.alpha[0, ..., 0] > 0.05) & (out.alpha[0, ..., 0] < 0.95)
    a = out.alpha[0][partial]
    assert torch.allclose(out.rgb[0][partial], a * 1.0 + (1 - a) * torch.tensor(bg), atol=1e-5)


def test_empty_and_clipped_scenes_give_background():
    vm = orbit_viewmat(0.0, 0.0)
    K = canonical_intrinsics(32)
    empty = make_gaussians(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0))
    behind = make_gaussians([(0.0, 0.0, 3.0)], [(0.1, 0.1, 0.1)], [(1, 0, 0)], [0.9])  # behind the camera
    too_near = make_gaussians([(0.0, 0.0, 1.99)], [(0.01, 0.01, 0.01)], [(1, 0, 0)], [0.9])  # z = 0.01 < near
    for g in (empty, behind, too_near):
        out = render(g, vm, K, 32, 32, backend="gl", background=(0.1, 0.2, 0.3))
        assert (out.alpha == 0).all() and (out.depth == 0).all()
        assert torch.allclose(out.rgb, torch.tensor([0.1, 0.2, 0.3]).expand_as(out.rgb))
    far_cut = render(behind.map(lambda t: t.clone()), vm, K, 32, 32, backend="gl", far=1.0)
    assert (far_cut.alpha == 0).all()


# ------------------------------------------------------------------------------------- depth
def test_depth_of_a_single_gaussian_is_its_z():
    vm = orbit_viewmat(20.0, 10.0)
    K = canonical_intrinsics(64)
    g = make_gaussians([(0.05, 0.1, -0.2)], [(0.05, 0.05, 0.05)], [(1, 1, 1)], [0.8])
    out = render(g, vm, K, 64, 64, backend="gl")
    _, z, _ = projected(g, vm, K, 64, 64)
    drawn = out.alpha[0, ..., 0] > 0
    assert drawn.sum() > 20
    assert torch.allclose(out.depth[0, ..., 0][drawn], torch.tensor(z, dtype=torch.float32), atol=1e-4)


def test_depth_is_the_alpha_weighted_mean_of_overlapping_gaussians():
    vm = orbit_viewmat(0.0, 0.0)
    K = canonical_intrinsics(64)
    g = make_gaussians([(0, 0, 0.2), (0, 0, -0.3)], [(0.1, 0.1, 0.02)] * 2, [(1, 0, 0), (0, 1, 0)], [0.6, 0.7])
    out = render(g, vm, K, 64, 64, backend="gl")
    # At the centre pixel α_k = o_k·exp(-½dᵀΣ⁻¹d); z = 1.8 (near) and 2.3 (far).
    alphas = []
    for i in range(2):
        (u, v), _, cov = projected(g[i:i + 1], vm, K, 64, 64)
        d = np.array([32.5 - u, 32.5 - v])
        alphas.append([0.6, 0.7][i] * math.exp(-0.5 * d @ np.linalg.inv(cov.numpy()) @ d))
    w_near, w_far = alphas[0], (1 - alphas[0]) * alphas[1]
    expect = (w_near * 1.8 + w_far * 2.3) / (w_near + w_far)
    assert abs(out.depth[0, 32, 32, 0].item() - expect) < 1e-4
    assert abs(out.alpha[0, 32, 32, 0].item() - (w_near + w_far)) < 1e-5


# ------------------------------------------------------------------------------- SH and batches
def test_view_dependent_colour_with_sh():
    vm = orbit_viewmat(30.0, 20.0)
    K = canonical_intrinsics(64)
    g = make_gaussians([(0.0, 0.0, 0.0)], [(0.1, 0.1, 0.1)], [(0.5, 0.5, 0.5)], [0.999]).with_sh_degree(2)
    g.sh[0, 1:] = torch.linspace(-0.4, 0.4, 24).reshape(8, 3)
    out = render(g, vm, K, 64, 64, backend="gl", background=(0, 0, 0))
    centre = torch.tensor([0.0, 0.0, 0.0])
    eye = -(vm[:3, :3].T @ vm[:3, 3])
    c = eval_sh(g.sh[0], torch.nn.functional.normalize(centre - eye, dim=0))
    a = out.alpha[0, 32, 32, 0]
    assert a > 0.95
    assert torch.allclose(out.rgb[0, 32, 32], (c * a).clamp(0, 1), atol=2e-3)
    # sh_degree=0 ignores the higher bands; the two differ.
    flat = render(g, vm, K, 64, 64, backend="gl", background=(0, 0, 0), sh_degree=0)
    assert torch.allclose(flat.rgb[0, 32, 32], torch.full((3,), 0.5) * a, atol=2e-3)
    assert (flat.rgb - out.rgb).abs().max() > 0.05
    # ...and the full degree comes back afterwards (the colours are re-uploaded per camera).
    again = render(g, vm, K, 64, 64, backend="gl", background=(0, 0, 0))
    assert torch.equal(again.rgb, out.rgb)


def test_batched_scenes_and_several_cameras():
    a, b = random_gaussians(300, seed=1), random_gaussians(300, seed=2)
    vms = orbit_viewmats([0.0, 90.0, 200.0], 15.0)
    K = canonical_intrinsics(48)
    out = render(Gaussians.stack([a, b]), vms, K, 48, 48, backend="gl")
    assert out.rgb.shape == (2, 3, 48, 48, 3) and out.depth.shape == (2, 3, 48, 48, 1)
    # Cameras are stacked in one render target: each must equal its own single-camera render (up to
    # the rasterizer's sub-pixel snapping, which depends on where in the target the image lies).
    for i, g in enumerate((a, b)):
        for c in range(3):
            one = render(g, vms[c], K, 48, 48, backend="gl")
            assert torch.allclose(one.rgb[0], out.rgb[i, c], atol=1e-4)
            assert torch.allclose(one.depth[0], out.depth[i, c], atol=1e-4)
    assert (out.rgb[0, 0] - out.rgb[0, 1]).abs().max() > 0.1


def test_a_batch_in_tiles_draws_each_scene_in_its_box():
    """Scenes of different sizes, batched (padded with invisible splats), drawn by one renderer into
    the boxes of one frame from one camera: each box holds what that scene renders alone."""
    from splatgen.core.render import batch_scenes

    scenes = [random_gaussians(n, seed=s) for n, s in ((300, 1), (120, 2), (500, 3))]
    batch = batch_scenes(scenes)
    assert batch.shape == (3, 500)
    vm, K = orbit_viewmat(40.0, 20.0).numpy(), canonical_intrinsics(40).numpy()
    tiles = [(0, 0, 40, 40), (45, 0, 40, 40), (10, 44, 40, 40)]   # any boxes of one size
    r = gl_backend.GLSplatRenderer()
    try:
        r.set_gaussians(batch)
        rgb, depth = r.render_many(vm[None], K[None], 90, 90, background=(0.2, 0.3, 0.4), outputs=("rgb", "depth"),
                                   tiles=tiles)
        for g, (x, y, w, h) in zip(scenes, tiles):
            one = render(g, torch.from_numpy(vm), torch.from_numpy(K), 40, 40, backend="gl", background=(0.2, 0.3, 0.4))
            assert np.abs(rgb[0, y:y + h, x:x + w] - one.rgb[0].numpy()).max() < 1e-4
            assert np.abs(depth[0, y:y + h, x:x + w] - one.depth[0].numpy()).max() < 1e-4
        assert np.allclose(rgb[0, 85:, :], (0.2, 0.3, 0.4)) and np.allclose(rgb[0, :44, 85:], (0.2, 0.3, 0.4))
        with pytest.raises(gl_backend.RenderError, match="tiles"):
            r.render_many(vm[None], K[None], 90, 90)                       # a batch needs its boxes
        with pytest.raises(gl_backend.RenderError, match="one size"):
            r.render_many(vm[None], K[None], 90, 90, tiles=[(0, 0, 40, 40), (45, 0, 40, 40), (0, 44, 30, 40)])
    finally:
        r.release()


def test_render_draws_a_batch_seen_by_the_same_cameras_in_frames_of_tiles(monkeypatch):
    from splatgen.core.render import batch_scenes

    monkeypatch.setattr(gl_backend, "TILED_FRAME_PIXELS", 2 * 36 * 36)      # two tiles a frame: 3 frames
    scenes = [random_gaussians(150 + 50 * s, seed=10 + s) for s in range(5)]
    vms, K = orbit_viewmats([0.0, 120.0], 10.0), canonical_intrinsics(36)
    out = render(batch_scenes(scenes), vms, K, 36, 36, backend="gl")
    assert out.rgb.shape == (5, 2, 36, 36, 3) and out.alpha.shape == (5, 2, 36, 36, 1)
    for i, g in enumerate(scenes):
        one = render(g, vms, K, 36, 36, backend="gl")
        for name in ("rgb", "alpha", "depth"):
            assert torch.allclose(getattr(out, name)[i], getattr(one, name), atol=1e-4), (i, name)


def test_a_batch_in_tiles_draws_only_its_boxes_into_a_framebuffer():
    import moderngl

    from splatgen.core.render import batch_scenes

    scenes = [random_gaussians(400, seed=s) for s in (4, 5)]
    vm, K = orbit_viewmat(-30.0, 10.0).numpy(), canonical_intrinsics(32).numpy()
    tiles = [(0, 0, 32, 32), (34, 0, 32, 32)]
    ctx = moderngl.create_context(standalone=True, backend="egl")
    try:
        with ctx:
            r = gl_backend.GLSplatRenderer(ctx)
            r.set_gaussians(batch_scenes(scenes))
            fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((70, 40), 4)])
            fbo.use()
            fbo.clear(1.0, 0.0, 0.0, 1.0)
            r.render(vm, K, 66, 32, background=(1, 1, 1), fbo=fbo, viewport_origin=(2, 4), tiles=tiles)
            img = np.frombuffer(fbo.read((0, 0, 70, 40), components=3), np.uint8).reshape(40, 70, 3)[::-1]
            rows = img[40 - 4 - 32: 40 - 4]                                 # the drawn area, top row first
            for g, (x, _, w, h) in zip(scenes, tiles):
                one = render(g, torch.from_numpy(vm), torch.from_numpy(K), 32, 32, backend="gl", background=(1, 1, 1))
                assert np.abs(rows[:, 2 + x: 2 + x + w] / 255.0 - one.rgb[0].numpy()).max() <= 0.5 / 255 + 1e-4
            assert (rows[:, 2 + 32: 2 + 34] == [255, 0, 0]).all()           # between the boxes: left as it was
            assert (img[:40 - 4 - 32] == [255, 0, 0]).all() and (img[:, :2] == [255, 0, 0]).all()
            r.release()
    finally:
        ctx.release()


def test_scene_is_uploaded_once_and_again_when_changed(monkeypatch):
    g = random_gaussians(500, seed=5)
    vm, K = orbit_viewmat(10.0, 10.0), canonical_intrinsics(32)
    first = render(g, vm, K, 32, 32, backend="gl")
    calls = []
    real = gl_backend.GLSplatRenderer.set_gaussians
    monkeypatch.setattr(gl_backend.GLSplatRenderer, "set_gaussians",
                        lambda self, gs: (calls.append(1), real(self, gs))[1])
    again = render(g, vm, K, 32, 32, backend="gl")
    assert not calls and torch.equal(first.rgb, again.rgb)
    with torch.no_grad():
        g.means.add_(torch.tensor([0.2, 0.0, 0.0]))  # in place: same object, new content
    moved = render(g, vm, K, 32, 32, backend="gl")
    assert calls == [1] and (moved.rgb - first.rgb).abs().max() > 0.1


# ------------------------------------------------------------------------------- parity
def anisotropic_scene(n: int, seed: int) -> Gaussians:
    """Needles and pancakes (axis ratios up to 20:1) at random orientations, some nearly opaque."""
    g = random_gaussians(n, seed=seed, sh_degree=1)
    gen = torch.Generator().manual_seed(seed)
    log_scales = torch.log(torch.full((n, 3), 0.03))
    thin = torch.randint(0, 3, (n,), generator=gen)
    log_scales[torch.arange(n), thin] = math.log(0.0015)              # pancakes: one thin axis
    needles = torch.rand(n, generator=gen) < 0.5
    log_scales[needles, (thin[needles] + 1) % 3] = math.log(0.003)    # needles: two thin axes
    opacity = torch.where(torch.rand(n, generator=gen) < 0.3, torch.tensor(6.0), g.opacity_logits)
    return Gaussians(g.means, g.quats, log_scales, opacity, g.sh)


def near_camera_scene(n: int, seed: int) -> Gaussians:
    """Splats 0.15–0.9 in front of the orbit camera at (azimuth 0, elevation 0), many of them big on
    screen, some outside the field of view with footprints reaching into it (the Jacobian clamp)."""
    gen = torch.Generator().manual_seed(seed)
    g = random_gaussians(n, seed=seed, scale_range=(0.003, 0.02))
    xy = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.45                 # up to ~1.2× the half fov
    depth = 0.15 + 0.75 * torch.rand(n, generator=gen)                     # camera-space z
    means = torch.stack([xy[:, 0] * depth, xy[:, 1] * depth, 2.0 - depth], -1)   # camera on +Z at 2
    return Gaussians(means, g.quats, g.log_scales, g.opacity_logits, g.sh)


PARITY_CASES = {
    # name: (scene, cameras, width, height)
    "random": (lambda: random_gaussians(2000, seed=2000),
               orbit_viewmats([15.0, 115.0, 215.0], [20.0, -5.0, 35.0]), 128, 128),
    "dense-culled": (lambda: random_gaussians(8000, seed=8000),   # occlusion culling at work
                     orbit_viewmats([15.0, 115.0], [20.0, -5.0]), 256, 192),
    "sh1": (lambda: random_gaussians(3000, seed=3001, sh_degree=1),
            orbit_viewmats([15.0, 115.0], [20.0, -5.0]), 96, 128),
    "sh3-culled": (lambda: random_gaussians(6000, seed=6003, sh_degree=3),
                   orbit_viewmats([60.0, 250.0], [30.0, -20.0]), 160, 160),
    "anisotropic": (lambda: anisotropic_scene(3000, seed=11),
                    orbit_viewmats([10.0, 130.0], [25.0, -15.0]), 160, 120),
    "near-camera": (lambda: near_camera_scene(600, seed=12), orbit_viewmat(0.0, 0.0)[None], 128, 128),
}


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_matches_the_torch_renderer(case):
    make, vms, width, height = PARITY_CASES[case]
    g = make()
    K = intrinsics_from_fov(40.0, width, height)
    gl = render(g, vms, K, width, height, backend="gl")
    ref = render(g, vms, K, width, height, backend="torch")
    assert ref.alpha.mean() > 0.05   # the scene is in view
    assert psnr(gl.rgb, ref.rgb) >= 35.0
    assert psnr(gl.alpha, ref.alpha) >= 35.0
    both = (gl.alpha > 0.05) & (ref.alpha > 0.05)
    rel = ((gl.depth - ref.depth).abs() / ref.depth.clamp_min(1e-6))[both]
    assert rel.median() < 1e-3
    assert psnr(gl.depth / ref.depth.max(), ref.depth / ref.depth.max()) >= 35.0


# ------------------------------------------------------------------------------ the class
@pytest.mark.parametrize("min_transmittance", [gl_backend.T_MIN, 1.0 / 255.0])
def test_occlusion_culling_changes_nothing_visible(min_transmittance):
    g = random_gaussians(20000, seed=7)  # dense: many splats hidden
    vm, K = orbit_viewmat(40.0, 25.0).numpy(), canonical_intrinsics(128).numpy()
    culled = gl_backend.GLSplatRenderer(occlusion_culling=True, min_transmittance=min_transmittance)
    exact = gl_backend.GLSplatRenderer(occlusion_culling=False)
    try:
        for r in (culled, exact):
            r.set_gaussians(g)
        a = culled.render_many(vm[None], K[None], 128, 128)
        b = exact.render_many(vm[None], K[None], 128, 128)
        # What culled splats could have added is below min_transmittance a pixel
        # (depth: × z ≈ 2.5 / alpha ≈ 1).
        for x, y, tol in zip(a, b, (2 * min_transmittance, 2 * min_transmittance, 10 * min_transmittance)):
            assert np.abs(x - y).max() < tol
        assert np.abs(a[0] - b[0]).max() > 0   # something was culled
    finally:
        culled.release()
        exact.release()


def test_opacity_integral_matches_quadrature():
    """∫ -ln(1 - α) over the drawn ellipse of a unit Gaussian, by a fine grid, against the closed form."""
    step = 0.01
    x = np.arange(-4.0, 4.0, step) + step / 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    for o in (0.02, 0.3, 0.9, 0.999):
        k2 = min(2 * math.log(255 * o), 3.33 ** 2)
        alpha = np.minimum(o * np.exp(-0.5 * r2), gl_backend.ALPHA_MAX)
        grid = float((-np.log1p(-alpha) * (r2 <= k2)).sum() * step * step)
        assert gl_backend.opacity_integral(np.array([o]))[0] == pytest.approx(grid, rel=0.01)
    assert gl_backend.opacity_integral(np.array([0.5 / 255]))[0] == 0.0   # never drawn


@pytest.mark.parametrize("flat", [False, True])
def test_optical_depth_follows_the_projected_footprints(flat):
    """The cheap estimate (view-averaged areas, subsampled) against the same sum over the exact
    projected covariances of the torch renderer's projection."""
    from splatgen.core.render.torch_backend import project

    g = random_gaussians(40000, scale_range=(0.004, 0.02), seed=3)   # > 16k: subsampled
    if flat:   # discs: one axis 50× thinner
        g = Gaussians(g.means, g.quats, g.log_scales - torch.tensor([0.0, 0.0, math.log(50.0)]),
                      g.opacity_logits, g.sh)
    vm, K = orbit_viewmat(40.0, 25.0), canonical_intrinsics(256)
    p = project(g, vm, K, 256, 256, 0.01, 100.0)
    a, b, c = p["cov2d"].double().numpy().T
    uv = p["mean2d"].double().numpy()
    on = ((uv >= 0) & (uv < 256)).all(1)
    box = (np.ptp(uv[on, 0]) + 1) * (np.ptp(uv[on, 1]) + 1)
    opacity = torch.sigmoid(g.opacity_logits[p["ids"]]).numpy()
    exact = float((gl_backend.opacity_integral(opacity) * np.sqrt(a * c - b * b))[on].sum() / box)
    r = gl_backend.GLSplatRenderer()
    try:
        r.set_gaussians(g)
        est = r.optical_depth(vm.numpy(), K.numpy(), 256, 256, near=0.01, far=100.0)
    finally:
        r.release()
    assert exact > 1.0
    assert exact / 1.3 < est < exact * 1.3


def test_auto_culling_culls_dense_scenes_only():
    vm, K = orbit_viewmat(40.0, 25.0).numpy(), canonical_intrinsics(128).numpy()
    dense = random_gaussians(20000, seed=7)
    light = random_gaussians(20000, scale_range=(0.001, 0.004), seed=7)
    auto, never, always = (gl_backend.GLSplatRenderer(occlusion_culling=c) for c in ("auto", False, True))
    try:
        for g, culls in ((dense, True), (light, False)):
            images = []
            for r in (auto, never, always):
                r.set_gaussians(g)
                images.append(r.render(vm, K, 128, 128))
            assert auto.last_culled is culls and always.last_culled and not never.last_culled
            # "auto" drew exactly what the mode it picked draws
            np.testing.assert_array_equal(images[0], images[2] if culls else images[1])
    finally:
        for r in (auto, never, always):
            r.release()
    with pytest.raises(gl_backend.RenderError, match="occlusion_culling"):
        gl_backend.GLSplatRenderer(occlusion_culling="sometimes")


def test_outputs_and_modes_read_back_only_what_is_asked():
    g = random_gaussians(5000, seed=4)
    vms = orbit_viewmats([20.0, 200.0], 10.0).numpy()
    K = intrinsics_from_fov(40.0, 72, 56).numpy()
    r = gl_backend.GLSplatRenderer()
    try:
        r.set_gaussians(g)
        rgb, alpha, depth = r.render_many(vms, K, 72, 56, background=(0.3, 0.5, 0.7))
        assert rgb.shape == (2, 56, 72, 3) and alpha.shape == depth.shape == (2, 56, 72, 1)
        (only_rgb,) = r.render_many(vms, K, 72, 56, background=(0.3, 0.5, 0.7), outputs=("rgb",))
        np.testing.assert_array_equal(only_rgb, rgb)   # no depth target: the same colour sums
        d, a = r.render_many(vms, K, 72, 56, outputs=("depth", "alpha"))
        np.testing.assert_array_equal(d, depth)
        np.testing.assert_array_equal(a, alpha)
        for mode, expect in (("rgb", rgb), ("alpha", alpha), ("depth", depth)):
            img = r.render(vms[1], K, 72, 56, mode=mode, background=(0.3, 0.5, 0.7))
            assert img.shape == expect[1].shape and img.dtype == np.float32
            # Up to the rasterizer's sub-pixel snapping, which depends on where in the target the
            # image lies (camera 1 sits below camera 0 in render_many's stacked target).
            np.testing.assert_allclose(img, expect[1], atol=1e-4)
        with pytest.raises(gl_backend.RenderError):
            r.render(vms[0], K, 72, 56, mode="normals")
    finally:
        r.release()


def test_resorts_only_when_the_camera_moves(monkeypatch):
    g = random_gaussians(6000, seed=9, sh_degree=1)
    K = canonical_intrinsics(64).numpy()
    a, b = orbit_viewmat(10.0, 5.0).numpy(), orbit_viewmat(100.0, 30.0).numpy()
    r = gl_backend.GLSplatRenderer()
    sorts = []
    real = gl_renderer._argsort_positive
    monkeypatch.setattr(gl_renderer, "_argsort_positive", lambda z: (sorts.append(len(z)), real(z))[1])
    try:
        r.set_gaussians(g)
        first = r.render(a, K, 64, 64)
        again = r.render(a, K, 64, 64, background=(0, 0, 0))    # same camera: no new order
        assert len(sorts) == 1
        shifted = a.copy()
        shifted[:2, 3] += 0.05                                  # moved sideways: same depth order
        r.render(shifted, K, 64, 64)
        assert len(sorts) == 1
        moved = r.render(b, K, 64, 64)
        assert len(sorts) == 2
        back = r.render(a, K, 64, 64)
        assert len(sorts) == 3
        np.testing.assert_array_equal(back, first)               # nothing stale after moving back
        assert np.abs(moved - first).max() > 0.1 and np.abs(again - first).max() > 0.1
        fresh = gl_backend.GLSplatRenderer()
        try:
            fresh.set_gaussians(g)
            np.testing.assert_array_equal(fresh.render(b, K, 64, 64), moved)
        finally:
            fresh.release()
    finally:
        r.release()


def test_sort_keys_are_the_camera_depths_of_the_splats_in_view(monkeypatch):
    from splatgen.core.cameras import camera_coordinate

    g = random_gaussians(5000, radius=2.0, seed=4)     # some splats behind the near plane / camera
    vm = orbit_viewmat(40.0, 25.0, distance=1.5).numpy().astype(np.float64)
    means = g.means.numpy().astype(np.float64)
    exact = means @ vm[:3, :3].T + vm[:3, 3]
    for i in range(3):   # the elementwise helper against the float64 matrix product
        np.testing.assert_allclose(camera_coordinate(g.means.numpy(), vm[i]), exact[:, i], rtol=0, atol=1e-5)
    keys = []
    real = gl_renderer._argsort_positive
    monkeypatch.setattr(gl_renderer, "_argsort_positive", lambda z: (keys.append(z.copy()), real(z))[1])
    r = gl_backend.GLSplatRenderer()
    try:
        r.set_gaussians(g)
        r.render(vm, canonical_intrinsics(32).numpy(), 32, 32, near=0.2, far=2.5)
    finally:
        r.release()
    z = exact[:, 2][g.opacities.numpy() * 255 >= 1]
    in_range = np.sort(z[(z > 0.2) & (z < 2.5)])
    assert 0 < len(in_range) < len(z)
    np.testing.assert_allclose(np.sort(keys[0]), in_range, rtol=0, atol=1e-5)


def test_renders_into_a_callers_context_and_framebuffer():
    import moderngl

    g = random_gaussians(3000, seed=3)
    vm, K = orbit_viewmat(60.0, 10.0).numpy(), intrinsics_from_fov(40.0, 80, 64).numpy()
    bg = (0.1, 0.2, 0.3)
    ref = render(g, torch.from_numpy(vm), torch.from_numpy(K), 80, 64, backend="gl", background=bg)
    ref_rgb, ref_alpha, ref_depth = (getattr(ref, k)[0].numpy() for k in ("rgb", "alpha", "depth"))
    ctx = moderngl.create_context(standalone=True, backend="egl")
    try:
        with ctx:   # the caller keeps its context current (as Qt does inside paintGL)
            r = gl_backend.GLSplatRenderer(ctx)
            r.set_gaussians(g)
            # A window-like RGBA8 framebuffer, bigger than the image; draw at an offset.
            fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((100, 90), 4)])
            lo, hi = 1.5, 2.6
            t = np.clip((ref_depth - lo) / (hi - lo), 0, 1)
            expect = {
                "rgb": ref_rgb,
                "alpha": np.repeat(ref_alpha, 3, -1),
                "depth": ref_alpha * (1 - t) + (1 - ref_alpha) * np.array(bg, np.float32),
            }
            # the Python twin of the shader's depth shading (the web viewer's, the gsplat viewport's)
            assert np.allclose(shade_depth(ref_depth, ref_alpha, bg, (lo, hi)), expect["depth"], atol=1e-6)
            for mode in ("rgb", "alpha", "depth"):
                for flip in (False, True):
                    fbo.use()
                    fbo.clear(0.0, 0.0, 0.0, 0.0)
                    r.render(vm, K, 80, 64, background=bg, mode=mode, fbo=fbo, flip_y=flip,
                             viewport_origin=(5, 7), depth_range=(lo, hi))
                    raw = np.frombuffer(fbo.read((0, 0, 100, 90), components=4), np.uint8)
                    raw = raw.reshape(90, 100, 4)  # bottom row first
                    img = raw[7:71, 5:85].astype(np.float32) / 255.0
                    if flip:
                        img = img[::-1]  # window rows count up from the bottom: flipped shows row 0 on top
                    # Accumulated in float32 exactly as offscreen; only the final 8-bit rounding differs.
                    assert np.abs(img[..., :3] - expect[mode]).max() <= 0.5 / 255 + 1e-4, mode
                    assert (img[..., 3] == 1.0).all()
                    assert (raw[:7] == 0).all() and (raw[:, :5] == 0).all()  # nothing outside the viewport
                    assert (raw[71:] == 0).all() and (raw[:, 85:] == 0).all()
            r.release()
    finally:
        ctx.release()


@pytest.mark.parametrize("culling", [True, False])
def test_display_8bit_draws_the_float_picture_within_rounding(culling):
    """display_8bit: on-screen rgb / alpha accumulated in RGBA8 stay within a few 8-bit steps of the
    float32 image (each blend step rounds); depth frames and offscreen images are still float32."""
    import moderngl

    g = random_gaussians(20000, seed=7)   # dense: culled when asked, many blend steps a pixel
    vm, K = orbit_viewmat(40.0, 25.0).numpy(), canonical_intrinsics(128).numpy()
    bg = (1.0, 1.0, 1.0)
    ctx = moderngl.create_context(standalone=True, backend="egl")
    try:
        with ctx:
            fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((128, 128), 4)])
            r = {bits: gl_backend.GLSplatRenderer(ctx, occlusion_culling=culling, display_8bit=bits,
                                                  min_transmittance=gl_backend.VIEW_MIN_TRANSMITTANCE)
                 for bits in (False, True)}
            for renderer in r.values():
                renderer.set_gaussians(g)
            shown = {}
            for mode in ("rgb", "alpha", "depth"):
                for bits, renderer in r.items():
                    renderer.render(vm, K, 128, 128, background=bg, mode=mode, fbo=fbo, depth_range=(1.5, 3.0))
                    assert renderer.last_culled == culling
                    raw = np.frombuffer(fbo.read(components=3), np.uint8).reshape(128, 128, 3)
                    shown[mode, bits] = raw.astype(np.float64)
            offscreen = r[True].render(vm, K, 128, 128, background=bg)
            assert np.abs(offscreen - r[False].render(vm, K, 128, 128, background=bg)).max() == 0.0
            for renderer in r.values():
                renderer.release()
        assert (shown["rgb", False] < 250).mean() > 0.2          # the scene covers the image
        for mode in ("rgb", "alpha"):
            diff = shown[mode, True] - shown[mode, False]
            mse = np.mean((diff / 255.0) ** 2)
            assert -10 * np.log10(mse) >= 40.0, mode
            assert np.abs(diff).max() <= 16 and abs(diff.mean()) < 1.0, mode
            assert np.abs(diff).max() > 0, mode   # it did accumulate in 8 bits
        assert np.array_equal(shown["depth", True], shown["depth", False])
    finally:
        ctx.release()


@pytest.mark.parametrize("display_8bit", [False, True])
def test_render_rgb8_is_the_float_picture_in_bytes(display_8bit):
    """render_rgb8: uint8 (H, W, 3), top row first, the float32 colour rounded (float accumulation)
    or within a few 8-bit steps of it (8-bit accumulation); non-square, and again at another size."""
    g = random_gaussians(3000, seed=3)
    r = gl_backend.GLSplatRenderer(display_8bit=display_8bit)
    try:
        r.set_gaussians(g)
        for w, h, az in ((80, 64, 60.0), (48, 72, 200.0)):
            vm, K = orbit_viewmat(az, 10.0).numpy(), intrinsics_from_fov(40.0, w, h).numpy()
            bg = (0.1, 0.2, 0.3)
            img = r.render_rgb8(vm, K, w, h, background=bg)
            ref = r.render(vm, K, w, h, background=bg) * 255.0
            assert img.shape == (h, w, 3) and img.dtype == np.uint8
            diff = img.astype(np.float64) - ref
            assert (np.abs(ref - np.array(bg) * 255) > 20).any(axis=-1).mean() > 0.1   # splats in view
            if display_8bit:
                assert np.sqrt(np.mean(diff ** 2)) < 2.0 and np.abs(diff).max() <= 16
            else:
                assert np.abs(diff).max() <= 0.5 + 1e-3
    finally:
        r.release()


def test_a_qt_glx_context_current_on_the_thread_changes_nothing(qapp):
    """Qt's GLX context (xcb) current on this thread: the headless renderer still draws the same
    picture, also when created then, and Qt's context is current and working again afterwards."""
    import os

    import moderngl
    from PyQt6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

    if QGuiApplication.platformName() != "xcb" or not os.environ.get("DISPLAY"):
        pytest.skip("needs Qt on X11 (scripts/test.sh runs the tests under Xvfb)")
    g = random_gaussians(400, seed=4)
    vm, K = orbit_viewmat(30.0, 15.0)[None], canonical_intrinsics(64)[None]
    reference = render(g, vm, K, 64, 64, backend="gl")
    assert reference.alpha.mean() > 0.05
    surface = QOffscreenSurface()
    surface.create()
    qt = QOpenGLContext()
    assert qt.create() and qt.makeCurrent(surface)
    try:
        again = render(g, vm, K, 64, 64, backend="gl")
        fresh = gl_backend.GLSplatRenderer()
        fresh.set_gaussians(g)
        alpha = fresh.render_many(vm.double().numpy(), K.double().numpy(), 64, 64, outputs=("alpha",))[0]
        fresh.release()
        assert QOpenGLContext.currentContext() is qt
        # Qt's context still takes GL calls: clear a framebuffer through it and read the colour back
        mgl = moderngl.create_context()
        fbo = mgl.simple_framebuffer((4, 4))
        fbo.use()
        fbo.clear(0.25, 0.5, 0.75, 1.0)
        pixel = np.frombuffer(fbo.read(components=4), np.uint8)[:4]
        fbo.release()
    finally:
        qt.doneCurrent()
    assert torch.equal(again.rgb, reference.rgb) and torch.equal(again.alpha, reference.alpha)
    assert np.array_equal(alpha, reference.alpha.numpy())
    assert np.allclose(pixel, [64, 128, 191, 255], atol=1)


_FOREIGN_EGL_CHECK = """
import moderngl, numpy as np, torch
from splatgen.core.cameras import canonical_intrinsics, orbit_viewmat
from splatgen.core.gaussians import random_gaussians
from splatgen.core.render import gl_backend, render
from splatgen.core.render.foreign_context import _egl
egl = _egl()
g = random_gaussians(400, seed=5)
vm, K = orbit_viewmat(40.0, 10.0)[None], canonical_intrinsics(64)[None]
reference = render(g, vm, K, 64, 64, backend="gl")
foreign = moderngl.create_context(standalone=True, backend="egl")  # current once created
mine = egl.eglGetCurrentContext()
assert mine
again = render(g, vm, K, 64, 64, backend="gl")
assert egl.eglGetCurrentContext() == mine, "render changed the current context"
fresh = gl_backend.GLSplatRenderer()
fresh.set_gaussians(g)
alpha = fresh.render_many(vm.double().numpy(), K.double().numpy(), 64, 64, outputs=("alpha",))[0]
assert egl.eglGetCurrentContext() == mine, "a new renderer changed the current context"
fresh.release()
assert egl.eglGetCurrentContext() == mine, "releasing a renderer changed the current context"
assert torch.equal(again.rgb, reference.rgb) and np.array_equal(alpha, reference.alpha.numpy())
print("OK")
"""


def test_a_foreign_egl_context_stays_current():
    """Another EGL context current on the thread (Qt's on Wayland): rendering, creating and releasing
    renderers leave exactly that context current, and the pictures do not change. In a process of
    its own: the second EGL context shares the process's EGL display with the suite's renderer."""
    import subprocess
    import sys

    from splatgen.core.render.foreign_context import _egl

    if _egl() is None:
        pytest.skip("no libEGL")
    r = subprocess.run([sys.executable, "-c", _FOREIGN_EGL_CHECK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stderr[-2000:]
