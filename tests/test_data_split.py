"""Groups of twins (same geometry, near-identical renders), the category-balanced split by group,
``splatgen data regroup`` on a rendered dataset, and the lit/flat saturation check."""

from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest

from _data_checks import build
from splatgen.core import cameras
from splatgen.core.data import lighting as L
from splatgen.core.data.index import regroup
from splatgen.core.data.saturation import FLAT_LIGHTING, compare_renders
from splatgen.core.data.signature import SIGNATURE_FILE, load_signature
from splatgen.core.data.split import SPLIT_FRACTIONS, balanced_split, render_twins, signature_distance, split_of
from splatgen.core.data.split import _signature_arrays as split_arrays
from test_data import box_mesh, write_obj

trimesh = pytest.importorskip("trimesh")


def _random_dataset(seed: int):
    """Objects of several categories (sizes 1 to a few hundred), a third of them in groups of 2-6."""
    rng = random.Random(seed)
    objects, group_of = {}, {}
    for c in range(rng.randint(2, 7)):
        n = rng.choice([1, 2, 3, 7, 19, 40, 150, 330])
        ids = [f"s{seed}__c{c}_{i}" for i in range(n)]
        i = 0
        while i < len(ids):
            k = rng.choice([1, 1, 1, 2, 3, 6])
            for oid in ids[i:i + k]:
                objects[oid] = {"category": f"cat{c}"}
                group_of[oid] = ids[i]
            i += k
    return objects, group_of


@pytest.mark.parametrize("seed", range(6))
def test_balanced_split_keeps_groups_whole_and_categories_in_proportion(seed):
    objects, group_of = _random_dataset(seed)
    split = balanced_split(objects, group_of)
    assert set(split) == set(objects) and set(split.values()) <= {s for s, _ in SPLIT_FRACTIONS}
    for oid, rep in group_of.items():  # two objects of one group never land on both sides
        assert split[oid] == split[rep]
    sizes = collections.Counter(group_of.values())
    for cat in {m["category"] for m in objects.values()}:
        ids = [o for o, m in objects.items() if m["category"] == cat]
        biggest = max(sizes[group_of[o]] for o in ids)
        for name, frac in SPLIT_FRACTIONS:
            count = sum(split[o] == name for o in ids)
            # the share rounded down or up; a group that cannot fit whole may overshoot by its size
            assert abs(count - frac * len(ids)) < max(1.0, biggest), (cat, name, count, len(ids))
    # most objects keep the split a hash of their group alone gives (a growing dataset reshuffles little)
    kept = np.mean([split[o] == split_of(group_of[o]) for o in objects])
    assert kept > 0.75


def test_balanced_split_tie_breaks_by_hash_and_is_deterministic():
    objects = {f"lib__o{i}": {"category": "a" if i % 3 else "b"} for i in range(400)}
    group_of = {o: o for o in objects}
    first = balanced_split(objects, group_of)
    assert first == balanced_split(dict(reversed(list(objects.items()))), group_of)
    counts = collections.Counter((objects[o]["category"], s) for o, s in first.items())
    n_a, n_b = sum(1 for m in objects.values() if m["category"] == "a"), 400 - sum(
        1 for m in objects.values() if m["category"] == "a")
    for cat, n in (("a", n_a), ("b", n_b)):
        for name, frac in SPLIT_FRACTIONS:
            assert abs(counts[cat, name] - frac * n) < 1
    # a one-object category lands where its hash sends it, val or test included
    lone = next(f"lib__lone{i}" for i in range(1000) if split_of(f"lib__lone{i}") == "val")
    assert balanced_split({lone: {"category": "z"}}, {lone: lone}) == {lone: "val"}


def _signature(pixels, rgb, views: int = 4, size: int = 32) -> np.ndarray:
    """A flat+lit signature ``(2, V, S, S, 4)`` uint8 with ``pixels`` (row, col) of colour ``rgb`` in every view."""
    sig = np.zeros((2, views, size, size, 4), np.uint8)
    for r, c in pixels:
        sig[:, :, r, c] = [*rgb, 255]
    return sig


def test_render_twins_compare_the_objects_pixels_not_the_background():
    blob = [(r, c) for r in range(8, 24) for c in range(10, 22)]
    sigs = {
        "a__blob": _signature(blob, (200, 40, 40)),
        "a__blob_b": _signature(blob, (204, 44, 40)),          # the same look, a shade apart: twins
        "a__blob_green": _signature(blob, (40, 200, 40)),      # the same silhouette in another colour
        "a__thin": _signature([(16, c) for c in range(4, 28)], (90, 90, 90)),        # a thin stick ...
        "a__thin_other": _signature([(c, 16) for c in range(4, 28)], (90, 90, 90)),  # ... and another one:
        "a__dot": _signature([(3, 3)], (10, 10, 10)),          # few pixels each, differing in all of them
        "a__dot_2": _signature([(28, 28)], (250, 250, 10)),     # too small to say anything
    }
    assert render_twins(sigs) == [("a__blob", "a__blob_b")]
    ids, v, m = split_arrays(sigs)
    i, j = ids.index("a__thin"), ids.index("a__thin_other")
    assert signature_distance(v[i], v[j], m[i], m[j]) > 0.3  # over the whole images it would be 0.16


