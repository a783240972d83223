"""Bulk operations: retry or cancel everything the runs list's filter matches, in the
background, and follow their progress."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..forms import RunFilterForm
from ..forms.bulk_operations import BulkOperationForm
from ..models import BulkAction, BulkOperation
from ..selectors import RunFilter
from ..services import BrokerUnavailable, ServiceError
from ..services import bulk_operations as bulk
from ..types import HtmxHttpRequest
from .common import actor_for

# The runs list's query parameters: the filter, and nothing else, is carried over.
FILTER_FIELDS = tuple(RunFilterForm.base_fields)


def _filter_query(data: QueryDict) -> QueryDict:
    query = QueryDict(mutable=True)
    for name in FILTER_FIELDS:
        values = data.getlist(name)
        if values:
            query.setlist(name, values)
    return query


def _filter_form(data: QueryDict) -> RunFilterForm:
    query = _filter_query(data)
    return RunFilterForm(query if query else None)


def _filters(form: RunFilterForm) -> RunFilter | None:
    """The filter, or None if any field is invalid: acting on a filter with a field left
    out would act on more runs than the operator chose."""
    if not form.is_bound:
        return RunFilter()
    return form.to_filter() if form.is_valid() else None


@require_safe
def bulk_operation_offer(request: HtmxHttpRequest) -> HttpResponse:
    """The runs list's "Retry all N matching" / "Cancel all N matching", loaded after the
    page (two counts), for the actions this user may take."""
    form = _filter_form(request.GET)
    filters = _filters(form)
    actor = actor_for(request)
    offers = []
    if filters is not None:
        for action, perm in ((BulkAction.RETRY, "retry_run"), (BulkAction.CANCEL, "cancel_run")):
            if actor.has_perm(f"tasks_app.{perm}"):
                offers.append(bulk.bulk_operation_preview(actor, action, filters))
    context = {"offers": offers, "query": _filter_query(request.GET).urlencode()}
    return render(request, "tasks_app/bulk_offer.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def bulk_operation_new(request: HtmxHttpRequest) -> HttpResponse:
    """GET: what the action would do to the runs matching the filter (in the query string),
    and the confirmation. POST: request it, and go to its progress."""
    action_form = BulkOperationForm(request.POST if request.method == "POST" else None)
    filter_form = _filter_form(request.GET)
    filters = _filters(filter_form)
    query = _filter_query(request.GET).urlencode()
    action = request.GET.get("action", "")
    kind = bulk.KINDS.get(action)
    if kind is None:  # GET: offer the two; a POST without one is refused
        context = {"invalid_action": True, "query": query}
        status = 400 if request.method == "POST" else 200
        return render(request, "tasks_app/bulk_new.html", context, status=status)
    actor = actor_for(request)
    status = 200
    if filters is not None and request.method == "POST" and action_form.is_valid():
        try:
            operation = bulk.bulk_operation_request(
                actor=actor,
                action=action,
                filters=filters,
                confirm_count=action_form.cleaned_data["confirm_count"],
            )
        except bulk.ConfirmationRequired as error:
            action_form.add_error("confirm_count", error.errors["confirm_count"])
        except bulk.NothingToDo as error:
            action_form.add_error(None, error.errors["filters"])
        except BrokerUnavailable:
            action_form.add_error(None, "The broker is unavailable, so nothing was started.")
            status = 503
        else:
            messages.success(request, f"Bulk operation #{operation.pk} started.")
            return redirect("tasks_app:bulk_operation", pk=operation.pk)
    if request.method == "POST" and status == 200:
        status = 400
    if filters is None:
        status = 400
    preview = bulk.bulk_operation_preview(actor, action, filters) if filters is not None else None
    context = {
        "action": action,
        "kind": kind,
        "preview": preview,
        "form": action_form,
        "filter_form": filter_form,
        "query": query,
        "limit": settings.TASKDECK_BULK_LIMIT,
    }
    return render(request, "tasks_app/bulk_new.html", context, status=status)


@require_safe
def bulk_operation(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    operation = get_object_or_404(bulk.visible_operations(actor_for(request)), pk=pk)
    run = operation.run
    context = {
        "operation": operation,
        "run": run,
        "interrupted": bulk.is_interrupted(operation),
        "active": operation.state in ("queued", "running") and not bulk.is_interrupted(operation),
        "percent": _percent(operation),
        "runs_query": _stored_filter_query(operation),
    }
    if request.htmx and request.htmx.target == "progress":
        return render(request, "tasks_app/bulk_operation.html#progress", context)
    return render(request, "tasks_app/bulk_operation.html", context)


def _percent(operation: BulkOperation) -> int:
    if operation.state == "done":
        return 100
    if not operation.expected:
        return 0
    return min(100, (operation.done + operation.skipped) * 100 // operation.expected)


def _stored_filter_query(operation: BulkOperation) -> str:
    """The runs list's query string for the operation's stored filter."""
    names = {
        "states": "state",
        "job_name": "job",
        "source": "source",
        "actor_label": "launched_by",
        "schedule_name": "schedule",
        "since": "since",
        "until": "until",
        "text": "q",
    }
    query = QueryDict(mutable=True)
    for key, value in (operation.filters or {}).items():
        if key in names:
            values = value if isinstance(value, list) else [value]
            query.setlist(names[key], [str(v) for v in values])
    return query.urlencode()


@require_POST
def bulk_operation_resume(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    operation = get_object_or_404(bulk.visible_operations(actor_for(request)), pk=pk)
    try:
        bulk.bulk_operation_resume(operation, actor=actor_for(request))
    except ServiceError as error:
        messages.error(request, str(error))
    except BrokerUnavailable:
        messages.error(request, "The broker is unavailable, so it was not resumed.")
    else:
        messages.success(request, "Resumed: it goes on after the last batch it finished.")
    return redirect(reverse("tasks_app:bulk_operation", kwargs={"pk": pk}))
