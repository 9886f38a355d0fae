"""The wheel holds the whole program: every module of core/ and app/, the shaders, the shipped models."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module_shader_and_model_file(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("splatgen-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        # every tracked-looking source file, found on disk here, not listed by hand
        expected = set()
        for top in ("core", "app"):
            for f in (ROOT / top).rglob("*"):
                if f.is_file() and "__pycache__" not in f.parts and (f.suffix == ".py" or f.parent.name == "shaders"):
                    expected.add(f"splatgen/{f.relative_to(ROOT).as_posix()}")
        for f in (ROOT / "assets").rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                expected.add(f"splatgen/{f.relative_to(ROOT).as_posix()}")
        missing = sorted(expected - names)
        assert not missing, f"the wheel lacks {len(missing)} files, e.g. {missing[:5]}"
        assert "splatgen/core/data/sources/zeroad.py" in names  # a sub-package two levels down
        shader = "splatgen/core/render/shaders/splat.frag"
        assert z.read(shader) == (ROOT / "core/render/shaders/splat.frag").read_bytes()
        weights = "splatgen/assets/models/regressor/diffusion_pytorch_model.safetensors"
        assert z.read(weights) == (ROOT / "assets/models/regressor/diffusion_pytorch_model.safetensors").read_bytes()
        # nothing from outside the three packages (tests, scripts, benchmarks)
        assert not [n for n in names if n.split("/")[0] not in ("splatgen", wheel.name.split("-")[0] + "-" +
                                                                  wheel.name.split("-")[1] + ".dist-info")]
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        points = configparser.ConfigParser()
        points.read_string(z.read(entry).decode())
        assert "splatgen" in points["console_scripts"] and "splatgen-gui" in points["gui_scripts"]
