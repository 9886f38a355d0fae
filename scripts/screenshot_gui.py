#!/usr/bin/env python3
"""Take the README's screenshot of the desktop app: docs/screenshot.png (< 300 KB).

Opens the app as ``splatgen-gui`` does (settings in a temporary file, not yours), loads an example
photo, generates samples with the shipped diffusion model, turns the camera a little, and saves
the whole window. Needs a display; on a headless machine:

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_gui.py
    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_gui.py --tiles -o /tmp/tiles.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=ROOT / "assets" / "examples" / "armchair.png")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, nargs=2, default=(1280, 800), metavar=("W", "H"))
    ap.add_argument("--tiles", action="store_true", help="show the tiled view with the variance heat-map")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = ap.parse_args(argv)

    from splatgen.app.main import make_application
    from splatgen.app.main_window import MainWindow
    from splatgen.app.settings import Settings
    from splatgen.app.tasks import set_torch_threads

    app = make_application()
    set_torch_threads()
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(Settings.from_file(Path(tmp) / "settings.ini"), autosave_dir=None)
        window.resize(*args.size)
        window.show()
        window.open_image(str(args.image))
        if not window.wait_idle(120) or window.prepared is None:
            print(f"could not prepare {args.image}: {window.messages[-1:]}", file=sys.stderr)
            return 1
        c = window.controls
        c.steps.setValue(args.steps)
        c.num_samples.setValue(args.samples)
        c.seed.setValue(args.seed)
        t0 = time.perf_counter()
        window.generate()
        if not window.wait_idle(900) or len(window.store) < 1:
            print(f"generation failed: {window.messages[-1:]}", file=sys.stderr)
            return 1
        print(f"generated {len(window.store)} samples in {time.perf_counter() - t0:.1f} s")
        view = window.viewport
        if args.tiles:
            window.acts["tiled"].setChecked(True)
            view = window.tiles
        view.camera.orbit_degrees(-22.0, 6.0)
        view.camera_moved(settle=False)
        deadline = time.time() + 3.0
        while time.time() < deadline:
            app.processEvents()
            time.sleep(0.02)
        for _ in range(3):           # a few frames so the FPS overlay shows a settled figure
            view.update()
            app.processEvents()
            time.sleep(0.05)
        # what the X server shows (the viewport's GL content and its overlay composited by Qt)
        image = window.screen().grabWindow(int(window.winId())).toImage()
        window.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_small_png(image, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB, {image.width()}×{image.height()})")
    return 0


def save_small_png(qimage, path: Path, max_kib: int = 290) -> None:
    """Save as an optimised PNG; quantised to a 256-colour palette when that is needed to stay small."""
    import io

    import numpy as np
    from PIL import Image
    from PyQt6.QtGui import QImage

    img = qimage.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits().asstring(bpl * h), np.uint8).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3)
    pil = Image.fromarray(arr.copy(), "RGB")
    for candidate in (pil, pil.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE),
                      pil.quantize(128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)):
        buf = io.BytesIO()
        candidate.save(buf, "PNG", optimize=True)
        if buf.tell() <= max_kib * 1024:
            break
    path.write_bytes(buf.getvalue())


if __name__ == "__main__":
    sys.exit(main())
