"""Template filters for the pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from ..models import RunState

register = template.Library()


@register.filter
def duration(seconds: float | int | None) -> str:
    """1234.5 -> "20 min 34 s"; None -> "—"."""
    if seconds is None:
        return "—"
    total = round(float(seconds))
    if total < 60:
        return f"{float(seconds):.1f} s" if float(seconds) < 10 else f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def state_class(state: str) -> str:
    return f"state state-{str(state).lower()}"


@register.filter
def state_label(state: str) -> str:
    """ "FAILURE" -> "Failed", the words every page uses."""
    try:
        return str(RunState(state).label)
    except ValueError:
        return str(state)


@register.filter
def iso_time(value: str) -> str:
    """A stored ISO timestamp, shown like the other times: in the current zone, with its name."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
