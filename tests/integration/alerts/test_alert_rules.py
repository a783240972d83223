"""Alert rules on the database: what fires, what resolves, what is sent and when.

Runs reach their final states through the worker runtime's own code (lifecycle, the reaper), so
the hook that fires failure alerts is the one a worker calls. Times are passed as `now`, never
waited for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from celery.utils import uuid
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app.alerts import evaluate, failures
from tasks_app.alerts.missed import due_time
from tasks_app.alerts.open_failures import open_failures
from tasks_app.models import (
    Alert,
    AlertEvent,
    AlertMessage,
    AlertRule,
    AlertRuleKind,
    RollupMark,
    Run,
    RunSource,
    RunState,
)
from tasks_app.worker import lifecycle, reaper
from tests.support.history import add_history
from tests.support.ledger import make_run

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
SEND_EMAIL = "taskdeck.send_email"  # needs tasks_app.send_email besides reading runs
CLEANUP = "taskdeck.cleanup"  # needs tasks_app.run_cleanup


@pytest.fixture(autouse=True)
def no_cached_failures() -> Iterator[None]:
    """Each test starts with this process's cache of failing jobs unread, as a new worker."""
    open_failures.forget()
    yield
    open_failures.forget()


@pytest.fixture
def hooks(django_capture_on_commit_callbacks: Capture) -> Callable[[], Any]:
    """Run what the worker's hook defers to the commit (tests run in a transaction)."""

    def committed() -> AbstractContextManager[list[Callable[[], Any]]]:
        return django_capture_on_commit_callbacks(execute=True)

    return committed


def rule(kind: AlertRuleKind, name: str = "", **fields: Any) -> AlertRule:
    return AlertRule.objects.create(name=name or f"{kind} rule", kind=kind, **fields)


def queued(job: str = "demo.flaky", *, schedule: str = "", params: Any = None) -> Run:
    return lifecycle.record_queued(
        lifecycle.QueuedRun(
            task_id=uuid(),
            job_name=job,
            params=params or {},
            args=[],
            source=RunSource.SCHEDULE if schedule else RunSource.CODE,
            schedule_name=schedule,
            queue="default",
        )
    )


def finish(run: Run, state: RunState, error: str = "") -> Run:
    """Start and end a run the way a worker's backend does."""
    started = lifecycle.mark_started(
        run.task_id, retries=0, worker="w@host", first_seen=lifecycle.QueuedRun(
            task_id=run.task_id, job_name=run.job_name, params={}, args=[]
        ),
    )  # fmt: skip
    assert started is lifecycle.StartOutcome.STARTED
    if error == "" and state != RunState.SUCCESS:
        error = "RuntimeError: boom"
    assert lifecycle.mark_finished(run.task_id, state, error=error)
    run.refresh_from_db()
    return run


def fail(hooks: Callable[[], Any], job: str = "demo.flaky", **kwargs: Any) -> Run:
    with hooks():
        return finish(queued(job, **kwargs), RunState.FAILURE)


def fired_messages(r: AlertRule) -> list[AlertMessage]:
    return list(AlertMessage.objects.filter(rule=r, event=AlertEvent.FIRED).order_by("id"))


def resolved_messages(r: AlertRule) -> list[AlertMessage]:
    return list(AlertMessage.objects.filter(rule=r, event=AlertEvent.RESOLVED).order_by("id"))


