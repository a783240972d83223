"""Every error an action can raise that the user can act on, in one place: pages, the API and
the admin import them from here (through `tasks_app.services`), never from the job framework
or the worker runtime, and turn each into an inline error, a message or a 4xx."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.core.exceptions import PermissionDenied

from ..jobs.errors import BrokerUnavailable, UnknownJob
from ..jobs.params import ParamsError
from ..worker.enqueue import PartlyQueued  # a BrokerUnavailable of jobs_launch_many
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


class InvalidBatch(ServiceError):
    """A batch launch refused before anything was written: `errors` names each field at fault
    by its place in the request (`items`, `items.3.params.steps`)."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        first, messages = next(iter(self.errors.items()))
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first}: {messages[0]}{more}")


__all__ = [
    "AlreadyActive",
    "BrokerUnavailable",
    "BulkLimitExceeded",
    "CancelOutcome",
    "FieldErrors",
    "InvalidBatch",
    "InvalidOptions",
    "InvalidSchedule",
    "NotLaunchable",
    "NotRetriable",
    "ParamsError",
    "PartlyQueued",
    "PermissionDenied",
    "ServiceError",
    "UnknownJob",
]
