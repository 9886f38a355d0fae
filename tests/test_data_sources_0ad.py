"""0 A.D. reader: PMD meshes, DDS textures, actors, materials and props, in a public.zip written here."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_checks import assert_vertices_in_masks, build, front_view, quad_texture, quadrants
from splatgen.core.data.parts import ModelError
from splatgen.core.data.sources import Container, discover, load_model, reader_for, zeroad

#: The player colour written into the test archive's player_defaults.json (0-255).
PLAYER = (64, 64, 255)

MATERIALS = {  # as the game's: what the reader reads is the defines and <alpha_blending/>
    "default.xml": '<material><required_texture name="baseTex"/><shader effect="model"/></material>',
    "player_trans.xml": '<material><define name="USE_PLAYERCOLOR" value="1"/>'
                        '<required_texture name="baseTex"/><shader effect="model"/></material>',
    "basic_trans.xml": '<material><alpha_blending/><define name="USE_TRANSPARENT" value="1"/>'
                       '<required_texture name="baseTex"/><shader effect="model_transparent"/></material>',
    "objectcolor.xml": '<material><define name="USE_OBJECTCOLOR" value="1"/></material>',
}


def pmd_bytes(vertices, faces, uvs=None, normals=None, props=(), bones=(), version=4, vertex_bones=None) -> bytes:
    """A PMD v4 file: ``props`` are ``(name, translation, quaternion xyzw, bone)``, ``bones``
    ``(translation, quaternion)`` rest states, ``vertex_bones`` one bone a vertex (weight 1) or none."""
    v = np.asarray(vertices, np.float32)
    n = np.tile([0, 0, 1], (len(v), 1)).astype(np.float32) if normals is None else np.asarray(normals, np.float32)
    uv = np.zeros((len(v), 2), np.float32) if uvs is None else np.asarray(uvs, np.float32)
    vb = [255] * len(v) if vertex_bones is None else list(vertex_bones)
    body = struct.pack("<II", len(v), 1)
    for p, q, t, b in zip(v, n, uv, vb):
        body += struct.pack("<3f3f2f4B4f", *p, *q, *t, b, 255, 255, 255, 1.0 if b != 255 else 0.0, 0, 0, 0)
    body += struct.pack("<I", len(faces)) + np.asarray(faces, "<u2").tobytes()
    body += struct.pack("<I", len(bones)) + b"".join(struct.pack("<3f4f", *t, *q) for t, q in bones)
    body += struct.pack("<I", len(props))
    for name, t, q, bone in props:
        body += struct.pack("<I", len(name)) + name.encode() + struct.pack("<3f4fB", *t, *q, bone)
    return b"PSMD" + struct.pack("<II", version, len(body)) + body


def dds_bytes(rgba: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "DDS")
    return buf.getvalue()


def actor(mesh: str | None, texture: str | None = None, material: str = "default.xml", props=(), extra="") -> str:
    inner = f"<mesh>{mesh}</mesh>" if mesh else ""
    if texture:
        inner += f'<textures><texture file="{texture}" name="baseTex"/></textures>'
    if props:
        inner += "<props>" + "".join(f'<prop actor="{a}" attachpoint="{p}"/>' for p, a in props) + "</props>"
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<actor version="1"><group><variant frequency="1" name="base">'
            f"{inner}</variant></group>{extra}<material>{material}</material></actor>")


def write_archive(root: Path, actors: dict[str, str], meshes: dict[str, bytes], textures: dict[str, np.ndarray],
                  extra: dict[str, bytes] | None = None) -> Path:
    """``root/usr/share/games/0ad/mods/public/public.zip`` as Debian installs it (stored, not deflated)."""
    path = root / zeroad.INSTALLED
    path.parent.mkdir(parents=True, exist_ok=True)
    players = {"PlayerData": [{"Name": "Gaia", "Color": {"r": 255, "g": 255, "b": 255}},
                              {"Name": "Player 1", "Color": dict(zip("rgb", PLAYER))}]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, text in actors.items():
            z.writestr(f"art/actors/{name}", text)
        for name, data in meshes.items():
            z.writestr(f"art/meshes/{name}.cached.pmd", data)
        for name, img in textures.items():
            z.writestr(f"art/textures/skins/{name}.cached.dds", dds_bytes(img))
        for name, text in MATERIALS.items():
            z.writestr(f"art/materials/{name}", text)
        z.writestr("simulation/data/settings/player_defaults.json", json.dumps(players))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def wedge():
    """A solid asymmetric in every axis (a slanted wedge with a spike towards +z, game frame)."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0.6], [0, 1.4, 0], [0.2, 0.3, 1.2]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [1, 2, 4], [2, 3, 4], [1, 3, 4]])
    return v, f


