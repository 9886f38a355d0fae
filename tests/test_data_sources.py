"""What every source shares in a build: reader choice, geometry groups and the split, per-object
lighting, surface samples, licence filters, ``splatgen data sources``, and the licence helpers."""

from __future__ import annotations

import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_checks import build
from splatgen.core import cameras
from splatgen.core.data import lighting as L
from splatgen.core.data.build import split_of
from splatgen.core.data.sources import installed_sources, licence_allowed, license_id, reader_for
from splatgen.core.data.sources.common import Dep5, creator_from_copyright, tint_by_alpha
from splatgen.core.data.surface import load_surface
from test_data import box_mesh, checker, write_obj

trimesh = pytest.importorskip("trimesh")


def _twins(n_needed: int = 3) -> list[str]:
    """Names ``twinK`` whose own ids hash into at least two different splits (so a split by id would
    separate them) — the group split must keep them together."""
    names, splits = [], set()
    for k in itertools.count():
        name = f"twin{k}"
        names.append(name)
        splits.add(split_of(f"lib__{name}"))
        if len(names) >= n_needed and len(splits) >= 2 and "train" in splits and len(splits - {"train"}):
            return names


def test_two_objects_of_one_group_never_straddle_splits(tmp_path):
    src = tmp_path / "lib"
    v, f, uv = box_mesh()
    twins = _twins()
    for name in twins:  # one geometry, several names (and sizes: the hash is of the normalised shape)
        scale = 1.0 + 0.5 * twins.index(name)
        write_obj(src / f"{name}.obj", v * scale, f, uv)
    write_obj(src / "other.obj", v * [1, 3, 1], f, uv)  # another shape
    out = tmp_path / "out"
    build(src, out, views=2, size=32)
    index = json.loads((out / "dataset.json").read_text())
    ids = [f"lib__{n}" for n in twins]
    assert len({index["objects"][i]["split"] for i in ids}) == 1  # all on one side
    assert {split_of(i) for i in ids} != {index["objects"][ids[0]]["split"]}  # though their own ids disagree
    rep = min(ids)
    assert index["groups"] == {rep: sorted(ids)}
    assert all(index["objects"][i]["group"] == rep for i in ids) and index["objects"]["lib__other"]["group"] == "lib__other"
    assert index["objects"][rep]["split"] == split_of(rep)
    card = (out / "README.md").read_text()
    assert f"1 groups hold {len(ids)} objects" in card and "## Sources" in card


def test_lighting_fixed_across_views_varied_across_objects(tmp_path):
    a, b = L.sample_lighting(0, "x__a"), L.sample_lighting(0, "x__b")
    assert a == L.sample_lighting(0, "x__a") and a != b and a != L.sample_lighting(1, "x__a")
    for light in (a, b, L.sample_lighting(3, "x__c")):
        el = np.degrees(np.arcsin(light.key_dir[1]))
        assert L.KEY_ELEVATION_DEG[0] - 1e-6 <= el <= L.KEY_ELEVATION_DEG[1] + 1e-6
        assert L.KELVIN_RANGE[0] <= light.kelvin <= L.KELVIN_RANGE[1]
        lum = np.dot(light.key_rgb, [0.2126, 0.7152, 0.0722])
        assert L.KEY_RANGE[0] - 1e-6 <= lum <= L.KEY_RANGE[1] + 1e-6
    warm, cold = L.kelvin_to_rgb(3500), L.kelvin_to_rgb(7500)
    assert warm[0] > warm[2] and cold[2] > cold[0]  # tungsten is orange, overcast sky blue-ish

    # a white sphere: its shading must be the same wherever a camera sees it (world-fixed lights),
    # and differ between two objects (their own lights)
    src = tmp_path / "lib"
    m = trimesh.creation.icosphere(subdivisions=3)
    for name in ("ball_a", "ball_b"):
        write_obj(src / f"{name}.obj", np.asarray(m.vertices), np.asarray(m.faces), kd=(1, 1, 1))
    out = tmp_path / "out"
    build(src, out, views=6, size=48, surface_points=0)
    for name in ("ball_a", "ball_b"):
        folder = out / f"lib__{name}"
        meta = json.loads((folder / "meta.json").read_text())
        light = L.Lighting(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in meta["lighting"].items() if k != "mode"})
        assert light == L.sample_lighting(1, f"lib__{name}")
        cams = cameras.load_transforms(folder)
        key = np.asarray(light.key_dir)
        for j in range(len(cams)):
            img = np.asarray(Image.open(folder / cams.file_paths[j])).astype(float)
            # the point of the sphere facing the key light, where the camera sees it, has the brightest colour
            V, K = cams.viewmats[j].double().numpy(), cams.Ks[j].double().numpy()
            X = key * np.linalg.norm(np.array(meta["normalization"])[:3, 0])  # the unit sphere, normalised
            cam = V[:3, :3] @ X + V[:3, 3]
            if np.dot(-(V[:3, :3].T @ V[:3, 3]) - X, key) <= 0.3:
                continue  # that point faces away from this camera
            u, v_ = (K @ cam)[:2] / cam[2]
            px = img[int(v_), int(u), :3]
            expect = np.clip((np.asarray(light.ambient_rgb) + light.sky * key[1] + np.asarray(light.key_rgb)
                              + np.asarray(light.fill_rgb) * max(np.dot(key, light.fill_dir), 0)) * 255, 0, 255)
            assert np.abs(px - expect).max() < 14, (name, j, px, expect)


