"""UI forms: the runs filter, launch options, and the run actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.db.models import Model
from django.utils import timezone

from ..jobs.params import DateTimeInput
from ..jobs.policies import QUEUES
from ..jobs.registry import all_jobs
from ..models import Run, RunSource, RunState
from ..selectors import RunFilter
from ..selectors.runs import SEARCH_TEXT, SEARCH_TOO_SHORT
from ..services import LaunchOptions


class RunFilterForm(forms.Form):
    """The runs history filters; every field is optional and they live in the URL."""

    state = forms.MultipleChoiceField(
        choices=RunState.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    # Free text with the registered jobs suggested: runs of plain tasks and retired jobs too.
    job = forms.CharField(
        required=False, max_length=255, widget=forms.TextInput(attrs={"list": "job-names"})
    )
    source = forms.ChoiceField(choices=[("", "Any source"), *RunSource.choices], required=False)
    launched_by = forms.CharField(required=False, max_length=255, label="Launched by")
    schedule = forms.CharField(required=False, max_length=255)
    since = forms.DateTimeField(required=False, widget=DateTimeInput(), label="Queued from")
    until = forms.DateTimeField(required=False, widget=DateTimeInput(), label="Queued before")
    q = forms.CharField(
        required=False,
        max_length=255,
        # Text without 3 letters or digits in a row has no trigram: no index serves it.
        validators=[RegexValidator(SEARCH_TEXT, SEARCH_TOO_SHORT)],
        label="Search",
        help_text="A task id (or its start), or text in the parameters (3 letters or more).",
    )

    @property
    def job_names(self) -> list[str]:
        return [spec.name for spec in all_jobs()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after the start of the range.")
        return cleaned

    def to_filter(self) -> RunFilter:
        """The filter for valid input; an invalid field is left out (and shown as an error)."""
        data = self.cleaned_data if self.is_valid() else _valid_part(self)
        return RunFilter(
            states=tuple(data.get("state") or ()),
            job_name=(data.get("job") or "").strip(),
            source=data.get("source") or "",
            actor_label=(data.get("launched_by") or "").strip(),
            schedule_name=(data.get("schedule") or "").strip(),
            since=data.get("since"),
            until=data.get("until"),
            text=(data.get("q") or "").strip(),
        )


def _valid_part(form: forms.Form) -> dict[str, Any]:
    return {name: value for name, value in form.cleaned_data.items() if name not in form.errors}


class LaunchOptionsForm(forms.Form):
    """When and where a launch runs; prefixed "option-" so it never meets a job parameter."""

    queue = forms.ChoiceField(
        required=False,
        choices=[("", "The job's own queue")] + [(q, q) for q in QUEUES],
    )
    delay_seconds = forms.IntegerField(
        required=False,
        min_value=0,
        # Only so a huge number is a form error, not an OverflowError in float(): the service
        # applies the real limit (below the broker's visibility timeout) and says so.
        max_value=10**9,
        label="Start after (seconds)",
        widget=forms.NumberInput(attrs={"min": 0}),
    )
    start_at = forms.DateTimeField(
        required=False,
        widget=DateTimeInput(),
        label="Or start at",
        help_text="In your time zone; leave both empty to start now.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("delay_seconds") and cleaned.get("start_at"):
            self.add_error("start_at", "Give a delay or a start time, not both.")
        start_at: datetime | None = cleaned.get("start_at")
        if start_at is not None and start_at <= timezone.now():
            self.add_error("start_at", "Must be in the future.")
        return cleaned

    def to_options(self) -> LaunchOptions:
        data = self.cleaned_data
        return LaunchOptions(
            queue=data.get("queue") or None,
            countdown=float(data["delay_seconds"]) if data.get("delay_seconds") else None,
            eta=data.get("start_at"),
        )


class CancelForm(forms.Form):
    terminate = forms.BooleanField(
        required=False,
        label="Terminate",
        help_text="Kill the process now instead of stopping at the next progress point.",
    )


def id_of(model: type[Model]) -> Callable[[str], int]:
    """A form field's `coerce` for ids of `model`: a positive int that fits its key column.

    Python's int has no bound, but the database's has: a larger value in `pk__in` makes SQLite
    raise OverflowError and PostgreSQL refuse the query (both a 500). Out of range, it raises
    ValueError, which the field reports as an invalid choice.
    """
    key = model._meta.pk
    assert key is not None

    def coerce(value: str) -> int:
        number = int(value)
        if number < 1:
            raise ValueError(value)
        for validator in key.validators:  # the column's range on this database
            validator(number)
        return number

    return coerce


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=[("retry", "Retry selected"), ("cancel", "Cancel selected")])
    run = forms.TypedMultipleChoiceField(coerce=id_of(Run), required=True, choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id is accepted here; the services look the runs up and check them.
        values = self.data.getlist("run") if hasattr(self.data, "getlist") else []
        run_field = self.fields["run"]
        assert isinstance(run_field, forms.TypedMultipleChoiceField)
        run_field.choices = [(value, value) for value in values]
