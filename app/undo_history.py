"""The window's undo history, bounded by the memory of the samples only it keeps alive.

Edits on the gallery are ``QUndoCommand`` s (:mod:`.samples`); each keeps the samples it needs to undo
or redo (a removed entry, the sample a resample replaced). Samples still in the gallery cost the
history nothing; the others — what "Clear gallery" or a resample took out — are counted
(:func:`sample_bytes`: tensor and thumbnail bytes) and, past ``limit_bytes``, the oldest commands
are dropped (undo side first) so those samples are freed. A single edit larger than the bound is done
but cannot be undone. ``QUndoStack`` cannot drop its oldest command, hence this small stack of our
own; it offers the ``QUndoStack`` calls the app uses (push, undo, redo, count, index, clear and the
Undo / Redo actions). Signals: ``changed()``, ``dropped(int commands, int bytes)``.
"""

from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QAction

#: Default bound of the samples the undo history alone keeps (bytes).
DEFAULT_LIMIT_BYTES = 48 * 1024 * 1024


def _tensors(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif obj is not None and hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            yield from _tensors(getattr(obj, name, None))


def sample_bytes(sample, thumbnail=None, seen: set | None = None) -> int:
    """Bytes of ``sample``'s tensors (splats, latent, cameras) and of ``thumbnail``; storages already
    in ``seen`` (data pointers) are not counted again."""
    seen = set() if seen is None else seen
    total = 0
    for t in _tensors(sample):
        if t.device.type == "meta":
            continue
        key = (t.untyped_storage().data_ptr(), t.device.type)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    if thumbnail is not None and id(thumbnail) not in seen:
        seen.add(id(thumbnail))
        total += int(getattr(thumbnail, "nbytes", 0))
    return total


def command_samples(cmd) -> list[tuple[object, object]]:
    """``(sample, thumbnail)`` pairs a command of :mod:`.samples` keeps (its ``held()``)."""
    held = getattr(cmd, "held", None)
    return list(held()) if callable(held) else []


class UndoHistory(QObject):
    """Undo / redo of gallery edits; the samples only it keeps stay within ``limit_bytes``.

    ``store``: the :class:`~.samples.SampleStore` (what is in it costs nothing)."""

    changed = pyqtSignal()
    dropped = pyqtSignal(int, int)   # commands dropped, bytes they freed

    def __init__(self, store, limit_bytes: int = DEFAULT_LIMIT_BYTES, parent=None):
        super().__init__(parent)
        self.store = store
        self.limit_bytes = int(limit_bytes)
        self._commands: list = []
        self._index = 0          # commands[:index] are done (undoable), the rest redoable

    # ------------------------------------------------------------------ QUndoStack's calls
    def push(self, cmd) -> None:
        """Do ``cmd`` (its ``redo``) and make it the newest undoable edit; redo history is dropped."""
        del self._commands[self._index:]
        cmd.redo()
        self._commands.append(cmd)
        self._index = len(self._commands)
        self.enforce()
        self.changed.emit()

    def undo(self) -> None:
        if self._index > 0:
            self._index -= 1
            self._commands[self._index].undo()
            self.enforce()
            self.changed.emit()

    def redo(self) -> None:
        if self._index < len(self._commands):
            self._commands[self._index].redo()
            self._index += 1
            self.enforce()
            self.changed.emit()

    def count(self) -> int:
        return len(self._commands)

    def index(self) -> int:
        return self._index

    def holds(self, cmd) -> bool:
        """Whether ``cmd`` is still in the history (an edit too large for the bound is not)."""
        return any(c is cmd for c in self._commands)

    def canUndo(self) -> bool:  # noqa: N802 - QUndoStack's name
        return self._index > 0

    def canRedo(self) -> bool:  # noqa: N802
        return self._index < len(self._commands)

    def clear(self) -> None:
        self._commands, self._index = [], 0
        self.changed.emit()

    def createUndoAction(self, parent, prefix: str = "&Undo") -> QAction:  # noqa: N802
        return self._action(parent, prefix, lambda: self._commands[self._index - 1] if self.canUndo() else None,
                            self.undo)

    def createRedoAction(self, parent, prefix: str = "&Redo") -> QAction:  # noqa: N802
        return self._action(parent, prefix, lambda: self._commands[self._index] if self.canRedo() else None,
                            self.redo)

    def _action(self, parent, prefix: str, which, slot) -> QAction:
        a = QAction(prefix, parent)
        a.triggered.connect(lambda: slot())

        def refresh() -> None:
            cmd = which()
            a.setEnabled(cmd is not None)
            a.setText(prefix if cmd is None else f"{prefix} {cmd.text()}")
        self.changed.connect(refresh)
        refresh()
        return a

    # ------------------------------------------------------------------ the bound
    def _live(self) -> set[int]:
        return {id(e.sample) for e in self.store.entries}

    def held_bytes(self) -> int:
        """Bytes of the samples only the history keeps (not in the gallery)."""
        live, seen = self._live(), set()
        for e in self.store.entries:     # storages shared with gallery samples are free
            sample_bytes(e.sample, e.thumbnail, seen)
        return sum(sample_bytes(s, t, seen) for cmd in self._commands for s, t in command_samples(cmd)
                   if id(s) not in live)

    def total_bytes(self) -> int:
        """Bytes of every sample the gallery and its history keep: the gallery's own plus :meth:`held_bytes`."""
        seen: set = set()
        return sum(sample_bytes(e.sample, e.thumbnail, seen) for e in self.store.entries) + self.held_bytes()

    def enforce(self) -> tuple[int, int]:
        """Drop the oldest commands (then the furthest redo ones) until :meth:`held_bytes` ≤ the
        limit; returns (and signals) how many were dropped and the bytes freed."""
        before = held = self.held_bytes()
        n = 0
        while held > self.limit_bytes and self._commands:
            if self._index > 0:
                self._commands.pop(0)
                self._index -= 1
            else:
                self._commands.pop()
            n += 1
            held = self.held_bytes()
        if n:
            self.dropped.emit(n, before - held)
            self.changed.emit()
        return n, before - held

    def set_limit(self, limit_bytes: int) -> None:
        self.limit_bytes = int(limit_bytes)
        self.enforce()
