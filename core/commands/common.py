"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from ..errors import SplatgenError


def parse_background(text: str) -> tuple[float, float, float]:
    """``"R,G,B"`` in [0, 1] (or 0–255 when any value exceeds 1) → floats in [0, 1]."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"background must be R,G,B numbers, got {text!r}") from None
    if len(values) != 3 or any(v < 0 or v > 255 for v in values):
        raise argparse.ArgumentTypeError(f"background must be three values in [0,1] or [0,255], got {text!r}")
    if any(v > 1 for v in values):
        values = [v / 255 for v in values]
    return tuple(values)  # type: ignore[return-value]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise SplatgenError(f"{path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode ``image`` ``(H, W, 3|4)`` uint8 by the file extension and write it atomically."""
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    try:
        data = iio.imwrite("<bytes>", image, extension=ext)
    except (ValueError, OSError) as exc:
        raise SplatgenError(f"{path}: cannot encode an image of this type ({exc})") from None
    atomic_write_bytes(path, data)
