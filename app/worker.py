"""Background work: one worker thread runs jobs one at a time; widgets only react to its signals.

The pattern of napari / superqt's thread workers: a :class:`Job` wraps a function that takes a
:class:`JobContext` (progress reports, partial results, the abort request) and returns a result.
:class:`Runner` (lives in the UI thread) queues jobs and hands them to :class:`Worker` (lives in a
``QThread``) one at a time; the worker's signals come back to the UI thread, where the job's
callbacks run. The UI thread never runs model code.

* ``Runner.submit(job, replace=True)`` drops queued (not yet started) jobs of the same ``kind``: only
  the newest request of a kind is worth doing (nerfview's "keep the newest camera" rule).
* ``Runner.cancel(kind)`` sets the running job's abort event (the generator checks it before every
  denoising step and raises :class:`~splatgen.core.generator.Cancelled`) and drops queued jobs of
  that kind.
* Several runners may exist (each with its own thread, e.g. model work and light I/O work).
* A job's exception never escapes: ``on_error(exc)`` gets it in the UI thread (the traceback is
  logged), and the next job starts.
* ``Runner.restart()`` gives up on a job that hangs: the worker thread is abandoned (asked to stop;
  whatever it reports later is ignored, and it ends when its job returns — Python cannot kill a
  thread), the job ends with :class:`WorkerRestarted` in ``on_error``, and a fresh thread runs the
  queue.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

log = logging.getLogger("splatgen.app")
_ids = itertools.count(1)


class JobCancelled(Exception):
    """Raised inside a job by :meth:`JobContext.check` once cancel was asked for."""


class WorkerRestarted(Exception):
    """The job's worker thread was given up on (:meth:`Runner.restart`): the job hung or took too long."""


class JobContext:
    """What a job's function gets (worker thread): report progress and partial results, honour abort."""

    def __init__(self, job: "Job", worker: "Worker"):
        self.job = job
        self._worker = worker
        self.cancel: threading.Event = job.cancel_event

    def progress(self, done: int, total: int, text: str = "") -> None:
        """``done`` of ``total`` units finished (e.g. denoising steps); ``text`` for a status line."""
        self._worker.progressed.emit(self.job, int(done), int(total), str(text))

    def partial(self, value: Any) -> None:
        """Hand a finished piece (e.g. one sample, from the generator's ``on_sample``) to the UI before the job ends."""
        self._worker.partial.emit(self.job, value)

    def check(self) -> None:
        """Raise :class:`JobCancelled` if cancel was asked for."""
        if self.cancel.is_set():
            raise JobCancelled()


