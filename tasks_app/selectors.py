"""Read queries for the pages and the API. Nothing here writes."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from django_celery_results.models import TaskResult


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
