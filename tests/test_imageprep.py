"""Image preparation: loading any image, cutting the object out, framing it like the training views.

Every input is synthesised here (no data/sh3d needed): shapes with an analytically known outline,
so the prepared mask can be compared with where the shape must land after the crop and scale.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from splatgen.core import framing
from splatgen.core.errors import ImageError, SplatgenError
from splatgen.core.imageprep import (DEFAULT_FOREGROUND_RATIO, DEFAULT_MAX_PIXELS, PreparedImage, load_image,
                                     prepare_image)

S = framing.IMAGE_SIZE


# ---------------------------------------------------------------------- synthetic inputs
def ellipse_alpha(w: int, h: int, cx: float, cy: float, a: float, b: float, ss: int = 4) -> np.ndarray:
    """Coverage in [0, 1] of the axis-aligned ellipse at pixel (centre +0.5) resolution, ``ss``² supersampled.

    Sampled only inside the ellipse's bounding box (every pixel outside it has no sample inside)."""
    off = (np.arange(ss) + 0.5) / ss
    x0, x1 = max(0, int(np.floor(cx - a))), min(w, int(np.ceil(cx + a)) + 1)
    y0, y1 = max(0, int(np.floor(cy - b))), min(h, int(np.ceil(cy + b)) + 1)
    out = np.zeros((h, w), np.float32)
    if x0 >= x1 or y0 >= y1:
        return out
    yy = (np.arange(y0, y1)[:, None] + off[None, :]).reshape(-1)
    xx = (np.arange(x0, x1)[:, None] + off[None, :]).reshape(-1)
    inside = ((xx[None, :] - cx) / a) ** 2 + ((yy[:, None] - cy) / b) ** 2 <= 1
    out[y0:y1, x0:x1] = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    return out


