"""One `_Entry` per parameter: from a typed function parameter or from an explicit Form
field, with its default checked up front."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import pretty_name

from .build import _field_bounds, _field_for, _number
from .fields import LinesField
from .hints import SUPPORTED, _read_annotation, _Spec, _Unsupported
from .info import ParamInfo, _Entry
from .values import _UNCONVERTIBLE, _jsonish, _mask_value, to_json_value

_NO_DEFAULT = inspect.Parameter.empty


def _function_entry(
    parameter: inspect.Parameter, hints: Mapping[str, Any], where: str, *, sensitive: bool
) -> tuple[_Entry, forms.Field, Any]:
    """The entry, form field and Python default of one typed function parameter; `sensitive`
    (from `@job(sensitive=...)`) marks it as `Param(sensitive=True)` does."""
    if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
        raise TypeError(
            f"{where}: jobs take named parameters only, not {parameter.kind.description}."
        )
    if parameter.name not in hints:
        raise TypeError(f"{where}: needs a type annotation ({SUPPORTED}).")
    try:
        spec, choice_type = _read_annotation(hints[parameter.name])
    except _Unsupported as exc:
        raise TypeError(
            f"{where}: {exc} in {hints[parameter.name]!r}. Supported: {SUPPORTED}."
        ) from None
    if sensitive:
        spec.marker = replace(spec.marker, sensitive=True)
    default = parameter.default
    if default is None and not spec.nullable:
        raise TypeError(f"{where}: a default of None needs the type `T | None`.")
    has_default = default is not _NO_DEFAULT or spec.nullable
    form_field = _field_for(spec, choice_type, required=not has_default)
    json_default, python_default = _check_default(form_field, default, where)
    form_field.label = spec.marker.label or pretty_name(parameter.name)
    form_field.help_text = _help_text(spec)
    form_field.initial = python_default if python_default is not _NO_DEFAULT else None
    info = ParamInfo(
        name=parameter.name,
        label=str(form_field.label),
        help=spec.marker.help,
        type_label=spec.type_label,
        required=not has_default,
        default=_mask_value(json_default) if spec.marker.sensitive else json_default,
        choices=spec.choices,
        many=spec.many,
        sensitive=spec.marker.sensitive,
        nullable=spec.nullable,
        **_field_bounds(spec, form_field),
    )
    factory = (lambda: copy.deepcopy(json_default)) if has_default else None
    return _Entry(info, spec.kind, not spec.nullable, factory), form_field, python_default


def _check_default(form_field: forms.Field, default: Any, where: str) -> tuple[Any, Any]:
    """The default as JSON and as its cleaned Python value; a default the field would refuse
    is a bug in the job, so it fails at decoration time."""
    if default is _NO_DEFAULT or default is None:
        return None, default
    try:
        json_default = to_json_value(default)
        python_default = form_field.clean(json_default)
    except (TypeError, ValidationError) as exc:
        detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise TypeError(f"{where}: invalid default {default!r}: {detail}") from None
    return json_default, python_default


def _help_text(spec: _Spec) -> str:
    if spec.many and spec.choices is None:
        return " ".join(part for part in (spec.marker.help, "One value per line.") if part)
    return spec.marker.help


def _form_entry(name: str, form_field: forms.Field, *, sensitive: bool) -> _Entry:
    """An explicit Form field described as a parameter; its initial value is the default."""
    kind, many = _form_kind(form_field)
    initial = form_field.initial
    json_default = None if callable(initial) else _jsonish(initial)
    if json_default is _UNCONVERTIBLE:
        json_default = None
    choices = None
    # A ModelChoiceField's choices are a database query: not at import time.
    if isinstance(form_field, forms.ChoiceField) and not isinstance(
        form_field, forms.ModelChoiceField
    ):
        choices = _flat_choices(form_field.choices)
    info = ParamInfo(
        name=name,
        label=str(form_field.label or pretty_name(name)),
        help=str(form_field.help_text),
        type_label=f"list[{kind}]" if many else kind,
        required=form_field.required,
        default=_mask_value(json_default) if sensitive else json_default,
        choices=choices,
        minimum=_number(getattr(form_field, "min_value", None)),
        maximum=_number(getattr(form_field, "max_value", None)),
        many=many,
        sensitive=sensitive,
        min_length=getattr(form_field, "min_length", None),
        max_length=getattr(form_field, "max_length", None),
    )
    return _Entry(info, kind, refuse_null=False, default=_form_default(form_field))


def _form_default(form_field: forms.Field) -> Callable[[], Any] | None:
    """A factory for the field's initial value as JSON (evaluated each time if callable)."""
    initial = form_field.initial
    if form_field.required or initial is None:
        return None
    return lambda: to_json_value(initial() if callable(initial) else copy.deepcopy(initial))


def _form_kind(form_field: forms.Field) -> tuple[str, bool]:
    """The scalar kind (as `type_label` spells it) of a Django field, and whether it is a list."""
    if isinstance(form_field, forms.ModelMultipleChoiceField | forms.ModelChoiceField):
        return "object", isinstance(form_field, forms.ModelMultipleChoiceField)
    if isinstance(form_field, forms.MultipleChoiceField):
        return "choice", True
    if isinstance(form_field, LinesField):
        return _form_kind(form_field.item_field)[0], True
    for field_class, kind in (
        (forms.ChoiceField, "choice"),
        (forms.BooleanField, "bool"),
        (forms.DecimalField, "decimal"),
        (forms.FloatField, "float"),
        (forms.IntegerField, "int"),
        (forms.DateTimeField, "datetime"),
        (forms.DateField, "date"),
        (forms.TimeField, "time"),
    ):
        if isinstance(form_field, field_class):
            return kind, False
    return "str", False


def _flat_choices(choices: Any) -> tuple[tuple[Any, str], ...]:
    """(value, label) pairs with option groups flattened and the blank option left out."""
    pairs: list[tuple[Any, str]] = []
    for value, label in choices:
        if isinstance(label, list | tuple):
            pairs.extend(_flat_choices(label))
        elif value not in ("", None):
            pairs.append((value, str(label)))
    return tuple(pairs)


def _shape_problem(entry: _Entry, value: Any) -> str | None:
    """Strict JSON shape checks a form cannot make: a list for list parameters, a single value
    otherwise, and no null unless the type allows it."""
    if value is None:
        return "This field cannot be null." if entry.refuse_null else None
    if entry.info.many and not isinstance(value, list):
        return "Enter a list of values."
    if not entry.info.many and isinstance(value, list | dict):
        return "Enter a single value."
    return None
