"""Schedule pages: the list, one schedule, the editor (with its live preview and the chosen
job's parameter form), and the actions: pause/resume, run now, delete, reset to the code."""

from __future__ import annotations

import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_celery_beat.models import PeriodicTask

from .. import selectors, services
from ..forms import ScheduleBulkForm, ScheduleForm, job_params_form
from ..forms.schedules import TIMING_FIELDS
from ..jobs.registry import find_job
from ..schedules.cron import CronError
from ..schedules.definition import ScheduleDefinition, definition_of, forecast
from ..selectors.calendar_timeline import calendar_days, schedule_calendar
from ..selectors.schedules import CANNOT_FORECAST, schedules_page
from ..services import AlreadyActive, BrokerUnavailable, ParamsError
from ..services.schedules import MANAGE
from ..types import HtmxHttpRequest
from .common import actor_for, safe_next


@require_safe
def schedules(request: HtmxHttpRequest) -> HttpResponse:
    # A cursor that is not one of ours reads as the first page, as on the runs list.
    page = schedules_page(request.GET.get("cursor"), history=True)
    return render(request, "tasks_app/schedules.html", {"rows": page.rows, "page": page})


@require_safe
def schedules_calendar(request: HtmxHttpRequest) -> HttpResponse:
    """When every enabled schedule fires in the next 24 hours or 7 days (`?days=1|7`; anything
    else reads as 1, as a stray cursor reads as the first page)."""
    calendar = schedule_calendar(calendar_days(request.GET.get("days")))
    return render(request, "tasks_app/schedule_calendar.html", {"calendar": calendar})


@require_safe
def schedule_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    unreadable = services.unreadable_jobs(actor_for(request))
    detail = selectors.schedule_detail(pk, unreadable_jobs=unreadable)
    if detail is None:
        raise Http404("No such schedule.")
    return render(request, "tasks_app/schedule.html", {"detail": detail, "row": detail.row})


@require_http_methods(["GET", "HEAD", "POST"])
def schedule_new(request: HtmxHttpRequest) -> HttpResponse:
    return _editor(request, None)


@require_http_methods(["GET", "HEAD", "POST"])
def schedule_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _editor(request, _task(pk))


def _editor(request: HtmxHttpRequest, task: PeriodicTask | None) -> HttpResponse:
    actor = actor_for(request)
    if not actor.has_perm(MANAGE):
        raise PermissionDenied("You need the permission to manage schedules.")
    stored = definition_of(task) if task is not None else None
    if stored is not None and find_job(stored.job) is None:
        # A plain Celery task: only superusers edit those, as raw JSON, in the admin.
        return render(request, "tasks_app/schedule_plain.html", {"task": task}, status=200)
    if stored is not None:
        # The form shows the stored parameters: a job's permission guards reading them, and
        # saving needs it anyway.
        services.require_task_permission(actor, stored.job)
    jobs = services.schedulable_jobs(actor)
    status = 200
    if request.method == "POST":
        form = ScheduleForm(request.POST, jobs=jobs)
        spec = find_job(request.POST.get("job", ""))
        keep = stored.params if stored is not None and spec and stored.job == spec.name else None
        params_form = job_params_form(spec, data=request.POST, stored=keep) if spec else None
        form_ok = form.is_valid()
        params = spec.params.validate_form(params_form) if spec and params_form else None
        if form_ok and params is not None:
            try:
                saved = services.schedule_save(form.to_definition(params), actor=actor, task=task)
            except services.InvalidSchedule as error:
                for field, problem in error.errors.items():
                    form.add_error(field if field in form.fields else None, problem)
            except ParamsError as error:
                assert params_form is not None
                error.add_to_form(params_form)
            else:
                verb = "Created" if task is None else "Saved"
                messages.success(request, f"{verb} schedule {saved.name}.")
                return redirect("tasks_app:schedule", pk=saved.pk)
        status = 400
    else:
        initial = ScheduleForm.initial_for(stored) if stored is not None else {}
        if stored is None and request.GET.get("job"):
            initial["job"] = request.GET["job"]
        form = ScheduleForm(initial=initial, jobs=jobs)
        spec = find_job(initial.get("job", ""))
        params_form = (
            job_params_form(spec, stored=stored.params if stored else None) if spec else None
        )
    if form.is_bound:
        preview = _preview_of(form)
    else:
        preview = _preview(stored) if stored is not None else {"empty": True}
    context = {
        "form": form,
        "params_form": params_form,
        "spec": spec,
        "task": task,
        "declared": task is not None and hasattr(task, "declaration"),
        "preview": preview,
    }
    return render(request, "tasks_app/schedule_form.html", context, status=status)


