"""The job catalog and each job's launch form, with the job's numbers (from the rolled-up
stats, hidden from those who may not read its runs) and its concurrency limit (changed here
by those with the permission)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from .. import charts, selectors, services
from ..forms import LaunchOptionsForm
from ..forms.concurrency import ACTION as CONCURRENCY_ACTION
from ..forms.concurrency import ConcurrencyForm
from ..jobs.registry import JobSpec, all_jobs, get_job
from ..models import RunSource
from ..services import BrokerUnavailable, UnknownJob, job_limits
from ..types import HtmxHttpRequest
from .common import LAUNCH_REFUSALS, actor_for, show_launch_refusal

# The service's option names -> the launch form's fields (an error shows next to its field).
OPTION_FIELDS = {"eta": "start_at", "countdown": "delay_seconds"}


def can_launch(request: HtmxHttpRequest, spec: JobSpec) -> bool:
    return services.may_launch(actor_for(request), spec)


@require_safe
def jobs(request: HtmxHttpRequest) -> HttpResponse:
    specs = all_jobs()
    hidden = services.unreadable_jobs(actor_for(request))
    numbers = selectors.job_numbers(
        [spec.name for spec in specs], windows=(selectors.DAY,), unreadable_jobs=hidden
    )
    # Per job: may launch it, its last 24 hours (None: hidden from this viewer).
    limits = job_limits.job_concurrency_many(spec.name for spec in specs)
    rows = [
        (spec, can_launch(request, spec), numbers.get(spec.name), limits.get(spec.name))
        for spec in specs
    ]
    return render(request, "tasks_app/jobs.html", {"rows": rows})


@require_http_methods(["GET", "HEAD", "POST"])
def launch(request: HtmxHttpRequest, name: str) -> HttpResponse:
    try:
        spec = get_job(name)
    except UnknownJob:
        raise Http404(f"No job named {name}.") from None
    status = 200
    concurrency = job_limits.job_concurrency(name)
    # Filled in with the limit in force: saving the form untouched must not lift it.
    concurrency_form = ConcurrencyForm(
        prefix=CONCURRENCY_ACTION,
        initial={"concurrency": "" if concurrency.limit is None else str(concurrency.limit)},
    )
    if request.method == "POST" and request.POST.get("action") == CONCURRENCY_ACTION:
        concurrency_form = ConcurrencyForm(request.POST, prefix=CONCURRENCY_ACTION)
        if concurrency_form.is_valid():
            try:
                job_limits.job_limit_set(
                    name,
                    concurrency_form.cleaned_data["concurrency"],
                    actor=actor_for(request),
                    use_code_default=concurrency_form.cleaned_data["use_code_default"],
                )
            except services.FieldErrors as error:
                for field, problem in error.errors.items():
                    concurrency_form.add_error(field, problem)
            except BrokerUnavailable as error:
                concurrency_form.add_error(None, f"{error} Try again shortly.")
                status = 503
            else:
                messages.success(request, f"Concurrency limit of {spec.title} saved.")
                return redirect("tasks_app:launch", name=name)
        if status == 200:
            status = 400
        form = spec.params.form()
        options = LaunchOptionsForm(prefix="option")
    elif request.method == "POST":
        form = spec.params.form(data=request.POST)
        options = LaunchOptionsForm(request.POST, prefix="option")
        params = spec.params.validate_form(form)
        if params is not None and options.is_valid():
            try:
                run = services.job_launch(
                    name, params, actor=actor_for(request), options=options.to_options(),
                    source=RunSource.FORM,
                )  # fmt: skip
            except services.InvalidOptions as error:
                for field, problem in error.errors.items():
                    options.add_error(OPTION_FIELDS.get(field), problem)
            except LAUNCH_REFUSALS as error:  # e.g. a housekeeping job: a 400
                status = show_launch_refusal(form, error)
            else:
                messages.success(request, f"Launched {spec.title}.")
                return redirect("tasks_app:run", task_id=run.task_id)
        if status == 200:
            status = 400
    else:
        form = spec.params.form()
        options = LaunchOptionsForm(prefix="option")
    numbers = selectors.job_numbers(
        [spec.name], unreadable_jobs=services.unreadable_jobs(actor_for(request))
    ).get(spec.name)
    context = {
        "spec": spec,
        "concurrency": concurrency,
        "concurrency_form": concurrency_form,
        "can_manage_limits": job_limits.may_manage_limits(actor_for(request)),
        "form": form,
        "options": options,
        "can_launch": can_launch(request, spec),
        "numbers": numbers,  # None: hidden from this viewer
        "histogram": (
            charts.duration_histogram(numbers.window(selectors.WEEK).duration_buckets)
            if numbers is not None
            else None
        ),
    }
    return render(request, "tasks_app/launch.html", context, status=status)
