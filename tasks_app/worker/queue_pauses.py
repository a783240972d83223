"""Paused queues: the web side tells the workers, and each worker keeps itself in line with the
database, which is the truth (a `QueuePause` row per paused queue).

Three ways a worker learns of a pause or a resume, so none depends on a message arriving:
- the web broadcasts `taskdeck_queue_pause` / `taskdeck_queue_resume` at once. They do what
  Celery's `cancel_consumer` / `add_consumer` do, with two differences: a resume only re-adds
  the queue on workers started with it (`add_consumer` would make every worker consume it, even
  one whose `-Q` leaves it out), and both mark the worker's view as changed, so a database read
  taken before the change cannot undo it;
- at start-up, `celeryd_after_setup` (sent after `-Q` is applied, before the consumer starts)
  deselects the paused queues: a worker that starts or restarts while a queue is paused never
  consumes it, not even for a moment;
- every heartbeat interval (TASKDECK_HEARTBEAT_SECONDS) a thread of the worker's main process
  reads the paused set (one small query) and, only when this worker's consumers disagree with
  it, hands the fix to the consumer's event loop (`consumer.call_soon`, thread-safe): a
  broadcast missed while the worker was restarting or the broker was away still applies.

A worker converges on "the queues it was started with, minus the paused ones" (plus queues
added at run time with `celery control add_consumer`, unless paused). Cancelling one of its own
queues with `celery control cancel_consumer` is therefore undone at the next check: pause the
queue in Taskdeck instead. Messages a worker had already reserved before a pause (prefetch) still
run; queued messages wait in the broker, nothing is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from celery import current_app
from celery.worker.control import control_command
from django.conf import settings
from django.db import DatabaseError, connection

from ..models import QueuePause
from . import presence

logger = logging.getLogger(__name__)

PAUSE_COMMAND = "taskdeck_queue_pause"
RESUME_COMMAND = "taskdeck_queue_resume"
# How long the web waits for the online workers to confirm a broadcast.
REPLY_TIMEOUT = 2.0


def check_interval() -> float:
    return float(getattr(settings, "TASKDECK_HEARTBEAT_SECONDS", 10))


def paused_queues() -> set[str]:
    """The queues paused in the database (a short table: one row per paused queue)."""
    return set(QueuePause.objects.values_list("queue", flat=True))


# -- the web side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """What a broadcast achieved: `workers` that confirmed, or the broker's `error`."""

    workers: tuple[str, ...] = ()
    error: str = ""

    @property
    def sent(self) -> bool:
        return not self.error


def tell_workers(command: str, queue: str, timeout: float = REPLY_TIMEOUT) -> Told:
    """Broadcast `command` for `queue` and wait for the online workers' confirmations (at most
    `timeout`: as many replies as workers announced themselves, when the broker is Redis).
    Never raises: a broker that is down is reported in `error` (one connection attempt, not
    kombu's retries), and the workers apply the database's state when they reach it again."""
    expected = presence.expected_answers()
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0)
            replies = current_app.control.broadcast(
                command,
                arguments={"queue": queue},
                connection=conn,
                reply=expected != 0,
                timeout=timeout,
                limit=expected or None,
            )
    except Exception as error:  # the broker is down or refuses us: say so, never fail
        logger.warning("Could not broadcast %s %s: %s", command, queue, error)
        return Told(error=f"The broker is unreachable: {error}")
    names = (name for reply in replies or () if isinstance(reply, dict) for name in reply)
    return Told(workers=tuple(sorted(names)))


def consumed_queues(timeout: float = 1.0) -> set[str] | None:
    """The queues online workers consume now, or None when the broker cannot be asked. Waits
    for as many answers as workers announced themselves (none: asks nobody), at most
    `timeout`, so a page that shows them does not always wait the whole timeout."""
    expected = presence.expected_answers()
    if expected == 0:
        return set()
    try:
        inspect = current_app.control.inspect(timeout=timeout, limit=expected)
        answers: dict[str, Any] = inspect.active_queues() or {}
    except Exception as error:  # the broker is down: unknown, not empty
        logger.warning("Could not ask the workers for their queues: %s", error)
        return None
    return {
        str(queue.get("name"))
        for queues in answers.values()
        for queue in queues or ()
        if isinstance(queue, dict)
    }


# -- the worker side ------------------------------------------------------------------------


