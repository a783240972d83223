"""Run again with changes, in the service: a new run linked to the original as a retry is,
its parameters validated as a launch's (nothing queued on bad input), a sensitive value kept
sealed as it was unless replaced, the permissions of a retry and of a launch, audited. With
the real worker, the re-run runs with the changed values and the kept secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from tasks_app import selectors, services
from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import MASK, job
from tasks_app.jobs.sealing import is_sealed, unseal
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.selectors.rerun_diff import Change, params_diff, rerun_diff
from tasks_app.services import Actor, NotRetriable, ParamsError
from tasks_app.services.runs import rerun_params, run_rerun
from tests.support import ledger
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess

SECRET = "rerun-S3cret-never-shown"


def failed_flaky(**fields: Any) -> Run:
    return ledger.make_run(
        RunState.FAILURE, params={"failure_rate": 1.0}, finished_at=timezone.now(), **fields
    )


def launched_sensitive(actor: Actor, state: RunState = RunState.FAILURE) -> Run:
    """A demo.sensitive run launched as a user would (its password sealed), then finished."""
    run = services.job_launch("demo.sensitive", {"password": SECRET, "label": "first"}, actor=actor)
    Run.objects.filter(pk=run.pk).update(state=state, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def user_with(*codenames: str) -> Actor:
    user = User.objects.create_user(f"u-{'-'.join(codenames) or 'none'}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return Actor(user=User.objects.get(pk=user.pk))  # fresh: no cached permissions


@pytest.mark.django_db
def test_a_rerun_is_a_retry_with_the_changed_parameters(broker: str) -> None:
    actor = operator()
    original = failed_flaky(queue="high")
    audited = AuditEntry.objects.count()

    new = run_rerun(original, rerun_params(original, {"failure_rate": 0.25}), actor=actor)

    assert new.state == RunState.PENDING
    assert (new.retry_of_id, new.root_id) == (original.pk, original.pk)
    assert new.source == RunSource.RETRY
    assert new.params == {"failure_rate": 0.25}
    assert new.queue == "high"  # the original's queue, as a retry keeps it
    assert new.actor_label == "operator"
    entry = AuditEntry.objects.get(action="run.retry", target_id=new.task_id)
    assert entry.details == {
        "retry_of": original.task_id, "job": "demo.flaky",
        "params": {"failure_rate": 0.25}, "changed": ["failure_rate"],
    }  # fmt: skip
    assert AuditEntry.objects.count() == audited + 1


@pytest.mark.django_db
def test_the_lineage_keeps_the_root_of_the_chain(broker: str) -> None:
    actor = operator()
    root = failed_flaky()
    first = run_rerun(root, {"failure_rate": 0.9}, actor=actor)
    Run.objects.filter(pk=first.pk).update(state=RunState.FAILURE, finished_at=timezone.now())
    first.refresh_from_db()

    second = run_rerun(first, {"failure_rate": 0.1}, actor=actor)

    assert (second.retry_of_id, second.root_id) == (first.pk, root.pk)
    chain = selectors.run_detail(second.task_id)
    assert chain is not None
    assert [r.task_id for r in chain.chain] == [root.task_id, first.task_id, second.task_id]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"failure_rate": 2}, "failure_rate"), ({"failure_rate": "lots"}, "failure_rate"),
     ({"nope": 1}, "__all__")],
)  # fmt: skip
def test_bad_parameters_queue_nothing(
    broker: str, overrides: dict[str, object], field: str
) -> None:
    original = failed_flaky()
    audited = AuditEntry.objects.count()

    with pytest.raises(ParamsError) as refused:
        run_rerun(original, rerun_params(original, overrides), actor=operator())

    assert field in refused.value.errors
    assert list(Run.objects.all()) == [original]
    assert AuditEntry.objects.count() == audited


@pytest.mark.django_db
def test_a_sensitive_value_is_kept_sealed_as_it_was_unless_replaced(broker: str) -> None:
    actor = operator()
    original = launched_sensitive(actor)
    stored = original.params["password"]
    assert is_sealed(stored)

    kept = run_rerun(original, rerun_params(original, {"label": "second"}), actor=actor)
    masked = run_rerun(original, rerun_params(original, {"password": MASK}), actor=actor)
    replaced = run_rerun(original, rerun_params(original, {"password": "other"}), actor=actor)

    assert kept.params["password"] == stored  # the very token: nothing re-sealed
    assert masked.params["password"] == stored
    assert is_sealed(replaced.params["password"])
    assert unseal(replaced.params["password"]) == "other"
    entries = AuditEntry.objects.filter(action="run.retry").order_by("id")
    assert [e.details["changed"] for e in entries] == [["label"], [], ["password"]]
    assert all(e.details["params"]["password"] == MASK for e in entries)
    assert SECRET not in str(list(AuditEntry.objects.values_list("details", flat=True)))


@pytest.mark.django_db
def test_the_diff_names_changes_and_never_shows_a_sensitive_value(broker: str) -> None:
    actor = operator()
    original = launched_sensitive(actor)
    same_secret = run_rerun(original, rerun_params(original, {"label": "second"}), actor=actor)
    new_secret = run_rerun(original, rerun_params(original, {"password": "x" * 8}), actor=actor)
    Run.objects.filter(pk=new_secret.pk).update(params={**new_secret.params, "extra": [1, 2]})
    new_secret.refresh_from_db()

    kept = rerun_diff(same_secret)
    changed = rerun_diff(new_secret)

    assert kept is not None
    assert changed is not None
    assert kept.original_task_id == original.task_id
    assert [(c.name, c.change, c.old, c.new) for c in kept.changes] == [
        ("password", Change.UNCHANGED, "", ""), ("label", Change.CHANGED, "first", "second"),
    ]  # fmt: skip
    assert (kept.unchanged, kept.changed_names) == (0, ["label"])
    assert [(c.name, c.change, c.old, c.new, c.sensitive) for c in changed.changes] == [
        ("password", Change.CHANGED, "", "", True), ("extra", Change.ADDED, "", "[1, 2]", False),
    ]  # fmt: skip
    assert changed.unchanged == 1  # label
    assert rerun_diff(original) is None  # it re-ran nothing


def test_a_value_sealed_with_a_lost_key_is_reported_as_unknown() -> None:
    diff = params_diff(
        "demo.sensitive", {"password": {"$sealed": "not-a-token"}}, {"password": {"$sealed": "x"}}
    )

    assert [(c.name, c.change, c.old, c.new) for c in diff.changes] == [
        ("password", Change.UNKNOWN, "", "")
    ]


@pytest.mark.django_db
def test_any_finished_run_may_be_rerun_but_not_an_active_one(broker: str) -> None:
    actor = operator()
    succeeded = failed_flaky()
    Run.objects.filter(pk=succeeded.pk).update(state=RunState.SUCCESS)
    succeeded.refresh_from_db()
    queued = ledger.make_run(RunState.PENDING, params={"failure_rate": 1.0})

    again = run_rerun(succeeded, {"failure_rate": 0.0}, actor=actor)
    with pytest.raises(NotRetriable, match="this one is queued"):
        run_rerun(queued, {"failure_rate": 0.0}, actor=actor)
    with pytest.raises(NotRetriable):  # the plain retry keeps its rule
        services.run_retry(succeeded, actor=actor)

    assert again.retry_of_id == succeeded.pk
    assert Run.objects.count() == 3


@pytest.mark.django_db
def test_a_plain_task_has_no_parameters_to_change(broker: str) -> None:
    plain = ledger.make_run(RunState.FAILURE, job_name="demo.add", params={"x": 1, "y": 2})

    with pytest.raises(NotRetriable, match="not a registered job"):
        run_rerun(plain, {"x": 2, "y": 2}, actor=operator())
    with pytest.raises(PermissionDenied):  # not a superuser: as for every action on one
        run_rerun(plain, {"x": 2, "y": 2}, actor=user_with("retry_run", "launch_job"))
    assert Run.objects.count() == 1


@pytest.fixture
def guarded_job() -> Iterator[str]:
    """A job that needs its own permission (manage_schedules stands in for one)."""
    name = "tests.rerun_guarded"

    @job(name=name, retry="no_retry", permission="tasks_app.manage_schedules")
    def guarded(ctx: JobContext, n: int = 1) -> None:
        """Never runs here."""

    try:
        yield name
    finally:
        registry._REGISTRY.pop(name, None)
        current_app.tasks.pop(name, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("codenames", "allowed"),
    [((), False), (("retry_run",), False), (("launch_job",), False),
     (("retry_run", "launch_job"), False),
     (("retry_run", "launch_job", "manage_schedules"), True)],
)  # fmt: skip
def test_it_needs_retry_and_launch_and_the_jobs_own_permission(
    broker: str, guarded_job: str, codenames: tuple[str, ...], allowed: bool
) -> None:
    original = ledger.make_run(RunState.FAILURE, job_name=guarded_job, params={"n": 1})
    actor = user_with(*codenames)

    if allowed:
        assert run_rerun(original, {"n": 2}, actor=actor).retry_of_id == original.pk
    else:
        with pytest.raises(PermissionDenied):
            run_rerun(original, {"n": 2}, actor=actor)
        assert Run.objects.count() == 1
        assert not AuditEntry.objects.filter(action="run.retry").exists()


def test_changed_parameters_reach_the_job_and_the_kept_secret_opens(
    worker: WorkerProcess,
) -> None:
    actor = operator()
    failing = services.job_launch("demo.flaky", {"failure_rate": 1.0}, actor=actor)
    sensitive = services.job_launch(
        "demo.sensitive", {"password": SECRET, "label": "first"}, actor=actor
    )
    assert finished(failing.task_id, timeout=60).state == RunState.FAILURE
    original = finished(sensitive.task_id, timeout=60)
    assert original.state == RunState.SUCCESS

    fixed = run_rerun(
        finished(failing.task_id), {"failure_rate": 0.0}, actor=actor
    )  # fails no more
    again = run_rerun(original, rerun_params(original, {"label": "second"}), actor=actor)

    assert finished(fixed.task_id, timeout=60).state == RunState.SUCCESS
    assert finished(again.task_id, timeout=60).state == RunState.SUCCESS
    detail = selectors.run_detail(again.task_id)
    assert detail is not None
    # The job opened the original's sealed password: its length, with the new label.
    assert detail.result_data == {"secret_length": len(SECRET), "label": "second"}
    assert detail.params["password"] == MASK