def game_to_model(v: np.ndarray) -> np.ndarray:
    """The game's left-handed Y-up frame → the reader's right-handed Y-up frame (z negated)."""
    return np.asarray(v, float) * [1, 1, -1]


def quaternion_y(deg: float) -> tuple[float, float, float, float]:
    h = np.radians(deg) / 2
    return (0.0, float(np.sin(h)), 0.0, float(np.cos(h)))


# ---------------------------------------------------------------------- PMD
def test_read_pmd_fields_and_errors():
    v, f = wedge()
    uv = np.linspace(0, 1, 10).reshape(5, 2)
    data = pmd_bytes(v, f, uv, props=[("top", (1, 2, 3), quaternion_y(90), 255)], bones=[((0, 1, 0), (0, 0, 0, 1))])
    pmd = zeroad.read_pmd(data)
    assert np.allclose(pmd.positions, v) and np.array_equal(pmd.faces, f) and np.allclose(pmd.uvs[:, 0], uv)
    assert pmd.bones.shape == (1, 4, 4) and np.allclose(pmd.bones[0][:3, 3], (0, 1, 0))
    top = pmd.prop_points["top"]
    assert np.allclose(top[:3, 3], (1, 2, 3)) and np.allclose(top[:3, :3] @ [1, 0, 0], (0, 0, -1), atol=1e-6)
    # a prop point on a bone: bone · (translation, rotation)
    boned = zeroad.read_pmd(pmd_bytes(v, f, props=[("hand", (1, 0, 0), (0, 0, 0, 1), 0)],
                                      bones=[((0, 5, 0), quaternion_y(180))]))
    assert np.allclose(boned.prop_points["hand"][:3, 3], (-1, 5, 0), atol=1e-6)
    with pytest.raises(ModelError, match="unsupported PMD version 7"):
        zeroad.read_pmd(pmd_bytes(v, f, version=7))
    with pytest.raises(ModelError, match="size field"):
        zeroad.read_pmd(data[:-5])
    with pytest.raises(ModelError, match="not a PMD"):
        zeroad.read_pmd(b"GIF89a" + data[6:])
    with pytest.raises(ModelError, match="out of range"):
        zeroad.read_pmd(pmd_bytes(v, [[0, 1, 9]]))


# ---------------------------------------------------------------------- geometry and props
def test_actor_with_prop_renders_where_its_vertices_project(tmp_path):
    v, f = wedge()
    box_v = np.array([[x, y, z] for x in (-0.2, 0.2) for y in (0, 0.3) for z in (-0.1, 0.1)])
    box_f = np.array([[0, 1, 3], [0, 3, 2], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4], [2, 3, 7], [2, 7, 6],
                      [0, 2, 6], [0, 6, 4], [1, 3, 7], [1, 7, 5]])
    # the prop sits at the wedge's prop point "top": moved to (0.5, 1.5, 0.2) and turned 90° about y
    pmd = pmd_bytes(v, f, props=[("top", (0.5, 1.5, 0.2), quaternion_y(90), 255)])
    root = tmp_path / "deb"
    write_archive(root, {"props/flora/wedge.xml": actor("gaia/wedge.dae", props=[("top", "props/flora/box.xml")]),
                         "props/flora/box.xml": actor("gaia/box.dae")},
                  {"gaia/wedge.dae": pmd, "gaia/box.dae": pmd_bytes(box_v, box_f)}, {})
    assert reader_for(root) is zeroad
    objects, problems = discover(root)
    # the box is attached at a named point, not at root: it is an object of its own as well
    assert sorted(o.object_id for o in objects) == ["0ad__props__flora__box", "0ad__props__flora__wedge"]
    assert not problems
    out = tmp_path / "out"
    summary = build(root, out)
    assert summary.rendered == 2 and not summary.skipped
    R = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # 90° about y
    placed = box_v @ R.T + (0.5, 1.5, 0.2)
    X = game_to_model(np.concatenate([v, placed]))
    F = np.concatenate([f, box_f + len(v)])
    assert_vertices_in_masks(out / "0ad__props__flora__wedge", X, F)
    # the same check fails when the prop is where it would be without its rotation, or unmirrored
    with pytest.raises(AssertionError):
        assert_vertices_in_masks(out / "0ad__props__flora__wedge",
                                 game_to_model(np.concatenate([v, box_v + (0.5, 1.5, 0.2)])), F)
    with pytest.raises(AssertionError):
        assert_vertices_in_masks(out / "0ad__props__flora__wedge", np.concatenate([v, placed]), F)
    meta = json.loads((out / "0ad__props__flora__wedge" / "meta.json").read_text())
    assert (meta["source"], meta["license"], meta["creator"], meta["category"]) == \
        ("0ad-data", "CC-BY-SA-3.0", "Wildfire Games", "flora")


