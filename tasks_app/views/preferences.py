"""The signed-in user's display preferences: how times read on every page (relative, local or
UTC). The header's toggle posts here; without JavaScript the post comes back to the page it was
made on, with JavaScript (`Accept: application/json`) it is answered in JSON and the page
re-renders its times in place."""

from __future__ import annotations

from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from ..models import TimeDisplay
from ..services import FieldErrors, ServiceError
from ..services import preferences as preference_services
from ..types import HtmxHttpRequest
from .common import actor_for, safe_next


class TimeDisplayForm(forms.Form):
    time_display = forms.ChoiceField(
        label="Show times",
        choices=TimeDisplay.choices,
        widget=forms.RadioSelect,
        help_text="Hover over any time to see it in full, whichever you choose.",
    )


def wants_json(request: HtmxHttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HtmxHttpRequest) -> HttpResponse:
    """GET: the form with the current choice. POST: store it (400 naming the field when the
    value is not a choice), then back to `next` or, for scripts, the stored value as JSON."""
    current = preference_services.time_display_of(request.user)
    if request.method != "POST":
        form = TimeDisplayForm(initial={"time_display": current})
        context = {"form": form, "next": safe_next(request, "")}
        return render(request, "tasks_app/prefs_preferences.html", context)
    form = TimeDisplayForm(request.POST)
    if form.is_valid():
        try:
            stored = preference_services.preference_set_time_display(
                actor=actor_for(request), value=form.cleaned_data["time_display"]
            )
        except FieldErrors as error:
            for field, message in error.errors.items():
                form.add_error(field if field in form.fields else None, message)
        except ServiceError as error:
            form.add_error(None, str(error))
        else:
            if wants_json(request):
                return JsonResponse({"time_display": stored})
            return redirect(safe_next(request, reverse("tasks_app:preferences")))
    if wants_json(request):
        errors = {field: [str(e) for e in messages] for field, messages in form.errors.items()}
        return JsonResponse({"detail": "Invalid preference.", "errors": errors}, status=400)
    context = {"form": form, "next": safe_next(request, "")}
    return render(request, "tasks_app/prefs_preferences.html", context, status=400)
