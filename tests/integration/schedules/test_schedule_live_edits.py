"""Edits apply without restarting: a real beat and a real worker keep running while a schedule's
interval and parameters change and while the dashboard's bulk action pauses and resumes it.
Each change shows in the ledger within two beat ticks (BeatProcess runs beat with
`--max-interval 1`: a tick is at most a second)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks_app import services
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing, definition_of
from tasks_app.services import Actor
from tests.support.services import BeatProcess, WorkerProcess, child_env, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

TICK = 1.0  # beat's --max-interval in BeatProcess
NAME = "live edit"


@pytest.fixture
def beat(broker_url: str, tmp_path: Path, worker: WorkerProcess) -> Iterator[BeatProcess]:
    key = f"taskdeck:beat-leader:test-{uuid4().hex}"
    process = BeatProcess(
        broker_url, tmp_path / "beat.log", env=child_env(broker_url, TASKDECK_BEAT_LOCK_KEY=key)
    )
    process.launch()
    process.wait_ready()
    try:
        yield process
    finally:
        process.stop()


def runs_since(moment: datetime) -> list[Run]:
    close_old_connections()
    return list(Run.objects.filter(schedule_name=NAME, queued_at__gt=moment).order_by("queued_at"))


def first_run_after(moment: datetime, timeout: float) -> Run:
    runs: list[Run] = wait_for(lambda: runs_since(moment), timeout)
    return runs[0]


def test_interval_params_and_bulk_toggle_apply_to_a_running_beat(
    beat: BeatProcess, client: Client
) -> None:
    boss = User.objects.create_superuser("boss", password="x-Secret-123")
    actor = Actor(user=boss)
    hourly = ScheduleDefinition(
        name=NAME,
        job="demo.progress",
        timing=Timing(Kind.INTERVAL, every=1, period="hours"),
        params={"steps": 1, "step_seconds": 0},
    )
    task = services.schedule_save(hourly, actor=actor)
    time.sleep(3 * TICK)
    assert runs_since(task.date_changed - timedelta(seconds=1)) == [], "hourly fired at once"

    # 1. Every hour -> every 2 seconds: fires 2 s after the edit, seen within two ticks.
    edited_at = timezone.now()
    every_2s = Timing(Kind.INTERVAL, every=2, period="seconds")
    task = services.schedule_save(
        replace(definition_of(task), timing=every_2s), actor=actor, task=task
    )
    first = first_run_after(edited_at, timeout=2 + 2 * TICK + 5)
    assert first.queued_at - edited_at <= timedelta(seconds=2 + 2 * TICK + 0.5), beat.log_tail()
    assert first.source == RunSource.SCHEDULE
    assert first.params == {"steps": 1, "step_seconds": 0.0}

    # 2. New parameters: the next fires carry them.
    edited_at = timezone.now()
    two_steps = {"steps": 2, "step_seconds": 0}
    services.schedule_save(replace(definition_of(task), params=two_steps), actor=actor, task=task)
    changed = first_run_after(edited_at + timedelta(seconds=2 * TICK), timeout=2 + 2 * TICK + 5)
    assert changed.params == {"steps": 2, "step_seconds": 0.0}, beat.log_tail()

    # 3. Paused by the dashboard's bulk action (a queryset update plus beat's change marker).
    client.force_login(boss)
    response = client.post(
        reverse("tasks_app:schedules_bulk"), {"action": "disable", "schedule": [task.pk]}
    )
    assert response.status_code == 302
    paused_at = timezone.now()
    time.sleep(2 + 4 * TICK)
    late = runs_since(paused_at + timedelta(seconds=2 * TICK))
    assert late == [], f"fired after the pause: {[r.queued_at for r in late]}\n{beat.log_tail()}"

    # 4. Resumed the same way: firing again within the interval plus two ticks.
    client.post(reverse("tasks_app:schedules_bulk"), {"action": "enable", "schedule": [task.pk]})
    resumed_at = timezone.now()
    again = first_run_after(resumed_at, timeout=2 + 2 * TICK + 5)
    assert again.queued_at - resumed_at <= timedelta(seconds=2 + 2 * TICK + 0.5)

    # The worker ran them, and every change is in the audit trail.
    assert wait_for(
        lambda: Run.objects.filter(schedule_name=NAME, state=RunState.SUCCESS).exists(), 30
    )
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"schedule.create", "schedule.edit", "schedule.pause", "schedule.resume"} <= actions
    assert PeriodicTask.objects.get(pk=task.pk).enabled is True
