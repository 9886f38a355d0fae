"""Getting samples out of the window: splat files, turntable videos, contact sheets, screenshots, and
the browser viewer.

:class:`Exports` asks for a file name (remembering the folder), then runs the export as a job on the
window's light worker (``window.io``; bodies in :mod:`splatgen.app.tasks`) and reports the outcome
in the status bar. Nothing here renders or writes a file itself.
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

    def export_turntable(self, path: str | None = None, frames: int = 90, size: int = 512) -> None:
        """An orbit video of the current sample (``frames`` frames, ``size``² pixels)."""
        w = self.window
        entry = w.current_entry()
        if entry is None:
            return
        path = path or self._save_path("Export turntable video", self._suggest(entry, ".mp4"),
                                       "MP4 video (*.mp4);;GIF animation (*.gif)")
        if path:
            from splatgen.core.turntable import TurntableSettings

            settings = TurntableSettings(frames=frames, seconds=frames / 30, width=size, height=size,
                                         background=w.viewport.background)
            self._export_job(f"Rendering the turntable {Path(path).name}",
                             tasks.save_turntable(path, [entry.sample], settings))

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

    def save_screenshot(self, path: str | None = None) -> None:
        entry = self.window.current_entry()
        name = self._suggest(entry, ".png") if entry else "splatgen.png"
        path = path or self._save_path("Save screenshot", name, "PNG image (*.png);;JPEG image (*.jpg)")
        if path:
            self._export_job(f"Saving {Path(path).name}", tasks.save_image(path, self.screenshot()))

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
