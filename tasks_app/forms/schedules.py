"""The schedule editor: when a schedule fires and its options (`ScheduleForm`), and the chosen
job's own parameter form (`job_params_form`), shared by the dashboard and the admin. The
missed-run policy fields (`MissedRunsFields`) are the admin's too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from ..jobs.params import DateTimeInput
from ..jobs.policies import QUEUES
from ..jobs.registry import JobSpec
from ..models import MissedRunPolicy
from ..schedules.cron import CronError, parse_cron
from ..schedules.definition import PERIODS, Kind, ScheduleDefinition, Timing
from ..schedules.missed import (
    CAP_MAX,
    CAP_MIN,
    DEFAULT,
    MissedRuns,
    missed_runs_named,
    with_missed,
)
from ..services.schedules import EARLIEST, LATEST, MAX_INTERVAL_SECONDS, OUT_OF_RANGE
from .runs import id_of
from .widgets import LongSelect

PARAM_PREFIX = "param"
TIMING_FIELDS = ("kind", "cron", "timezone", "every", "period", "run_at", "start_time", "expires")


def job_params_form(
    spec: JobSpec,
    *,
    data: Mapping[str, Any] | None = None,
    stored: Mapping[str, Any] | None = None,
) -> forms.Form:
    """`spec`'s parameter form (fields prefixed "param-"), showing a schedule's `stored` JSON
    kwargs. A stored sensitive value is never opened into the form nor sent to the browser:
    its field is write-only and says a value is stored; left empty, `validate_form` keeps the
    stored, sealed value (see `ParamSchema.form`)."""
    return spec.params.form(data, initial=stored, prefix=PARAM_PREFIX)


MISSED_POLICY_HELP = (
    "When beat was down or the schedule paused across fire times: skip them, run once for "
    "all of them, or run once for each (the latest ones, at most the cap)."
)
MISSED_CAP_HELP = f"For “run every missed run”: at most this many, {CAP_MIN} to {CAP_MAX}."


def missed_policy_field() -> forms.ChoiceField:
    # Not required: a client that posts neither field keeps the stored policy.
    return forms.ChoiceField(
        label="Missed runs",
        required=False,
        choices=MissedRunPolicy.choices,
        initial=DEFAULT.policy,
        help_text=MISSED_POLICY_HELP,
    )


def missed_cap_field() -> forms.IntegerField:
    return forms.IntegerField(
        label="Catch-up cap",
        required=False,
        min_value=CAP_MIN,
        max_value=CAP_MAX,
        initial=DEFAULT.cap,
        help_text=MISSED_CAP_HELP,
        widget=forms.NumberInput(attrs={"min": CAP_MIN, "max": CAP_MAX}),
    )


def missed_runs_from(cleaned: dict[str, Any]) -> MissedRuns:
    """The policy a valid form holds; an empty cap is the default one."""
    cap = cleaned.get("missed_cap")
    return MissedRuns(
        policy=cleaned.get("missed_policy") or DEFAULT.policy,
        cap=DEFAULT.cap if cap is None else int(cap),
    )


@cache
def _zones() -> tuple[tuple[str, str], ...]:
    """Every IANA zone name. Read once per process: listing them walks the zone database's
    files (~10 ms), and a new database needs a restart to be used anyway."""
    names = sorted(available_timezones() - {"localtime", "Factory"})
    return tuple((name, name) for name in names)


class ScheduleForm(forms.Form):
    """Everything but the parameters. Times are entered in the schedule's time zone."""

    name = forms.CharField(max_length=200)
    job = forms.ChoiceField(help_text="The job this schedule launches.")
    kind = forms.ChoiceField(
        label="Schedule",
        choices=[
            (Kind.CRONTAB.value, "Crontab"),
            (Kind.INTERVAL.value, "Every…"),
            (Kind.ONE_OFF.value, "Once"),
        ],
        widget=forms.RadioSelect,
        initial=Kind.CRONTAB.value,
    )
    cron = forms.CharField(
        required=False,
        max_length=120,
        label="Cron expression",
        help_text="minute hour day-of-month month day-of-week, e.g. 30 2 * * 1-5",
        widget=forms.TextInput(
            attrs={"placeholder": "30 2 * * 1-5", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    timezone = forms.ChoiceField(
        label="Time zone",
        help_text="Cron times, and every time on this form, are in this zone.",
        widget=LongSelect,
    )
    every = forms.IntegerField(
        required=False, min_value=1, widget=forms.NumberInput(attrs={"min": 1})
    )
    period = forms.ChoiceField(required=False, choices=[(p, p) for p in PERIODS], initial="minutes")
    run_at = forms.DateTimeField(required=False, label="Run at", widget=DateTimeInput())
    start_time = forms.DateTimeField(
        required=False, label="Start", widget=DateTimeInput(), help_text="Fire from this time on."
    )
    expires = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=DateTimeInput(),
        help_text="Stop firing at this time.",
    )
    one_off = forms.BooleanField(
        required=False, label="Run once", help_text="Disable the schedule after its first run."
    )
    queue = forms.ChoiceField(
        required=False,
        label="Queue override",
        choices=[("", "The job's own queue")] + [(q, q) for q in QUEUES],
    )
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    enabled = forms.BooleanField(required=False, initial=True)
    missed_policy = missed_policy_field()
    missed_cap = missed_cap_field()

    def __init__(self, *args: Any, jobs: Iterable[JobSpec] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        job_field = self.fields["job"]
        assert isinstance(job_field, forms.ChoiceField)
        job_field.choices = [("", "Choose a job…")] + [(s.name, s.title) for s in jobs]
        zone_field = self.fields["timezone"]
        assert isinstance(zone_field, forms.ChoiceField)
        zone_field.choices = _zones()
        zone_field.initial = settings.TIME_ZONE

    @classmethod
    def initial_for(cls, definition: ScheduleDefinition) -> dict[str, Any]:
        """The editor's initial values for a stored schedule; times in its zone. The missed-run
        policy is the definition's, or the one stored for its schedule (by name)."""
        timing = definition.timing
        zone = _zone(timing.timezone)
        if definition.missed is not None:
            missed = definition.missed
        else:
            missed = missed_runs_named(definition.name) if definition.name else DEFAULT
        return {
            "name": definition.name,
            "job": definition.job,
            "kind": timing.kind.value,
            "cron": timing.cron,
            "timezone": timing.timezone,
            "every": timing.every or None,
            "period": timing.period,
            "run_at": _wall(timing.run_at, zone),
            "start_time": _wall(definition.start_time, zone),
            "expires": _wall(definition.expires, zone),
            "one_off": definition.one_off and timing.kind is not Kind.ONE_OFF,
            "queue": definition.queue,
            "description": definition.description,
            "enabled": definition.enabled,
            "missed_policy": missed.policy,
            "missed_cap": missed.cap,
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind = cleaned.get("kind")
        zone = _zone(cleaned.get("timezone") or settings.TIME_ZONE)
        for name in ("run_at", "start_time", "expires"):
            if cleaned.get(name) is not None:
                cleaned[name] = _in_zone(cleaned[name], zone)
                if not EARLIEST <= cleaned[name] < LATEST:  # the preview would overflow
                    self.add_error(name, OUT_OF_RANGE)
        if kind == Kind.CRONTAB:
            cron = (cleaned.get("cron") or "").strip()
            if not cron:
                self.add_error("cron", "Give a cron expression, e.g. 30 2 * * 1-5.")
            elif "cron" not in self.errors:
                try:
                    parse_cron(cron)
                except CronError as error:
                    self.add_error("cron", str(error))
        elif kind == Kind.INTERVAL and cleaned.get("every") is None and "every" not in self.errors:
            self.add_error("every", "Give how many seconds, minutes, hours or days.")
        elif kind == Kind.INTERVAL and cleaned.get("every") is not None:
            every, period = cleaned["every"], cleaned.get("period") or "minutes"
            # As the service checks, and before the preview steps by it (a huge step overflows).
            if every > MAX_INTERVAL_SECONDS or (
                Timing(Kind.INTERVAL, every=every, period=period).step().total_seconds()
                > MAX_INTERVAL_SECONDS
            ):
                self.add_error("every", "Give a whole number of at least 1, for at most a year.")
        elif kind == Kind.ONE_OFF and cleaned.get("run_at") is None and "run_at" not in self.errors:
            self.add_error("run_at", "Give the date and time to run at.")
        return cleaned

    def timing(self) -> Timing:
        data = self.cleaned_data
        kind = Kind(data["kind"])
        return Timing(
            kind=kind,
            cron=" ".join((data.get("cron") or "").split()),
            timezone=data.get("timezone") or settings.TIME_ZONE,
            every=data.get("every") or 0,
            period=data.get("period") or "minutes",
            run_at=data.get("run_at"),
        )

    def to_definition(self, params: dict[str, Any]) -> ScheduleDefinition:
        """The definition to save; with the missed-run policy if the form posted it (a client
        that posts neither of its fields keeps the stored one)."""
        data = self.cleaned_data
        definition = ScheduleDefinition(
            name=data["name"].strip(),
            job=data["job"],
            timing=self.timing(),
            params=params,
            description=data.get("description") or "",
            enabled=bool(data.get("enabled")),
            start_time=data.get("start_time"),
            expires=data.get("expires"),
            one_off=bool(data.get("one_off")),
            queue=data.get("queue") or "",
        )
        if not {"missed_policy", "missed_cap"} & set(self.data):
            return definition
        return with_missed(definition, missed_runs_from(data))

    def preview_definition(self) -> ScheduleDefinition | None:
        """For the live preview: the timing typed so far, if its fields are valid."""
        self.is_valid()
        if any(name in self.errors for name in TIMING_FIELDS) or "kind" not in self.cleaned_data:
            return None
        data = self.cleaned_data
        return ScheduleDefinition(
            name="",
            job="",
            timing=self.timing(),
            start_time=data.get("start_time"),
            expires=data.get("expires"),
            one_off=bool(data.get("one_off")),
        )


class ScheduleBulkForm(forms.Form):
    action = forms.ChoiceField(choices=[("enable", "Enable"), ("disable", "Pause")])
    schedule = forms.TypedMultipleChoiceField(coerce=id_of(PeriodicTask), required=True, choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id is accepted here; the service looks them up.
        values = self.data.getlist("schedule") if hasattr(self.data, "getlist") else []
        field = self.fields["schedule"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = [(value, value) for value in values]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def _in_zone(value: datetime, zone: ZoneInfo) -> datetime:
    """A time Django read in the current zone, taken as that wall time in `zone`."""
    wall = timezone.make_naive(value) if timezone.is_aware(value) else value
    return wall.replace(tzinfo=zone)


def _wall(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    return value.astimezone(zone).replace(tzinfo=None) if value is not None else None
