"""``splatgen generate PHOTO...``: photos in, one output folder of samples per photo.

Per photo, ``OUT/<photo name>/`` holds ``input.png`` (the prepared 128² RGBA input),
``cameras.json`` (its camera, ``transforms.json`` convention), ``sample_XX.ply`` per sample (or, by
``--format``, any of ``.compressed.ply`` ``.spz`` ``.glb`` ``.splat``, or a mesh ``.mesh.glb`` ``.obj``:
:data:`splatgen.core.export.EXPORT_FORMATS`), and on request ``turntable.mp4`` (sample 0 orbiting)
and ``sheet.png`` (samples × views).
Photos of the same name get distinct folders (``chair``, ``chair-2``, … in the order given).

A photo's folder is assembled under a temporary name (``.<name>.partial-*``) and renamed when
complete, so an error, Ctrl-C or SIGTERM never leaves a partial folder behind. Every folder this
command makes holds a marker file (:data:`MARKER`: who made it, the files it wrote); an existing
``OUT/<name>`` is replaced only when it carries the marker and holds nothing else, and anything
else there is refused with a message before any work. Temporary folders that a killed run left
(marked, their process gone) are swept at the next run. Nothing is created before the inputs
are checked: a missing photo leaves no empty ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

#: The marker file in every folder ``generate`` makes: JSON ``{"made_by", "pid", "host", "files"}``.
MARKER = ".splatgen-output.json"
MADE_BY = "splatgen generate"


def _degrees_or_auto(text: str, check):
    """``auto`` → None (the default), else the degrees ``check`` accepts (its :class:`SettingsError`
    becomes argparse's one-line error, no traceback)."""
    from ..errors import SettingsError

    if text.strip().lower() == "auto":
        return None
    try:
        return check(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def elevation_arg(text: str):
    """``--elevation``: ``auto`` → None (the estimate), else degrees (:func:`~splatgen.core.photo_camera.check_elevation`)."""
    from ..photo_camera import check_elevation

    return _degrees_or_auto(text, check_elevation)


def fov_arg(text: str):
    """``--fov``: ``auto`` → None (the canonical field of view), else degrees (:func:`~splatgen.core.photo_camera.check_fov`)."""
    from ..photo_camera import check_fov

    return _degrees_or_auto(text, check_fov)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate", help="generate 3D Gaussian splats from photos",
        description="Prepare each photo (cut out, centre, scale to the training framing), sample the model, "
                    "and write the samples as splat files with the input and its camera.")
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="image files (PNG, JPEG, WebP, ...)")
    p.add_argument("-n", "--samples", type=int, default=4, help="samples per photo (default 4)")
    p.add_argument("-m", "--model", default=None,
                   help="model folder or shipped model name (default: the diffusion model)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight (model default)")
    p.add_argument("--skip-weight", type=float, default=None, help="weight of the input image's skip features, 0-1")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (model default)")
    p.add_argument("--scheduler", choices=("ddim", "dpm"), default=None)
    p.add_argument("--strength", type=float, default=None,
                   help="fraction of the denoising schedule to run: 1 = from pure noise; below 1 the samples start "
                        "from the teacher regressor's object, noised to that level (model default)")
    p.add_argument("--seed", type=int, default=0, help="sample i uses seed + i (default 0)")
    p.add_argument("--elevation", type=elevation_arg, default=None, metavar="DEG|auto",
                   help="the photo's camera elevation above the horizon in degrees, -60 to 85 (default auto: "
                        "estimated from the prepared input by the shipped estimator, which knows -10 to 40; set a "
                        "steeper photo by hand). It decides which way is up in the result")
    p.add_argument("--fov", type=fov_arg, default=None, metavar="DEG",
                   help="the prepared input's field of view in degrees, 10 to 120 (default: the canonical 40, "
                        "the only one the models were trained at; another value is recorded and the model says "
                        "it assumed 40)")
    p.add_argument("--no-colour-match", dest="colour_match", action="store_false",
                   help="keep the model's own colours (default: each sample's colours are matched to the photo by "
                        "one affine colour transform fitted on its render of the input view)")
    p.add_argument("--resample-occluded", action="store_true",
                   help="also write sample_XX_resampled.ply: the hidden side redrawn, the visible side kept")
    p.add_argument("-o", "--out", type=Path, default=Path("splatgen-out"), help="output folder (default splatgen-out)")
    p.add_argument("--format", default="ply", metavar="FORMATS",
                   help="splat file format, or several comma-separated: ply (INRIA 3DGS), compressed-ply "
                        "(PlayCanvas), spz (Niantic SPZ v4), glb (glTF KHR_gaussian_splatting), splat; meshes: "
                        "glb-mesh (.mesh.glb), obj; both = ply,splat (default ply)")
    p.add_argument("--video", action="store_true", help="write turntable.mp4: every sample a 256² tile of one grid, 60 frames, 2 s (other "
                        "settings: splatgen render OUT/NAME/sample_*.ply --turntable FILE)")
    p.add_argument("--sheet", action="store_true", help="write sheet.png: one row per sample, 6 views")
    p.add_argument("--foreground-ratio", type=float, default=None, help="object size / image size (default: as in training)")
    p.add_argument("--keep-background", action="store_true", help="do not cut the object out (use alpha or the whole image)")
    p.add_argument("--mask", type=Path, default=None, metavar="FILE",
                   help="the object's mask for a single photo: an image the photo's size, white = object "
                        "(replaces the automatic cut-out)")
    p.add_argument("--samples-file", type=Path, default=None, metavar="FILE.safetensors",
                   help="also write the whole sample set (every splat, seeds, settings, per-splat observed / "
                        "spread) for a notebook; with several photos, FILE-<photo>.safetensors each")
    p.add_argument("--runs", type=Path, default=None, metavar="DIR",
                   help="also keep each photo's generation as a run in DIR (photo, input, settings, seeds, samples, "
                        "timings): the folders the app's History lists")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import SplatgenError
    from ..generator import GenerationSettings, load_generator
    from ..image_loading import MIN_SIDE, open_image
    from ..imageprep import DEFAULT_FOREGROUND_RATIO, prepare_image
    from .common import check_output_dir

    args.formats = parse_formats(args.format)
    from ..generator import MAX_SAMPLES

    if not 1 <= args.samples <= MAX_SAMPLES:
        raise SplatgenError(f"--samples must be between 1 and {MAX_SAMPLES}, got {args.samples}")
    ratio = DEFAULT_FOREGROUND_RATIO if args.foreground_ratio is None else args.foreground_ratio
    if not 0.05 <= ratio <= 1.0:
        raise SplatgenError(f"--foreground-ratio must be between 0.05 and 1, got {ratio}")
    for photo in args.photos:  # fail before anything is created or the model loads
        if not photo.exists():
            raise SplatgenError(f"{photo}: no such file")
        if not photo.is_file():
            raise SplatgenError(f"{photo}: not a regular file (a folder, device or pipe); give an image file")
    mask = None
    if args.mask is not None:
        if len(args.photos) != 1:
            raise SplatgenError(f"--mask applies to a single photo, got {len(args.photos)} photos")
        if args.keep_background:
            raise SplatgenError("--mask and --keep-background contradict each other; give one")
        mask = read_mask(args.mask)
    out = check_output_dir(args.out)
    if getattr(args, "samples_file", None) is not None:
        from .common import check_output_file

        check_output_file(args.samples_file)  # before the model loads and the samples are made
    folders = [out / name for name in folder_names(args.photos)]
    for folder in folders:
        check_replaceable(folder)
    failures = 0
    readable = []
    for photo, final in zip(args.photos, folders):  # headers only: a bad photo fails before the model loads
        try:
            with open_image(photo, min_side=MIN_SIDE):
                readable.append((photo, final))
        except SplatgenError as exc:
            if len(args.photos) == 1:
                raise
            print(f"splatgen generate: error: {exc}", flush=True)
            failures += 1
    if not readable:
        raise SplatgenError("none of the photos is a readable image")
    if mask is not None:
        from ..image_loading import _orientation

        with open_image(readable[0][0]) as im:  # the oriented photo's size, from its header
            w, h = im.size[::-1] if _orientation(im) in (5, 6, 7, 8) else im.size
        if mask.shape != (h, w):
            raise SplatgenError(f"{args.mask}: the mask is {mask.shape[1]}×{mask.shape[0]} px but the photo is "
                                f"{w}×{h}; a mask must be the photo's size")
    t0 = time.time()
    gen = load_generator(args.model, args.device)
    settings = GenerationSettings(guidance=args.guidance, skip_weight=args.skip_weight, steps=args.steps,
                                  scheduler=args.scheduler, seed=args.seed, strength=args.strength,
                                  num_samples=args.samples if gen.stochastic else 1,
                                  elevation=getattr(args, "elevation", None), fov=getattr(args, "fov", None),
                                  colour_match=getattr(args, "colour_match", True))
    if gen.stochastic:
        gen.validate(settings)
    print(f"model: {gen.name} on {gen.device} ({time.time() - t0:.1f} s)")
    created = not out.exists()
    try:
        for photo, final in readable:
            try:
                prepared = prepare_image(photo, foreground_ratio=ratio, remove_background=not args.keep_background,
                                         mask=mask)
                folder = _generate_one(gen, prepared, settings, args, final, photo)
                print(f"{photo}: wrote {folder}/ " + ", ".join(sorted(p.name for p in folder.iterdir()
                                                                       if p.name != MARKER)))
            except SplatgenError as exc:
                if len(args.photos) == 1:
                    raise
                print(f"splatgen generate: error: {exc}", flush=True)
                failures += 1
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # made by this run and nothing came of it
    print(f"done in {time.time() - t0:.1f} s")
    return 1 if failures else 0


