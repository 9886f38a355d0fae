"""Getting samples out of the window: splat files, turntable videos, contact sheets, screenshots, and
the browser viewer.

:class:`Exports` asks for a file name (remembering the folder), then runs the export as a job on the
window's light worker (``window.io``; bodies in :mod:`splatgen.app.tasks`) and reports the outcome
in the status bar. Turntables and screenshots at any size have dialogs of their own
(:mod:`.render_export`) that show the job's progress and cancel it (job kind ``"render"``,
:meth:`Exports.cancel_render`). Nothing here renders or writes a file itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtCore import QUrl
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import QFileDialog

from . import tasks
from .samples import SampleEntry
from .worker import Job

log = logging.getLogger("splatgen.app")


def splat_filters(first: str = ".ply") -> str:
    """The save dialog's file types: one per export format (:data:`splatgen.core.export.EXPORT_FORMATS`),
    the one whose suffix is ``first`` first."""
    from splatgen.core.export import EXPORT_FORMATS
    from splatgen.core.io import SPLAT_FORMATS

    mesh_labels = {"glb-mesh": "Mesh, glTF binary", "obj": "Mesh, Wavefront OBJ"}
    items = [(suffix, f"{SPLAT_FORMATS[name].label if name in SPLAT_FORMATS else mesh_labels.get(name, name)} (*{suffix})")
             for name, (suffix, _) in EXPORT_FORMATS.items()]
    items.sort(key=lambda item: item[0] != first.lower())
    return ";;".join(text for _, text in items)


class Exports:
    """The export commands of ``window`` (a :class:`~.main_window.MainWindow`).

    ``browser``: the running browser viewer (:class:`~splatgen.core.viewer.ViewerServer`), once
    "Show in browser" started it; it follows the current sample (:meth:`follow`).
    """

    def __init__(self, window):
        self.window = window
        self.browser = None

    # ------------------------------------------------------------------ helpers
    def _save_path(self, title: str, suggested: str, filters: str) -> str | None:
        w = self.window
        path, chosen = QFileDialog.getSaveFileName(w, title, str(Path(w.settings.folder("export")) / suggested),
                                                   filters)
        if not path:
            return None
        if not Path(path).suffix:
            ext = chosen.split("(*")[-1].rstrip(")").strip() if "(*" in chosen else ""
            path += ext
        w.settings.set_folder("export", path)
        return path

    @staticmethod
    def _suggest(entry: SampleEntry, suffix: str) -> str:
        return f"{entry.source.name}-seed{entry.sample.seed}{suffix}"

    def _export_job(self, what: str, fn) -> None:
        w = self.window
        w.status(f"{what}…")
        w.io.submit(Job("export", fn, what, on_done=lambda msg: w.status(msg),
                        on_error=lambda exc: w.report(exc, what)))

    # ------------------------------------------------------------------ files
    def export_sample(self, path: str | None = None, *, entry: SampleEntry | None = None, suffix: str = ".ply") -> None:
        """Save ``entry`` (default: the current sample) in the export format its file name ends in (``.ply``,
        ``.compressed.ply``, ``.spz``, ``.glb``, ``.splat``, …); no ``path``: ask, offering ``suffix``'s first."""
        from splatgen.core.export import EXPORT_FORMATS, export_format

        w = self.window
        entry = entry or w.current_entry()
        if entry is None:
            w.status("No sample to export yet.", error=True)
            return
        if path is None:
            path = self._save_path("Export sample", self._suggest(entry, suffix), splat_filters(suffix))
            if path is None:
                return
        if export_format(path) is None:
            w.status(f"{Path(path).name}: choose a file name ending in "
                     f"{', '.join(suffix for suffix, _ in EXPORT_FORMATS.values())}.", error=True)
            return
        self._export_job(f"Exporting {Path(path).name}", tasks.save_sample(path, entry.sample))

    def export_turntable(self, path: str | None = None, frames: int = 90, size: int = 512, *, settings=None,
                         entries: list[SampleEntry] | None = None):
        """An orbit video of ``entries`` (default: the current sample; several are tiles of one grid on
        the same orbit) with ``settings`` (a :class:`~splatgen.core.turntable.TurntableSettings`;
        default: ``frames`` frames at 30 fps, ``size``² pixels, the view's background). Without
        ``path`` (the menu): the turntable dialog (:meth:`open_turntable_dialog`). Returns the job."""
        from splatgen.core.turntable import TurntableSettings

        w = self.window
        if path is None:
            return self.open_turntable_dialog()
        entries = entries or [e for e in [w.current_entry()] if e is not None]
        if not entries:
            return None
        settings = settings or TurntableSettings(frames=frames, seconds=frames / 30, width=size, height=size,
                                                 background=w.viewport.background)
        return self._render_job("turntable", f"Rendering the turntable {Path(path).name}",
                                tasks.save_turntable(path, [e.sample for e in entries], settings))

    def turntable_choices(self) -> list[tuple[str, list[SampleEntry]]]:
        """What a turntable may show, the default first: the selected samples (two or more), the tiled
        ones (while the tiles are shown), the current one, all of the gallery."""
        w = self.window
        sel, tiles, cur, everything = (w.gallery.selected_entries(), w.tile_entries(), w.current_entry(),
                                       list(w.store.entries))
        choices = []
        if len(sel) >= 2:
            choices.append((f"The selected samples ({len(sel)})", sel))
        if w.current_view() is w.tiles and len(tiles) >= 2:
            choices.append((f"The tiled samples ({len(tiles)})", tiles))
        if cur is not None:
            choices.append(("The current sample", [cur]))
        if len(everything) >= 2:
            choices.append((f"All samples in the gallery ({len(everything)})", everything))
        return choices

    def open_turntable_dialog(self):
        """*Export turntable…*: the :class:`~.render_export.TurntableDialog` (shown, not blocking)."""
        from splatgen.core import framing

        from .render_export import TURNTABLE_FORMATS, TurntableDialog

        w = self.window
        choices = self.turntable_choices()
        if not choices:
            w.status("No sample to turn yet.", error=True)
            return None
        options = w.settings.export_options("turntable", {
            "frames": 90, "seconds": 3.0, "elevation": float(framing.INPUT_ELEVATION_DEG), "width": 512,
            "height": 512, "transparent": False, "format": ".mp4"})
        first = choices[0][1]
        name = self._suggest(first[0], "-turntable") if len(first) == 1 else \
            f"{first[0].source.name}-{len(first)}-samples-turntable"
        fmt = options["format"] if options["format"] in [f[1] for f in TURNTABLE_FORMATS] else ".mp4"
        path = str(Path(w.settings.folder("export")) / name) + fmt
        dialog = TurntableDialog(w, choices, options, w.viewport.background, path)
        dialog.on_export = self._start_turntable
        dialog.on_cancel = self.cancel_render
        self._show_dialog(dialog)
        return dialog

    def _start_turntable(self, dialog):
        from splatgen.core.errors import SplatgenError
        from splatgen.core.turntable import check_turntable_path

        try:
            settings = dialog.settings()
            path = dialog.path()
            check_turntable_path(path, settings)
        except SplatgenError as exc:
            dialog.show_message(str(exc))
            return None
        w = self.window
        w.settings.set_export_options("turntable", dialog.options())
        w.settings.set_folder("export", path)
        return self.export_turntable(path, settings=settings, entries=dialog.chosen_entries())

    def _show_dialog(self, dialog) -> None:
        old = getattr(self, "dialog", None)
        if old is not None and old.job is None:
            old.close()
        self.dialog = dialog
        dialog.show()
        dialog.raise_()

    def _render_job(self, what: str, description: str, fn) -> Job:
        """Run a rendered export (turntable, screenshot) on the light worker, its progress and end
        shown in the open dialog (if any) and the status bar; :meth:`cancel_render` stops it."""
        w = self.window
        dialog = getattr(self, "dialog", None)
        dialog = dialog if dialog is not None and dialog.isVisible() else None

        def progress(done: int, total: int, text: str) -> None:
            if dialog is not None:
                dialog.set_progress(done, total, text)

        def done(msg: str) -> None:
            w.status(msg)
            if dialog is not None:
                dialog.job_ended(True)

        def cancelled() -> None:
            w.status(f"Cancelled the {what}: nothing was written.")
            if dialog is not None:
                dialog.job_ended(False, "Cancelled: nothing was written.")

        def failed(exc: BaseException) -> None:
            w.report(exc, f"Exporting the {what}")
            if dialog is not None:
                dialog.job_ended(False, str(exc))

        w.status(f"{description}…")
        return w.io.submit(Job("render", fn, description, on_done=done, on_error=failed, on_cancelled=cancelled,
                               on_progress=progress))

    def cancel_render(self) -> bool:
        """Stop the running rendered export (between batches of frames); it writes nothing."""
        return self.window.io.cancel("render")

    def export_contact_sheet(self, path: str | None = None) -> None:
        """A PNG grid of the selected samples (two or more), else the tiled ones, else all."""
        w = self.window
        entries = w.gallery.selected_entries()
        if len(entries) < 2:
            entries = w.tile_entries() or list(w.store.entries)
        if not entries:
            return
        path = path or self._save_path("Export contact sheet", f"{entries[0].source.name}-samples.png",
                                       "PNG image (*.png)")
        if path:
            self._export_job(f"Rendering the contact sheet {Path(path).name}",
                             tasks.save_contact_sheet(path, [e.sample for e in entries],
                                                      background=w.viewport.background))

    def screenshot(self):
        """The current view as ``(H, W, 3)`` uint8, without the overlay."""
        view = self.window.current_view()
        keep = view.show_overlay
        view.show_overlay = False
        try:
            return view.grab_array()
        finally:
            view.show_overlay = keep

    def save_screenshot(self, path: str | None = None, *, size: tuple[int, int] | None = None,
                        transparent: bool = False, background=None):
        """Without ``path`` (the menu): the screenshot dialog (:meth:`open_screenshot_dialog`). With
        ``path`` and no ``size``: the view's pixels as they are on screen (overlay left out). With a
        ``size`` ``(W, H)``: the view's samples rendered from its camera at that size (RGBA with the
        render's alpha when ``transparent``, composited on ``background`` — default the view's —
        otherwise), as a job. Returns the job, the dialog or None."""
        if path is None:
            return self.open_screenshot_dialog()
        if size is None:
            self._export_job(f"Saving {Path(path).name}", tasks.save_image(path, self.screenshot()))
            return None
        w = self.window
        samples, _ = self.view_samples()
        if not samples:
            w.status("Nothing in the view to render.", error=True)
            return None
        return self._render_job("screenshot", f"Rendering {Path(path).name}", tasks.save_still(
            path, samples, w.camera.viewmat(), int(size[0]), int(size[1]), fov_deg=w.camera.fov_deg,
            background=background or w.viewport.background, transparent=transparent))

    def view_samples(self) -> tuple[list, str]:
        """The splats the current view shows (the tiles' samples, or the viewport's: an edit's preview
        or a value mode's colours included) and a line saying what they are."""
        w = self.window
        if w.current_view() is w.tiles and w.tiles.entries:
            samples = [sample.gaussians for _, sample in w.tiles.entries]
            return samples, f"the {len(samples)} tiled samples, side by side, from the view's camera"
        shown = w.viewport.shown_gaussians()
        if shown is None:
            return [], "nothing"
        note = " (depth and alpha modes are drawn in RGB)" if w.viewport.mode in ("depth", "alpha") else ""
        return [shown], f"the current sample from the view's camera{note}"

    def open_screenshot_dialog(self):
        """*Save screenshot…*: the :class:`~.render_export.ScreenshotDialog` (shown, not blocking)."""
        from .render_export import SCREENSHOT_FORMATS, ScreenshotDialog

        w = self.window
        samples, what = self.view_samples()
        if not samples:
            w.status("Nothing in the view to render yet.", error=True)
            return None
        view = w.current_view()
        view_size = view.device_size() if view.width() > 0 else (1024, 1024)
        options = w.settings.export_options("screenshot", {"width": 0, "height": 0, "transparent": True,
                                                           "format": ".png"})
        entry = w.current_entry()
        fmt = options["format"] if options["format"] in [f[1] for f in SCREENSHOT_FORMATS] else ".png"
        name = self._suggest(entry, fmt) if entry else f"splatgen{fmt}"
        dialog = ScreenshotDialog(w, what, (max(16, view_size[0]), max(16, view_size[1])), options,
                                  w.viewport.background, str(Path(w.settings.folder("export")) / name))
        dialog.on_export = self._start_screenshot
        dialog.on_cancel = self.cancel_render
        self._show_dialog(dialog)
        return dialog

    def _start_screenshot(self, dialog):
        from splatgen.core.commands.common import check_output_path
        from splatgen.core.errors import SplatgenError

        width, height = dialog.chosen_size()
        path = dialog.path()
        try:
            check_output_path(path)
        except SplatgenError as exc:
            dialog.show_message(str(exc))
            return None
        if width * height > 8192 * 8192:
            dialog.show_message(f"{width}×{height} is too large (at most 8192×8192 pixels).")
            return None
        w = self.window
        w.settings.set_export_options("screenshot", dialog.options())
        w.settings.set_folder("export", path)
        return self.save_screenshot(path, size=(width, height), transparent=dialog.transparent_chosen(),
                                    background=dialog.background)

    # ------------------------------------------------------------------ browser viewer
    def show_in_browser(self) -> None:
        """Show the current sample in the web viewer (started in the worker on first use)."""
        w = self.window
        entry = w.current_entry()
        if entry is None:
            return
        if self.browser is not None:
            self.follow(entry)
            QDesktopServices.openUrl(QUrl(self.browser.url))
            w.status(f"Browser viewer at {self.browser.url}")
            return
        if w.io.is_running("browser"):
            return

        def started(handle) -> None:
            self.browser = handle
            cur = w.current_entry()
            if cur is not None and cur.sample is not entry.sample:
                handle.set_gaussians(cur.sample.gaussians)
            handle.download_name = _download_name(cur or entry)
            w.status(f"Browser viewer at {handle.url}")
            QDesktopServices.openUrl(QUrl(handle.url))

        def failed(exc: BaseException) -> None:
            if isinstance(exc, ImportError):
                w.status(f"The browser viewer is not available in this installation ({exc}).", error=True)
            else:
                w.report(exc, "Starting the browser viewer")

        w.status("Starting the browser viewer…")
        w.io.submit(Job("browser", tasks.start_browser(entry.sample.gaussians), "start the browser viewer",
                        on_done=started, on_error=failed))

    def follow(self, entry: SampleEntry | None) -> None:
        """Show ``entry`` in the browser viewer, when it runs (failures are only logged)."""
        if self.browser is not None and entry is not None:
            try:
                self.browser.set_gaussians(entry.sample.gaussians)
                self.browser.download_name = _download_name(entry)   # what the page's downloads are called
            except Exception as exc:  # noqa: BLE001 - the viewer is optional
                log.warning("browser viewer update failed: %s", exc)

    def close(self) -> None:
        """Stop the browser viewer, if it runs."""
        if self.browser is not None:
            try:
                self.browser.stop()
            except Exception:  # noqa: BLE001
                pass
            self.browser = None


def _download_name(entry: SampleEntry) -> str:
    """``photo-seedN`` (the browser viewer makes it a safe file name)."""
    return f"{entry.source.name}-seed{entry.sample.seed}"
