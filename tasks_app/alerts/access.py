"""Whose runs a rule may tell about: only the jobs its creator may read.

An alert carries a run's first error line to every channel of its rule, so a rule must not
cover a job whose runs its creator may not read (a job with its own `permission=`). A rule that
names a job was checked when it was saved; a rule for any job skips the runs of jobs with a
permission its creator lacks, and a rule nobody owns any more (its creator deleted) skips every
job with a permission of its own. The same policy as the services' `has_job_permission`, asked
of the user directly: this package may not import the services.
"""

from __future__ import annotations

from typing import Any

from ..jobs.registry import all_jobs
from ..models import AlertRule


class Access:
    """The jobs each rule may not cover, worked out once per evaluation (a periodic pass, or one
    hook call) and per creator, so a pass over many rules asks each user once. Load the rules
    with `select_related("created_by")`, or each creator costs a query."""

    def __init__(self) -> None:
        self._hidden: dict[int | None, frozenset[str]] = {}

    def hidden_jobs(self, rule: AlertRule) -> frozenset[str]:
        """The registered jobs whose runs the rule skips (empty for a rule naming its job)."""
        if rule.job_name:
            return frozenset()
        creator = rule.created_by_id
        if creator not in self._hidden:
            self._hidden[creator] = lacked_by(rule.created_by if creator is not None else None)
        return self._hidden[creator]

    def may_cover(self, rule: AlertRule, job_name: str) -> bool:
        return job_name not in self.hidden_jobs(rule)


def lacked_by(user: Any) -> frozenset[str]:
    """The registered jobs with a permission of their own that `user` lacks (None, or an
    inactive user, lacks them all; an active superuser none)."""
    restricted = {spec.name: spec.permission for spec in all_jobs() if spec.permission}
    if user is None or not user.is_active:
        return frozenset(restricted)
    if user.is_superuser:
        return frozenset()
    return frozenset(name for name, perm in restricted.items() if not user.has_perm(perm))
