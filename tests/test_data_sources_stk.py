"""SuperTuxKart reader: SPM meshes, library scenes (LOD, collision shapes), karts, items, licences."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_checks import assert_vertices_in_masks, build, front_view, quad_texture, quadrants
from splatgen.core.data.parts import ModelError
from splatgen.core.data.sources import Container, discover, load_model, reader_for, supertuxkart


def pack_normal(n) -> int:
    q = [int(round(c * 511)) & 0x3FF for c in n]
    return q[0] | q[1] << 10 | q[2] << 20


def spm_bytes(vertices, faces, uvs=None, texture="", colors=None, kind=2, version=1) -> bytes:
    """A one-buffer SPM: static (``kind`` 2), normals +z, optional vertex colours and a texture."""
    v = np.asarray(vertices, np.float32)
    flags = 1 | (2 if colors is not None else 0)
    out = b"SP" + bytes([version << 3 | kind, flags]) + np.zeros(6, np.float32).tobytes()
    out += struct.pack("<H", 1) + bytes([len(texture)]) + texture.encode() + bytes([0])
    out += struct.pack("<HH", 1, 1) + struct.pack("<IIH", len(v), 3 * len(faces), 0)
    for i, p in enumerate(v):
        out += p.tobytes() + struct.pack("<I", pack_normal((0, 0, 1)))
        if colors is not None:
            out += bytes([128]) if colors[i] is None else bytes([0, *colors[i]])
        if texture:
            out += np.asarray(uvs[i], np.float16).tobytes()
    idx = np.asarray(faces).reshape(-1)
    out += idx.astype("u1" if len(v) <= 255 else "<u2").tobytes()
    return out


def wedge():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0.6], [0, 1.4, 0], [0.2, 0.3, 1.2]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [1, 2, 4], [2, 3, 4], [1, 3, 4]])
    return v, f


def write_data(root: Path, files: dict[str, bytes | str]) -> Path:
    data = root / supertuxkart.INSTALLED
    for folder in ("library", "karts", "models", "textures"):
        (data / folder).mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        f = data / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content.encode() if isinstance(content, str) else content)
    return data


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2006-2022 SuperTuxKart-Team
License: GPL-3+

Files: data/library/stklib_thing_a/*
Copyright: 2019 Jean Someone <j@example.org>
License: CC-BY-SA-4.0

Files: data/karts/zoom/*.spm
Copyright: Copyright 2015 Kart Maker
License: CC-BY-SA-3.0
"""


def test_read_spm_fields_and_errors():
    v, f = wedge()
    buffers, skinned = supertuxkart.read_spm(spm_bytes(v, f, colors=[None, (255, 0, 0), None, None, (0, 0, 255)]))
    assert not skinned and len(buffers) == 1
    b = buffers[0]
    assert np.allclose(b.positions, v) and np.array_equal(b.faces, f) and np.allclose(b.normals, (0, 0, 1), atol=2e-3)
    assert np.allclose(b.colors[1], (1, 0, 0)) and np.allclose(b.colors[0], (1, 1, 1))
    # u16 indices above 255 vertices
    many = np.random.default_rng(0).normal(size=(300, 3))
    big = supertuxkart.read_spm(spm_bytes(many, [[0, 299, 150]]))[0][0]
    assert np.array_equal(big.faces, [[0, 299, 150]])
    with pytest.raises(ModelError, match="space-partitioned"):
        supertuxkart.read_spm(spm_bytes(v, f, kind=0))
    with pytest.raises(ModelError, match="unsupported SPM version 2"):
        supertuxkart.read_spm(spm_bytes(v, f, version=2))
    with pytest.raises(ModelError, match="truncated"):
        supertuxkart.read_spm(spm_bytes(v, f)[:-4])
    with pytest.raises(ModelError, match="not an SPM"):
        supertuxkart.read_spm(b"G3D\x04" + bytes(30))


