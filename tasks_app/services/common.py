"""Who acts, the errors actions raise, and the audit trail every action writes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from ..jobs.registry import JobSpec, all_jobs, find_job
from ..models import AuditEntry, Run
from ..selectors.runs import RunFilter

# Said when a non-superuser acts on a task that is not a registered job (one `.delay()`s in code,
# or a superuser scheduled in the admin): such a task has no schema and no permission of its own.
SUPERUSERS_ONLY = "Only superusers act on tasks that are not registered jobs ({name})."


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, an API token (acting for its user), a schedule, or the system."""

    user: AbstractBaseUser | AnonymousUser | None = None
    token_name: str = ""
    schedule_name: str = ""
    system: str = ""

    @property
    def label(self) -> str:
        if self.user is not None and self.user.is_authenticated:
            if self.token_name:  # an API token acts for its owner: "alice (token ci)"
                return f"{self.user.get_username()} (token {self.token_name})"
            return self.user.get_username()
        if self.token_name:
            return f"token:{self.token_name}"
        return self.schedule_name or self.system or "anonymous"

    @property
    def user_id(self) -> int | None:
        if self.user is not None and self.user.is_authenticated:
            return int(self.user.pk)
        return None

    def has_perm(self, perm: str) -> bool:
        if self.schedule_name or self.system:
            return True  # configured by staff who had the permission to do so
        has_perm = getattr(self.user, "has_perm", None)  # AbstractBaseUser itself has none
        return bool(self.user is not None and self.user.is_active and has_perm and has_perm(perm))

    def require(self, *perms: str) -> None:
        missing = [perm for perm in perms if not self.has_perm(perm)]
        if missing:
            raise PermissionDenied(f"{self.label} lacks the permission {', '.join(missing)}.")

    @property
    def is_superuser(self) -> bool:
        """An active superuser (through a token too), or a schedule or the system, which, as in
        `has_perm`, act with what the staff who configured them had."""
        if self.schedule_name or self.system:
            return True
        user = self.user
        return bool(user is not None and user.is_active and getattr(user, "is_superuser", False))


# --- who may act on or read what: the one policy every way in (pages, API, admin) applies ---


def may_act_on_task(actor: Actor, task_name: str) -> bool:
    """Besides the action's own permission (launch, retry, cancel, manage schedules): a job's
    `permission=`, if it declares one; for a task that is not a registered job, superuser."""
    spec = find_job(task_name)
    if spec is None:
        return actor.is_superuser
    return not spec.permission or actor.has_perm(spec.permission)


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
    return spec is None or not spec.permission or actor.has_perm(spec.permission)


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
    return [s for s in all_jobs() if not s.permission or actor.has_perm(s.permission)]


def unreadable_jobs(actor: Actor) -> tuple[str, ...]:
    """The registered jobs whose run details `actor` may not read (a `permission=` they lack),
    by name: what a search must not match on and an audit entry must not show. Empty for a
    superuser, a schedule or the system, so their queries and pages stay as they were."""
    lacking = [s.name for s in all_jobs() if s.permission and not actor.has_perm(s.permission)]
    return tuple(sorted(lacking))


def readable_filter(actor: Actor, filters: RunFilter) -> RunFilter:
    """`filters` as `actor` may apply them: its search text does not look in the parameters of
    runs `actor` may not read. Else the rows a search returns (or the count, or the runs a bulk
    retry skips) would confirm a guessed parameter value of a restricted job."""
    return replace(filters, unreadable_jobs=unreadable_jobs(actor))


class ServiceError(Exception):
    """An action refused for a reason the user can act on (a 4xx, never a 500)."""


def audit(
    actor: Actor,
    action: str,
    run: Run | None,
    details: dict[str, Any],
    *,
    target: tuple[str, str] | None = None,
) -> AuditEntry:
    """Record an action; `target` (type, id) for things other than runs."""
    if target is None:
        target = ("run", run.task_id) if run is not None else ("runs", "")
    return AuditEntry.objects.create(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        target_type=target[0],
        target_id=target[1],
        details=details,
    )
