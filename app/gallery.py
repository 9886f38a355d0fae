"""The sample gallery: one thumbnail per sample (a three-quarter view), in a horizontal strip.

Each sample is labelled with its photo and seed (whole in its tooltip), and the samples of one photo
stay together (:meth:`~splatgen.app.samples.SampleStore.group_end`).

Click shows a sample in the viewport; Ctrl/Shift-click selects several (the tiled view shows the
selection). Mirrors a :class:`~splatgen.app.samples.SampleStore`: its signals add, remove and refresh
items; the widget never edits the store itself (removal goes through the main window's undo stack).
Signals: ``current_changed(entry | None)``, ``selection_changed(list[entry])``,
``remove_requested(list[entry])``, ``export_requested(entry)``.
"""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QMenu

from .plain_text import plain_tooltip
from .samples import SampleEntry, SampleStore
from .splat_view import array_to_qimage

ICON = 96
_ROLE = Qt.ItemDataRole.UserRole


class Gallery(QListWidget):
    current_changed = pyqtSignal(object)
    selection_changed = pyqtSignal(list)
    remove_requested = pyqtSignal(list)
    export_requested = pyqtSignal(object)

    def __init__(self, store: SampleStore, parent=None):
        super().__init__(parent)
        self.store = store
        self.setObjectName("gallery")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(ICON, ICON))
        self.setGridSize(QSize(ICON + 18, ICON + 40))   # two lines of label: the photo, the seed
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.setAcceptDrops(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(ICON + 62)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # long seeds and names: whole in the tooltip
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentItemChanged.connect(lambda cur, _prev: self.current_changed.emit(self.entry(cur)))
        self.itemSelectionChanged.connect(lambda: self.selection_changed.emit(self.selected_entries()))
        store.inserted.connect(self._inserted)
        store.removed.connect(self._removed)
        store.changed.connect(self._changed)

    # ------------------------------------------------------------------ access
    def entry(self, item: QListWidgetItem | None) -> SampleEntry | None:
        if item is None:
            return None
        return self.store.by_id(item.data(_ROLE))

    def current_entry(self) -> SampleEntry | None:
        return self.entry(self.currentItem())

    def selected_entries(self) -> list[SampleEntry]:
        rows = sorted(self.row(i) for i in self.selectedItems())
        return [e for e in (self.entry(self.item(r)) for r in rows) if e is not None]

    def item_of(self, entry: SampleEntry) -> QListWidgetItem | None:
        for i in range(self.count()):
            if self.item(i).data(_ROLE) == entry.id:
                return self.item(i)
        return None

    def show_entry(self, entry: SampleEntry) -> None:
        item = self.item_of(entry)
        if item is not None:
            self.setCurrentItem(item)
            self.scrollToItem(item)

    # ------------------------------------------------------------------ store mirror
    def _make_item(self, entry: SampleEntry) -> QListWidgetItem:
        item = QListWidgetItem()
        item.setData(_ROLE, entry.id)
        self._fill(item, entry)
        return item

    def _fill(self, item: QListWidgetItem, entry: SampleEntry) -> None:
        item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(entry.thumbnail))))
        item.setText(entry.label)
        item.setToolTip(plain_tooltip(entry.tooltip))   # holds the photo's name

    def _inserted(self, index: int, entry: SampleEntry) -> None:
        self.insertItem(index, self._make_item(entry))

    def _removed(self, index: int, entry: SampleEntry) -> None:
        item = self.item_of(entry)
        if item is not None:
            self.takeItem(self.row(item))
        if self.count() == 0:
            self.current_changed.emit(None)

    def _changed(self, entry: SampleEntry) -> None:
        item = self.item_of(entry)
        if item is not None:
            self._fill(item, entry)
            if item is self.currentItem():
                self.current_changed.emit(entry)

    # ------------------------------------------------------------------ menu
    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        if not item.isSelected():
            self.setCurrentItem(item)
        entries = self.selected_entries() or [self.entry(item)]
        menu = QMenu(self)
        export = menu.addAction("Export sample…")
        remove = menu.addAction(f"Remove {'sample' if len(entries) == 1 else f'{len(entries)} samples'}")
        chosen = menu.exec(self.viewport().mapToGlobal(pos))
        if chosen is export:
            self.export_requested.emit(self.entry(item))
        elif chosen is remove:
            self.remove_requested.emit(entries)