@dataclass(eq=False)
class Job:
    """A unit of background work. Callbacks run in the UI thread."""

    kind: str
    fn: Callable[[JobContext], Any]
    description: str = ""
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_progress: Callable[[int, int, str], None] | None = None
    on_partial: Callable[[Any], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    on_finally: Callable[[], None] | None = None
    id: int = field(default_factory=lambda: next(_ids))
    cancel_event: threading.Event = field(default_factory=threading.Event)
    seconds: float = 0.0


class Worker(QObject):
    """Runs jobs in its thread; reports through signals (queued to the UI thread)."""

    started = pyqtSignal(object)
    progressed = pyqtSignal(object, int, int, str)
    partial = pyqtSignal(object, object)
    finished = pyqtSignal(object, object)          # job, result
    failed = pyqtSignal(object, object, str)       # job, exception, formatted traceback
    cancelled = pyqtSignal(object)

    @pyqtSlot(object)
    def run(self, job: Job) -> None:
        from splatgen.core.generator import Cancelled

        self.started.emit(job)
        t0 = time.perf_counter()
        try:
            if job.cancel_event.is_set():
                raise JobCancelled()
            result = job.fn(JobContext(job, self))
        except (JobCancelled, Cancelled):
            job.seconds = time.perf_counter() - t0
            self.cancelled.emit(job)
        except BaseException as exc:  # noqa: BLE001 - reported to the UI, never lost
            job.seconds = time.perf_counter() - t0
            self.failed.emit(job, exc, traceback.format_exc())
        else:
            job.seconds = time.perf_counter() - t0
            self.finished.emit(job, result)


class Runner(QObject):
    """UI-thread side: a queue of jobs, one worker thread, callbacks in the UI thread.

    Signals: ``busy_changed(bool)``; ``job_started(job)`` / ``job_ended(job)``; ``alive(job)``: the
    running job showed a sign of life (it started, reported progress or a partial result).
    """

    busy_changed = pyqtSignal(bool)
    job_started = pyqtSignal(object)
    job_ended = pyqtSignal(object)
    alive = pyqtSignal(object)
    _dispatch = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None, name: str = "splatgen-worker"):
        super().__init__(parent)
        self._name = name
        self._queue: list[Job] = []
        self.current: Job | None = None
        self.started_at: float | None = None       # time.monotonic() when the current job started
        self.restarts = 0
        self._closed = False
        self._abandoned: list[tuple[QThread, Worker]] = []
        self._dead: set[int] = set()                # ids of jobs whose reports are ignored
        self._start_thread()

    def _start_thread(self) -> None:
        self._thread = QThread()
        self._thread.setObjectName(self._name)
        self._worker = Worker()
        self._worker.moveToThread(self._thread)
        self._dispatch.connect(self._worker.run)
        self._worker.started.connect(self._on_started)
        self._worker.progressed.connect(self._on_progress)
        self._worker.partial.connect(self._on_partial)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()

    # ------------------------------------------------------------------ API
    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self._queue)

    def submit(self, job: Job, *, replace: bool = False) -> Job:
        """Queue ``job``; ``replace`` drops queued jobs of the same kind first."""
        if self._closed:
            return job
        if replace:
            self._queue = [j for j in self._queue if j.kind != job.kind]
        was_busy = self.busy
        self._queue.append(job)
        if self.current is None:
            self._next()
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def cancel(self, *kinds: str) -> bool:
        """Abort the running job (if of one of ``kinds``, or any when none given) and drop queued
        jobs of those kinds. Returns whether anything was cancelled."""
        hit = False
        keep = []
        for j in self._queue:
            if not kinds or j.kind in kinds:
                hit = True
                if j.on_cancelled:
                    _safe(j.on_cancelled)
                if j.on_finally:
                    _safe(j.on_finally)
            else:
                keep.append(j)
        self._queue = keep
        if self.current is not None and (not kinds or self.current.kind in kinds):
            self.current.cancel_event.set()
            hit = True
        if not self.busy:
            self.busy_changed.emit(False)
        return hit

    def is_running(self, *kinds: str) -> bool:
        """Whether a job of one of ``kinds`` is running or queued."""
        jobs = ([self.current] if self.current else []) + self._queue
        return any(j.kind in kinds for j in jobs)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Process events until no job is left (for scripts and tests)."""
        from PyQt6.QtCore import QCoreApplication

        end = time.monotonic() + timeout_s
        while self.busy and time.monotonic() < end:
            QCoreApplication.processEvents()
            time.sleep(0.005)
        return not self.busy

    def restart(self, reason: str = "the job did not finish in time") -> Job | None:
        """Abandon the worker thread and start a fresh one (module docstring). The running job ends
        with :class:`WorkerRestarted` (``reason``) in its ``on_error``; queued jobs run on the new
        thread. Returns the abandoned job (None if none was running)."""
        job, thread, worker = self.current, self._thread, self._worker
        self._dispatch.disconnect(worker.run)
        for sig in (worker.started, worker.progressed, worker.partial, worker.finished, worker.failed,
                    worker.cancelled):
            sig.disconnect()
        thread.quit()                                   # ends once the job in it returns
        self._abandoned.append((thread, worker))
        self._abandoned = [(t, w) for t, w in self._abandoned if not t.isFinished()]
        self.restarts += 1
        log.warning("restarting worker %s: %s", self._name, reason)
        self._start_thread()
        if job is not None:
            job.cancel_event.set()
            self._dead.add(job.id)
            self.current = None
            if job.on_error:
                _safe(job.on_error, WorkerRestarted(reason))
            self._end(job)
        else:
            self._next()
        return job

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel everything and stop the thread (waits for the running job to notice)."""
        self._closed = True
        self.cancel()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("worker thread did not stop within %d ms", timeout_ms)
        for thread, _ in self._abandoned:               # a hung job may still hold one: never wait long
            if not thread.wait(100):
                from PyQt6 import sip

                sip.transferto(thread, None)            # never destroyed while running (Qt would abort)

    # ------------------------------------------------------------------ plumbing
    def _next(self) -> None:
        if self.current is not None or not self._queue:
            return
        self.current = self._queue.pop(0)
        self._dispatch.emit(self.current)

    def _end(self, job: Job) -> None:
        if job.on_finally:
            _safe(job.on_finally)
        if self.current is job:
            self.current = None
            self.started_at = None
        self.job_ended.emit(job)
        self._next()
        if not self.busy:
            self.busy_changed.emit(False)

    def _on_started(self, job: Job) -> None:
        if job.id in self._dead:
            return
        self.started_at = time.monotonic()
        self.job_started.emit(job)
        self.alive.emit(job)

    def _on_progress(self, job: Job, done: int, total: int, text: str) -> None:
        if job.id in self._dead:
            return
        self.alive.emit(job)
        if job.on_progress and not job.cancel_event.is_set():
            _safe(job.on_progress, done, total, text)

    def _on_partial(self, job: Job, value) -> None:
        if job.id in self._dead:
            return
        self.alive.emit(job)
        if job.on_partial:   # pieces that are finished are kept even when cancel was asked for
            _safe(job.on_partial, value)

    def _on_finished(self, job: Job, result) -> None:
        if job.id in self._dead:
            return
        log.info("%s done in %.2f s", job.description or job.kind, job.seconds)
        if job.on_done:
            _safe(job.on_done, result)
        self._end(job)

    def _on_failed(self, job: Job, exc: BaseException, tb: str) -> None:
        if job.id in self._dead:
            return
        log.error("%s failed after %.2f s:\n%s", job.description or job.kind, job.seconds, tb)
        if job.on_error:
            _safe(job.on_error, exc)
        self._end(job)

    def _on_cancelled(self, job: Job) -> None:
        if job.id in self._dead:
            return
        log.info("%s cancelled after %.2f s", job.description or job.kind, job.seconds)
        if job.on_cancelled:
            _safe(job.on_cancelled)
        self._end(job)


def _safe(fn, *args) -> None:
    """Run a UI callback; an exception in it goes to sys.excepthook (the error dialog), not further."""
    import sys

    try:
        fn(*args)
    except Exception:  # noqa: BLE001
        sys.excepthook(*sys.exc_info())