def test_surface_samples_lie_on_the_normalised_mesh(tmp_path):
    src = tmp_path / "lib"
    v, f, uv = box_mesh(extents=(1.0, 0.6, 0.4))
    write_obj(src / "box.obj", v, f, uv)
    out = tmp_path / "out"
    build(src, out, views=2, size=32, surface_points=3000)
    folder = out / "lib__box"
    pts, nrm = load_surface(folder)
    assert pts.shape == nrm.shape == (3000, 3) and pts.dtype == np.float32
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-5)
    M = np.array(json.loads((folder / "meta.json").read_text())["normalization"])
    corners = v @ M[:3, :3].T + M[:3, 3]  # the box in the cameras' frame: axis-aligned, centred
    half = np.abs(corners).max(0)
    assert (np.abs(pts) <= half + 1e-5).all()  # inside the box ...
    assert (np.abs(np.abs(pts) - half) < 1e-5).any(1).all()  # ... and on one of its faces
    assert (np.abs(pts).max(0) > half * 0.98).all()  # over the whole box, not a corner of it
    # area-uniform: the big faces (1 × 0.6) get about 0.3/0.2 more samples than the small ones (0.6 × 0.4)
    on_z = (np.abs(np.abs(pts[:, 2]) - half[2]) < 1e-4).mean()
    on_x = (np.abs(np.abs(pts[:, 0]) - half[0]) < 1e-4).mean()
    assert abs(on_z / on_x - (1.0 * 0.6) / (0.6 * 0.4)) < 0.4


def test_surface_samples_skip_cut_out_texels(tmp_path):
    from splatgen.core.data.mesh_render import load_parts, normalisation_matrix, transform_parts
    from splatgen.core.data.surface import sample_surface

    tex = np.full((16, 16, 4), 255, np.uint8)
    tex[:, 8:, 3] = 0  # right half cut out
    Image.fromarray(tex, "RGBA").save(tmp_path / "t.png")
    quad = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    write_obj(tmp_path / "q.obj", quad, [[0, 1, 2], [0, 2, 3]], [[0, 0], [1, 0], [1, 1], [0, 1]], texture="t.png")
    model = load_parts(str(tmp_path), "q.obj")
    parts = transform_parts(model.parts, normalisation_matrix(model.parts))
    pts, _ = sample_surface(parts, 2000, seed=0)
    assert len(pts) == 2000 and (pts[:, 0] < 1e-6).all()  # none on the transparent half


