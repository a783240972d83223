"""Read queries for the pages and the API. Nothing here writes."""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone
from django_celery_results.models import TaskResult

from .models import Run


@dataclass(frozen=True)
class StateCount:
    state: str
    count: int


def result_state_counts(*, hours: int) -> list[StateCount]:
    """Results recorded in the last `hours`, counted per state, most frequent first."""
    since = timezone.now() - timedelta(hours=hours)
    rows = (
        TaskResult.objects.filter(date_created__gte=since)
        .values("status")
        .annotate(n=Count("id"))
        .order_by("-n", "status")
    )
    return [StateCount(state=row["status"], count=row["n"]) for row in rows]


@dataclass(frozen=True)
class RunFilter:
    """Filters over the run ledger; every field is optional and they combine with AND."""

    states: tuple[str, ...] = ()
    job_name: str = ""
    source: str = ""
    actor_label: str = ""
    schedule_name: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
            if value not in ((), "", None)
        }


def runs_matching(filters: RunFilter) -> QuerySet[Run]:
    queryset = Run.objects.all()
    if filters.states:
        queryset = queryset.filter(state__in=filters.states)
    if filters.job_name:
        queryset = queryset.filter(job_name=filters.job_name)
    if filters.source:
        queryset = queryset.filter(source=filters.source)
    if filters.actor_label:
        queryset = queryset.filter(actor_label=filters.actor_label)
    if filters.schedule_name:
        queryset = queryset.filter(schedule_name=filters.schedule_name)
    if filters.since is not None:
        queryset = queryset.filter(queued_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(queued_at__lt=filters.until)
    return queryset
