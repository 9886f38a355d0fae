"""``splatgen render``: a still of any splat file from a camera in the on-disk convention."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .. import framing
from ..cameras import framing_viewmat, intrinsics_from_fov, load_transforms, scale_intrinsics
from ..errors import SplatgenError
from ..images import to_uint8
from ..render import BACKENDS, render
from .common import IMAGE_EXTENSIONS, atomic_write_image, check_output_path, parse_background, positive_int

#: Largest image rendered, pixels.
MAX_PIXELS = 8192 * 8192


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "render",
        help="render a splat file (.ply/.splat) to a PNG",
        description="Render a splat file from one frame of a transforms.json camera file, or, without "
                    "--camera, from an orbit view that frames the object.",
    )
    p.add_argument("file", type=Path, help="splat file: INRIA 3DGS .ply or .splat")
    p.add_argument("--camera", type=Path, help="transforms.json (instant-ngp / nerfstudio convention)")
    p.add_argument("--frame", type=int, default=0, help="frame index in --camera (default 0)")
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("W", "H"),
                   help="output size in pixels (default: the camera's, or 512 512)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: gsplat on CUDA, else the OpenGL renderer, else torch")
    p.add_argument("--background", type=parse_background, default=framing.BACKGROUND,
                   help="R,G,B in [0,1] or 0-255 (default white)")
    p.add_argument("--azimuth", type=float, default=30.0, help="orbit view azimuth, degrees (no --camera)")
    p.add_argument("--elevation", type=float, default=20.0, help="orbit view elevation, degrees (no --camera)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output image: .png (RGBA, alpha kept), or "
                        + ", ".join(e for e in IMAGE_EXTENSIONS if e != ".png"))
    return p


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SplatgenError("--device cuda was asked for, but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def run(args: argparse.Namespace) -> int:
    from ..io import load_splats

    check_output_path(args.output, IMAGE_EXTENSIONS)  # fail before the work, not after it
    if args.size and args.size[0] * args.size[1] > MAX_PIXELS:
        raise SplatgenError(f"--size {args.size[0]}x{args.size[1]} is too large (at most 8192x8192 pixels)")
    gaussians = load_splats(args.file)
    if gaussians.num_gaussians == 0:
        raise SplatgenError(f"{args.file}: holds no splats; nothing to render")
    device = resolve_device(args.device)
    if args.backend == "gsplat":
        device = resolve_device("cuda")
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
    with torch.no_grad():
        out = render(gaussians, viewmat[None], K[None], width, height,
                     background=args.background, backend=args.backend)
    rgba = to_uint8(torch.cat([out.rgb[0], out.alpha[0]], -1)).cpu().numpy()
    atomic_write_image(args.output, rgba)
    print(f"wrote {args.output} ({width}x{height}, {gaussians.num_gaussians} splats)")
    return 0
