"""The PeriodicTask admin's forms. A schedule of a registered job is edited as in the
dashboard: a job chooser (the jobs the user may schedule) and that job's own parameter form
(htmx swaps it when the job changes), checked by the job's schema and stored as its normalised
JSON kwargs. The stock raw form (task name, JSON args and kwargs) is for superusers, on
schedules of plain Celery tasks. Both are checked by the services' rules before saving, and
both edit the schedule's missed-run policy (stored beside the row, in `ScheduleOptions`)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_celery_beat.admin import PeriodicTaskForm as StockPeriodicTaskForm
from django_celery_beat.models import PeriodicTask

from .. import services
from ..forms import job_params_form
from ..forms.schedules import missed_cap_field, missed_policy_field, missed_runs_from
from ..jobs.policies import QUEUES
from ..jobs.registry import JobSpec
from ..schedules.definition import definition_of
from ..schedules.missed import MissedRuns, missed_runs_of
from ..services import Actor, InvalidSchedule, ParamsError, PermissionDenied
from ..services.schedules import periodic_task_check


class ServiceCheckedForm(forms.ModelForm):  # type: ignore[type-arg]
    """A PeriodicTask form whose row, once the model's own validation passes, is checked by
    the services' rules (`periodic_task_check`); their errors are shown on the fields."""

    actor: ClassVar[Actor] = Actor()  # set per request by the admin's get_form
    spec: JobSpec | None = None
    params_form: forms.Form | None = None
    # Where the services' field names show on this form.
    error_fields: ClassVar[dict[str, str]] = {}
    missed_policy = missed_policy_field()
    missed_cap = missed_cap_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "priority" in self.fields:  # beat's help says 0-255; Celery on Redis takes 0-9
            self.fields["priority"].help_text = "From 0 to 9; on Redis, 0 is the highest."
        if self.instance.pk:
            stored = missed_runs_of(self.instance)
            self.initial.setdefault("missed_policy", stored.policy)
            self.initial.setdefault("missed_cap", stored.cap)

    def missed_runs(self) -> MissedRuns | None:
        """The missed-run policy to save, once valid; None (keep the stored one) if the form
        has no such fields or neither was posted."""
        names = {self.add_prefix("missed_policy"), self.add_prefix("missed_cap")}
        if "missed_policy" not in self.fields or not names & set(self.data):
            return None
        return missed_runs_from(self.cleaned_data)

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # the edited values onto self.instance
        if self.errors:
            return  # the service's rules only on an otherwise valid row
        try:
            periodic_task_check(self.instance, actor=self.actor, missed=self.missed_runs())
        except InvalidSchedule as error:
            for field, problem in error.errors.items():
                self.add_error(self._field(field), problem)
        except ParamsError as error:
            self._params_errors(error)
        except PermissionDenied as error:
            self.add_error(None, str(error))

    def _field(self, name: str) -> str | None:
        name = self.error_fields.get(name, name)
        return name if name in self.fields else None

    def _params_errors(self, error: ParamsError) -> None:
        self.add_error(self._field("kwargs"), str(error))


class JobScheduleForm(ServiceCheckedForm):
    """A schedule of a registered job: the job chooser and the job's parameter form instead
    of the task name and its JSON args and kwargs."""

    job = forms.ChoiceField(
        label="Job",
        help_text="The job this schedule launches.",
        error_messages={"invalid_choice": "Choose a registered job you may schedule."},
    )
    queue = forms.ChoiceField(required=False, label="Queue override")
    error_fields: ClassVar[dict[str, str]] = {"task": "job"}

    class Meta:
        model = PeriodicTask
        fields = (
            "name", "enabled", "description", "interval", "crontab", "solar", "clocked",
            "start_time", "one_off", "expires", "expire_seconds", "queue", "priority",
            "exchange", "routing_key", "headers",
        )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        task: PeriodicTask = self.instance
        jobs = {spec.name: spec for spec in services.schedulable_jobs(self.actor)}
        job_field = self.fields["job"]
        assert isinstance(job_field, forms.ChoiceField)
        job_field.choices = [("", "Choose a job…")] + [
            (spec.name, f"{spec.title} ({spec.name})") for spec in jobs.values()
        ]
        params_url = reverse("tasks_app:schedule_params")
        job_field.widget.attrs.update(
            {
                "hx-get": f"{params_url}?schedule={task.pk}" if task.pk else params_url,
                "hx-trigger": "change",
                "hx-target": "#job-params",
                "hx-swap": "outerHTML",
            }
        )
        queue_field = self.fields["queue"]
        assert isinstance(queue_field, forms.ChoiceField)
        queues = [("", "The job's own queue")] + [(q, q) for q in QUEUES]
        if task.queue and task.queue not in QUEUES:
            # Shown as it is, not silently changed; saving it is refused.
            queues.append((task.queue, f"{task.queue} (unknown)"))
        queue_field.choices = queues
        if task.pk:
            self.initial.setdefault("job", task.task)
        chosen = self.data.get(self.add_prefix("job")) if self.is_bound else self.initial.get("job")
        self.spec = jobs.get(str(chosen or ""))
        if self.spec is not None:
            same_job = task.pk and task.task == self.spec.name
            stored = definition_of(task).params if same_job else None
            data = self.data if self.is_bound else None
            self.params_form = job_params_form(self.spec, data=data, stored=stored)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("expire_seconds") is not None and cleaned.get("expires"):
            raise ValidationError("Set either an expiry time or expiry seconds, not both.")
        if self.spec is None or self.params_form is None:
            return cleaned  # the job field says why
        params = self.spec.params.validate_form(self.params_form)
        if params is None:
            raise ValidationError("Correct the job's parameters below.")
        self.instance.task = self.spec.name
        self.instance.args = "[]"
        self.instance.kwargs = json.dumps(params)
        return cleaned

    def _params_errors(self, error: ParamsError) -> None:
        if self.params_form is None:
            super()._params_errors(error)
            return
        error.add_to_form(self.params_form)
        self.add_error(None, "Correct the job's parameters below.")


class PlainTaskForm(ServiceCheckedForm, StockPeriodicTaskForm):
    """The stock form (task name, JSON args and kwargs): superusers, plain Celery tasks."""
