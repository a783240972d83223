"""Stats: runs by state, workers and queue depths (what the Overview and Workers pages show)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from .. import selectors
from .errors import responses
from .schemas import StatsOut

router = Router(tags=["stats"])


@router.get("/stats", response=responses({200: StatsOut}), summary="Counts, workers, queues")
def stats(request: HttpRequest) -> dict[str, Any]:
    seen = selectors.workers_snapshot()
    return {
        "runs_last_24h": selectors.state_totals(hours=24, label="24 h").counts,
        "runs_last_7d": selectors.state_totals(hours=24 * 7, label="7 days").counts,
        "broker_up": seen.broker_up,
        "broker_error": seen.error,
        "workers": [
            {
                "name": w.name,
                "pool": w.pool,
                "concurrency": w.concurrency,
                "uptime_seconds": w.uptime_seconds,
                "processed": w.processed,
                "queues": list(w.queues),
                "active": len(w.active),
            }
            for w in seen.workers
        ],
        "queues": [{"name": q.name, "messages": q.messages} for q in seen.queues],
    }
