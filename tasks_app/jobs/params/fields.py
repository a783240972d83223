"""Form fields and validators that parse form text and API JSON alike, strictly: a value is
refused rather than guessed (3 is not a boolean, "5" is not a list)."""

from __future__ import annotations

import copy
import typing
from datetime import date, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import BaseValidator

from .values import _jsonish
from .widgets import StrictCheckboxInput, StrictNullBooleanSelect, _parse_bool


def _strict_bool(field: forms.Field, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValidationError(field.error_messages["invalid"], code="invalid")


class StrictBooleanField(forms.BooleanField):
    """A checkbox that refuses anything but a boolean (3, "maybe") instead of guessing."""

    widget = StrictCheckboxInput
    default_error_messages = {"invalid": "Enter true or false."}  # noqa: RUF012

    def to_python(self, value: Any | None) -> bool:
        return _strict_bool(self, _parse_bool(value) if value is not None else False)


class StrictNullBooleanField(forms.NullBooleanField):
    widget = StrictNullBooleanSelect
    default_error_messages = {"invalid": "Enter true, false or null."}  # noqa: RUF012

    def to_python(self, value: Any | None) -> bool | None:  # type: ignore[override]
        if value is None or value in ("", "unknown"):
            return None
        return _strict_bool(self, _parse_bool(value))


def _refuse_non_text(field: forms.Field, value: Any) -> None:
    """Django's temporal fields crash on non-strings (`5.strip()`): refuse them instead."""
    if not isinstance(value, str | date) and value is not None:
        raise ValidationError(field.error_messages["invalid"], code="invalid")


class StrictDateField(forms.DateField):
    def to_python(self, value: Any) -> date | None:
        _refuse_non_text(self, value)
        return super().to_python(value)


class StrictDateTimeField(forms.DateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        _refuse_non_text(self, value)
        return super().to_python(value)


class StrictFloatField(forms.FloatField):
    def to_python(self, value: Any | None) -> float | None:  # type: ignore[override]
        if isinstance(value, bool):  # float(True) would be 1.0
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class EnumChoiceField(forms.TypedChoiceField):
    """A select whose cleaned value is the Enum member or Literal value itself."""

    def prepare_value(self, value: Any) -> Any:
        return _jsonish(value)


def _run_on_empty_too(field: forms.Field, value: Any) -> None:
    """Django skips validators for empty values; an empty list must still meet MinLen."""
    errors: list[ValidationError] = []
    for validator in field.validators:
        try:
            validator(value)
        except ValidationError as exc:
            errors.extend(exc.error_list)
    if errors:
        raise ValidationError(errors)


class MultipleEnumChoiceField(forms.TypedMultipleChoiceField):
    def prepare_value(self, value: Any) -> Any:
        return _jsonish(value)

    def run_validators(self, value: Any) -> None:
        _run_on_empty_too(self, value)


class LinesField(forms.Field):
    """A list: one value per line in the textarea, or a real list from API JSON; each item is
    cleaned by `item_field`, so list[date] parses exactly like date."""

    widget = forms.Textarea
    default_error_messages = {"invalid_list": "Enter a list of values."}  # noqa: RUF012

    def __init__(self, *, item_field: forms.Field, **kwargs: Any) -> None:
        self.item_field = item_field
        super().__init__(**kwargs)

    def to_python(self, value: Any | None) -> list[Any]:
        if value in self.empty_values:
            return []
        if isinstance(value, str):
            return [line.strip() for line in value.splitlines() if line.strip()]
        if isinstance(value, list | tuple):
            return list(value)
        raise ValidationError(self.error_messages["invalid_list"], code="invalid_list")

    def clean(self, value: Any) -> list[Any]:
        items = self.to_python(value)
        self.validate(items)
        _run_on_empty_too(self, items)
        cleaned: list[Any] = []
        errors: list[str] = []
        for number, item in enumerate(items, start=1):
            try:
                if isinstance(item, list | dict):
                    raise ValidationError("Enter a single value.")
                cleaned.append(self.item_field.clean(item))
            except ValidationError as exc:
                errors.extend(f"Item {number}: {message}" for message in exc.messages)
        if errors:
            raise ValidationError(errors)
        return cleaned

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(_jsonish(item)) for item in value)
        return value


class ExclusiveMinValidator(BaseValidator):
    message = "Ensure this value is greater than %(limit_value)s."
    code = "min_value"

    def compare(self, a: Any, b: Any) -> bool:
        return bool(a <= b)


class ExclusiveMaxValidator(BaseValidator):
    message = "Ensure this value is less than %(limit_value)s."
    code = "max_value"

    def compare(self, a: Any, b: Any) -> bool:
        return bool(a >= b)


class MinItemsValidator(BaseValidator):
    message = "Give at least %(limit_value)s value(s)."
    code = "min_items"

    def compare(self, a: Any, b: Any) -> bool:
        return bool(a < b)

    def clean(self, x: Any) -> int:
        return len(x)


class MaxItemsValidator(BaseValidator):
    message = "Give at most %(limit_value)s value(s)."
    code = "max_items"

    def compare(self, a: Any, b: Any) -> bool:
        return bool(a > b)

    def clean(self, x: Any) -> int:
        return len(x)


class _ParamsForm(forms.Form):
    """Base of the generated launch forms: a cleared field with a default takes the default
    (`int` must not reach the job as None)."""

    param_defaults: typing.ClassVar[dict[str, Any]] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, default in self.param_defaults.items():
            if name in cleaned and cleaned[name] is None:
                cleaned[name] = copy.deepcopy(default)
        return cleaned