def test_library_scene_kart_and_item_render_where_their_vertices_project(tmp_path):
    v, f = wedge()
    small = v * 0.2
    node = """<scene>
      <object id="main" type="animation" xyz="0 0 0" hpr="0 0 0" scale="1 1 1" interaction="ghost" model="thing_main.spm"/>
      <object id="coll" type="animation" xyz="0 0 0" interaction="physicsonly" model="collision.spm"/>
      <object id="sprite" type="billboard" texture="x.png"/>
      <lod><group name="top">
        <static-object lod_distance="120" lod_group="top" model="top_low.spm" xyz="0 0 0"/>
        <static-object lod_distance="40" lod_group="top" model="top_high.spm" xyz="0 0 0"/>
      </group></lod>
      <object id="topi" lod_instance="Y" lod_group="top" xyz="0.5 1.5 0.0" hpr="0 90 0" scale="1 1 1"/>
    </scene>"""
    kart = """<kart name="Zoom" model-file="zoom.spm"><wheels>
      <front-left position="-0.3 0.1 0.4" model="wheel.spm"/></wheels></kart>"""
    files = {
        "library/stklib_thing_a/node.xml": node,
        "library/stklib_thing_a/thing_main.spm": spm_bytes(v, f),
        "library/stklib_thing_a/collision.spm": spm_bytes(v * 5, f),  # would swamp the silhouette
        "library/stklib_thing_a/top_low.spm": spm_bytes(v * 3, f),
        "library/stklib_thing_a/top_high.spm": spm_bytes(small, f),
        "karts/zoom/kart.xml": kart, "karts/zoom/zoom.spm": spm_bytes(v, f), "karts/zoom/wheel.spm": spm_bytes(small, f),
        "models/banana.spm": spm_bytes(v, f), "models/banana-low.spm": spm_bytes(v, f),
        "library/stklib_broken_a/node.xml": "<scene><object",
    }
    root = tmp_path / "deb"
    write_data(root, files)
    (root / supertuxkart.COPYRIGHT).parent.mkdir(parents=True)
    (root / supertuxkart.COPYRIGHT).write_text(COPYRIGHT)
    assert reader_for(root) is supertuxkart
    objects, problems = discover(root)
    ids = {o.object_id: o for o in objects}
    assert set(ids) == {"stk__library__stklib_thing_a", "stk__kart__zoom", "stk__item__banana"}
    assert [p[0] for p in problems] == ["stk__library__stklib_broken_a"]
    thing, zoom = ids["stk__library__stklib_thing_a"], ids["stk__kart__zoom"]
    assert (thing.license, thing.creator) == ("CC-BY-SA-4.0", "Jean Someone")
    assert (zoom.license, zoom.creator, zoom.category) == ("CC-BY-SA-3.0", "Kart Maker", "vehicle")
    assert ids["stk__item__banana"].license == "GPL-3.0-or-later"

    out = tmp_path / "out"
    summary = build(root, out)
    assert summary.rendered == 3 and list(summary.skipped) == ["stk__library__stklib_broken_a"]
    mirror = np.array([1, 1, -1])
    R = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # hpr "0 90 0": 90° about y
    X = np.concatenate([v, small @ R.T + (0.5, 1.5, 0.0)]) * mirror
    F = np.concatenate([f, f + len(v)])
    assert_vertices_in_masks(out / "stk__library__stklib_thing_a", X, F)
    with pytest.raises(AssertionError):  # the check notices the low-detail member or an unmirrored model
        assert_vertices_in_masks(out / "stk__library__stklib_thing_a",
                                 np.concatenate([v, (v * 3) @ R.T + (0.5, 1.5, 0.0)]) * mirror, F)
    with pytest.raises(AssertionError):
        assert_vertices_in_masks(out / "stk__library__stklib_thing_a", X * mirror, F)
    Xk = np.concatenate([v, small + (-0.3, 0.1, 0.4)]) * mirror
    assert_vertices_in_masks(out / "stk__kart__zoom", Xk, F)
    meta = json.loads((out / "stk__kart__zoom" / "meta.json").read_text())
    assert (meta["source"], meta["license"], meta["creator"]) == ("supertuxkart-data", "CC-BY-SA-3.0", "Kart Maker")


def _quad(tmp_path: Path, shader: str | None, colors=None):
    quad = [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]
    uv = [[0, 1], [1, 1], [1, 0], [0, 0]]  # Irrlicht: v = 0 at the image's top row
    node = '<scene><object type="animation" xyz="0 0 0" model="quad.spm"/></scene>'
    mats = f'<materials><material name="quad.png" shader="{shader}"/></materials>' if shader else "<materials/>"
    data = write_data(tmp_path / str(shader), {
        "library/stklib_quad_a/node.xml": node, "library/stklib_quad_a/materials.xml": mats,
        "library/stklib_quad_a/quad.spm": spm_bytes(quad, [[0, 1, 2], [0, 2, 3]], uv, "quad.png", colors)})
    Image.fromarray(quad_texture(alpha_right=0)).save(data / "textures" / "quad.png")  # found in data/textures
    objects, _ = discover(tmp_path / str(shader))
    with Container(objects[0].container) as box:
        return load_model(objects[0], box)


def test_texture_upright_alpha_by_shader_and_vertex_colours(tmp_path):
    q = quadrants(front_view(_quad(tmp_path, None)))  # solid: alpha ignored
    assert all(p[3] == 255 for p in q.values()), q
    tl, bl = q["top_left"], q["bottom_left"]
    assert tl[0] > 100 and tl[2] < 30 and bl[2] > 100 and bl[0] < 30, q  # red on top: right side up
    q = quadrants(front_view(_quad(tmp_path, "alphatest")))
    assert q["top_left"][3] == 255 and q["top_right"][3] == 0, q
    half = [(128, 128, 128)] * 4
    dim = quadrants(front_view(_quad(tmp_path / "c", None, colors=half)))
    assert abs(dim["top_left"][0] / tl[0] - 0.5) < 0.06, (dim, tl)  # solid: the vertex colour multiplies
    grass = quadrants(front_view(_quad(tmp_path / "g", "grass", colors=half)))
    assert abs(grass["top_left"][0] - tl[0]) <= 3, (grass, tl)  # grass: it is a wind weight, not a colour


@pytest.mark.parametrize("name, category", [
    ("stklib_autumnTree_a", "flora"), ("stklib_oldCar_a", "vehicle"), ("stklib_silvianHouse_b", "building"),
    ("stklib_beachGuy_a", "character"), ("stklib_animalPig_a", "fauna"), ("stklib_snowRocks_a", "rock"),
    ("stklib_gramophone_a", "prop"),
])
def test_category_from_name(name, category):
    assert supertuxkart.category_of(name) == category
