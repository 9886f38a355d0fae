"""Turntables of several samples and transparent stills (:mod:`splatgen.core.turntable`).

Three different objects (the example bear, the bear turned 90°, the bear with its colours swapped)
in one turntable: the files are decoded by readers other than the writer (imageio-ffmpeg's ffmpeg
for MP4 and WebM, Pillow for GIF and PNG), every tile of frame 0 is compared with a direct render
of its sample at the orbit's first camera (built here from angles, not taken from the module), and
half-way round each tile shows the object's back. A cancel half-way leaves no file; a transparent
still holds the render's alpha. All sizes are small: the CPU renderer is the one measured."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatgen.core import framing
from splatgen.core.cameras import canonical_intrinsics, orbit_viewmat
from splatgen.core.errors import SettingsError, SplatgenError
from splatgen.core.generator.base import Cancelled
from splatgen.core.io import load_splats
from splatgen.core.render import render
from splatgen.core.turntable import (TurntableSettings, check_turntable_path, render_still, render_turntable,
                                     save_turntable, tile_boxes)

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "examples" / "teddy_bear.ply"
TILE = 96
BACKGROUND = (0.9, 0.95, 1.0)


@pytest.fixture(scope="module")
def three():
    """Three objects that look different from every side."""
    bear = load_splats(EXAMPLE)
    a = math.radians(90)
    turn = torch.tensor([[math.cos(a), 0, math.sin(a), 0], [0, 1, 0, 0], [-math.sin(a), 0, math.cos(a), 0],
                         [0, 0, 0, 1]], dtype=torch.float32)
    return [bear, bear.transformed(turn), replace(bear, sh=bear.sh[..., [2, 1, 0]].contiguous())]


@pytest.fixture(scope="module")
def settings():
    # 3 tiles of 96² side by side; 8 frames in 2 s (4 fps), 30° up
    return TurntableSettings(frames=8, seconds=2.0, elevation_deg=30.0, width=3 * TILE, height=TILE,
                             background=BACKGROUND)


def direct(g, azimuth_deg: float, elevation_deg: float, size: int = TILE, background=BACKGROUND) -> np.ndarray:
    """The sample rendered on its own at one orbit camera, ``(size, size, 3)`` uint8."""
    vm = orbit_viewmat(azimuth_deg, elevation_deg, framing.CAMERA_DISTANCE)
    with torch.no_grad():
        rgb = render(g, vm[None], canonical_intrinsics(size), size, size, background=background).rgb[0]
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def tile(frame: np.ndarray, k: int) -> np.ndarray:
    return frame[:, k * TILE:(k + 1) * TILE, :3]


def read_mp4(path: Path) -> list[np.ndarray]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader], meta


def test_a_turntable_of_three_samples_tiles_one_orbit(tmp_path, three, settings):
    assert tile_boxes(3, 3 * TILE, TILE) == [(k * TILE, 0, TILE, TILE) for k in range(3)]
    fronts = [direct(g, 0.0, 30.0) for g in three]
    backs = [direct(g, 180.0, 30.0) for g in three]
    assert min(psnr(fronts[0], fronts[k]) for k in (1, 2)) < 25            # three different pictures
    # MP4, decoded by ffmpeg: 8 frames of 288×96 at 4 fps
    seen = []
    out = save_turntable(tmp_path / "three.mp4", three, settings, progress=lambda d, t: seen.append((d, t)))
    assert out == tmp_path / "three.mp4" and seen[-1] == (8, 8)
    frames, meta = read_mp4(out)
    assert len(frames) == 8 and frames[0].shape == (TILE, 3 * TILE, 3) and meta["fps"] == pytest.approx(4.0)
    for k in range(3):
        assert psnr(tile(frames[0], k), fronts[k]) >= 30, k      # tile k of frame 0: sample k at the first camera
        assert psnr(tile(frames[4], k), backs[k]) >= 30, k       # half-way round: its back
        assert psnr(tile(frames[4], k), tile(frames[0], k)) < 22, k
    # PNG frames (straight colour, alpha) and GIF, read with Pillow
    save_turntable(tmp_path / "frames", three, settings.replace(transparent=True))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(8)]
    png = np.asarray(Image.open(tmp_path / "frames" / "frame_0000.png"))
    assert png.shape == (TILE, 3 * TILE, 4) and png[0, 0, 3] == 0 and png[TILE // 2, TILE // 2, 3] > 200
    a = png[..., 3:] / 255.0
    over = (png[..., :3] * a + np.array(BACKGROUND) * 255 * (1 - a) + 0.5).astype(np.uint8)
    for k in range(3):
        assert psnr(tile(over, k), fronts[k]) >= 40, k
    save_turntable(tmp_path / "three.gif", three, settings)
    gif = Image.open(tmp_path / "three.gif")
    assert gif.n_frames == 8 and gif.size == (3 * TILE, TILE) and gif.info["duration"] == 250
    gif.seek(4)
    back = np.asarray(gif.convert("RGB"))
    assert min(psnr(tile(back, k), backs[k]) for k in range(3)) >= 27       # 256 colours a frame
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_webm_keeps_alpha_and_mp4_is_filled_with_the_background(tmp_path, three, settings):
    import imageio_ffmpeg

    s = settings.replace(frames=4, seconds=1.0, transparent=True)
    save_turntable(tmp_path / "a.webm", three[:1], s.replace(width=TILE))
    # libvpx decodes VP9's alpha plane (ffmpeg's own vp9 decoder drops it)
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "a.webm"), pix_fmt="rgba", bpp=4,
                                        input_params=["-c:v", "libvpx-vp9"])
    next(reader)
    frames = [np.frombuffer(b, np.uint8).reshape(TILE, TILE, 4) for b in reader]
    assert len(frames) == 4
    assert frames[0][0, 0, 3] == 0 and frames[0][-1, -1, 3] == 0 and frames[0][TILE // 2, TILE // 2, 3] > 200
    save_turntable(tmp_path / "a.mp4", three[:1], s.replace(width=TILE))   # no alpha in MP4: the colour fills it
    mp4, _ = read_mp4(tmp_path / "a.mp4")
    assert np.abs(mp4[0][0, 0].astype(int) - np.array(BACKGROUND) * 255).max() <= 6   # H.264 in 4:2:0


def test_a_cancel_half_way_leaves_no_file(tmp_path, three, settings):
    s = settings.replace(frames=24, seconds=2.0)                # three batches of 8 frames
    for name in ("c.mp4", "c.gif", "c_frames"):
        calls = []
        with pytest.raises(Cancelled):
            save_turntable(tmp_path / name, three, s, progress=lambda d, t: calls.append(d),
                           cancelled=lambda: bool(calls))
        assert calls == [8], name                               # stopped after the first batch
    assert list(tmp_path.iterdir()) == []                        # nothing, not even a temporary file


def test_a_transparent_still_at_any_size(tmp_path, three):
    from splatgen.core.export import write_image

    vm = orbit_viewmat(20.0, 15.0, framing.CAMERA_DISTANCE)
    image = render_still(three[0], vm, 320, 200, transparent=True)
    write_image(tmp_path / "still.png", image)
    im = Image.open(tmp_path / "still.png")
    assert im.mode == "RGBA" and im.size == (320, 200)
    px = np.asarray(im)
    assert all(px[y, x, 3] == 0 for y in (0, -1) for x in (0, -1))       # the corners: nothing there
    assert px[100, 160, 3] > 200 and (px[..., 3] > 0).mean() > 0.05     # the object: covered
    # its colour is straight: composited on white it is the white render
    ref = render(three[0], vm[None], _fit(320, 200), 320, 200, background=(1.0, 1.0, 1.0)).rgb[0]
    a = px[..., 3:] / 255.0
    over = px[..., :3] * a + 255 * (1 - a)
    assert np.abs(over - ref.numpy() * 255).mean() < 1.0


def _fit(w, h):
    from splatgen.core.cameras import fit_intrinsics

    return fit_intrinsics(framing.FOV_DEG, w, h)


def test_settings_are_checked_with_a_reason(tmp_path):
    assert TurntableSettings(frames=90, seconds=3).fps == 30
    assert TurntableSettings(width=1920, height=1080).width == 1920
    for bad, word in ((dict(frames=0), "frames"), (dict(seconds=-1), "duration"), (dict(elevation_deg=90.5), "elevation"),
                      (dict(width=8), "width"), (dict(width=4096, height=4096), "too large"),
                      (dict(frames=1000, seconds=1), "frames a second"), (dict(background=(0, 0, 2)), "background"),
                      (dict(seconds=float("nan")), "duration")):
        with pytest.raises(SettingsError, match=word):
            TurntableSettings(**bad)
    odd = TurntableSettings(width=101, height=100)
    with pytest.raises(SettingsError, match="even"):
        check_turntable_path(tmp_path / "odd.mp4", odd)
    assert check_turntable_path(tmp_path / "odd.gif", odd) == ".gif"
    with pytest.raises(SplatgenError, match="unsupported"):
        check_turntable_path(tmp_path / "x.avi", odd)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(SplatgenError, match="not empty"):
        check_turntable_path(tmp_path / "full", odd)


def test_render_makes_turntables_and_transparent_stills(tmp_path, run_splatgen):
    r = run_splatgen("render", EXAMPLE, EXAMPLE, "--turntable", tmp_path / "two.mp4", "--frames", 6, "--seconds", 1,
                     "--size", "192x96", "--elevation", 30, "--background", "0,0,0", "-o", tmp_path / "first.png",
                     "--transparent")
    assert r.returncode == 0, r.stderr
    assert "two.mp4 (6 frames, 192x96, 6 fps, 2 tiles" in r.stdout
    assert "no alpha" in r.stderr                                       # --transparent and MP4: said, then filled
    frames, meta = read_mp4(tmp_path / "two.mp4")
    assert len(frames) == 6 and frames[0].shape == (96, 192, 3) and frames[0][0, 0].max() <= 3
    # frame 0 is the still's view: the same two tiles
    still = np.asarray(Image.open(tmp_path / "first.png"))
    assert still.shape == (96, 192, 4) and still[0, 0, 3] == 0
    a = still[..., 3:] / 255.0
    assert psnr((still[..., :3] * a + 0.5).astype(np.uint8), frames[0]) >= 30
    r = run_splatgen("render", EXAMPLE, "--turntable", tmp_path / "odd.mp4", "--size", 65, 64)
    assert r.returncode == 2 and "even" in r.stderr and not (tmp_path / "odd.mp4").exists()
    r = run_splatgen("render", EXAMPLE, "--size", 64, 64, "--transparent", "-o", tmp_path / "x.jpg")
    assert r.returncode == 2 and "alpha" in r.stderr


def test_grid_frame_size_fits_every_sample_a_tile_within_the_limits():
    from splatgen.core.turntable import MAX_PIXELS, MAX_SIDE, grid_frame_size, grid_shape
    assert grid_frame_size(1) == (256, 256) and grid_frame_size(2) == (512, 256)
    assert grid_frame_size(4) == (512, 512) and grid_frame_size(5) == (768, 512)
    for n in (16, 64, 256, 1000):
        w, h = grid_frame_size(n)
        cols, rows = grid_shape(n, w, h)                      # the layout the frame gets
        assert w <= MAX_SIDE and h <= MAX_SIDE and w * h <= MAX_PIXELS and cols * rows >= n
        assert w % cols == 0 and h % rows == 0 and (w // cols) % 2 == 0 and w // cols == h // rows
