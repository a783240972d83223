"""Runs history, run detail and the run actions (retry, cancel, bulk, artifact)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePath

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .. import selectors, services
from ..forms import BulkActionForm, CancelForm, RunFilterForm
from ..jobs.registry import find_job
from ..jobs.sealing import is_sealed
from ..models import Run, RunState
from ..selectors.rerun_diff import rerun_diff
from ..services import BrokerUnavailable
from ..services.runs import run_rerun
from ..types import HtmxHttpRequest
from .common import LAUNCH_REFUSALS, actor_for, safe_next, show_launch_refusal

FAILED = (RunState.FAILURE.value, RunState.LOST.value)


def _filter_form(request: HtmxHttpRequest) -> RunFilterForm:
    data = request.GET.copy()
    data.pop("cursor", None)
    return RunFilterForm(data if data else None)


@require_safe
def runs(request: HtmxHttpRequest) -> HttpResponse:
    form = _filter_form(request)
    filters = form.to_filter() if form.is_bound else selectors.RunFilter()
    filters = services.readable_filter(actor_for(request), filters)
    page = selectors.runs_page(filters, request.GET.get("cursor"))
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "any_active": any(run.is_active for run in page.runs),
        "filtered": bool(query),
        "hidden_jobs": filters.unreadable_jobs,  # their runs' durations are not shown
    }
    if request.htmx and request.htmx.target == "rows":
        return render(request, "tasks_app/runs.html#rows", context)
    return render(request, "tasks_app/runs.html", context)


@require_POST
def runs_bulk(request: HtmxHttpRequest) -> HttpResponse:
    back = safe_next(request, reverse("tasks_app:runs"))
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Select at least one run.")
        return redirect(back)
    ids = form.cleaned_data["run"]
    actor = actor_for(request)
    try:
        if form.cleaned_data["action"] == "retry":
            outcome = services.runs_retry_bulk(actor=actor, ids=ids)
            verb = "Retried"
        else:
            outcome = services.runs_cancel_bulk(actor=actor, ids=ids)
            verb = "Cancelled"
    except services.BulkLimitExceeded as error:
        messages.error(request, str(error))
        return redirect(back)
    except BrokerUnavailable:
        messages.error(request, "The broker is unavailable; some runs may not have been queued.")
        return redirect(back)
    _report(request, verb, outcome)
    return redirect(back)


@require_http_methods(["GET", "HEAD", "POST"])
def runs_retry_failed(request: HtmxHttpRequest) -> HttpResponse:
    """GET: how many failed runs match the filter, and a confirm button. POST: retry them."""
    form = _filter_form(request)
    base = form.to_filter() if form.is_bound else selectors.RunFilter()
    states = tuple(s for s in base.states if s in FAILED) if base.states else FAILED
    actor = actor_for(request)
    # Its count, and the runs it skips, must not confirm a guess at a restricted parameter.
    filters = services.readable_filter(actor, replace(base, states=states))
    limit = settings.TASKDECK_BULK_LIMIT
    query = request.GET.urlencode()
    if request.method == "POST":
        try:
            outcome = services.runs_retry_bulk(actor=actor, filters=filters)
        except services.BulkLimitExceeded as error:
            messages.error(request, str(error))
        except BrokerUnavailable:
            messages.error(request, "The broker is unavailable; some runs were not queued.")
        else:
            _report(request, "Retried", outcome)
        return redirect(f"{reverse('tasks_app:runs')}?{query}")
    if not actor.has_perm("tasks_app.retry_run"):
        raise PermissionDenied("You may not retry runs.")
    count = selectors.runs_count_up_to(filters, limit)
    context = {"count": count, "limit": limit, "too_many": count > limit, "query": query}
    return render(request, "tasks_app/runs_retry_failed.html", context)


@require_safe
def run_detail(request: HtmxHttpRequest, task_id: str) -> HttpResponse:
    if request.htmx and request.htmx.target == "live":
        live = selectors.run_live(task_id)  # the 1-second poll: one row, not the whole page
        if live is None:
            raise Http404("No such run.")
        services.require_run_read(actor_for(request), live.run)  # a restricted job: 403
        context = {
            "d": live,
            "run": live.run,
            "cancel_form": CancelForm(),
            "can_rerun": _may_rerun(request, live.run),
        }
        return render(request, "tasks_app/run.html#live", context)
    detail = selectors.run_detail(task_id)
    if detail is None:
        raise Http404("No such run.")
    services.require_run_read(actor_for(request), detail.run)  # a restricted job: 403
    context = {
        "d": detail,
        "run": detail.run,
        "cancel_form": CancelForm(),
        "can_rerun": _may_rerun(request, detail.run),
        "rerun_diff": rerun_diff(detail.run),  # what changed against the run it re-ran
    }
    return render(request, "tasks_app/run.html", context)


def _may_rerun(request: HtmxHttpRequest, run: Run) -> bool:
    """Whether to offer "Run again with changes": a registered job this user may both retry
    and launch (the service checks again, and whether the run has finished)."""
    spec = find_job(run.job_name)
    actor = actor_for(request)
    return (
        spec is not None
        and actor.has_perm("tasks_app.retry_run")
        and services.may_launch(actor, spec)
    )


@require_http_methods(["GET", "HEAD", "POST"])
def run_rerun_form(request: HtmxHttpRequest, task_id: str) -> HttpResponse:
    """The job's parameters, filled in with a finished run's, to change and run again. A
    sensitive field shows no value: left empty, it keeps the original's sealed value."""
    run = get_object_or_404(Run, task_id=task_id)
    actor = actor_for(request)
    services.require_run_read(actor, run)  # its parameters are details: a restricted job, 403
    spec = find_job(run.job_name)
    if spec is None:
        messages.error(request, f"{run.job_name} is not a registered job: retry it as it was.")
        return redirect("tasks_app:run", task_id=task_id)
    status = 200
    # A sealed value stays on the server: kept by a sensitive field, never shown by another
    # (a parameter that was sensitive when the run was launched): that one is entered again.
    initial = {
        k: v for k, v in (run.params or {}).items() if k in spec.sensitive or not is_sealed(v)
    }
    form = spec.params.form(
        data=request.POST if request.method == "POST" else None, initial=initial
    )
    if request.method == "POST":
        params = spec.params.validate_form(form)
        if params is not None:
            try:
                new = run_rerun(run, params, actor=actor)
            except LAUNCH_REFUSALS as error:  # not finished yet, housekeeping: a 409
                status = show_launch_refusal(form, error, conflict=409)
            else:
                messages.success(request, f"Running {spec.title} again, with your changes.")
                return redirect("tasks_app:run", task_id=new.task_id)
        if status == 200:
            status = 400
    context = {
        "spec": spec,
        "run": run,
        "form": form,
        "can_rerun": _may_rerun(request, run),
    }
    return render(request, "tasks_app/rerun.html", context, status=status)


