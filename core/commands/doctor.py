"""``splatgen doctor``: what this machine will use — the torch device, the renderer, whether gsplat's
CUDA code is built — and what is missing, one line each, so a set-up problem is found before a
generation is slow or fails."""

from __future__ import annotations

import argparse
import os
import platform
import shutil


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("doctor", help="print the device, the renderer and whether gsplat's CUDA code is built",
                       description="Check this machine's set-up: torch and its device, gsplat and its CUDA code "
                                   "(built here on first use), headless OpenGL, ffmpeg, the shipped models.")
    p.set_defaults(func=run)
    return p


def checks() -> list[tuple[str, str]]:
    """(what, finding) pairs, in the order printed."""
    import torch

    from ..render import choose_backend, gsplat_problem

    rows = [("python", f"{platform.python_version()} ({platform.system()} {platform.machine()})"),
            ("torch", f"{torch.__version__} ({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU build'})")]
    if torch.cuda.is_available():
        rows.append(("device", f"cuda: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} GPU)"))
    else:
        rows.append(("device", f"cpu: {os.cpu_count()} cores (no CUDA device)"))
    try:
        import gsplat

        version = f"gsplat {gsplat.__version__}"
    except Exception as exc:  # noqa: BLE001 - a broken install is a finding
        version = f"gsplat does not import ({exc})"
    if torch.cuda.is_available():
        problem = gsplat_problem()
        rows.append(("gsplat", f"{version}: CUDA code {'built and loaded' if problem is None else 'NOT usable: ' + problem}"))
    else:
        rows.append(("gsplat", f"{version}: not used (it needs CUDA)"))
    try:
        from ..render import gl_backend

        gl = f"yes ({gl_backend.renderer_name()})" if gl_backend.available() else "no (EGL/Mesa missing?)"
    except Exception as exc:  # noqa: BLE001
        gl = f"no ({exc})"
    rows.append(("headless OpenGL", gl))
    rows.append(("renderer", choose_backend()))
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001
        ffmpeg = shutil.which("ffmpeg")
    rows.append(("ffmpeg", ffmpeg or "missing: turntables are written as GIF"))
    from ..generator.model_folder import models_dir, shipped_model_folders

    rows.append(("shipped models", ", ".join(shipped_model_folders()) or f"none in {models_dir()}"))
    return rows


def run(args: argparse.Namespace) -> int:
    rows = checks()
    width = max(len(k) for k, _ in rows)
    for what, finding in rows:
        print(f"{what:<{width}}  {finding}")
    return 0
