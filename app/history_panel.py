"""The History panel: every generation kept as a run (:mod:`splatgen.core.runs`), newest first.

One row per run: the thumbnail of its first sample, the photo's name, when, the model, how many
samples, and its status when it did not finish normally. Buttons act on the selection: *Reopen*
(double-click too) puts a run's samples back in the gallery, *Compare* puts two runs' samples side
by side in the tiles under one camera, *Delete* removes runs from disk, *Export zip…* writes one
run as a zip. The widget only shows and asks; the window's :class:`~.history.History` does the
work. Signals: ``reopen_requested(list[str])``, ``compare_requested(str, str)``,
``delete_requested(list[str])``, ``export_requested(str)``, ``refresh_requested()``.
"""

from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                             QSizePolicy, QVBoxLayout, QWidget)

from .plain_text import plain_tooltip
from .splat_view import array_to_qimage

ICON = 64
_ROLE = Qt.ItemDataRole.UserRole


def run_label(info) -> str:
    """Two lines for a run: the photo's name, then when · model · samples (· status)."""
    when = time.strftime("%d %b %H:%M", time.localtime(info.created))
    status = "" if info.status == "done" else f" · {info.status}"
    n = f"{info.samples} sample{'s' if info.samples != 1 else ''}"
    return f"{info.name}\n{when} · {info.generator} · {n}{status}"


class HistoryPanel(QWidget):
    reopen_requested = pyqtSignal(list)
    compare_requested = pyqtSignal(str, str)
    delete_requested = pyqtSignal(list)
    export_requested = pyqtSignal(str)
    refresh_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("historyPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.list = QListWidget(objectName="historyList")
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setUniformItemSizes(True)
        self.list.itemDoubleClicked.connect(lambda item: self.reopen_requested.emit([item.data(_ROLE)]))
        self.list.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.list, 1)

        row = QHBoxLayout()
        self.reopen = QPushButton("Reopen", objectName="historyReopen")
        self.reopen.setToolTip("Put the selected runs' samples back in the gallery (double-click a run too)")
        self.compare = QPushButton("Compare", objectName="historyCompare")
        self.compare.setToolTip("Two selected runs: their samples side by side in the tiles, under one camera")
        self.delete = QPushButton("Delete", objectName="historyDelete")
        self.delete.setToolTip("Remove the selected runs from disk")
        self.export = QPushButton("Export zip…", objectName="historyExport")
        self.export.setToolTip("Write the selected run (photo, input, mask, settings, samples) as one zip")
        for b in (self.reopen, self.compare, self.delete, self.export):
            b.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            row.addWidget(b)
        layout.addLayout(row)
        self.reopen.clicked.connect(lambda: self.reopen_requested.emit(self.selected_ids()))
        self.compare.clicked.connect(lambda: self.compare_requested.emit(*self.selected_ids()[:2]))
        self.delete.clicked.connect(lambda: self.delete_requested.emit(self.selected_ids()))
        self.export.clicked.connect(lambda: self.export_requested.emit(self.selected_ids()[0]))
        self.where = QLabel("", objectName="historyRoot")
        self.where.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.where.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.where)
        self._update_buttons()

    # ------------------------------------------------------------------ contents
    def set_runs(self, runs: list[tuple[object, np.ndarray | None]], root=None) -> None:
        """Show ``(RunInfo, thumbnail (S, S, 3) uint8 or None)`` pairs, keeping the selection."""
        keep = set(self.selected_ids())
        self.list.blockSignals(True)
        self.list.clear()
        for info, thumb in runs:
            item = QListWidgetItem(run_label(info))
            item.setData(_ROLE, info.id)
            if thumb is not None:
                item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(np.ascontiguousarray(thumb)))))
            item.setToolTip(plain_tooltip(f"{run_label(info)}\n{info.folder}"))
            self.list.addItem(item)
            item.setSelected(info.id in keep)
        self.list.blockSignals(False)
        if root is not None:
            self.where.setText(f"{len(runs)} run{'s' if len(runs) != 1 else ''} in {root}")
            self.where.setToolTip(plain_tooltip(str(root)))
        self._update_buttons()

    def run_ids(self) -> list[str]:
        return [self.list.item(i).data(_ROLE) for i in range(self.list.count())]

    def selected_ids(self) -> list[str]:
        rows = sorted(self.list.row(i) for i in self.list.selectedItems())
        return [self.list.item(r).data(_ROLE) for r in rows]

    def select(self, run_ids: list[str]) -> None:
        want = set(run_ids)
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setSelected(item.data(_ROLE) in want)

    def _update_buttons(self) -> None:
        n = len(self.list.selectedItems())
        self.reopen.setEnabled(n >= 1)
        self.compare.setEnabled(n == 2)
        self.delete.setEnabled(n >= 1)
        self.export.setEnabled(n == 1)
