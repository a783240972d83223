"""The built-in cleanup and email jobs, run directly on the test database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from tasks_app.jobs.errors import BadInput
from tasks_app.jobs.testing import run_job
from tasks_app.models import (
    Alert,
    AlertEvent,
    AlertMessage,
    AlertRule,
    AlertRuleKind,
    JobHourStats,
    Run,
    RunState,
)


def old_run(task_id: str, state: RunState, days_ago: int) -> Run:
    when = timezone.now() - timedelta(days=days_ago)
    return Run.objects.create(
        task_id=task_id, job_name="demo.add", state=state, queued_at=when, finished_at=when
    )


@pytest.mark.django_db
def test_cleanup_deletes_old_runs_in_batches_and_keeps_failures_longer() -> None:
    old_run("old-ok", RunState.SUCCESS, 40)
    old_run("recent-ok", RunState.SUCCESS, 10)
    old_run("old-failed", RunState.FAILURE, 40)
    old_run("ancient-failed", RunState.FAILURE, 100)
    Run.objects.create(
        task_id="running", job_name="demo.add", state=RunState.STARTED,
        queued_at=timezone.now() - timedelta(days=50),
    )  # fmt: skip
    TaskResult.objects.create(task_id="old-ok", status="SUCCESS")
    TaskResult.objects.filter(task_id="old-ok").update(
        date_done=timezone.now() - timedelta(days=40)
    )

    outcome = run_job("taskdeck.cleanup", days=30, failed_days=90, batch_size=100)

    remaining = set(Run.objects.values_list("task_id", flat=True))
    assert remaining == {"recent-ok", "old-failed", "running"}
    assert not TaskResult.objects.filter(task_id="old-ok").exists()
    assert outcome.counters == {"deleted_runs": 2, "deleted_results": 1}
    assert outcome.result["counters"] == {"deleted_runs": 2, "deleted_results": 1}


@pytest.mark.django_db
def test_cleanup_and_the_reaper_are_scheduled_by_a_migration() -> None:
    cleanup = PeriodicTask.objects.get(task="taskdeck.cleanup")
    reaper = PeriodicTask.objects.get(task="taskdeck.reap_lost_runs")

    assert cleanup.enabled
    assert cleanup.crontab is not None
    assert (cleanup.crontab.hour, cleanup.crontab.minute) == ("3", "30")
    assert reaper.interval is not None
    assert reaper.interval.every == 30


def test_send_email_uses_django_mail() -> None:
    outcome = run_job("taskdeck.send_email", to=["ops@example.com"], subject="Hi", body="Body")

    assert outcome.result == {"sent": 1, "recipients": 1}
    assert mail.outbox[-1].subject == "Hi"
    assert mail.outbox[-1].to == ["ops@example.com"]


def test_send_email_refuses_a_bad_address_without_retrying() -> None:
    with pytest.raises(BadInput, match="not an email address"):
        run_job("taskdeck.send_email", to=["nope"], subject="Hi")


@pytest.mark.django_db
def test_cleanup_deletes_old_alert_history_but_keeps_open_alerts_and_their_messages() -> None:
    long_ago = timezone.now() - timedelta(days=100)
    rule = AlertRule.objects.create(name="failures", kind=AlertRuleKind.RUN_FAILED)
    old_message = AlertMessage.objects.create(
        rule=rule, event=AlertEvent.FIRED, subject="old", created_at=long_ago
    )
    open_message = AlertMessage.objects.create(
        rule=rule, event=AlertEvent.FIRED, subject="still firing", created_at=long_ago
    )
    Alert.objects.create(
        rule=rule, key="run:a", summary="old", fired_at=long_ago, resolved_at=long_ago,
        fired_message=old_message,
    )  # fmt: skip
    Alert.objects.create(
        rule=rule, key="run:b", summary="open", fired_at=long_ago, fired_message=open_message
    )
    # Held back by its rule's throttle: no message yet (NULL must not stop the others' cleanup).
    Alert.objects.create(rule=rule, key="run:c", summary="held", fired_at=long_ago)
    JobHourStats.objects.create(job_name="demo.add", state="SUCCESS", hour=long_ago, count=1)

    outcome = run_job("taskdeck.cleanup", days=30, failed_days=90, batch_size=100)

    assert sorted(Alert.objects.values_list("key", flat=True)) == ["run:b", "run:c"]
    assert list(AlertMessage.objects.values_list("subject", flat=True)) == ["still firing"]
    assert not JobHourStats.objects.exists()
    assert outcome.counters == {
        "deleted_alerts": 1,
        "deleted_alert_messages": 1,
        "deleted_hour_stats": 1,
    }
