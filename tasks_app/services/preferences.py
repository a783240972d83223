"""A staff user's own display preferences (how every page shows times), kept in the database so
they follow the user across browsers and sessions. Each user sets only their own; a change is
audited like any other."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from ..models import TimeDisplay, UserPreference
from .common import Actor, audit
from .errors import FieldErrors

DEFAULT_TIME_DISPLAY = TimeDisplay.RELATIVE


class InvalidPreference(FieldErrors):
    """A preference value that is not one of its choices, keyed by field."""


def time_display_of(user: Any) -> str:
    """How `user` wants times shown: one of TimeDisplay's values; the default for anonymous
    visitors and for users who never chose."""
    if user is None or not getattr(user, "is_authenticated", False):
        return DEFAULT_TIME_DISPLAY.value
    rows = UserPreference.objects.filter(user_id=user.pk)
    stored = rows.values_list("time_display", flat=True).first()
    return stored if stored in TimeDisplay.values else DEFAULT_TIME_DISPLAY.value


def preference_set_time_display(*, actor: Actor, value: object) -> str:
    """Store how the acting user wants times shown; answers the stored value. Raises
    PermissionDenied (no signed-in active staff user: a token acts for its user) or
    InvalidPreference naming `time_display`. Audited only when the value changes."""
    user = actor.user
    if actor.user_id is None or user is None or not getattr(user, "is_active", False):
        raise PermissionDenied("Sign in to set your preferences.")
    if not getattr(user, "is_staff", False):
        raise PermissionDenied("Taskdeck is for staff users only.")
    choice = str(value).strip().lower() if isinstance(value, str) else ""
    if choice not in TimeDisplay.values:
        allowed = ", ".join(TimeDisplay.values)
        raise InvalidPreference({"time_display": f"Choose one of: {allowed}."})
    with transaction.atomic():
        preference, _ = UserPreference.objects.select_for_update().get_or_create(
            user_id=actor.user_id
        )
        previous = preference.time_display
        if previous != choice:
            preference.time_display = choice
            preference.save(update_fields=["time_display"])
            audit(
                actor,
                "preference.time_display",
                None,
                {"time_display": choice, "previous": previous},
                target=("user", str(actor.user_id)),
            )
    return choice
