"""Loading an image: any common format or array in, oriented uint8 RGB(A) out, its size checked first.

Step 1 of :mod:`splatgen.core.imageprep`. :func:`load_image` takes a path, bytes, a PIL image or an
array (numpy or torch); files in the raster formats of :data:`PHOTO_FORMATS` (PNG, JPEG, WebP, AVIF,
TIFF, GIF, BMP … in 8/16 bit, grey, palette, CMYK, with or without alpha), EXIF orientation honoured.
The size is checked from the header *before* decoding (``max_pixels``, :data:`MIN_SIDE`); large JPEGs
can be decoded at a reduced scale (libjpeg's DCT scaling through ``Image.draft``). Problems raise
:class:`splatgen.core.errors.ImageError` naming the source.

:func:`open_image` is the one door through which splatgen opens an image file it did not write
(photos, dataset views, game textures): Pillow is told the formats it may try (``formats=``), so a
file that only *says* it is an image never reaches a plugin that runs a program (the EPS plugin runs
Ghostscript) or decodes a format nobody asked for; importing this module also switches Pillow's
Ghostscript use off for the whole process (third-party readers such as trimesh open textures with
Pillow too). Sizes are checked from the header before anything is decoded (decompression bombs),
and truncated or corrupt data raise :class:`ImageError` when decoded (:func:`read_rgba`).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: Largest image accepted, in pixels (width × height), checked from the header before decoding:
#: 64 MP covers 48/50 MP phone photos; decoded RGBA at this size is 256 MB. Note that Pillow's own
#: decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``, ~89 MP; refuses above twice that)
#: also applies; larger ``max_pixels`` need that raised too.
DEFAULT_MAX_PIXELS = 64_000_000
#: Smallest accepted side, pixels.
MIN_SIDE = 16
#: JPEGs larger than this (longer side) are decoded at a reduced DCT scale, keeping at least it.
DECODE_SIDE = 1000

_EXIF_ORIENTATION = 0x0112

#: Raster formats a photo may be in (Pillow's format names): decoders of pixel data, none of which
#: runs a program. EPS/PS, PDF, WMF, MPEG and the scientific containers are deliberately absent.
#: (JPEG covers MPO; a format this Pillow was built without is skipped.)
PHOTO_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "GIF", "BMP", "DIB", "TIFF", "PPM", "TGA", "QOI")
#: What a dataset's views are stored as (``data build`` writes PNG, ``data pack`` WebP).
VIEW_FORMATS = ("PNG", "WEBP")
#: Textures of the 3D models ``data build`` reads: the photo formats plus the games' own.
TEXTURE_FORMATS = PHOTO_FORMATS + ("DDS", "SGI", "PCX", "BLP")


def disable_external_programs() -> None:
    """Make Pillow's EPS plugin find no Ghostscript, for the whole process (idempotent).

    :func:`open_image` never lets a file reach that plugin; this covers code that opens images with
    Pillow on its own (trimesh's texture loading, imageio's Pillow plugin).
    """
    from PIL import EpsImagePlugin

    EpsImagePlugin.gs_binary = False
    EpsImagePlugin.gs_windows_binary = False


disable_external_programs()


@dataclass
class LoadedImage:
    """A decoded, oriented image: ``pixels`` ``(h, w, 3|4)`` uint8 (RGBA only when the alpha is real),
    possibly decoded at a reduced scale; ``full_size`` the oriented source's ``(width, height)``."""

    pixels: np.ndarray
    full_size: tuple[int, int]
    name: str
    reduced: bool = False

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4

    @property
    def scale(self) -> tuple[float, float]:
        """Full-size pixels per decoded pixel, (x, y)."""
        h, w = self.pixels.shape[:2]
        return self.full_size[0] / w, self.full_size[1] / h


def _source_name(source, name: str | None) -> str:
    if name:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<image bytes>"
    if isinstance(source, Image.Image):
        return str(getattr(source, "filename", "") or "<PIL image>")
    return "<image array>"