def psa_bytes(frames) -> bytes:
    """A PSA animation: ``frames`` is a list of frames, each a list of (translation, quaternion) bone states."""
    n_bone = len(frames[0])
    body = struct.pack("<I", 0) + struct.pack("<fII", 33.3, n_bone, len(frames))
    for frame in frames:
        body += b"".join(struct.pack("<3f4f", *t, *q) for t, q in frame)
    return b"PSSA" + struct.pack("<II", 1, len(body)) + body


def test_skinned_mesh_in_its_idle_pose_with_a_prop_on_a_bone(tmp_path):
    """A two-bone mesh: bone 1 (rest at y 1) is turned 90° and moved by frame 0 of the idle animation;
    its vertices and the prop on its prop point follow, bone 0's vertices stay."""
    v, f = wedge()
    arm = np.array([[x, y, z] for x in (-0.1, 0.4) for y in (1.0, 1.2) for z in (-0.1, 0.1)])
    arm_f = np.array([[0, 1, 3], [0, 3, 2], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4], [2, 3, 7], [2, 7, 6],
                      [0, 2, 6], [0, 6, 4], [1, 3, 7], [1, 7, 5]])
    V = np.concatenate([v, arm])
    F = np.concatenate([f, arm_f + len(v)])
    rest = [((0, 0, 0), (0, 0, 0, 1)), ((0, 1, 0), (0, 0, 0, 1))]
    idle = [((0, 0, 0), (0, 0, 0, 1)), ((0.3, 1.6, 0.2), quaternion_y(90))]
    pmd = pmd_bytes(V, F, bones=rest, vertex_bones=[0] * len(v) + [1] * len(arm),
                    props=[("hand", (0.4, 0.1, 0), (0, 0, 0, 1), 1)])
    body = ('<?xml version="1.0"?><actor version="1"><group><variant name="b"><mesh>skeletal/body.dae</mesh>'
            '<animations><animation file="biped/walk.dae" name="walk"/><animation file="biped/idle.dae" name="Idle"/>'
            '</animations><props><prop actor="props/units/weapons/knob.xml" attachpoint="hand"/></props>'
            '</variant></group><material>default.xml</material></actor>')
    knob = v * 0.15
    root = tmp_path / "deb"
    write_archive(root, {"units/athenians/body.xml": body, "props/units/weapons/knob.xml": actor("props/knob.dae")},
                  {"skeletal/body.dae": pmd, "props/knob.dae": pmd_bytes(knob, f)}, {},
                  {"art/animation/biped/idle.dae.cached.psa": psa_bytes([idle, rest]),
                   "art/animation/biped/walk.dae.cached.psa": psa_bytes([rest])})
    out = tmp_path / "out"
    summary = build(root, out)
    assert "0ad__units__athenians__body" in {k for k in json.loads((out / "dataset.json").read_text())["objects"]}
    R = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # 90° about y
    posed_arm = (arm - (0, 1, 0)) @ R.T + (0.3, 1.6, 0.2)  # pose · rest⁻¹ · v
    hand = R @ np.array([0.4, 0.1, 0]) + (0.3, 1.6, 0.2)
    X = game_to_model(np.concatenate([v, posed_arm, knob @ R.T + hand]))  # the prop turns with its bone
    FF = np.concatenate([f, arm_f + len(v), f + len(v) + len(arm)])
    folder = out / "0ad__units__athenians__body"
    assert_vertices_in_masks(folder, X, FF)
    with pytest.raises(AssertionError):  # the rest pose does not match
        assert_vertices_in_masks(folder, game_to_model(np.concatenate([v, arm, knob + (0.4, 1.1, 0)])), FF)
    assert summary.rendered >= 1


