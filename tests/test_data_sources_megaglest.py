"""MegaGlest reader: G3D v4 models, unit / tileset definitions and team colours, in a data tree written here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_checks import assert_vertices_in_masks, build, front_view, quad_texture, quadrants
from splatgen.core.data.parts import ModelError
from splatgen.core.data.sources import Container, discover, load_model, megaglest, reader_for


def g3d_mesh(frames, faces, uvs=None, texture: str | None = None, properties: int = 0, name="m",
             diffuse=(0.8, 0.8, 0.8), opacity=1.0) -> bytes:
    """One G3D v4 mesh: ``frames`` ``(F, V, 3)`` positions (normals +z)."""
    frames = np.asarray(frames, np.float32)
    n_f, n_v = frames.shape[:2]
    head = struct.pack("<64s3I8f2I", name.encode(), n_f, n_v, 3 * len(faces), *diffuse, 0, 0, 0, 1.0, opacity,
                       properties, 1 if texture else 0)
    if texture:
        head += struct.pack("<64s", texture.encode())
    normals = np.tile(np.float32([0, 0, 1]), (n_f, n_v, 1))
    body = frames.tobytes() + normals.tobytes()
    if texture:
        body += np.asarray(uvs, np.float32).tobytes()
    return head + body + np.asarray(faces, "<u4").tobytes()


def g3d_file(*meshes: bytes, version: int = 4) -> bytes:
    return b"G3D" + bytes([version]) + struct.pack("<HB", len(meshes), 0) + b"".join(meshes)


def wedge():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0.6], [0, 1.4, 0], [0.2, 0.3, 1.2]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [1, 2, 4], [2, 3, 4], [1, 3, 4]])
    return v, f


def unit_xml(skills: list[tuple[str, str]]) -> str:
    body = "".join(f'<skill><type value="{t}"/><name value="{t}_skill"/><animation path="{p}"/></skill>'
                   for t, p in skills)
    return f'<?xml version="1.0"?><unit><skills>{body}</skills></unit>'


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    data = root / megaglest.INSTALLED
    for rel, content in files.items():
        f = data / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content.encode() if isinstance(content, str) else content)
    for folder in ("techs", "tilesets"):  # what the reader recognises the data folder by
        (data / folder).mkdir(parents=True, exist_ok=True)
    return data


def test_read_g3d_frame_zero_and_errors():
    v, f = wedge()
    moved = v + (5, 0, 0)
    meshes = megaglest.read_g3d(g3d_file(g3d_mesh([v, moved], f, name="body")))
    assert len(meshes) == 1 and meshes[0].name == "body"
    assert np.allclose(meshes[0].positions, v) and np.array_equal(meshes[0].faces, f)  # frame 0, not frame 1
    with pytest.raises(ModelError, match="unsupported G3D version 3"):
        megaglest.read_g3d(g3d_file(g3d_mesh([v], f), version=3))
    with pytest.raises(ModelError, match="truncated"):
        megaglest.read_g3d(g3d_file(g3d_mesh([v], f))[:-10])
    with pytest.raises(ModelError, match="out of range"):
        megaglest.read_g3d(g3d_file(g3d_mesh([v], [[0, 1, 7]])))
    with pytest.raises(ModelError, match="not a G3D"):
        megaglest.read_g3d(b"PSMD" + bytes(20))


def test_unit_renders_where_its_vertices_project_and_objects_come_from_definitions(tmp_path):
    v, f = wedge()
    box_v = v * 0.3 + (0.8, 0.9, -0.4)
    stand = g3d_file(g3d_mesh([v, v * 2], f), g3d_mesh([box_v], f, name="hat"))
    walk = g3d_file(g3d_mesh([v + 3], f))
    stone = g3d_file(g3d_mesh([v * [1, 0.4, 1]], f))
    unit = "techs/mp/factions/norsemen/units/warrior"
    files = {
        f"{unit}/warrior.xml": unit_xml([("move", "models/warrior_walking.g3d"), ("stop", "models/warrior_standing.g3d")]),
        f"{unit}/models/warrior_standing.g3d": stand, f"{unit}/models/warrior_walking.g3d": walk,
        "techs/mp/factions/norsemen/units/hall/hall.xml": unit_xml([("stop", "models/hall.g3d")]),
        "techs/mp/factions/norsemen/units/hall/models/hall.g3d": g3d_file(g3d_mesh([v * 2], f)),
        "techs/mp/factions/norsemen/units/broken/broken.xml": "<unit><skills",
        "techs/mp/factions/norsemen/units/gone/gone.xml": unit_xml([("stop", "models/nowhere.g3d")]),
        "tilesets/forest/forest.xml": '<tileset><objects><object><model path="models/stone1.g3d"/>'
                                      '<model path="models/oak_tree.g3d"/></object></objects></tileset>',
        "tilesets/forest/models/stone1.g3d": stone, "tilesets/forest/models/oak_tree.g3d": walk,
        "tilesets/winter/winter.xml": '<tileset><objects><object><model path="models/stone1.g3d"/></object></objects></tileset>',
        "tilesets/winter/models/stone1.g3d": stone,  # the same stone as forest's: listed once
    }
    write_tree(tmp_path / "deb", files)
    assert reader_for(tmp_path / "deb") is megaglest
    objects, problems = discover(tmp_path / "deb")
    got = {o.object_id: o.category for o in objects}
    assert got == {"megaglest__mp__norsemen__hall": "building", "megaglest__mp__norsemen__warrior": "character",
                   "megaglest__tileset__forest__oak_tree": "flora", "megaglest__tileset__forest__stone1": "rock"}
    assert sorted(p[0] for p in problems) == ["megaglest__mp__norsemen__broken", "megaglest__mp__norsemen__gone"]
    warrior = next(o for o in objects if o.object_id.endswith("warrior"))
    assert warrior.model_path.endswith("models/warrior_standing.g3d")  # the stop skill's, not the walk's

    out = tmp_path / "out"
    summary = build(tmp_path / "deb", out)
    assert summary.rendered == 4
    folder = out / "megaglest__mp__norsemen__warrior"
    X = np.concatenate([v, box_v])
    F = np.concatenate([f, f + len(v)])
    assert_vertices_in_masks(folder, X, F)
    with pytest.raises(AssertionError):  # the check notices a mirrored model
        assert_vertices_in_masks(folder, X * [1, 1, -1], F)
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["source"], meta["license"]) == ("megaglest-data", "CC-BY-SA-3.0")


def _quad(tmp_path: Path, properties: int):
    quad = [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]
    uv = [[0, 0], [1, 0], [1, 1], [0, 1]]  # v = 1 at the top, as the game's (checked on its units)
    rel = "tilesets/t/models"
    data = write_tree(tmp_path / str(properties), {
        "tilesets/t/t.xml": '<tileset><objects><object><model path="models/quad.g3d"/></object></objects></tileset>',
        f"{rel}/quad.g3d": g3d_file(g3d_mesh([quad], [[0, 1, 2], [0, 2, 3]], uv, "quad.png", properties))})
    Image.fromarray(quad_texture(alpha_right=0)).save(data / rel / "quad.png")
    objects, _ = discover(tmp_path / str(properties))
    with Container(objects[0].container) as box:
        return objects[0], load_model(objects[0], box)


def test_texture_upright_and_team_colour_opaque(tmp_path):
    obj, model = _quad(tmp_path, megaglest.CUSTOM_COLOUR)
    q = quadrants(front_view(model))
    assert all(p[3] == 255 for p in q.values()), q  # the mask is not a hole
    tl, tr, bl, br = q["top_left"], q["top_right"], q["bottom_left"], q["bottom_right"]
    assert tl[0] > 100 and tl[2] < 30 and bl[2] > 100 and bl[0] < 30, q  # red on top: right side up
    # alpha 0: the team colour itself, whatever the texture's colour (mix(team, rgb, a))
    team = np.array(megaglest._team_colour(obj.object_id))
    assert np.abs(tr[:3] - br[:3]).max() <= 3, q
    shade = tr[:3] / np.maximum(team * 255, 1)
    assert np.ptp(shade[team > 0.2]) < 0.08, (tr, team)


def test_alpha_without_team_colour_is_a_cut_out(tmp_path):
    _, model = _quad(tmp_path, megaglest.TWO_SIDED)
    q = quadrants(front_view(model))
    assert q["top_left"][3] == 255 and q["top_right"][3] == 0 and q["bottom_right"][3] == 0, q


@pytest.mark.parametrize("text, expected", [
    ("Norsemen:\n Copyright 2008-2011 (c) Titus Tscharntke, Raphael Schröder\n (<http://www.titusgames.de>)\n",
     {"norsemen": "Titus Tscharntke, Raphael Schröder"}),
    (" Tileset Winter:     by Titus Tscharntke(titi)\n", {"tileset:winter": "Titus Tscharntke(titi)"}),
])
def test_creators_from_copyright(text, expected):
    assert megaglest.creators(text) == expected
