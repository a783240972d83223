"""The only module that talks to Celery's control channel and the broker for inspection:
online workers, queue depths, revoke broadcasts. It returns plain dataclasses and never raises
for an unreachable broker or silent workers: the pages show what was found and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celery import current_app

from ..jobs.policies import QUEUES
from . import presence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveTask:
    task_id: str
    name: str
    started_at: datetime | None


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    pool: str
    concurrency: int | None
    uptime_seconds: int | None
    processed: int
    queues: tuple[str, ...]
    active: tuple[ActiveTask, ...]


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int


@dataclass
class BrokerSnapshot:
    workers: list[WorkerInfo] = field(default_factory=list)
    queues: list[QueueDepth] = field(default_factory=list)
    error: str = ""

    @property
    def broker_up(self) -> bool:
        return not self.error


def snapshot(timeout: float = 1.0) -> BrokerSnapshot:
    """Workers that answer within `timeout` seconds, and the depth of each known queue."""
    result = BrokerSnapshot()
    try:
        result.queues = queue_depths()
        result.workers = online_workers(timeout)
    except Exception as error:  # the broker is down or refuses us: say so, do not fail
        logger.warning("Broker inspection failed: %s", error)
        result.error = f"The broker is unreachable: {error}"
    return result


def online_workers(timeout: float) -> list[WorkerInfo]:
    """Waits for as many answers as workers announced themselves (tasks_app.worker.presence;
    a worker does as soon as it is ready), at most `timeout`: none announced, none asked."""
    expected = presence.expected_answers()
    if expected == 0:
        return []
    inspect = current_app.control.inspect(timeout=timeout, limit=expected)
    stats: dict[str, Any] = inspect.stats() or {}
    if not stats:
        return []
    # Now that we know who answers, the next questions return as soon as all have replied.
    known = current_app.control.inspect(timeout=timeout, limit=len(stats))
    active: dict[str, Any] = known.active() or {}
    queues: dict[str, Any] = known.active_queues() or {}
    return sorted(
        (_worker(name, stats[name], active.get(name, []), queues.get(name, [])) for name in stats),
        key=lambda worker: worker.name,
    )


def _worker(name: str, stats: dict[str, Any], active: list[Any], queues: list[Any]) -> WorkerInfo:
    pool = stats.get("pool") or {}
    return WorkerInfo(
        name=name,
        # "celery.concurrency.prefork:TaskPool" -> "prefork"
        pool=str(pool.get("implementation", "")).split(":")[0].rsplit(".", 1)[-1] or "?",
        concurrency=pool.get("max-concurrency"),
        uptime_seconds=stats.get("uptime"),
        processed=sum((stats.get("total") or {}).values()),
        queues=tuple(sorted(str(q.get("name")) for q in queues if isinstance(q, dict))),
        active=tuple(
            ActiveTask(
                task_id=str(task.get("id")),
                name=str(task.get("name") or task.get("type") or ""),
                started_at=_timestamp(task.get("time_start")),
            )
            for task in active
            if isinstance(task, dict)
        ),
    )


def queue_depths(names: tuple[str, ...] = QUEUES) -> list[QueueDepth]:
    """Messages waiting in each queue (all priority levels), as the broker reports them."""
    with current_app.connection_for_read() as connection:
        # One attempt: a broker that is down is reported at once, not after kombu's retries
        # (about 6 s), which would hold a web worker on every poll of the workers panel.
        connection.ensure_connection(max_retries=0)
        channel: Any = connection.default_channel  # kombu's virtual channel (queue_declare)
        depths = []
        for name in names:
            # Not passive: on Redis an empty queue does not exist (a passive declare says 404);
            # declaring one of our own queues is harmless and answers with its size.
            _, messages, _ = channel.queue_declare(queue=name)
            depths.append(QueueDepth(name, int(messages)))
    return depths


def revoke(task_id: str, *, terminate: bool) -> None:
    """Tell online workers at once; the database's cancel flag is what holds if none listens."""
    try:
        current_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    except Exception as error:  # the broker may be down: the stored request still holds
        logger.warning("Could not broadcast the revoke of %s: %s", task_id, error)


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