@override_settings(TASKDECK_BASE_URL="https://deck.example.com")
def test_a_failed_run_fires_one_alert_and_one_message_at_once_without_its_parameters(
    db: None, hooks: Callable[[], Any]
) -> None:
    failing = rule(AlertRuleKind.RUN_FAILED, job_name="demo.sensitive")
    run = queued("demo.sensitive", params={"password": "hunter2-secret", "label": "x"})

    with hooks():
        finish(run, RunState.FAILURE, error="ValueError: bad\n  more lines " + "y" * 400)

    [alert] = Alert.objects.filter(rule=failing)
    assert (alert.key, alert.run_id, alert.job_name) == (f"run:{run.task_id}", run.pk, run.job_name)
    assert alert.summary == "demo.sensitive failed: ValueError: bad"
    [message] = fired_messages(failing)
    assert alert.fired_message_id == message.pk
    assert message.alert_count == 1
    assert message.subject == f"[Taskdeck] {failing.name}: demo.sensitive failed: ValueError: bad"
    payload = message.payload
    assert payload["event"] == "fired"
    assert payload["rule"] == {"id": failing.pk, "name": failing.name, "kind": "run_failed"}
    assert (payload["alert_count"], payload["more"]) == (1, 0)
    [entry] = payload["alerts"]
    assert entry["task_id"] == run.task_id
    assert entry["state"] == "FAILURE"
    assert entry["job"] == "demo.sensitive"
    assert entry["url"] == f"https://deck.example.com/runs/{run.task_id}/"
    assert entry["resolved_at"] is None
    assert "hunter2" not in json.dumps(payload)
    assert "hunter2" not in json.dumps(alert.details)

    # The periodic pass sees the alert the hook fired: nothing new.
    assert evaluate.evaluate_all()["fired"] == 0
    assert Alert.objects.count() == 1
    assert len(fired_messages(failing)) == 1


def test_the_hook_costs_one_query_without_failure_rules_and_none_for_a_success_in_vain(
    db: None, hooks: Callable[[], Any], django_assert_num_queries: Any
) -> None:
    rule(AlertRuleKind.QUEUED_TOO_LONG, threshold_seconds=60)
    rule(AlertRuleKind.RUN_FAILED, name="off", enabled=False)

    with django_assert_num_queries(1), hooks():
        evaluate.on_run_final("some-task", RunState.FAILURE)
    # The process's first success reads which jobs have failure alerts open (none)...
    with django_assert_num_queries(1), hooks():
        evaluate.on_run_final("some-task", RunState.SUCCESS, "demo.flaky")
    # ... and while that is fresh, successes and other final states cost nothing.
    with django_assert_num_queries(0), hooks():
        evaluate.on_run_final("other-task", RunState.SUCCESS, "demo.flaky")
        evaluate.on_run_final("other-task", RunState.SUCCESS)
        evaluate.on_run_final("other-task", RunState.REVOKED)


def test_a_success_of_another_job_costs_no_query_while_the_cache_is_fresh(
    db: None, hooks: Callable[[], Any], django_assert_num_queries: Any
) -> None:
    rule(AlertRuleKind.RUN_FAILED)
    fail(hooks, "demo.progress")
    assert open_failures.jobs() == {"demo.progress"}  # read as a worker's earlier success did

    with django_assert_num_queries(0), hooks():
        evaluate.on_run_final("unrelated", RunState.SUCCESS, "demo.flaky")
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1


def test_a_rule_with_a_job_name_only_takes_that_job(db: None, hooks: Callable[[], Any]) -> None:
    flaky_only = rule(AlertRuleKind.RUN_FAILED, job_name="demo.flaky")
    any_job = rule(AlertRuleKind.RUN_FAILED, name="any job")

    other = fail(hooks, "demo.progress")
    flaky = fail(hooks, "demo.flaky")
    # A failure the hook missed (written behind its back) is caught up by the periodic pass.
    missed = queued("demo.progress")
    Run.objects.filter(pk=missed.pk).update(
        state=RunState.FAILURE, finished_at=timezone.now(), error="boom"
    )
    evaluate.evaluate_all()

    assert set(Alert.objects.filter(rule=flaky_only).values_list("run_id", flat=True)) == {flaky.pk}
    assert set(Alert.objects.filter(rule=any_job).values_list("run_id", flat=True)) == {
        other.pk, flaky.pk, missed.pk,
    }  # fmt: skip


