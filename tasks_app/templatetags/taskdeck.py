"""Template filters for the pages."""

from __future__ import annotations

from django import template

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
