"""The one-step generator's distillation data (#33): the image set (stamp photos, dataset views) and the
multi-view teacher's quadruples, on the CPU with Debian's tuxpaint stamps and a tiny random teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatgen.core.distil.collect import collect, load_quads, plan_items, teacher_items
from splatgen.core.distil.images import (STAMPS_DIR, ImageSet, build_image_set, find_stamp_photos, held_out,
                                         is_photo, photo_scores)
from splatgen.core.errors import DatasetError, SplatgenError


def photo_like(seed: int = 0, size: int = 96) -> np.ndarray:
    """Shading and sensor noise on an opaque ellipse: what a cut-out photograph looks like."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    rgb = np.stack([0.3 + 0.5 * x, 0.2 + 0.4 * y, 0.5 - 0.3 * x * y], -1) * 255 + rng.normal(0, 6, (size, size, 3))
    alpha = (((x - 0.5) / 0.45) ** 2 + ((y - 0.5) / 0.3) ** 2 < 1) * 255
    return np.dstack([rgb.clip(0, 255), alpha]).astype(np.uint8)


def drawing_like(size: int = 96) -> np.ndarray:
    """Flat fills inside a dark outline: a clip-art drawing."""
    img = np.zeros((size, size, 4), np.uint8)
    img[10:86, 10:86] = (20, 20, 20, 255)
    img[14:82, 14:82] = (230, 60, 40, 255)
    img[30:60, 30:60] = (250, 220, 0, 255)
    return img


def save(path: Path, rgba: np.ndarray, dat: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)
    if dat is not None:
        path.with_suffix(".dat").write_text(dat)


@pytest.fixture(scope="module")
def stamps(tmp_path_factory) -> Path:
    """A stamps folder in tuxpaint's layout: two photos, a drawing, a stamp to paint, a cartoon, a mirror copy."""
    root = tmp_path_factory.mktemp("stamps")
    save(root / "animals" / "frog.png", photo_like(0), "nomirror\n")
    save(root / "food" / "plum.png", photo_like(1))
    save(root / "symbols" / "star.png", drawing_like())
    save(root / "animals" / "mask.png", photo_like(2), "colorable\n")
    save(root / "town" / "cartoon" / "house.png", photo_like(3))
    save(root / "food" / "plum_mirror.png", photo_like(1)[:, ::-1].copy())
    return root


def test_photo_scores_tell_photographs_from_flat_drawings():
    assert is_photo(photo_scores(photo_like()))
    colour, flat = photo_scores(drawing_like())
    assert flat > 0.5 and not is_photo((colour, flat))
    assert photo_scores(np.zeros((8, 8, 4), np.uint8)) == (0.0, 1.0)
    assert held_out("animals/frog.png") == held_out("animals/frog.png")  # a hash, not a draw
    share = np.mean([held_out(f"s/{i}.png") for i in range(2000)])
    assert 0.07 < share < 0.13


def test_the_stamp_finder_keeps_photos_and_says_why_it_left_the_rest_out(stamps):
    kept, skipped = find_stamp_photos(stamps)
    assert [e.origin for e in kept] == ["animals/frog.png", "food/plum.png"]
    assert {e.category for e in kept} == {"animals", "food"} and all(e.licence.startswith("GPL-2") for e in kept)
    why = dict(skipped)
    assert "drawing" in why["symbols/star.png"] and "painted" in why["animals/mask.png"]
    assert "cartoon" in why["town/cartoon/house.png"] and "mirror" in why["food/plum_mirror.png"]
    with pytest.raises(DatasetError, match="tuxpaint-stamps-default"):
        find_stamp_photos(stamps / "missing")


@pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="needs Debian's tuxpaint-stamps-default (scripts/install.sh)")
def test_the_debian_package_gives_hundreds_of_framed_photos():
    from splatgen.core.distil.images import frame_stamp

    kept, skipped = find_stamp_photos()
    assert len(kept) >= 300 and len(skipped) >= 300
    assert 20 <= sum(e.split == "holdout" for e in kept) <= 60
    names = {e.origin for e in kept}
    assert "animals/amphibians/frog.png" in names  # a photograph
    assert not any("/alphabets/" in n or "/cartoon/" in n for n in names)
    rgba = frame_stamp(STAMPS_DIR / "animals/amphibians/frog.png")
    assert rgba.shape == (128, 128, 4)
    ys, xs = np.nonzero(rgba[..., 3] >= 128)
    assert abs(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1 - 71) <= 2  # the training data's framing


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from splatgen.core.data.build import build_dataset
    from test_data import LIB, _name_in, box_mesh, write_obj

    src = tmp_path_factory.mktemp("distil-src") / LIB
    for stem in ("box", "crate"):
        name = _name_in("train", stem, "boxes")
        v, f, _ = box_mesh()
        write_obj(src / (name.replace("__", "/") + ".obj"), v, f, kd=(0.2, 0.5, 0.8))
    out = tmp_path_factory.mktemp("distil-data") / "data"
    summary = build_dataset(src, out, views=4, size=128, seed=1, workers=0, progress=False)
    assert summary.counts["train"] == 2, summary.counts
    return out