def test_licence_filter_and_several_sources(tmp_path):
    a, b = tmp_path / "lib_a", tmp_path / "lib_b"
    v, f, uv = box_mesh()
    for root in (a, b):
        write_obj(root / "cube.obj", v, f, uv)
    # a SweetHome3D library carrying a ShareAlike licence next to a plain folder (licence unknown)
    sh3f = tmp_path / "sa.sh3f"
    with zipfile.ZipFile(sh3f, "w") as z:
        z.writestr("PluginFurnitureCatalog.properties",
                   "license=Creative Commons Attribution-ShareAlike 4.0\nid#1=x\nname#1=Crate\nmodel#1=/c/cube.obj\n")
        z.write(a / "cube.obj", "c/cube.obj")
        z.write(a / "cube.mtl", "c/cube.mtl")
    out = tmp_path / "out"
    s = build([a, b, sh3f], out, views=2, size=32, surface_points=0)
    index = json.loads((out / "dataset.json").read_text())
    assert set(index["objects"]) == {"lib_a__cube", "lib_b__cube", "sa__cube"} and s.rendered == 3
    assert index["objects"]["sa__cube"]["license"] == "CC-BY-SA-4.0"
    assert len(index["groups"]) == 1  # three copies of one cube
    out2 = tmp_path / "out2"
    build([a, sh3f], out2, views=2, size=32, surface_points=0, licences=["cc-by-sa"])
    assert set(json.loads((out2 / "dataset.json").read_text())["objects"]) == {"sa__cube"}
    assert "--licence" in (out2 / "README.md").read_text() or "cc-by-sa" in (out2 / "build_log.txt").read_text()


@pytest.mark.parametrize("licence, permissive, gpl3", [
    ("CC0-1.0", True, True), ("public-domain", True, True), ("CC-BY-3.0-US", True, True), ("CC-BY-4.0", True, True),
    ("CC-BY-SA-3.0", False, True), ("CC-BY-SA-4.0", False, True), ("CC-BY-SA", False, False),
    ("GPL-2.0-or-later", False, True), ("GPL-2.0-only", False, False), ("GPL-3.0-or-later", False, True),
    ("GPL", False, True), ("unknown", False, False),
])
def test_licence_presets(licence, permissive, gpl3):
    assert licence_allowed(licence, ["permissive"]) == permissive
    assert licence_allowed(licence, ["gpl3"]) == gpl3
    assert licence_allowed(licence, None) and licence_allowed(licence, [])


def test_licence_ids_families_and_dep5():
    assert license_id("Creative Commons Attribution-ShareAlike 3.0 Unported") == "CC-BY-SA-3.0"
    assert license_id("Creative Commons Attribution 3.0 United States license") == "CC-BY-3.0-US"
    assert license_id("GNU General Public License version 2 or later") == "GPL-2.0-or-later"
    assert licence_allowed("CC-BY-3.0-US", ["cc-by"]) and not licence_allowed("CC-BY-SA-3.0", ["cc-by"])
    assert licence_allowed("GPL-2.0-only", ["GPL-2.0-only"]) and not licence_allowed("GPL-2.0-only", ["gpl-3.0-or-later"])
    dep5 = Dep5.parse("Format: x\n\nFiles: *\nCopyright: 2006 Team\nLicense: GPL-3+\n\n"
                      "Files: data/a/*\n data/b/x.spm\nCopyright: 2019 Ann <a@b.c>\n 2020 Bo\nLicense: CC-BY-SA-4.0\n")
    assert dep5.lookup("data/a/deep/m.spm")[1] == "CC-BY-SA-4.0" and dep5.lookup("data/b/x.spm")[1] == "CC-BY-SA-4.0"
    assert dep5.lookup("data/c/y.spm") == ("2006 Team", "GPL-3.0-or-later")
    assert creator_from_copyright(dep5.lookup("data/a/m")[0]) == "Ann, Bo"


