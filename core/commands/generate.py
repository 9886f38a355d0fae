"""``splatgen generate PHOTO...``: photos in, one output folder of samples per photo.

Per photo, ``OUT/<photo name>/`` holds ``input.png`` (the prepared 128² RGBA input),
``cameras.json`` (its camera, ``transforms.json`` convention), ``sample_XX.ply`` (and/or ``.splat``)
per sample, and on request ``turntable.mp4`` (sample 0 orbiting) and ``sheet.png`` (samples × views).
A photo's folder is assembled under a temporary name and renamed when complete, so an error or
Ctrl-C never leaves a partial folder behind (an existing folder of that name is replaced only then).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path




def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate", help="generate 3D Gaussian splats from photos",
        description="Prepare each photo (cut out, centre, scale to the training framing), sample the model, "
                    "and write the samples as splat files with the input and its camera.")
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="image files (PNG, JPEG, WebP, ...)")
    p.add_argument("-n", "--samples", type=int, default=4, help="samples per photo (default 4)")
    p.add_argument("--model", default=None, help="model folder or shipped model name (default: the diffusion model)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight (model default)")
    p.add_argument("--skip-weight", type=float, default=None, help="weight of the input image's skip features, 0-1")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (model default)")
    p.add_argument("--scheduler", choices=("ddim", "dpm"), default=None)
    p.add_argument("--strength", type=float, default=None,
                   help="fraction of the denoising schedule to run: 1 = from pure noise; below 1 the samples start "
                        "from the teacher regressor's object, noised to that level (model default)")
    p.add_argument("--seed", type=int, default=0, help="sample i uses seed + i (default 0)")
    p.add_argument("--resample-occluded", action="store_true",
                   help="also write sample_XX_resampled.ply: the hidden side redrawn, the visible side kept")
    p.add_argument("--out", type=Path, default=Path("splatgen-out"), help="output folder (default splatgen-out)")
    p.add_argument("--format", choices=("ply", "splat", "both"), default="ply", help="splat file format (default ply)")
    p.add_argument("--video", action="store_true", help="write turntable.mp4 of sample 0 (60 frames, 256²)")
    p.add_argument("--sheet", action="store_true", help="write sheet.png: one row per sample, 6 views")
    p.add_argument("--foreground-ratio", type=float, default=None, help="object size / image size (default: as in training)")
    p.add_argument("--keep-background", action="store_true", help="do not cut the object out (use alpha or the whole image)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import SplatgenError
    from ..generator import GenerationSettings, load_generator
    from ..imageprep import DEFAULT_FOREGROUND_RATIO, prepare_image

    if not 1 <= args.samples <= 64:
        raise SplatgenError(f"--samples must be between 1 and 64, got {args.samples}")
    ratio = DEFAULT_FOREGROUND_RATIO if args.foreground_ratio is None else args.foreground_ratio
    if not 0.05 <= ratio <= 1.0:
        raise SplatgenError(f"--foreground-ratio must be between 0.05 and 1, got {ratio}")
    out = _check_out_dir(args.out)
    for photo in args.photos:  # fail before the model loads
        if not photo.is_file():
            raise SplatgenError(f"{photo}: no such file")
    t0 = time.time()
    gen = load_generator(args.model, args.device)
    settings = GenerationSettings(guidance=args.guidance, skip_weight=args.skip_weight, steps=args.steps,
                                  scheduler=args.scheduler, seed=args.seed, strength=args.strength,
                                  num_samples=args.samples if gen.stochastic else 1)
    if gen.stochastic:
        gen.validate(settings)
    print(f"model: {gen.name} on {gen.device} ({time.time() - t0:.1f} s)")
    failures = 0
    for photo in args.photos:
        try:
            prepared = prepare_image(photo, foreground_ratio=ratio, remove_background=not args.keep_background)
            folder = _generate_one(gen, prepared, settings, args, out / _folder_name(photo))
            print(f"{photo}: wrote {folder}/ " + ", ".join(sorted(p.name for p in folder.iterdir())))
        except SplatgenError as exc:
            if len(args.photos) == 1:
                raise
            print(f"splatgen generate: error: {exc}", flush=True)
            failures += 1
    print(f"done in {time.time() - t0:.1f} s")
    return 1 if failures else 0


def _check_out_dir(out: Path) -> Path:
    import os

    from ..errors import SplatgenError

    if out.exists() and not out.is_dir():
        raise SplatgenError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplatgenError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise SplatgenError(f"{out}: the output folder is not writable")
    return out


def _folder_name(photo: Path) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in photo.stem).strip("._")
    return name or "photo"


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=True)


def _generate_one(gen, prepared, settings, args, final: Path) -> Path:
    from ..atomic import atomic_write
    from ..export import cameras_json, contact_sheet, save_sample, save_turntable, write_image

    import os

    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes 0700; the result is an ordinary folder
    try:
        write_image(work / "input.png", prepared.rgba)
        with _progress_bar(not args.no_progress) as bar:
            task = bar.add_task(f"{final.name}: sampling", total=1)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            samples = gen.generate(prepared.image, settings, progress=progress, cancel=threading.Event())
            exts = {"ply": [".ply"], "splat": [".splat"], "both": [".ply", ".splat"]}[args.format]
            for i, sample in enumerate(samples):
                for ext in exts:
                    save_sample(work / f"sample_{i:02d}{ext}", sample)
            if args.resample_occluded and gen.stochastic:
                task2 = bar.add_task(f"{final.name}: resampling", total=len(samples))
                for i, sample in enumerate(samples):
                    again = gen.resample(prepared.image, sample, "occluded", seed=sample.seed + 10_000)
                    for ext in exts:
                        save_sample(work / f"sample_{i:02d}_resampled{ext}", again)
                    bar.advance(task2)
        atomic_write(work / "cameras.json", (json.dumps(cameras_json(samples[0]), indent=2) + "\n").encode())
        if args.video:
            save_turntable(work / "turntable.mp4", samples[0])
        if args.sheet:
            write_image(work / "sheet.png", contact_sheet(samples))
        if final.exists():  # replace an earlier run only now that the new one is complete
            old = final.with_name(f".{final.name}.old-{int(time.time())}")
            final.rename(old)
            work.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            work.rename(final)
        return final
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