class WorkerQueues:
    """This worker's queues, as it keeps them in line with the database (main process only)."""

    def __init__(self) -> None:
        self.own: frozenset[str] = frozenset()  # what -Q selected, before any pause
        self.consumer: Any = None
        # Bumped by every pause/resume command as it arrives: a fix computed from a read
        # taken before the command is stale and is dropped (the next check reads again).
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # celeryd_after_setup: before the consumer starts consuming.
    def hold_paused(self, queues: Any) -> None:
        """Deselect the paused ones of this worker's `queues` (`app.amqp.queues`)."""
        self.own = frozenset(queues.consume_from)
        try:
            paused = paused_queues()
        except DatabaseError:
            # The worker starts anyway; the first check pauses what it must.
            logger.exception("Could not read the paused queues at start-up")
            paused = set()
        finally:
            connection.close()  # the pool's children must not inherit this connection
        held = sorted(self.own & paused)
        if held:
            queues.deselect(held)
            logger.warning("Paused in Taskdeck, not consumed until resumed: %s", ", ".join(held))

    # worker_ready: the consumer runs; check at once (a pause made while we started), then often.
    def start(self, consumer: Any) -> None:
        self.consumer = consumer
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="taskdeck-queues", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(check_interval())

    def check(self) -> None:
        """Read the paused set; if this worker disagrees, fix it in the event loop."""
        generation = self.generation
        try:
            paused = paused_queues()
        except DatabaseError:
            logger.exception("Could not read the paused queues")
            return
        finally:
            connection.close()  # this thread's own: one short connection per check, none idle
        if self.consumer is None or not self._disagrees(paused):
            return
        self.consumer.call_soon(self._apply, paused, generation)

    def _consuming(self) -> set[str]:
        queues = self.consumer.app.amqp.queues
        for _ in range(3):  # read from another thread: the loop may change it meanwhile
            try:
                return set(queues.consume_from)
            except RuntimeError:
                continue
        return set()

    def _disagrees(self, paused: Collection[str]) -> bool:
        consuming = self._consuming()
        return bool(consuming & set(paused)) or bool(self.own - set(paused) - consuming)

    def _apply(self, paused: set[str], generation: int) -> None:
        """In the event loop: cancel paused queues, re-add own queues no longer paused."""
        if generation != self.generation:
            return  # a command came after the read: read again at the next check
        consuming = self._consuming()
        self._cancel(sorted(consuming & paused))
        self._add(sorted(self.own - paused - consuming))

    def _cancel(self, names: Iterable[str]) -> None:
        for name in names:
            logger.warning("Queue %s is paused in Taskdeck: no longer consuming it", name)
            self.consumer.cancel_task_queue(name)

    def _add(self, names: Iterable[str]) -> None:
        for name in names:
            logger.warning("Queue %s is resumed in Taskdeck: consuming it again", name)
            self.consumer.add_task_queue(name)

    # The broadcast commands, run in the event loop.
    def pause(self, name: str) -> None:
        if name in self._consuming():
            self._cancel([name])

    def resume(self, name: str) -> None:
        if name in self.own and name not in self._consuming():
            self._add([name])


worker_queues = WorkerQueues()


@control_command(args=[("queue", str)], signature="<queue>")
def taskdeck_queue_pause(state: Any, queue: str, **_: object) -> dict[str, str]:
    """Stop consuming a queue paused in Taskdeck."""
    worker_queues.generation += 1
    worker_queues.consumer = state.consumer
    state.consumer.call_soon(worker_queues.pause, queue)
    return {"ok": f"no longer consuming from {queue}"}


@control_command(args=[("queue", str)], signature="<queue>")
def taskdeck_queue_resume(state: Any, queue: str, **_: object) -> dict[str, str]:
    """Consume again a queue resumed in Taskdeck, if this worker was started with it."""
    worker_queues.generation += 1
    worker_queues.consumer = state.consumer
    state.consumer.call_soon(worker_queues.resume, queue)
    return {"ok": f"consuming from {queue} if it is one of this worker's queues"}


def on_after_setup(instance: Any = None, **_: object) -> None:
    """celery.signals.celeryd_after_setup (the instance is the WorkController)."""
    if instance is not None:
        worker_queues.hold_paused(instance.app.amqp.queues)


def on_worker_ready(sender: Any = None, **_: object) -> None:
    """celery.signals.worker_ready (the sender is the consumer)."""
    if sender is not None:
        worker_queues.start(sender)


def on_worker_shutdown(**_: object) -> None:
    worker_queues.stop()
