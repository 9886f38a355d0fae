"""Turntables and stills of one or more samples: every sample a tile of one grid, all on one camera.

A turntable is an orbit around the object at a fixed elevation, frame ``i`` at azimuth
``start + 360°·i/frames`` (so the video loops without a repeated frame), each sample drawn in its
own tile of a grid that fills the frame (:func:`grid_shape`: tiles as large and as square as they
can be), every tile from the same camera. :class:`TurntableSettings` holds what a user chooses
(frames, duration, elevation, size, background, transparency); the GUI's dialog, ``splatgen render
--turntable``, ``splatgen generate --video`` and :func:`splatgen.core.export.save_turntable` all
build one.

* :func:`iter_turntable` renders frames in batches of cameras (at most :data:`BATCH_PIXELS` pixels
  a batch), so memory stays bounded whatever the length and size; :func:`render_turntable` stacks
  them (small videos, tests).
* :func:`save_turntable` streams the frames into a file, atomically (:mod:`splatgen.core.atomic`): an
  error or a cancel (``cancelled()`` true, checked before every batch: :class:`~splatgen.core.generator.base.Cancelled`
  is raised) leaves no file behind, not even a partial one. Containers, by the path's suffix
  (:data:`CONTAINERS`): ``.mp4`` (H.264, no alpha: a transparent request is filled with the
  background colour, and :func:`container_alpha` says so), ``.webm`` (VP9, with alpha when
  transparent), ``.gif`` (256 colours a frame, 1-bit transparency, delays in 10 ms steps; its frames
  are held in memory until written, and Pillow merges consecutive identical frames into one longer
  one), or a path without a suffix: a folder of ``frame_0000.png`` …
  (RGBA when transparent). MP4 and WebM go through imageio-ffmpeg and need even sizes (4:2:0 chroma);
  without imageio-ffmpeg, a ``.gif`` is written beside the requested name instead.
* :func:`render_still` draws the same grid from any one camera at any size (the GUI's screenshot,
  ``splatgen render``), RGB or RGBA.

Pixels: a transparent frame holds **straight** colour and alpha from the renderer's alpha (pixels
nothing covers: alpha 0, the background colour); an opaque one is the premultiplied render
composited once on the background (:func:`splatgen.core.images.compose`). How fast it is:
``benchmarks/README.md``, *Turntables and stills*.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import framing
from .atomic import atomic_path
from .cameras import fit_intrinsics, orbit_viewmats
from .errors import SettingsError, SplatgenError
from .gaussians import Gaussians
from .generator.base import Cancelled
from .images import compose, to_uint8

#: Longest side of a turntable frame, pixels.
MAX_SIDE = 4096
#: Most pixels in a turntable frame (4096×2160, DCI 4K).
MAX_PIXELS = 4096 * 2160
#: Most frames in a turntable.
MAX_FRAMES = 3600
#: Frame rates a turntable may have (frames / seconds), frames a second.
FPS_RANGE = (0.5, 120.0)
#: Most pixels rendered in one batch of cameras (all tiles of the frames in it): what bounds memory.
BATCH_PIXELS = 4 * 1024 * 1024
#: Most frames in one batch (also how often a cancel is looked at, at small sizes).
MAX_BATCH_FRAMES = 8
#: Splats less opaque than this never change a pixel (every renderer skips α < 1/255): left out.
_MIN_OPACITY = 1.0 / 255.0

#: Output containers by suffix ("" = a folder of PNG frames): (label, keeps alpha, needs ffmpeg).
CONTAINERS = {
    ".mp4": ("MP4 video (H.264)", False, True),
    ".webm": ("WebM video (VP9, alpha when transparent)", True, True),
    ".gif": ("GIF animation", True, False),
    "": ("PNG frames (a folder)", True, False),
}

#: What the settings' checks call each field.
_LABELS = {"frames": "frames", "seconds": "duration (seconds)", "elevation_deg": "elevation (degrees)",
           "width": "width (pixels)", "height": "height (pixels)", "start_azimuth_deg": "start azimuth (degrees)",
           "fov_deg": "field of view (degrees)", "distance": "camera distance"}

ProgressFn = Callable[[int, int], None]
CancelledFn = Callable[[], bool]


@dataclass(frozen=True)
class TurntableSettings:
    """What a turntable looks like; checked when made (:class:`~splatgen.core.errors.SettingsError`).

    Attributes:
        frames: frames in one full turn, 1 … :data:`MAX_FRAMES`.
        seconds: how long the turn lasts, seconds (> 0); the frame rate follows: :attr:`fps` =
            ``frames / seconds``, within :data:`FPS_RANGE`.
        elevation_deg: the camera's height above the object's horizontal plane, degrees, in
            [-89, 89] (world Y up; the input photo's camera sits at
            :data:`splatgen.core.framing.INPUT_ELEVATION_DEG`).
        width, height: the whole frame, pixels (the grid of tiles fills it), each 16 …
            :data:`MAX_SIDE`, at most :data:`MAX_PIXELS` in all; any aspect (1920×1080 is 1080p).
            MP4 and WebM need both even.
        background: RGB in [0, 1]: what opaque frames are composited on, and the colour of the
            uncovered pixels of transparent ones.
        transparent: frames keep alpha where the container can (WebM, GIF, PNG frames); MP4 cannot
            and is filled with ``background``.
        start_azimuth_deg: azimuth of frame 0, degrees (0 looks from +Z: a sample's input view).
        distance: camera distance from ``target``, world units (None: the canonical
            :data:`splatgen.core.framing.CAMERA_DISTANCE`, which frames a generated sample).
        target: the orbit's centre ``(x, y, z)``, world units (None: the origin, a sample's centre).
        fov_deg: field of view across the shorter side of each tile, degrees, in (0, 180).
        backend: renderer (:data:`splatgen.core.render.BACKENDS`; ``"auto"``: gsplat on CUDA, else
            OpenGL, else torch).
    """

    frames: int = 60
    seconds: float = 2.0
    elevation_deg: float = framing.INPUT_ELEVATION_DEG
    width: int = 256
    height: int = 256
    background: tuple[float, float, float] = framing.BACKGROUND
    transparent: bool = False
    start_azimuth_deg: float = 0.0
    distance: float | None = None
    target: tuple[float, float, float] | None = None
    fov_deg: float = framing.FOV_DEG
    backend: str = "auto"

    def __post_init__(self) -> None:
        from .render import BACKENDS

        def number(name: str, lo: float | None = None, hi: float | None = None) -> float:
            value, what = getattr(self, name), _LABELS.get(name, name)
            try:
                x = float(value)
            except (TypeError, ValueError):
                raise SettingsError(f"turntable {what} must be a number, got {value!r}") from None
            if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
                span = f" in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else \
                    f" above 0" if lo is not None else ""
                raise SettingsError(f"turntable {what} must be a finite number{span}, got {value!r}")
            return x

        def integer(name: str, lo: int, hi: int) -> int:
            value, what = getattr(self, name), _LABELS.get(name, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise SettingsError(f"turntable {what} must be a whole number in [{lo}, {hi}], got {value!r}")
            return int(value)

        set_ = object.__setattr__
        set_(self, "frames", integer("frames", 1, MAX_FRAMES))
        set_(self, "width", integer("width", 16, MAX_SIDE))
        set_(self, "height", integer("height", 16, MAX_SIDE))
        if self.width * self.height > MAX_PIXELS:
            raise SettingsError(f"turntable size {self.width}x{self.height} is too large "
                                f"(at most {MAX_PIXELS:,} pixels, e.g. 4096x2160)")
        set_(self, "seconds", number("seconds", 1e-3))
        fps = self.frames / self.seconds
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise SettingsError(f"{self.frames} frames in {self.seconds:g} s is {fps:.3g} frames a second; "
                                f"choose frames and seconds for {FPS_RANGE[0]:g}-{FPS_RANGE[1]:g}")
        set_(self, "elevation_deg", number("elevation_deg", -89.0, 89.0))
        set_(self, "start_azimuth_deg", number("start_azimuth_deg"))
        set_(self, "fov_deg", number("fov_deg", 1.0, 179.0))
        if self.distance is not None:
            set_(self, "distance", number("distance", 1e-6))
        if self.target is not None:
            t = tuple(float(v) for v in self.target)
            if len(t) != 3 or not all(math.isfinite(v) for v in t):
                raise SettingsError(f"turntable target must be three finite numbers, got {self.target!r}")
            set_(self, "target", t)
        bg = tuple(float(v) for v in self.background)
        if len(bg) != 3 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in bg):
            raise SettingsError(f"turntable background must be three values in [0, 1], got {self.background!r}")
        set_(self, "background", bg)
        set_(self, "transparent", bool(self.transparent))
        if self.backend not in BACKENDS:
            raise SettingsError(f"turntable backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    @property
    def fps(self) -> float:
        """Frames a second: ``frames / seconds``."""
        return self.frames / self.seconds

    @property
    def azimuths_deg(self) -> list[float]:
        """Each frame's azimuth, degrees: ``start + 360·i/frames``."""
        return [self.start_azimuth_deg + 360.0 * i / self.frames for i in range(self.frames)]

    def replace(self, **changes) -> "TurntableSettings":
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- layout and cameras
def grid_frame_size(n: int, tile: int = 256) -> tuple[int, int]:
    """``(width, height)`` of a frame holding ``n`` square tiles of ``tile`` pixels, ⌈√n⌉ columns (the
    grid :func:`grid_shape` lays out in that frame), the tiles shrunk (to even sides) where the frame
    would pass :data:`MAX_SIDE` or :data:`MAX_PIXELS`; e.g. 2 samples → 512×256, 5 → 768×512."""
    cols = math.ceil(math.sqrt(max(1, n)))
    rows = math.ceil(max(1, n) / cols)
    tile = min(tile, MAX_SIDE // cols, MAX_SIDE // rows, int(math.sqrt(MAX_PIXELS / (cols * rows))))
    tile -= tile % 2
    return cols * tile, rows * tile


def grid_shape(n: int, width: int, height: int) -> tuple[int, int]:
    """``(columns, rows)`` of a grid of ``n`` tiles over ``width``×``height`` pixels whose tiles are
    as large and as square as they can be (the first column count that gives the largest square)."""
    if n <= 0:
        return (0, 0)
    best = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        side = min(width / cols, height / rows)
        if best is None or side > best[0] + 1e-9:
            best = (side, cols, rows)
    return best[1], best[2]


def tile_boxes(n: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Where the ``n`` tiles lie in a ``width``×``height`` frame: ``(x, y, w, h)`` pixels, top-left
    origin, row-major (sample ``k`` is tile ``k``); all tiles the same size, the grid centred (the
    leftover pixels, fewer than a column / row, are background)."""
    cols, rows = grid_shape(n, width, height)
    if n <= 0:
        return []
    tw, th = width // cols, height // rows
    x0, y0 = (width - cols * tw) // 2, (height - rows * th) // 2
    return [(x0 + (i % cols) * tw, y0 + (i // cols) * th, tw, th) for i in range(n)]


def turntable_cameras(settings: TurntableSettings, tile_width: int | None = None,
                      tile_height: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The orbit: world-to-camera ``viewmats`` ``(frames, 4, 4)`` (OpenCV axes) and the pixel
    intrinsics ``K`` ``(3, 3)`` of a ``tile_width``×``tile_height`` tile (default: the whole frame)."""
    w, h = tile_width or settings.width, tile_height or settings.height
    distance = framing.CAMERA_DISTANCE if settings.distance is None else settings.distance
    target = settings.target or (0.0, 0.0, 0.0)
    vm = orbit_viewmats(settings.azimuths_deg, settings.elevation_deg, distance, target)
    return vm, fit_intrinsics(settings.fov_deg, w, h)


def _gaussians(item) -> Gaussians:
    """A :class:`~splatgen.core.generator.base.Sample` or :class:`Gaussians` → its visible splats."""
    g = item if isinstance(item, Gaussians) else item.gaussians
    if g.num_gaussians == 0:
        raise SplatgenError("a sample with no splats cannot be rendered")
    keep = g.opacities >= _MIN_OPACITY
    return g[keep] if not bool(keep.all()) else g


def _as_list(samples) -> list:
    if isinstance(samples, Gaussians) or hasattr(samples, "gaussians"):
        return [samples]
    items = list(samples)
    if not items:
        raise SplatgenError("no samples to render")
    return items


def _check_cancel(cancelled) -> None:
    if cancelled is not None and (cancelled.is_set() if hasattr(cancelled, "is_set") else cancelled()):
        raise Cancelled()


def render_grid(samples, viewmats: torch.Tensor, width: int, height: int, *, fov_deg: float = framing.FOV_DEG,
                background=framing.BACKGROUND, transparent: bool = False, backend: str = "auto",
                cancelled: CancelledFn | None = None) -> np.ndarray:
    """The samples side by side, each in its tile of :func:`tile_boxes`, all from the same cameras.

    Args:
        samples: Samples or :class:`Gaussians` ``(N,)`` (one, or a sequence: tile ``k`` is sample ``k``).
        viewmats: world-to-camera ``(C, 4, 4)`` (or ``(4, 4)``), OpenCV axes; one frame each.
        width, height: the whole frame, pixels.
        fov_deg: field of view across each tile's shorter side, degrees.
        background: RGB in [0, 1]. transparent: keep alpha (straight colour) instead of compositing.
        cancelled: looked at before each sample's render; true raises ``Cancelled``.

    Returns:
        ``(C, height, width, 4 if transparent else 3)`` uint8.
    """
    from .render import render

    items = _as_list(samples)
    viewmats = torch.as_tensor(viewmats, dtype=torch.float32)
    if viewmats.dim() == 2:
        viewmats = viewmats[None]
    c = len(viewmats)
    bg = torch.tensor(background, dtype=torch.float32)
    canvas = np.zeros((c, height, width, 4 if transparent else 3), np.uint8)   # bytes: 4 a pixel at most
    canvas[..., :3] = to_uint8(bg.numpy())
    boxes = tile_boxes(len(items), width, height)
    if min(boxes[0][2], boxes[0][3]) < 8:
        raise SettingsError(f"{len(items)} samples in {width}x{height} pixels make tiles of "
                            f"{boxes[0][2]}x{boxes[0][3]}; choose a larger size or fewer samples")
    K = fit_intrinsics(fov_deg, boxes[0][2], boxes[0][3])
    for item, (x, y, tw, th) in zip(items, boxes):
        _check_cancel(cancelled)
        g = _gaussians(item)
        with torch.no_grad():  # on black: the premultiplied colour
            out = render(g, viewmats.to(g.device), K.to(g.device), tw, th, background=(0.0, 0.0, 0.0),
                         backend=backend)
        tile = compose(out.rgb.float(), out.alpha.float(), bg.to(out.rgb.device), transparent)
        canvas[:, y:y + th, x:x + tw] = to_uint8(tile).cpu().numpy()
        del out, tile
    return canvas


def render_still(samples, viewmat: torch.Tensor, width: int, height: int, *, fov_deg: float = framing.FOV_DEG,
                 background=framing.BACKGROUND, transparent: bool = False, backend: str = "auto") -> np.ndarray:
    """One picture of the samples' grid (:func:`render_grid`) from ``viewmat`` ``(4, 4)`` at any size
    (the screenshot): ``(height, width, 4 if transparent else 3)`` uint8; RGBA holds straight colour
    and the render's alpha (0 where nothing is drawn)."""
    return render_grid(samples, viewmat, width, height, fov_deg=fov_deg, background=background,
                       transparent=transparent, backend=backend)[0]


def batch_frames(settings: TurntableSettings) -> int:
    """How many frames one batch renders: :data:`BATCH_PIXELS` worth, 1 … :data:`MAX_BATCH_FRAMES`."""
    return max(1, min(MAX_BATCH_FRAMES, BATCH_PIXELS // (settings.width * settings.height)))


def iter_turntable(samples, settings: TurntableSettings, progress: ProgressFn | None = None,
                   cancelled: CancelledFn | None = None) -> Iterator[np.ndarray]:
    """The turntable's frames one by one, rendered in batches (:func:`batch_frames`): each
    ``(height, width, 4 if settings.transparent else 3)`` uint8, sample ``k`` in tile ``k``.

    ``progress(done, total)`` is called after each batch (frames done of ``settings.frames``);
    ``cancelled()`` (or a ``threading.Event``) is looked at before each sample of each batch, and
    raises :class:`~splatgen.core.generator.base.Cancelled` when true."""
    items = _as_list(samples)
    viewmats, _ = turntable_cameras(settings)
    step = batch_frames(settings)
    for start in range(0, settings.frames, step):
        frames = render_grid(items, viewmats[start:start + step], settings.width, settings.height,
                             fov_deg=settings.fov_deg, background=settings.background,
                             transparent=settings.transparent, backend=settings.backend, cancelled=cancelled)
        done = min(settings.frames, start + step)
        if progress is not None:
            progress(done, settings.frames)
        yield from frames


def render_turntable(samples, settings: TurntableSettings, progress: ProgressFn | None = None,
                     cancelled: CancelledFn | None = None) -> np.ndarray:
    """All frames of :func:`iter_turntable` at once: ``(frames, height, width, 3|4)`` uint8 (mind the
    memory: a 60-frame 1080p RGB turntable is 370 MB; :func:`save_turntable` streams instead)."""
    return np.stack(list(iter_turntable(samples, settings, progress, cancelled)))


# ---------------------------------------------------------------------- files
def container(path: str | os.PathLike) -> str:
    """The :data:`CONTAINERS` key of ``path``: its suffix, lower case (``""``: a folder of PNG frames);
    an unknown suffix raises :class:`SplatgenError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise SplatgenError(f"{os.fspath(path)}: unsupported turntable type {suffix!r} (use .mp4, .webm, .gif, "
                            f"or a name without an extension for a folder of PNG frames)")
    return suffix


def container_alpha(path: str | os.PathLike) -> bool:
    """Whether the container ``path`` names keeps alpha (WebM, GIF, PNG frames; MP4 does not)."""
    return CONTAINERS[container(path)][1]


def check_turntable_path(path: str | os.PathLike, settings: TurntableSettings) -> str:
    """Fail early, before any rendering, when ``path`` cannot take this turntable: an unknown type,
    odd sizes for MP4 / WebM, a missing folder, a PNG-frame folder that exists and holds files.
    Returns the container (:func:`container`)."""
    path = Path(path)
    kind = container(path)
    if CONTAINERS[kind][2] and (settings.width % 2 or settings.height % 2):
        raise SettingsError(f"{path}: {CONTAINERS[kind][0]} needs an even width and height "
                            f"(4:2:0 chroma), got {settings.width}x{settings.height}")
    if not path.parent.is_dir():
        raise SplatgenError(f"{path}: the folder {path.parent} does not exist")
    if kind == "":
        if path.exists() and not path.is_dir():
            raise SplatgenError(f"{path}: exists and is not a folder (PNG frames go into a folder)")
        if path.is_dir() and any(path.iterdir()):
            raise SplatgenError(f"{path}: the folder for the PNG frames is not empty")
    elif path.is_dir():
        raise SplatgenError(f"{path}: is a folder; give a file name")
    return kind


def _ffmpeg_available() -> bool:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:  # noqa: BLE001 - missing package or binary
        return False


def _write_ffmpeg(tmp: Path, kind: str, frames: Iterator[np.ndarray], settings: TurntableSettings) -> None:
    import imageio_ffmpeg

    alpha = settings.transparent and kind == ".webm"
    if kind == ".mp4":
        codec, pix_out, params = "libx264", "yuv420p", ["-crf", "18", "-preset", "medium", "-movflags", "+faststart"]
    else:
        codec, pix_out = "libvpx-vp9", "yuva420p" if alpha else "yuv420p"
        params = ["-crf", "24", "-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "4"]
        if alpha:
            params += ["-auto-alt-ref", "0"]
    writer = imageio_ffmpeg.write_frames(os.fspath(tmp), (settings.width, settings.height), fps=settings.fps,
                                         codec=codec, pix_fmt_in="rgba" if alpha else "rgb24", pix_fmt_out=pix_out,
                                         quality=None, macro_block_size=1, output_params=params,
                                         ffmpeg_log_level="error")
    writer.send(None)
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame if alpha else frame[..., :3]))
    finally:
        writer.close()


def _write_gif(tmp: Path, frames: Iterator[np.ndarray], settings: TurntableSettings) -> None:
    import imageio.v3 as iio

    video = np.stack(list(frames))
    extra = {"disposal": 2} if video.shape[-1] == 4 else {}   # transparent pixels show no older frame
    iio.imwrite(tmp, video, duration=1000.0 / settings.fps, loop=0, extension=".gif", **extra)


def _write_png_folder(path: Path, frames: Iterator[np.ndarray], settings: TurntableSettings) -> None:
    """``frame_0000.png`` … into a hidden folder beside ``path``, renamed to ``path`` when complete."""
    import imageio.v3 as iio

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.mkdir()
    except OSError as exc:
        raise SplatgenError(f"{path}: cannot write in {path.parent} ({exc.strerror or exc})") from None
    try:
        digits = max(4, len(str(settings.frames - 1)))
        for i, frame in enumerate(frames):
            iio.imwrite(tmp / f"frame_{i:0{digits}d}.png", np.ascontiguousarray(frame), extension=".png")
        if path.is_dir():
            path.rmdir()   # empty (check_turntable_path): the frames take its place
        os.replace(tmp, path)
    except OSError as exc:
        raise SplatgenError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_turntable(path: str | os.PathLike, samples, settings: TurntableSettings | None = None,
                   progress: ProgressFn | None = None, cancelled: CancelledFn | None = None) -> Path:
    """Render the turntable of ``samples`` (one, or a sequence tiled in a grid) and write it to
    ``path`` (container by suffix, :data:`CONTAINERS`), streaming the frames, atomically: an error, a
    Ctrl-C or a cancel (``cancelled``, as in :func:`iter_turntable`, raising ``Cancelled``) leaves no
    file. Returns the path written: ``path``, or beside it a ``.gif`` where MP4 / WebM was asked for
    but imageio-ffmpeg is missing. A transparent request for MP4 is filled with the background
    (:func:`container_alpha` tells callers to say so)."""
    settings = settings or TurntableSettings()
    path = Path(path)
    kind = check_turntable_path(path, settings)
    if CONTAINERS[kind][2] and not _ffmpeg_available():
        path, kind = path.with_suffix(".gif"), ".gif"
    if not CONTAINERS[kind][1] and settings.transparent:
        settings = settings.replace(transparent=False)
    items = _as_list(samples)
    frames = iter_turntable(items, settings, progress, cancelled)
    if kind == "":
        _write_png_folder(path, frames, settings)
        return path
    with atomic_path(path, keep_suffix=True) as tmp:
        if kind == ".gif":
            _write_gif(tmp, frames, settings)
        else:
            _write_ffmpeg(tmp, kind, frames, settings)
    return path


def frames_of(samples_or_count, settings: TurntableSettings) -> str:
    """What a turntable holds, for status lines: ``"60 frames, 1920x1080, 30 fps, 3 tiles"``."""
    n = samples_or_count if isinstance(samples_or_count, int) else len(_as_list(samples_or_count))
    return (f"{settings.frames} frames, {settings.width}x{settings.height}, {settings.fps:.3g} fps"
            f"{f', {n} tiles' if n > 1 else ''}{', transparent' if settings.transparent else ''}")


__all__ = ["TurntableSettings", "CONTAINERS", "grid_shape", "tile_boxes", "turntable_cameras", "render_grid",
           "render_still", "iter_turntable", "render_turntable", "save_turntable", "container", "container_alpha",
           "check_turntable_path", "frames_of"]