def _preview_of(form: ScheduleForm) -> dict[str, object]:
    """The preview of the timing typed on `form`, or the errors that stop it."""
    definition = form.preview_definition()
    if definition is None:
        return {"errors": [e for name in TIMING_FIELDS for e in form.errors.get(name, [])]}
    return _preview(definition)


def _preview(definition: ScheduleDefinition) -> dict[str, object]:
    try:
        words, coming = definition.timing.in_words(), forecast(definition)
    except CronError as error:  # a stored crontab the strict parser refuses
        return {"errors": [f"{CANNOT_FORECAST}: {error}"]}
    return {"words": words, "upcoming": coming, "zone": definition.timing.timezone}


@require_safe
def schedule_preview(request: HtmxHttpRequest) -> HttpResponse:
    """The editor's live preview (htmx): the timing typed so far, in words, with fire times."""
    form = ScheduleForm(request.GET, jobs=[])
    context = {"preview": _preview_of(form)}
    return render(request, "tasks_app/schedule_form.html#preview", context)


@require_safe
def schedule_params(request: HtmxHttpRequest) -> HttpResponse:
    """The chosen job's parameter fields (htmx, when the job chooser changes)."""
    actor = actor_for(request)
    if not actor.has_perm(MANAGE):
        raise PermissionDenied("You need the permission to manage schedules.")
    spec = find_job(request.GET.get("job", ""))
    if spec is not None and spec not in services.schedulable_jobs(actor):
        spec = None
    stored = None
    pk = request.GET.get("schedule", "")
    # Not str.isdigit(): that accepts digits int() refuses, such as "²".
    if spec is not None and re.fullmatch(r"[0-9]{1,18}", pk):
        task = PeriodicTask.objects.filter(pk=int(pk), task=spec.name).first()
        stored = definition_of(task).params if task is not None else None
    params_form = job_params_form(spec, stored=stored) if spec else None
    context = {"spec": spec, "params_form": params_form}
    return render(request, "tasks_app/_schedule_params.html", context)


@require_POST
def schedule_toggle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _task(pk)
    enabled = request.POST.get("enabled")
    wanted = None if enabled is None else enabled == "1"
    try:
        changed = services.schedules_toggle([task.pk], actor=actor_for(request), enabled=wanted)
    except services.ServiceError as error:
        messages.error(request, str(error))
        changed = []
    if changed:
        state = "enabled" if changed[0].enabled else "paused"
        messages.success(request, f"Schedule {task.name} {state}.")
    return redirect(safe_next(request, reverse("tasks_app:schedule", args=[task.pk])))


@require_POST
def schedules_bulk(request: HtmxHttpRequest) -> HttpResponse:
    form = ScheduleBulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Select at least one schedule.")
        return redirect("tasks_app:schedules")
    enabled = form.cleaned_data["action"] == "enable"
    ids = form.cleaned_data["schedule"]
    try:
        changed = services.schedules_toggle(ids, actor=actor_for(request), enabled=enabled)
    except services.ServiceError as error:
        messages.error(request, str(error))
        return redirect("tasks_app:schedules")
    verb = "Enabled" if enabled else "Paused"
    messages.success(request, f"{verb} {len(changed)} schedule(s).")
    return redirect("tasks_app:schedules")


@require_POST
def schedule_run(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _task(pk)
    back = reverse("tasks_app:schedule", args=[task.pk])
    try:
        run = services.schedule_run_now(task, actor=actor_for(request))
    except BrokerUnavailable:
        messages.error(request, "The broker is unavailable, so nothing was queued.")
    except ParamsError as error:
        messages.error(request, f"The schedule's parameters are not valid for its job: {error}")
    except (AlreadyActive, services.ServiceError, services.InvalidOptions) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Launched {task.name} now.")
        return redirect("tasks_app:run", task_id=run.task_id)
    return redirect(back)


@require_http_methods(["GET", "HEAD", "POST"])
def schedule_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _task(pk)
    if request.method == "POST":
        try:
            services.schedule_delete(task, actor=actor_for(request))
        except services.ServiceError as error:
            messages.error(request, str(error))
            return redirect("tasks_app:schedule", pk=task.pk)
        messages.success(request, f"Deleted schedule {task.name}.")
        return redirect("tasks_app:schedules")
    if not actor_for(request).has_perm(MANAGE):
        raise PermissionDenied("You need the permission to manage schedules.")
    return render(request, "tasks_app/schedule_delete.html", {"task": task})


@require_POST
def schedule_reset(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _task(pk)
    try:
        services.schedule_reset(task, actor=actor_for(request))
    except services.ServiceError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{task.name} is back to what its code declares.")
    return redirect("tasks_app:schedule", pk=task.pk)


def _task(pk: int) -> PeriodicTask:
    task: PeriodicTask | None = PeriodicTask.objects.filter(pk=pk).first()
    if task is None:
        raise Http404("No such schedule.")
    return task