def textured_rgb(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A warm, striped, noisy texture for the object."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.array([200, 70, 40], np.float32)
    stripes = 35 * np.sin(xx / 6.0 + yy / 11.0)[..., None] * np.array([1.0, 0.6, 0.2], np.float32)
    return base + stripes + rng.normal(0, 6, (h, w, 3)).astype(np.float32)


def background(kind: str, w: int, h: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "white":
        return np.full((h, w, 3), 250, np.float32) + rng.normal(0, 1.5, (h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (0.7 * xx / w + 0.3 * yy / h)[..., None]
    grad = np.array([60, 110, 160], np.float32) * (1 - t) + np.array([130, 180, 215], np.float32) * t
    if kind == "gradient":
        return grad + rng.normal(0, 3, (h, w, 3)).astype(np.float32)
    if kind == "grain":  # a wood-grain-like luminance texture on the gradient
        grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigmaX=w / 40, sigmaY=1.0)
        grain = 10 * grain / (grain.std() + 1e-6)
        return grad + grain[..., None] + rng.normal(0, 3, (h, w, 3)).astype(np.float32)
    raise ValueError(kind)


@functools.lru_cache(maxsize=None)
def photo_of_ellipse(kind: str, w=640, h=480, cx=350.0, cy=220.0, a=150.0, b=95.0) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 photo, true alpha float): the textured ellipse composited on a background.

    Made once per set of arguments (the 3000 × 2000 one takes seconds), hence read-only."""
    alpha = ellipse_alpha(w, h, cx, cy, a, b)
    rgb = textured_rgb(w, h) * alpha[..., None] + background(kind, w, h) * (1 - alpha[..., None])
    photo = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    photo.setflags(write=False)
    alpha.setflags(write=False)
    return photo, alpha


def jpeg_bytes(rgb: np.ndarray, quality: int = 92, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def framed_ellipse(a: float, b: float, ratio: float) -> np.ndarray:
    """Where an ellipse with semi-axes (a, b) must land: centred, its longer axis ratio·S long."""
    k = ratio * S / (2 * max(a, b))
    return ellipse_alpha(S, S, S / 2, S / 2, a * k, b * k) >= 0.5


def iou(m1: np.ndarray, m2: np.ndarray) -> float:
    return float((m1 & m2).sum() / max(1, (m1 | m2).sum()))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (no real pixel data)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def training_input(rgba: np.ndarray) -> torch.Tensor:
    """The training input format (ViewBank.decode + batch): RGB over the background, alpha as channel 4."""
    x = torch.from_numpy(rgba).float() / 255.0
    rgb, a = x[..., :3], x[..., 3:]
    rgb = rgb * a + torch.tensor(framing.BACKGROUND) * (1 - a)
    return torch.cat([rgb, a], -1).permute(2, 0, 1)


# ---------------------------------------------------------------------- GrabCut
@pytest.mark.parametrize("kind", ["gradient", "white", "grain"])
def test_grabcut_cuts_out_the_known_shape(kind):
    photo, _ = photo_of_ellipse(kind)
    p = prepare_image(jpeg_bytes(photo), name=f"ellipse-on-{kind}.jpg")
    assert p.background_removed and p.mask_source == "grabcut"
    expected = framed_ellipse(150, 95, DEFAULT_FOREGROUND_RATIO)
    assert iou(p.mask >= 0.5, expected) >= 0.85
    # the cut-out's colours are the object's (warm), the background went white
    obj = p.rgba[p.mask >= 0.9]
    assert obj[:, 0].mean() > obj[:, 2].mean() + 60
    assert torch.all(p.image[:3][:, p.mask == 0] == 1.0)


def test_grabcut_crop_box_is_in_source_pixels_for_a_large_jpeg():
    # 3000×2000: decoded at a reduced DCT scale, the crop box still comes back in full-size pixels
    photo, _ = photo_of_ellipse("gradient", w=3000, h=2000, cx=1900.0, cy=800.0, a=600.0, b=380.0)
    p = prepare_image(jpeg_bytes(photo), name="big.jpg")
    assert p.source_size == (3000, 2000)
    assert max(p.original.shape[:2]) <= 1024
    np.testing.assert_allclose(p.crop_box, (1300, 420, 2500, 1180), atol=30)
    assert iou(p.mask >= 0.5, framed_ellipse(600, 380, DEFAULT_FOREGROUND_RATIO)) >= 0.85


def test_grabcut_small_object_in_a_large_jpeg_is_redecoded_sharp():
    photo, _ = photo_of_ellipse("gradient", w=3200, h=2400, cx=1000.0, cy=1500.0, a=90.0, b=60.0)
    p = prepare_image(jpeg_bytes(photo), name="small-object.jpg")
    np.testing.assert_allclose(p.crop_box, (910, 1440, 1090, 1560), atol=8)
    assert iou(p.mask >= 0.5, framed_ellipse(90, 60, DEFAULT_FOREGROUND_RATIO)) >= 0.85


def test_grabcut_is_deterministic():
    data = jpeg_bytes(photo_of_ellipse("grain")[0])
    a, b = prepare_image(data), prepare_image(data)
    assert np.array_equal(a.rgba, b.rgba)


# ---------------------------------------------------------------------- alpha
def identity_rgba(seed: int = 0) -> np.ndarray:
    """128² RGBA whose alpha ≥ 128 spans x ∈ [28, 100), y ∈ [40, 88): at ratio 72/128 framing is the identity."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((S, S, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (S, S, 3))
    alpha = np.zeros((S, S), np.uint8)
    alpha[36:92, 24:104] = 40  # a faint halo (below the bbox threshold)
    alpha[40:88, 28:100] = rng.integers(128, 256, (48, 72))
    rgba[..., 3] = alpha
    return rgba


def test_alpha_is_the_mask_exactly_when_framing_is_the_identity(tmp_path):
    rgba = identity_rgba()
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    p = prepare_image(path, foreground_ratio=72 / 128)
    assert p.mask_source == "alpha" and not p.background_removed
    assert np.array_equal(p.mask, rgba[..., 3].astype(np.float32) / 255)
    visible = rgba[..., 3] > 0
    assert np.array_equal(p.rgba[visible], rgba[visible])  # straight alpha: the source's own colours
    assert p.crop_box == (28, 40, 100, 88)
    assert p.window_box == pytest.approx((0, 0, 128, 128))


def test_alpha_mask_is_the_resampled_alpha():
    rgba = np.repeat(np.repeat(identity_rgba(1), 3, 0), 3, 1)  # 384², every pixel 3×3: exactly 3× larger
    p = prepare_image(rgba, foreground_ratio=72 / 128, remove_background=True)
    assert p.mask_source == "alpha"
    expected = identity_rgba(1)[..., 3].astype(np.float32) / 255
    assert np.abs(p.mask - expected).mean() < 0.01
    assert iou(p.mask >= 0.5, expected >= 0.5) > 0.98
    assert p.crop_box == (84, 120, 300, 264)


def test_model_input_format_matches_training():
    p = prepare_image(identity_rgba(2), foreground_ratio=72 / 128)
    assert isinstance(p, PreparedImage)
    assert p.image.shape == (4, S, S) and p.image.dtype == torch.float32
    assert p.rgba.shape == (S, S, 4) and p.rgba.dtype == np.uint8
    assert p.mask.shape == (S, S) and p.mask.dtype == np.float32
    assert torch.equal(p.image, training_input(p.rgba))
    assert float(p.image.min()) >= 0 and float(p.image.max()) <= 1
    assert torch.equal(p.image[3], torch.from_numpy(p.mask))


def test_opaque_alpha_is_ignored_and_grabcut_runs():
    photo, _ = photo_of_ellipse("gradient")
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    p = prepare_image(rgba)
    assert p.mask_source == "grabcut"


@pytest.mark.parametrize("ratio", [0.4, DEFAULT_FOREGROUND_RATIO, 0.8])
@pytest.mark.parametrize("shape", [(300, 200, 210.0, 70.0, 60.0, 40.0), (200, 300, 60.0, 220.0, 30.0, 55.0)])
def test_object_is_centred_and_scaled(ratio, shape):
    w, h, cx, cy, a, b = shape
    alpha = ellipse_alpha(w, h, cx, cy, a, b)
    rgba = np.dstack([np.broadcast_to(np.array([30, 160, 90], np.uint8), (h, w, 3)),
                      np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
    p = prepare_image(rgba, foreground_ratio=ratio)
    x0, y0, x1, y1 = bbox(p.mask >= 0.5)
    assert abs((x0 + x1) / 2 - S / 2) <= 2 and abs((y0 + y1) / 2 - S / 2) <= 2
    assert abs(max(x1 - x0, y1 - y0) - ratio * S) <= 2
    assert iou(p.mask >= 0.5, framed_ellipse(a, b, ratio)) > 0.95
    assert p.foreground_ratio == ratio


def test_grabcut_result_is_centred_and_scaled():
    photo, _ = photo_of_ellipse("gradient", cx=250.0, cy=300.0, a=90.0, b=140.0)  # tall, off-centre
    p = prepare_image(jpeg_bytes(photo), foreground_ratio=0.7)
    x0, y0, x1, y1 = bbox(p.mask >= 0.5)
    assert abs((x0 + x1) / 2 - S / 2) <= 2 and abs((y0 + y1) / 2 - S / 2) <= 2
    assert abs(max(x1 - x0, y1 - y0) - 0.7 * S) <= 2


def test_remove_background_false_uses_the_whole_image():
    photo, _ = photo_of_ellipse("gradient", w=200, h=100)
    p = prepare_image(photo, remove_background=False)
    assert p.mask_source == "none" and not p.background_removed
    x0, y0, x1, y1 = bbox(p.mask >= 0.5)
    assert abs((x1 - x0) - DEFAULT_FOREGROUND_RATIO * S) <= 1  # the whole 200 px width
    assert abs((y1 - y0) - DEFAULT_FOREGROUND_RATIO * S / 2) <= 1
    assert p.crop_box == (0, 0, 200, 100)


def test_remove_background_false_keeps_alpha():
    p = prepare_image(identity_rgba(), remove_background=False, foreground_ratio=72 / 128)
    assert p.mask_source == "alpha"
    assert np.array_equal(p.mask, identity_rgba()[..., 3].astype(np.float32) / 255)


# ---------------------------------------------------------------------- sources and formats
def test_every_kind_of_source_gives_the_same_result(tmp_path):
    rgba = identity_rgba(3)
    path = tmp_path / "same.png"
    Image.fromarray(rgba, "RGBA").save(path)
    ref = prepare_image(path, foreground_ratio=72 / 128).rgba
    for src in (str(path), path.read_bytes(), Image.open(path), rgba, rgba.transpose(2, 0, 1).astype(np.float32) / 255,
                torch.from_numpy(rgba.copy())):
        assert np.array_equal(prepare_image(src, foreground_ratio=72 / 128).rgba, ref), type(src)


def test_exif_orientation_6_rotates(tmp_path):
    stored = np.zeros((60, 120, 3), np.uint8)  # stored landscape: left half red, right half blue
    stored[:, :60] = (220, 20, 20)
    stored[:, 60:] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the left edge becomes the top
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, "JPEG", quality=95, exif=exif.tobytes())
    p = prepare_image(path, remove_background=False)
    assert p.source_size == (60, 120)
    assert p.original.shape == (120, 60, 3)
    top, bottom = p.original[:50].reshape(-1, 3).mean(0), p.original[70:].reshape(-1, 3).mean(0)
    assert top[0] > 180 and top[2] < 60 and bottom[2] > 180 and bottom[0] < 60
    # the prepared input is portrait too: red above blue
    x0, y0, x1, y1 = bbox(p.mask >= 0.5)
    assert (y1 - y0) > 1.8 * (x1 - x0)
    assert p.rgba[y0 + 5, 64, 0] > 180 and p.rgba[y1 - 5, 64, 2] > 180


def test_exif_orientation_applies_to_a_reduced_decode():
    display, _ = photo_of_ellipse("gradient", w=3000, h=2000, cx=1900.0, cy=800.0, a=600.0, b=380.0)
    stored = np.ascontiguousarray(np.rot90(display, 1))  # rotated 90° counter-clockwise: 2000 wide, 3000 high
    exif = Image.Exif()
    exif[0x0112] = 6
    p = prepare_image(jpeg_bytes(stored, exif=exif.tobytes()), name="phone.jpg")
    assert p.source_size == (3000, 2000)
    np.testing.assert_allclose(p.crop_box, (1300, 420, 2500, 1180), atol=30)


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_16bit_grey_png_loads():
    grey16 = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    data = _save(Image.fromarray(grey16), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    loaded = load_image(data)
    assert loaded.pixels.shape == (48, 64, 3) and loaded.pixels.dtype == np.uint8
    np.testing.assert_allclose(loaded.pixels[..., 0], grey16 / 257.0, atol=1)
    assert np.array_equal(loaded.pixels[..., 0], loaded.pixels[..., 2])
    prepare_image(data, remove_background=False)


def test_16bit_rgb_and_rgba_png_load():
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    ok, buf = cv2.imencode(".png", rgb16[..., ::-1])
    loaded = load_image(buf.tobytes())
    np.testing.assert_allclose(loaded.pixels.astype(float), rgb16 / 257.0, atol=1.01)
    rgba16 = np.dstack([rgb16, np.zeros((40, 50), np.uint16)])
    rgba16[10:30, 10:40, 3] = 65535
    ok, buf = cv2.imencode(".png", rgba16[..., [2, 1, 0, 3]])
    p = prepare_image(buf.tobytes())
    assert p.mask_source == "alpha" and p.crop_box == (10, 10, 40, 30)


def test_grey_palette_bilevel_and_la_images_load():
    photo, alpha = photo_of_ellipse("gradient", w=200, h=150, cx=100.0, cy=75.0, a=60.0, b=40.0)
    grey = Image.fromarray(photo).convert("L")
    for data in (_save(grey, "PNG"), _save(grey, "JPEG"), _save(Image.fromarray(photo).convert("P"), "PNG"),
                 _save(Image.fromarray(photo).convert("P"), "GIF"), _save(grey.convert("1"), "PNG"),
                 _save(Image.fromarray(photo), "BMP"), _save(Image.fromarray(photo), "TIFF")):
        p = prepare_image(data, remove_background=False)
        assert p.original.shape == (150, 200, 3) and p.mask_source == "none"
    la = grey.convert("LA")
    la.putalpha(Image.fromarray((alpha * 255).astype(np.uint8)))
    p = prepare_image(_save(la, "PNG"))
    assert p.mask_source == "alpha"
    np.testing.assert_allclose(p.crop_box, (40, 35, 160, 115), atol=1)


def test_palette_with_transparency_uses_it():
    pal = np.zeros((100, 120), np.uint8)
    pal[20:80, 30:90] = 1
    im = Image.fromarray(pal, "P")
    im.putpalette([255, 255, 255, 200, 30, 30] + [0] * 762)
    p = prepare_image(_save(im, "PNG", transparency=0))
    assert p.mask_source == "alpha" and p.crop_box == (30, 20, 90, 80)
    assert tuple(p.rgba[64, 64, :3]) == (200, 30, 30)


def test_cmyk_jpeg_loads_with_its_colours():
    photo = np.zeros((80, 100, 3), np.uint8)
    photo[:] = (40, 120, 200)
    data = _save(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    loaded = load_image(data)
    assert loaded.pixels.shape == (80, 100, 3)
    np.testing.assert_allclose(loaded.pixels.reshape(-1, 3).mean(0), (40, 120, 200), atol=12)
    prepare_image(data, remove_background=False)


def test_webp_with_alpha_loads():
    rgba = identity_rgba(4)
    p = prepare_image(_save(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True), foreground_ratio=72 / 128)
    assert np.array_equal(p.mask, rgba[..., 3].astype(np.float32) / 255)


# ---------------------------------------------------------------------- bad input
def _raises(src, match: str, **kw) -> ImageError:
    with pytest.raises(ImageError, match=match) as info:
        prepare_image(src, **kw)
    assert isinstance(info.value, SplatgenError)
    return info.value


def test_not_an_image(tmp_path):
    path = tmp_path / "notes-not-image.png"
    path.write_text("hello, this is text, not pixels\n" * 20)
    _raises(path, r"notes-not-image\.png.*not an image")


def test_empty_file(tmp_path):
    path = tmp_path / "empty-file.jpg"
    path.write_bytes(b"")
    _raises(path, r"empty-file\.jpg.*empty")
    _raises(b"", r"empty")


def test_missing_file_and_folder(tmp_path):
    _raises(tmp_path / "no-such-photo.jpg", r"no-such-photo\.jpg.*no such file")
    _raises(tmp_path, r"folder")


@pytest.mark.parametrize("size", [(1, 1), (15, 200), (300, 8)])
def test_too_small(tmp_path, size):
    path = tmp_path / f"tiny-{size[0]}x{size[1]}.png"
    Image.new("RGB", size, (10, 20, 30)).save(path)
    _raises(path, rf"tiny-{size[0]}x{size[1]}\.png.*too small")


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut-short.jpg"
    path.write_bytes(jpeg_bytes(photo_of_ellipse("gradient")[0])[:3000])
    _raises(path, r"cut-short\.jpg")


@pytest.fixture
def no_decoding(monkeypatch):
    """Count (and forbid) pixel decoding."""
    calls = []

    def load(self, *a, **k):
        calls.append(self)
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.mark.parametrize("side", [9000, 20000])
def test_oversized_image_refused_before_decoding(tmp_path, no_decoding, side):
    path = tmp_path / f"huge-{side}.png"
    path.write_bytes(png_header_only(side, side))  # a 65-byte file claiming side² pixels
    assert path.stat().st_size < 100
    err = _raises(path, rf"huge-{side}\.png.*larger than")
    assert "64 MP" in str(err)
    assert no_decoding == []
    assert side * side > DEFAULT_MAX_PIXELS


def test_max_pixels_is_checked_from_the_header(tmp_path, no_decoding):
    path = tmp_path / "real-200x200.png"
    Image.new("RGB", (200, 200), (1, 2, 3)).save(path)
    _raises(path, r"real-200x200\.png.*200×200.*larger than", max_pixels=30_000)
    assert no_decoding == []


def test_fully_transparent(tmp_path):
    path = tmp_path / "invisible.png"
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(path)
    _raises(path, r"invisible\.png.*fully transparent")


@pytest.mark.parametrize("colour", [(255, 255, 255), (90, 140, 30)])
def test_uniform_image_has_no_foreground(tmp_path, colour):
    path = tmp_path / "blank.jpg"
    Image.new("RGB", (400, 300), colour).save(path, quality=95)
    err = _raises(path, r"blank\.jpg.*no foreground")
    assert "remove_background=False" in str(err)
    # ... and the suggested way out works
    assert prepare_image(path, remove_background=False).mask_source == "none"


def test_noise_only_image_is_refused_or_cut(tmp_path):
    # pure noise has no object; whatever GrabCut does, the answer is either a clear error or a mask
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(path)
    try:
        p = prepare_image(path)
    except ImageError as err:
        assert "noise.png" in str(err)
    else:
        assert p.mask.max() > 0


def test_bad_array_and_type():
    _raises(np.zeros((5, 64, 64, 3)), r"expected an image array")
    _raises(np.full((64, 64, 3), np.nan, np.float32), r"NaN")
    _raises(12345, r"expected an image path")
    with pytest.raises(ValueError, match="foreground_ratio"):
        prepare_image(identity_rgba(), foreground_ratio=0)
