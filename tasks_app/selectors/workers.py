"""What the Workers & queues page and the API's stats show: the broker's answer, read-only,
and which queues operators paused (from the database, so shown even when the broker is down)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..jobs.policies import QUEUES
from ..models import QueuePause
from ..worker import broker
from ..worker.broker import BrokerSnapshot

logger = logging.getLogger(__name__)


def workers_snapshot(timeout: float = 1.0) -> BrokerSnapshot:
    """Online workers and queue depths, never raising for an unreachable broker."""
    return broker.snapshot(timeout=timeout)


@dataclass(frozen=True)
class QueueRow:
    """One queue: its depth and consumers (None when the broker could not say) and its pause."""

    name: str
    depth: int | None
    consumers: tuple[str, ...] | None
    pause: QueuePause | None

    @property
    def paused(self) -> bool:
        return self.pause is not None


def queue_rows(snapshot: BrokerSnapshot) -> list[QueueRow]:
    """Taskdeck's queues in their order of urgency, then any other queue a worker consumes or
    an operator paused, by name."""
    pauses = {pause.queue: pause for pause in QueuePause.objects.all()}
    consumers: dict[str, list[str]] = {}
    for worker in snapshot.workers:
        for name in worker.queues:
            consumers.setdefault(name, []).append(worker.name)
    depths = {q.name: q.messages for q in snapshot.queues}
    others = tuple(sorted((set(consumers) | set(pauses)) - set(QUEUES)))
    if others and snapshot.broker_up:
        try:
            depths.update((q.name, q.messages) for q in broker.queue_depths(others))
        except Exception as error:  # the broker went away meanwhile: depths unknown
            logger.warning("Broker inspection failed: %s", error)
    return [
        QueueRow(
            name=name,
            depth=depths.get(name),
            consumers=tuple(consumers.get(name, ())) if snapshot.broker_up else None,
            pause=pauses.get(name),
        )
        for name in (*QUEUES, *others)
    ]


@dataclass(frozen=True)
class QueuesOverview:
    snapshot: BrokerSnapshot
    rows: list[QueueRow]


def queues_overview(timeout: float = 1.0) -> QueuesOverview:
    """The broker's snapshot and the queue rows built from it."""
    snapshot = workers_snapshot(timeout=timeout)
    return QueuesOverview(snapshot=snapshot, rows=queue_rows(snapshot))
