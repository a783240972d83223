"""Workers and queues, read from the broker after the page loads (a slow broker never blocks
the page; without JavaScript the panel link shows the same), and pausing or resuming a queue
(plain forms: they work without JavaScript)."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from ..selectors.workers import queues_overview
from ..services import queues as queue_actions
from ..services.queues import QueueChange, UnknownQueue
from ..types import HtmxHttpRequest
from .common import actor_for


@require_safe
def workers(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "tasks_app/workers.html", {"snapshot": None})


@require_safe
def workers_panel(request: HtmxHttpRequest) -> HttpResponse:
    overview = queues_overview(timeout=1.0)
    template = "tasks_app/workers.html#panel" if request.htmx else "tasks_app/workers.html"
    return render(request, template, {"snapshot": overview.snapshot, "rows": overview.rows})


@require_POST
def queue_pause(request: HtmxHttpRequest, name: str) -> HttpResponse:
    try:
        change = queue_actions.queue_pause(name, actor=actor_for(request))
    except UnknownQueue as error:
        return _refused(request, str(error))
    return _done(request, change)


@require_POST
def queue_resume(request: HtmxHttpRequest, name: str) -> HttpResponse:
    try:
        change = queue_actions.queue_resume(name, actor=actor_for(request))
    except UnknownQueue as error:
        return _refused(request, str(error))
    return _done(request, change)


def _refused(request: HtmxHttpRequest, error: str) -> HttpResponse:
    """The page again, the error inline above the panel (404: there is no such queue)."""
    context = {"snapshot": None, "queue_error": error}
    return render(request, "tasks_app/workers.html", context, status=404)


def _done(request: HtmxHttpRequest, change: QueueChange) -> HttpResponse:
    verb = "paused" if change.paused else "resumed"
    if not change.told.sent:
        messages.warning(
            request,
            f"Queue {change.queue} {verb}, but the workers could not be told "
            f"({change.told.error}); each applies it when it reaches the broker again.",
        )
    elif not change.changed:
        messages.info(request, f"Queue {change.queue} was already {verb}.")
    else:
        messages.success(request, f"Queue {change.queue} {verb}.")
    return redirect("tasks_app:workers")
