"""Image preparation: any common image in, the model's 128² input out, framed like the training views.

The generator was trained on renders at the canonical framing (:mod:`splatgen.core.framing`): one
object, centred, on a white background, its longer side spanning a little over half the image. A
photo is brought to that look in four steps:

1. **Load** (:func:`load_image`): a path, bytes, a PIL image or an array; anything Pillow reads
   (PNG, JPEG, WebP, AVIF, TIFF, GIF, BMP … in 8/16 bit, grey, palette, CMYK, with or without
   alpha; imageio as a fallback), EXIF orientation honoured. The size is checked from the header
   *before* decoding (``max_pixels``); large JPEGs are decoded at a reduced scale (libjpeg's DCT
   scaling through ``Image.draft``) and re-decoded at full size only when the object turns out small.
2. **Mask**: the alpha channel when there is a real one (not all 255). Otherwise the foreground is
   cut out with OpenCV's GrabCut on a copy at most ``GRABCUT_SIDE`` px long, seeded from the image
   border (a ring of definite background; interior pixels whose colour matches the border's are
   *probably* background, the rest *probably* foreground; if that loses the object, the ring alone),
   cleaned (specks removed, pin-holes filled), then refined by a second GrabCut pass on a crop
   around the object taken from the decoded image at up to ``GRABCUT_SIDE`` px (sharper when the
   object is small in the photo; the first cut, far from its edge, is trusted), and upsampled
   smoothly. No downloaded weights. ``remove_background=False`` skips this: the whole image (or its
   alpha) is the object. Border-seeded GrabCut wants a plain-ish backdrop (plain, gradient, mild
   texture); on a cluttered scene, cut the object out first and pass it with alpha.
3. **Frame**: the mask's bounding box is centred and scaled so that its longer side is
   ``foreground_ratio`` × 128 px; the object is resampled (Pillow LANCZOS in premultiplied colour,
   sub-pixel exact) into a 128² RGBA image; whatever falls outside the source is transparent.
4. **Composite** on :data:`framing.BACKGROUND` exactly as training does
   (:meth:`splatgen.core.training.viewbank.ViewBank.decode`): ``rgb·a + background·(1 − a)``, alpha
   kept as the 4th channel.

>>> from splatgen.core.imageprep import prepare_image
>>> prepared = prepare_image("chair.jpg")
>>> prepared.image.shape        # torch.float32 in [0, 1], the model input
torch.Size([4, 128, 128])

Errors the user can cause (not an image, empty, too small, over ``max_pixels``, fully transparent,
no foreground found) raise :class:`splatgen.core.errors.ImageError` naming the file.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from . import framing
from .errors import ImageError
from .images import to_uint8

__all__ = ["PreparedImage", "prepare_image", "load_image", "LoadedImage", "segment_foreground", "refine_mask",
           "frame_object", "composite",
           "DEFAULT_FOREGROUND_RATIO", "DEFAULT_MAX_PIXELS", "MIN_SIDE"]

#: Longer side of the object's mask bounding box as a fraction of the 128 px input side. Measured on
#: the training data: the median over all 19,675 non-empty views of data/sh3d (820 objects × 24
#: views) of max(bbox width, bbox height) / 128 of the alpha mask (alpha ≥ 128) is 71 / 128 = 0.5547
#: (5th / 25th / 75th / 95th percentiles: 0.40 / 0.49 / 0.62 / 0.67; mean 0.548).
DEFAULT_FOREGROUND_RATIO = 71 / 128
#: Largest image accepted, in pixels (width × height), checked from the header before decoding:
#: 64 MP covers 48/50 MP phone photos; decoded RGBA at this size is 256 MB. Note that Pillow's own
#: decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``, ~89 MP; refuses above twice that)
#: also applies; larger ``max_pixels`` need that raised too.
DEFAULT_MAX_PIXELS = 64_000_000
#: Smallest accepted side, pixels.
MIN_SIDE = 16
#: GrabCut runs on a copy whose longer side is at most this many pixels.
GRABCUT_SIDE = 256
#: JPEGs larger than this (longer side) are decoded at a reduced DCT scale, keeping at least it.
DECODE_SIDE = 1000
#: Lab distance (beyond a border colour cluster's own spread) under which an interior pixel starts
#: GrabCut as "probably background". Tuned on dataset objects pasted on plain / gradient / textured
#: backdrops (mean mask IoU 0.87 over 150 cases; 10 → 0.84, 4 → 0.865).
BORDER_COLOUR_TOL = 6.0
#: ``PreparedImage.original`` is downscaled to at most this longer side.
DISPLAY_SIDE = 1024
#: Threshold on the (soft) mask that defines the object's bounding box; the same threshold
#: (alpha ≥ 128) was used to measure :data:`DEFAULT_FOREGROUND_RATIO`.
MASK_THRESHOLD = 0.5

_EXIF_ORIENTATION = 0x0112


# ============================================================================ results
@dataclass
class PreparedImage:
    """A photo prepared as the generator's input (S = :data:`framing.IMAGE_SIZE` = 128).

    ``rgba`` ``(S, S, 4)`` uint8, straight alpha: RGB the source's colours, alpha the mask.
    ``image`` ``(4, S, S)`` float32 torch tensor in [0, 1]: RGB composited on
    :data:`framing.BACKGROUND` + alpha, exactly the training input format (``ViewBatch.input``).
    ``mask`` ``(S, S)`` float32 numpy array in [0, 1] (= alpha / 255).
    ``original`` the oriented source, ``(H, W, 3|4)`` uint8 RGB(A), longer side ≤ 1024 px, for display.
    ``crop_box`` ``(x0, y0, x1, y1)`` the object's bounding box in the oriented source's full-size
    pixels (x1, y1 exclusive). ``window_box`` the square of the source (float, same pixels, may
    extend past its edges) that was resampled onto the S×S input.
    ``foreground_ratio`` the object's longer side / S. ``background_removed`` whether GrabCut cut the
    object out (False: the alpha channel, or the whole image, was the mask).
    ``mask_source`` ``"alpha"``, ``"grabcut"`` or ``"none"`` (whole image). ``source_size`` the oriented
    source's full ``(width, height)``. ``name`` what error messages call the source. ``timings`` wall
    milliseconds of the stages (``load``, ``mask``, ``frame``, ``total``).
    """

    rgba: np.ndarray
    image: torch.Tensor
    mask: np.ndarray
    original: np.ndarray
    crop_box: tuple[int, int, int, int]
    foreground_ratio: float
    background_removed: bool
    window_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    mask_source: str = "alpha"
    source_size: tuple[int, int] = (0, 0)
    name: str = ""
    timings: dict = None  # wall milliseconds of the stages: load, mask, frame, total


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


# ============================================================================ loading
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
    try:
        im.load()
    except Exception as exc:  # noqa: BLE001 - truncated / corrupt data
        raise ImageError(f"{name}: the image data cannot be decoded ({exc})") from exc
    try:
        if orientation != 1:
            im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - keep the unrotated image rather than fail
        pass
    return _pil_to_array(im, name), full, reduced


def _open_pil(fp, name: str, max_pixels: int | None) -> Image.Image | None:
    """``Image.open`` (header only), or None if Pillow does not know the format."""
    try:
        with warnings.catch_warnings():
            # we check the size ourselves (max_pixels) before anything is decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except Image.DecompressionBombError as exc:
        limit = f"the limit of {max_pixels / 1e6:g} MP (max_pixels)" if max_pixels else "Pillow's limit"
        raise ImageError(f"{name}: the image is larger than {limit} and too large to decode safely ({exc})") from exc
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: not a readable image ({exc})") from exc


def _read_imageio(data, name: str, max_pixels: int | None) -> np.ndarray:
    """Fallback for formats Pillow does not know (imageio's other plugins), first frame only."""
    try:
        import imageio.v3 as iio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # imageio's legacy plugins announce their deprecation
            shape = iio.improps(data, index=0).shape
            if len(shape) >= 2:
                _check_size(int(shape[1]), int(shape[0]), name, max_pixels)
            arr = np.asarray(iio.imread(data, index=0))
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure means "not an image we can read"
        raise ImageError(f"{name}: not an image (neither Pillow nor imageio can read it)") from exc
    if arr.ndim == 4:  # a volume / stack: first slice
        arr = arr[0]
    return _as_hwc(arr, name)


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

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError(f"{name}: the image data is empty (0 bytes)")
        fp = io.BytesIO(data)
        fallback = data
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image file")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"{name}: cannot be read ({exc.strerror})") from exc
        if size == 0:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        fp = path
        fallback = path
    else:
        raise ImageError(f"{name}: expected an image path, bytes, a PIL image or an array, "
                         f"got {type(source).__name__}")

    try:
        im = _open_pil(fp, name, max_pixels)
    except PermissionError as exc:
        raise ImageError(f"{name}: cannot be read (permission denied)") from exc
    if im is None:
        pixels = _read_imageio(fallback, name, max_pixels)
        return LoadedImage(_drop_opaque_alpha(pixels), (pixels.shape[1], pixels.shape[0]), name)
    with im:
        w, h = im.size
        _check_size(w, h, name, max_pixels)  # before decoding anything
        pixels, full, reduced = _decode_pil(im, name, draft_side)
    return LoadedImage(_drop_opaque_alpha(pixels), full, name, reduced)


# ============================================================================ masks
def _resize_long(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return img
    k = side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _border_ring(h: int, w: int, width: int) -> np.ndarray:
    ring = np.zeros((h, w), bool)
    ring[:width], ring[-width:], ring[:, :width], ring[:, -width:] = True, True, True, True
    return ring


def _background_like(lab: np.ndarray, seeds: np.ndarray, tol: float, spread_k: float = 1.0) -> np.ndarray:
    """Pixels whose Lab colour lies within ``tol`` of one of the seed pixels' colour clusters."""
    samples = lab[seeds].reshape(-1, 3).astype(np.float32)
    k = int(min(8, max(1, len(samples) // 20)))
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, labels, centres = cv2.kmeans(samples, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    # each cluster's own spread widens its tolerance (a noisy / textured backdrop)
    spread = np.array([np.sqrt(((samples[labels[:, 0] == i] - centres[i]) ** 2).sum(1).mean())
                       if (labels[:, 0] == i).any() else 0.0 for i in range(k)], np.float32)
    pix = lab.reshape(-1, 1, 3).astype(np.float32)
    d = np.sqrt(((pix - centres[None]) ** 2).sum(-1)) - spread_k * spread[None]
    return (d.min(1) < tol).reshape(lab.shape[:2])


def _clean(fg: np.ndarray) -> np.ndarray:
    """Drop specks (components < 2 % of the largest) and fill pin-holes (< 0.2 % of the object)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return fg
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= max(4, 0.02 * areas.max())
    fg = keep[labels]
    total = int(fg.sum())
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~fg).astype(np.uint8), connectivity=4)
    h, w = fg.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    fill = ~touches & (area < max(4, 0.002 * total))
    fill[0] = False
    return fg | fill[labels]


def _grabcut(bgr: np.ndarray, labels: np.ndarray, iterations: int) -> np.ndarray:
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means initialisation: same image, same mask
    cv2.grabCut(bgr, labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _no_foreground(name: str, why: str) -> ImageError:
    return ImageError(f"{name}: no foreground object found ({why}); use an image with an alpha channel "
                      f"(transparent background), or pass remove_background=False to use the whole image")


def _seed_labels(rgb: np.ndarray, ring: np.ndarray, outer_bgd: np.ndarray | None = None) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    like = _background_like(lab, ring, tol=BORDER_COLOUR_TOL)
    labels = np.where(like, cv2.GC_PR_BGD, cv2.GC_PR_FGD).astype(np.uint8)
    labels[ring if outer_bgd is None else outer_bgd] = cv2.GC_BGD
    return labels


def segment_foreground(rgb: np.ndarray, name: str = "<image>", iterations: int = 3) -> np.ndarray:
    """Foreground mask ``(h, w)`` bool of an ``(h, w, 3)`` uint8 RGB image (longer side ≤ ~256 px
    for speed), by GrabCut seeded from the image border. Raises :class:`ImageError` when it finds
    nothing or everything."""
    h, w = rgb.shape[:2]
    if float(rgb.reshape(-1, 3).astype(np.float32).std(0).max()) < 2.0:
        raise _no_foreground(name, "the image is a single flat colour")
    width = max(2, round(0.015 * max(h, w)))
    ring = _border_ring(h, w, width)
    interior = ~ring
    min_area = max(16, 0.0005 * h * w)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    labels = _seed_labels(rgb, ring)
    why = "nothing in the image differs from its border"
    fg = None
    if int((labels == cv2.GC_PR_FGD).sum()) >= min_area:
        fg, why = _cut(bgr, labels, iterations, min_area, int(interior.sum()))
    if fg is None:
        # the colour seeding lost the object (it shares the backdrop's colours): seed from the ring only
        labels = np.where(ring, cv2.GC_BGD, cv2.GC_PR_FGD).astype(np.uint8)
        fg, why2 = _cut(bgr, labels, iterations, min_area, int(interior.sum()))
        if fg is None:
            raise _no_foreground(name, why if why2 is None else why2)
    return fg


def _cut(bgr: np.ndarray, labels: np.ndarray, iterations: int, min_area: float, interior: int
         ) -> tuple[np.ndarray | None, str | None]:
    """GrabCut + clean-up; (mask, None), or (None, why) when it found nothing or everything."""
    try:
        fg = _clean(_grabcut(bgr, labels, iterations))
    except cv2.error as exc:
        return None, f"GrabCut failed: {getattr(exc, 'msg', exc)}"
    area = int(fg.sum())
    if area < min_area:
        return None, "the cut-out is empty"
    if area > 0.97 * interior:
        return None, "everything inside the border was taken as the object"
    return fg, None


def refine_mask(rgb: np.ndarray, coarse: np.ndarray, iterations: int = 2, side: int = GRABCUT_SIDE
                ) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """Second GrabCut pass on a crop around the object, at up to ``side`` px, colour models learnt locally.

    ``rgb`` ``(h, w, 3)`` the image at full working resolution; ``coarse`` the first cut at any
    smaller scale of it. Returns (mask ``(ch, cw)`` bool at the crop's working scale, crop box
    ``(x0, y0, x1, y1)`` in ``rgb`` pixels), or None where a second pass has nothing to add (the object
    fills the frame) or went wrong (then keep the first cut).
    """
    h, w = rgb.shape[:2]
    sx, sy = w / coarse.shape[1], h / coarse.shape[0]
    box = _bbox(coarse.astype(np.float32))
    m = 0.12 * max(box[2] - box[0], box[3] - box[1]) + 3
    x0, y0 = max(0, math.floor((box[0] - m) * sx)), max(0, math.floor((box[1] - m) * sy))
    x1, y1 = min(w, math.ceil((box[2] + m) * sx)), min(h, math.ceil((box[3] + m) * sy))
    if (x1 - x0) * (y1 - y0) > 0.6 * h * w:  # the object fills the frame: the first cut saw it all
        return None
    sub = _resize_long(rgb[y0:y1, x0:x1], side)
    ch, cw = sub.shape[:2]
    # the first cut, brought to the crop's scale, as "probably" labels; far from its edge, trusted
    k = np.array([sx * cw / (x1 - x0), sy * ch / (y1 - y0)])
    affine = np.array([[k[0], 0, -x0 * cw / (x1 - x0)], [0, k[1], -y0 * ch / (y1 - y0)]], np.float32)
    prior = cv2.warpAffine(coarse.astype(np.float32), affine, (cw, ch), flags=cv2.INTER_LINEAR) >= 0.5
    labels = np.where(prior, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    dist_in = cv2.distanceTransform(prior.astype(np.uint8), cv2.DIST_L2, 3)
    dist_out = cv2.distanceTransform((~prior).astype(np.uint8), cv2.DIST_L2, 3)
    labels[dist_out > 0.08 * max(ch, cw)] = cv2.GC_BGD
    labels[dist_in > 0.15 * max(ch, cw)] = cv2.GC_FGD
    labels[_border_ring(ch, cw, 1) & ~prior] = cv2.GC_BGD
    if (labels == cv2.GC_BGD).sum() < 32 or (labels != cv2.GC_BGD).sum() < 32:
        return None
    try:
        fine = _clean(_grabcut(np.ascontiguousarray(sub[:, :, ::-1]), labels, iterations))
    except cv2.error:
        return None
    if fine.sum() < 0.5 * prior.sum():  # the second pass lost the object: keep the first cut
        return None
    return fine, (x0, y0, x1, y1)


def _soft_upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool mask → uint8 alpha of ``size`` (w, h): slightly smoothed, linearly interpolated."""
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.6)
    return to_uint8(cv2.resize(soft, size, interpolation=cv2.INTER_LINEAR))


def _bbox(mask: np.ndarray, threshold: float = MASK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (exclusive ends) of ``mask ≥ threshold``, or None if empty."""
    m = mask >= threshold
    cols, rows = np.flatnonzero(m.any(0)), np.flatnonzero(m.any(1))
    if not len(cols):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# ============================================================================ framing
def frame_object(rgb: np.ndarray, alpha: np.ndarray, box: tuple[float, float, float, float],
                 foreground_ratio: float, size: int = framing.IMAGE_SIZE
                 ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Resample the object into a ``size``² straight-alpha RGBA image, centred on ``box``.

    ``rgb`` ``(h, w, 3)`` and ``alpha`` ``(h, w)`` uint8 of the same image; ``box`` the object's
    bounding box in its pixels (float, exclusive ends). The box's longer side becomes
    ``foreground_ratio·size`` pixels and its centre the image centre. Resampled with Pillow LANCZOS
    in premultiplied colour (no background fringes), sub-pixel exact; outside the image is
    transparent. Returns (rgba ``(size, size, 4)`` uint8, the source window ``(x0, y0, x1, y1)``).
    """
    h, w = alpha.shape
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = 0.5 * max(x1 - x0, y1 - y0) / foreground_ratio  # source px from centre to the window edge
    wx0, wy0, wx1, wy1 = cx - half, cy - half, cx + half, cy + half
    ix0, iy0, ix1, iy1 = math.floor(wx0), math.floor(wy0), math.ceil(wx1), math.ceil(wy1)
    canvas = np.zeros((iy1 - iy0, ix1 - ix0, 4), np.uint8)
    sx0, sy0, sx1, sy1 = max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h)
    if sx1 > sx0 and sy1 > sy0:
        dst = canvas[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0]
        dst[..., :3] = rgb[sy0:sy1, sx0:sx1]
        dst[..., 3] = alpha[sy0:sy1, sx0:sx1]
    im = Image.fromarray(canvas, "RGBA")  # Pillow resamples RGBA premultiplied
    out = im.resize((size, size), Image.Resampling.LANCZOS,
                    box=(wx0 - ix0, wy0 - iy0, wx1 - ix0, wy1 - iy0), reducing_gap=3.0)
    return np.asarray(out).copy(), (wx0, wy0, wx1, wy1)


def composite(rgba: np.ndarray, background=framing.BACKGROUND) -> torch.Tensor:
    """uint8 ``(S, S, 4)`` straight RGBA → float32 ``(4, S, S)``: RGB over ``background``, alpha.

    The same float32 arithmetic, op for op, as the training input (``ViewBank.decode`` +
    ``ViewBank.batch``), done in numpy (torch's per-op overhead dominates at this size)."""
    x = np.asarray(rgba, np.float32) / np.float32(255.0)
    rgb, a = x[..., :3], x[..., 3:]
    bg = np.asarray(background, np.float32)
    rgb = rgb * a + bg * (np.float32(1.0) - a)
    return torch.from_numpy(np.ascontiguousarray(np.concatenate([rgb, a], -1).transpose(2, 0, 1)))


# ============================================================================ the entry point
def prepare_image(source, *, foreground_ratio: float = DEFAULT_FOREGROUND_RATIO, remove_background: bool = True,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str | None = None) -> PreparedImage:
    """Prepare one image as the generator's 128² input (see the module docstring for the steps).

    ``source``: a path, bytes, a PIL image, or an array (``(H, W)``, ``(H, W, 1|2|3|4)`` or
    ``(C, H, W)``; uint8, uint16, bool, or float in [0, 1]). ``foreground_ratio``: the object's
    longer side / 128 (default: the training data's median, :data:`DEFAULT_FOREGROUND_RATIO`).
    ``remove_background``: cut the object out with GrabCut when the image has no alpha; False uses
    the alpha channel if there is one, else the whole image. ``max_pixels``: refuse images with more
    pixels than this (checked from the header before decoding; default
    :data:`DEFAULT_MAX_PIXELS` = 64 MP). ``name``: what error messages call the source (default:
    the path). Raises :class:`ImageError` for anything wrong with the image.
    """
    if not (0.0 < float(foreground_ratio) <= 1.0):
        raise ValueError(f"foreground_ratio must be in (0, 1], got {foreground_ratio}")
    t0 = time.perf_counter()
    loaded = load_image(source, max_pixels=max_pixels, name=name, draft_side=DECODE_SIDE)
    t1 = time.perf_counter()
    name = loaded.name
    px = loaded.pixels
    h, w = px.shape[:2]
    target = foreground_ratio * framing.IMAGE_SIZE

    # box: the object's bounding box in mask pixels; (mx, my): decoded pixels per mask pixel
    if loaded.has_alpha:
        alpha = px[:, :, 3]
        if int(alpha.max()) == 0:
            raise ImageError(f"{name}: the image is fully transparent (its alpha channel is 0 everywhere)")
        mask_src, mask = "alpha", alpha
        box = _bbox(alpha, MASK_THRESHOLD * 255) or _bbox(alpha, 1)  # faint everywhere: anything visible
    elif not remove_background:
        mask_src, mask = "none", None
        box = (0, 0, w, h)
    else:
        small = _resize_long(px[:, :, :3], GRABCUT_SIDE)
        fg = segment_foreground(small, name)
        mask_src, mask = "grabcut", fg
        box = _bbox(fg.astype(np.float32))
    mx, my = w / (mask.shape[1] if mask is not None else w), h / (mask.shape[0] if mask is not None else h)

    # the object small in a reduced JPEG decode: decode again at full size for detail
    if loaded.reduced and max(box[2] - box[0], box[3] - box[1]) * mx < 1.5 * target:
        loaded = load_image(source, max_pixels=max_pixels, name=name, draft_side=None)
        px = loaded.pixels
        k = px.shape[1] / w
        h, w = px.shape[:2]
        mx, my = mx * k, my * k

    if mask_src == "grabcut":
        refined = refine_mask(px[:, :, :3], fg)
        if refined is None:
            mask = _soft_upsample(fg, (w, h))
        else:
            fine, (x0, y0, x1, y1) = refined
            mask = np.zeros((h, w), np.uint8)
            mask[y0:y1, x0:x1] = _soft_upsample(fine, (x1 - x0, y1 - y0))
            fine_box = _bbox(mask, MASK_THRESHOLD * 255)
            if fine_box is None:
                mask = _soft_upsample(fg, (w, h))
            else:
                box, mx, my = fine_box, 1.0, 1.0
    elif mask_src == "none":
        mask = np.full((h, w), 255, np.uint8)
    t2 = time.perf_counter()
    fbox = (box[0] * mx, box[1] * my, box[2] * mx, box[3] * my)

    rgba, window = frame_object(px[:, :, :3], mask, fbox, foreground_ratio)
    if int(rgba[:, :, 3].max()) == 0:
        raise ImageError(f"{name}: nothing of the object is left after framing")

    kx, ky = loaded.scale
    crop_box = (int(math.floor(fbox[0] * kx)), int(math.floor(fbox[1] * ky)),
                int(math.ceil(fbox[2] * kx)), int(math.ceil(fbox[3] * ky)))
    window_box = (window[0] * kx, window[1] * ky, window[2] * kx, window[3] * ky)
    original = _resize_long(px, DISPLAY_SIDE)
    return PreparedImage(
        rgba=rgba,
        image=composite(rgba),
        mask=rgba[:, :, 3].astype(np.float32) / 255.0,
        original=np.ascontiguousarray(original),
        crop_box=crop_box,
        foreground_ratio=float(foreground_ratio),
        background_removed=mask_src == "grabcut",
        window_box=window_box,
        mask_source=mask_src,
        source_size=loaded.full_size,
        name=name,
        timings={"load": (t1 - t0) * 1e3, "mask": (t2 - t1) * 1e3, "frame": (time.perf_counter() - t2) * 1e3,
                 "total": (time.perf_counter() - t0) * 1e3},
    )
