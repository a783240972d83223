"""Schedule services on the database: validation, the audit trail with before and after,
shared schedule rows, beat's change marker, Run now, and code-declared schedules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import current_app
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)
from django_celery_beat.schedulers import ModelEntry

from dashboard.celery import app as celery_app
from tasks_app import services
from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.params import ParamsError
from tasks_app.jobs.registry import job
from tasks_app.models import AuditEntry, DeclaredSchedule, RunSource, RunState
from tasks_app.schedules import declared
from tasks_app.schedules.definition import (
    Kind,
    ScheduleDefinition,
    Timing,
    definition_of,
    forecast,
    upcoming,
)
from tasks_app.services import Actor

pytestmark = pytest.mark.django_db

CRON = Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="Europe/Berlin")


@pytest.fixture
def boss() -> Actor:
    return Actor(user=User.objects.create_superuser("boss", password="x-Secret-123"))


def progress_schedule(name: str = "nightly", **changes: Any) -> ScheduleDefinition:
    definition = ScheduleDefinition(
        name=name, job="demo.progress", timing=CRON, params={"steps": 5}, queue="low"
    )
    return replace(definition, **changes)


def test_create_stores_beat_rows_and_audits_every_value(boss: Actor) -> None:
    task = services.schedule_save(progress_schedule(), actor=boss)

    task.refresh_from_db()
    assert task.task == "demo.progress"
    assert json.loads(task.kwargs) == {"steps": 5, "step_seconds": 0.1}  # defaults filled in
    assert task.crontab is not None
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "2", "1-5")
    assert str(task.crontab.timezone) == "Europe/Berlin"
    assert task.queue == "low"
    entry = AuditEntry.objects.get(action="schedule.create")
    assert entry.actor_label == "boss"
    assert (entry.target_type, entry.target_id) == ("schedule", str(task.pk))
    assert entry.details["before"] is None
    assert entry.details["after"]["schedule"] == "cron 30 2 * * 1-5 (Europe/Berlin)"
    assert entry.details["after"]["params"] == {"steps": 5, "step_seconds": 0.1}


def test_edit_audits_only_what_changed_before_and_after(boss: Actor) -> None:
    task = services.schedule_save(progress_schedule(), actor=boss)
    every_hour = Timing(Kind.INTERVAL, every=1, period="hours")

    services.schedule_save(
        progress_schedule(timing=every_hour, params={"steps": 9}), actor=boss, task=task
    )

    entry = AuditEntry.objects.get(action="schedule.edit")
    assert entry.details["before"] == {
        "params": {"steps": 5, "step_seconds": 0.1},
        "schedule": "cron 30 2 * * 1-5 (Europe/Berlin)",
    }
    assert entry.details["after"] == {
        "params": {"steps": 9, "step_seconds": 0.1},
        "schedule": "Every hour",
    }


def test_an_edit_never_changes_a_schedule_row_another_task_uses(boss: Actor) -> None:
    first = services.schedule_save(progress_schedule("a"), actor=boss)
    second = services.schedule_save(progress_schedule("b"), actor=boss)
    assert first.crontab_id == second.crontab_id  # one shared row

    six = replace(CRON, cron="0 6 * * *")
    services.schedule_save(progress_schedule("a", timing=six), actor=boss, task=first)

    second.refresh_from_db()
    assert second.crontab is not None
    assert (second.crontab.minute, second.crontab.hour) == ("30", "2")
    assert CrontabSchedule.objects.count() >= 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timing": replace(CRON, cron="0 0 31 2 *")}, "cron"),
        ({"timing": replace(CRON, cron="61 * * * *")}, "cron"),
        ({"timing": replace(CRON, timezone="Mars/Olympus")}, "timezone"),
        ({"timing": Timing(Kind.INTERVAL, every=0, period="minutes")}, "every"),
        ({"timing": Timing(Kind.INTERVAL, every=5, period="fortnights")}, "period"),
        ({"timing": Timing(Kind.ONE_OFF, run_at=datetime(2020, 1, 1, tzinfo=UTC))}, "run_at"),
        ({"timing": Timing(Kind.OTHER)}, "kind"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"queue": "nowhere"}, "queue"),
        ({"job": "no.such.job"}, "job"),
        (
            {
                "start_time": datetime(2031, 1, 2, tzinfo=UTC),
                "expires": datetime(2031, 1, 1, tzinfo=UTC),
            },
            "expires",
        ),
        ({"expires": datetime(2020, 1, 1, tzinfo=UTC)}, "expires"),
    ],
)
def test_bad_values_are_refused_by_field_and_nothing_is_stored(
    change: dict[str, Any], field: str
) -> None:
    staff = User.objects.create_user("ops", password="x-Secret-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="manage_schedules"))
    actor = Actor(user=User.objects.get(pk=staff.pk))

    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(progress_schedule(**change), actor=actor)

    assert field in caught.value.errors
    assert not PeriodicTask.objects.filter(task="demo.progress").exists()
    assert not AuditEntry.objects.filter(action__startswith="schedule.").exists()


def test_duplicate_names_are_refused(boss: Actor) -> None:
    services.schedule_save(progress_schedule(), actor=boss)
    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(progress_schedule(), actor=boss)
    assert "name" in caught.value.errors


def test_parameters_are_checked_by_the_jobs_schema(boss: Actor) -> None:
    with pytest.raises(ParamsError) as caught:
        services.schedule_save(progress_schedule(params={"steps": "many", "x": 1}), actor=boss)
    assert set(caught.value.errors) >= {"steps"} or "__all__" in caught.value.errors
    assert not PeriodicTask.objects.filter(task="demo.progress").exists()


def test_managing_schedules_needs_the_permission() -> None:
    viewer = Actor(user=User.objects.create_user("v", password="x-Secret-123", is_staff=True))
    with pytest.raises(PermissionDenied):
        services.schedule_save(progress_schedule(), actor=viewer)


def test_bulk_toggle_moves_beats_change_marker_and_audits_each(boss: Actor) -> None:
    a = services.schedule_save(progress_schedule("a"), actor=boss)
    b = services.schedule_save(progress_schedule("b"), actor=boss)
    before = PeriodicTasks.last_change()  # type: ignore[no-untyped-call]

    changed = services.schedules_toggle([a.pk, b.pk], actor=boss, enabled=False)

    assert {t.pk for t in changed} == {a.pk, b.pk}
    assert not PeriodicTask.objects.filter(pk__in=[a.pk, b.pk], enabled=True).exists()
    after = PeriodicTasks.last_change()  # type: ignore[no-untyped-call]
    assert after is not None
    assert before is None or after > before
    pauses = AuditEntry.objects.filter(action="schedule.pause")
    assert pauses.count() == 2
    assert all(e.details["before"] == {"enabled": True} for e in pauses)
    assert all(e.details["after"] == {"enabled": False} for e in pauses)
    # Already paused: nothing changes, nothing is recorded.
    assert services.schedules_toggle([a.pk], actor=boss, enabled=False) == []
    assert AuditEntry.objects.filter(action="schedule.pause").count() == 2


def test_delete_is_audited_with_every_value(boss: Actor) -> None:
    task = services.schedule_save(progress_schedule(), actor=boss)
    services.schedule_delete(task, actor=boss)
    assert not PeriodicTask.objects.filter(name="nightly").exists()
    entry = AuditEntry.objects.get(action="schedule.delete")
    assert entry.details["before"]["job"] == "demo.progress"
    assert entry.details["after"] is None


def test_sensitive_parameters_are_masked_in_the_audit(boss: Actor) -> None:
    definition = ScheduleDefinition(
        name="secret", job="demo.sensitive", timing=CRON, params={"password": "hunter2-x"}
    )
    services.schedule_save(definition, actor=boss)
    entry = AuditEntry.objects.get(action="schedule.create")
    assert "hunter2-x" not in json.dumps(entry.details)


def test_run_now_uses_the_schedules_parameters_and_options(boss: Actor, broker: str) -> None:
    task = services.schedule_save(progress_schedule(params={"steps": 3}), actor=boss)

    run = services.schedule_run_now(task, actor=boss)

    assert run.source == RunSource.SCHEDULE
    assert run.schedule_name == "nightly"
    assert run.actor_label == "boss"
    assert run.params == {"steps": 3, "step_seconds": 0.1}
    assert run.queue == "low"
    assert run.state == RunState.PENDING
    assert AuditEntry.objects.filter(action="schedule.run_now", target_id=run.task_id).exists()


# --- forecasts -----------------------------------------------------------------------------


def test_interval_forecast_counts_from_the_last_run() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    every_10 = ScheduleDefinition(
        name="x", job="demo.progress", timing=Timing(Kind.INTERVAL, every=10, period="minutes")
    )
    times = forecast(every_10, last_run_at=now - timedelta(minutes=3), count=3, now=now).times
    assert [t.at.astimezone(UTC) for t in times] == [
        now + timedelta(minutes=7),
        now + timedelta(minutes=17),
        now + timedelta(minutes=27),
    ]


def test_forecasts_honour_start_expiry_run_once_and_pause() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    daily = ScheduleDefinition(
        name="x", job="demo.progress", timing=Timing(Kind.CRONTAB, cron="0 9 * * *")
    )
    start = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)
    assert forecast(replace(daily, start_time=start), count=1, now=now).times[0].at == start
    later = forecast(replace(daily, start_time=start + timedelta(hours=1)), count=1, now=now)
    assert later.times[0].at == start + timedelta(days=1)
    expiring = forecast(replace(daily, expires=now + timedelta(days=2)), count=5, now=now)
    assert len(expiring.times) == 2
    assert len(forecast(replace(daily, one_off=True), count=5, now=now).times) == 1
    assert forecast(replace(daily, one_off=True), ran=True, now=now).times == []
    assert forecast(replace(daily, enabled=False), now=now).note == "Paused."


def test_forecast_notes_a_daylight_saving_change() -> None:
    now = datetime(2026, 3, 26, 12, 0, tzinfo=UTC)
    at_0230 = Timing(Kind.CRONTAB, cron="30 2 * * *", timezone="Europe/Berlin")
    berlin = ScheduleDefinition(name="x", job="demo.progress", timing=at_0230)
    result = forecast(berlin, count=5, now=now)
    assert "clocks go forward on 29 Mar 2026" in result.note


# --- declared schedules --------------------------------------------------------------------


@pytest.fixture
def declared_hourly() -> Iterator[dict[str, object]]:
    from celery.schedules import crontab

    entry = {
        "task": "demo.progress",
        "schedule": crontab(minute="0"),
        "kwargs": {"steps": 2},
        "options": {"queue": "low"},
    }
    celery_app.conf.beat_schedule = {"hourly report": entry}
    yield entry
    celery_app.conf.beat_schedule = {}


def sync() -> dict[str, str]:
    return declared.sync_declared_schedules(celery_app)


def test_builtin_schedules_are_marked_after_migrate() -> None:
    markers = DeclaredSchedule.objects.select_related("periodic_task")
    names = {m.periodic_task.name for m in markers if m.origin == "builtin"}
    assert names == set(declared.BUILTIN)
    assert {declared.REAPER, declared.CLEANUP, declared.EVALUATE_ALERTS} <= names


def test_a_declared_schedule_is_created_and_marked(declared_hourly: dict[str, object]) -> None:
    assert sync()["hourly report"] == "created"
    task = PeriodicTask.objects.get(name="hourly report")
    assert json.loads(task.kwargs) == {"steps": 2, "step_seconds": 0.1}
    assert task.queue == "low"
    assert task.declaration.origin == "code"
    assert sync()["hourly report"] == "unchanged"


def test_a_code_change_applies_when_nobody_edited_it(declared_hourly: dict[str, object]) -> None:
    sync()
    declared_hourly["kwargs"] = {"steps": 7}
    assert sync()["hourly report"] == "updated"
    assert json.loads(PeriodicTask.objects.get(name="hourly report").kwargs)["steps"] == 7


def test_an_operators_edit_survives_a_restart_and_can_be_reset(
    declared_hourly: dict[str, object], boss: Actor
) -> None:
    sync()
    task = PeriodicTask.objects.get(name="hourly report")
    edited = replace(definition_of(task), params={"steps": 42})
    services.schedule_save(edited, actor=boss, task=task)

    declared_hourly["kwargs"] = {"steps": 7}
    assert sync()["hourly report"] == "kept"

    task.refresh_from_db()
    assert json.loads(task.kwargs)["steps"] == 42
    assert declared.is_edited(task, task.declaration)
    assert task.declaration.declared["params"] == {"steps": 7, "step_seconds": 0.1}

    services.schedule_reset(task, actor=boss)
    task.refresh_from_db()
    assert json.loads(task.kwargs)["steps"] == 7
    assert not declared.is_edited(task, task.declaration)
    assert AuditEntry.objects.filter(action="schedule.reset").exists()


def test_a_rotated_secret_key_keeps_declared_schedules_following_the_code(
    declared_hourly: dict[str, object], settings: Any
) -> None:
    """The fingerprints are keyed with SECRET_KEY: after a rotation (the old key moved to
    SECRET_KEY_FALLBACKS) an unedited schedule must still look unedited and take code changes."""
    sync()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    task = PeriodicTask.objects.get(name="hourly report")
    assert not declared.is_edited(task, task.declaration)

    declared_hourly["kwargs"] = {"steps": 7}
    assert sync()["hourly report"] == "updated"
    assert json.loads(PeriodicTask.objects.get(name="hourly report").kwargs)["steps"] == 7

    settings.SECRET_KEY_FALLBACKS = []  # the old key retired: the hashes were re-stored
    task.refresh_from_db()
    assert not declared.is_edited(task, task.declaration)
    assert sync()["hourly report"] == "unchanged"


def test_pausing_a_declared_schedule_is_kept_and_is_not_an_edit(
    declared_hourly: dict[str, object], boss: Actor
) -> None:
    sync()
    task = PeriodicTask.objects.get(name="hourly report")
    services.schedules_toggle([task.pk], actor=boss, enabled=False)
    declared_hourly["kwargs"] = {"steps": 3}

    assert sync()["hourly report"] == "updated"

    task.refresh_from_db()
    assert task.enabled is False
    assert json.loads(task.kwargs)["steps"] == 3


def test_declared_schedules_cannot_be_deleted_or_renamed(
    declared_hourly: dict[str, object], boss: Actor
) -> None:
    sync()
    task = PeriodicTask.objects.get(name="hourly report")
    with pytest.raises(services.ServiceError, match="declared in code"):
        services.schedule_delete(task, actor=boss)
    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(replace(definition_of(task), name="renamed"), actor=boss, task=task)
    assert "name" in caught.value.errors


def test_upcoming_of_a_stored_interval_schedule(boss: Actor) -> None:
    task = services.schedule_save(
        progress_schedule(timing=Timing(Kind.INTERVAL, every=5, period="minutes")), actor=boss
    )
    result = upcoming(task, count=2)
    assert len(result.times) == 2
    assert result.times[1].at - result.times[0].at == timedelta(minutes=5)


def test_housekeeping_jobs_run_on_their_schedule_only(boss: Actor, broker: str) -> None:
    reaper = PeriodicTask.objects.get(name=declared.REAPER)
    with pytest.raises(services.ServiceError, match="housekeeping"):
        services.schedule_run_now(reaper, actor=boss)
    with pytest.raises(services.ServiceError, match="housekeeping"):
        services.job_launch("taskdeck.reap_lost_runs", {}, actor=boss)


def test_times_without_a_zone_are_refused(boss: Actor) -> None:
    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(progress_schedule(start_time=datetime(2031, 1, 1)), actor=boss)
    assert "start_time" in caught.value.errors


def test_sync_leaves_beat_a_change_marker_so_the_first_edit_is_seen(boss: Actor) -> None:
    """django-celery-beat misses the first change ever made when its change-marker row does
    not exist yet (it compares the new time with itself); a fresh database has none."""
    PeriodicTasks.objects.all().delete()
    sync()
    first = PeriodicTasks.last_change()  # type: ignore[no-untyped-call]
    assert first is not None

    services.schedule_save(progress_schedule(), actor=boss)

    assert PeriodicTasks.last_change() > first  # type: ignore[no-untyped-call]


# --- what beat makes of a saved row --------------------------------------------------------


def beat_due(task: PeriodicTask) -> tuple[bool, float]:
    """Whether beat's own entry for the stored row (as its DatabaseScheduler builds it) is
    due now, and in how many seconds it is next checked (due)."""
    entry = ModelEntry(PeriodicTask.objects.get(pk=task.pk), app=celery_app)  # type: ignore[no-untyped-call]
    due, next_check = entry.is_due()  # type: ignore[no-untyped-call]
    return bool(due), float(next_check)


def test_resuming_counts_from_now_as_beat_reads_it(boss: Actor) -> None:
    """Paused for two days, then resumed: none fires at once to catch up."""
    hour_ago = timezone.now().astimezone(UTC) - timedelta(hours=1)
    passed = Timing(Kind.CRONTAB, cron=f"{hour_ago.minute} {hour_ago.hour} * * *", timezone="UTC")
    hourly = Timing(Kind.INTERVAL, every=1, period="hours")
    tasks = {
        "hourly": services.schedule_save(progress_schedule("hourly", timing=hourly), actor=boss),
        "crontab": services.schedule_save(progress_schedule("daily", timing=passed), actor=boss),
        "started": services.schedule_save(
            progress_schedule("started", timing=hourly, start_time=hour_ago - timedelta(days=3)),
            actor=boss,
        ),
    }
    ids = [task.pk for task in tasks.values()]
    services.schedules_toggle(ids, actor=boss, enabled=False)
    PeriodicTask.objects.filter(pk__in=ids).update(date_changed=hour_ago - timedelta(days=2))

    services.schedules_toggle(ids, actor=boss, enabled=True)

    dues = {name: beat_due(task) for name, task in tasks.items()}
    assert not any(due for due, _ in dues.values()), dues
    assert 3500 < dues["hourly"][1] <= 3600
    assert 3500 < dues["started"][1] <= 3600
    # Next at the crontab's time tomorrow: 23 hours on (less the seconds past that minute).
    assert 23 * 3600 - 120 < dues["crontab"][1] <= 23 * 3600


def test_a_one_off_whose_time_passed_while_paused_is_not_resumed(boss: Actor) -> None:
    """Beat fires a clocked schedule whose time has passed at once, whatever its last run."""
    soon = timezone.now() + timedelta(hours=1)
    once = progress_schedule("once", timing=Timing(Kind.ONE_OFF, run_at=soon))
    task = services.schedule_save(once, actor=boss)
    services.schedules_toggle([task.pk], actor=boss, enabled=False)
    assert task.clocked is not None
    ClockedSchedule.objects.filter(pk=task.clocked.pk).update(
        clocked_time=timezone.now() - timedelta(minutes=1)
    )  # time passes
    task.refresh_from_db()

    with pytest.raises(services.ServiceError, match="has passed"):
        services.schedules_toggle([task.pk], actor=boss, enabled=True)
    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(replace(definition_of(task), enabled=True), actor=boss, task=task)

    assert "run_at" in caught.value.errors
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
    assert not AuditEntry.objects.filter(action="schedule.resume").exists()


def test_changing_the_timing_forgets_the_last_run(boss: Actor) -> None:
    daily = Timing(Kind.INTERVAL, every=1, period="days")
    hourly = Timing(Kind.INTERVAL, every=1, period="hours")
    task = services.schedule_save(progress_schedule(timing=daily), actor=boss)
    fired = timezone.now() - timedelta(hours=10)
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=fired, total_run_count=3)
    task.refresh_from_db()

    services.schedule_save(progress_schedule(timing=hourly), actor=boss, task=task)

    due, next_check = beat_due(task)
    assert not due  # not "10 hours since the last run, so due at once"
    assert 3500 < next_check <= 3600
    # An edit that keeps the timing keeps the last run.
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=fired)
    task.refresh_from_db()
    services.schedule_save(progress_schedule(timing=hourly, description="x"), actor=boss, task=task)
    assert PeriodicTask.objects.get(pk=task.pk).last_run_at == fired


def test_duplicate_beat_rows_are_reused_not_an_error(boss: Actor) -> None:
    """Beat's schedule tables have no unique constraint, so duplicate rows exist."""
    at = timezone.now() + timedelta(days=1)
    cron = {"minute": "30", "hour": "2", "day_of_month": "*", "month_of_year": "*"}
    crontabs = [
        CrontabSchedule.objects.create(**cron, day_of_week="1-5", timezone="Europe/Berlin")
        for _ in range(2)
    ]
    intervals = [IntervalSchedule.objects.create(every=7, period="minutes") for _ in range(2)]
    clocks = [ClockedSchedule.objects.create(clocked_time=at) for _ in range(2)]

    a = services.schedule_save(progress_schedule("a"), actor=boss)
    b_timing = Timing(Kind.INTERVAL, every=7, period="minutes")
    b = services.schedule_save(progress_schedule("b", timing=b_timing), actor=boss)
    c_timing = Timing(Kind.ONE_OFF, run_at=at)
    c = services.schedule_save(progress_schedule("c", timing=c_timing), actor=boss)

    assert (a.crontab_id, b.interval_id, c.clocked_id) == (
        crontabs[0].pk,
        intervals[0].pk,
        clocks[0].pk,
    )


