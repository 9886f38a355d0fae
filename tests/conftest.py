"""Fixtures shared by the test files: what is expensive to make is made once per session.

- ``run_splatgen``: the ``splatgen`` command in a process of its own, as a user runs it, without
  paying for ``import torch`` / ``diffusers`` in each of the suite's sixty-odd command runs;
- ``shipped_generator`` / ``shipped_regressor``: the shipped models, loaded once on the CPU;
- ``example_image`` and ``generated_samples``: the example input and two samples of it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

#: Third-party modules the command server imports once; each command's process is forked from it
#: and imports splatgen itself (so a warning that splatgen's import prints still reaches its stderr).
CLI_PRELOAD = [
    "numpy", "torch", "safetensors.torch", "PIL.Image", "imageio.v3", "scipy.ndimage",
    "diffusers.models.modeling_utils", "diffusers.models.unets.unet_2d", "diffusers.models.unets.unet_2d_blocks",
    "diffusers.models.resnet", "diffusers.schedulers.scheduling_ddim",
    "diffusers.schedulers.scheduling_dpmsolver_multistep",
]


def _cli_process(args: list[str], cwd: str | None, out_path: str, err_path: str) -> None:
    """Body of a command's process: stdout / stderr into the given files, then what the installed
    ``splatgen`` entry point does (``sys.exit(main())``). An uncaught exception prints its traceback
    on stderr and exits 1, as an interpreter does."""
    for fd, path in ((1, out_path), (2, err_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    if cwd is not None:
        os.chdir(cwd)
    sys.argv = ["splatgen", *args]
    from splatgen.core.cli import main

    sys.exit(main(args))


@pytest.fixture(scope="session")
def tiny_furniture_dataset(tmp_path_factory) -> Path:
    """4 real SweetHome3D objects × 4 views at the models' 128² (built once; tests only read it)."""
    from splatgen.core.data.build import build_dataset

    furniture = Path("/usr/share/sweethome3d/furniture")
    if not furniture.is_dir():
        pytest.skip("sweethome3d-furniture is not installed")
    root = tmp_path_factory.mktemp("furniture-data") / "ds"
    summary = build_dataset(furniture, root, views=4, limit=4, workers=1, progress=False)
    assert summary.counts["train"] >= 2, summary.line()
    return root


@pytest.fixture(scope="session")
def run_splatgen(tmp_path_factory):
    """``run_splatgen(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess`` (text stdout / stderr).

    Each call is a new process (own exit code, own stdout / stderr file descriptors, nothing shared
    with the test process), forked from a server started once with :data:`CLI_PRELOAD` imported."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(CLI_PRELOAD)
    folder = tmp_path_factory.mktemp("cli-output")

    def run(*args, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
        args = [str(a) for a in args]
        fd_out, out_path = tempfile.mkstemp(".out", dir=folder)
        fd_err, err_path = tempfile.mkstemp(".err", dir=folder)
        os.close(fd_out)
        os.close(fd_err)
        proc = ctx.Process(target=_cli_process, args=(args, None if cwd is None else str(cwd), out_path, err_path))
        proc.start()
        proc.join(timeout)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            raise subprocess.TimeoutExpired(["splatgen", *args], timeout)
        stdout, stderr = Path(out_path).read_text(), Path(err_path).read_text()
        os.unlink(out_path)
        os.unlink(err_path)
        return subprocess.CompletedProcess(["splatgen", *args], proc.exitcode, stdout, stderr)

    yield run
    # stop the server and wait for it: no process outlives the suite, and its CPU time counts in the
    # suite's (the server waits for the commands' processes)
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    if server is not None and hasattr(server, "_stop"):
        server._stop()


@pytest.fixture(scope="session")
def shipped_generator():
    """The shipped default generator (latent diffusion) on the CPU. Tests must not change it."""
    from splatgen.core.generator import load_generator

    return load_generator(device="cpu")


@pytest.fixture(scope="session")
def shipped_regressor():
    """The shipped regressor on the CPU. Tests must not change it."""
    from splatgen.core.generator import load_generator

    return load_generator("regressor", "cpu")


@pytest.fixture(scope="session")
def example_image():
    """The example input ``(4, 128, 128)`` RGBA in [0, 1] (the benchmarks' object)."""
    from splatgen.core.generator.benchmark import example_input

    return example_input()


#: Denoising steps of :func:`generated_samples`.
SAMPLE_STEPS = 4


@pytest.fixture(scope="session")
def generated_samples(shipped_generator, example_image):
    """Two samples of the example (seeds 3 and 4, :data:`SAMPLE_STEPS` steps). Tests must not change them."""
    from splatgen.core.generator import GenerationSettings

    return shipped_generator.generate(example_image, GenerationSettings(num_samples=2, seed=3, steps=SAMPLE_STEPS))
