"""The landing page: totals by state, activity and queue wait per hour, active runs and latest
failures."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .. import charts, selectors, services
from ..types import HtmxHttpRequest
from .common import actor_for


@require_safe
def overview(request: HtmxHttpRequest) -> HttpResponse:
    actor = actor_for(request)
    # A restricted job's progress message and error are details: shown only to those who may
    # read its runs (the row itself is listed for everyone).
    active = [(run, services.may_read_run(actor, run)) for run in selectors.active_runs()]
    if request.htmx and request.htmx.target == "active-runs":
        return render(request, "tasks_app/overview.html#active", {"active": active})
    context = {
        "totals": [
            selectors.state_totals(hours=24, label="Last 24 hours"),
            selectors.state_totals(hours=24 * 7, label="Last 7 days"),
        ],
        "chart": charts.hourly_chart(selectors.hourly_activity(24)),
        # From the rolled-up stats; jobs whose runs this viewer may not read are left out.
        "wait_chart": charts.wait_chart(
            selectors.queue_wait_by_hour(24, unreadable_jobs=services.unreadable_jobs(actor))
        ),
        "active": active,
        "failures": [
            (run, services.may_read_run(actor, run)) for run in selectors.latest_failures()
        ],
    }
    return render(request, "tasks_app/overview.html", context)
