"""The audit trail: who did what, newest first."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .. import selectors
from ..types import HtmxHttpRequest


@require_safe
def audit(request: HtmxHttpRequest) -> HttpResponse:
    page = selectors.audit_page(request.GET.get("cursor"))
    return render(request, "tasks_app/audit.html", {"page": page})
