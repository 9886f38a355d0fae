"""The ``splatgen`` command line as a user runs it (a process of its own), the shipped example, and the README.

Every failure a user can cause must end with a non-zero exit code, one clear ``error:`` line on
stderr, no traceback, and no output file (not even a partial or temporary one).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from splatgen.core import framing
from splatgen.core.cameras import canonical_intrinsics, orbit_viewmats, save_transforms
from splatgen.core.io import load_splats, save_splats
from splatgen.core.render import render

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "teddy_bear.ply"
# module of each subcommand (see core/cli.py) -> the name it adds
COMMANDS = {
    "splatgen.core.commands.generate": "generate",
    "splatgen.core.commands.view": "view",
    "splatgen.core.commands.eval": "eval",
    "splatgen.core.commands.render": "render",
    "splatgen.core.commands.data": "data",
    "splatgen.core.commands.train": "train",
    "splatgen.core.commands.bench": "bench",
    "splatgen.core.commands.mesh": "mesh",
    "splatgen.core.commands.doctor": "doctor",
}


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its package is missing
        return False


def splatgen(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed ``splatgen`` (the venv's entry point; ``python -m`` when there is none). The
    other tests run the command through conftest's ``run_splatgen``: a process of its own as well,
    started without importing torch anew."""
    exe = Path(sys.executable).with_name("splatgen")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "splatgen.core.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd)


def read_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path)


def foreground(img: np.ndarray) -> np.ndarray:
    """Pixels covered by the object: alpha from the RGBA output."""
    assert img.ndim == 3 and img.shape[-1] == 4, img.shape
    return img[..., 3] > 127


def write_cameras(path: Path, size: int = 64, azimuths=(0.0, 90.0, 200.0)) -> tuple[torch.Tensor, torch.Tensor]:
    viewmats = orbit_viewmats(list(azimuths), 15.0, framing.CAMERA_DISTANCE)
    K = canonical_intrinsics(size)
    save_transforms(path, viewmats, K, size, size, [f"view_{i}.png" for i in range(len(azimuths))])
    return viewmats, K


# ---------------------------------------------------------------------- help
def test_help_lists_the_subcommands():
    result = splatgen("--help")
    assert result.returncode == 0, result.stderr
    expected = [cmd for mod, cmd in COMMANDS.items() if module_exists(mod)]
    assert "render" in expected and "bench" in expected
    for cmd in expected:
        assert re.search(rf"^\s+{cmd}\s", result.stdout, re.M), f"{cmd!r} missing from --help:\n{result.stdout}"
    bare = splatgen()  # no command: the same help, success
    assert bare.returncode == 0 and "render" in bare.stdout


# ---------------------------------------------------------------------- the shipped example
def test_example_is_a_small_standard_inria_ply():
    from plyfile import PlyData

    assert EXAMPLE.stat().st_size <= 2 * 2**20
    vertex = PlyData.read(str(EXAMPLE))["vertex"]
    names = vertex.data.dtype.names
    for prop in ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_2", "rot_0", "rot_3"):
        assert prop in names
    g = load_splats(EXAMPLE)
    assert g.num_gaussians == vertex.count >= 10_000
    # placed at the canonical framing: centred, inside the object sphere
    assert g.means.abs().max() <= framing.OBJECT_RADIUS * 1.01
    assert g.means.mean(0).abs().max() < 0.15


