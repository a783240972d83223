"""Every error an action can raise that the user can act on, in one place: pages, the API and
the admin import them from here (through `tasks_app.services`), never from the job framework
or the worker runtime, and turn each into an inline error, a message or a 4xx."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from ..jobs.errors import BrokerUnavailable, UnknownJob
from ..jobs.params import ParamsError
from ..worker.lifecycle import AlreadyActive, CancelOutcome


class ServiceError(Exception):
    """An action refused for a reason the user can act on (a 4xx, never a 500)."""


class FieldErrors(ServiceError):
    """Field name -> message, for a form's inline errors and the API's 400 naming the field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class InvalidOptions(FieldErrors):
    """Launch options (queue, delay, start time, priority) that cannot be used."""


class InvalidSchedule(FieldErrors):
    """A schedule that cannot be stored, keyed by PeriodicTask field."""


class NotRetriable(ServiceError):
    pass


class NotLaunchable(ServiceError):
    """The job exists but cannot be launched by hand; `field` names the input at fault, so an
    API refusal can say which field to change."""

    field = "job"


class BulkLimitExceeded(ServiceError):
    def __init__(self, matched: int, limit: int) -> None:
        self.matched, self.limit = matched, limit
        super().__init__(
            f"More than {limit} runs match; narrow the selection "
            f"(bulk actions touch at most {limit})."
        )


__all__ = [
    "AlreadyActive",
    "BrokerUnavailable",
    "BulkLimitExceeded",
    "CancelOutcome",
    "FieldErrors",
    "InvalidOptions",
    "InvalidSchedule",
    "NotLaunchable",
    "NotRetriable",
    "ParamsError",
    "PermissionDenied",
    "ServiceError",
    "UnknownJob",
]