@require_POST
def run_retry(request: HtmxHttpRequest, task_id: str) -> HttpResponse:
    run = get_object_or_404(Run, task_id=task_id)
    try:
        new = services.run_retry(run, actor=actor_for(request))
    except (services.NotRetriable, services.AlreadyActive) as error:
        messages.error(request, str(error))
        return redirect(safe_next(request, reverse("tasks_app:run", args=[task_id])))
    except BrokerUnavailable:
        messages.error(request, "The broker is unavailable, so nothing was queued.")
        return redirect("tasks_app:run", task_id=task_id)
    messages.success(request, "Retry queued.")
    return redirect("tasks_app:run", task_id=new.task_id)


@require_POST
def run_cancel(request: HtmxHttpRequest, task_id: str) -> HttpResponse:
    run = get_object_or_404(Run, task_id=task_id)
    form = CancelForm(request.POST)
    terminate = form.is_valid() and form.cleaned_data["terminate"]
    outcome = services.run_cancel(run, actor=actor_for(request), terminate=terminate)
    text = {
        services.CancelOutcome.REVOKED: "Cancelled: it will not start.",
        services.CancelOutcome.REQUESTED: (
            "Terminating it now."
            if terminate
            else "Cancelling: it stops at its next progress point."
        ),
        services.CancelOutcome.ALREADY_FINAL: "It had already finished.",
    }[outcome]
    messages.info(request, text)
    return redirect(safe_next(request, reverse("tasks_app:run", args=[task_id])))


@require_safe
def run_artifact(request: HtmxHttpRequest, task_id: str) -> FileResponse:
    run = get_object_or_404(Run, task_id=task_id)
    services.require_run_read(actor_for(request), run)  # before saying whether it has a file
    if not run.artifact:
        raise Http404("This run has no file.")
    try:
        handle = run.artifact.open("rb")
    except FileNotFoundError:
        raise Http404("The file is gone (cleaned up?).") from None
    return FileResponse(handle, as_attachment=True, filename=PurePath(run.artifact.name).name)


def _report(request: HtmxHttpRequest, verb: str, outcome: services.BulkOutcome) -> None:
    if outcome.done:
        messages.success(request, f"{verb} {len(outcome.done)} run(s).")
    for run, why in outcome.skipped[:10]:
        messages.warning(request, f"Skipped {run.task_id}: {why}.")
    if len(outcome.skipped) > 10:
        messages.warning(request, f"… and {len(outcome.skipped) - 10} more skipped.")
