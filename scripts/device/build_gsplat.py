"""Build gsplat's CUDA extension ahead of time as ``gsplat/csrc.so``, the module gsplat imports first.

gsplat (the PyPI wheel) compiles its CUDA code on first import (over a minute; benchmarks/TRAINING.md) into a
per-machine cache. Built here under the name ``csrc`` and placed inside the installed package,
``from gsplat import csrc`` finds it and gsplat skips its JIT step; the file can be carried to the
next fresh machine (same image, same torch), which then starts in a second.

    python3 build_gsplat.py SITE_DIR OUT_FILE     # builds, installs into SITE_DIR/gsplat, copies to OUT_FILE

The sources and flags are those of gsplat's own JIT build (``gsplat/cuda/_backend.py``), for the
GPU of this machine only (``TORCH_CUDA_ARCH_LIST``), since importing that module would start the JIT
build itself.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time
from pathlib import Path


def stamp() -> dict:
    """What the built extension depends on: a carried build is used only where all of it matches."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    from importlib.metadata import version

    return {"torch": torch.__version__, "cuda": torch.version.cuda, "gsplat": version("gsplat"),
            "arch": f"{major}.{minor}", "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


def build(site: Path, out_file: Path) -> None:
    import torch
    from torch.utils.cpp_extension import load

    info = stamp()
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", info["arch"])
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 8))
    pkg = site / "gsplat" / "cuda"
    sources = sorted(glob.glob(str(pkg / "csrc" / "*.cu"))) + sorted(glob.glob(str(pkg / "csrc" / "*.cpp"))) \
        + [str(pkg / "ext.cpp")]
    build_dir = Path("/tmp/gsplat-build")
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    t0 = time.time()
    load(name="csrc", sources=sources, extra_cflags=["-O3", "-Wno-attributes"],
         extra_cuda_cflags=["-O3", "-use_fast_math"],
         extra_include_paths=[str(pkg / "include"), str(pkg / "csrc" / "third_party" / "glm")],
         build_directory=str(build_dir), verbose=False)
    so = build_dir / "csrc.so"
    shutil.copy2(so, site / "gsplat" / "csrc.so")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(so, out_file)
    out_file.with_suffix(".json").write_text(json.dumps(info))
    print(f"gsplat extension built in {time.time() - t0:.0f} s ({so.stat().st_size / 2**20:.1f} MiB, "
          f"torch {torch.__version__}, sm_{info['arch']})")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        build(Path(sys.argv[1]), Path(sys.argv[2]))
    elif sys.argv[1:] == ["--stamp"]:
        print(json.dumps(stamp()))
    else:
        sys.exit(__doc__)
