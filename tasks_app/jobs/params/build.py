"""A parameter's `_Spec` (from `hints`) as its form field, with the bounds `ParamInfo` shows."""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.core.validators import BaseValidator

from .fields import (
    EnumChoiceField,
    ExclusiveMaxValidator,
    ExclusiveMinValidator,
    LinesField,
    MaxItemsValidator,
    MinItemsValidator,
    MultipleEnumChoiceField,
    StrictBooleanField,
    StrictDateField,
    StrictDateTimeField,
    StrictFloatField,
    StrictNullBooleanField,
)
from .hints import _NUMERIC, _coerce_for, _Spec
from .widgets import DateInput, DateTimeInput


def _number_field(spec: _Spec, options: dict[str, Any]) -> forms.Field:
    b = spec.bounds
    if spec.kind == "int":  # integer bounds are exact, so exclusive ones become inclusive
        low = [math.ceil(b.ge)] if b.ge is not None else []
        low += [math.floor(b.gt) + 1] if b.gt is not None else []
        high = [math.floor(b.le)] if b.le is not None else []
        high += [math.ceil(b.lt) - 1] if b.lt is not None else []
        return forms.IntegerField(
            min_value=max(low, default=None), max_value=min(high, default=None), **options
        )
    validators: list[BaseValidator] = []
    if b.gt is not None:
        validators.append(ExclusiveMinValidator(b.gt))
    if b.lt is not None:
        validators.append(ExclusiveMaxValidator(b.lt))
    field_class = StrictFloatField if spec.kind == "float" else forms.DecimalField
    return field_class(min_value=b.ge, max_value=b.le, validators=validators, **options)


def _scalar_field(spec: _Spec, choice_type: Any, *, required: bool) -> forms.Field:
    """The field for one value (a parameter, or one item of a list parameter)."""
    options: dict[str, Any] = {"required": required}
    if spec.kind in _NUMERIC:
        return _number_field(spec, options)
    if spec.kind == "str":
        sensitive = spec.marker.sensitive
        return forms.CharField(
            min_length=spec.bounds.min_length,
            max_length=spec.bounds.max_length,
            strip=not sensitive,  # a password's spaces are part of it
            empty_value=None if spec.nullable else "",
            widget=forms.PasswordInput(render_value=False) if sensitive else None,
            **options,
        )
    if spec.kind == "bool":
        field_class = StrictNullBooleanField if spec.nullable else StrictBooleanField
        return field_class(required=False)
    if spec.kind == "date":
        return StrictDateField(widget=DateInput, **options)
    if spec.kind == "datetime":
        return StrictDateTimeField(widget=DateTimeInput, **options)
    assert spec.choices is not None
    blank = [("", "---------")] if spec.nullable or required else []
    return EnumChoiceField(
        choices=blank + list(spec.choices),
        coerce=_coerce_for(choice_type),
        empty_value=None,
        **options,
    )


def _field_for(spec: _Spec, choice_type: Any, *, required: bool) -> forms.Field:
    """The form field of a whole parameter: scalar, checkboxes, or a lines textarea."""
    if not spec.many:
        return _scalar_field(spec, choice_type, required=required)
    validators: list[BaseValidator] = []
    if spec.count.min_length is not None:
        validators.append(MinItemsValidator(spec.count.min_length))
    if spec.count.max_length is not None:
        validators.append(MaxItemsValidator(spec.count.max_length))
    if spec.choices is not None:
        return MultipleEnumChoiceField(
            choices=list(spec.choices),
            coerce=_coerce_for(choice_type),
            widget=forms.CheckboxSelectMultiple,
            required=required,
            validators=validators,
        )
    item = _scalar_field(spec, choice_type, required=spec.kind != "bool")
    return LinesField(item_field=item, required=required, validators=validators)


def _number(value: Any) -> float | None:
    """A bound as JSON can carry it (ints stay ints)."""
    if value is None or isinstance(value, int):
        return value
    return float(value)


def _field_bounds(spec: _Spec, form_field: forms.Field) -> dict[str, Any]:
    """The bounds ParamInfo shows: inclusive where Django enforces them, else exclusive."""
    lengths = spec.count if spec.many else spec.bounds
    value_field = form_field.item_field if isinstance(form_field, LinesField) else form_field
    return {
        "minimum": _number(getattr(value_field, "min_value", None)),
        "maximum": _number(getattr(value_field, "max_value", None)),
        "exclusive_minimum": _number(spec.bounds.gt) if spec.kind != "int" else None,
        "exclusive_maximum": _number(spec.bounds.lt) if spec.kind != "int" else None,
        "min_length": lengths.min_length,
        "max_length": lengths.max_length,
    }