# ---------------------------------------------------------------------- textures and materials
def _quad_archive(tmp_path: Path, material: str, alpha_right: int) -> tuple[Path, object]:
    v = [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]
    uv = [[0, 0], [1, 0], [1, 1], [0, 1]]  # as the game's: v = 1 at the quad's top
    root = tmp_path / material
    write_archive(root, {"props/special/quad.xml": actor("props/quad.dae", "props/quad.png", material)},
                  {"props/quad.dae": pmd_bytes(v, [[0, 1, 2], [0, 2, 3]], uv)},
                  {"props/quad.png": quad_texture(alpha_right=alpha_right)})
    objects, _ = discover(root)
    with Container(objects[0].container) as box:
        model = load_model(objects[0], box)
    return root, model


def test_texture_upright_and_team_colour_opaque(tmp_path):
    """player_* materials: alpha is the team-colour mask (tint, draw opaque), never a hole."""
    _, model = _quad_archive(tmp_path, "player_trans.xml", alpha_right=0)
    q = quadrants(front_view(model))
    assert all(p[3] == 255 for p in q.values()), q  # opaque where the mask is 0
    tl, tr, bl, br = q["top_left"], q["top_right"], q["bottom_left"], q["bottom_right"]
    assert tl[0] > 100 and tl[2] < 30 and bl[2] > 100 and bl[0] < 30, q  # red on top: right side up
    # mask 0: the texture times the player colour; mask 1 (left): the texture as it is
    assert abs(tr[0] / tl[0] - PLAYER[0] / 255) < 0.06, q
    assert abs(br[2] / bl[2] - PLAYER[2] / 255) < 0.06, q


def test_transparent_material_cuts_out_and_default_ignores_alpha(tmp_path):
    _, model = _quad_archive(tmp_path, "basic_trans.xml", alpha_right=0)
    q = quadrants(front_view(model))
    assert q["top_left"][3] == 255 and q["top_right"][3] == 0 and q["bottom_right"][3] == 0, q
    _, model = _quad_archive(tmp_path, "default.xml", alpha_right=0)
    q = quadrants(front_view(model))
    assert q["top_right"][3] == 255 and abs(q["top_right"][0] - q["top_left"][0]) <= 3, q


# ---------------------------------------------------------------------- what is an object
@pytest.mark.parametrize("path, skipped", [
    ("art/actors/structures/fndn_3x3.xml", True), ("art/actors/structures/destruct_stone_4x4.xml", True),
    ("art/actors/props/structures/decals/dirt_6x6.xml", False), ("art/actors/geology/decal_stone_medit_a.xml", True),
    ("art/actors/temp/reservoir.xml", True), ("art/actors/geology/temp_cliffs_a.xml", True),
    ("art/actors/temp_x/y.xml", True), ("art/actors/structures/test_tower.xml", True),
    ("art/actors/particle/smoke.xml", True), ("art/actors/campaigns/labels/greece_attica.xml", True),
    ("art/actors/props/special/rubble_1.xml", True),
    ("art/actors/structures/romans/temple_mars.xml", False), ("art/actors/structures/athenians/barracks.xml", False),
    ("art/actors/props/units/heads/contest_winner.xml", False), ("art/actors/fauna/deer.xml", False),
    ("art/actors/props/horse/horse_hair_mane_black.xml", True), ("art/actors/props/fauna/deer_antlers.xml", True),
])
def test_skip_reason(path, skipped):
    assert (zeroad.skip_reason(path) is not None) == skipped


