"""``splatgen render``: a still of splat files from a camera in the on-disk convention, or a turntable.

Without ``--camera`` the still is an orbit view (``--azimuth``, ``--elevation``) at the distance that
frames every file given, the field of view spanning the image's shorter side; several files are a
grid of tiles under that one camera (:func:`splatgen.core.turntable.render_still`). ``--turntable
VIDEO`` orbits the same view once around (:class:`~splatgen.core.turntable.TurntableSettings` from
``--frames``, ``--seconds``, ``--elevation``, ``--size``, ``--background``, ``--transparent``; frame 0
is the still's view), every tile on the same camera path.

An output with alpha (PNG, WebP) holds **straight** colour: each pixel's colour is the splats'
colour un-premultiplied by its coverage, never mixed with the background, so a viewer that
composites it (as every viewer does) shows no background halo at the edges; pixels nothing covers
hold the background colour at alpha 0. An output without alpha (JPEG, BMP, or ``--no-alpha``) is
composited on ``--background`` once, here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .. import framing
from ..cameras import framing_orbit, load_transforms, orbit_viewmat, scale_intrinsics
from ..errors import SplatgenError
from ..images import compose, to_uint8
from ..devices import pick_device
from ..render import BACKENDS, render
from ..turntable import (TurntableSettings, check_turntable_path, container_alpha, frames_of, render_still,
                         save_turntable)
from .common import IMAGE_EXTENSIONS, atomic_write_image, check_output_path, parse_background, positive_int

#: Largest image rendered, pixels.
MAX_PIXELS = 8192 * 8192


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "render",
        help="render splat files (.ply, .compressed.ply, .spz, .glb, .splat) to a PNG, or to a turntable video",
        description="Render a splat file from one frame of a transforms.json camera file, or, without "
                    "--camera, from an orbit view that frames the object; --turntable orbits it into a video. "
                    "Several files are drawn side by side, a grid of tiles under one camera.",
    )
    p.add_argument("files", type=Path, nargs="+", metavar="file",
                   help="splat file: INRIA 3DGS .ply, PlayCanvas .compressed.ply, Niantic .spz, "
                        "glTF .glb (KHR_gaussian_splatting) or .splat; several: a grid, tile k is file k")
    p.add_argument("--camera", type=Path, help="transforms.json (instant-ngp / nerfstudio convention); one file only")
    p.add_argument("--frame", type=int, default=0, help="frame index in --camera (default 0)")
    p.add_argument("--size", nargs="+", metavar="SIZE", type=str,
                   help="output size in pixels, 'W H' or 'WxH' (default: the camera's, or 512 512); a "
                        "turntable's whole frame, which the tiles share")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: gsplat on CUDA, else the OpenGL renderer, else torch")
    p.add_argument("--background", type=parse_background, default=framing.BACKGROUND,
                   help="R,G,B in [0,1] or 0-255 (default white): what outputs without alpha are composited "
                        "on; in RGBA outputs, the colour of the pixels nothing covers")
    p.add_argument("--no-alpha", action="store_true",
                   help="write RGB composited on --background even to a format with alpha")
    p.add_argument("--transparent", action="store_true",
                   help="keep alpha: a PNG / WebP still always does (unless --no-alpha); a turntable does in "
                        ".webm, .gif and PNG frames (MP4 has no alpha: filled with --background)")
    p.add_argument("--azimuth", type=float, default=30.0,
                   help="orbit view azimuth, degrees (no --camera); a turntable's first frame")
    p.add_argument("--elevation", type=float, default=20.0,
                   help="orbit view elevation, degrees (no --camera); a turntable's whole orbit")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-o", "--output", type=Path,
                   help="output image: .png (RGBA, straight colour), or "
                        + ", ".join(e for e in IMAGE_EXTENSIONS if e != ".png"))
    t = p.add_argument_group("turntable", "an orbit around the object(s), every tile on the same camera path")
    t.add_argument("--turntable", type=Path, metavar="VIDEO",
                   help="write a turntable: .mp4 (H.264), .webm (VP9, alpha with --transparent), .gif, or a "
                        "name without an extension: a folder of PNG frames")
    t.add_argument("--frames", type=positive_int, default=TurntableSettings.frames,
                   help=f"frames in one turn (default {TurntableSettings.frames})")
    t.add_argument("--seconds", type=float, default=TurntableSettings.seconds,
                   help=f"how long one turn lasts; the frame rate is frames / seconds (default "
                        f"{TurntableSettings.seconds:g})")
    return p


def parse_size(values: list[str] | None) -> tuple[int, int] | None:
    """``--size``: ``["W", "H"]`` or ``["WxH"]`` → ``(W, H)``, each a positive integer (None: not given)."""
    if values is None:
        return None
    parts = values[0].lower().split("x") if len(values) == 1 else values
    if len(parts) != 2:
        raise SplatgenError(f"--size takes W H or WxH, got {' '.join(values)!r}")
    try:
        return positive_int(parts[0]), positive_int(parts[1])
    except argparse.ArgumentTypeError as exc:
        raise SplatgenError(f"--size: {exc}") from None


def output_image(premultiplied: torch.Tensor, alpha: torch.Tensor, background, has_alpha: bool) -> torch.Tensor:
    """``(H, W, 3)`` premultiplied colour and ``(H, W, 1)`` alpha → what the file holds, in [0, 1]:
    ``(H, W, 4)`` straight colour + alpha, or ``(H, W, 3)`` composited on ``background``
    (:func:`splatgen.core.images.compose`)."""
    return compose(premultiplied, alpha, background, has_alpha)


def run(args: argparse.Namespace) -> int:
    from ..io import load_splats

    if args.output is None and args.turntable is None:
        raise SplatgenError("give -o IMAGE for a still, --turntable VIDEO for a turntable, or both")
    size = parse_size(args.size)
    if size and size[0] * size[1] > MAX_PIXELS:
        raise SplatgenError(f"--size {size[0]}x{size[1]} is too large (at most 8192x8192 pixels)")
    if args.camera is not None and len(args.files) > 1:
        raise SplatgenError("--camera renders one file; give one, or leave --camera out for a grid of them")
    if args.camera is not None and args.turntable is not None:
        raise SplatgenError("--turntable orbits the object and takes no --camera; leave one of them out")
    if args.output is not None:  # fail before the work, not after it
        check_output_path(args.output, IMAGE_EXTENSIONS)
        if args.transparent and not (IMAGE_EXTENSIONS[args.output.suffix.lower()] and not args.no_alpha):
            raise SplatgenError(f"{args.output}: --transparent needs a format with alpha (.png, .webp) and no "
                                f"--no-alpha")
    settings = None
    if args.turntable is not None:
        width, height = size or (512, 512)
        settings = TurntableSettings(frames=args.frames, seconds=args.seconds, elevation_deg=args.elevation,
                                     width=width, height=height, background=args.background,
                                     transparent=args.transparent, start_azimuth_deg=args.azimuth,
                                     backend=args.backend)
        check_turntable_path(args.turntable, settings)
    splats = []
    for path in args.files:
        g = load_splats(path)
        if g.num_gaussians == 0:
            raise SplatgenError(f"{path}: holds no splats; nothing to render")
        splats.append(g)
    device = pick_device(args.device)
    if args.backend == "gsplat":
        device = pick_device("cuda")
    splats = [g.to(device) for g in splats]
    what = f"{sum(g.num_gaussians for g in splats)} splats" + (f", {len(splats)} files" if len(splats) > 1 else "")
    if args.output is not None:
        height, width = write_still(args, splats, size).shape[:2]
        print(f"wrote {args.output} ({width}x{height}, {what})")
    if settings is not None:
        write_turntable(args, splats, settings, what)
    return 0


def write_still(args: argparse.Namespace, splats: list, size: tuple[int, int] | None):
    """``-o``: one picture from ``--camera``'s frame, or from the orbit view that frames them all (a
    grid of tiles for several files). Returns the image written, ``(H, W, 3|4)`` uint8."""
    has_alpha = IMAGE_EXTENSIONS[args.output.suffix.lower()] and not args.no_alpha
    if args.camera is not None:
        gaussians = splats[0]
        cams = load_transforms(args.camera)
        if not 0 <= args.frame < len(cams):
            raise SplatgenError(f"{args.camera}: --frame {args.frame} out of range (0..{len(cams) - 1})")
        viewmat, K = cams.viewmats[args.frame], cams.Ks[args.frame]
        width, height = cams.width, cams.height
        if size:
            K = scale_intrinsics(K, size[0] / width, size[1] / height)
            width, height = size
        if width * height > MAX_PIXELS:
            raise SplatgenError(f"image size {width}x{height} is too large (at most 8192x8192 pixels)")
        with torch.no_grad():  # on black: the premultiplied colour
            out = render(gaussians, viewmat[None], K[None], width, height, background=(0.0, 0.0, 0.0),
                         backend=args.backend)
        image = to_uint8(output_image(out.rgb[0], out.alpha[0], args.background, has_alpha)).cpu().numpy()
    else:
        width, height = size or (512, 512)
        center, distance = framing_orbit(torch.cat([g.means.reshape(-1, 3) for g in splats]))
        viewmat = orbit_viewmat(args.azimuth, args.elevation, distance, center)
        image = render_still(splats, viewmat, width, height, background=args.background, transparent=has_alpha,
                             backend=args.backend)
    atomic_write_image(args.output, image)
    return image


def write_turntable(args: argparse.Namespace, splats: list, settings: TurntableSettings, what: str) -> None:
    """``--turntable``: the orbit around the object(s), all tiles on one camera path; a progress line
    on a terminal."""
    import sys

    center, distance = framing_orbit(torch.cat([g.means.reshape(-1, 3) for g in splats]))
    settings = settings.replace(target=tuple(center), distance=distance)
    if settings.transparent and not container_alpha(args.turntable):
        settings = settings.replace(transparent=False)
        print(f"splatgen: warning: {args.turntable.suffix} has no alpha; --transparent ignored, the frames are "
              f"filled with --background (use .webm, .gif or a folder of PNG frames for alpha)", file=sys.stderr)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\rrendering the turntable: frame {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    written = save_turntable(args.turntable, splats, settings, progress=progress)
    note = "" if written == args.turntable else " (no ffmpeg here: written as GIF)"
    print(f"wrote {written} ({frames_of(len(splats), settings)}; {what}){note}")
