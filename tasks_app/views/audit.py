"""The audit trail: who did what, newest first."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .. import selectors, services
from ..types import HtmxHttpRequest
from .common import actor_for


@require_safe
def audit(request: HtmxHttpRequest) -> HttpResponse:
    unreadable = services.unreadable_jobs(actor_for(request))
    page = selectors.audit_page(request.GET.get("cursor"), unreadable_jobs=unreadable)
    return render(request, "tasks_app/audit.html", {"page": page})
