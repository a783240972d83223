"""Missed runs: the fire times beat let pass (it was down, or the schedule was paused), and what
a schedule's policy (`ScheduleOptions`) makes of them when beat sees them.

The times come from Celery's own schedule objects, the ones beat's `is_due` asks, so they
follow beat's rules exactly (a crontab in its zone across daylight-saving changes, an interval
in absolute time). A schedule is *behind* when more than one fire time passed since its last
run, or its one fire time passed more than `GRACE` ago (a beat that merely ticked late, or a
standby that took over from a crashed leader, is not behind). Then its policy decides:

* skip: nothing is sent; the schedule goes on at its next fire time;
* run once: one run (what stock beat does);
* run all: one run per missed fire time, at most `cap` of them (the latest ones).

A one-off (clocked, or "run once") schedule runs at most once either way, or not at all under
skip. The runs sent are marked as catch-ups in their "launched by" label.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from celery.schedules import crontab, schedule
from celery.utils.time import maybe_make_aware
from django_celery_beat.models import PeriodicTask

from ..models import MissedRunPolicy, ScheduleOptions
from .values import DEFAULT, MissedRuns, ScheduleDefinition

__all__ = [
    "CAP_MAX",
    "CAP_MIN",
    "DEFAULT",
    "GRACE",
    "Missed",
    "MissedRuns",
    "catch_up_label",
    "due_times",
    "missed_runs_for",
    "missed_runs_named",
    "missed_runs_of",
    "problems",
    "to_send",
    "with_missed",
]

CAP_MIN: Final = 1
CAP_MAX: Final = 1000  # the model's check constraint
# A single fire time this late is missed, not merely sent late.
GRACE: Final = timedelta(seconds=60)
# Fire times counted one by one at most; past that, only the latest are looked for.
SCAN_LIMIT: Final = 20_000


def with_missed(definition: ScheduleDefinition, missed: MissedRuns) -> ScheduleDefinition:
    """`definition` carrying a missed-run policy to store beside it."""
    return replace(definition, missed=missed)


def missed_runs_of(task: PeriodicTask | int | None) -> MissedRuns:
    """The stored policy of a schedule (the default without a row, or for a new one)."""
    pk = task.pk if isinstance(task, PeriodicTask) else task
    if pk is None:
        return DEFAULT
    return missed_runs_for([pk]).get(pk, DEFAULT)


def missed_runs_for(ids: Iterable[int]) -> dict[int, MissedRuns]:
    """The stored policies of many schedules in one query; those without a row are absent."""
    rows = ScheduleOptions.objects.filter(periodic_task_id__in=list(ids)).values_list(
        "periodic_task_id", "missed_policy", "missed_cap"
    )
    return {pk: MissedRuns(policy, cap) for pk, policy, cap in rows}


def missed_runs_named(name: str) -> MissedRuns:
    row = (
        ScheduleOptions.objects.filter(periodic_task__name=name)
        .values_list("missed_policy", "missed_cap")
        .first()
    )
    return MissedRuns(*row) if row is not None else DEFAULT


def problems(missed: MissedRuns) -> dict[str, str]:
    """What is wrong with a policy, by field (`missed_policy`, `missed_cap`)."""
    errors: dict[str, str] = {}
    if missed.policy not in MissedRunPolicy.values:
        errors["missed_policy"] = f"Use one of: {', '.join(MissedRunPolicy.values)}."
    if isinstance(missed.cap, bool) or not isinstance(missed.cap, int):
        errors["missed_cap"] = "Give a whole number."
    elif not CAP_MIN <= missed.cap <= CAP_MAX:
        errors["missed_cap"] = f"Give a whole number from {CAP_MIN} to {CAP_MAX}."
    return errors


@dataclass(frozen=True)
class Missed:
    """The fire times that passed since a schedule's last run: the latest ones kept (oldest
    first, in UTC) and how many there were (at least that many, if not `complete`)."""

    times: list[datetime]
    count: int
    complete: bool = True

    def behind(self, now: datetime, grace: timedelta = GRACE) -> bool:
        """Whether beat missed any of them (see the module docstring)."""
        return self.count > 1 or (self.count == 1 and now - self.times[-1] > grace)

    def in_words(self) -> str:
        return f"{self.count}" if self.complete else f"more than {self.count}"


def due_times(
    when: Any,
    since: datetime,
    now: datetime,
    *,
    keep: int = CAP_MAX,
    not_before: datetime | None = None,
) -> Missed | None:
    """The fire times of `when` (a Celery schedule object, as beat holds it) after `since`, up
    to and including `now`, by the schedule's own arithmetic; None for a kind this cannot
    step through (solar). `not_before`: the start time, until which beat holds a schedule
    back and then fires it at once if a fire time has passed (as ModelEntry.is_due does)."""
    since = _utc(since)
    now = _utc(now)
    clocked_time = getattr(when, "clocked_time", None)
    if isinstance(clocked_time, datetime):
        at = _utc(clocked_time)
        return Missed([at], 1) if at <= now else Missed([], 0)
    step: timedelta | None = None
    if isinstance(when, schedule) and not isinstance(when, crontab) and not when.relative:
        step = getattr(when, "run_every")  # noqa: B009 - not in the stubs
        if step is None or step <= timedelta(0):
            return None
        first = since + step
    elif isinstance(when, crontab | schedule):  # or a relative interval: stepped through
        next_after = _next_fire(when, now)
        first = next_after(since)
    else:
        return None
    if not_before is not None:
        first = max(first, _utc(not_before))
    if first > now:
        return Missed([], 0)
    if step is not None:
        return _interval(step, first, now, keep)
    return _scan(next_after, first, now, keep)


def to_send(missed: Missed, policy: MissedRuns, *, one_off: bool) -> list[datetime]:
    """The fire times to send a run for, by `policy`: none, the latest, or the latest `cap`."""
    if not missed.times or policy.policy == MissedRunPolicy.SKIP:
        return []
    if policy.policy == MissedRunPolicy.RUN_ALL and not one_off:
        return missed.times[-policy.cap :]
    return missed.times[-1:]


def catch_up_label(name: str, due: datetime, *, index: int, total: int, missed: Missed) -> str:
    """A catch-up run's "launched by": the schedule, marked, with the fire time it stands for."""
    at = f"{_utc(due):%Y-%m-%d %H:%M:%S} UTC"
    if total == 1 and missed.count > 1:
        note = f"catch-up for {missed.in_words()} missed, last due {at}"
    elif total == 1:
        note = f"catch-up, due {at}"
    else:
        note = f"catch-up {index}/{total}, due {at}"
    room = 255 - len(note) - 3
    shown = name if len(name) <= room else name[: room - 1] + "…"
    return f"{shown} ({note})"