def test_render_example_puts_the_object_in_the_middle(tmp_path, run_splatgen):
    out = tmp_path / "bear.png"
    result = run_splatgen("render", EXAMPLE, "--size", 160, 120, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    img = read_png(out)
    assert img.shape == (120, 160, 4)
    fg = foreground(img)
    assert 0.05 < fg.mean() < 0.6, fg.mean()
    ys, xs = np.nonzero(fg)
    assert abs(xs.mean() + 0.5 - 80) < 0.12 * 160 and abs(ys.mean() + 0.5 - 60) < 0.12 * 120
    # framed whole: nothing touches the border, and the background is the default white
    assert not (fg[0].any() or fg[-1].any() or fg[:, 0].any() or fg[:, -1].any())
    assert (img[img[..., 3] == 0][:, :3] == 255).all()
    # the bear is brown, not grey or white
    r, g, b = img[fg][:, :3].astype(float).mean(0)
    assert r > b + 20 and g > b


def test_render_background_and_view(tmp_path, run_splatgen):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run_splatgen("render", EXAMPLE, "--size", 64, 64, "--background", "0,0,255", "-o", a).returncode == 0
    assert run_splatgen("render", EXAMPLE, "--size", 64, 64, "--azimuth", 210, "-o", b).returncode == 0
    ia, ib = read_png(a), read_png(b)
    assert (ia[ia[..., 3] == 0][:, :3] == [0, 0, 255]).all()
    assert np.abs(ia[..., 3].astype(int) - ib[..., 3]).mean() > 5  # another side of the object


def test_render_from_a_transforms_json_frame(tmp_path, run_splatgen):
    cams = tmp_path / "transforms.json"
    viewmats, K = write_cameras(cams, size=64)
    out = tmp_path / "frame2.png"
    result = run_splatgen("render", EXAMPLE, "--camera", cams, "--frame", 2, "--backend", "torch", "-o", out)
    assert result.returncode == 0, result.stderr
    img = read_png(out)
    assert img.shape == (64, 64, 4)
    # the same camera through the Python API draws the same picture
    with torch.no_grad():
        ref = render(load_splats(EXAMPLE), viewmats[2:3], K[None], 64, 64, backend="torch")
    ref_alpha = (ref.alpha[0, ..., 0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    assert np.abs(img[..., 3].astype(int) - ref_alpha).max() <= 1
    ys, xs = np.nonzero(foreground(img))
    assert abs(xs.mean() + 0.5 - 32) < 8 and abs(ys.mean() + 0.5 - 32) < 8
    # --size rescales the camera: the same view at twice the resolution
    big = tmp_path / "big.png"
    assert run_splatgen("render", EXAMPLE, "--camera", cams, "--frame", 2, "--size", 128, 128, "-o", big).returncode == 0
    fg_big = foreground(read_png(big))
    ys2, xs2 = np.nonzero(fg_big)
    assert abs(xs2.mean() - 2 * xs.mean()) < 3 and abs(ys2.mean() - 2 * ys.mean()) < 3
    assert 3 < fg_big.sum() / foreground(img).sum() < 5


# ---------------------------------------------------------------------- user errors
@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "notes.ply").write_text("these are my notes, not a splat file\n")
    (tmp_path / "afile").write_text("x")
    empty = load_splats(EXAMPLE)[:0]
    assert empty.num_gaussians == 0
    save_splats(tmp_path / "empty.ply", empty)
    write_cameras(tmp_path / "transforms.json")
    return tmp_path


BAD_CASES = {
    # name: (arguments after `render`, with {d} = the test folder; output path; a word the message must hold)
    "missing file": (["{d}/nope.ply"], "{d}/out.png", "nope.ply"),
    "text file named .ply": (["{d}/notes.ply"], "{d}/out.png", "notes.ply"),
    "folder as splat file": (["{d}"], "{d}/out.png", "extension"),
    "no splats in the file": (["{d}/empty.ply"], "{d}/out.png", "no splats"),
    "background word": (["EXAMPLE", "--background", "red"], "{d}/out.png", "background"),
    "background two values": (["EXAMPLE", "--background", "0.5,0.5"], "{d}/out.png", "background"),
    "background out of range": (["EXAMPLE", "--background", "1,2,300"], "{d}/out.png", "background"),
    "background nan": (["EXAMPLE", "--background", "nan,0,0"], "{d}/out.png", "background"),
    "size zero": (["EXAMPLE", "--size", "0", "64"], "{d}/out.png", "size"),
    "size negative": (["EXAMPLE", "--size", "64", "-3"], "{d}/out.png", "size"),
    "size not a number": (["EXAMPLE", "--size", "64", "big"], "{d}/out.png", "size"),
    "size one value": (["EXAMPLE", "--size", "64"], "{d}/out.png", "size"),
    "size huge": (["EXAMPLE", "--size", "100000", "100000"], "{d}/out.png", "too large"),
    "frame past the end": (["EXAMPLE", "--camera", "{d}/transforms.json", "--frame", "3"], "{d}/out.png", "frame"),
    "frame negative": (["EXAMPLE", "--camera", "{d}/transforms.json", "--frame", "-1"], "{d}/out.png", "frame"),
    "camera file missing": (["EXAMPLE", "--camera", "{d}/cams.json"], "{d}/out.png", "cams.json"),
    "camera file not json": (["EXAMPLE", "--camera", "{d}/notes.ply"], "{d}/out.png", "notes.ply"),
    "output folder missing": (["EXAMPLE"], "{d}/no/such/dir/out.png", "does not exist"),
    "output folder is a file": (["EXAMPLE"], "{d}/afile/out.png", "not a folder"),
    "output is a folder": (["EXAMPLE"], "{d}", "folder"),
    "output type unknown": (["EXAMPLE"], "{d}/out.txt", "out.txt"),
}


def assert_one_clear_error(result: subprocess.CompletedProcess, word: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("splatgen"), errors[0]
    assert word.lower() in errors[0].lower(), errors[0]


def no_output_left(folder: Path, out: Path) -> bool:
    if out.is_dir():
        leftovers = [p for p in out.iterdir() if p.name.startswith(".") and p.suffix == ".tmp"]
        return not leftovers
    return not out.exists() and not any(folder.glob(f".{out.name}.*"))


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_fails_cleanly(bad_inputs, case, run_splatgen):
    args, out, word = BAD_CASES[case]
    d = str(bad_inputs)
    args = [str(EXAMPLE) if a == "EXAMPLE" else a.format(d=d) for a in args]
    out = Path(out.format(d=d))
    before = sorted(p.name for p in bad_inputs.iterdir())
    result = run_splatgen("render", *args, "-o", out)
    assert_one_clear_error(result, word)
    assert no_output_left(bad_inputs, out)
    assert sorted(p.name for p in bad_inputs.iterdir()) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write into any folder")
def test_unwritable_output_folder_fails_cleanly(tmp_path, run_splatgen):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result = run_splatgen("render", EXAMPLE, "--size", 32, 32, "-o", ro / "out.png")
        assert_one_clear_error(result, "writable")
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o755)


def test_failed_render_keeps_an_older_output(tmp_path, run_splatgen):
    out = tmp_path / "out.png"
    out.write_bytes(b"older picture")
    result = run_splatgen("render", tmp_path / "nope.ply", "-o", out)
    assert result.returncode != 0
    assert out.read_bytes() == b"older picture"


# ---------------------------------------------------------------------- README, CI and main.py
def test_bench_render_times_the_random_balls_the_example_and_a_generated_object(tmp_path, run_splatgen):
    import json

    result = run_splatgen("bench", "render", "--backends", "gl", "torch", "--sizes", "48", "--counts", "1024",
                          "--repeat", "1", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("render-*.json")
    data = json.loads(path.read_text())
    assert data["command"] == "splatgen bench render --backends gl torch --sizes 48 --counts 1024 --repeat 1"
    rows = {(r["backend"], r["scene"]): r for r in data["results"]}
    scenes = ("random ball", "teddy_bear.ply", "generated (sofa.png)")
    assert set(rows) == {(b, s) for b in ("gl", "torch") for s in scenes}
    assert rows["gl", "teddy_bear.ply"]["gaussians"] == 20000 and rows["gl", "random ball"]["gaussians"] == 1024
    assert rows["gl", "generated (sofa.png)"]["gaussians"] == 128 * 128 * 2   # one Splatter Image
    for row in rows.values():
        assert row["size"] == 48 and 0 < row["median_ms"] < 60_000 and row["fps"] > 0
    for scene in scenes:   # the covered fraction is measured on each backend's own image: they agree
        gl, torch_row = rows["gl", scene], rows["torch", scene]
        assert 0.02 < gl["covered"] < 0.9 and abs(gl["covered"] - torch_row["covered"]) < 0.02, (scene, gl, torch_row)
        assert gl["viewer_ms"] > 0 and gl["viewer_fps"] == pytest.approx(1000 / gl["viewer_ms"])
        assert isinstance(gl["viewer_culled"], bool) and "viewer_ms" not in torch_row
    assert rows["gl", "random ball"]["culled"] is False   # 1024 splats: never worth a pyramid
    assert "culled" not in rows["torch", "random ball"]
    assert "teddy_bear.ply" in result.stdout and "viewer frame" in result.stdout


def test_bench_render_leaves_out_the_example_and_the_generated_object_when_told(tmp_path, run_splatgen):
    import json

    result = run_splatgen("bench", "render", "--backends", "gl", "--sizes", "32", "--counts", "512", "--repeat", "1",
                          "--no-example", "--no-generated", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    data = json.loads(next(tmp_path.glob("render-*.json")).read_text())
    assert data["command"].endswith("--repeat 1 --no-example --no-generated")
    assert [(r["scene"], r["gaussians"]) for r in data["results"]] == [("random ball", 512)]


def test_bench_viewport_joins_through_the_entry_point_and_times_the_app_viewport(tmp_path):
    import json

    from splatgen.core.commands.bench import plugin_benchmarks

    assert "viewport" in plugin_benchmarks()  # the app's benchmark, which core does not import
    result = splatgen("bench", "viewport", "--splats", EXAMPLE, "--backends", "gl", "--sizes", "48", "--frames", "2",
                      "--out-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(next(tmp_path.glob("viewport-*.json")).read_text())
    assert data["command"] == f"splatgen bench viewport --backends gl --sizes 48 --frames 2 --splats {EXAMPLE}"
    full = [r for r in data["results"] if r.get("scale") == 1.0]
    assert [(r["backend"], r["size"], r["frames"]) for r in full] == [("gl", 48, 2)]
    assert full[0]["fps"] > 0 and full[0]["object_pixels"] > 0.01  # the bear was drawn


def test_bench_render_without_a_usable_model_still_times_the_other_scenes(monkeypatch):
    from splatgen.core.generator import ModelError
    from splatgen.core.render import benchmark

    def no_model():
        raise ModelError("assets/models/regressor: no such model folder")

    monkeypatch.setattr(benchmark, "generated_sample", no_model)
    logged = []
    result = benchmark.run_render_benchmark(["torch"], sizes=(16,), counts=(256,), repeat=1, example=False,
                                            log=logged.append)
    assert [(r["scene"], r["gaussians"]) for r in result["results"]] == [("random ball", 256)]
    assert "generated object left out: assets/models/regressor: no such model folder" in logged


def readme_commands() -> dict[str, str]:
    """The README's two set-up commands (code-block lines starting with ``scripts/install.sh &&``)."""
    found: dict[str, list[str]] = {"main": [], "tests": []}
    in_code = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("scripts/install.sh && "):
            found["tests" if "scripts/test.sh" in line else "main"].append(line.strip())
    assert len(found["main"]) == 1 and len(found["tests"]) == 1, found
    return {k: v[0] for k, v in found.items()}


def test_readme_commands_match_ci_and_the_repository():
    cmds = readme_commands()
    assert cmds["tests"] == "scripts/install.sh && scripts/test.sh"
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert cmds["tests"] in [line.strip() for line in ci.read_text().splitlines()]
    for script in ("scripts/install.sh", "scripts/test.sh"):
        assert os.access(ROOT / script, os.X_OK), script
    # every repository path the main command names exists
    for word in cmds["main"].split():
        if word.startswith(("assets/", "scripts/")):
            assert (ROOT / word).exists(), word


def test_main_py_without_splatgen_installed_says_so(tmp_path):
    # python -S: no site-packages, so no splatgen (main.py's own folder holds app/ and core/, not splatgen/)
    result = subprocess.run([sys.executable, "-S", str(ROOT / "main.py")], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "not" in result.stderr and "splatgen" in result.stderr
