"""`splatgen render -o`: an RGBA file holds straight colour (no background mixed in at the edges);
a file without alpha is composited once. Files reopened with Pillow, not with splatgen's reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "examples" / "teddy_bear.ply"


def test_rgba_png_holds_straight_colour_and_jpeg_is_composited_once(tmp_path, run_splatgen):
    paths = {k: tmp_path / f"{k}" for k in ("white.png", "black.png", "white.jpg", "flat.png")}
    for name, extra in (("white.png", ["--background", "1,1,1"]), ("black.png", ["--background", "0,0,0"]),
                        ("white.jpg", ["--background", "1,1,1"]), ("flat.png", ["--background", "1,1,1", "--no-alpha"])):
        r = run_splatgen("render", EXAMPLE, "--size", 96, 96, "--backend", "torch", *extra, "-o", paths[name])
        assert r.returncode == 0, r.stderr
    white, black = (np.asarray(Image.open(paths[k])).astype(int) for k in ("white.png", "black.png"))
    assert white.shape == (96, 96, 4) and Image.open(paths["white.png"]).mode == "RGBA"
    edge = (white[..., 3] > 0) & (white[..., 3] < 200)   # partly covered pixels: where halos show
    assert edge.sum() > 50
    # straight colour does not depend on the background at all: no white (or black) mixed in
    assert np.abs(white[edge][:, :3] - black[edge][:, :3]).max() == 0
    assert (white[white[..., 3] == 0][:, :3] == 255).all() and (black[black[..., 3] == 0][:, :3] == 0).all()
    # composited over white once (as a viewer does) it matches the composited outputs, edges included
    a = white[..., 3:] / 255.0
    over_white = white[..., :3] * a + 255 * (1 - a)
    flat = np.asarray(Image.open(paths["flat.png"])).astype(int)
    assert flat.shape == (96, 96, 3)
    assert np.abs(over_white - flat)[edge].max() <= 2.5
    jpg = np.asarray(Image.open(paths["white.jpg"]).convert("RGB")).astype(int)
    assert np.abs(jpg - flat).mean() < 3
    # the old file (colour composited on white, alpha kept) composited again is lighter at the edges
    twice = flat * a + 255 * (1 - a)
    assert (twice - flat)[edge].mean() > 10