# --- stepping through the schedule


def _utc(value: datetime) -> datetime:
    return maybe_make_aware(value).astimezone(UTC)


def _interval(step: timedelta, first: datetime, now: datetime, keep: int) -> Missed:
    """An interval fires every `step` from `first` (at or before `now`), in absolute time:
    counted, not stepped through (a one-second schedule down for a week is 600,000 of them)."""
    count = math.floor((now - first) / step) + 1
    return Missed([first + step * n for n in range(max(0, count - keep), count)], count)


def _next_fire(when: Any, now: datetime) -> Callable[[datetime], datetime]:
    """The schedule's next fire time after a given one, as beat computes it: its
    `remaining_estimate` from that time, measured at a fixed `now` (a copy of the schedule,
    so beat's own object is untouched)."""
    # Field by field: copy.copy would rebuild it from its pickling arguments, losing its app.
    probe = object.__new__(type(when))
    probe.__dict__.update(vars(when))
    probe.nowfun = lambda: now

    def next_after(moment: datetime) -> datetime:
        return _utc(now + probe.remaining_estimate(moment))

    return next_after


def _scan(
    next_after: Callable[[datetime], datetime], first: datetime, now: datetime, keep: int
) -> Missed:
    """The fire times from `first` (at or before `now`) on, stepped through one by one."""
    kept: deque[datetime] = deque([first], maxlen=keep)
    walked, moment = _walk(next_after, first, now, kept, SCAN_LIMIT - 1)
    count = walked + 1
    if moment > now:
        return Missed(list(kept), count)
    # Too many to count one by one: look for the latest `keep` in a window that ends now,
    # sized from the spacing seen so far, widened or narrowed until it holds enough.
    spacing = (moment - first) / max(walked, 1)
    window = spacing * keep * 2
    best = list(kept)
    for _ in range(20):
        start = max(moment, now - window)
        tail: deque[datetime] = deque(maxlen=keep)
        seen, end = _walk(next_after, start, now, tail, SCAN_LIMIT)
        if end <= now:  # too dense: come closer to now
            window /= 4
            continue
        best = list(tail) if start > moment else (best + list(tail))[-keep:]
        if seen >= keep or start == moment:
            break
        window *= 4
    return Missed(best, count, complete=False)


def _walk(
    next_after: Callable[[datetime], datetime],
    start: datetime,
    now: datetime,
    kept: deque[datetime],
    limit: int,
) -> tuple[int, datetime]:
    """Step from `start` up to `now`, at most `limit` steps: the count and the last time seen
    (past `now` if it got there)."""
    count, moment = 0, start
    while count < limit:
        following = next_after(moment)
        if following <= moment:  # a schedule that does not move on: stop, as beat would
            return count, now + timedelta(seconds=1)
        moment = following
        if moment > now:
            return count, moment
        kept.append(moment)
        count += 1
    return count, moment
