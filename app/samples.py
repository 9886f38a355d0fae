"""The samples of a session and the undoable edits on them (resample, clean up, remove).

A :class:`SampleEntry` is one gallery slot: the current :class:`~splatgen.core.generator.Sample`, its
thumbnail, and the input it was generated from (so it can be resampled later, whatever image is
loaded by then). :class:`SampleStore` holds the entries in gallery order and announces changes;
edits go through ``QUndoCommand`` s on the window's undo history: :class:`ResampleCommand` swaps an
entry's sample for its resampled version (undo swaps back), :class:`CleanupCommand` for its cleaned
version (:mod:`.cleanup`), :class:`RemoveCommand` takes entries
out (undo puts them back). Nothing is lost while it is in the history; the history
(:class:`~.undo_history.UndoHistory`) keeps at most its memory bound of samples the gallery no longer shows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QUndoCommand

_ids = itertools.count(1)


@dataclass
class InputRecord:
    """The prepared input a sample came from: ``image`` ``(4, 128, 128)`` float tensor, a name."""

    image: object
    name: str
    path: str = ""


@dataclass(eq=False)
class SampleEntry:
    sample: object
    thumbnail: np.ndarray
    source: InputRecord
    model_key: str
    stochastic: bool = True
    run: int = 0                       # which generation run it came from
    resampled: int = 0                 # how many resamples it has been through
    run_id: str = ""                   # its run in the run history ("" if not kept there)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def label(self) -> str:
        """Two lines under the thumbnail: the photo, then :attr:`seed_text`; the gallery elides what
        does not fit, the :attr:`tooltip` has it whole."""
        return f"{self.source.name}\n{self.seed_text}"

    @property
    def seed_text(self) -> str:
        """The seed and how often the sample was resampled: ``"seed 5"``, ``"seed 5 ↻2"``."""
        mark = f" ↻{self.resampled}" if self.resampled else ""
        return f"seed {self.sample.seed}{mark}"

    @property
    def tooltip(self) -> str:
        s = self.sample.settings
        lines = [f"{self.source.name} — {self.model_key}", f"seed {self.sample.seed}"]
        if self.stochastic:
            lines.append(f"guidance {s.guidance:g}, skip weight {s.skip_weight:g}, {s.steps} {s.scheduler} steps")
        if self.resampled:
            lines.append(f"resampled {self.resampled}× ({self.sample.info.get('region', '')})")
        lines.append(f"{self.sample.gaussians.num_gaussians:,} splats")
        return "\n".join(lines)


class SampleStore(QObject):
    """Entries in gallery order. Signals carry entries; ``index`` is the gallery position."""

    inserted = pyqtSignal(int, object)     # index, entry
    removed = pyqtSignal(int, object)      # index, entry
    changed = pyqtSignal(object)           # entry (its sample or thumbnail was replaced)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[SampleEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def index_of(self, entry: SampleEntry) -> int:
        for i, e in enumerate(self.entries):
            if e is entry:
                return i
        return -1

    def by_id(self, entry_id: int) -> SampleEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def insert(self, entry: SampleEntry, index: int | None = None) -> None:
        index = len(self.entries) if index is None else max(0, min(index, len(self.entries)))
        self.entries.insert(index, entry)
        self.inserted.emit(index, entry)

    def remove(self, entry: SampleEntry) -> int:
        i = self.index_of(entry)
        if i >= 0:
            self.entries.pop(i)
            self.removed.emit(i, entry)
        return i

    def set_sample(self, entry: SampleEntry, sample, thumbnail: np.ndarray, resampled: int) -> None:
        entry.sample, entry.thumbnail, entry.resampled = sample, thumbnail, resampled
        self.changed.emit(entry)

    def group_end(self, entry: SampleEntry) -> int:
        """Where a new sample of ``entry``'s photo goes: after the last sample of that photo (the
        gallery keeps each photo's samples together), else at the end."""
        same = [i for i, e in enumerate(self.entries) if e.source.path == entry.source.path
                and e.source.name == entry.source.name]
        return same[-1] + 1 if same else len(self.entries)

    def of_run(self, run: int) -> list[SampleEntry]:
        return [e for e in self.entries if e.run == run]


class ReplaceSampleCommand(QUndoCommand):
    """Replace ``entry``'s sample by an edited version (redo) / restore the very same original (undo);
    ``resampled``: whether the edit counts as one more resample of the entry."""

    def __init__(self, store: SampleStore, entry: SampleEntry, new_sample, new_thumbnail, text: str,
                 resampled: bool):
        super().__init__(text)
        self.store, self.entry = store, entry
        self.old = (entry.sample, entry.thumbnail, entry.resampled)
        self.new = (new_sample, new_thumbnail, entry.resampled + int(resampled))

    def held(self):
        """The samples (with thumbnails) this edit keeps: both sides."""
        return [self.old[:2], self.new[:2]]

    def redo(self) -> None:
        self.store.set_sample(self.entry, *self.new)

    def undo(self) -> None:
        self.store.set_sample(self.entry, *self.old)


class ResampleCommand(ReplaceSampleCommand):
    """A resample of ``entry``: its new seed in the undo text, one more resample counted."""

    def __init__(self, store: SampleStore, entry: SampleEntry, new_sample, new_thumbnail, what: str):
        super().__init__(store, entry, new_sample, new_thumbnail,
                         f"{what} (seed {entry.sample.seed} → {new_sample.seed})", resampled=True)


class CleanupCommand(ReplaceSampleCommand):
    """A clean-up of ``entry`` (app/cleanup.py): not a resample."""

    def __init__(self, store: SampleStore, entry: SampleEntry, new_sample, new_thumbnail, what: str):
        super().__init__(store, entry, new_sample, new_thumbnail, what, resampled=False)


class RemoveCommand(QUndoCommand):
    """Take entries out of the gallery (redo) / put them back where they were (undo)."""

    def __init__(self, store: SampleStore, entries: list[SampleEntry]):
        n = len(entries)
        super().__init__(f"Remove {n} sample{'s' if n != 1 else ''}")
        self.store = store
        self.items = sorted(((store.index_of(e), e) for e in entries), key=lambda t: t[0])

    def held(self):
        """The samples (with thumbnails) this edit keeps: the removed entries'."""
        return [(e.sample, e.thumbnail) for _, e in self.items]

    def redo(self) -> None:
        for _, e in reversed(self.items):
            self.store.remove(e)

    def undo(self) -> None:
        for i, e in self.items:
            self.store.insert(e, i)