def _hidden_triangle(v, f):
    """The same box plus one tiny triangle inside it: another geometry hash, the same renders."""
    extra = np.array([[0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 0.02, 0.0]])
    return np.vstack([v, extra]), np.vstack([f, [[len(v), len(v) + 1, len(v) + 2]]])


def test_near_identical_renders_join_a_group_and_regroup_needs_no_render(tmp_path):
    src = tmp_path / "lib"
    v, f, _ = box_mesh()
    write_obj(src / "box.obj", v, f, kd=(0.2, 0.5, 0.9))
    write_obj(src / "box_grey.obj", v, f, kd=(0.6, 0.6, 0.6))        # same geometry: a geometry twin
    v2, f2 = _hidden_triangle(v, f)
    write_obj(src / "box_inner.obj", v2, f2, kd=(0.2, 0.5, 0.9))     # other geometry, same look: a render twin
    write_obj(src / "box_inner_red.obj", v2, f2, kd=(0.9, 0.1, 0.1))  # joins box_inner by geometry only
    write_obj(src / "slab.obj", v * [1.0, 0.3, 1.0], f, kd=(0.2, 0.5, 0.9))  # same colour, other shape
    out = tmp_path / "out"
    build(src, out, views=2, size=32, surface_points=0)
    sig = load_signature(out / "lib__box" / SIGNATURE_FILE)
    assert sig.shape == (2, 4, 32, 32, 4) and (sig[0, ..., 3] > 0).any()
    index = json.loads((out / "dataset.json").read_text())
    box = ["lib__box", "lib__box_grey", "lib__box_inner", "lib__box_inner_red"]
    assert index["groups"] == {"lib__box": box}
    assert index["objects"]["lib__slab"]["group"] == "lib__slab"
    assert index["merged"]["geometry_merged"] == 2 and index["merged"]["render_merged"] == 1
    assert len({index["objects"][o]["split"] for o in box}) == 1
    card = (out / "README.md").read_text()
    assert "2 objects joined a twin of the same geometry and 1 more joined one by their renders" in card

    # regroup: the same result from the folders alone, nothing rendered again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*.png")}
    (out / "dataset.json").write_text(json.dumps(index | {"groups": {}, "merged": {}}))
    again = regroup(out)
    assert again["groups"] == index["groups"] and again["splits"] == index["splits"]
    assert again["build"]["date"] == index["build"]["date"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.png")} == stamps


def _colour_cube():
    """A unit cube whose six faces are saturated red, green, blue, yellow, cyan and magenta (vertex colours)."""
    from splatgen.core.data.parts import Part, crease_normals

    m = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    tri = np.asarray(m.vertices)[np.asarray(m.faces)].reshape(-1, 3).astype(np.float32)
    normal = np.repeat(np.asarray(m.face_normals), 3, axis=0)
    palette = {(0, 0): (0.85, 0.1, 0.1), (0, 1): (0.1, 0.75, 0.15), (1, 0): (0.1, 0.2, 0.85),
               (1, 1): (0.85, 0.8, 0.1), (2, 0): (0.1, 0.75, 0.8), (2, 1): (0.8, 0.1, 0.75)}
    axis = np.abs(normal).argmax(1)
    sign = (normal[np.arange(len(normal)), axis] > 0).astype(int)
    colors = np.array([[*palette[a, s], 1.0] for a, s in zip(axis, sign)], np.float32)
    return [Part(positions=tri * 0.5, normals=crease_normals(tri), uvs=None, colors=colors,
                 base_color=np.ones(4, np.float32))]


def test_saturation_check_passes_the_builders_lights_and_catches_overexposure():
    from splatgen.core.data.mesh_render import MeshRenderer

    parts = _colour_cube()
    vm = cameras.orbit_viewmats([20.0, 140.0, 260.0], [25.0, 10.0, 35.0], 2.0).numpy()
    K = cameras.canonical_intrinsics(48).numpy()
    r = MeshRenderer()
    flat = r.render(parts, vm, K, 48, 48, lighting=FLAT_LIGHTING)
    # flat is the albedo: the vertex colours come back (the reference is exact)
    assert abs(compare_renders(flat, flat)["flat"] - np.mean([0.88, 0.87, 0.88, 0.88, 0.87, 0.88])) < 0.03
    for seed in range(3):
        lit = r.render(parts, vm, K, 48, 48, lighting=L.sample_lighting(seed, "cube"))
        assert compare_renders(lit, flat)["ratio"] > 0.95  # the builder's lights keep the colours
    burnt = L.Lighting(key_dir=(0.0, 1.0, 0.0), key_rgb=(3.0, 3.0, 3.0), fill_dir=(1.0, 0.0, 0.0),
                       fill_rgb=(2.0, 2.0, 2.0), ambient_rgb=(4.0, 4.0, 4.0), sky=0.0)
    assert compare_renders(r.render(parts, vm, K, 48, 48, lighting=burnt), flat)["ratio"] < 0.8  # clipped: washed out
    r.release()
