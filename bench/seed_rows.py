"""The rows `bench.seed` writes: one Run and its TaskResult at a time, as a worker leaves them,
from a fixed random seed (the same N gives the same data)."""

from __future__ import annotations

import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .seed_mix import (
    ACTIVE_IF_OLDER,
    ACTIVE_IF_RECENT,
    DAY,
    FINAL_MIX,
    JOBS,
    RECENT_ACTIVE_MIX,
    RECENT_SECONDS,
    SEED,
    SPAN_DAYS,
    TOKENS,
    USERS,
    WORKERS,
    JobMix,
    pick,
)

RUN_COLUMNS = (
    "id", "task_id", "job_name", "state", "args", "params", "source", "actor_label",
    "schedule_name", "queue", "priority", "eta", "unique_key", "worker", "queued_at",
    "started_at", "finished_at", "heartbeat_at", "retries", "attempts", "requeues",
    "progress_done", "progress_total", "progress_message", "progress_at", "progress_writes",
    "log", "error", "cancel_requested_at", "cancel_requested_by", "cancel_terminate", "artifact",
    "actor_user_id", "retry_of_id", "root_id",
)  # fmt: skip
RESULT_COLUMNS = (
    "task_id", "periodic_task_name", "task_name", "task_args", "task_kwargs", "status",
    "worker", "content_type", "content_encoding", "result", "date_created", "date_started",
    "date_done", "traceback", "meta",
)  # fmt: skip
# Columns whose text may hold a tab, newline or backslash: escaped for COPY.
RUN_FREE_TEXT = frozenset(RUN_COLUMNS.index(c) for c in ("params", "error", "progress_message"))
RESULT_FREE_TEXT = frozenset(
    RESULT_COLUMNS.index(c) for c in ("task_kwargs", "result", "traceback")
)


