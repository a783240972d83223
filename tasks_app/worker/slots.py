"""Per-job concurrency limits: at most N runs of a job execute at once, across all workers.

A worker's main process takes a *slot lease* for a run of a limited job before handing it to the
pool (`tasks_app.worker.request`): one sorted set per job in the broker's Redis, member the task
id, score the lease's expiry (Redis's own clock, so workers' clocks do not matter). One Lua
script drops expired leases and adds the run's only while fewer than N are live, so two workers
can never both take the last slot. The main process renews the leases of the runs it holds
(a thread, every third of a lease) and drops each when its run ends; a worker that dies without
a word stops renewing, and its slots free themselves when the leases expire.

A run that finds no slot is not started: its message is published again unchanged (same task
id, arguments and headers) with a short countdown, the run is marked as waiting for a slot, and
only then is the delivery acknowledged. A crash in between leaves two copies of the message,
never none; the copies cannot both run, because a copy whose task id already holds a lease
waits, and a copy that finds its run final is refused at start (and dropped here).

Jobs without a limit pay a dictionary lookup per delivery: the limits (the code's
`@job(concurrency=N)` overridden by JobLimit rows) are cached per process and read again every
settings.TASKDECK_JOB_LIMITS_REFRESH_SECONDS (5 s by default), so an operator's change applies
within that time. The overrides are read from a copy in Redis that every change rewrites, so a
worker's main process never queries the database for them (unless Redis lost the copy: then it
reads the rows and writes it again).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from celery import current_app
from django.conf import settings
from redis.commands.core import Script

from ..jobs.registry import all_jobs
from ..models import JobLimit
from .db import drop_if_broken
from .presence import client

logger = logging.getLogger(__name__)

KEY_PREFIX = "taskdeck:slots:"
# The operators' overrides as workers read them (a copy of the JobLimit rows).
OVERRIDES_KEY = "taskdeck:job-limits"
OVERRIDES_SYNCED_KEY = "taskdeck:job-limits:synced"
WAITING_PREFIX = "taskdeck:slot-waits:"
# A waiting run counts as waiting this long after it was last offered a slot (it is offered
# again every few seconds, unless the queue is backed up); one that starts or is dropped stops
# counting at once.
WAITING_WINDOW_SECONDS = 3600.0
# A deferred run is offered again after this long, doubling up to WAIT_MAX_SECONDS (jittered).
WAIT_BASE_SECONDS = 0.25
WAIT_MAX_SECONDS = 2.0
# The header counting how often the message was deferred (for the backoff).
WAITS_HEADER = "taskdeck_slot_waits"

# KEYS[1] the job's slots, KEYS[2] its waiting runs; ARGV: task id, limit, lease seconds, how
# long a waiting run counts without being offered again. Returns 1 taken, 0 full, -1 already
# held by this task id (a duplicate delivery). A run that does not get a slot is noted as
# waiting (for the counts pages show, without reading the run ledger); one that does, not.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
local answer = 1
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  answer = -1
elseif redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  answer = 0
end
if answer == 1 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4])))
end
return answer
"""
# KEYS[1] the job's set; ARGV: lease seconds, task ids. Extends the leases still present (XX:
# a lease dropped meanwhile stays dropped).
_RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 60)
return #ARGV - 1
"""
# KEYS[1] the job's slots, KEYS[2] its waiting runs; ARGV[1] the waiting window: how many
# leases are live and how many runs wait.
_COUNTS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
return {
  redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'),
  redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[1]), '+inf'),
}
"""


def lease_seconds() -> float:
    """How long a lease lives without renewal: how long a dead worker's slots stay taken."""
    return float(getattr(settings, "TASKDECK_SLOT_LEASE_SECONDS", 30))


def key(job_name: str) -> str:
    return f"{KEY_PREFIX}{job_name}"


def waiting_key(job_name: str) -> str:
    return f"{WAITING_PREFIX}{job_name}"


def _script(source: str) -> Script:
    return client().register_script(source)