def describe_camera(camera: dict) -> str:
    """``sample.info["camera"]`` in words: ``"photo camera: elevation 23.4° (estimated, expected error
    ±4.1°), field of view 40°"``."""
    source = camera.get("elevation_source")
    how = {"set": "set", "default": "default: no estimator shipped"}.get(source, "estimated")
    if source == "estimate" and "estimate_spread_deg" in camera:
        how += f", expected error ±{camera['estimate_spread_deg']:.1f}°"
    return (f"photo camera: elevation {camera.get('elevation_deg', float('nan')):.1f}° ({how}), "
            f"field of view {camera.get('fov_deg', float('nan')):g}°")


def read_mask(path: Path):
    """A mask image (any format the photo loader reads; white = object) → ``(H, W)`` uint8: the mean of
    its colour channels, times its alpha where it has one."""
    import numpy as np

    from ..errors import SplatgenError
    from ..image_loading import load_image

    if not path.is_file():
        raise SplatgenError(f"{path}: no such mask file")
    px = load_image(path, name=str(path)).pixels.astype(np.float32)
    grey = px[:, :, :3].mean(2) * (px[:, :, 3] / 255.0 if px.shape[2] == 4 else 1.0)
    return np.clip(grey + 0.5, 0, 255).astype(np.uint8)


