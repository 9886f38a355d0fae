"""*Order by disagreement*: the tiled view's samples sorted by how unusual each is among them.

A sample's score is its mean disagreement with the other tiled samples
(:func:`splatgen.core.disagreement.sample_disagreement`: the mean squared difference of their renders
from four fixed views), computed on the window's ``io`` worker. Until the scores of the samples
shown are known, the tiles keep the gallery's order and labels; then the most unusual sample comes
first, and each label gives its seed and score (``"seed 5 · Δ 0.0041"``).
"""

from __future__ import annotations

from . import tasks
from .worker import Job


class TileOrder:
    """The order and labels of the tiles of ``window`` (a :class:`~.main_window.MainWindow`: its
    ``io`` runner scores, its ``_update_tiles`` shows the result)."""

    def __init__(self, window):
        self.window = window
        self.on = False
        self._scored: tuple[tuple, list[float]] | None = None   # (samples, scores) of the last set scored
        self._pending: tuple | None = None                       # the samples being scored

    def set_on(self, on: bool) -> None:
        self.on = bool(on)
        if not self.on:
            self._scored = None          # holds samples: not kept while unused

    def arrange(self, entries: list) -> list[tuple[str, object]]:
        """``(label, sample)`` pairs for the tiled view from gallery ``entries``
        (:class:`~.samples.SampleEntry`): ordered by disagreement when that is on and the scores are
        known, else in the gallery's order (and, when on, scored in the background)."""
        plain = [(e.label.replace("\n", " · "), e.sample) for e in entries]
        if not self.on or len(entries) < 2:
            return plain
        samples = tuple(e.sample for e in entries)
        scores = self.scores_of(samples)
        if scores is None:
            self._score(samples)
            return plain
        order = sorted(range(len(entries)), key=lambda i: -scores[i])   # ties keep the gallery's order
        return [(f"{entries[i].seed_text} · Δ {scores[i]:.2g}", entries[i].sample) for i in order]

    def scores_of(self, samples) -> list[float] | None:
        """The scores of ``samples`` (in that order), if they are the set last scored."""
        if self._scored is None or not _same(self._scored[0], samples):
            return None
        return self._scored[1]

    def _score(self, samples: tuple) -> None:
        if self._pending is not None and _same(self._pending, samples):
            return
        self._pending = samples
        w = self.window
        w.status(f"Scoring how much each of the {len(samples)} tiled samples differs from the others…")
        w.io.submit(Job("disagreement", tasks.disagreement(samples), f"score {len(samples)} samples' disagreement",
                        on_done=lambda scores: self._scored_done(samples, scores),
                        on_error=lambda exc: self._failed(samples, exc)), replace=True)

    def _scored_done(self, samples: tuple, scores) -> None:
        if self._pending is samples:
            self._pending = None
        if not self.on:
            return
        self._scored = (samples, [float(s) for s in scores])
        w = self.window
        w._update_tiles()
        if self.scores_of(tuple(e.sample for e in w.tile_entries())) is None:   # the tiles show another set now
            return
        top = max(range(len(samples)), key=self._scored[1].__getitem__)
        w.status(f"Tiles ordered by disagreement, most unusual first: seed {samples[top].seed} (Δ "
                 f"{self._scored[1][top]:.2g}, the mean squared difference of its renders from the others').",
                 timeout_ms=8000)

    def _failed(self, samples: tuple, exc: BaseException) -> None:
        if self._pending is samples:
            self._pending = None
        self.window.report(exc, "Ordering the tiles by disagreement")


def _same(a, b) -> bool:
    """Whether two sequences hold the very same objects in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))
