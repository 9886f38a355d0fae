"""Observed vs invented per splat (splatgen.core.provenance) and its place in the exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splatgen.core import provenance
from splatgen.core.gaussians import Gaussians
from splatgen.core.generator.base import input_camera
from splatgen.core.render import render


def _ball(n=6000, radius=0.4, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, 3, generator=g)
    means = radius * d / d.norm(dim=1, keepdim=True)
    return Gaussians.from_activated(means, torch.tensor([1.0, 0, 0, 0]).expand(n, 4), torch.full((n, 3), 0.012),
                                    torch.full((n,), 0.95), torch.full((n, 3), 0.5))


def test_the_photo_sees_the_near_half_of_a_ball_and_not_the_far_half():
    g = _ball()
    vm, K = input_camera()
    o = provenance.observed(g, vm, K, 128)
    camera = torch.linalg.inv(vm)[:3, 3]
    facing = g.means @ (camera / camera.norm())
    assert o.shape == (g.num_gaussians,) and float(o.min()) >= 0 and float(o.max()) <= 1
    assert float(o[facing > 0.1].mean()) > 0.9
    assert float(o[facing < -0.1].mean()) < 0.2 and float(o[facing < -0.1].median()) < 0.1


def test_spread_is_the_rms_distance_from_the_slots_mean():
    g = _ball(500)
    shifted = Gaussians.from_activated(g.means + torch.tensor([0.1, 0, 0]), torch.tensor([1.0, 0, 0, 0]).expand(500, 4),
                                       torch.full((500, 3), 0.012), torch.full((500,), 0.95), torch.full((500, 3), 0.5))
    torch.testing.assert_close(provenance.spread([g, g]), torch.zeros(500))
    torch.testing.assert_close(provenance.spread([g, shifted]), torch.full((500,), 0.05))
    with pytest.raises(ValueError, match="same splat slots"):
        provenance.spread([g, _ball(400)])


def test_a_regressor_samples_observed_splats_make_its_input_view_and_the_hidden_lie_behind(shipped_regressor):
    """On the sofa example: the splats the photo shows rebuild the input view; the few it hides lie
    farther from the camera. (The regressor draws most of an object's back with the front's own
    flat splats, seen from behind, so few visible splats are hidden from the photo.)"""
    from pathlib import Path

    from splatgen.core.generator import GenerationSettings
    from splatgen.core.imageprep import prepare_image

    photo = Path(__file__).resolve().parent.parent / "assets" / "examples" / "sofa.png"
    s = shipped_regressor.generate(prepare_image(photo).image, GenerationSettings())[0]
    o = provenance.observed(s.gaussians, s.input_viewmat, s.K, s.image_size)
    g = s.gaussians
    seen = o > 0.5

    def coverage(gaussians):
        return render(gaussians, s.input_viewmat[None], s.K, 128, 128).alpha[0, ..., 0] > 0.5

    full, rebuilt = coverage(g), coverage(g[seen])
    assert (full & rebuilt).sum() / (full | rebuilt).sum() > 0.9     # the photo's view, from its own splats
    visible = g.opacities > 0.1
    hidden = ~seen & visible
    z = (g.means @ s.input_viewmat[:3, :3].T + s.input_viewmat[:3, 3])[:, 2]
    assert int(hidden.sum()) > 20 and float(z[hidden].mean()) > float(z[seen & visible].mean()) + 0.04


def test_ply_and_glb_carry_observed_and_spread_read_by_independent_readers(tmp_path, generated_samples):
    import pygltflib
    from plyfile import PlyData

    from splatgen.core.export import MIN_EXPORT_OPACITY, save_sample
    from splatgen.core.io import load_splats

    a, b = generated_samples
    spread = provenance.spread([a.gaussians, b.gaussians])
    n = save_sample(tmp_path / "a.ply", a, spread=spread)
    save_sample(tmp_path / "a.glb", a, spread=spread)
    keep = a.gaussians.opacities >= MIN_EXPORT_OPACITY
    want_observed = provenance.observed(a.gaussians, a.input_viewmat, a.K, a.image_size)[keep].numpy()
    vertex = PlyData.read(str(tmp_path / "a.ply"))["vertex"]
    np.testing.assert_allclose(vertex["splatgen_observed"], want_observed, atol=1e-6)
    np.testing.assert_allclose(vertex["splatgen_spread"], spread[keep].numpy(), atol=1e-6)
    assert len(vertex["x"]) == n and load_splats(tmp_path / "a.ply").num_gaussians == n   # readers skip them
    assert 0 < float(want_observed.mean()) < 1 and float(spread[keep].max()) > 0
    doc = pygltflib.GLTF2().load(str(tmp_path / "a.glb"))
    attrs = doc.meshes[0].primitives[0].attributes
    acc = doc.accessors[getattr(attrs, "_SPLATGEN_OBSERVED")]
    view = doc.bufferViews[acc.bufferView]
    data = np.frombuffer(doc.binary_blob()[view.byteOffset:view.byteOffset + view.byteLength], "<f4")
    np.testing.assert_allclose(data, want_observed, atol=1e-6)
    assert doc.asset.extras["per_splat"] == "_SPLATGEN_OBSERVED,_SPLATGEN_SPREAD"
    assert load_splats(tmp_path / "a.glb").num_gaussians == n


def test_a_sample_set_file_round_trips_and_the_docs_example_plots_it(tmp_path, generated_samples, run_splatgen):
    import subprocess
    import sys
    from pathlib import Path

    from splatgen.core.errors import SplatFileError
    from splatgen.core.sample_sets import load_sample_set, save_sample_set

    save_sample_set(tmp_path / "set.safetensors", list(generated_samples), name="example")
    got = load_sample_set(tmp_path / "set.safetensors")
    assert got.seeds == [s.seed for s in generated_samples] and got.info["name"] == "example"
    for g, s in zip(got.gaussians, generated_samples):
        torch.testing.assert_close(g.means, s.gaussians.means.float().cpu())   # every splat, in slot order
    torch.testing.assert_close(got.spread, provenance.spread([s.gaussians for s in generated_samples]))
    (tmp_path / "foreign.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(SplatFileError, match="not"):
        load_sample_set(tmp_path / "foreign.safetensors")
    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "sample_diversity.py"
    r = subprocess.run([sys.executable, str(example), str(tmp_path / "set.safetensors"), str(tmp_path / "d.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "mean pairwise Chamfer" in r.stdout and (tmp_path / "d.png").stat().st_size > 10_000


def test_exports_leave_observed_out_where_it_cannot_be_had(tmp_path, generated_samples, monkeypatch):
    """A sample too large for the CPU renderer, or a splat file opened without a photo, still exports:
    without the splatgen_observed property rather than failing (or inventing it)."""
    import dataclasses

    from plyfile import PlyData

    from splatgen.core.export import save_sample
    from splatgen.core.render import RenderError

    a = generated_samples[0]
    no_photo = dataclasses.replace(a, info={"no_input_camera": True})
    save_sample(tmp_path / "file.ply", no_photo)
    assert "splatgen_observed" not in PlyData.read(str(tmp_path / "file.ply"))["vertex"].data.dtype.names

    def too_big(*_, **__):
        raise RenderError("61,560,333 pixel/splat pairs")

    monkeypatch.setattr(provenance, "observed", too_big)
    n = save_sample(tmp_path / "big.ply", a)
    vertex = PlyData.read(str(tmp_path / "big.ply"))["vertex"]
    assert len(vertex["x"]) == n and "splatgen_observed" not in vertex.data.dtype.names


def test_a_malformed_sample_set_is_a_clear_error(tmp_path):
    import json

    from safetensors.torch import save_file

    from splatgen.core.errors import SplatFileError
    from splatgen.core.sample_sets import FORMAT, load_sample_set

    meta = {"splatgen": json.dumps({"format": FORMAT, "image_size": "abc"})}
    save_file({"means": torch.zeros(5)}, str(tmp_path / "flat.safetensors"), metadata=meta)
    with pytest.raises(SplatFileError, match="flat.safetensors"):
        load_sample_set(tmp_path / "flat.safetensors")
