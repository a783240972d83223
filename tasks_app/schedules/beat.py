"""Taskdeck's beat scheduler: django-celery-beat's DatabaseScheduler that fires each schedule
once, however many beats are running.

Two beats would send every scheduled task twice, and a second one is easy to start by mistake
(a rolling deploy that overlaps the old container, a scaled-out service, `make run` against a
shared Redis). So beats compete for a lock in the broker's Redis and only its holder, the
leader, sends anything. The others stand by and take over when the leader releases the lock
(a clean stop: at their next check) or stops renewing it (a crash: within
TASKDECK_BEAT_LOCK_SECONDS).

A beat that cannot reach Redis cannot prove that it leads, so it sends nothing and keeps
trying; it never exits over it (no crash loop) and never fires without the lock.

A schedule whose fire times passed while beat was down (or while it was paused: pausing keeps
its last run) is handled by its missed-run policy when it comes due (`missed`): skip them,
run once (what stock beat does), or run each of them, capped. Catch-up runs are marked in
their "launched by" label, and each decision is logged and audited ("schedule.catch_up",
"schedule.missed_skip").
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError
from django.db.models import Q
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from redis.backoff import NoBackoff
from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from redis.retry import Retry

from ..models import AuditEntry, MissedRunPolicy, Run
from .declared import sync_declared_schedules
from .entry import TaskdeckEntry
from .missed import DEFAULT, Missed, MissedRuns, catch_up_label, due_times, missed_runs_of, to_send

__all__ = ["TaskdeckScheduler", "lock_redis_url"]

logger = logging.getLogger(__name__)

DEFAULT_LOCK_KEY = "taskdeck:beat-leader"
DEFAULT_LOCK_SECONDS = 30
# A standby looks at the lock at least this often: how soon it follows a leader that released it.
STANDBY_CHECK_SECONDS = 5.0


def lock_redis_url(broker_url: str) -> str:
    """The broker's URL in redis-py's spelling: kombu writes a Unix socket as
    ``redis+socket:///path``, redis-py as ``unix:///path``. Of failover URLs
    (``url1;url2``) the first is taken."""
    url = broker_url.split(";", 1)[0].strip()
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "redis+socket":
        return f"unix://{rest}"
    if sep and scheme in {"redis", "rediss", "unix"}:
        return url
    raise ImproperlyConfigured(
        f"TaskdeckScheduler keeps its leader lock in the broker's Redis, but the broker URL "
        f"{scheme + '://' if sep else url!r} is not a Redis URL (redis://, rediss://, unix:// "
        "or redis+socket://)."
    )


def _broker_url(app: Celery) -> str:
    url: Any = app.conf.broker_write_url or app.conf.broker_url
    if isinstance(url, list | tuple):
        url = url[0] if url else ""
    return str(url or "")


class TaskdeckScheduler(DatabaseScheduler):
    """DatabaseScheduler behind a leader lock (see the module docstring)."""

    Entry = TaskdeckEntry  # writes only the columns beat owns (tasks_app.schedules.entry)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock_key = str(getattr(settings, "TASKDECK_BEAT_LOCK_KEY", "") or DEFAULT_LOCK_KEY)
        self.lock_seconds = float(
            getattr(settings, "TASKDECK_BEAT_LOCK_SECONDS", DEFAULT_LOCK_SECONDS)
        )
        if self.lock_seconds < 1:
            raise ImproperlyConfigured("TASKDECK_BEAT_LOCK_SECONDS must be at least 1.")
        self._lock: Lock | None = None
        self._leading = False
        self._told_standing_by = False
        self._told_redis_down = False
        # Sets self.app, then (unless lazy) calls setup_schedule(). django-celery-beat is untyped.
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.lock_url = lock_redis_url(_broker_url(self.app))

    def setup_schedule(self) -> None:
        """Unlike DatabaseScheduler, never write ``beat_schedule`` over the database rows with
        ``update_from_dict``: that undid operators' edits of declared schedules at every start.
        The leader brings declared schedules in instead, when it takes the lock (`_lead`)."""
        self.install_default_entries(self.schedule)  # type: ignore[no-untyped-call]

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Send what is due only while holding the lock, renewed first on every tick."""
        if not self._hold_lock():
            interval = float(self.max_interval or STANDBY_CHECK_SECONDS)
            return min(interval, STANDBY_CHECK_SECONDS, self.lock_seconds / 3)
        interval = float(super().tick(*args, **kwargs))
        # Come back well before the lock expires, whatever the schedule says.
        return min(interval, self.lock_seconds / 3)

    def close(self) -> None:
        """Write what was sent, then release the lock, so a standby takes over at its next
        check instead of waiting for the lock to expire. Celery may call this twice."""
        try:
            super().close()
        finally:
            self._release()

    # --- missed runs

    def _get_crontab_exclude_query(self) -> Q:
        """Read every enabled crontab, not only those firing within two hours of now (stock
        beat's shortcut): a daily one that beat missed while it was down must be seen when beat
        starts, for its missed-run policy to apply then, not hours later."""
        return Q(pk__in=[])

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Send a due schedule, or apply its missed-run policy if fire times passed unsent."""
        behind = self._behind(entry)
        if behind is None:
            super().apply_entry(entry, producer=producer)
            return
        self._catch_up(entry, producer, behind)

    def _behind(self, entry: Any) -> Missed | None:
        """The fire times `entry` missed since its last run, if it is behind (`Missed.behind`);
        None if it is on time, or if its kind cannot be stepped through (solar)."""
        model = getattr(entry, "model", None)
        if not isinstance(entry, ModelEntry) or model is None or entry.last_run_at is None:
            return None
        now = datetime.now(UTC)
        try:
            missed = due_times(entry.schedule, entry.last_run_at, now, not_before=model.start_time)
        except Exception:  # never let one schedule stop beat: send it as stock beat would
            logger.exception("Schedule %r: could not work out its missed fire times.", entry.name)
            return None
        return missed if missed is not None and missed.behind(now) else None

    def _catch_up(self, entry: Any, producer: Any, missed: Missed) -> None:
        model = entry.model
        try:
            policy = missed_runs_of(model.pk)
        except (DatabaseError, InterfaceError):
            logger.exception("Schedule %r: could not read its missed-run policy.", entry.name)
            policy = DEFAULT
        one_off = bool(model.one_off) or model.clocked_id is not None
        due = to_send(missed, policy, one_off=one_off)
        sent: list[dict[str, str]] = []
        for index, at in enumerate(due, start=1):
            label = catch_up_label(entry.name, at, index=index, total=len(due), missed=missed)
            task_id = self._send_catch_up(entry, producer, at, label)
            sent.append({"due": at.isoformat(), "task_id": task_id or ""})
        if not one_off:
            # `reserve` counted one run; a one-off keeps it, so beat retires it next (sent or
            # skipped, it is done).
            model.total_run_count += len(due) - 1
        self._record(entry, policy, missed, sent)

    def _send_catch_up(self, entry: Any, producer: Any, due: datetime, label: str) -> str | None:
        """Send one run for the missed fire time `due`: the schedule's own message with a
        `taskdeck_catch_up` header (the fire time); its run is labelled `label`."""
        # A field-by-field copy: copy.copy would rebuild a ModelEntry from its pickling args.
        catch_up = object.__new__(type(entry))
        catch_up.__dict__.update(vars(entry))
        headers = dict(entry.options.get("headers") or {})
        headers["taskdeck_catch_up"] = due.isoformat()
        catch_up.options = {**entry.options, "headers": headers}
        logger.info("Scheduler: Sending due task %s (%s): %s", entry.name, entry.task, label)
        try:
            result = self.apply_async(catch_up, producer=producer, advance=False)
        except Exception:  # as Scheduler.apply_entry: log it, and go on with the others
            logger.exception("Schedule %r: could not send a catch-up run.", entry.name)
            return None
        task_id = getattr(result, "id", None)
        if not task_id:
            return None
        try:
            Run.objects.filter(task_id=task_id).update(actor_label=label)
        except (DatabaseError, InterfaceError):
            logger.exception("Schedule %r: could not label catch-up run %s.", entry.name, task_id)
        return str(task_id)

    def _record(
        self, entry: Any, policy: MissedRuns, missed: Missed, sent: list[dict[str, str]]
    ) -> None:
        """Log and audit what the policy made of the missed fire times."""
        skipped = policy.policy == MissedRunPolicy.SKIP
        logger.warning(
            "Schedule %r missed %s fire time(s) since %s, the latest due %s; policy %s: %s.",
            entry.name,
            missed.in_words(),
            entry.last_run_at.isoformat(),
            missed.times[-1].isoformat(),
            policy.policy,
            "none sent" if skipped else f"{len(sent)} catch-up run(s) sent",
        )
        details: dict[str, Any] = {
            "name": entry.name,
            "policy": policy.policy,
            "cap": policy.cap,
            "missed": missed.count,
            "missed_counted": missed.complete,
            "since": entry.last_run_at.astimezone(UTC).isoformat(),
            "latest_due": missed.times[-1].isoformat(),
            "sent": sent,
        }
        try:
            AuditEntry.objects.create(
                actor_label="beat",
                action="schedule.missed_skip" if skipped else "schedule.catch_up",
                target_type="schedule",
                target_id=str(entry.model.pk),
                details=details,
            )
        except (DatabaseError, InterfaceError):
            logger.exception("Schedule %r: could not audit its missed runs.", entry.name)

    # --- the lock

    def _leader_lock(self) -> Lock:
        if self._lock is None:
            # Replies must come well within the lock's lifetime, or a renewal that succeeded
            # late could leave less time than we think; one retry covers a dropped connection.
            timeout = min(5.0, self.lock_seconds / 3)
            client = redis.Redis.from_url(
                self.lock_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
            # The token belongs to this scheduler, not to the thread that took it.
            self._lock = Lock(client, self.lock_key, timeout=self.lock_seconds, thread_local=False)
        return self._lock

    def _hold_lock(self) -> bool:
        """Renew the lock if this beat leads, else try to take it; True if it leads now."""
        lock = self._leader_lock()
        try:
            if self._leading:
                try:
                    lock.reacquire()
                except LockError:  # expired, or taken over: another beat may be sending now
                    self._lose_lead()
                else:
                    self._redis_answers()
                    return True
            if not lock.acquire(blocking=False):
                self._redis_answers()
                self._stand_by()
                return False
        except RedisError as exc:
            # Whether we still lead is unknown: send nothing. A leader keeps its token, and
            # renews the same lock once Redis answers if it has not expired meanwhile.
            if not self._told_redis_down:
                logger.warning(
                    "Beat lock %s: Redis does not answer (%s); sending nothing until it does.",
                    self.lock_key,
                    exc,
                )
                self._told_redis_down = True
            return False
        self._redis_answers()
        return self._lead()

    def _lead(self) -> bool:
        """Become the leader: bring declared schedules in, then read every schedule afresh.

        The schedule a standby read at start is stale: the previous leader has sent tasks since
        and recorded each send in its row's last_run_at (CELERY_BEAT_SYNC_EVERY = 1), so firing
        from the old copy would send them again. Runs under the lock, so only one beat writes
        declared schedules at a time. If the database fails, the lock goes back and we retry."""
        try:
            sync_declared_schedules(self.app)
            # Note the current change marker (the read below covers it), then make
            # DatabaseScheduler.schedule read every row again and Scheduler.tick rebuild its heap
            # from that read (the flags DatabaseScheduler itself sets when the schedule changes).
            self.schedule_changed()  # type: ignore[no-untyped-call]
            self._initial_read = True
            self._heap = []
            self._heap_invalidated = True
            self.schedule  # noqa: B018 - read now, so a database error shows here
        except (DatabaseError, InterfaceError):
            logger.exception(
                "Beat lock %s: could not read the schedules; giving the lock back.", self.lock_key
            )
            self._release()
            return False
        self._leading = True
        self._told_standing_by = False
        logger.info(
            "Beat lock %s: this beat is the leader now and sends the scheduled tasks.",
            self.lock_key,
        )
        return True

    def _lose_lead(self) -> None:
        logger.warning(
            "Beat lock %s: lost (not renewed in time); this beat sends nothing until it holds "
            "the lock again.",
            self.lock_key,
        )
        self._leading = False
        # Sends it could not record yet: the rows belong to the new leader now.
        self._dirty.clear()

    def _stand_by(self) -> None:
        if not self._told_standing_by:
            logger.info(
                "Beat lock %s: standing by: another beat holds the lock; this one takes over "
                "when it is released or not renewed for %gs.",
                self.lock_key,
                self.lock_seconds,
            )
            self._told_standing_by = True

    def _redis_answers(self) -> None:
        if self._told_redis_down:
            logger.info("Beat lock %s: Redis answers again.", self.lock_key)
            self._told_redis_down = False

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        self._leading = False
        if lock is None:
            return
        try:
            lock.release()  # only deletes the key if it still holds our token
        except LockError:
            pass  # never held, or already expired or taken over
        except RedisError as exc:
            logger.warning(
                "Beat lock %s: could not release it (%s); it expires in at most %gs.",
                self.lock_key,
                exc,
                self.lock_seconds,
            )
        else:
            logger.info("Beat lock %s: released.", self.lock_key)
        finally:
            lock.redis.close()