def test_tint_by_alpha_modes():
    tex = np.array([[[200, 100, 50, 0], [200, 100, 50, 255]]], np.uint8)
    mul = tint_by_alpha(tex, (0.5, 1.0, 0.0), "multiply")
    mix = tint_by_alpha(tex, (0.5, 1.0, 0.0), "mix")
    assert (mul[..., 3] == 255).all() and (mix[..., 3] == 255).all()
    assert np.array_equal(mul[0, 0, :3], [100, 100, 0]) and np.array_equal(mul[0, 1, :3], [200, 100, 50])
    assert np.array_equal(mix[0, 0, :3], [128, 255, 0]) and np.array_equal(mix[0, 1, :3], [200, 100, 50])


def test_sources_lists_packages_under_a_root(tmp_path, capsys):
    from splatgen.core.cli import main
    from test_data_sources_megaglest import g3d_file, g3d_mesh, unit_xml, wedge, write_tree

    v, f = wedge()
    write_tree(tmp_path / "root", {"techs/t/factions/x/units/u/u.xml": unit_xml([("stop", "models/u.g3d")]),
                                   "techs/t/factions/x/units/u/models/u.g3d": g3d_file(g3d_mesh([v], f))})
    rows = installed_sources([tmp_path / "root"])
    assert [(r["package"], r["objects"]) for r in rows] == [("megaglest-data", 1)]
    assert reader_for(rows[0]["path"]).READER == "megaglest"
    assert main(["data", "sources", "--root", str(tmp_path / "root")]) == 0
    printed = capsys.readouterr().out
    assert "megaglest-data" in printed and "1 objects" in printed
    assert main(["data", "sources", "--root", str(tmp_path / "nothing")]) == 1


def test_verify_notices_a_reader_that_disagrees_with_the_file(tmp_path):
    """``splatgen data verify`` on an SPM tree: the header's box agrees with one file, not the other."""
    from splatgen.core.data.verify import verify_sources
    from test_data_sources_stk import spm_bytes, wedge, write_data

    v, f = wedge()
    good = bytearray(spm_bytes(v, f))
    good[4:28] = np.concatenate([v.min(0), v.max(0)]).astype("<f4").tobytes()
    bad = spm_bytes(v, f)  # its header's box is all zeros
    node = '<scene><object type="animation" xyz="0 0 0" model="{}"/></scene>'
    write_data(tmp_path / "t", {"library/stklib_a_a/node.xml": node.format("a.spm"), "library/stklib_a_a/a.spm": bytes(good),
                                "library/stklib_b_a/node.xml": node.format("b.spm"), "library/stklib_b_a/b.spm": bad})
    report = verify_sources([tmp_path / "t"], per_source=0)
    box = next(c for c in report.checks if c.name == "vertices fill the header's box")
    assert not report.ok and box.n == 2 and not box.ok and len(box.failed) == 1 and "b.spm" in box.failed[0]
    assert "FAIL" in report.text()


def test_sample_spreads_over_a_source_and_sheets_tile_one_view_each(tmp_path):
    from splatgen.core.data.sheet import contact_sheets

    src = tmp_path / "lib"
    v, f, uv = box_mesh()
    for k in range(7):
        write_obj(src / f"box{k}.obj", v * [1 + k, 1, 1], f, uv, kd=(0.9, 0.2, 0.2))
    out = tmp_path / "out"
    build(src, out, views=1, size=24, surface_points=0, sample=3)
    index = json.loads((out / "dataset.json").read_text())
    assert sorted(index["objects"]) == ["lib__box0", "lib__box3", "lib__box6"]  # first, middle, last
    (sheet,) = contact_sheets(out, columns=2)
    img = np.asarray(Image.open(sheet))
    assert sheet.name == "sheet_folder.png" and img.shape == (2 * (24 + 12), 2 * 24, 3)
    centre = img[12, 12].astype(int)
    assert centre[0] > centre[2] + 40  # the red box drawn in its tile, on a white background
    assert (img[(24 + 12) + 12, 24 + 12] == 255).all()  # the empty fourth tile stays background
