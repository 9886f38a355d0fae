"""What the GUI remembers between runs, on top of ``QSettings``.

The user's settings live where Qt keeps them for organisation ``splatgen``, application
``splatgen-gui`` (``~/.config/splatgen/splatgen-gui.conf`` on Linux). Tests and scripts pass their
own file (:meth:`Settings.from_file`, ``splatgen-gui --settings FILE``) so they never touch it.

Keys: ``recent`` (list of paths, newest first), ``model``, ``generation/<model>/<field>`` (the
last-used :class:`~splatgen.core.generator.GenerationSettings` per model), ``input/foreground_ratio``,
``input/remove_background``, ``view/background`` (``#rrggbb``), ``view/mode``, ``view/tiled``,
``view/heatmap``, ``view/order_tiles`` (*Order by disagreement*), ``view/generated_views`` (the strip of
a multi-view sample's generated views), ``undo/limit_mb`` (memory bound
of the undo history, MB of samples), ``history/keep_runs`` (runs the history keeps), ``demo/attract_after_s``, ``demo/cycle_s``,
``demo/watchdog_s``, ``demo/keep_visitors`` (demo mode), ``turntable/<field>`` and
``screenshot/<field>`` (the export dialogs' last choices), ``dirs/open``, ``dirs/export``,
``window/geometry``, ``window/state``.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

ORGANIZATION = "splatgen"
APPLICATION = "splatgen-gui"
MAX_RECENT = 10
GENERATION_FIELDS = ("guidance", "skip_weight", "steps", "scheduler", "seed", "num_samples", "strength", "colour_match")
_TYPES = {"guidance": float, "skip_weight": float, "steps": int, "scheduler": str, "seed": int, "num_samples": int,
          "strength": float, "colour_match": bool}


class Settings:
    """Typed access to the GUI's ``QSettings``."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Settings":
        """Settings kept in an INI file of one's own (tests, scripts)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def sync(self) -> None:
        self.q.sync()

    # ------------------------------------------------------------------ helpers
    def _get(self, key: str, default, kind=str):
        value = self.q.value(key, None)
        if value is None:
            return default
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        """Recent images, newest first; those that no longer exist are left out."""
        value = self.q.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [p for p in (value or []) if isinstance(p, str) and Path(p).is_file()][:MAX_RECENT]

    def add_recent(self, path: str | os.PathLike) -> list[str]:
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent_files() if p != path]
        self.q.setValue("recent", items[:MAX_RECENT])
        return items[:MAX_RECENT]

    def clear_recent(self) -> None:
        self.q.setValue("recent", [])

    # ------------------------------------------------------------------ generation
    @property
    def model(self) -> str | None:
        return self._get("model", None)

    @model.setter
    def model(self, key: str) -> None:
        self.q.setValue("model", key)

    def generation(self, model: str) -> dict:
        """The remembered fields for ``model`` (only those stored)."""
        out = {}
        for name in GENERATION_FIELDS:
            v = self._get(f"generation/{model}/{name}", None, _TYPES[name])
            if v is not None:
                out[name] = v
        return out

    def set_generation(self, model: str, values: dict) -> None:
        for name in GENERATION_FIELDS:
            if values.get(name) is not None:
                self.q.setValue(f"generation/{model}/{name}", values[name])

    def forget_generation(self, model: str) -> None:
        self.q.remove(f"generation/{model}")

    # ------------------------------------------------------------------ input
    @property
    def foreground_ratio(self) -> float | None:
        return self._get("input/foreground_ratio", None, float)

    @foreground_ratio.setter
    def foreground_ratio(self, value: float) -> None:
        self.q.setValue("input/foreground_ratio", float(value))

    @property
    def remove_background(self) -> bool:
        return self._get("input/remove_background", True, bool)

    @remove_background.setter
    def remove_background(self, value: bool) -> None:
        self.q.setValue("input/remove_background", bool(value))

    # ------------------------------------------------------------------ view
    @property
    def background(self) -> str:
        return self._get("view/background", "#ffffff")

    @background.setter
    def background(self, value: str) -> None:
        self.q.setValue("view/background", value)

    @property
    def mode(self) -> str:
        mode = self._get("view/mode", "rgb")
        return mode if mode in ("rgb", "depth", "alpha") else "rgb"

    @mode.setter
    def mode(self, value: str) -> None:
        self.q.setValue("view/mode", value)

    @property
    def heatmap(self) -> bool:
        return self._get("view/heatmap", True, bool)

    @heatmap.setter
    def heatmap(self, value: bool) -> None:
        self.q.setValue("view/heatmap", bool(value))

    @property
    def order_tiles(self) -> bool:
        return self._get("view/order_tiles", False, bool)

    @order_tiles.setter
    def order_tiles(self, value: bool) -> None:
        self.q.setValue("view/order_tiles", bool(value))

    @property
    def generated_views(self) -> bool:
        return self._get("view/generated_views", True, bool)

    @generated_views.setter
    def generated_views(self, value: bool) -> None:
        self.q.setValue("view/generated_views", bool(value))

    # ------------------------------------------------------------------ undo
    @property
    def undo_limit_mb(self) -> float:
        """MB of samples the undo history may keep beyond the gallery (default 48; at least 0)."""
        return max(0.0, self._get("undo/limit_mb", 48.0, float))

    @undo_limit_mb.setter
    def undo_limit_mb(self, value: float) -> None:
        self.q.setValue("undo/limit_mb", float(value))

    # ------------------------------------------------------------------ run history
    @property
    def keep_runs(self) -> int:
        """How many runs the history keeps, newest first (default 100; 0 keeps all)."""
        return max(0, self._get("history/keep_runs", 100, int))

    @keep_runs.setter
    def keep_runs(self, value: int) -> None:
        self.q.setValue("history/keep_runs", int(value))

    # ------------------------------------------------------------------ demo mode
    @property
    def demo_attract_after_s(self) -> float:
        """Idle seconds in demo mode before the attract loop starts (default 30; at least 1)."""
        return max(1.0, self._get("demo/attract_after_s", 30.0, float))

    @demo_attract_after_s.setter
    def demo_attract_after_s(self, value: float) -> None:
        self.q.setValue("demo/attract_after_s", float(value))

    @property
    def demo_cycle_s(self) -> float:
        """Seconds each example is shown in the attract loop (default 12; at least 1)."""
        return max(1.0, self._get("demo/cycle_s", 12.0, float))

    @demo_cycle_s.setter
    def demo_cycle_s(self, value: float) -> None:
        self.q.setValue("demo/cycle_s", float(value))

    @property
    def demo_watchdog_s(self) -> float:
        """Seconds the model worker may go without a sign of life before demo mode restarts it (default 120)."""
        return max(1.0, self._get("demo/watchdog_s", 120.0, float))

    @demo_watchdog_s.setter
    def demo_watchdog_s(self, value: float) -> None:
        self.q.setValue("demo/watchdog_s", float(value))

    @property
    def demo_keep_visitors(self) -> bool:
        """Keep the visitors' runs in the run history when the demo ends (default False: removed)."""
        return self._get("demo/keep_visitors", False, bool)

    @demo_keep_visitors.setter
    def demo_keep_visitors(self, value: bool) -> None:
        self.q.setValue("demo/keep_visitors", bool(value))

    # ------------------------------------------------------------------ folders and window
    # ------------------------------------------------------------------ export dialogs
    def export_options(self, dialog: str, defaults: dict) -> dict:
        """What the export dialog ``dialog`` ("turntable", "screenshot") was last used with:
        ``defaults`` with the stored values in their place (each read as its default's type)."""
        return {k: self._get(f"{dialog}/{k}", v, type(v)) for k, v in defaults.items()}

    def set_export_options(self, dialog: str, values: dict) -> None:
        for k, v in values.items():
            self.q.setValue(f"{dialog}/{k}", v)

    def folder(self, which: str) -> str:
        d = self._get(f"dirs/{which}", "")
        return d if d and Path(d).is_dir() else str(Path.home())

    def set_folder(self, which: str, path: str | os.PathLike) -> None:
        p = Path(path)
        self.q.setValue(f"dirs/{which}", str(p if p.is_dir() else p.parent))

    def window(self) -> tuple[QByteArray | None, QByteArray | None]:
        return self.q.value("window/geometry", None), self.q.value("window/state", None)

    def set_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)
