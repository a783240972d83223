"""Pause and resume a queue: no worker consumes a paused queue until it is resumed; its queued
runs wait in the broker, nothing is lost.

The database row (`QueuePause`) is the truth and is written first, with its audit entry, in one
transaction; then the online workers are told (tasks_app.worker.queue_pauses). When the broker
is down the change still stands, whole: the answer says the workers were not told, and each
worker applies the database's state when it next reaches it (at start-up, or at its next check,
every TASKDECK_HEARTBEAT_SECONDS). Refusing instead would leave the operator with no way to
stop a queue before the broker comes back and the workers drain it.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import current_app
from django.db import transaction
from django.utils import timezone

from ..jobs.policies import QUEUES
from ..models import QueuePause
from ..worker import queue_pauses
from .common import Actor, audit
from .errors import ServiceError

MANAGE = "tasks_app.manage_queues"
MAX_NAME = 100  # QueuePause.queue


class UnknownQueue(ServiceError):
    """Not a configured or routed queue, and no online worker consumes it."""

    field = "queue"

    def __init__(self, name: str) -> None:
        self.name = name
        shown = name if len(name) <= MAX_NAME else f"{name[:MAX_NAME]}…"
        super().__init__(
            f"No queue named {shown!r}: it is not configured and no online worker consumes it."
        )


@dataclass(frozen=True)
class QueueChange:
    """A pause or resume: `changed` is False when the queue already was in that state (the
    workers are told again anyway); `told` says which online workers confirmed, or why none."""

    queue: str
    pause: QueuePause | None  # the row as stored now; None once resumed
    changed: bool
    told: queue_pauses.Told

    @property
    def paused(self) -> bool:
        return self.pause is not None


def configured_queues() -> set[str]:
    """Queues known without asking the workers: Taskdeck's named queues, Celery's default
    queue and the queues the app declares or has routed to in this process."""
    return {*QUEUES, str(current_app.conf.task_default_queue), *current_app.amqp.queues}


def require_known(name: str) -> str:
    """`name` if it is a queue: configured, paused already, or consumed by an online worker
    (asked only for names not known otherwise). Raises UnknownQueue."""
    if not name or len(name) > MAX_NAME:
        raise UnknownQueue(name)
    if name in configured_queues() or QueuePause.objects.filter(queue=name).exists():
        return name
    consumed = queue_pauses.consumed_queues()
    if consumed is not None and name in consumed:
        return name
    raise UnknownQueue(name)


def queue_pause(name: str, *, actor: Actor) -> QueueChange:
    """Pause a queue. Raises PermissionDenied or UnknownQueue; nothing changes then."""
    actor.require(MANAGE)
    name = require_known(name)
    with transaction.atomic():
        pause, created = QueuePause.objects.get_or_create(
            queue=name,
            defaults={
                "paused_by_id": actor.user_id,
                "paused_by_label": actor.label,
                "paused_at": timezone.now(),
            },
        )
        if created:
            audit(actor, "queue.pause", None, {"queue": name}, target=("queue", name))
    told = queue_pauses.tell_workers(queue_pauses.PAUSE_COMMAND, name)
    return QueueChange(queue=name, pause=pause, changed=created, told=told)


def queue_resume(name: str, *, actor: Actor) -> QueueChange:
    """Resume a paused queue. Raises PermissionDenied or UnknownQueue; nothing changes then."""
    actor.require(MANAGE)
    name = require_known(name)
    with transaction.atomic():
        removed, _ = QueuePause.objects.filter(queue=name).delete()
        if removed:
            audit(actor, "queue.resume", None, {"queue": name}, target=("queue", name))
    told = queue_pauses.tell_workers(queue_pauses.RESUME_COMMAND, name)
    return QueueChange(queue=name, pause=None, changed=bool(removed), told=told)
