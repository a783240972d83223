"""Template filters for the pages."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..charts import seconds_label
from ..models import Run, RunState, TimeDisplay
from ..services import preferences

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


@register.filter
def approx(seconds: float | None) -> str:
    """An estimated length of time (a percentile from a histogram): 1.234 -> "≈ 1.2 s";
    None (no runs) -> "—"."""
    return "—" if seconds is None else f"≈ {seconds_label(seconds)}"


def relative_time(moment: datetime, now: datetime) -> str:
    """How long ago (or, for a future time, how soon) `moment` is, in its largest whole unit:
    "just now", "40 s ago", "3 min ago", "5 h ago", "2 d ago", "in 3 min"."""
    delta = (now - moment).total_seconds()
    seconds = int(abs(delta))
    if seconds < 1:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            amount = f"{seconds // size} {unit}"
            break
    return f"{amount} ago" if delta > 0 else f"in {amount}"


def iso_utc(moment: datetime) -> str:
    """The machine-readable instant every <time> carries, in UTC whatever the current zone:
    "2026-12-05T14:03:12.250000+00:00". The page's script re-renders the text from it in the
    viewer's chosen time display."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.astimezone(UTC).isoformat()


def absolute_label(moment: datetime) -> str:
    """`moment` in full in the current zone, with the zone's name: "2026-12-05 14:03:12 UTC"."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


@register.filter
def when(moment: datetime | None) -> SafeString | str:
    """`moment` relative to now, in a <time> element whose title is the absolute time in the
    current zone: <time datetime="2026-12-05T14:03:12+00:00" title="2026-12-05 14:03:12 UTC">3
    min ago</time>. Reads correctly without JavaScript; with it, the viewer's time display
    applies (static/tasks_app/time.js)."""
    if moment is None:
        return ""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        iso_utc(moment),
        absolute_label(moment),
        relative_time(moment, timezone.now()),
    )


@register.filter
def stamp(moment: datetime | str | None) -> SafeString | str:
    """An absolute time (a datetime, or a stored ISO string such as a log line's) in a <time>
    element: the full time in the current zone as text, so a page that lists events reads as a
    timeline without JavaScript; with it, the viewer's time display applies. None -> ""."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        try:
            instant = datetime.fromisoformat(moment)
        except ValueError:
            return moment  # not a time: shown as it is (escaped, as any text)
    else:
        instant = moment
    label = absolute_label(instant)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso_utc(instant), label, label)


@register.simple_tag(takes_context=True)
def time_display(context: template.Context) -> str:
    """The viewer's time display (relative, local or utc), for base.html to put on <body>.
    Looked up once per request however often a page asks."""
    request = context.get("request")
    if request is None:
        return preferences.DEFAULT_TIME_DISPLAY.value
    cached = getattr(request, "_taskdeck_time_display", None)
    if cached is None:
        cached = preferences.time_display_of(getattr(request, "user", None))
        request._taskdeck_time_display = cached
    return str(cached)


@register.simple_tag
def time_display_choices() -> list[tuple[str, str]]:
    """The choices of the header's time display toggle: (value, label)."""
    return [(str(value), str(label)) for value, label in TimeDisplay.choices]


@register.filter
def elapsed(run: Run) -> str:
    """A run's duration: finished - started; while it runs, the time so far; queued or never
    started: empty."""
    if run.started_at is None:
        return ""
    if run.finished_at is not None:
        return duration(max((run.finished_at - run.started_at).total_seconds(), 0.0))
    if run.is_active:
        so_far = max((timezone.now() - run.started_at).total_seconds(), 0.0)
        return f"{duration(so_far)} so far"
    return ""
