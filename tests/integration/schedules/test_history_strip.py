"""The history strip: each schedule's last runs as cells, oldest first, on the schedules list
(one query for the whole page, by the schedule index) and on the schedule's page (no query of
its own); plus the schedule page's read-only missed-run policy."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app.models import MissedRunPolicy, Run, RunSource, RunState, ScheduleOptions
from tasks_app.selectors.calendar_history import STRIP_LENGTH, history_strips
from tests.support.history import add_history

pytestmark = pytest.mark.django_db

CELL = re.compile(
    r'<a class="history-cell history-(\w+)" href="/runs/([^/]+)/"'
    r' title="([^"]+)" aria-label="([^"]+)">'
)

ROW_NAME = re.compile(r'<a href="/schedules/\d+/">([^<]+)</a>')


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def add_schedules(count: int, prefix: str = "strip") -> list[PeriodicTask]:
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.bulk_create(
        PeriodicTask(name=f"{prefix} {n:03d}", task="taskdeck.ping", interval=every)
        for n in range(count)
    )
    return list(PeriodicTask.objects.filter(name__startswith=prefix).order_by("name"))


def add_runs(schedule: str, states: list[RunState], *, start_minutes_ago: int = 1000) -> list[Run]:
    """Runs of `schedule`, one a minute, oldest first, in the given states."""
    now = timezone.now()
    return Run.objects.bulk_create(
        Run(
            task_id=f"{schedule[:10].replace(' ', '-')}-{n}-{uuid4().hex[:8]}",
            job_name="taskdeck.ping",
            state=state,
            schedule_name=schedule,
            source=RunSource.SCHEDULE,
            queued_at=now - timedelta(minutes=start_minutes_ago - n),
        )
        for n, state in enumerate(states)
    )


def test_a_strip_is_the_last_runs_oldest_first_each_state_its_own_kind() -> None:
    every_state = [
        RunState.SUCCESS, RunState.FAILURE, RunState.LOST, RunState.REVOKED,
        RunState.STARTED, RunState.PROGRESS, RunState.PENDING, RunState.RETRY,
    ]  # fmt: skip
    long = add_runs("long", [RunState.SUCCESS] * 10 + every_state * 3)
    add_runs("short", every_state)
    add_runs("other", [RunState.FAILURE] * 5)

    strips = history_strips(["long", "short", "never"])

    assert [c.task_id for c in strips["long"]] == [r.task_id for r in long[-STRIP_LENGTH:]]
    assert [c.kind for c in strips["short"]] == [
        "success", "failure", "lost", "cancelled", "running", "running", "queued", "queued",
    ]  # fmt: skip
    assert [c.label for c in strips["short"]][:4] == ["Succeeded", "Failed", "Lost", "Cancelled"]
    assert strips["never"] == ()
    assert "other" not in strips


def test_runs_at_the_same_moment_keep_the_index_order() -> None:
    now = timezone.now()
    runs = Run.objects.bulk_create(
        Run(task_id=f"tie-{n}", job_name="x", schedule_name="tied", queued_at=now) for n in range(3)
    )
    assert [c.task_id for c in history_strips(["tied"])["tied"]] == [r.task_id for r in runs]


def test_the_list_shows_each_schedules_strip_with_links_titles_and_names(boss: Client) -> None:
    first, _second = add_schedules(2)
    runs = add_runs(first.name, [RunState.SUCCESS, RunState.FAILURE, RunState.REVOKED])

    body = boss.get(reverse("tasks_app:schedules")).content.decode()

    cells = CELL.findall(body)
    assert [(kind, task_id) for kind, task_id, *_ in cells] == [
        ("success", runs[0].task_id), ("failure", runs[1].task_id), ("cancelled", runs[2].task_id)
    ]  # fmt: skip
    _kind, _, title, label = cells[1]
    assert title.startswith("Failed · ")
    assert label.startswith("Failed, queued ")
    assert 'aria-label="Last 3 runs, oldest first"' in body
    assert "no runs" in body  # the second schedule
    assert 'href="/schedules/calendar/"' in body


def test_the_list_costs_one_strip_query_however_many_schedules_and_runs(boss: Client) -> None:
    for task in add_schedules(5):
        add_runs(task.name, [RunState.SUCCESS] * 30)
    with CaptureQueriesContext(connection) as few:
        boss.get(reverse("tasks_app:schedules"))
    for task in add_schedules(80, prefix="more"):
        add_runs(task.name, [RunState.FAILURE] * 25)
    with CaptureQueriesContext(connection) as many:
        body = boss.get(reverse("tasks_app:schedules")).content.decode()

    assert len(many.captured_queries) == len(few.captured_queries)
    strip_queries = [q["sql"] for q in many.captured_queries if "schedule_name =" in q["sql"]]
    assert len(strip_queries) == 1
    # Only the strip's columns: not the parameters, the log or the error of every run.
    assert '"params"' not in strip_queries[0]
    assert '"log"' not in strip_queries[0]
    ours = [n for n in ROW_NAME.findall(body) if n.startswith(("more ", "strip "))]
    assert len(ours) > 40  # a full page of them, beside the built-in schedules
    assert len(CELL.findall(body)) == len(ours) * STRIP_LENGTH  # each strip full


def test_the_strip_query_reads_the_schedule_index_never_the_whole_table() -> None:
    """The plan on a history big enough for the planner to care: each schedule's runs by a
    range of (schedule_name, -queued_at, -id), stopped by the LIMIT, no scan of the runs."""
    add_history(30000, timezone.now(), schedule_names=60)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    names = [f"schedule-{n}" for n in range(50)]
    with CaptureQueriesContext(connection) as captured:
        strips = history_strips(names)
    [query] = captured.captured_queries
    assert all(len(strips[name]) == STRIP_LENGTH for name in names)
    explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(explain + query["sql"])
        plan = "\n".join(str(row) for row in cursor.fetchall())
    assert "run_schedule_queued_idx" in plan, plan
    if connection.vendor == "postgresql":
        assert "Seq Scan on tasks_app_run" not in plan, plan
        assert "Sort" not in plan, plan  # the index gives the order; nothing sorts the runs
    else:
        assert "SCAN tasks_app_run" not in plan.replace("USING INDEX", ""), plan
        assert "TEMP B-TREE" not in plan, plan


def test_the_schedule_page_shows_its_strip_from_the_recent_runs(boss: Client) -> None:
    [task] = add_schedules(1)
    runs = add_runs(task.name, [RunState.LOST] * 3 + [RunState.SUCCESS] * 22)
    body = boss.get(reverse("tasks_app:schedule", args=[task.pk])).content.decode()
    cells = CELL.findall(body)
    assert [task_id for _, task_id, *_ in cells] == [r.task_id for r in runs[-STRIP_LENGTH:]]
    assert {kind for kind, *_ in cells} == {"success"}


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        (None, "Run once for all missed runs"),
        ({"missed_policy": MissedRunPolicy.SKIP}, "Skip missed runs"),
        ({"missed_policy": MissedRunPolicy.RUN_ALL, "missed_cap": 7},
         "Run every missed run (capped), at most 7"),
    ],
)  # fmt: skip
def test_the_schedule_page_shows_the_missed_run_policy(
    boss: Client, options: dict[str, object] | None, shown: str
) -> None:
    [task] = add_schedules(1)
    if options is not None:
        ScheduleOptions.objects.create(periodic_task=task, **options)
    body = boss.get(reverse("tasks_app:schedule", args=[task.pk])).content.decode()
    assert f'<dd class="missed-policy">{shown}</dd>' in body


def test_the_missed_policy_costs_no_query_of_its_own(boss: Client) -> None:
    [task] = add_schedules(1)
    ScheduleOptions.objects.create(periodic_task=task, missed_policy=MissedRunPolicy.SKIP)
    with CaptureQueriesContext(connection) as captured:
        boss.get(reverse("tasks_app:schedule", args=[task.pk]))
    options = [q["sql"] for q in captured.captured_queries if "scheduleoptions" in q["sql"]]
    assert len(options) == 1
    assert "django_celery_beat_periodictask" in options[0]
