"""Missed runs with a real beat: schedules firing every two seconds, beat stopped across several
of their fire times, then started again. Each schedule's policy decides what the new beat sends
for the fire times it missed (skip: nothing; run once: one run; run all: one run per missed
fire time, capped to the latest ones), each catch-up marked in its run's "launched by" label
and the decision audited, and then every schedule goes on firing normally.

Real `celery beat` subprocesses with Taskdeck's scheduler, a real worker, the test database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks_app import services
from tasks_app.models import AuditEntry, Run
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.schedules.missed import MissedRuns, with_missed
from tasks_app.services import Actor
from tests.support.services import BeatProcess, WorkerProcess, beats_sharing_a_lock, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

EVERY = 2  # seconds between fire times
STEP = timedelta(seconds=EVERY)
# Beat is kept down until this many fire times of each schedule have passed (more come while
# it starts again): more than the capped schedule's cap.
DOWN_FOR = 4
POLICIES = {
    "missed: skip": MissedRuns("skip", 10),
    "missed: run once": MissedRuns("run_once", 10),
    "missed: run all": MissedRuns("run_all", 100),
    "missed: run all, capped": MissedRuns("run_all", 2),
}
CAUGHT_UP = ("schedule.catch_up", "schedule.missed_skip")

MakeBeat = Callable[[str], BeatProcess]


@pytest.fixture
def beats(broker_url: str, tmp_path: Path) -> Iterator[MakeBeat]:
    """Beats on a lock key of this test's own; every one made is stopped afterwards."""
    with beats_sharing_a_lock(broker_url, tmp_path) as make:
        yield make


def runs_of(name: str) -> list[Run]:
    close_old_connections()
    return list(Run.objects.filter(schedule_name=name).order_by("queued_at", "id"))


def decision(name: str, after: datetime) -> AuditEntry | None:
    task = PeriodicTask.objects.get(name=name)
    return (
        AuditEntry.objects.filter(
            action__in=CAUGHT_UP, target_id=str(task.pk), created_at__gt=after
        )
        .order_by("created_at")
        .first()
    )


def test_each_policy_decides_what_beat_sends_for_the_fire_times_it_missed(
    worker: WorkerProcess, beats: MakeBeat
) -> None:
    actor = Actor(user=User.objects.create_superuser("boss", password="x-Secret-123"))
    first = beats("first")
    first.start()
    every_2s = Timing(Kind.INTERVAL, every=EVERY, period="seconds")
    for name, missed in POLICIES.items():
        definition = ScheduleDefinition(name=name, job="taskdeck.ping", timing=every_2s)
        services.schedule_save(with_missed(definition, missed), actor=actor)
    # Each fires on time first (a schedule created while beat runs is not behind).
    wait_for(lambda: all(len(runs_of(name)) >= 2 for name in POLICIES), timeout=30)

    first.stop()  # writes each schedule's last run as it stops
    close_old_connections()
    last = {name: PeriodicTask.objects.get(name=name).last_run_at for name in POLICIES}
    sent_before = {name: len(runs_of(name)) for name in POLICIES}
    assert all(isinstance(at, datetime) for at in last.values())
    latest = max(at for at in last.values() if at is not None)
    time.sleep(max(0.0, (latest + DOWN_FOR * STEP - timezone.now()).total_seconds()) + 0.5)
    restarted = timezone.now()
    # Nothing fired while beat was down.
    assert {name: len(runs_of(name)) for name in POLICIES} == sent_before

    second = beats("second")
    second.start()
    decided = wait_for(
        lambda: all(decision(name, restarted) for name in POLICIES) or None, timeout=30
    )
    assert decided, second.log_tail()
    decisions = {name: decision(name, restarted) for name in POLICIES}
    # Then each goes on as usual: a run after its decision that is no catch-up.
    wait_for(
        lambda: all(
            any(
                run.queued_at > entry.created_at and "catch-up" not in run.actor_label
                for run in runs_of(name)
            )
            for name, entry in decisions.items()
            if entry is not None
        ),
        timeout=30,
    )
    second.stop()

    for name, policy in POLICIES.items():
        entry = decisions[name]
        assert entry is not None
        details = entry.details
        since = last[name]
        assert since is not None
        missed = details["missed"]
        # It missed every fire time from its last run to the restart, counted by the schedule.
        assert missed >= DOWN_FOR, (name, details, second.log_tail())
        assert datetime.fromisoformat(details["since"]) == since
        assert datetime.fromisoformat(details["latest_due"]) == since + STEP * missed
        assert details["policy"] == policy.policy
        catch_ups = [run for run in runs_of(name) if "catch-up" in run.actor_label]
        sent = details["sent"]
        assert sorted(run.task_id for run in catch_ups) == sorted(s["task_id"] for s in sent)
        dues = [datetime.fromisoformat(s["due"]) for s in sent]
        if policy.policy == "skip":
            assert entry.action == "schedule.missed_skip"
            expected = []
        elif policy.policy == "run_once":
            assert entry.action == "schedule.catch_up"
            expected = [since + STEP * missed]
        else:
            assert entry.action == "schedule.catch_up"
            count = min(missed, policy.cap)
            expected = [since + STEP * n for n in range(missed - count + 1, missed + 1)]
        assert dues == expected, (name, details)
        assert len(catch_ups) == len(expected), (name, [r.actor_label for r in catch_ups])
        for run in catch_ups:
            assert run.actor_label.startswith(f"{name} (catch-up")
            assert run.source == "schedule"
    capped = decisions["missed: run all, capped"]
    assert capped is not None
    assert capped.details["missed"] > 2  # the cap did cut it


def test_a_schedule_resumed_after_a_pause_catches_up_by_its_policy(
    worker: WorkerProcess, beats: MakeBeat
) -> None:
    """Pausing keeps the last run: resumed, beat sees the fire times missed while paused and
    sends one run for each (run all), where resuming used to count from now."""
    actor = Actor(user=User.objects.create_superuser("boss", password="x-Secret-123"))
    beat = beats("only")
    beat.start()
    name = "missed: paused"
    every_2s = Timing(Kind.INTERVAL, every=EVERY, period="seconds")
    definition = ScheduleDefinition(name=name, job="taskdeck.ping", timing=every_2s)
    task = services.schedule_save(with_missed(definition, MissedRuns("run_all", 10)), actor=actor)
    wait_for(lambda: len(runs_of(name)) >= 2, timeout=30)

    services.schedules_toggle([task.pk], actor=actor, enabled=False)
    paused = PeriodicTask.objects.get(pk=task.pk)
    assert paused.last_run_at is not None
    time.sleep(max(0.0, (paused.last_run_at + 3 * STEP - timezone.now()).total_seconds()) + 0.5)
    resumed = timezone.now()
    services.schedules_toggle([task.pk], actor=actor, enabled=True)

    entry = wait_for(lambda: decision(name, resumed), timeout=30)
    assert entry.action == "schedule.catch_up", beat.log_tail()
    since = PeriodicTask.objects.get(pk=task.pk).last_run_at
    missed = entry.details["missed"]
    assert missed >= 3
    dues = [datetime.fromisoformat(s["due"]) for s in entry.details["sent"]]
    start = datetime.fromisoformat(entry.details["since"])
    assert dues == [start + STEP * n for n in range(1, missed + 1)]
    catch_ups = [run for run in runs_of(name) if "catch-up" in run.actor_label]
    assert len(catch_ups) == missed
    assert since is not None
    assert since > start  # and beat went on from the catch-up
    beat.stop()