@dataclass
class Seeded:
    """What the measuring side needs to know about the data."""

    rows: int
    newest: datetime
    users: dict[str, int] = field(default_factory=dict)


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Generator:
    """Rows in order of `queued_at` (ids increase with time, as in a real ledger).

    `timestamp` turns a datetime into what the database reads (PostgreSQL: ISO 8601 with
    offset; SQLite: naive UTC, as Django stores it)."""

    def __init__(
        self,
        rows: int,
        *,
        now: datetime,
        first_id: int,
        users: dict[str, int],
        timestamp: Callable[[datetime], str],
    ) -> None:
        self.rows = rows
        self.now = now.timestamp()
        self.first_id = first_id
        self.users = users
        self.timestamp = timestamp
        self.rng = random.Random(SEED)  # noqa: S311 - test data, not cryptography
        self._failed: deque[tuple[int, int]] = deque(maxlen=2000)  # (id, root id)

    def __iter__(self) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        rng = self.rng
        n = self.rows
        start = self.now - SPAN_DAYS * DAY
        times = sorted(start + rng.random() * SPAN_DAYS * DAY for _ in range(n - 1))
        times.append(self.now)
        weights = [job.weight for job in JOBS]
        jobs = rng.choices(JOBS, weights, k=n)
        finals = rng.choices([s for s, _ in FINAL_MIX], [w for _, w in FINAL_MIX], k=n)
        for i in range(n):
            yield self.row(self.first_id + i, times[i], jobs[i], finals[i])

    def row(
        self, pk: int, queued: float, job: JobMix, final: str
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        rng = self.rng
        ts = self.timestamp
        age = self.now - queued
        active = rng.random() < (ACTIVE_IF_RECENT if age < RECENT_SECONDS else ACTIVE_IF_OLDER)
        if active:
            state = pick(rng, RECENT_ACTIVE_MIX) if age < RECENT_SECONDS else "PENDING"
        else:
            state = final
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        params = job.params(rng, self.now)
        source = pick(rng, job.sources) if len(job.sources) > 1 else job.sources[0][0]
        retry_of: int | None = None
        root: int | None = None
        if source == "retry":
            if self._failed:
                retry_of, root = self._failed.pop()
            else:
                source = "form"
        schedule = job.schedule if source == "schedule" else ""
        actor_user: int | None = None
        if source in ("form", "retry"):
            label = pick(rng, USERS)
            actor_user = self.users.get(label)
        elif source == "api":
            label = pick(rng, TOKENS)
        elif source == "schedule":
            label = schedule
        else:
            label = "code"

        worker = rng.choice(WORKERS)
        started: float | None = queued + rng.uniform(0.02, 2.0)
        finished: float | None = None
        heartbeat: float | None = None
        low, high = job.seconds
        duration = rng.uniform(low, high)
        error = ""
        traceback: str | None = None
        result: Any = None
        status = state
        cancelled_at: float | None = None
        cancelled_by = ""
        attempts = 1
        done: int | None = None
        total: int | None = None
        message = ""
        progress_at: float | None = None
        writes = 0
        if state == "PENDING":
            started = None
            worker = ""
            attempts = 0
        elif state in ("STARTED", "PROGRESS"):
            assert started is not None
            started = min(started, self.now - 1)
            heartbeat = max(started, self.now - rng.uniform(0, 10))
            if state == "PROGRESS":
                total = rng.choice([100, 500, 1000, 10_000])
                done = rng.randrange(1, total)
                message = f"Processed {done} of {total}"
                progress_at = heartbeat
                writes = rng.randrange(1, 200)
        else:
            assert started is not None
            finished = started + duration
            heartbeat = finished
            if state == "SUCCESS":
                result = job.results(rng)
            elif state == "FAILURE":
                kind, text = rng.choice(job.errors or (("RuntimeError", "failed"),))
                error = f"{kind}: {text}"
                traceback = (
                    "Traceback (most recent call last):\n"
                    f'  File "/app/jobs/{job.name.split(".")[0]}.py", line 42, in run\n'
                    f"{kind}: {text}\n"
                )
                result = {"exc_type": kind, "exc_message": [text], "exc_module": "builtins"}
            elif state == "REVOKED":
                who = pick(rng, USERS)
                cancelled_at = started - 0.01 if rng.random() < 0.5 else started + duration
                if cancelled_at < started:
                    started = None
                    worker = ""
                    attempts = 0
                    finished = cancelled_at + 0.5
                    heartbeat = None
                error = f"Cancelled by {who}."
                cancelled_by = who
                result = {"exc_type": "TaskRevokedError", "exc_message": [error],
                          "exc_module": "celery.exceptions"}  # fmt: skip
            else:  # LOST: the reaper's verdict a minute after the last heartbeat
                heartbeat = started + duration / 2
                finished = heartbeat + 60 + rng.uniform(0, 30)
                error = f"Worker lost: no heartbeat for over 60 s from worker {worker}."
                status = "FAILURE"
                result = {"exc_type": "WorkerLostError", "exc_message": [error],
                          "exc_module": "billiard.exceptions"}  # fmt: skip
            if job.progress and state != "REVOKED" and started is not None:
                total = rng.choice([100, 500, 1000, 10_000])
                done = total if state == "SUCCESS" else rng.randrange(total)
                message = f"Processed {done} of {total}"
                progress_at = finished if state == "SUCCESS" else heartbeat
                writes = rng.randrange(1, 200)
            if state in ("FAILURE", "LOST"):
                self._failed.append((pk, root or pk))

        params_json = json.dumps(params)
        run = (
            pk, task_id, job.name, state, "[]", params_json, source, label,
            schedule, job.queue, None, None, None, worker, ts(_ts(queued)),
            _opt(ts, started), _opt(ts, finished), _opt(ts, heartbeat), 0, attempts, 0,
            done, total, message, _opt(ts, progress_at), writes,
            "[]", error, _opt(ts, cancelled_at), cancelled_by, False, "",
            actor_user, retry_of, root,
        )  # fmt: skip
        last = finished or progress_at or heartbeat or started or queued
        task_result = (
            task_id, schedule or None, job.name, "[]", params_json, status,
            worker or None, "application/json", "utf-8", json.dumps(result),
            ts(_ts(started or queued)), _opt(ts, started), ts(_ts(last)), traceback,
            '{"children": []}',
        )  # fmt: skip
        return run, task_result


def _opt(ts: Callable[[datetime], str], seconds: float | None) -> str | None:
    return None if seconds is None else ts(_ts(seconds))
