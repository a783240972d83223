"""Runs go through real Redis to a real worker, and the ledger keeps what Celery forgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django_celery_results.models import TaskResult

from tasks_app import services
from tasks_app.demo import add
from tasks_app.jobs.registry import get_job
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess


def test_a_launched_job_is_recorded_queued_then_succeeds_with_its_result(
    worker: WorkerProcess,
) -> None:
    actor = operator()

    run = services.job_launch("demo.progress", {"steps": 3, "step_seconds": 0.01}, actor=actor)

    assert run.state == RunState.PENDING  # recorded before any worker saw it
    assert run.params == {"steps": 3, "step_seconds": 0.01}
    assert (run.source, run.actor_label, run.queue) == (RunSource.FORM, "operator", "default")
    done = finished(run.task_id)
    assert done.state == RunState.SUCCESS, done.error
    assert (done.progress_done, done.progress_total) == (3, 3)
    assert done.progress_message == "Step 3 of 3"
    assert done.attempts == 1
    assert done.worker.startswith("test-worker")
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.queued_at <= done.started_at <= done.finished_at
    assert done.log[-1]["message"] == "Took 3 steps."
    result = TaskResult.objects.get(task_id=run.task_id)
    assert (result.status, json.loads(result.result)) == ("SUCCESS", {"steps": 3})
    assert json.loads(result.task_kwargs) == {"steps": 3, "step_seconds": 0.01}
    entry = AuditEntry.objects.get(action="run.launch", target_id=run.task_id)
    assert entry.actor_label == "operator"
    assert entry.details["params"] == {"steps": 3, "step_seconds": 0.01}


def test_a_failing_job_ends_failed_with_its_traceback(worker: WorkerProcess) -> None:
    run = services.job_launch("demo.flaky", {"failure_rate": 1}, actor=operator())

    done = finished(run.task_id)

    assert done.state == RunState.FAILURE
    assert done.error.startswith("RuntimeError: demo.flaky failed")
    result = TaskResult.objects.get(task_id=run.task_id)
    assert result.status == "FAILURE"
    assert "Traceback" in result.traceback
    assert "RuntimeError" in result.traceback


def test_a_non_retriable_error_fails_at_once_despite_a_retry_policy(worker: WorkerProcess) -> None:
    assert get_job("taskdeck.send_email").retry.max_retries == 3

    run = services.job_launch(
        "taskdeck.send_email", {"to": ["not an address"], "subject": "hi"}, actor=operator()
    )

    done = finished(run.task_id)
    assert done.state == RunState.FAILURE
    assert done.attempts == 1
    assert done.error == "BadInput: 'not an address' is not an email address."


def test_retry_makes_a_new_run_with_the_same_params_linked_to_the_original(
    worker: WorkerProcess,
) -> None:
    actor = operator()
    original = finished(services.job_launch("demo.flaky", {"failure_rate": 1}, actor=actor).task_id)

    second = finished(services.run_retry(original, actor=actor).task_id)
    third = services.run_retry(second, actor=actor)

    assert (second.retry_of_id, second.root_id) == (original.pk, original.pk)
    assert (third.retry_of_id, third.root_id) == (second.pk, original.pk)
    assert second.params == third.params == original.params == {"failure_rate": 1.0}
    assert second.source == RunSource.RETRY
    assert AuditEntry.objects.filter(action="run.retry", target_id=second.task_id).exists()
    finished(third.task_id)


def test_bulk_retry_of_a_filter_retries_every_failed_match(worker: WorkerProcess) -> None:
    from tasks_app.selectors import RunFilter

    actor = operator()
    failed = [
        finished(services.job_launch("demo.flaky", {"failure_rate": 1}, actor=actor).task_id)
        for _ in range(3)
    ]
    filters = RunFilter(states=(RunState.FAILURE,), job_name="demo.flaky")

    outcome = services.runs_retry_bulk(actor=actor, filters=filters)

    assert {r.retry_of_id for r in outcome.done} == {r.pk for r in failed}
    for run in outcome.done:
        finished(run.task_id)


def test_plain_celery_tasks_are_recorded_too(worker: WorkerProcess) -> None:
    result = add.delay(2, 3)

    assert result.get(timeout=30) == 5
    run = finished(result.id)
    assert (run.job_name, run.args, run.source, run.state) == (
        "demo.add", [2, 3], RunSource.CODE, RunState.SUCCESS,
    )  # fmt: skip


def test_code_launches_are_validated_and_recorded(worker: WorkerProcess) -> None:
    from tasks_app.jobs.params import ParamsError

    task = get_job("demo.progress").task
    with pytest.raises(ParamsError) as out_of_range:
        task.delay(steps=0)
    with pytest.raises(ParamsError, match="stepz"):
        task.delay(stepz=3)
    assert "steps" in out_of_range.value.errors
    assert not Run.objects.exists()

    result = task.delay(steps=2, step_seconds=0)

    run = finished(result.id)
    assert (run.source, run.params) == (RunSource.CODE, {"steps": 2, "step_seconds": 0.0})


def test_a_scheduled_launch_records_the_schedule_name(worker: WorkerProcess) -> None:
    task = get_job("demo.progress").task

    result = task.apply_async(
        kwargs={"steps": 1, "step_seconds": 0}, headers={"periodic_task_name": "every morning"}
    )
    bad = task.apply_async(kwargs={"steps": -1}, headers={"periodic_task_name": "broken one"})

    run = finished(result.id)
    assert (run.source, run.schedule_name, run.actor_label) == (
        RunSource.SCHEDULE, "every morning", "every morning",
    )  # fmt: skip
    stored = TaskResult.objects.filter(task_id=result.id)
    assert stored.values_list("periodic_task_name", flat=True).get() == "every morning"
    rejected = Run.objects.get(task_id=bad.id)
    assert rejected.state == RunState.FAILURE
    assert "Schedule 'broken one' has invalid parameters" in rejected.error


def test_export_runs_keeps_a_csv_artifact(worker: WorkerProcess) -> None:
    actor = operator()
    finished(services.job_launch("demo.flaky", {"failure_rate": 1}, actor=actor).task_id)

    run = finished(
        services.job_launch("taskdeck.export_runs", {"states": ["FAILURE"]}, actor=actor).task_id
    )

    assert run.state == RunState.SUCCESS
    path = Path(run.artifact.path)
    try:
        lines = path.read_text().splitlines()
        assert lines[0].startswith("task_id,job,state,source")
        assert len(lines) == 2
        assert ",demo.flaky,FAILURE," in lines[1]
    finally:
        run.artifact.delete(save=False)


def test_sensitive_parameters_are_masked_in_task_results_and_audit(worker: WorkerProcess) -> None:
    from tasks_app.jobs.params import MASK

    run = services.job_launch(
        "demo.sensitive", {"password": "hunter2-secret", "label": "x"}, actor=operator()
    )

    finished(run.task_id)
    result = TaskResult.objects.get(task_id=run.task_id)
    assert "hunter2-secret" not in (result.task_kwargs or "")
    assert "hunter2-secret" not in (result.result or "")
    assert json.loads(result.task_kwargs)["password"] == MASK
    audit = AuditEntry.objects.get(target_id=run.task_id)
    assert "hunter2-secret" not in json.dumps(audit.details)