class Limits:
    """Each limited job's effective limit, cached per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, int] = {}
        self._read_at: float | None = None

    def limit_for(self, job_name: str) -> int | None:
        """The job's limit (None: unlimited); read again at most every
        TASKDECK_JOB_LIMITS_REFRESH_SECONDS."""
        read_at = self._read_at
        if (
            read_at is None
            or time.monotonic() - read_at >= settings.TASKDECK_JOB_LIMITS_REFRESH_SECONDS
        ):
            return self.read().get(job_name)
        return self._limits.get(job_name)

    def read(self) -> dict[str, int]:
        """Read the limits now: the operators' overrides from their copy in Redis (one round
        trip; the database only if Redis lost it). On an error the last ones stay in force (at
        first, the code's) and the next delivery tries again."""
        limits = {spec.name: spec.concurrency for spec in all_jobs() if spec.concurrency}
        try:
            overrides = read_overrides()
        except Exception:
            logger.exception("Could not read the job concurrency limits")
            drop_if_broken()
            limits = self._limits or limits
        else:
            for name, value in overrides.items():
                if value is None:
                    limits.pop(name, None)
                else:
                    limits[name] = value
        with self._lock:
            self._limits, self._read_at = limits, time.monotonic()
        return limits

    def forget(self) -> None:
        with self._lock:
            self._limits, self._read_at = {}, None


limits = Limits()


def publish_overrides() -> dict[str, int | None]:
    """Copy the operators' overrides (JobLimit rows, the source of truth) to Redis, where
    workers read them without a database query: after every change, and whenever Redis lost
    the copy. Replaced whole, in one MULTI, so a reader never sees half of it."""
    overrides = dict(JobLimit.objects.values_list("job_name", "concurrency"))
    pipe = client().pipeline(transaction=True)
    pipe.delete(OVERRIDES_KEY)
    if overrides:
        pipe.hset(
            OVERRIDES_KEY,
            mapping={
                name: "" if value is None else str(value) for name, value in overrides.items()
            },
        )
    pipe.set(OVERRIDES_SYNCED_KEY, "1")
    pipe.execute()
    return overrides


def invalidate_overrides() -> None:
    """Mark Redis's copy stale: the next reader rebuilds it from the rows."""
    client().delete(OVERRIDES_SYNCED_KEY)


def read_overrides() -> dict[str, int | None]:
    """The operators' overrides (None: limit lifted), from Redis's copy."""
    pipe = client().pipeline(transaction=False)
    pipe.exists(OVERRIDES_SYNCED_KEY)
    pipe.hgetall(OVERRIDES_KEY)
    synced, raw = pipe.execute()
    if not synced:
        return publish_overrides()
    return {name.decode(): int(value) if value else None for name, value in raw.items()}


class Acquired(Enum):
    TAKEN = "taken"
    FULL = "full"  # every slot is taken: wait
    HELD = "held"  # this task id holds a slot already (a duplicate delivery): wait


class Leases:
    """The slot leases this process holds, renewed by a thread while their runs execute."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Also run in a forked child: it holds nothing and has no thread."""
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}  # task id -> job name
        self._thread: threading.Thread | None = None

    def acquire(self, job_name: str, task_id: str, limit: int) -> Acquired:
        answer = int(
            _script(_ACQUIRE)(
                keys=[key(job_name), waiting_key(job_name)],
                args=[task_id, limit, lease_seconds(), WAITING_WINDOW_SECONDS],
            )
        )
        if answer == 0:
            return Acquired.FULL
        if answer < 0:
            return Acquired.HELD
        with self._lock:
            self._held[task_id] = job_name
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="taskdeck-slot-leases", daemon=True
                )
                self._thread.start()
        return Acquired.TAKEN

    def holds(self, task_id: str) -> bool:
        return task_id in self._held

    def release(self, task_id: str) -> None:
        """Free the run's slot (no-op if this process holds none for it). Forgotten first: if
        Redis does not answer, the lease is no longer renewed and expires by itself."""
        with self._lock:
            job_name = self._held.pop(task_id, None)
            if job_name is None:
                return
            try:
                client().zrem(key(job_name), task_id)
            except Exception:
                logger.exception("Could not free the slot of %s; it expires by itself", task_id)

    def renew(self) -> None:
        """Extend every lease held (one script call per job, one round trip)."""
        with self._lock:
            by_job: dict[str, list[str]] = {}
            for task_id, job_name in self._held.items():
                by_job.setdefault(job_name, []).append(task_id)
            if not by_job:
                return
            script = _script(_RENEW)
            pipe = client().pipeline(transaction=False)
            for job_name, task_ids in by_job.items():
                script(keys=[key(job_name)], args=[lease_seconds(), *task_ids], client=pipe)
            pipe.execute()

    def _loop(self) -> None:
        while True:
            time.sleep(lease_seconds() / 3)
            try:
                self.renew()
            except Exception:  # Redis hiccup: the next round tries again, well within a lease
                logger.exception("Could not renew slot leases")


leases = Leases()
os.register_at_fork(after_in_child=leases._reset)


def counts(job_names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """For each job: how many runs hold a slot now and how many wait for one (one round
    trip)."""
    names = list(job_names)
    if not names:
        return {}
    script = _script(_COUNTS)
    pipe = client().pipeline(transaction=False)
    for name in names:
        script(keys=[key(name), waiting_key(name)], args=[WAITING_WINDOW_SECONDS], client=pipe)
    return {
        name: (int(running), int(waiting))
        for name, (running, waiting) in zip(names, pipe.execute(), strict=True)
    }


def stop_waiting(job_name: str, task_id: str) -> None:
    """The run no longer waits: it starts without a limit (lifted meanwhile), or was dropped."""
    client().zrem(waiting_key(job_name), task_id)


def wait_delay(waits: int) -> float:
    """Seconds before a run deferred `waits` times before is offered again."""
    delay = min(WAIT_MAX_SECONDS, WAIT_BASE_SECONDS * 2 ** min(waits, 8))
    return float(delay * random.uniform(0.75, 1.25))  # noqa: S311 - jitter, not security


def republish(message: Any, delay: float) -> None:
    """Publish the delivery's message again, unchanged but for a countdown (Celery's `eta`
    header) and the deferral count: same body, task id, headers, queue and priority."""
    headers: dict[str, Any] = dict(message.headers or {})
    headers["eta"] = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
    headers[WAITS_HEADER] = waits_of(headers) + 1
    info: Mapping[str, Any] = message.delivery_info or {}
    properties: Mapping[str, Any] = message.properties or {}
    with current_app.producer_or_acquire() as producer:
        producer.publish(
            message.body,
            exchange=info.get("exchange") or "",
            routing_key=info.get("routing_key") or "",
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            priority=properties.get("priority"),
            correlation_id=properties.get("correlation_id"),
            reply_to=properties.get("reply_to"),
            retry=True,
        )


def waits_of(headers: Mapping[str, Any]) -> int:
    try:
        return int(headers.get(WAITS_HEADER) or 0)
    except (TypeError, ValueError):
        return 0