def test_disabled_rules_are_ignored(db: None, hooks: Callable[[], Any]) -> None:
    for kind in AlertRuleKind:
        rule(kind, enabled=False, threshold_seconds=1, threshold_count=1)
    late = queued("demo.progress")
    Run.objects.filter(pk=late.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    fail(hooks, schedule="nightly")

    counts = evaluate.evaluate_all(timezone.now() + timedelta(hours=1))

    assert counts["rules"] == 0
    assert not Alert.objects.exists()
    assert not AlertMessage.objects.exists()


def test_throttling_sends_the_first_alert_at_once_and_counts_the_rest_after_the_window(
    db: None, hooks: Callable[[], Any]
) -> None:
    throttled = rule(AlertRuleKind.RUN_FAILED, throttle_minutes=10)

    runs = [fail(hooks) for _ in range(3)]

    assert Alert.objects.filter(rule=throttled).count() == 3
    [first] = fired_messages(throttled)
    assert first.alert_count == 1
    assert first.payload["alerts"][0]["task_id"] == runs[0].task_id
    held = Alert.objects.filter(rule=throttled, fired_message__isnull=True)
    assert held.count() == 2

    now = timezone.now()
    assert evaluate.evaluate_all(now + timedelta(minutes=5))["messages"] == 0
    assert len(fired_messages(throttled)) == 1

    assert evaluate.evaluate_all(now + timedelta(minutes=11))["messages"] == 1
    first_again, second = fired_messages(throttled)
    assert first_again == first
    assert second.alert_count == 2
    assert second.payload["alert_count"] == 2
    assert {entry["task_id"] for entry in second.payload["alerts"]} == {
        runs[1].task_id, runs[2].task_id,
    }  # fmt: skip
    assert second.subject == f"[Taskdeck] {throttled.name}: 2 alerts"
    assert not held.exists()

    assert evaluate.evaluate_all(now + timedelta(minutes=30))["messages"] == 0
    assert len(fired_messages(throttled)) == 2


def test_an_unthrottled_rule_sends_a_message_per_alert(db: None, hooks: Callable[[], Any]) -> None:
    each = rule(AlertRuleKind.RUN_FAILED, throttle_minutes=0)

    for _ in range(3):
        fail(hooks)

    assert [m.alert_count for m in fired_messages(each)] == [1, 1, 1]


def test_a_later_success_of_the_job_resolves_with_one_resolved_message(
    db: None, hooks: Callable[[], Any]
) -> None:
    failing = rule(AlertRuleKind.RUN_FAILED, throttle_minutes=0)
    earlier_success = queued()  # queued first, succeeds before the failures: resolves nothing
    finish(earlier_success, RunState.SUCCESS)
    failed = [fail(hooks), fail(hooks)]
    with hooks():
        other_job = finish(queued("demo.progress"), RunState.LOST)

    assert evaluate.evaluate_all()["resolved"] == 0
    finish(queued(), RunState.SUCCESS)
    counts = evaluate.evaluate_all()

    assert counts["resolved"] == 2
    [message] = resolved_messages(failing)
    assert message.alert_count == 2
    assert message.subject == f"[Taskdeck] Resolved: {failing.name}: 2 alerts"
    assert {e["task_id"] for e in message.payload["alerts"]} == {r.task_id for r in failed}
    assert all(e["resolved_at"] for e in message.payload["alerts"])
    still = Alert.objects.get(rule=failing, resolved_at__isnull=True)
    assert still.run_id == other_job.pk
    assert still.summary == "demo.progress was lost: RuntimeError: boom"
    assert evaluate.evaluate_all()["messages"] == 0  # resolved once, announced once


def test_no_resolved_message_when_the_rule_says_so(db: None, hooks: Callable[[], Any]) -> None:
    quiet = rule(AlertRuleKind.RUN_FAILED, notify_resolved=False)
    fail(hooks)
    finish(queued(), RunState.SUCCESS)

    assert evaluate.evaluate_all()["resolved"] == 1
    assert not resolved_messages(quiet)


def test_a_schedule_failing_fires_after_n_in_a_row_and_not_before(
    db: None, hooks: Callable[[], Any]
) -> None:
    streaks = rule(AlertRuleKind.SCHEDULE_FAILING, schedule_name="nightly", threshold_count=3)
    alerts = Alert.objects.filter(rule=streaks)

    fail(hooks, schedule="nightly")
    fail(hooks, schedule="nightly")
    fail(hooks, schedule="other")  # another schedule's failures do not count
    finish(queued(schedule="nightly"), RunState.SUCCESS)  # breaks the streak
    fail(hooks, schedule="nightly")
    fail(hooks, schedule="nightly")
    assert not alerts.exists()

    third = fail(hooks, schedule="nightly")
    [alert] = alerts.all()
    assert alert.key == f"streak:nightly:{third.task_id}"
    assert alert.summary == "Schedule nightly failed 3 times in a row (last: RuntimeError: boom)"
    fail(hooks, schedule="nightly")  # the streak goes on: still one open alert
    evaluate.evaluate_all()
    assert alerts.count() == 1
    assert len(fired_messages(streaks)) == 1

    finish(queued(schedule="nightly"), RunState.SUCCESS)
    assert evaluate.evaluate_all()["resolved"] == 1
    assert len(resolved_messages(streaks)) == 1
    fail(hooks, schedule="nightly")
    fail(hooks, schedule="nightly")
    assert alerts.count() == 1
    fail(hooks, schedule="nightly")
    assert alerts.filter(resolved_at__isnull=True).count() == 1
    assert alerts.count() == 2


def test_a_run_lost_by_the_reaper_fires(db: None, hooks: Callable[[], Any]) -> None:
    lost = rule(AlertRuleKind.RUN_FAILED)
    run = queued("demo.progress")
    finish_started = timezone.now() - timedelta(hours=1)
    Run.objects.filter(pk=run.pk).update(
        state=RunState.STARTED, started_at=finish_started, heartbeat_at=finish_started
    )

    with hooks():
        outcome = reaper.reap(lost_after=60)

    assert outcome.lost == [run.task_id]
    [alert] = Alert.objects.filter(rule=lost)
    assert alert.summary.startswith("demo.progress was lost: Worker lost")
    assert alert.details["state"] == RunState.LOST


def test_running_too_long_fires_once_and_resolves_when_the_run_ends(
    db: None, hooks: Callable[[], Any]
) -> None:
    slow = rule(AlertRuleKind.RUNNING_TOO_LONG, threshold_seconds=300)
    now = timezone.now()
    long_running, recent = queued("demo.progress"), queued("demo.progress")
    for run, started in ((long_running, now - timedelta(minutes=10)), (recent, now)):
        Run.objects.filter(pk=run.pk).update(state=RunState.PROGRESS, started_at=started)

    assert evaluate.evaluate_all(now)["fired"] == 1
    assert evaluate.evaluate_all(now)["fired"] == 0
    [alert] = Alert.objects.filter(rule=slow)
    assert alert.run_id == long_running.pk
    assert alert.summary == "demo.progress has been running for over 5 min"

    Run.objects.filter(pk=long_running.pk).update(state=RunState.RETRY)  # not final yet
    assert evaluate.evaluate_all(now)["resolved"] == 0
    lifecycle.mark_finished(long_running.task_id, RunState.SUCCESS)
    assert evaluate.evaluate_all(now + timedelta(seconds=1))["resolved"] == 1
    assert len(resolved_messages(slow)) == 1
    # The other run is late now; it fires on its own key.
    assert evaluate.evaluate_all(now + timedelta(minutes=6))["fired"] == 1


def test_queued_too_long_counts_from_the_start_time_and_resolves_when_it_starts(
    db: None,
) -> None:
    waiting = rule(AlertRuleKind.QUEUED_TOO_LONG, threshold_seconds=60)
    now = timezone.now()
    old, delayed = queued(), queued()
    Run.objects.filter(pk__in=[old.pk, delayed.pk]).update(queued_at=now - timedelta(minutes=5))
    Run.objects.filter(pk=delayed.pk).update(eta=now + timedelta(minutes=1))

    assert evaluate.evaluate_all(now)["fired"] == 1
    [alert] = Alert.objects.filter(rule=waiting)
    assert alert.run_id == old.pk
    assert alert.summary == "demo.flaky has waited over 60 s on queue default without starting"

    Run.objects.filter(pk=old.pk).update(state=RunState.STARTED)
    counts = evaluate.evaluate_all(now + timedelta(minutes=3))  # past the delayed run's eta
    assert (counts["fired"], counts["resolved"]) == (1, 1)
    assert Alert.objects.get(rule=waiting, resolved_at__isnull=True).run_id == delayed.pk


def test_a_missed_schedule_fires_once_and_resolves_when_beat_records_the_run(db: None) -> None:
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    schedule = PeriodicTask.objects.create(
        name="alerts-minutely", task="demo.flaky", interval=every_minute, enabled=True
    )
    PeriodicTask.objects.create(
        name="alerts-paused", task="demo.flaky", interval=every_minute, enabled=False
    )
    watch = rule(
        AlertRuleKind.SCHEDULE_MISSED, schedule_name="alerts-minutely", threshold_seconds=30
    )
    paused = rule(AlertRuleKind.SCHEDULE_MISSED, name="paused", schedule_name="alerts-paused",
                  threshold_seconds=30)  # fmt: skip
    due = due_time(schedule)
    assert due is not None
    assert due == schedule.date_changed + timedelta(seconds=60)  # never ran: from its creation

    assert evaluate.evaluate_all(due + timedelta(seconds=29))["fired"] == 0  # within the grace
    assert evaluate.evaluate_all(due + timedelta(seconds=31))["fired"] == 1
    assert evaluate.evaluate_all(due + timedelta(seconds=40))["fired"] == 0
    [alert] = Alert.objects.filter(rule=watch)
    assert alert.key == f"missed:alerts-minutely:{due.isoformat()}"
    assert alert.schedule_name == "alerts-minutely"
    assert alert.summary.startswith("Schedule alerts-minutely did not fire when due at ")
    assert not Alert.objects.filter(rule=paused).exists()
    assert len(fired_messages(watch)) == 1

    # Beat records the run it sent (after the due time): resolved, and nothing new is due yet.
    PeriodicTask.objects.filter(pk=schedule.pk).update(
        last_run_at=due + timedelta(seconds=35), total_run_count=1
    )
    counts = evaluate.evaluate_all(due + timedelta(seconds=45))
    assert (counts["fired"], counts["resolved"]) == (0, 1)
    assert len(resolved_messages(watch)) == 1

    # Beat stops again: the next due time (from the recorded run) is missed in turn.
    assert evaluate.evaluate_all(due + timedelta(seconds=35 + 60 + 31))["fired"] == 1
    assert Alert.objects.filter(rule=watch, resolved_at__isnull=True).count() == 1


def in_parallel(work: Callable[[], object], threads: int = 2) -> None:
    """`work` in threads (each with its own database connection) at the same moment."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def evaluate_now() -> None:
        try:
            start.wait()
            work()
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    started = [threading.Thread(target=evaluate_now) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_fire_one_alert_per_rule_and_run_and_one_message() -> None:
    waiting = rule(AlertRuleKind.QUEUED_TOO_LONG, threshold_seconds=60)
    failing = rule(AlertRuleKind.RUN_FAILED)
    now = timezone.now()
    late = [queued() for _ in range(5)]
    Run.objects.filter(pk__in=[r.pk for r in late]).update(queued_at=now - timedelta(minutes=5))
    failed = [queued("demo.progress") for _ in range(5)]
    Run.objects.filter(pk__in=[r.pk for r in failed]).update(
        state=RunState.FAILURE, finished_at=now, error="boom"
    )  # behind the hook's back: both evaluations find them

    for _ in range(3):
        in_parallel(lambda: evaluate.evaluate_all(now))

    for r, runs in ((waiting, late), (failing, failed)):
        alerts = Alert.objects.filter(rule=r)
        assert sorted(alerts.values_list("run_id", flat=True)) == sorted(x.pk for x in runs)
        [message] = fired_messages(r)
        assert message.alert_count == 5
        assert not alerts.filter(fired_message__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_two_hooks_at_once_for_one_failed_run_fire_one_alert() -> None:
    failing = rule(AlertRuleKind.RUN_FAILED, throttle_minutes=0)
    for _ in range(3):
        run = queued()
        Run.objects.filter(pk=run.pk).update(
            state=RunState.FAILURE, finished_at=timezone.now(), error="boom"
        )  # behind the hook's back, so the three below race to fire first
        task_id = run.task_id

        in_parallel(partial(evaluate.on_run_final, task_id, RunState.FAILURE), threads=3)

        assert Alert.objects.filter(rule=failing, run=run).count() == 1
    # Unthrottled, yet still one message per alert: the hooks raced for the same alert.
    assert [m.alert_count for m in fired_messages(failing)] == [1, 1, 1]


def test_a_success_resolves_its_jobs_and_schedules_failure_alerts_at_once(
    db: None, hooks: Callable[[], Any]
) -> None:
    failing = rule(AlertRuleKind.RUN_FAILED, throttle_minutes=0)
    streaks = rule(AlertRuleKind.SCHEDULE_FAILING, name="streaks", threshold_count=1)
    earlier = queued()  # queued before the failure: its success says nothing about it
    failed = fail(hooks, schedule="nightly")
    other = fail(hooks, "demo.progress")
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    assert open_alerts.count() == 3

    with hooks():
        finish(earlier, RunState.SUCCESS)
    assert open_alerts.count() == 3

    with hooks():
        finish(queued(schedule="nightly"), RunState.SUCCESS)

    assert list(open_alerts.values_list("run_id", flat=True)) == [other.pk]
    for r in (failing, streaks):
        [message] = resolved_messages(r)
        assert [e["task_id"] for e in message.payload["alerts"]] == [failed.task_id]
    assert not RollupMark.objects.exists()  # no periodic pass did it


def test_a_rule_for_any_job_covers_only_the_jobs_its_creator_may_read(
    db: None, hooks: Callable[[], Any], django_user_model: Any
) -> None:
    plain = django_user_model.objects.create_user("plain", is_staff=True)
    mailer = django_user_model.objects.create_user("mailer", is_staff=True)
    mailer.user_permissions.add(Permission.objects.get(codename="send_email"))
    boss = django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True)
    gone = django_user_model.objects.create_user("gone", is_staff=True, is_superuser=True)
    gone.is_active = False
    gone.save()
    rules = {
        "plain": rule(AlertRuleKind.RUN_FAILED, "plain", created_by=plain),
        "mailer": rule(AlertRuleKind.RUN_FAILED, "mailer", created_by=mailer),
        "boss": rule(AlertRuleKind.RUN_FAILED, "boss", created_by=boss),
        "inactive": rule(AlertRuleKind.RUN_FAILED, "inactive", created_by=gone),
        "nobody": rule(AlertRuleKind.RUN_FAILED, "nobody"),
        # Naming its job, checked when it was saved: covers it whoever saved it.
        "named": rule(AlertRuleKind.RUN_FAILED, "named", job_name=SEND_EMAIL, created_by=plain),
        "streak": rule(AlertRuleKind.SCHEDULE_FAILING, "streak", threshold_count=1,
                       created_by=plain),
        "slow": rule(AlertRuleKind.RUNNING_TOO_LONG, "slow", threshold_seconds=60,
                     created_by=plain),
    }  # fmt: skip

    fail(hooks, SEND_EMAIL, schedule="mail")
    fail(hooks, CLEANUP)
    fail(hooks, "demo.flaky", schedule="flaky")
    missed = queued(SEND_EMAIL)  # failed behind the hook's back: the periodic pass's turn
    Run.objects.filter(pk=missed.pk).update(
        state=RunState.FAILURE, finished_at=timezone.now(), error="SMTPError: secret relay"
    )
    hour_ago = timezone.now() - timedelta(hours=1)
    for job in (SEND_EMAIL, "demo.progress"):
        Run.objects.filter(pk=queued(job).pk).update(state=RunState.STARTED, started_at=hour_ago)
    evaluate.evaluate_all()

    def covered(name: str) -> set[str]:
        return set(Alert.objects.filter(rule=rules[name]).values_list("job_name", flat=True))

    everything = {SEND_EMAIL, CLEANUP, "demo.flaky"}
    assert covered("plain") == {"demo.flaky"}
    assert covered("mailer") == {"demo.flaky", SEND_EMAIL}
    assert covered("boss") == everything
    assert covered("inactive") == {"demo.flaky"}
    assert covered("nobody") == {"demo.flaky"}
    assert covered("named") == {SEND_EMAIL}
    assert covered("streak") == {"demo.flaky"}
    assert covered("slow") == {"demo.progress"}
    assert Alert.objects.filter(rule=rules["boss"], run=missed).exists()
    for name in ("plain", "nobody", "streak"):
        sent = json.dumps([m.payload for m in AlertMessage.objects.filter(rule=rules[name])])
        assert SEND_EMAIL not in sent
        assert "secret relay" not in sent


def test_the_creators_permissions_are_read_once_per_pass(db: None, django_user_model: Any) -> None:
    plain = django_user_model.objects.create_user("plain", is_staff=True)
    for n in range(5):
        rule(AlertRuleKind.RUN_FAILED, f"rule {n}", created_by=plain)
    evaluate.evaluate_all()  # warm: nothing to fire, so the count below is the rules' own work
    with CaptureQueriesContext(connection) as captured:
        evaluate.evaluate_all()
    permission_reads = [q for q in captured if "auth_permission" in q["sql"]]
    assert 1 <= len(permission_reads) <= 2  # the user's and their groups' permissions, once


def test_every_pass_records_when_it_ran(db: None) -> None:
    rule(AlertRuleKind.QUEUED_TOO_LONG, threshold_seconds=60)
    before = timezone.now()
    evaluate.evaluate_all()
    first = RollupMark.objects.get(name="alerts_evaluated").upto
    evaluate.evaluate_all(timezone.now() + timedelta(hours=1))  # as of any time: it records now
    [mark] = RollupMark.objects.filter(name="alerts_evaluated")
    assert before <= first <= mark.upto <= timezone.now()


def test_old_open_alerts_resolve_however_many_newer_ones_stay_open(db: None) -> None:
    failing = rule(AlertRuleKind.RUN_FAILED)
    start = timezone.now() - timedelta(days=2)
    oldest = make_run(job_name="demo.flaky", queued_at=start)
    # More open alerts than a pass ever looked at before, all newer, of a job that keeps failing.
    newer = Run.objects.bulk_create(
        Run(task_id=uuid(), job_name="demo.progress", state=RunState.FAILURE,
            queued_at=start + timedelta(seconds=n + 1))
        for n in range(1200)
    )  # fmt: skip
    Alert.objects.bulk_create(
        Alert(rule=failing, key=f"run:{r.task_id}", run=r, job_name=r.job_name, summary="x",
              fired_at=r.queued_at)
        for r in [oldest, *newer]
    )  # fmt: skip
    gone = make_run(job_name="demo.flaky", queued_at=start + timedelta(minutes=1))
    Alert.objects.create(
        rule=failing, key=f"run:{gone.task_id}", run=gone, job_name="demo.flaky", summary="x",
        fired_at=start + timedelta(minutes=1),
    )  # fmt: skip
    gone.delete()  # its alert keeps its firing time to compare with
    make_run(RunState.SUCCESS, job_name="demo.flaky", queued_at=start + timedelta(hours=1))

    with CaptureQueriesContext(connection) as captured:
        resolved = failures.resolve_recovered(failing, timezone.now())

    assert resolved == 2
    assert not Alert.objects.filter(job_name="demo.flaky", resolved_at__isnull=True).exists()
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1200
    # One query for the groups, one lookup per job, one update per job recovered: not per alert.
    assert len(captured) <= 5


def test_the_success_lookups_use_the_runs_name_and_time_indexes(db: None) -> None:
    """The query plan of the lookup a resolution makes, on a history big enough for the planner
    to care: a range of the (job_name | schedule_name, -queued_at, -id) index, no scan."""
    now = timezone.now()
    add_history(20000, now, job_names=40, schedule_names=40, failure_every=3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    for name, index in (
        ({"job_name": "job-7"}, "run_job_queued_idx"),
        ({"schedule_name": "schedule-7"}, "run_schedule_queued_idx"),
    ):
        with CaptureQueriesContext(connection) as captured:
            failures.latest_success(after=now - timedelta(hours=1), **name)
        [query] = captured
        explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        with connection.cursor() as cursor:
            cursor.execute(explain + query["sql"])
            plan = " ".join(str(row) for row in cursor.fetchall())
        assert index in plan, plan
