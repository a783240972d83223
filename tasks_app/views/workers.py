"""Workers and queues, read from the broker after the page loads (a slow broker never blocks
the page; without JavaScript the panel link shows the same)."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .. import selectors
from ..types import HtmxHttpRequest


@require_safe
def workers(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "tasks_app/workers.html", {"snapshot": None})


@require_safe
def workers_panel(request: HtmxHttpRequest) -> HttpResponse:
    snapshot = selectors.workers_snapshot(timeout=1.0)
    template = "tasks_app/workers.html#panel" if request.htmx else "tasks_app/workers.html"
    return render(request, template, {"snapshot": snapshot})
