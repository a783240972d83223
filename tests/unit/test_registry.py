"""@job: the spec, policies, queues, uniqueness keys, masking, and testing a job directly."""

from __future__ import annotations

import pytest

from tasks_app.jobs.errors import JobCancelled, UnknownJob
from tasks_app.jobs.params import MASK
from tasks_app.jobs.policies import RETRY_POLICIES, retry_policy
from tasks_app.jobs.registry import all_jobs, get_job, job, route_job
from tasks_app.jobs.testing import run_job


def test_built_in_and_demo_jobs_are_registered_with_their_specs() -> None:
    names = {spec.name for spec in all_jobs()}

    assert {
        "taskdeck.ping", "taskdeck.cleanup", "taskdeck.send_email", "taskdeck.export_runs",
        "taskdeck.reap_lost_runs", "demo.progress", "demo.flaky",
    } <= names  # fmt: skip
    progress = get_job("demo.progress")
    assert progress.title == "Demo: progress"
    assert progress.queue == "default"
    assert [p.name for p in progress.params.params] == ["steps", "step_seconds"]
    assert get_job("taskdeck.cleanup").queue == "low"
    assert get_job("taskdeck.ping").queue == "high"


def test_unknown_job_names_are_refused() -> None:
    with pytest.raises(UnknownJob):
        get_job("nope.nothing")


def test_retry_policies_match_the_documented_ones() -> None:
    assert {name: (p.max_retries, p.backoff_seconds) for name, p in RETRY_POLICIES.items()} == {
        "standard": (3, 60), "aggressive": (5, 30), "long_running": (2, 300), "no_retry": (0, 0),
    }  # fmt: skip
    options = retry_policy("standard").celery_options()
    assert options["retry_jitter"] is True
    assert options["retry_backoff"] == 60
    with pytest.raises(ValueError, match="Unknown retry policy"):
        retry_policy("sometimes")


def test_job_options_reach_the_celery_task() -> None:
    cleanup = get_job("taskdeck.cleanup").task
    recount = get_job("demo.recount").task
    flaky = get_job("demo.flaky").task

    assert cleanup.max_retries == 3
    assert cleanup.retry_backoff == 60
    assert recount.acks_late is True
    assert recount.reject_on_worker_lost is True
    assert flaky.acks_late is False  # at most once unless declared idempotent
    assert route_job("taskdeck.cleanup", (), {}, {}) == {"queue": "low"}
    assert route_job("not.a.job", (), {}, {}) is None


def test_uniqueness_keys_depend_on_the_parameters() -> None:
    spec = get_job("taskdeck.cleanup")

    assert spec.key_for({"days": 1}) == spec.key_for({"days": 1})
    assert spec.key_for({"days": 1}) != spec.key_for({"days": 2})
    assert get_job("demo.progress").key_for({"steps": 1}) is None


def test_sensitive_parameters_are_masked() -> None:
    spec = get_job("demo.sensitive")

    assert spec.mask({"password": "s3cret", "label": "x"}) == {"password": MASK, "label": "x"}


def test_bad_job_declarations_fail_at_import() -> None:
    with pytest.raises(ValueError, match="Unknown queue"):
        job(name="t.bad_queue", queue="urgent")(lambda ctx: None)
    with pytest.raises(ValueError, match="already registered"):
        job(name="demo.progress")(lambda ctx: None)
    with pytest.raises(TypeError, match="sensitive"):

        @job(name="t.bad_sensitive", sensitive=["nothing"])
        def bad(ctx: object, x: int = 1) -> None: ...


def test_a_project_can_test_its_job_function_directly() -> None:
    outcome = run_job("demo.progress", steps=3, step_seconds=0)

    assert outcome.result == {"steps": 3}
    # every call recorded (write_interval=0), then the final flush with the log line
    assert [(w.done, w.total) for w in outcome.progress] == [(1, 3), (2, 3), (3, 3), (3, 3)]
    assert outcome.log == ["Took 3 steps."]


def test_the_direct_helper_validates_like_a_real_launch_and_can_simulate_cancellation() -> None:
    from tasks_app.jobs.params import ParamsError

    with pytest.raises(ParamsError):
        run_job("demo.progress", steps=0)
    with pytest.raises(JobCancelled):
        run_job("demo.progress", steps=10, step_seconds=0, cancel_after_writes=2)
