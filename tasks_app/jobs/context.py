"""JobContext: what a running job uses to report progress, log, count and see cancellation.

`progress()` is called in hot loops, so it only touches memory; the database is written at most
every `write_interval` seconds (about two writes a second by default) and once more when the job
ends, so the last value is always stored. On a worker those interval writes are handed to the
heartbeat thread, so the job computes on while the database commits. Cancellation requested by
an operator surfaces as `JobCancelled` at the next progress point.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import JobCancelled

logger = logging.getLogger("tasks_app.jobs")

LOG_BUFFER_LIMIT = 200


@dataclass
class ProgressSnapshot:
    done: int | None = None
    total: int | None = None
    message: str = ""


class ProgressStore:
    """Where a context writes. The worker's store writes the run ledger; tests record calls."""

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        """Persist; return True when cancellation was requested."""
        raise NotImplementedError

    def save_artifact(self, filename: str, content: bytes) -> str:
        """Keep a file as the run's downloadable artifact; returns its storage name."""
        raise NotImplementedError


@dataclass
class RecordingStore(ProgressStore):
    """Keeps every write; `cancel_after_writes` simulates an operator cancelling the run."""

    writes: list[ProgressSnapshot] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    cancel_after_writes: int | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def save_artifact(self, filename: str, content: bytes) -> str:
        self.artifacts[filename] = content
        return filename

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        self.writes.append(ProgressSnapshot(snapshot.done, snapshot.total, snapshot.message))
        self.log_lines.extend(log_lines)
        return self.cancel_after_writes is not None and len(self.writes) >= self.cancel_after_writes


@dataclass(slots=True)
class JobContext:
    task_id: str
    job_name: str
    store: ProgressStore
    write_interval: float = 0.5
    clock: Callable[[], float] = time.monotonic
    counters: Counter[str] = field(default_factory=Counter)
    _snapshot: ProgressSnapshot = field(default_factory=ProgressSnapshot)
    # The latest report, not yet written (`_done` None: nothing new). Three fields, not a
    # tuple: a hot loop's call then builds nothing (a fifth cheaper per call).
    _done: int | None = None
    _total: int | None = None
    _message: str = ""
    _dirty: bool = False
    _last_write: float = float("-inf")
    _next_write: float = float("-inf")
    # On a worker the heartbeat thread raises `_due` every write interval, so a hot loop pays
    # one attribute check per call, not a clock read. Elsewhere (tests, direct calls) the
    # context times itself.
    self_timed: bool = True
    _due: bool = True
    # What `progress()` checks, and nothing else: set while a write is due, always for a
    # self-timed context, and once cancelled.
    _look: bool = True
    _log_lines: list[str] = field(default_factory=list)
    _cancelled: bool = False
    # Set while the heartbeat thread writes for this context (`Heartbeat.running`): a write due
    # at a progress point is taken here and handed over by calling this (it wakes that thread,
    # which calls `write_handed_over`). None: the write happens in the caller's thread.
    hand_over: Callable[[], None] | None = None
    # The write taken and not yet done (`_snapshot` holds its values) and its log lines.
    _handed: bool = False
    _handed_lines: list[str] = field(default_factory=list)
    # `_state_lock` guards the taken write between the two threads; `_write_lock` makes writes
    # one at a time, in the order taken, so the last value stored is always the last reported.
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- reporting -------------------------------------------------------------------------
    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Report `done` of `total` units; cheap enough for every iteration of a loop (three
        fields and one flag on a worker; a self-timed context also reads its clock). The write
        happens at most every interval."""
        self._done = done
        self._total = total
        self._message = message
        if self._look:
            self.check_cancelled()

    def log(self, message: str) -> None:
        """Keep a line on the run (the most recent lines are kept) and in the worker's log."""
        logger.info("[%s] %s", self.task_id, message)
        self._log_lines.append(str(message))
        if len(self._log_lines) > LOG_BUFFER_LIMIT:
            del self._log_lines[:-LOG_BUFFER_LIMIT]
        self._dirty = True

    def count(self, name: str, n: int = 1) -> None:
        """Count processed/failed/skipped (or any) items; the totals end up in the result."""
        self.counters[name] += n

    def save_artifact(self, filename: str, content: bytes) -> str:
        """Keep `content` as the run's downloadable artifact (e.g. an export)."""
        return self.store.save_artifact(filename, content)

    def check_cancelled(self) -> None:
        """A progress point without progress: writes if a write is due, then raises
        JobCancelled if the run was cancelled."""
        if self._due or (self.self_timed and self.clock() >= self._next_write):
            self._write()
        if self._cancelled:
            raise JobCancelled(f"Run {self.task_id} was cancelled.")

    # --- called by the framework -------------------------------------------------------------
    def mark_due(self) -> None:
        """The heartbeat's tick (another thread): the next progress point writes, unless this
        context wrote less than an interval ago, so writes stay at most one per interval."""
        if self.clock() - self._last_write >= self.write_interval:
            self._due = True
            self._look = True

    def request_cancel(self) -> None:
        """The heartbeat saw a cancellation request: the next progress point raises."""
        self._cancelled = True
        self._look = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def flush(self) -> None:
        """Store the last progress value and any unwritten log lines, here and now (after a
        write in flight on the heartbeat thread, which it never races)."""
        if self._dirty or self._done is not None:
            self._take()
        self.write_handed_over()

    def _write(self) -> None:
        self._take()
        if self.hand_over is not None:
            self.hand_over()
        else:
            self.write_handed_over()

    def _take(self) -> None:
        """Make the latest report and the buffered log lines the next write (merged with one
        taken earlier and not written yet), and restart the interval."""
        with self._state_lock:
            if self._done is not None:
                snapshot = self._snapshot
                snapshot.done, snapshot.total = self._done, self._total
                snapshot.message = self._message
                self._done = None
            if self._log_lines:
                self._handed_lines += self._log_lines
                del self._handed_lines[:-LOG_BUFFER_LIMIT]  # writes failing: still bounded
                self._log_lines = []
            self._handed = True
        self._dirty = False
        self._due = False
        self._look = self.self_timed or self._cancelled
        self._last_write = self.clock()
        self._next_write = self._last_write + self.write_interval

    def write_handed_over(self) -> None:
        """Write what `_take` took, if it is not written yet. On a worker the heartbeat thread
        calls this; a failed write is kept for the next one (or the flush)."""
        with self._write_lock:
            with self._state_lock:
                if not self._handed:
                    return
                taken = self._snapshot
                snapshot = ProgressSnapshot(taken.done, taken.total, taken.message)
                lines, self._handed_lines = self._handed_lines, []
                self._handed = False
            try:
                cancelled = self.store.write(snapshot, lines)
            except BaseException:
                with self._state_lock:
                    self._handed_lines[:0] = lines
                    self._handed = True
                raise
        if cancelled:
            self.request_cancel()

    def result_with_counters(self, value: Any) -> Any:
        """Attach the counters to the job's return value, if the job counted anything."""
        if not self.counters:
            return value
        counters = dict(self.counters)
        if isinstance(value, dict):
            return {**value, "counters": counters}
        return {"value": value, "counters": counters}
