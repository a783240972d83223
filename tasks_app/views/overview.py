"""The landing page: what ran recently, by state."""

from django.http import HttpResponse
from django.shortcuts import render

from .. import selectors
from ..types import HtmxHttpRequest


def overview(request: HtmxHttpRequest) -> HttpResponse:
    return render(
        request,
        "tasks_app/overview.html",
        {"state_counts": selectors.result_state_counts(hours=24)},
    )
