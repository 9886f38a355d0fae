"""Hostile and broken inputs at every entry point: one clear line, a non-zero exit, nothing lost.

Every hostile file is made here: a PostScript program named ``.png``, truncated and bomb-sized
PNGs, a pickle that would run code, NaN and missing weights, wrong-typed manifests, broken camera
files, splats of absurd size; and the outputs a user already has (a folder of their own where
``generate`` would write). Commands run in forked processes (conftest's ``run_splatgen``) or
in-process where that is enough.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import pickle
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatgen.core.errors import ImageError, ModelError, SplatgenError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "models"

#: A PostScript program that never ends: what Ghostscript would run if Pillow handed the file to it.
POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n{ 1 pop } loop\nshowpage\n"


def clean_error(r, *words: str) -> None:
    """``r`` failed with one line on stderr, no traceback, naming ``words``."""
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def png_bytes(rgba: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` RGBA pixels, with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def cli(run_splatgen):
    return lambda *args: run_splatgen(*args, timeout=120)


# ---------------------------------------------------------------------- 1. images
def test_postscript_named_png_is_refused_without_running_ghostscript(tmp_path):
    from splatgen.core.image_loading import load_image, read_rgba

    evil = tmp_path / "photo.png"
    evil.write_bytes(POSTSCRIPT)
    with Image.open(evil) as im:  # plain Pillow takes it for EPS: the file would reach Ghostscript
        assert im.format == "EPS"
    t0 = time.perf_counter()
    for read in (load_image, read_rgba, lambda p: load_image(p.read_bytes())):
        with pytest.raises(ImageError, match="not an image in a supported format"):
            read(evil)
    assert time.perf_counter() - t0 < 2


def test_ghostscript_is_off_for_every_pillow_user_in_the_process(tmp_path):
    import splatgen.core.image_loading  # noqa: F401 - importing it switches Ghostscript off
    from PIL import EpsImagePlugin

    assert not EpsImagePlugin.has_ghostscript()
    evil = tmp_path / "x.eps"
    evil.write_bytes(POSTSCRIPT)
    with Image.open(evil) as im, pytest.raises(OSError):  # even Pillow opened directly (trimesh) cannot run it
        im.load()


def test_truncated_and_bomb_images_are_clear_errors(tmp_path):
    from splatgen.core.image_loading import load_image, read_rgba

    data = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 4), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    for read in (load_image, read_rgba):
        with pytest.raises(ImageError, match="cut.png.*truncated"):
            read(cut)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(60_000, 60_000))
    t0 = time.perf_counter()
    for read in (load_image, lambda p: read_rgba(p, max_pixels=None)):
        with pytest.raises(ImageError, match="bomb.png.*larger than"):
            read(bomb)
    assert time.perf_counter() - t0 < 2


def test_generate_refuses_a_postscript_photo_in_one_line(tmp_path, cli):
    evil = tmp_path / "chair.png"
    evil.write_bytes(POSTSCRIPT)
    out = tmp_path / "out"
    r = cli("generate", evil, "-m", "regressor", "-o", out, "--no-progress")
    clean_error(r, "chair.png", "not an image")
    assert not out.exists()


def test_a_bad_photo_among_good_ones_is_skipped_with_its_reason(tmp_path, cli):
    evil, bomb, good = tmp_path / "evil.png", tmp_path / "bomb.png", tmp_path / "good.png"
    evil.write_bytes(POSTSCRIPT)
    bomb.write_bytes(bomb_png(60_000, 60_000))
    rgba = np.zeros((96, 96, 4), np.uint8)
    rgba[24:72, 24:72] = (180, 120, 60, 255)
    good.write_bytes(png_bytes(rgba))
    r = cli("generate", evil, good, bomb, "-m", "regressor", "-o", tmp_path / "out", "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "evil.png: not an image" in r.stdout and "bomb.png: the image is larger than" in r.stdout, r.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good"]


def test_every_image_splatgen_reads_goes_through_open_image():
    """No module but image_loading opens an image file itself (Pillow's Image.open, imageio, OpenCV's
    imread): the format list and the size checks cannot be bypassed by new code."""
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        if path.name == "image_loading.py":
            continue
        text = path.read_text()
        for needle in ("Image.open(", "iio.imread(", "imageio.imread(", "cv2.imread(", "iio.imiter("):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not offenders, offenders


def test_a_dataset_view_that_is_not_an_image_is_named(tmp_path):
    from splatgen.core.data.dataset import decode_view
    from splatgen.core.errors import DatasetError

    with pytest.raises(DatasetError, match="v.png: not a PNG or WebP"):
        decode_view(np.frombuffer(POSTSCRIPT, np.uint8), "v.png")
    data = png_bytes(np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(DatasetError, match="v.png.*truncated"):
        decode_view(np.frombuffer(data[:60], np.uint8), "v.png")


# ---------------------------------------------------------------------- 4. no pickle is ever opened
class _Payload:
    """Unpickling this writes ``path``: the proof that a pickle was loaded."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def _pickle_folder(tmp_path: Path, with_safetensors: bool) -> tuple[Path, Path]:
    """A copy of the shipped regressor whose folder also (or only) holds a code-running pickle."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "splatgen.json").write_text((SHIPPED / "regressor" / "splatgen.json").read_text())
    (folder / "config.json").write_text((SHIPPED / "regressor" / "config.json").read_text())
    proof = tmp_path / "PWNED"
    payload = pickle.dumps(_Payload(proof))
    for name in ("diffusion_pytorch_model.bin", "pytorch_model.bin", "model.pt"):
        (folder / name).write_bytes(payload)
    if with_safetensors:
        os.symlink(SHIPPED / "regressor" / "diffusion_pytorch_model.safetensors",
                   folder / "diffusion_pytorch_model.safetensors")
    return folder, proof


def test_a_pickle_in_a_model_folder_is_never_unpickled(tmp_path):
    from splatgen.core.generator import load_generator
    from splatgen.core.training.checkpoint import CheckpointError, load_weights
    from splatgen.core.training.diffusion import load_frozen_teacher, load_frozen_var

    folder, proof = _pickle_folder(tmp_path, with_safetensors=False)
    with pytest.raises(ModelError, match=r"no weights \(\*\.safetensors\)"):
        load_generator(folder, "cpu")
    with pytest.raises(SplatgenError, match="no weights"):
        load_frozen_var(str(folder), "cpu")
    with pytest.raises(SplatgenError, match="no weights"):
        load_frozen_teacher(str(folder), "cpu")
    with pytest.raises(CheckpointError, match="no weights"):
        load_weights(folder)  # --init-from, --resume
    assert not proof.exists()


def test_beside_safetensors_a_pickle_is_ignored(tmp_path):
    from splatgen.core.generator import load_generator

    folder, proof = _pickle_folder(tmp_path, with_safetensors=True)
    gen = load_generator(folder, "cpu")
    assert gen.kind == "regressor" and not proof.exists()


def test_no_module_can_load_a_pickle():
    """Networks load through models/weights.py (config JSON + safetensors); nothing calls the loaders
    that fall back to pickles."""
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text()
        for needle in ("from_pretrained(", "torch.load(", "pickle.load", "allow_pickle=True"):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not offenders, offenders


# ---------------------------------------------------------------------- 9. strict models
def _regressor_folder(tmp_path: Path, weights: dict | None = None, manifest: dict | None = None,
                      config: dict | None = None) -> Path:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "regressor"
    folder.mkdir()
    base = json.loads((SHIPPED / "regressor" / "splatgen.json").read_text())
    (folder / "splatgen.json").write_text(json.dumps(base if manifest is None else manifest))
    cfg = json.loads((SHIPPED / "regressor" / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **(config or {})}))
    src = SHIPPED / "regressor" / "diffusion_pytorch_model.safetensors"
    if weights is None:
        os.symlink(src, folder / src.name)
    else:
        tensors = load_file(str(src))
        for key, value in weights.items():
            if value is None:
                del tensors[key]
            else:
                tensors[key] = value(tensors[key])
        save_file(tensors, str(folder / src.name))
    return folder


def _first_key() -> str:
    from safetensors import safe_open

    with safe_open(str(SHIPPED / "regressor" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        return sorted(f.keys())[0]


@pytest.mark.parametrize("change, message", [
    ("missing", "1 missing"),
    ("nan", "NaN or infinite"),
    ("inf", "NaN or infinite"),
    ("shape", "of another shape"),
    ("extra", "1 unexpected"),
])
def test_weights_load_strictly(tmp_path, change, message):
    from splatgen.core.generator import load_generator

    key = _first_key()
    weights = {
        "missing": {key: None},
        "nan": {key: lambda t: torch.full_like(t, float("nan"))},
        "inf": {key: lambda t: t.clone().index_fill_(0, torch.tensor([0]), float("inf"))},
        "shape": {key: lambda t: torch.zeros(t.numel() + 1)},
        "extra": {key: lambda t: t},
    }[change]
    folder = _regressor_folder(tmp_path, weights=weights)
    if change == "extra":
        from safetensors.torch import load_file, save_file

        f = folder / "diffusion_pytorch_model.safetensors"
        tensors = load_file(str(f))
        tensors["not.a.weight"] = torch.zeros(3)
        save_file(tensors, str(f))
    with pytest.raises(ModelError, match=message):
        load_generator(folder, "cpu")


@pytest.mark.parametrize("config, message", [
    ({"channels": [65536, 65536, 65536, 65536]}, "of another shape"),  # 100s of GB if it were built
    ({"channels": "wide"}, "not a valid config"),
    ({"gaussians_per_pixel": -1}, "not a valid config"),
])
def test_a_config_that_does_not_fit_its_weights_is_refused_before_it_is_built(tmp_path, config, message):
    from splatgen.core.generator import load_generator

    folder = _regressor_folder(tmp_path, config=config)
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match=message):
        load_generator(folder, "cpu")
    assert time.perf_counter() - t0 < 5


def test_nan_weights_in_a_component_fail_at_load_not_with_zero_splats(tmp_path, cli):
    folder = _regressor_folder(tmp_path, weights={_first_key(): lambda t: torch.full_like(t, float("nan"))})
    photo = tmp_path / "p.png"
    photo.write_bytes(png_bytes(np.full((64, 64, 3), 200, np.uint8)))
    r = cli("generate", photo, "-m", folder, "-o", tmp_path / "out", "--no-progress", "--keep-background")
    clean_error(r, "NaN")
    assert not (tmp_path / "out").exists()


def _diffusion_manifest(**change) -> dict:
    m = json.loads((SHIPPED / "diffusion" / "splatgen.json").read_text())
    m.update(change)
    return m


@pytest.mark.parametrize("manifest, message", [
    ([1, 2], "must be a JSON object"),
    (_diffusion_manifest(components=["var", "denoiser"]), "'components' must be a mapping"),
    (_diffusion_manifest(components={"var": 3}), "components.var must be a folder path"),
    (_diffusion_manifest(defaults=[2.0]), "'defaults' must be a mapping"),
    (_diffusion_manifest(defaults={"guidance": "high"}), "defaults.guidance must be a number"),
    (_diffusion_manifest(defaults={"steps": 2.5}), "defaults.steps must be an integer"),
    (_diffusion_manifest(defaults={"steps": True}), "defaults.steps must be an integer"),
    (_diffusion_manifest(defaults={"scheduler": 3}), "defaults.scheduler must be a string"),
    (_diffusion_manifest(defaults={"temperature": 1.0}), "defaults.temperature is not a setting"),
    (_diffusion_manifest(format="1"), "'format' must be an integer"),
    (_diffusion_manifest(kind=["latent-diffusion"]), "'kind' must be one of"),
    (_diffusion_manifest(name={"x": 1}), "'name' must be a string"),
])
def test_wrong_manifests_are_one_clear_model_error(tmp_path, manifest, message):
    from splatgen.core.generator import load_generator

    folder = tmp_path / "diffusion"
    folder.mkdir()
    (folder / "splatgen.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=message):
        load_generator(folder, "cpu")


def test_manifest_defaults_out_of_range_are_refused(tmp_path, cli):
    folder = tmp_path / "diffusion"
    folder.mkdir()
    for part in ("var", "denoiser"):
        os.symlink(SHIPPED / "diffusion" / part, folder / part)
    manifest = _diffusion_manifest(defaults={"steps": -5})
    manifest["components"]["teacher"] = str(SHIPPED / "regressor")
    (folder / "splatgen.json").write_text(json.dumps(manifest))
    photo = tmp_path / "p.png"
    photo.write_bytes(png_bytes(np.full((64, 64, 3), 200, np.uint8)))
    r = cli("generate", photo, "-m", folder, "-o", tmp_path / "out", "--no-progress")
    clean_error(r, "splatgen.json", "steps must be between")


# ---------------------------------------------------------------------- 5, 6, 7. generate's outputs
def test_same_stem_photos_get_distinct_folders(tmp_path, cli):
    from splatgen.core.commands.generate import folder_names

    assert folder_names([Path("a/chair.png"), Path("b/chair.png"), Path("Chair.jpg"), Path("chair-2.png")]) == \
        ["chair", "chair-2", "Chair-3", "chair-2-2"]
    long = folder_names([Path("ü" * 300 + ".png")])[0]
    assert long == "ü" * 60 and len(long.encode()) == 120
    photos = []
    for sub, colour in (("a", (200, 40, 40)), ("b", (40, 40, 200))):
        (tmp_path / sub).mkdir()
        rgba = np.zeros((96, 96, 4), np.uint8)
        rgba[24:72, 24:72] = (*colour, 255)
        photos.append(tmp_path / sub / "chair.png")
        photos[-1].write_bytes(png_bytes(rgba))
    out = tmp_path / "out"
    r = cli("generate", *photos, "-m", "regressor", "-o", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    inputs = [np.asarray(Image.open(out / name / "input.png")) for name in ("chair", "chair-2")]
    red, blue = (x[..., :3][x[..., 3] > 200].mean(0) for x in inputs)
    assert red[0] > red[2] + 50 and blue[2] > blue[0] + 50  # each folder holds its own photo


def test_generate_never_replaces_what_it_did_not_make(tmp_path, cli):
    photo = tmp_path / "chair.png"
    rgba = np.zeros((96, 96, 4), np.uint8)
    rgba[24:72, 24:72] = (180, 120, 60, 255)
    photo.write_bytes(png_bytes(rgba))
    out = tmp_path / "out"
    (out / "chair").mkdir(parents=True)
    (out / "chair" / "my_notes.txt").write_text("mine")
    r = cli("generate", photo, "-m", "regressor", "-o", out, "--no-progress")
    clean_error(r, "out/chair", "not made by splatgen")
    assert sorted(p.name for p in out.iterdir()) == ["chair"]  # nothing moved, nothing hidden beside it
    assert (out / "chair" / "my_notes.txt").read_text() == "mine"
    (out / "chair" / "my_notes.txt").unlink()
    (out / "chair").rmdir()
    (out / "chair").write_text("a file of mine")
    clean_error(cli("generate", photo, "-m", "regressor", "-o", out, "--no-progress"), "not made by splatgen")
    assert (out / "chair").read_text() == "a file of mine"


def test_generate_replaces_its_own_folder_but_not_files_added_to_it(tmp_path, cli):
    photo = tmp_path / "chair.png"
    rgba = np.zeros((96, 96, 4), np.uint8)
    rgba[24:72, 24:72] = (180, 120, 60, 255)
    photo.write_bytes(png_bytes(rgba))
    out = tmp_path / "out"
    for _ in range(2):  # the second run replaces the first's folder
        r = cli("generate", photo, "-m", "regressor", "-o", out, "--no-progress")
        assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["chair"]
    (out / "chair" / "keep.txt").write_text("mine")
    clean_error(cli("generate", photo, "-m", "regressor", "-o", out, "--no-progress"), "keep.txt")
    assert (out / "chair" / "keep.txt").read_text() == "mine" and (out / "chair" / "sample_00.ply").is_file()


def test_stale_partials_of_ours_are_swept_and_nothing_else(tmp_path):
    from splatgen.core.commands.generate import MARKER, sweep_stale

    child = subprocess.Popen(["true"])
    child.wait()  # a process id that has ended
    host = __import__("socket").gethostname()

    def folder(name: str, pid: int | None) -> Path:
        f = tmp_path / name
        f.mkdir()
        (f / "sample_00.ply").write_bytes(b"x")
        if pid is not None:
            (f / MARKER).write_text(json.dumps({"made_by": "splatgen generate", "pid": pid, "host": host}))
        return f

    stale = folder(".chair.partial-abc123", child.pid)
    stale_old = folder(".chair.old-1234", child.pid)
    running = folder(".sofa.partial-def456", os.getpid())
    users = folder(".notes.partial-1", None)
    assert sorted(sweep_stale(tmp_path)) == sorted([stale, stale_old])
    assert not stale.exists() and not stale_old.exists() and running.is_dir() and users.is_dir()


def test_a_missing_photo_creates_no_output_folder(tmp_path, cli):
    out = tmp_path / "deep" / "out"
    clean_error(cli("generate", tmp_path / "nope.png", "-o", out, "--no-progress"), "nope.png")
    assert not (tmp_path / "deep").exists()


def test_sigterm_during_generate_leaves_nothing(tmp_path):
    import conftest

    photo = tmp_path / "chair.png"
    rgba = np.zeros((96, 96, 4), np.uint8)
    rgba[24:72, 24:72] = (180, 120, 60, 255)
    photo.write_bytes(png_bytes(rgba))
    out = tmp_path / "out"
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(conftest.CLI_PRELOAD)
    err = tmp_path / "stderr"
    proc = ctx.Process(target=conftest._cli_process,
                       args=(["generate", str(photo), "-n", "1", "--steps", "1000", "-o", str(out), "--no-progress"],
                             None, str(tmp_path / "stdout"), str(err)))
    proc.start()
    deadline = time.time() + 120
    while time.time() < deadline and not (out.is_dir() and any(p.name.startswith(".chair.partial-")
                                                               for p in out.iterdir())):
        time.sleep(0.05)
    assert out.is_dir(), err.read_text()
    time.sleep(0.5)  # sampling under way
    os.kill(proc.pid, signal.SIGTERM)
    proc.join(60)
    assert proc.exitcode == 130, err.read_text()
    assert "interrupted" in err.read_text() and "Traceback" not in err.read_text()
    assert not out.exists()  # the partial folder and the output folder this run made are gone


def test_train_with_a_missing_dataset_leaves_no_run_folder(tmp_path, cli):
    run = tmp_path / "run"
    clean_error(cli("train", "regressor", "--data", tmp_path / "no-data", "-o", run, "--device", "cpu"), "no-data")
    assert not run.exists()


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--lr", "-1"), ("--max-minutes", "0"),
                                           ("--ema-decay", "1.5"), ("--cond-dropout", "2"), ("--seed", "-3"),
                                           ("--lr-final", "-1"), ("--lr-final", "0.5")])   # 0.5 > the default --lr
def test_train_refuses_out_of_range_settings_before_anything(tmp_path, option, value):
    from splatgen.core.cli import main

    run = tmp_path / "run"
    assert main(["train", "regressor", "--data", str(tmp_path), "-o", str(run), f"{option}={value}"]) == 2
    assert not run.exists()


# ---------------------------------------------------------------------- 8. cameras and splats
def test_every_float_option_of_every_command_refuses_nan_and_inf():
    import argparse

    from splatgen.core.cli import build_parser

    parser = build_parser()
    floats = []

    def walk(p):
        for action in p._actions:
            assert action.type is not float, (p.prog, action.option_strings)
            if getattr(action.type, "__name__", "") == "finite_float":
                floats.append((p, action))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(parser)
    assert len(floats) > 20
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["generate", "x.png", "--guidance", "nan"])
    assert e.value.code == 2


@pytest.mark.parametrize("args, words", [
    (["--azimuth", "nan"], ["--azimuth", "finite"]),
    (["--elevation", "inf"], ["--elevation", "finite"]),
    (["--elevation=-inf"], ["--elevation", "finite"]),
])
def test_render_refuses_non_finite_angles(tmp_path, cli, args, words):
    r = cli("render", ROOT / "assets" / "examples" / "teddy_bear.ply", "-o", tmp_path / "x.png", *args)
    clean_error(r, *words)
    assert not (tmp_path / "x.png").exists()


def test_orbit_cameras_refuse_non_finite_values():
    from splatgen.core.cameras import framing_viewmat, intrinsics_from_fov, orbit_viewmat
    from splatgen.core.errors import SettingsError

    for bad in (dict(azimuth_deg=float("nan"), elevation_deg=0), dict(azimuth_deg=0, elevation_deg=float("inf")),
                dict(azimuth_deg=0, elevation_deg=0, distance=0.0), dict(azimuth_deg=0, elevation_deg=0, target=(0, float("nan"), 0))):
        with pytest.raises(SettingsError):
            orbit_viewmat(**bad)
    with pytest.raises(SettingsError, match="field of view"):
        intrinsics_from_fov(0.0, 64, 64)
    with pytest.raises(SettingsError, match="azimuth"):
        framing_viewmat(torch.zeros(5, 3), azimuth_deg=float("nan"))


def _transforms(tmp_path: Path, **frame_change) -> Path:
    frame = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist(), "fl_x": 100.0, "w": 64, "h": 64}
    frame.update(frame_change)
    frame = {k: v for k, v in frame.items() if v is not None}
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps({"frames": [frame]}))
    return path


@pytest.mark.parametrize("change, message", [
    (dict(fl_x=0), "'fl_x' must be above 0"),
    (dict(fl_x=-3.0), "'fl_x' must be above 0"),
    (dict(fl_x="wide"), "'fl_x' must be a number"),
    (dict(fl_x=None, camera_angle_x=0.0), "'camera_angle_x' must be between"),
    (dict(fl_x=None, camera_angle_x=4.0), "'camera_angle_x' must be between"),
    (dict(fl_y=float("inf")), "'fl_y' must be a finite number"),
    (dict(w=0), "'w' must be above 0"),
    (dict(h=12.5), "whole number"),
    (dict(cx="left"), "'cx' must be a number"),
    (dict(transform_matrix=np.zeros((4, 4)).tolist()), "not a camera pose"),
])
def test_broken_camera_files_are_clear_errors(tmp_path, change, message):
    from splatgen.core.cameras import CameraFileError, load_transforms

    with pytest.raises(CameraFileError, match=message):
        load_transforms(_transforms(tmp_path, **change))


def test_render_with_a_zero_focal_length_camera(tmp_path, cli):
    r = cli("render", ROOT / "assets" / "examples" / "teddy_bear.ply", "--camera", _transforms(tmp_path, fl_x=0),
            "-o", tmp_path / "x.png")
    clean_error(r, "fl_x")


def test_enormous_splats_render_with_a_warning(tmp_path, cli):
    from splatgen.core.io import load_splats, save_splats

    g = load_splats(ROOT / "assets" / "examples" / "teddy_bear.ply")
    g.log_scales = torch.full_like(g.log_scales, 8.0)  # linear-looking scales taken as logs: e^8 ≈ 3000
    huge = tmp_path / "huge.ply"
    save_splats(huge, g)
    r = cli("render", huge, "-o", tmp_path / "x.png", "--size", "48", "48")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "warning:" in lines[0] and "larger than the whole object" in lines[0], r.stderr
    ok = cli("render", ROOT / "assets" / "examples" / "teddy_bear.ply", "-o", tmp_path / "y.png", "--size", "48", "48")
    assert ok.returncode == 0 and "warning" not in ok.stderr, ok.stderr


# ---------------------------------------------------------------------- 10. data and eval
def _view_object(root: Path, truncate: bool) -> Path:
    """An object folder of two 128² views; the second one truncated when asked."""
    from splatgen.core.cameras import canonical_intrinsics, orbit_viewmats, save_transforms

    obj = root / "obj"
    obj.mkdir(parents=True)
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[40:88, 40:88] = (120, 80, 60, 255)
    for i in range(2):
        data = png_bytes(rgba)
        (obj / f"r_{i}.png").write_bytes(data[: len(data) // 3] if truncate and i == 1 else data)
    save_transforms(obj / "transforms.json", orbit_viewmats([0.0, 90.0], 15.0), canonical_intrinsics(128), 128, 128,
                    ["r_0.png", "r_1.png"])
    return obj


def test_eval_names_a_truncated_view(tmp_path, cli):
    _view_object(tmp_path / "data", truncate=True)
    r = cli("eval", "--data", tmp_path / "data", "-m", "regressor", "--device", "cpu", "--no-progress")
    clean_error(r, "r_1.png", "truncated")


@pytest.mark.parametrize("step", ["build", "pack"])
def test_data_out_that_is_a_file_or_cannot_be_made(tmp_path, cli, step):
    blocker = tmp_path / "blocker"
    blocker.write_text("mine")
    first = ["--source", tmp_path] if step == "build" else ["--data", tmp_path]
    clean_error(cli("data", step, *first, "-o", blocker), "blocker", "not a folder")
    clean_error(cli("data", step, *first, "--out", blocker / "sub"), "blocker", "not a folder")
    assert blocker.read_text() == "mine"


def test_data_pack_quality_is_a_range(tmp_path, cli):
    for q in ("0", "101", "-5", "ten"):
        clean_error(cli("data", "pack", "--data", tmp_path, "--out", tmp_path / "p", "--quality", q), "--quality")
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------------- 16. the same short options
def test_short_options_mean_the_same_in_every_command():
    """``-o`` is the output of every command that writes one, ``-m`` the model, ``-n`` the samples,
    and no short option means something else anywhere."""
    import argparse

    from splatgen.core.cli import build_parser

    meaning = {"-o": {"--out", "--output", "--json", "--out-dir"}, "-m": {"--model"}, "-n": {"--samples"},
               "-k": {"--samples"}, "-h": {"--help"}}
    seen = []

    def walk(p):
        for action in p._actions:
            shorts = [o for o in action.option_strings if not o.startswith("--")]
            longs = {o for o in action.option_strings if o.startswith("--")}
            for s in shorts:
                assert s in meaning and longs & meaning[s], (p.prog, action.option_strings)
            for s, names in meaning.items():
                if longs & names and s not in ("-k", "-h"):
                    assert s in shorts, (p.prog, action.option_strings)
                    seen.append((p.prog, s))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())
    progs = {prog for prog, s in seen if s == "-o"}
    assert {"splatgen generate", "splatgen render", "splatgen eval", "splatgen train", "splatgen data build",
            "splatgen data pack"} <= progs, progs
    args = build_parser().parse_args(["generate", "x.png", "-o", "somewhere", "-m", "regressor", "-n", "2"])
    assert (str(args.out), args.model, args.samples) == ("somewhere", "regressor", 2)
