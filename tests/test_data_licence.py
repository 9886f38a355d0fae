"""The shipped weights' licence: the LICENSE beside them, and exports that record model and licence
(``.ply`` header comments read back by plyfile, an independent reader; the ``.splat`` sidecar)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from splatgen.core.export import model_licence, save_sample
from splatgen.core.generator import GenerationSettings, models_dir
from splatgen.core.io import load_splats, read_splat
from splatgen.core.io.ply import read_ply_metadata
from splatgen.core.io.splat import read_splat_metadata, splat_sidecar


def test_license_beside_the_shipped_weights_states_one_licence_and_its_chain():
    text = (models_dir() / "LICENSE").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "SPDX-License-Identifier: GPL-3.0-or-later"
    for fact in ("CC BY-SA 3.0", "CC BY-SA 4.0", "GPL-2.0-or-later", "GPL-2.0-only", "0ad-data", "megaglest-data",
                 "supertuxkart-data", "flightgear-data", "sweethome3d-furniture", "Wildfire Games",
                 "GNU GENERAL PUBLIC LICENSE", "Version 3, 29 June 2007"):
        assert fact in text, fact


@pytest.fixture(scope="module")
def regressor_sample(shipped_regressor, example_image):
    return shipped_regressor.generate(example_image, GenerationSettings(num_samples=1, seed=0))[0]


def test_exports_record_model_and_licence(regressor_sample, tmp_path):
    plyfile = pytest.importorskip("plyfile")
    sample = regressor_sample
    assert model_licence(sample.model) == "GPL-3.0-or-later" and model_licence("someone else's model") == "unknown"

    n = save_sample(tmp_path / "s.ply", sample)
    ply = plyfile.PlyData.read(str(tmp_path / "s.ply"))  # an independent reader
    assert f"model: {sample.model}" in ply.comments and "licence: GPL-3.0-or-later" in ply.comments
    assert ply["vertex"].count == n
    camera = {"input_elevation_deg": f"{sample.info['camera']['elevation_deg']:g}", "input_fov_deg": "40"}
    assert read_ply_metadata(tmp_path / "s.ply") == {"model": sample.model, "licence": "GPL-3.0-or-later",
                                                     "frame": "ply", **camera}  # and the photo's camera
    g = load_splats(tmp_path / "s.ply")  # stored turned 180° about Z (the PLY frame), read back turned
    assert np.array_equal(g.means.numpy() * [-1, -1, 1], np.stack([ply["vertex"][c] for c in "xyz"], 1))

    save_sample(tmp_path / "s.splat", sample)
    side = splat_sidecar(tmp_path / "s.splat")
    assert side.name == "s.splat.json" and json.loads(side.read_text()) == {
        "model": sample.model, "licence": "GPL-3.0-or-later", **camera}
    assert read_splat_metadata(tmp_path / "s.splat")["licence"] == "GPL-3.0-or-later"
    assert read_splat(tmp_path / "s.splat").num_gaussians == n
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary sidecar left behind


def test_metadata_comments_stay_one_ascii_line_each(tmp_path):
    from splatgen.core.gaussians import random_gaussians
    from splatgen.core.io.ply import write_ply

    g = random_gaussians(5)
    write_ply(tmp_path / "x.ply", g, {"model": "Modèle\nend_header\nx", "bad key:": "v"})
    head = (tmp_path / "x.ply").read_bytes().split(b"end_header\n")[0]
    assert head.count(b"\n") == 3 + 2 + 17  # ply, format, 2 comments, element, 17 properties
    meta = read_ply_metadata(tmp_path / "x.ply")
    assert meta == {"model": "Mod\\xe8le end_header x", "bad_key_": "v"}
    assert load_splats(tmp_path / "x.ply").num_gaussians == 5