def _check_size(w: int, h: int, name: str, max_pixels: int | None) -> None:
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ImageError(f"{name}: the image is {w}×{h} pixels, too small: each side needs at least "
                         f"{MIN_SIDE} pixels")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(f"{name}: the image is {w}×{h} pixels ({w * h / 1e6:.1f} MP), larger than the limit "
                         f"of {max_pixels / 1e6:g} MP (max_pixels); downscale it first")


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop the image from loading
        return 1


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Any numeric array → uint8: 16-bit scaled by 1/257, floats in [0, 1] (or [0, 255]) scaled, bools ×255."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ImageError(f"{name}: the image holds NaN or infinite values")
        top = float(arr.max()) if arr.size else 0.0
        if top <= 1.0 + 1e-6:
            arr = arr * 255.0
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        top = int(arr.max()) if arr.size else 0
        if top > 255:  # a 16-bit range held in a wider integer (PIL mode "I")
            return np.clip((arr.astype(np.int64) + 128) // 257, 0, 255).astype(np.uint8)
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ImageError(f"{name}: unsupported pixel type {arr.dtype}")


def _is_chw(arr: np.ndarray) -> bool:
    """``(C, H, W)`` with C in 1..4 (torch's layout) rather than ``(H, W, C)``."""
    return arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[2] not in (1, 2, 3, 4)


def _as_hwc(arr: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with C in 1..4 → uint8 ``(H, W, 3|4)``."""
    if _is_chw(arr):
        arr = np.moveaxis(arr, 0, 2)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{name}: expected an image array of shape (H, W), (H, W, 1|2|3|4) or (1|3|4, H, W), "
                         f"got {tuple(arr.shape)}")
    arr = _to_uint8(arr, name)
    c = arr.shape[2]
    if c == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif c == 2:  # grey + alpha
        arr = np.concatenate([np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1:]], axis=2)
    return np.ascontiguousarray(arr)


def _pil_to_array(im: Image.Image, name: str) -> np.ndarray:
    """A loaded PIL image in any mode → uint8 ``(H, W, 3|4)`` (4 only if the image has transparency)."""
    mode = im.mode
    has_trns = "transparency" in im.info
    if mode in ("RGB", "RGBA") and not (mode == "RGB" and has_trns):
        arr = np.asarray(im)
    elif mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im)
        if mode.startswith("I;16"):
            arr = arr.astype(np.uint16)
        elif mode == "I" and arr.size and int(arr.max()) > 255:
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        arr = _to_uint8(arr, name)
    elif mode == "CMYK":
        arr = np.asarray(_cmyk_to_rgb(im))
    elif mode in ("RGBa", "LA", "La", "PA") or has_trns:
        arr = np.asarray(im.convert("RGBA"))
    else:  # 1, L, P, YCbCr, LAB, HSV, ...
        arr = np.asarray(im.convert("RGB"))
    return _as_hwc(arr, name)


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """CMYK → sRGB through the embedded ICC profile when there is one (print CMYK is far from naive)."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a bad profile falls back to Pillow's plain conversion
            pass
    return im.convert("RGB")


def _drop_opaque_alpha(arr: np.ndarray) -> np.ndarray:
    """An alpha channel that is 255 everywhere carries no mask: drop it."""
    if arr.shape[2] == 4 and int(arr[:, :, 3].min()) == 255:
        return np.ascontiguousarray(arr[:, :, :3])
    return arr


def _decode_pil(im: Image.Image, name: str, draft_side: int | None) -> tuple[np.ndarray, tuple[int, int], bool]:
    """Decode an opened (not yet loaded) PIL image, oriented; returns (pixels, full oriented size, reduced)."""
    w, h = im.size
    orientation = _orientation(im)
    full = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    reduced = False
    if draft_side and im.format in ("JPEG", "MPO") and max(w, h) > 2 * draft_side:
        k = draft_side / max(w, h)
        try:
            if im.draft(im.mode, (max(1, math.ceil(w * k)), max(1, math.ceil(h * k)))) is not None:
                reduced = im.size != (w, h)
        except Exception:  # noqa: BLE001 - draft is an optimisation only
            reduced = False
    decode(im, name)
    try:
        if orientation != 1:
            im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - keep the unrotated image rather than fail
        pass
    return _pil_to_array(im, name), full, reduced


def open_image(source, *, name: str | None = None, formats: tuple[str, ...] = PHOTO_FORMATS,
               max_pixels: int | None = DEFAULT_MAX_PIXELS, min_side: int = 1) -> Image.Image:
    """Open an image file's header (nothing decoded yet) with Pillow, trying only ``formats``.

    ``source``: a path, bytes or a binary file object. The size in the header is checked against
    ``max_pixels`` (and Pillow's own decompression-bomb limit) and ``min_side`` before any pixel is
    decoded. Raises :class:`ImageError` naming ``name`` (default: the path) for a missing, empty or
    unreadable file, a format not in ``formats`` and a size out of range. Use it as a context manager
    (``with open_image(p) as im:``) so the file is closed.
    """
    name = _source_name(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(f"{name}: the image data is empty (0 bytes)")
        fp = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image file")
        try:
            if path.stat().st_size == 0:
                raise ImageError(f"{name}: the file is empty (0 bytes)")
        except OSError as exc:
            raise ImageError(f"{name}: cannot be read ({exc.strerror})") from exc
        fp = path
    else:
        fp = source
    try:
        with warnings.catch_warnings():
            # the size is checked below (max_pixels) before anything is decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fp, formats=_known(formats))
    except Image.DecompressionBombError as exc:
        limit = f"the limit of {max_pixels / 1e6:g} MP (max_pixels)" if max_pixels else "Pillow's limit"
        raise ImageError(f"{name}: the image is larger than {limit} and too large to decode safely "
                         f"(a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format ({', '.join(formats)})") from None
    except PermissionError:
        raise ImageError(f"{name}: cannot be read (permission denied)") from None
    except Exception as exc:  # noqa: BLE001 - a broken header raises many types (OSError, SyntaxError, ...)
        raise ImageError(f"{name}: not a readable image ({_first_line(exc)})") from None
    try:
        w, h = im.size
        if w < min_side or h < min_side:
            raise ImageError(f"{name}: the image is {w}×{h} pixels; each side needs at least {min_side}")
        if max_pixels is not None and w * h > max_pixels:
            raise ImageError(f"{name}: the image is {w}×{h} pixels ({w * h / 1e6:.1f} MP), larger than the limit "
                             f"of {max_pixels / 1e6:g} MP (max_pixels); downscale it first")
    except BaseException:
        im.close()
        raise
    return im


def _known(formats: tuple[str, ...]) -> list[str]:
    """``formats`` that this Pillow has a reader for (all plugins registered first)."""
    Image.init()
    return [f for f in formats if f in Image.OPEN]


def decode(im: Image.Image, name: str) -> Image.Image:
    """Decode an image from :func:`open_image`; truncated or corrupt data raise :class:`ImageError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
    except Exception as exc:  # noqa: BLE001 - truncated / corrupt data raise many types
        raise ImageError(f"{name}: the image data cannot be decoded ({_first_line(exc)}); "
                         "the file is truncated or corrupt") from None
    return im


def read_rgba(source, *, name: str | None = None, formats: tuple[str, ...] = PHOTO_FORMATS,
              max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file (path or bytes) → ``(H, W, 4)`` uint8 straight RGBA, through :func:`open_image`
    (no EXIF rotation: for files splatgen's own tools wrote, such as dataset views, and textures)."""
    name = _source_name(source, name)
    with open_image(source, name=name, formats=formats, max_pixels=max_pixels) as im:
        decode(im, name)
        return np.asarray(im.convert("RGBA"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def load_image(source, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str | None = None,
               draft_side: int | None = None) -> LoadedImage:
    """Read ``source`` (path, bytes, PIL image or array) to uint8 RGB(A), EXIF orientation applied.

    The header's size is checked against ``max_pixels`` and :data:`MIN_SIDE` before any pixel is
    decoded. ``draft_side``: decode JPEGs at the smallest DCT scale that keeps the longer side at
    least this long (``LoadedImage.reduced`` tells whether it did). An alpha channel that is 255
    everywhere is dropped. Raises :class:`ImageError` naming the source.
    """
    name = _source_name(source, name)
    if isinstance(source, Image.Image):
        if source.format is not None and source.format not in PHOTO_FORMATS:
            raise ImageError(f"{name}: {source.format} is not a supported image format "
                             f"({', '.join(PHOTO_FORMATS)})")
        w, h = source.size
        _check_size(w, h, name, max_pixels)
        pixels, full, reduced = _decode_pil(source, name, None)
        return LoadedImage(_drop_opaque_alpha(pixels), full, name, reduced)
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # a torch tensor
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and not _is_chw(arr) and arr.shape[2] not in (1, 2, 3, 4)):
            raise ImageError(f"{name}: expected an image array of shape (H, W), (H, W, 1|2|3|4) or (1|3|4, H, W), "
                             f"got {tuple(arr.shape)}")
        hw = arr.shape[1:3] if _is_chw(arr) else arr.shape[:2]
        _check_size(int(hw[1]), int(hw[0]), name, max_pixels)
        pixels = _as_hwc(arr, name)
        return LoadedImage(_drop_opaque_alpha(pixels), (pixels.shape[1], pixels.shape[0]), name)

    if not isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise ImageError(f"{name}: expected an image path, bytes, a PIL image or an array, "
                         f"got {type(source).__name__}")
    im = open_image(source, name=name, formats=PHOTO_FORMATS, max_pixels=max_pixels)
    with im:
        w, h = im.size
        _check_size(w, h, name, max_pixels)  # before decoding anything
        pixels, full, reduced = _decode_pil(im, name, draft_side)
    return LoadedImage(_drop_opaque_alpha(pixels), full, name, reduced)
