"""``splatgen render``: a still of any splat file from a camera in the on-disk convention.

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
from ..cameras import framing_viewmat, intrinsics_from_fov, load_transforms, scale_intrinsics
from ..errors import SplatgenError
from ..images import to_uint8
from ..devices import pick_device
from ..render import BACKENDS, render
from .common import IMAGE_EXTENSIONS, atomic_write_image, check_output_path, parse_background, positive_int

#: Largest image rendered, pixels.
MAX_PIXELS = 8192 * 8192


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "render",
        help="render a splat file (.ply, .compressed.ply, .spz, .glb, .splat) to a PNG",
        description="Render a splat file from one frame of a transforms.json camera file, or, without "
                    "--camera, from an orbit view that frames the object.",
    )
    p.add_argument("file", type=Path, help="splat file: INRIA 3DGS .ply, PlayCanvas .compressed.ply, Niantic .spz, "
                                         "glTF .glb (KHR_gaussian_splatting) or .splat")
    p.add_argument("--camera", type=Path, help="transforms.json (instant-ngp / nerfstudio convention)")
    p.add_argument("--frame", type=int, default=0, help="frame index in --camera (default 0)")
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("W", "H"),
                   help="output size in pixels (default: the camera's, or 512 512)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: gsplat on CUDA, else the OpenGL renderer, else torch")
    p.add_argument("--background", type=parse_background, default=framing.BACKGROUND,
                   help="R,G,B in [0,1] or 0-255 (default white): what outputs without alpha are composited "
                        "on; in RGBA outputs, the colour of the pixels nothing covers")
    p.add_argument("--no-alpha", action="store_true",
                   help="write RGB composited on --background even to a format with alpha")
    p.add_argument("--azimuth", type=float, default=30.0, help="orbit view azimuth, degrees (no --camera)")
    p.add_argument("--elevation", type=float, default=20.0, help="orbit view elevation, degrees (no --camera)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output image: .png (RGBA, straight colour), or "
                        + ", ".join(e for e in IMAGE_EXTENSIONS if e != ".png"))
    return p


def output_image(premultiplied: torch.Tensor, alpha: torch.Tensor, background, has_alpha: bool) -> torch.Tensor:
    """``(H, W, 3)`` premultiplied colour and ``(H, W, 1)`` alpha → what the file holds, in [0, 1]:
    ``(H, W, 4)`` straight colour + alpha (pixels whose alpha rounds to 0 hold ``background``), or
    ``(H, W, 3)`` composited on ``background`` when the file has no alpha."""
    a = alpha.clamp(0.0, 1.0)
    bg = torch.as_tensor(background, dtype=premultiplied.dtype, device=premultiplied.device)
    if not has_alpha:
        return (premultiplied + (1.0 - a) * bg).clamp(0.0, 1.0)
    covered = a >= 0.5 / 255.0
    straight = torch.where(covered, premultiplied / a.clamp_min(0.5 / 255.0), bg)
    return torch.cat([straight.clamp(0.0, 1.0), a], -1)


def run(args: argparse.Namespace) -> int:
    from ..io import load_splats

    check_output_path(args.output, IMAGE_EXTENSIONS)  # fail before the work, not after it
    if args.size and args.size[0] * args.size[1] > MAX_PIXELS:
        raise SplatgenError(f"--size {args.size[0]}x{args.size[1]} is too large (at most 8192x8192 pixels)")
    gaussians = load_splats(args.file)
    if gaussians.num_gaussians == 0:
        raise SplatgenError(f"{args.file}: holds no splats; nothing to render")
    device = pick_device(args.device)
    if args.backend == "gsplat":
        device = pick_device("cuda")
    gaussians = gaussians.to(device)
    if args.camera is not None:
        cams = load_transforms(args.camera)
        if not 0 <= args.frame < len(cams):
            raise SplatgenError(f"{args.camera}: --frame {args.frame} out of range (0..{len(cams) - 1})")
        viewmat, K = cams.viewmats[args.frame], cams.Ks[args.frame]
        width, height = cams.width, cams.height
        if args.size:
            K = scale_intrinsics(K, args.size[0] / width, args.size[1] / height)
            width, height = args.size
    else:
        width, height = args.size or (512, 512)
        viewmat = framing_viewmat(gaussians.means, azimuth_deg=args.azimuth, elevation_deg=args.elevation)
        K = intrinsics_from_fov(framing.FOV_DEG, width, height)
    if width * height > MAX_PIXELS:
        raise SplatgenError(f"image size {width}x{height} is too large (at most 8192x8192 pixels)")
    with torch.no_grad():  # on black: the premultiplied colour
        out = render(gaussians, viewmat[None], K[None], width, height, background=(0.0, 0.0, 0.0),
                     backend=args.backend)
    has_alpha = IMAGE_EXTENSIONS[args.output.suffix.lower()] and not args.no_alpha
    image = output_image(out.rgb[0], out.alpha[0], args.background, has_alpha)
    atomic_write_image(args.output, to_uint8(image).cpu().numpy())
    print(f"wrote {args.output} ({width}x{height}, {gaussians.num_gaussians} splats)")
    return 0