@pytest.fixture(scope="module")
def image_set(stamps, dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imgset") / "set"
    build_image_set(out, stamps, dataset, views_per_object=2, shard_images=3)
    return out


def test_the_image_set_holds_framed_stamps_and_dataset_views_with_their_licences(image_set, stamps, dataset):
    from splatgen.core.data.dataset import MultiViewDataset
    from splatgen.core.distil.images import frame_stamp

    index = json.loads((image_set / "index.json").read_text())
    rows = index["images"]
    assert [r["source"] for r in rows] == ["stamp"] * 2 + ["dataset"] * 4
    assert len({r["shard"] for r in rows}) == 2  # 3 images a shard
    every = ImageSet(image_set, split=None)
    assert every.rgba.shape == (6, 128, 128, 4) and every.rgba.dtype == torch.uint8
    assert torch.equal(every.rgba[0], torch.from_numpy(frame_stamp(stamps / "animals" / "frog.png")))
    src = MultiViewDataset(dataset, split="train", num_targets=1).source
    assert [r["origin"] for r in rows[2:]] == [f"{src.ids[o]}#{v}" for o in range(2) for v in (0, 2)]
    assert torch.equal(every.rgba[3], torch.from_numpy(src.views(0, [2])[0]))  # view 2 of the first object
    assert rows[2]["licence"] == src.meta[src.ids[0]]["license"]
    licences = (image_set / "LICENCES.md").read_text()
    assert "GPL-2.0-or-later" in licences and rows[2]["licence"] in licences
    x = every.inputs([3])
    a = every.rgba[3, ..., 3].float() / 255
    assert x.shape == (1, 4, 128, 128) and torch.allclose(x[0, 3], a)
    assert torch.allclose(x[0, :3][:, a == 0], torch.ones(1))  # transparent pixels show the white background
    assert len(ImageSet(image_set)) + len(ImageSet(image_set, "holdout")) == 6
    with pytest.raises(DatasetError, match="not empty"):
        build_image_set(image_set, stamps, None)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    from test_multiview import write_model_folder

    return write_model_folder(tmp_path_factory.mktemp("mv-teacher") / "model")


def test_collect_writes_the_teachers_deterministic_views_and_continues_where_it_stopped(image_set, teacher, tmp_path):
    from splatgen.core.generator import load_generator
    from splatgen.core.generator.multi_view import sample_views
    from splatgen.core.models import mv_autoencoder

    kw = dict(noises_per_image=2, guidances=(1.0, 3.0), steps=2, batch_size=2, shard_items=3, device="cpu", seed=5)
    straight = collect(teacher, image_set, tmp_path / "a", **kw)
    n = len(ImageSet(image_set))
    assert straight["items"] == straight["planned_items"] == 2 * n and len(straight["shards"]) == -(-2 * n // 3)
    q = load_quads(tmp_path / "a")
    m = 2 * n
    assert q["views"].shape == (m, 3, 128, 128, 4) and q["views"].dtype == torch.uint8
    assert q["noise"].shape == q["latents"].shape == (m, 3, 4, 8, 8) and q["viewmats"].shape == (m, 3, 4, 4)
    plan = plan_items([int(r["id"]) for r in ImageSet(image_set).rows], 2, [1.0, 3.0], 5)
    assert q["image"].tolist() == [p[0] for p in plan] and q["seed"].tolist() == [p[1] for p in plan]
    assert q["guidance"].tolist() == [p[2] for p in plan] and len(set(q["seed"].tolist())) == m
    # an item is the generator's own DDIM from its seed's noise: recomputed here, it matches
    gen = load_generator(teacher, device="cpu")
    images = ImageSet(image_set)
    k = 3
    row = next(j for j, r in enumerate(images.rows) if r["id"] == int(q["image"][k]))
    torch.testing.assert_close(q["noise"][k].float(), gen.noise(int(q["seed"][k]))[0], atol=1e-3, rtol=1e-3)
    z_in = mv_autoencoder.encode(gen.autoencoder, images.inputs([row]))
    z = sample_views(gen.denoiser, z_in, q["viewmats"][k:k + 1], gen.noise(int(q["seed"][k])), steps=2,
                     guidance=float(q["guidance"][k]), scheduler="ddim")
    torch.testing.assert_close(q["latents"][k].float(), z[0], atol=2e-3, rtol=2e-3)
    again = teacher_items(gen, images.inputs([row]), [int(q["seed"][k])], float(q["guidance"][k]), 2)
    # the same noise gives the same views (to a unit of rounding: batched and single convolutions differ in the last bits)
    assert int((again["views"][0].int() - q["views"][k].int()).abs().max()) <= 1
    # a collection stopped after 4 items and continued equals the straight one
    part = collect(teacher, image_set, tmp_path / "b", max_items=4, **kw)
    assert part["items"] == 4
    collect(teacher, image_set, tmp_path / "b", **kw)
    r = load_quads(tmp_path / "b")
    for f in ("image", "seed", "guidance", "elevation", "noise", "viewmats"):
        assert torch.equal(r[f], q[f]), f
    assert int((r["views"].int() - q["views"].int()).abs().max()) <= 1
    torch.testing.assert_close(r["latents"].float(), q["latents"].float(), atol=2e-3, rtol=2e-3)
    with pytest.raises(DatasetError, match="another teacher"):
        collect(teacher, image_set, tmp_path / "b", **{**kw, "steps": 3})


def test_collect_refuses_a_teacher_that_is_not_the_multi_view_model(image_set, tmp_path):
    from splatgen.core.models.splatter_net import SplatterNet

    reg = tmp_path / "regressor"
    SplatterNet(channels=(8, 16, 32), attention_head_dim=32, gaussians_per_pixel=1).save_pretrained(
        reg, safe_serialization=True)
    (reg / "splatgen.json").write_text(json.dumps({"format": 1, "kind": "regressor", "name": "r",
                                                   "components": {"net": "."}}))
    with pytest.raises(SplatgenError, match="multi-view"):
        collect(reg, image_set, tmp_path / "c", device="cpu")
    with pytest.raises(SplatgenError, match="guidance"):
        collect(reg, image_set, tmp_path / "c", guidances=(30.0,), device="cpu")


def test_the_cli_builds_a_set_and_collects(stamps, teacher, tmp_path, run_splatgen):
    out = tmp_path / "set"
    res = run_splatgen("distil", "images", "--stamps", str(stamps), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "wrote 2 images" in res.stdout and "2 photos kept" in res.stdout
    res = run_splatgen("distil", "collect", "--images", str(out), "--teacher", str(teacher), "--out",
                       str(tmp_path / "q"), "--steps", "1", "--noises-per-image", "1", "--device", "cpu",
                       "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "items in 1 shards" in res.stdout and load_quads(tmp_path / "q")["views"].shape[0] >= 1


def test_every_guidance_value_is_used_and_a_damaged_collection_is_named(image_set, teacher, tmp_path):
    import shutil

    plan = plan_items([0, 1, 2], 2, [1.5, 2.0, 3.0])
    assert [g for *_, g in plan] == [1.5, 2.0, 3.0, 1.5, 2.0, 3.0]  # more values than noises per image
    kw = dict(noises_per_image=1, steps=1, batch_size=4, shard_items=2, device="cpu")
    collect(teacher, image_set, tmp_path / "a", max_items=4, **kw)
    # the same contents elsewhere continue (paths do not identify a collection); a leftover temp file is ignored
    moved_set, moved_teacher = tmp_path / "set-moved", tmp_path / "teacher-moved"
    shutil.copytree(image_set, moved_set)
    shutil.copytree(teacher, moved_teacher)
    (tmp_path / "a" / ".quads-00002.safetensors.abc123.tmp").write_bytes(b"")
    done = collect(moved_teacher, moved_set, tmp_path / "a", **kw)
    assert done["items"] == done["planned_items"] == len(ImageSet(image_set))
    (tmp_path / "a" / "quads-00000.safetensors").unlink()
    with pytest.raises(DatasetError, match="quads-00000.*missing"):
        collect(teacher, image_set, tmp_path / "a", **kw)
    with pytest.raises(DatasetError, match="quads-00000"):
        load_quads(tmp_path / "a")
    (tmp_path / "a" / "index.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="unreadable|not a collection"):
        collect(teacher, image_set, tmp_path / "a", **kw)
    with pytest.raises(SplatgenError, match="seeds"):
        collect(teacher, image_set, tmp_path / "b", seed=-1, **kw)


def test_a_damaged_image_set_is_named_not_a_traceback(image_set, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(image_set, bad)
    index = json.loads((bad / "index.json").read_text())
    index["images"][0]["index"] = 99
    (bad / "index.json").write_text(json.dumps(index))
    with pytest.raises(DatasetError, match="past the end"):
        ImageSet(bad, split=None)
    index["images"][0]["index"] = -1
    (bad / "index.json").write_text(json.dumps(index))
    with pytest.raises(DatasetError, match="bad image entry"):
        ImageSet(bad, split=None)
    (bad / "index.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(DatasetError, match="not an image set"):
        ImageSet(bad)
    (bad / "index.json").write_text(json.dumps(json.loads((image_set / "index.json").read_text())))
    (bad / "images-00001.safetensors").write_bytes(b"not a shard")
    with pytest.raises(DatasetError, match="images-00001"):
        ImageSet(bad, split=None)
