"""Exceptions of the job framework.

Non-retriable errors end a run at once: retrying cannot fix bad input, a missing object or a
misconfiguration. Every other exception follows the job's retry policy.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist, ValidationError
from kombu.exceptions import OperationalError


class NonRetriableError(Exception):
    """Raise (or subclass) to fail a run at once, without retries."""


class BadInput(NonRetriableError):
    """The parameters cannot work, whatever happens next."""


class MissingObject(NonRetriableError):
    """Something the job needs does not exist."""


class Misconfigured(NonRetriableError):
    """The job cannot run with the current configuration."""


class JobCancelled(Exception):
    """Raised at a progress point after an operator cancelled the run."""


class BrokerUnavailable(OperationalError):
    """The message could not be sent: nothing was queued. Subclasses kombu's OperationalError,
    so callers that already handle Celery's publish errors keep working."""


class UnknownJob(LookupError):
    """No job is registered under that name."""


# What a retry policy never retries.
NEVER_RETRIED: tuple[type[BaseException], ...] = (
    NonRetriableError,
    JobCancelled,
    ObjectDoesNotExist,
    ValidationError,
    ImproperlyConfigured,
    TypeError,  # wrong call signature: a code or input error, not a transient one
)
