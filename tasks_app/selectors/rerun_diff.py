"""What a re-run changed: its parameters against those of the run it re-ran.

A sensitive value is never shown, not even masked next to another: only whether it changed.
Sealed values are sealed afresh at each launch (a new token for the same value), so two
tokens are compared by what they hold, here and nowhere that displays them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..jobs.registry import find_job
from ..jobs.sealing import SealError, is_sealed, unseal
from ..models import Run
from .display import json_text


class Change(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    UNKNOWN = "unknown"  # a sealed value this deployment's keys can no longer open


@dataclass(frozen=True)
class ParamChange:
    """One parameter's change. `old` and `new` are JSON text, empty for a sensitive value
    (never shown) and for the side where the parameter is absent."""

    name: str
    change: Change
    old: str
    new: str
    sensitive: bool


@dataclass(frozen=True)
class RerunDiff:
    original_task_id: str
    changes: list[ParamChange]  # every difference, and every sensitive parameter
    unchanged: int  # parameters (not sensitive) with the same value, not listed

    @property
    def changed_names(self) -> list[str]:
        """The parameters that differ, for the audit entry."""
        return [c.name for c in self.changes if c.change is not Change.UNCHANGED]


def params_diff(
    job_name: str, old: Mapping[str, Any], new: Mapping[str, Any], *, original_task_id: str = ""
) -> RerunDiff:
    """`new` against `old` (both a run's JSON kwargs, sealed values as stored), in the job's
    parameter order, then any other name by name."""
    spec = find_job(job_name)
    sensitive = spec.sensitive if spec is not None else frozenset()
    declared = [p.name for p in spec.params.params] if spec is not None else []
    names = [n for n in declared if n in old or n in new]
    names += sorted((set(old) | set(new)) - set(names))
    changes: list[ParamChange] = []
    unchanged = 0
    for name in names:
        before, after = old.get(name), new.get(name)
        hidden = name in sensitive or is_sealed(before) or is_sealed(after)
        if name not in old:
            change = Change.ADDED
        elif name not in new:
            change = Change.REMOVED
        else:
            change = _compare(before, after)
        if change is Change.UNCHANGED and not hidden:
            unchanged += 1
            continue
        changes.append(
            ParamChange(
                name=name,
                change=change,
                old="" if hidden or name not in old else json_text(before),
                new="" if hidden or name not in new else json_text(after),
                sensitive=hidden,
            )
        )
    return RerunDiff(original_task_id, changes, unchanged)


def rerun_diff(run: Run) -> RerunDiff | None:
    """The diff of a run that re-ran another (a retry, edited or not) against that run; None
    for a run that re-ran nothing, or whose original is gone."""
    original = run.retry_of
    if original is None:
        return None
    return params_diff(
        run.job_name, original.params or {}, run.params or {}, original_task_id=original.task_id
    )


def _compare(before: Any, after: Any) -> Change:
    if before == after:  # the same sealed token too: the value was kept as it was
        return Change.UNCHANGED
    if is_sealed(before) or is_sealed(after):
        try:
            same = unseal(before) == unseal(after)
        except SealError:
            return Change.UNKNOWN
        return Change.UNCHANGED if same else Change.CHANGED
    return Change.CHANGED
