"""FlightGear reader: AC3D files (nested objects, polygons, lines, textures), helper filters, a data tree here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_checks import assert_vertices_in_masks, build, front_view, quad_texture, quadrants
from splatgen.core.data.parts import ModelError
from splatgen.core.data.sources import Container, discover, flightgear, load_model, reader_for


def wedge():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0.6], [0, 1.4, 0], [0.2, 0.3, 1.2]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [1, 2, 4], [2, 3, 4], [1, 3, 4]])
    return v, f


def ac_poly(name, verts, surfaces, loc=None, texture=None, uvs=None, kids: list[str] = (), mat=0, flags="0x10",
            extra="") -> str:
    """One ``OBJECT poly`` block: ``surfaces`` are vertex-index lists (polygons of any size)."""
    out = [f"OBJECT poly", f'name "{name}"', "data 5", "hello"]
    if texture:
        out.append(f'texture "{texture}"')
    if loc is not None:
        out.append("loc " + " ".join(map(str, loc)))
    out += [extra] if extra else []
    out.append(f"numvert {len(verts)}")
    out += [" ".join(f"{c:.6f}" for c in p) for p in verts]
    out.append(f"numsurf {len(surfaces)}")
    for s in surfaces:
        out += [f"SURF {flags}", f"mat {mat}", f"refs {len(s)}"]
        out += [f"{i} {uvs[i][0] if uvs is not None else 0} {uvs[i][1] if uvs is not None else 0}" for i in s]
    out.append(f"kids {len(kids)}")
    return "\n".join(out + list(kids))


def ac_file(*objects: str, trans: float = 0.0) -> str:
    mats = [f'MATERIAL "m0" rgb 0.2 0.4 0.9  amb 1 1 1  emis 0 0 0  spec 0 0 0  shi 10  trans {trans}',
            'MATERIAL "m1" rgb 1 0 0  amb 1 1 1  emis 0 0 0  spec 0 0 0  shi 10  trans 0']
    return "\n".join(["AC3Db", *mats, "OBJECT world", f"kids {len(objects)}", *objects]) + "\n"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    data = root / flightgear.INSTALLED
    for rel, content in files.items():
        f = data / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content.encode() if isinstance(content, str) else content)
    return data


def test_read_ac_nesting_fans_lines_and_errors():
    v, f = wedge()
    quad = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]
    child = ac_poly("child", quad, [[0, 1, 2, 3]], loc=(0, 0, 5))
    line = ac_poly("wire", quad, [[0, 1]], flags="0x02")
    text = ac_file(ac_poly("parent", v, f.tolist(), loc=(1, 2, 3), kids=[child, line]))
    materials, groups, n = flightgear.read_ac(text)
    assert len(materials) == 2 and np.allclose(materials[0].rgb, (0.2, 0.4, 0.9))
    assert n == len(f) + 1  # the line is not a polygon
    parent, kid = groups
    assert np.allclose(parent.positions, v[f.reshape(-1)] + (1, 2, 3))
    assert len(kid.positions) == 6  # a quad is a fan of two triangles
    assert np.allclose(kid.positions[:3], np.array(quad)[[0, 1, 2]] + (1, 2, 8))  # loc adds up down the tree
    # a parent that announces more kids than the file holds ends at the end of the file
    short = ac_file(ac_poly("p", v, f.tolist(), kids=[]))
    assert flightgear.read_ac(short.replace("kids 0", "kids 3"))[2] == len(f)
    with pytest.raises(ModelError, match="out of range"):
        flightgear.read_ac(ac_file(ac_poly("p", v, [[0, 1, 9]])))
    with pytest.raises(ModelError, match="not an AC3D"):
        flightgear.read_ac("OBJ file\nv 0 0 0\n")
    with pytest.raises(ModelError, match="not numbers"):
        flightgear.read_ac(ac_file(ac_poly("p", v, f.tolist())).replace("0.600000", "zz", 1))


def test_models_render_where_their_vertices_project_and_helpers_are_skipped(tmp_path):
    v, f = wedge()
    box = v * 0.3
    plane = ac_file(ac_poly("body", v, f.tolist(), kids=[ac_poly("tail", box, f.tolist(), loc=(0.2, 1.0, -0.5), mat=1)]))
    files = {"Models/Transport/bus.ac": plane, "Models/Weather/cloud.ac": plane, "Models/Effects/smoke.ac": plane,
             "AI/Aircraft/C1/Models/c1.ac": plane, "AI/Aircraft/C1/Models/Lights/nav.ac": plane,
             "AI/Aircraft/C1/Models/c1-shadow.ac": plane, "Models/Buildings/house.ac": plane[: len(plane) // 3],
             "Models/Buildings/empty.ac": ac_file(ac_poly("p", v, [[0, 1]], flags="0x01"))}
    write_tree(tmp_path / "deb", files)
    assert reader_for(tmp_path / "deb") is flightgear
    objects, _ = discover(tmp_path / "deb")
    ids = {o.object_id: o for o in objects}
    assert set(ids) == {"fg__Models__Transport__bus", "fg__AI__Aircraft__C1__Models__c1", "fg__Models__Buildings__house",
                        "fg__Models__Buildings__empty"}
    assert ids["fg__Models__Transport__bus"].category == "vehicle"
    assert ids["fg__AI__Aircraft__C1__Models__c1"].source == "flightgear-data-ai"
    out = tmp_path / "out"
    summary = build(tmp_path / "deb", out)
    assert summary.rendered == 2
    skipped = {k: r for k, r in summary.skipped.items()}
    assert ("truncated" in skipped["fg__Models__Buildings__house"] or "corrupt" in skipped["fg__Models__Buildings__house"]) and "no triangles" in skipped["fg__Models__Buildings__empty"]
    X = np.concatenate([v, box + (0.2, 1.0, -0.5)])
    F = np.concatenate([f, f + len(v)])
    folder = out / "fg__Models__Transport__bus"
    assert_vertices_in_masks(folder, X, F)
    with pytest.raises(AssertionError):  # the check notices a child without its parent's offset
        assert_vertices_in_masks(folder, np.concatenate([v, box]), F)
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["license"], meta["source"], meta["textured"]) == ("GPL-2.0-or-later", "flightgear-data-models", False)
    # colour-only models keep their material colours: body blue, tail red
    img = np.asarray(Image.open(folder / "rgba_000.png"))
    rgb = img[img[..., 3] == 255][:, :3].astype(int)
    assert ((rgb[:, 2] > rgb[:, 0] + 40).mean() > 0.3) and ((rgb[:, 0] > rgb[:, 2] + 40).mean() > 0.01)


@pytest.mark.parametrize("rel, skipped", [
    ("Models/Weather/cumulus.ac", True), ("Models/Astro/earth_N1.ac", True), ("AI/Aircraft/A/Models/Lights/NavL.ac", True),
    ("Models/Geometry/flare.ac", True), ("Models/Geometry/contrail_simple.ac", True), ("AI/Aircraft/A/Models/a-shadow.ac", True),
    ("Models/Geometry/KC135/KC135.ac", False), ("Models/Transport/110Bus.ac", False),
    ("Models/Airport/lighthouse.ac", False), ("Models/Maritime/Civilian/wakeboard_boat.ac", False),
])
def test_skip_reason(rel, skipped):
    assert (flightgear.skip_reason(rel) is not None) == skipped


def test_texture_upright_and_transparency(tmp_path):
    quad = [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]
    uv = [[0, 0], [1, 0], [1, 1], [0, 1]]  # AC3D: v = 1 at the image's top row
    data = write_tree(tmp_path / "t", {"Models/Generic/sign.ac": ac_file(ac_poly("q", quad, [[0, 1, 2, 3]], texture="sign.png", uvs=uv))})
    Image.fromarray(quad_texture(alpha_right=0)).save(data / "Models/Generic/sign.png")
    objects, _ = discover(tmp_path / "t")
    with Container(objects[0].container) as box:
        q = quadrants(front_view(load_model(objects[0], box)))
    tl, bl = q["top_left"], q["bottom_left"]
    assert tl[3] == 255 and tl[0] > 100 and tl[2] < 30 and bl[2] > 100 and bl[0] < 30, q  # right side up
    assert q["top_right"][3] == 0, q  # texture alpha: a cut-out (fences, trees)
    data = write_tree(tmp_path / "g", {"Models/Generic/glass.ac": ac_file(ac_poly("q", quad, [[0, 1, 2, 3]]), trans=0.5)})
    objects, _ = discover(tmp_path / "g")
    with Container(objects[0].container) as box:
        q = quadrants(front_view(load_model(objects[0], box)))
    assert 100 < q["top_left"][3] < 160, q  # trans 0.5: half transparent
