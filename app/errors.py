"""Errors as the user sees them: a title, what happened, what to do; and the last-resort hook.

:func:`describe` turns any exception into a :class:`UserMessage` (expected errors — a bad image, a
missing model, out of GPU memory — get a plain explanation and advice; anything else is an internal
error with its details). :func:`install_excepthook` routes uncaught exceptions (UI thread, Python
threads) to the log file and an error dialog instead of a traceback in the terminal.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("splatgen.app")


@dataclass(frozen=True)
class UserMessage:
    title: str
    text: str          # what happened, one or two sentences
    hint: str = ""     # what to do
    details: str = ""  # traceback, for "Show details"
    internal: bool = False

    def one_line(self) -> str:
        return f"{self.text} {self.hint}".strip()


def _is_oom(exc: BaseException) -> bool:
    oom = getattr(__import__("torch"), "OutOfMemoryError", None) if "torch" in sys.modules else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def describe(exc: BaseException, what: str = "") -> UserMessage:
    """A user-facing message for ``exc`` raised while doing ``what`` (e.g. "Generating")."""
    from splatgen.core.errors import ImageError, SplatgenError

    try:
        from splatgen.core.generator import ModelError, SettingsError
    except Exception:  # noqa: BLE001
        ModelError = SettingsError = ()  # type: ignore[assignment]
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    prefix = f"{what} failed" if what else "Failed"
    from .worker import WorkerRestarted

    if isinstance(exc, WorkerRestarted):
        return UserMessage("The model stopped answering", f"{prefix}: {first}; the model worker was restarted.",
                           "Try again; if it keeps happening, use fewer steps or samples.")
    if isinstance(exc, ImageError):
        return UserMessage("Cannot use this image", first,
                           "Open a photo of one object (PNG, JPEG, WebP…); an RGBA PNG with a transparent "
                           "background works best.")
    if ModelError and isinstance(exc, ModelError):
        return UserMessage("Model missing or damaged", first,
                           "Reinstall with scripts/install.sh (it restores assets/models), or pick another "
                           "model in the Model box.")
    if SettingsError and isinstance(exc, SettingsError):
        return UserMessage("Setting out of range", first, "Change the value in the controls and try again.")
    if _is_oom(exc):
        gpu = "GPU" if "cuda" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError" else "memory"
        return UserMessage(f"Out of {gpu} memory", f"{prefix}: the machine ran out of {gpu} memory.",
                           "Generate fewer samples at once, close other programs using the GPU, or lower the "
                           "export size. Samples already in the gallery are kept.")
    if isinstance(exc, SplatgenError):
        return UserMessage(f"{what or 'Operation'} failed", first)
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return UserMessage(f"{what or 'Operation'} failed", f"{exc.filename or ''}: {exc.strerror or first}".strip(": "),
                           "Check the file name and that you may read / write there.")
    if isinstance(exc, OSError):
        return UserMessage(f"{what or 'Operation'} failed", first, "Check the file name, the disk space and permissions.")
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    where = f"the log ({log_path()}) and Show Details have" if log_path() else "Show Details has"
    return UserMessage("Internal error", f"{prefix}: {type(exc).__name__}: {first}",
                       f"This is a bug in splatgen; {where} the details. Samples in the gallery are kept.",
                       details, internal=True)


# ---------------------------------------------------------------------- logging
_log_path: Path | None = None


def log_path() -> Path | None:
    return _log_path


def setup_logging(path: Path | None = None) -> Path | None:
    """Log to ``path`` (default: ``<user cache>/splatgen/splatgen-gui.log``), rotated at 1 MB."""
    global _log_path
    from logging.handlers import RotatingFileHandler

    if path is None:
        from PyQt6.QtCore import QStandardPaths

        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericCacheLocation) or "."
        path = Path(base) / "splatgen" / "splatgen-gui.log"
    root = logging.getLogger("splatgen")
    root.setLevel(logging.INFO)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1 << 20, backupCount=2, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s: %(message)s"))
    root.addHandler(handler)
    _log_path = path
    return path


# ---------------------------------------------------------------------- last resort
_dialog_open = False
_shown: list[UserMessage] = []   # every message shown by the hook (tests read it)


def show_error(message: UserMessage, parent=None, *, modal: bool = False) -> None:
    """An error dialog (non-blocking unless ``modal``); falls back to one line on stderr."""
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QApplication, QMessageBox

    _shown.append(message)
    if QApplication.instance() is None:
        print(f"splatgen-gui: {message.one_line()}", file=sys.stderr)
        return
    box = QMessageBox(QMessageBox.Icon.Critical if message.internal else QMessageBox.Icon.Warning,
                      message.title, message.text, QMessageBox.StandardButton.Ok, parent)
    if message.hint:
        box.setInformativeText(message.hint)
    if message.details:
        box.setDetailedText(message.details)
    box.setObjectName("errorDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)   # the text quotes file names: never read as HTML
    if modal:
        box.exec()
    else:
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()


def install_excepthook(parent_getter=lambda: None) -> None:
    """Uncaught exceptions → the log + an error dialog (at most one open at a time), never a
    traceback on the terminal. Python threads' uncaught exceptions come to the UI thread first."""
    from PyQt6.QtCore import QObject, pyqtSignal

    class _Relay(QObject):
        raised = pyqtSignal(object)

    relay = _Relay()
    install_excepthook._relay = relay  # keep it alive

    def handle(exc: BaseException) -> None:
        global _dialog_open
        msg = describe(exc)
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        if _dialog_open:
            return
        _dialog_open = True
        try:
            show_error(msg, parent_getter())
        finally:
            _dialog_open = False

    relay.raised.connect(handle)

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            from PyQt6.QtWidgets import QApplication

            app = QApplication.instance()
            if app is not None:
                app.quit()
            return
        if exc.__traceback__ is None:
            exc = exc.with_traceback(tb)
        if threading.current_thread() is threading.main_thread():
            handle(exc)
        else:
            relay.raised.emit(exc)

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
