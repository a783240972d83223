"""Parameter values in their JSON form: how they travel in the Celery message, the API and the
database, and how a secret is shown."""

from __future__ import annotations

import enum
from datetime import date, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import models

MASK = "••••••"
_UNCONVERTIBLE = object()
# Parameters are scalars or lists of them: lists nested deeper than this are junk, refused
# without walking them (API JSON can nest deeper than Python's recursion limit).
_MAX_NESTING = 32


def to_json_value(value: Any) -> Any:
    """A Python value as JSON: the inverse of what the schema's fields parse."""
    converted = _jsonish(value)
    if converted is _UNCONVERTIBLE:
        raise TypeError(f"Cannot turn {type(value).__name__} {value!r} into a JSON parameter.")
    return converted


def _jsonish(value: Any, depth: int = 0) -> Any:
    """`to_json_value`, answering `_UNCONVERTIBLE` instead of raising (validation reports it)."""
    if isinstance(value, enum.Enum):  # before str/int: StrEnum and IntEnum are both
        return _jsonish(value.value)
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # str keeps the exponent: Decimal("1.10") stays "1.10"
    if isinstance(value, models.Model):
        return _jsonish(value.pk)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        if depth >= _MAX_NESTING:
            return _UNCONVERTIBLE
        items = [_jsonish(item, depth + 1) for item in value]
        return _UNCONVERTIBLE if any(item is _UNCONVERTIBLE for item in items) else items
    return _UNCONVERTIBLE


def _mask_value(value: Any) -> Any:
    return MASK if value not in (None, "", []) else value
