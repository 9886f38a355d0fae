"""The window's run history: the History dock, and reopening, comparing, deleting and exporting runs.

Every generation is kept as a run by the window's :class:`~.tasks.Autosave` (under its runs
folder, :mod:`splatgen.core.runs`); :class:`History` lists them in the
:class:`~.history_panel.HistoryPanel` and does what its buttons ask, reading and writing on the
window's light worker (``window.io``). A reopened run's samples join the gallery as one more run
(their photo's prepared input comes back too, so they can be resampled); comparing two runs
selects their samples (at most half the tiles each) and shows the tiles, whose one camera all of
them share.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDockWidget, QFileDialog, QMessageBox

from . import tasks
from .history_panel import HistoryPanel
from .samples import InputRecord, SampleEntry
from .tiles import MAX_TILES
from .worker import Job


class History:
    """Run history of ``window`` (a :class:`~.main_window.MainWindow`): ``panel`` in ``dock``."""

    def __init__(self, window):
        self.window = window
        self.panel = HistoryPanel()
        self.dock = QDockWidget("History", window)
        self.dock.setObjectName("historyDock")
        self.dock.setWidget(self.panel)
        self.dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.dock.visibilityChanged.connect(lambda shown: shown and self.refresh())
        p = self.panel
        p.reopen_requested.connect(lambda ids: self.reopen(ids))
        p.compare_requested.connect(lambda a, b: self.compare(a, b))
        p.delete_requested.connect(lambda ids: self.delete(ids))
        p.export_requested.connect(lambda run_id: self.export_zip(run_id))
        p.refresh_requested.connect(self.refresh)

    @property
    def runs(self):
        return self.window.autosave.runs

    # ------------------------------------------------------------------ listing
    def refresh(self) -> None:
        """List the runs again (in the worker) into the panel."""
        runs = self.runs
        if runs is None:
            self.panel.set_runs([], "nowhere (the run history is off)")
            return
        self.window.io.submit(Job("history", tasks.list_runs(runs), "list runs",
                                  on_done=lambda items: self.panel.set_runs(items, runs.root),
                                  on_error=lambda exc: self.window.report(exc, "Listing the run history")),
                              replace=True)

    def entries_of(self, run_id: str) -> list[SampleEntry]:
        return [e for e in self.window.store.entries if run_id and e.run_id == run_id]

    # ------------------------------------------------------------------ reopen and compare
    def reopen(self, run_ids: list[str], then=None) -> None:
        """Put the samples of ``run_ids`` in the gallery (runs already there are not loaded twice),
        then call ``then()``."""
        w = self.window
        missing = [r for r in dict.fromkeys(run_ids) if not self.entries_of(r)]
        if not missing:
            self._reopened([], run_ids, then)
            return
        if self.runs is None:
            return
        w.status(f"Reopening {len(missing)} run{'s' if len(missing) != 1 else ''}…")
        w.io.submit(Job("reopen", tasks.load_runs(self.runs, missing), "reopen runs",
                        on_done=lambda got: self._reopened(got, run_ids, then),
                        on_error=lambda exc: w.report(exc, "Reopening a run")))

    def _reopened(self, got: list, run_ids: list[str], then) -> None:
        w = self.window
        first = None
        for r in got:
            if self.entries_of(r.run_id):
                continue
            record = InputRecord(r.image, r.name, r.photo)
            run = w.generation.new_run()
            for p in r.samples:
                entry = SampleEntry(p.sample, p.thumbnail, record, r.model_key, r.stochastic, run=run,
                                    run_id=r.run_id, resampled=p.resampled)
                w.store.insert(entry)
                first = first or entry
        shown = [e for rid in run_ids for e in self.entries_of(rid)]
        if first is not None or shown:
            w.gallery.show_entry(first or shown[0])
        if got:
            n = sum(len(r.samples) for r in got)
            w.status(f"Reopened {len(got)} run{'s' if len(got) != 1 else ''} ({n} sample{'s' if n != 1 else ''}).")
        if then is not None:
            then()

    def compare(self, a: str, b: str) -> None:
        """Runs ``a`` and ``b`` side by side: their samples selected in the gallery, shown in the tiles."""
        self.reopen([a, b], then=lambda: self._side_by_side(a, b))

    def _side_by_side(self, a: str, b: str) -> None:
        w = self.window
        half = MAX_TILES // 2
        chosen = self.entries_of(a)[:half] + self.entries_of(b)[:half]
        if len(chosen) < 2:
            w.status("Nothing to compare: those runs have no samples left on disk.", error=True)
            return
        g = w.gallery
        g.blockSignals(True)
        g.clearSelection()
        g.setCurrentItem(g.item_of(chosen[0]))
        for e in chosen:
            g.item_of(e).setSelected(True)
        g.blockSignals(False)
        w.acts["tiled"].setChecked(True)
        w._update_tiles()
        w.tiles.reset_camera()
        w.status(f"Comparing {len(self.entries_of(a)[:half])} + {len(self.entries_of(b)[:half])} samples of two "
                 "runs under one camera.")

    # ------------------------------------------------------------------ delete and export
    def delete(self, run_ids: list[str], *, confirm: bool = True) -> int:
        """Remove ``run_ids`` from disk (asking first when ``confirm``); samples of them still in the
        gallery stay there, no longer kept. Returns how many runs were removed."""
        w, runs = self.window, self.runs
        if not run_ids or runs is None:
            return 0
        if confirm:
            n = len(run_ids)
            answer = QMessageBox.question(w, "Delete runs", f"Delete {n} run{'s' if n != 1 else ''} from disk? "
                                          "This cannot be undone.")
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        gone = 0
        for run_id in run_ids:
            try:
                gone += bool(runs.delete(run_id))
            except OSError as exc:
                w.report(exc, f"Deleting the run {run_id}")
            for e in self.entries_of(run_id):
                e.run_id = ""
        w.status(f"Deleted {gone} run{'s' if gone != 1 else ''}.")
        self.refresh()
        return gone

    def export_zip(self, run_id: str, path: str | None = None) -> None:
        w = self.window
        if self.runs is None:
            return
        if path is None:
            start = str(Path(w.settings.folder("export")) / f"run-{run_id}.zip")
            path, _ = QFileDialog.getSaveFileName(w, "Export the run as a zip", start, "Zip archives (*.zip)")
            if not path:
                return
            w.settings.set_folder("export", path)
        w.io.submit(Job("export-run", tasks.export_run(self.runs, run_id, path), f"export run {run_id}",
                        on_done=lambda msg: w.status(msg),
                        on_error=lambda exc: w.report(exc, "Exporting the run")))
