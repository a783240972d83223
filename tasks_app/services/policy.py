"""Who may launch, read and act on what: the one policy every way in (pages, API, admin,
code) applies. The per-job rule (`@job(permission=...)`) is written once, in
`has_job_permission`; everything else here builds on it."""

from __future__ import annotations

from dataclasses import replace

from django.core.exceptions import PermissionDenied

from ..jobs.registry import JobSpec, all_jobs, find_job
from ..models import Run
from ..selectors.runs import RunFilter
from .common import Actor

# Said when a non-superuser acts on a task that is not a registered job (one `.delay()`s in code,
# or a superuser scheduled in the admin): such a task has no schema and no permission of its own.
SUPERUSERS_ONLY = "Only superusers act on tasks that are not registered jobs ({name})."


def has_job_permission(actor: Actor, spec: JobSpec) -> bool:
    """A job's own `permission=`, if it declares one: needed to launch, schedule, retry,
    cancel and read its runs, on top of the action's permission."""
    return not spec.permission or actor.has_perm(spec.permission)


def may_launch(actor: Actor, spec: JobSpec) -> bool:
    """Whether `actor` may launch `spec` by hand (what the jobs page and the API list):
    housekeeping jobs that keep no ledger run on their schedule only."""
    return (
        spec.ledger and actor.has_perm("tasks_app.launch_job") and has_job_permission(actor, spec)
    )


def require_launch(actor: Actor, spec: JobSpec) -> None:
    """`may_launch`, or PermissionDenied naming the missing permission."""
    actor.require("tasks_app.launch_job")
    if spec.permission:
        actor.require(spec.permission)


def launchable_jobs(actor: Actor) -> list[JobSpec]:
    """The jobs `actor` may launch, by title."""
    return [spec for spec in all_jobs() if may_launch(actor, spec)]


def may_act_on_task(actor: Actor, task_name: str) -> bool:
    """Besides the action's own permission (launch, retry, cancel, manage schedules): a job's
    `permission=`, if it declares one; for a task that is not a registered job, superuser."""
    spec = find_job(task_name)
    if spec is None:
        return actor.is_superuser
    return has_job_permission(actor, spec)


def require_task_permission(actor: Actor, task_name: str) -> None:
    """`may_act_on_task`, or PermissionDenied saying what is missing."""
    spec = find_job(task_name)
    if spec is None:
        if not actor.is_superuser:
            raise PermissionDenied(SUPERUSERS_ONLY.format(name=task_name))
    elif spec.permission:
        actor.require(spec.permission)


def may_read_run(actor: Actor, run: Run) -> bool:
    """Whether `actor` may see a run's details (parameters, result, error, traceback, log,
    file): a job that asks for a permission shows them only to those who have it. Any staff user
    sees that the run exists (the history lists it), and the details of other runs."""
    return may_read_runs_of(actor, run.job_name)


def may_read_runs_of(actor: Actor, task_name: str) -> bool:
    """`may_read_run` by task name, for rows that name it (e.g. Celery's TaskResult)."""
    spec = find_job(task_name)
    return spec is None or has_job_permission(actor, spec)


def require_run_read(actor: Actor, run: Run) -> None:
    """`may_read_run`, or PermissionDenied naming the permission."""
    if not may_read_run(actor, run):
        spec = find_job(run.job_name)
        permission = spec.permission if spec is not None else ""
        raise PermissionDenied(
            f"The details of {run.job_name} runs need the permission {permission}."
        )


def schedulable_jobs(actor: Actor) -> list[JobSpec]:
    """The jobs `actor` may put on a schedule: every job, less those needing a permission."""
    return [spec for spec in all_jobs() if has_job_permission(actor, spec)]


def unreadable_jobs(actor: Actor) -> tuple[str, ...]:
    """The registered jobs whose run details `actor` may not read (a `permission=` they lack),
    by name: what a search must not match on and an audit entry must not show. Empty for a
    superuser, a schedule or the system, so their queries and pages stay as they were."""
    lacking = [spec.name for spec in all_jobs() if not has_job_permission(actor, spec)]
    return tuple(sorted(lacking))


def readable_filter(actor: Actor, filters: RunFilter) -> RunFilter:
    """`filters` as `actor` may apply them: its search text does not look in the parameters of
    runs `actor` may not read. Else the rows a search returns (or the count, or the runs a bulk
    retry skips) would confirm a guessed parameter value of a restricted job."""
    return replace(filters, unreadable_jobs=unreadable_jobs(actor))