# --- the job's own permission --------------------------------------------------------------

GUARDED = "tests.guarded_job"


@pytest.fixture
def guarded_job() -> Iterator[str]:
    """A job that asks for its own permission, registered for this test only."""

    @job(name=GUARDED, title="Guarded", retry="no_retry", permission="auth.change_user")
    def guarded(ctx: JobContext) -> None:
        """Never runs."""

    try:
        yield GUARDED
    finally:
        registry._REGISTRY.pop(GUARDED, None)
        current_app.tasks.pop(GUARDED, None)


def manager(username: str, *codenames: str) -> Actor:
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["manage_schedules", *codenames])
    )
    return Actor(user=User.objects.get(pk=user.pk))  # fresh permission cache


def test_pause_delete_and_reset_need_the_jobs_own_permission(guarded_job: str) -> None:
    every = IntervalSchedule.objects.create(every=5, period="minutes")
    task = PeriodicTask.objects.create(name="guarded", task=guarded_job, interval=every)
    DeclaredSchedule.objects.create(periodic_task=task, origin="code", declared={})
    ops = manager("ops")

    with pytest.raises(PermissionDenied):
        services.schedules_toggle([task.pk], actor=ops, enabled=False)
    with pytest.raises(PermissionDenied):
        services.schedule_delete(task, actor=ops)
    with pytest.raises(PermissionDenied):
        services.schedule_reset(task, actor=ops)

    assert PeriodicTask.objects.get(pk=task.pk).enabled
    assert not AuditEntry.objects.filter(action__startswith="schedule.").exists()
    allowed = manager("admin-ops", "change_user")
    assert services.schedules_toggle([task.pk], actor=allowed, enabled=False) != []


# --- plain Celery tasks --------------------------------------------------------------------


def test_a_plain_task_must_be_one_celery_knows(boss: Actor) -> None:
    ghost = ScheduleDefinition(name="ghost", job="no.such.task", timing=CRON)
    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(ghost, actor=boss)
    assert "no.such.task" in caught.value.errors["job"]
    assert not PeriodicTask.objects.filter(name="ghost").exists()

    adder = ScheduleDefinition(name="adder", job="demo.add", timing=CRON, params={"x": 1, "y": 2})
    assert services.schedule_save(adder, actor=boss).task == "demo.add"