def parse_formats(text: str) -> list[str]:
    """``--format`` → :data:`~splatgen.core.export.EXPORT_FORMATS` names, in order, each once
    (``both`` is ``ply,splat``); :class:`SplatgenError` for an unknown name."""
    from ..errors import SplatgenError
    from ..export import EXPORT_FORMATS

    names: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        for name in ("ply", "splat") if part == "both" else (part,):
            if name not in EXPORT_FORMATS:
                raise SplatgenError(f"--format {part or text!r}: not one of {', '.join(EXPORT_FORMATS)} (or both)")
            if name not in names:
                names.append(name)
    return names


#: Longest output folder name, in UTF-8 bytes (file systems allow 255; the temporary name adds ~20).
MAX_NAME_BYTES = 120


def folder_names(photos: list[Path]) -> list[str]:
    """One output folder name per photo: its file name's stem, made safe (at most
    :data:`MAX_NAME_BYTES`); a name taken by an earlier photo of the list (case-insensitively) gets
    ``-2``, ``-3``, … ."""
    taken: set[str] = set()
    names = []
    for photo in photos:
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in photo.stem).strip("._") or "photo"
        while len(base.encode()) > MAX_NAME_BYTES:  # room for the temporary prefix and suffix too
            base = base[:-1]
        name, k = base, 1
        while name.casefold() in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name.casefold())
        names.append(name)
    return names


