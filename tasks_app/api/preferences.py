"""The token's user's own display preferences: read them, change them. The same service as the
dashboard's toggle, so a script and the header agree on what is stored."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from ..services import preferences as preference_services
from .auth import actor
from .errors import ApiError, responses

router = Router(tags=["preferences"])

TIME_DISPLAY_HELP = (
    "How the dashboard shows times to this user: `relative` (3 min ago), `local` (the "
    "browser's zone) or `utc`. The absolute time is on hover in every mode."
)


class PreferencesOut(Schema):
    time_display: str = Field(description=TIME_DISPLAY_HELP)


class PreferencesIn(Schema):
    time_display: str = Field(description=TIME_DISPLAY_HELP, max_length=16)


@router.get("/me/preferences", response=responses({200: PreferencesOut}), summary="My preferences")
def preferences_read(request: HttpRequest) -> dict[str, Any]:
    return {"time_display": preference_services.time_display_of(actor(request).user)}


@router.put(
    "/me/preferences", response=responses({200: PreferencesOut}), summary="Change my preferences"
)
def preferences_update(request: HttpRequest, payload: PreferencesIn) -> dict[str, Any]:
    """Store the preferences (audited when they change); 400 naming the field when a value is
    not one of its choices."""
    try:
        stored = preference_services.preference_set_time_display(
            actor=actor(request), value=payload.time_display
        )
    except preference_services.InvalidPreference as error:
        errors = {k: [v] for k, v in error.errors.items()}
        raise ApiError(400, "Invalid preferences.", errors) from error
    return {"time_display": stored}
