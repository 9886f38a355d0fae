"""``splatgen-gui [IMAGE] [--generate] [--demo]`` (and ``python main.py``): start the desktop app.

Sets up logging (a rotating file in the user's cache folder), an OpenGL 4.1 core default surface
(the splat renderer needs 3.3; 4.0 adds occlusion culling), the ``QApplication``, the hook that turns
uncaught exceptions into an error dialog, torch's CPU threads (one core left to the UI), and the
main window; ``IMAGE`` is opened at once and ``--generate`` starts generating it as soon as it is
prepared. ``--demo`` starts in demo mode (:mod:`splatgen.app.demo`), ``--camera-source`` picks the
camera of *Take photo* (a device index or a video file), ``--runs`` the run history's folder.
"""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="splatgen-gui", description="splatgen desktop app: one photo in, many 3D "
                                "Gaussian-splat completions out, orbitable live.")
    p.add_argument("image", nargs="?", help="an image to open (PNG, JPEG, WebP, …)")
    p.add_argument("--generate", action="store_true", help="start generating IMAGE as soon as it is prepared")
    p.add_argument("--settings", metavar="FILE", help="keep settings in this INI file instead of the user's")
    p.add_argument("--renderer", choices=("auto", "gl", "gsplat"), default="auto",
                   help="viewport renderer: gsplat on CUDA, else OpenGL (default: auto)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the generator runs (default: CUDA when there is one)")
    p.add_argument("--demo", action="store_true",
                   help="start in demo mode: full screen, unattended, an attract loop, visitors forgotten (Esc leaves)")
    p.add_argument("--camera-source", metavar="INDEX|FILE", default=None,
                   help="the camera for Take photo: a device index (default 0) or a video file")
    p.add_argument("--runs", metavar="DIR", default=None,
                   help="keep the run history in DIR (default: the user's data folder, splatgen/runs)")
    return p


def camera_source(value: str | None) -> int | str:
    """``--camera-source``: digits are a device index, anything else a video file (default 0)."""
    if value is None or value == "":
        return 0
    return int(value) if value.strip().isdigit() else value


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return bool(platform and not platform.startswith(("xcb", "wayland"))) or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def configure_opengl() -> None:
    """The default surface format for every ``QOpenGLWidget``: OpenGL 4.1 core, no depth buffer needed."""
    from PyQt6.QtGui import QSurfaceFormat

    fmt = QSurfaceFormat()
    fmt.setRenderableType(QSurfaceFormat.RenderableType.OpenGL)
    fmt.setVersion(4, 1)
    fmt.setProfile(QSurfaceFormat.OpenGLContextProfile.CoreProfile)
    fmt.setDepthBufferSize(0)
    fmt.setStencilBufferSize(8)
    QSurfaceFormat.setDefaultFormat(fmt)


def make_application(argv: list[str] | None = None):
    """The ``QApplication`` (created once; OpenGL format set before it)."""
    from PyQt6.QtWidgets import QApplication

    from .settings import APPLICATION, ORGANIZATION

    app = QApplication.instance()
    if app is None:
        configure_opengl()
        app = QApplication(argv or [sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("splatgen")
    app.setDesktopFileName("splatgen-gui")
    return app


def _quit_on_ctrl_c(app, window) -> None:
    """Ctrl+C in the terminal closes the window (saving settings) instead of printing a traceback.
    Python sees signals only while it runs, so a timer lets it run every 200 ms."""
    import signal

    from PyQt6.QtCore import QTimer

    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    timer = QTimer(app, interval=200)
    timer.timeout.connect(lambda: None)
    timer.start()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not _has_display():
        print("splatgen-gui: no display found (DISPLAY / WAYLAND_DISPLAY unset). Run it on a desktop, under "
              "xvfb-run, or use the command line: splatgen --help", file=sys.stderr)
        return 2
    from .errors import install_excepthook, setup_logging

    setup_logging()
    app = make_application()
    window = None
    install_excepthook(lambda: window)

    from .main_window import MainWindow
    from .settings import Settings
    from .tasks import set_torch_threads

    set_torch_threads()
    settings = Settings.from_file(args.settings) if args.settings else Settings()
    window = MainWindow(settings, backend=args.renderer, device=args.device,
                        autosave_dir=args.runs if args.runs else "")
    window.camera_source = camera_source(args.camera_source)
    window.show()
    _quit_on_ctrl_c(app, window)
    if args.demo:
        window.start_demo()
    if args.image and not args.generate:
        window.open_path(args.image)  # a photo, or a splat file to look at
    elif args.image:
        window.open_image(args.image, generate=True)
    elif args.generate:
        window.status("--generate needs an IMAGE: splatgen-gui photo.png --generate", error=True)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
