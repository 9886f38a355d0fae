"""Small helpers shared by the CLI commands: argument types, output checks, SIGTERM as Ctrl-C.

Every check here runs before a command does any work or creates anything, and fails with one
:class:`SplatgenError` line naming the path or value.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import SplatgenError

#: Image formats the commands write, by extension, and whether each keeps an alpha channel.
IMAGE_EXTENSIONS = {".png": True, ".webp": True, ".jpg": False, ".jpeg": False, ".bmp": False}


def parse_background(text: str) -> tuple[float, float, float]:
    """``"R,G,B"`` in [0, 1] (or 0–255 when any value exceeds 1) → floats in [0, 1]."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"background must be R,G,B numbers, got {text!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) and 0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"background must be three values in [0,1] or [0,255], got {text!r}")
    if any(v > 1 for v in values):
        values = [v / 255 for v in values]
    return tuple(values)  # type: ignore[return-value]


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` are refused). :func:`splatgen.core.cli.build_parser`
    gives it to every option declared ``type=float``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_range(low: int, high: int):
    """argparse type: an integer in ``[low, high]``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = f"integer {low}-{high}"
    return parse


def check_output_dir(path: str | os.PathLike) -> Path:
    """Fail early, before any work and without creating anything, when ``path`` cannot be (or become)
    an output folder: it exists and is not a folder, or it (or, when missing, its nearest existing
    ancestor, where it would be created) is not a writable folder. Raises :class:`SplatgenError`."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise SplatgenError(f"{path}: exists and is not a folder; give a folder for the output")
        if not os.access(path, os.W_OK | os.X_OK):
            raise SplatgenError(f"{path}: the output folder is not writable")
        return path
    parent = path.absolute().parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise SplatgenError(f"{path}: cannot create the output folder: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SplatgenError(f"{path}: cannot create the output folder: {parent} is not writable")
    return path


def make_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder :func:`check_output_dir` accepted (with its parents), or fail in one line."""
    path = check_output_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplatgenError(f"{path}: cannot create the output folder ({exc.strerror or exc})") from None
    return path


def check_output_file(path: str | os.PathLike) -> Path:
    """Fail early when ``path`` cannot become an output file: it is a folder, or its folder is not
    (and cannot be made) a writable folder (:func:`check_output_dir`); nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise SplatgenError(f"{path}: is a folder; give a file name")
    check_output_dir(path.parent)
    return path


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` like Ctrl-C does, so the command's
    cleanup (``finally`` blocks: temporary folders, partial files) runs. Only in the main thread
    (signal handlers cannot be set elsewhere); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_output_path(path: str | os.PathLike, extensions: dict | None = None) -> Path:
    """Fail early, before any work, when ``path`` cannot be written as an output file.

    Checks that the folder exists and is a folder, that ``path`` is not a folder, and (when
    ``extensions`` is given) that its extension is one of them. Raises :class:`SplatgenError`.
    """
    path = Path(path)
    parent = path.parent
    if not parent.exists():
        raise SplatgenError(f"{path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise SplatgenError(f"{path}: {parent} is not a folder")
    if path.is_dir():
        raise SplatgenError(f"{path}: is a folder; give a file name")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SplatgenError(f"{path}: the folder {parent} is not writable")
    if extensions is not None and path.suffix.lower() not in extensions:
        raise SplatgenError(f"{path}: unsupported output type {path.suffix or '(no extension)'!r} "
                            f"(use {', '.join(extensions)})")
    return path


def atomic_write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode ``image`` ``(H, W, 3|4)`` uint8 by the file extension and write it atomically.

    Formats without alpha (JPEG, BMP) get the RGB channels only.
    """
    import imageio.v3 as iio

    path = check_output_path(path, IMAGE_EXTENSIONS)
    ext = path.suffix.lower()
    if not IMAGE_EXTENSIONS[ext] and image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    try:
        data = iio.imwrite("<bytes>", np.ascontiguousarray(image), extension=ext)
    except (ValueError, OSError) as exc:
        raise SplatgenError(f"{path}: cannot encode the image as {ext} ({exc})") from None
    atomic_write(path, data)