# ---------------------------------------------------------------------- our folders and only ours
def _read_marker(folder: Path) -> dict | None:
    """The marker of a folder this command made, or None (not a real folder, no marker, unreadable)."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("made_by") == MADE_BY else None


def _write_marker(folder: Path, files: list[str] | None = None) -> None:
    from ..atomic import atomic_write

    marker = {"made_by": MADE_BY, "pid": os.getpid(), "host": socket.gethostname(), "files": files}
    atomic_write(folder / MARKER, (json.dumps(marker) + "\n").encode())


def _foreign_entries(folder: Path, marker: dict) -> list[str]:
    """Entries of our ``folder`` that its marker does not list (what the user put there)."""
    ours = set(marker.get("files") or []) | {MARKER}
    return sorted(p.name for p in folder.iterdir() if p.name not in ours)


def check_replaceable(final: Path) -> None:
    """Refuse (:class:`SplatgenError`) when ``final`` exists and is not a folder this command made and
    left as it made it; such a path is never moved or deleted."""
    from ..errors import SplatgenError

    if not (final.exists() or final.is_symlink()):
        return
    marker = _read_marker(final)
    if marker is None:
        raise SplatgenError(f"{final}: already exists and was not made by splatgen generate; it is left alone: "
                            "move it away or choose another --out")
    foreign = _foreign_entries(final, marker)
    if foreign:
        raise SplatgenError(f"{final}: holds files splatgen did not write ({', '.join(foreign[:3])}"
                            f"{', ...' if len(foreign) > 3 else ''}); they are left alone: move them or the "
                            "folder away, or choose another --out")


def _process_gone(marker: dict) -> bool:
    """Whether the process that wrote ``marker`` has ended (only knowable on this host)."""
    if marker.get("host") != socket.gethostname() or not isinstance(marker.get("pid"), int):
        return False
    try:
        os.kill(marker["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:  # someone else's process: alive
        return False
    return False


def sweep_stale(out: Path) -> list[Path]:
    """Remove temporary folders (``.<name>.partial-*``, ``.<name>.old-*``) in ``out`` that this command
    made in a run whose process has ended (killed before its cleanup ran); returns them."""
    swept = []
    for entry in out.iterdir():
        if not entry.name.startswith(".") or not (".partial-" in entry.name or ".old-" in entry.name):
            continue
        marker = _read_marker(entry)
        if marker is not None and _process_gone(marker):
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(entry)
    return swept


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=True)


def _generate_one(gen, prepared, settings, args, final: Path, photo: Path | None = None) -> Path:
    from ..atomic import atomic_write
    from ..errors import SplatgenError
    from ..export import (EXPORT_FORMATS, TurntableSettings, cameras_json, contact_sheet, save_sample, save_turntable,
                          write_image)
    from ..turntable import grid_frame_size
    from .common import make_output_dir

    make_output_dir(final.parent)
    sweep_stale(final.parent)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    except OSError as exc:
        raise SplatgenError(f"{final}: cannot write in {final.parent} ({exc.strerror or exc})") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes 0700; the result is an ordinary folder
    try:
        _write_marker(work)  # a killed run's folder is recognisably ours, and stale once we are gone
        write_image(work / "input.png", prepared.rgba)
        with _progress_bar(not args.no_progress) as bar:
            task = bar.add_task(f"{final.name}: sampling", total=1)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            t_gen = time.time()
            samples = gen.generate(prepared.image, settings, progress=progress, cancel=threading.Event())
            print(f"{final.name}: {describe_camera(samples[0].info.get('camera') or {})}", flush=True)
            for notice in samples[0].info.get("notices", []):
                print(f"{final.name}: note: {notice}", flush=True)
            if getattr(args, "runs", None) is not None:
                from ..runs import record_run

                record_run(args.runs, name=final.name, generator=args.model or "diffusion", settings=settings,
                           samples=samples, photo=photo, prepared=prepared,
                           timings={"generate_s": round(time.time() - t_gen, 3)})
            formats = getattr(args, "formats", None) or parse_formats(args.format)
            sizes = {s.gaussians.num_gaussians for s in samples}
            if len(samples) > 1 and len(sizes) == 1:  # how far the samples disagree, per splat slot
                from ..provenance import spread as sample_spread

                spread = sample_spread([s.gaussians for s in samples])
            else:
                spread = None
            for i, sample in enumerate(samples):
                for fmt in formats:
                    save_sample(work / f"sample_{i:02d}{EXPORT_FORMATS[fmt][0]}", sample, format=fmt, spread=spread)
            if getattr(args, "samples_file", None) is not None and len(sizes) != 1:
                print(f"{final.name}: no --samples-file: the samples have different splat counts", flush=True)
            elif getattr(args, "samples_file", None) is not None:
                from ..sample_sets import save_sample_set

                target = args.samples_file
                if len(args.photos) > 1:
                    target = target.with_name(f"{target.stem}-{final.name}{target.suffix or '.safetensors'}")
                save_sample_set(target, samples, name=final.name)
            if args.resample_occluded and gen.stochastic:
                task2 = bar.add_task(f"{final.name}: resampling", total=len(samples))
                for i, sample in enumerate(samples):
                    again = gen.resample(prepared.image, sample, "occluded", seed=sample.seed + 10_000)
                    for fmt in formats:
                        save_sample(work / f"sample_{i:02d}_resampled{EXPORT_FORMATS[fmt][0]}", again, format=fmt)
                    bar.advance(task2)
        atomic_write(work / "cameras.json", (json.dumps(cameras_json(samples[0]), indent=2) + "\n").encode())
        if args.video:
            width, height = grid_frame_size(len(samples))   # every sample a 256² tile (smaller past 4096 px)
            save_turntable(work / "turntable.mp4", samples, TurntableSettings(width=width, height=height))
        if args.sheet:
            write_image(work / "sheet.png", contact_sheet(samples))
        _write_marker(work, sorted(p.name for p in work.iterdir() if p.name != MARKER))
        if final.exists() or final.is_symlink():  # replace an earlier run only now that the new one is complete
            check_replaceable(final)  # again: it may have changed while we sampled
            old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
            final.rename(old)
            work.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                work.rename(final)
            except OSError as exc:  # appeared meanwhile: not ours to replace
                raise SplatgenError(f"{final}: cannot be written ({exc.strerror or exc})") from None
        return final
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


