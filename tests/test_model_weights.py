"""Model folders stored int8 (``quantize_int8``): they load through the same strict loader, half the
bytes of fp16, and the shipped regressor's samples from them render like the fp16 model's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from splatgen.core.errors import ModelError
from splatgen.core.generator import GenerationSettings, load_generator
from splatgen.core.metrics import psnr
from splatgen.core.models.weights import INT8, SCALE, read_weights
from splatgen.core.render import render

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "models" / "regressor"
WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def fp16_regressor(tmp_path_factory) -> Path:
    """The shipped regressor (stored int8) written back as an fp16 folder, as a training export is."""
    out = tmp_path_factory.mktemp("fp16") / "regressor"
    shutil.copytree(SHIPPED, out)
    save_file({k: v.half() for k, v in read_weights(SHIPPED).items()}, str(out / WEIGHTS))
    return out


@pytest.fixture(scope="module")
def int8_regressor(tmp_path_factory, fp16_regressor) -> Path:
    out = tmp_path_factory.mktemp("int8") / "regressor"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "quantize_model.py"), str(fp16_regressor), str(out)],
                   check=True, capture_output=True, text=True)
    return out


def test_int8_folder_is_half_the_size_and_its_samples_render_alike(int8_regressor, fp16_regressor, example_image):
    assert (int8_regressor / WEIGHTS).stat().st_size < 0.55 * (fp16_regressor / WEIGHTS).stat().st_size
    stored = load_file(str(int8_regressor / WEIGHTS))
    assert any(k.endswith(INT8) and v.dtype == torch.int8 for k, v in stored.items())
    assert not any(v.dtype == torch.int8 for v in load_file(str(fp16_regressor / WEIGHTS)).values())
    full, quantised = load_generator(str(fp16_regressor), "cpu"), load_generator(str(int8_regressor), "cpu")
    settings = GenerationSettings(num_samples=1, seed=0)
    a, b = full.generate(example_image, settings)[0], quantised.generate(example_image, settings)[0]
    views = [render(s.gaussians, s.input_viewmat[None], s.K, 128, 128).rgb for s in (a, b)]
    assert float(psnr(views[1], views[0])) >= 45.0          # int8 weights change the render by little (65.6 dB seen)


def test_malformed_int8_tensors_are_refused(int8_regressor, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(int8_regressor, bad)
    stored = load_file(str(bad / WEIGHTS))
    key = next(k for k in stored if k.endswith(INT8))
    del stored[key[: -len(INT8)] + SCALE]                   # an int8 tensor without its scale
    save_file(stored, str(bad / WEIGHTS))
    with pytest.raises(ModelError, match="malformed"):
        read_weights(bad)
    stored[key[: -len(INT8)] + SCALE] = torch.ones(3, dtype=torch.float16)   # a scale of the wrong shape
    save_file(stored, str(bad / WEIGHTS))
    with pytest.raises(ModelError, match="malformed"):
        read_weights(bad)


def test_an_int8_folder_with_an_oversized_scale_is_refused_before_loading(int8_regressor, tmp_path):
    from splatgen.core.models.weights import read_shapes

    bad = tmp_path / "bad"
    shutil.copytree(int8_regressor, bad)
    stored = load_file(str(bad / WEIGHTS))
    key = next(k for k in stored if k.endswith(INT8))
    stored[key[: -len(INT8)] + SCALE] = torch.ones(stored[key].shape[0], 4096, dtype=torch.float16)
    save_file(stored, str(bad / WEIGHTS))
    with pytest.raises(ModelError, match="malformed"):
        read_shapes(bad)                                    # from the headers alone
    with pytest.raises(ModelError, match="malformed"):
        load_generator(str(bad), "cpu")