@pytest.mark.parametrize("path, category", [
    ("art/actors/fauna/deer.xml", "fauna"), ("art/actors/flora/trees/oak.xml", "flora"),
    ("art/actors/fungi/small_red.xml", "flora"), ("art/actors/geology/gray1.xml", "rock"),
    ("art/actors/structures/romans/barracks.xml", "building"), ("art/actors/structures/romans/trireme.xml", "vehicle"),
    ("art/actors/units/romans/infantry_spearman_a.xml", "character"),
    ("art/actors/units/romans/siege_ram.xml", "vehicle"), ("art/actors/units/persians/chariot_archer_a_r.xml", "vehicle"),
    ("art/actors/props/units/weapons/spear_hoplite.xml", "tool"), ("art/actors/props/units/shields/aspis_a.xml", "prop"),
    ("art/actors/props/units/heads/head_hele_b.xml", "head"), ("art/actors/props/special/eyecandy/cart.xml", "prop"),
])
def test_category_from_folders(path, category):
    assert zeroad.category_of(path) == category


def test_discovery_filters_pieces_variants_and_bad_input(tmp_path):
    v, f = wedge()
    pmd = pmd_bytes(v, f)
    variants = """<group><variant name="dead" frequency="0"><mesh>gaia/rubble.dae</mesh></variant>
                  <variant file="alive.xml"/></group>"""
    actors = {
        "structures/athenians/house.xml": actor("s/house.dae", props=[
            ("root", "props/structures/athenians/house_roof.xml"), ("root", "props/structures/decals/dirt.xml")]),
        "props/structures/athenians/house_roof.xml": actor("s/roof.dae"),  # a piece of the house only
        "props/structures/decals/dirt.xml": actor(None, extra='<group><variant><decal width="4" depth="4"/></variant></group>'),
        "structures/fndn_3x3.xml": actor("s/house.dae"),
        "structures/destruct_3x3.xml": actor("s/house.dae"),
        "temp/thing.xml": actor("s/house.dae"),
        "particle/smoke.xml": '<actor version="1"><group><variant><particles file="smoke.xml"/></variant></group></actor>',
        "units/athenians/spearman.xml": actor("s/body.dae", props=[("shield", "props/units/shields/aspis.xml")]),
        "props/units/shields/aspis.xml": actor("s/shield.dae"),
        "units/athenians/ship_trireme.xml": actor("s/house.dae"),
        "fauna/deer.xml": '<actor version="1">' + variants + "</actor>",
        "fauna/broken.xml": "<actor><group><variant",  # unreadable XML
        "fauna/truncated.xml": actor("s/truncated.dae"),
        "fauna/meshless.xml": actor("s/missing.dae"),
    }
    meshes = {n: pmd for n in ("s/house.dae", "s/roof.dae", "s/body.dae", "s/shield.dae", "gaia/alive.dae")}
    meshes["s/truncated.dae"] = pmd[:-7]
    extra = {"art/variants/alive.xml": b'<variant name="alive" frequency="5"><mesh>gaia/alive.dae</mesh></variant>'}
    root = tmp_path / "deb"
    write_archive(root, actors, meshes, {}, extra)
    objects, problems = discover(root)
    ids = {o.object_id.removeprefix("0ad__"): o for o in objects}
    assert set(ids) == {"structures__athenians__house", "units__athenians__spearman", "props__units__shields__aspis",
                        "units__athenians__ship_trireme", "fauna__deer", "fauna__truncated", "fauna__meshless"}
    assert [p[0] for p in problems] == ["0ad__fauna__broken"] and "unreadable XML" in problems[0][1]
    assert ids["units__athenians__ship_trireme"].category == "vehicle"
    with Container(objects[0].container) as box:  # the frequent variant (from its file), not the dead one
        assert zeroad.ActorReader(box).actor("art/actors/fauna/deer.xml").mesh == "gaia/alive.dae"

    out = tmp_path / "out"
    summary = build(root, out, views=2, size=32)
    skipped = {k.removeprefix("0ad__"): r for k, r in summary.skipped.items()}
    assert set(skipped) == {"fauna__broken", "fauna__truncated", "fauna__meshless"}, skipped
    assert "size field" in skipped["fauna__truncated"] and "no triangles" in skipped["fauna__meshless"]
    log = (out / "build_log.txt").read_text()
    assert all(f"SKIP 0ad__{k}: {r}\n" in log for k, r in skipped.items())
    assert "mesh s/missing.dae of art/actors/fauna/meshless.xml not in the archive" in skipped["fauna__meshless"]
    house = json.loads((out / "0ad__structures__athenians__house" / "meta.json").read_text())
    assert house["n_triangles"] == 2 * len(f)  # house and roof; the decal adds nothing
