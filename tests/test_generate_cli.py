"""`splatgen generate`, `splatgen eval` and the exports, end to end on the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from splatgen.core.cameras import load_transforms, save_transforms
from splatgen.core.export import TurntableSettings, contact_sheet, save_sample, save_turntable
from splatgen.core.io import load_splats
from splatgen.core.render import render


@pytest.fixture
def run_cli(run_splatgen):
    """``splatgen ARGS`` in a process of its own (conftest's ``run_splatgen``)."""
    return lambda *args, cwd=None: run_splatgen(*args, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, example_image) -> Path:
    """A photo-like RGBA PNG: the example object, larger than the model input, off-centre."""
    rgba = (example_image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    big = np.zeros((300, 400, 4), np.uint8)
    big[40:40 + 256, 30:30 + 256] = np.kron(rgba, np.ones((2, 2, 1), np.uint8))
    path = tmp_path_factory.mktemp("photos") / "bear photo.png"
    iio.imwrite(path, big)
    return path


@pytest.fixture(scope="module")
def sample(generated_samples):
    return generated_samples[0]


def test_exports_read_back(tmp_path, sample):
    n = save_sample(tmp_path / "s.ply", sample)
    g = load_splats(tmp_path / "s.ply")
    assert g.num_gaussians == n > 1000
    keep = sample.gaussians.opacities >= 1 / 255
    torch.testing.assert_close(g.means, sample.gaussians.means[keep])
    assert save_sample(tmp_path / "s.splat", sample) == n
    assert load_splats(tmp_path / "s.splat").num_gaussians == n
    video = save_turntable(tmp_path / "t.mp4", sample, TurntableSettings(frames=8, width=64, height=64))
    frames = iio.imread(video)
    assert frames.shape[0] == 8 and frames.shape[1:3] == (64, 64)
    assert frames.mean() < 250  # something other than the white background
    sheet = contact_sheet([sample, sample], views=3, size=32)
    assert sheet.shape == (64, 96, 3)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_generate_writes_the_output_folder(tmp_path, photo, run_cli):
    r = run_cli("generate", photo, "-n", "2", "--steps", "3", "--out", tmp_path, "--video", "--sheet",
                "--no-progress", "--format", "both")
    assert r.returncode == 0, r.stderr
    assert "bear_photo: photo camera: elevation " in r.stdout and "(estimated, expected error ±" in r.stdout
    folder = tmp_path / "bear_photo"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".splatgen-output.json", "cameras.json", "input.png", "sample_00.ply", "sample_00.splat",
                     "sample_00.splat.json", "sample_01.ply", "sample_01.splat", "sample_01.splat.json", "sheet.png",
                     "turntable.mp4"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # the turntable holds both samples side by side, 256² each, decoded by ffmpeg
    import imageio_ffmpeg
    reader = imageio_ffmpeg.read_frames(str(folder / "turntable.mp4"))
    assert next(reader)["size"] == (512, 256)
    reader.close()
    inp = iio.imread(folder / "input.png")
    assert inp.shape == (128, 128, 4) and inp[..., 3].max() == 255 and inp[0, 0, 3] == 0
    # the input camera renders the sample onto the input's silhouette
    cams = load_transforms(folder / "cameras.json")
    g = load_splats(folder / "sample_00.ply")
    out = render(g, cams.viewmats, cams.Ks[0], 128, 128, backend="torch")
    seen, truth = out.alpha[0, ..., 0].numpy() > 0.5, inp[..., 3] > 127
    assert (seen & truth).sum() / (seen | truth).sum() > 0.7


def test_generate_resample_occluded_and_keep_the_run(tmp_path, photo, run_cli):
    from splatgen.core.runs import Runs

    r = run_cli("generate", photo, "-n", "1", "--steps", "3", "--out", tmp_path / "out", "--resample-occluded",
                "--runs", tmp_path / "runs", "--samples-file", tmp_path / "set.safetensors", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "bear_photo" / "sample_00_resampled.ply").is_file()
    # the run the app's History lists: the same sample, its photo and settings
    (run,) = Runs(tmp_path / "runs").list()
    assert run.status == "done" and run.samples == 1 and run.name == "bear_photo"
    (kept,) = sorted(run.folder.rglob("*.ply"))
    whole, exported = load_splats(kept), load_splats(tmp_path / "out" / "bear_photo" / "sample_00.ply")
    visible = whole.opacities >= 1 / 255  # the run keeps every splat (to resample later); exports drop clear ones
    torch.testing.assert_close(whole.means[visible], exported.means)
    from splatgen.core.sample_sets import load_sample_set

    sset = load_sample_set(tmp_path / "set.safetensors")   # the notebook's file: the same sample, every splat
    torch.testing.assert_close(sset.gaussians[0].means, whole.means)
    assert sset.seeds == [0] and sset.info["name"] == "bear_photo"


@pytest.mark.parametrize("case", ["missing", "empty", "text", "tiny"])
def test_generate_bad_photos(tmp_path, case, run_cli):
    path = tmp_path / f"{case}.png"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("not an image at all")
    elif case == "tiny":
        iio.imwrite(path, np.zeros((1, 1, 4), np.uint8))
    out = tmp_path / "out"
    r = run_cli("generate", path, "--steps", "2", "--out", out, "--no-progress")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "error:" in r.stderr and path.name in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_generate_output_folder_is_a_file(tmp_path, photo, run_cli):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    r = run_cli("generate", photo, "--steps", "2", "--out", blocker, "--no-progress")
    assert r.returncode != 0 and "not a folder" in r.stderr and "Traceback" not in r.stderr


def test_interrupted_generation_leaves_nothing(tmp_path, photo, monkeypatch):
    from splatgen.core import export
    from splatgen.core.cli import main

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "save_turntable", boom)
    code = main(["generate", str(photo), "-n", "1", "--steps", "2", "--out", str(tmp_path), "--video", "--no-progress"])
    assert code == 130
    assert list(tmp_path.iterdir()) == []


def _bear_object(root: Path, azimuths: list[float]) -> Path:
    """An object folder: the example splat rendered at dataset-like cameras (frame 0 = input)."""
    from splatgen.core.cameras import canonical_intrinsics, orbit_viewmats
    from splatgen.assets import __path__ as assets_path

    g = load_splats(Path(next(iter(assets_path))) / "examples" / "teddy_bear.ply")
    vms = orbit_viewmats(azimuths, 15.0)
    K = canonical_intrinsics(128)
    out = render(g, vms, K, 128, 128, backend="torch")
    obj = root / "bear"
    obj.mkdir(parents=True)
    names = []
    for i in range(len(azimuths)):
        rgba = torch.cat([out.rgb[i], out.alpha[i]], -1).clamp(0, 1)
        names.append(f"r_{i}.png")
        iio.imwrite(obj / names[-1], (rgba.numpy() * 255 + 0.5).astype(np.uint8))
    save_transforms(obj / "transforms.json", vms, K, 128, 128, names)
    return obj


def test_eval_on_a_folder_of_objects(tmp_path, run_cli):
    """Objects rendered from the example splat at dataset-like cameras; eval reports every metric."""
    _bear_object(tmp_path / "data", [20.0, 110.0, 200.0])
    r = run_cli("eval", "--data", tmp_path / "data", "-k", "2", "--steps", "2", "--json", tmp_path / "e.json", "--no-progress")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "e.json").read_text())
    for key in ("objects", "input_psnr", "input_ssim", "novel_psnr", "novel_ssim", "best_of_k_novel_psnr", "k",
                "diversity_novel_psnr", "diversity_input_psnr", "input_ms_ssim", "novel_ms_ssim"):
        assert key in res
    assert 0.0 < res["novel_ms_ssim"] <= res["input_ms_ssim"] <= 1.0
    assert 0.5 < res["input_saturation_ratio"] < 1.5  # the bear is brown: a ratio, not null
    assert res["objects"] == 1 and res["k"] == 2
    assert res["input_psnr"] > 18 and res["best_of_k_novel_psnr"] >= res["novel_psnr"] - 1e-6
    r = run_cli("eval", "--data", tmp_path / "nothing-here")
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_eval_posterior_scores_the_var_on_unseen_views(tmp_path, run_cli):
    """--posterior-context: the VAR decodes the latent of input + N views; novel = the views it did not
    see; the choice of views follows the seed; other models and too many views are refused."""
    _bear_object(tmp_path / "data", [20.0, 80.0, 140.0, 200.0, 260.0])
    base = ("eval", "--data", tmp_path / "data", "--posterior-context", "2", "--no-progress")
    r = run_cli(*base, "--json", tmp_path / "a.json")
    assert r.returncode == 0, r.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["kind"] == "var-posterior" and a["num_context"] == 2 and a["objects"] == 1
    assert a["input_psnr"] > 18 and 5 < a["novel_psnr"] < 60 and 5 < a["context_psnr"] < 60
    assert run_cli(*base, "--json", tmp_path / "b.json").returncode == 0
    def scores_of(result: dict) -> list[dict]:  # per object, without the timing
        return [{k: v for k, v in row.items() if k != "seconds"} for row in result["per_object"]]

    assert all(row["seconds"] > 0 for row in a["per_object"]) and a["load_seconds"] > 0
    assert scores_of(json.loads((tmp_path / "b.json").read_text())) == scores_of(a)  # deterministic
    scores = {round(a["novel_psnr"], 4)}
    for seed in range(1, 5):
        assert run_cli(*base, "--seed", str(seed), "--json", tmp_path / f"s{seed}.json").returncode == 0
        scores.add(round(json.loads((tmp_path / f"s{seed}.json").read_text())["novel_psnr"], 4))
        if len(scores) > 1:  # seen: no need to run the other seeds
            break
    assert len(scores) > 1  # other context views seen → other scores
    assert run_cli(*base[:-2], "0", "--no-progress", "--json", tmp_path / "c0.json").returncode == 0
    c0 = json.loads((tmp_path / "c0.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert c0["num_context"] == 0 and "context_psnr" not in c0  # input view alone: nothing else was seen
    r = run_cli(*base[:-2], "4", "--no-progress")
    assert r.returncode != 0 and "no target" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(*base, "--model", "regressor")
    assert r.returncode != 0 and "latent diffusion" in r.stderr and "Traceback" not in r.stderr



def test_eval_reports_means_per_category_from_the_objects_meta(tmp_path, run_cli):
    """Objects whose meta.json names a category get per-category means that are the means of their rows."""
    (tmp_path / "data").mkdir()
    for name, category, azimuths in (("bear_a", "toy", [20.0, 110.0]), ("bear_b", "toy", [60.0, 200.0]),
                                     ("bear_c", "furniture", [0.0, 150.0])):
        obj = _bear_object(tmp_path / "tmp" / name, azimuths).rename(tmp_path / "data" / name)
        (obj / "meta.json").write_text(json.dumps({"category": category}))
    r = run_cli("eval", "--data", tmp_path / "data", "-m", "regressor", "--json", tmp_path / "e.json", "--no-progress")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "e.json").read_text())
    assert set(res["per_category"]) == {"toy", "furniture"}
    for category, means in res["per_category"].items():
        rows = [row for row in res["per_object"] if row["category"] == category]
        assert means["objects"] == len(rows) == (2 if category == "toy" else 1)
        assert means["novel_psnr"] == pytest.approx(float(np.mean([row["novel_psnr"] for row in rows])))
    assert "per category (novel_psnr):" in r.stdout and "furniture" in r.stdout
