"""Per-job concurrency limits: the limit in force, how many runs hold or wait for a slot, and the
operator's change of it (a JobLimit row, overriding `@job(concurrency=N)`; audited).

Workers read the limits every few seconds (`tasks_app.worker.slots`), so a change applies to
runs that start after that; runs already executing finish undisturbed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from ..jobs.registry import find_job
from ..models import JobLimit
from ..worker import slots
from .common import Actor, audit
from .errors import BrokerUnavailable, FieldErrors, UnknownJob

logger = logging.getLogger(__name__)

MANAGE_PERMISSION = "tasks_app.manage_job_limits"
FIELD = "concurrency"
# Sane upper bound: a limit above any realistic worker fleet is "no limit" in all but name.
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class JobConcurrency:
    job_name: str
    code_limit: int | None  # `@job(concurrency=N)`
    overridden: bool  # an operator's value is in force, not the code's
    limit: int | None  # the limit in force; None: unlimited
    running: int | None  # runs holding a slot now; None: Redis did not answer
    waiting: int | None  # queued runs that found no free slot (recently); None: unknown
    updated_by: str = ""
    updated_at: datetime | None = None

    @property
    def source(self) -> str:
        return "operator" if self.overridden else "code"


def may_manage_limits(actor: Actor) -> bool:
    return actor.has_perm(MANAGE_PERMISSION)


def job_concurrency_many(job_names: Iterable[str]) -> dict[str, JobConcurrency]:
    """Each known job's limit and counts: one query for the overrides, one Redis round trip
    for the slots held and the runs waiting (never a read of the run ledger)."""
    specs = [spec for spec in (find_job(name) for name in job_names) if spec is not None]
    names = [spec.name for spec in specs]
    rows = {row.job_name: row for row in JobLimit.objects.filter(job_name__in=names)}
    limited = [
        spec.name
        for spec in specs
        if (rows[spec.name].concurrency if spec.name in rows else spec.concurrency) is not None
    ]
    try:
        counts: dict[str, tuple[int, int]] | None = slots.counts(limited)
    except Exception:
        logger.exception("Could not count the slots held")
        counts = None
    answer = {}
    for spec in specs:
        row = rows.get(spec.name)
        limit = row.concurrency if row is not None else spec.concurrency
        answer[spec.name] = JobConcurrency(
            job_name=spec.name,
            code_limit=spec.concurrency,
            overridden=row is not None,
            limit=limit,
            running=counts.get(spec.name, (0, 0))[0] if counts is not None else None,
            waiting=counts.get(spec.name, (0, 0))[1] if counts is not None else None,
            updated_by=row.updated_by_label if row is not None else "",
            updated_at=row.updated_at if row is not None else None,
        )
    return answer


def job_concurrency(job_name: str) -> JobConcurrency:
    """One job's limit and counts; UnknownJob if no such job is registered."""
    found = job_concurrency_many([job_name]).get(job_name)
    if found is None:
        raise UnknownJob(f"No job named {job_name!r}.")
    return found


def parse_limit(value: Any) -> int | None:
    """A limit as typed or sent: a whole number from 1, or blank / null for no limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool | float):
        raise FieldErrors({FIELD: "Enter a whole number of runs (1 or more), or leave it empty."})
    try:
        number = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise FieldErrors(
            {FIELD: "Enter a whole number of runs (1 or more), or leave it empty."}
        ) from None
    if number < 1:
        raise FieldErrors({FIELD: "At least 1; leave it empty for no limit."})
    if number > MAX_LIMIT:
        raise FieldErrors({FIELD: f"At most {MAX_LIMIT}; leave it empty for no limit."})
    return number


def job_limit_set(
    job_name: str, value: Any, *, actor: Actor, use_code_default: bool = False
) -> JobConcurrency:
    """Set the job's limit at runtime (`value`: a whole number from 1, or None for no limit),
    or go back to the code's (`use_code_default`). Audited with the limit before and after."""
    spec = find_job(job_name)
    if spec is None:
        raise UnknownJob(f"No job named {job_name!r}.")
    actor.require(MANAGE_PERMISSION)
    limit = None if use_code_default else parse_limit(value)
    try:
        # Workers read the limits from a copy in Redis: mark it stale first, so that if writing
        # the new copy fails below, they read the rows again instead of keeping the old value.
        slots.invalidate_overrides()
    except Exception as error:
        raise BrokerUnavailable("Redis is unavailable; the limit was not changed.") from error
    with transaction.atomic():
        row = JobLimit.objects.select_for_update().filter(job_name=job_name).first()
        before = row.concurrency if row is not None else spec.concurrency
        if use_code_default:
            JobLimit.objects.filter(job_name=job_name).delete()
            after = spec.concurrency
        else:
            JobLimit.objects.update_or_create(
                job_name=job_name,
                defaults={"concurrency": limit, "updated_by_label": actor.label},
            )
            after = limit
        audit(
            actor,
            "job.concurrency",
            None,
            {
                "job": job_name,
                "from": before,
                "to": after,
                "source": "code" if use_code_default else "operator",
            },
            target=("job", job_name),
        )
        # The workers' new copy, once the change is committed (should that fail, the copy
        # stays marked stale and the first worker to look rebuilds it from the rows).
        transaction.on_commit(slots.publish_overrides, robust=True)
    slots.limits.forget()  # this process (e.g. a solo worker beside the web) reads it again
    return job_concurrency(job_name)
