"""Widgets of the launch form: the browser's date pickers, strict boolean inputs, and the
write-only widgets that keep a sensitive value out of the HTML."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.forms.widgets import Input
from django.utils.dateparse import parse_datetime

_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no", ""})
STORED_SECRET_HELP = "A value is stored (not shown); leave this empty to keep it."  # noqa: S105
STORED_SECRET_PLACEHOLDER = "(stored; leave empty to keep)"  # noqa: S105
_KEPT = "_taskdeck_kept_secrets"  # on a form: {name: the stored JSON value it keeps}
_LEFT_EMPTY: tuple[Any, ...] = (None, "", [], ())
_TEXT_INPUTS = frozenset({"text", "number", "email", "url", "tel", "search"})


class DateInput(forms.DateInput):
    """The browser's date picker; it always sends ISO dates."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")  # what the browser's date picker sends


class DateTimeInput(forms.DateTimeInput):
    """A local date and time; the field reads it in Django's current time zone."""

    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%dT%H:%M:%S")


def _parse_bool(value: Any) -> Any:
    """True/False for the spellings forms and APIs use; anything else comes back unchanged so
    the field can refuse it (Django's CheckboxInput would turn "maybe" into True)."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return value


class StrictCheckboxInput(forms.CheckboxInput):
    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return _parse_bool(data.get(name)) if name in data else False


class StrictNullBooleanSelect(forms.NullBooleanSelect):
    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)  # the field parses: NullBooleanSelect maps "maybe" to None


class _WriteOnly(forms.Widget):
    """Renders without a value, so neither a stored nor a just-typed secret (a form re-shown
    with an error) is ever in the HTML; browsers are asked not to fill it in."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, None, attrs)
        context["widget"]["attrs"]["autocomplete"] = "off"
        return context


class _WriteOnlySelect(_WriteOnly, forms.Select):
    """A select with nothing selected: its first option is a blank one, so a browser does not
    submit (and store) whatever choice happens to come first."""

    def optgroups(self, name: str, value: Any, attrs: dict[str, Any] | None = None) -> Any:
        groups = super().optgroups(name, value, attrs)
        blank = any(o["value"] in ("", None) for _, options, _ in groups for o in options)
        if blank or self.allow_multiple_selected:
            return groups
        option = self.create_option(name, "", "---------", False, 0, attrs=attrs)
        return [(None, [option], 0), *groups]


class SecretBooleanSelect(_WriteOnly, forms.Select):
    """A sensitive true/false: a checkbox cannot say "unchanged", so a select of blank, Yes
    and No; it hands the raw choice to the (strict) boolean field."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, choices=[("", "---------"), ("true", "Yes"), ("false", "No")])

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)


_WRITE_ONLY_CLASSES: dict[type[forms.Widget], type[forms.Widget]] = {}


def write_only(widget: forms.Widget) -> forms.Widget:
    """A copy of `widget` that never renders a value (see `_WriteOnly`): text and number
    inputs become password inputs, a checkbox a blank/Yes/No select; choices, dates and lists
    keep their widget, shown empty."""
    if isinstance(widget, _WriteOnly):
        return widget
    if isinstance(widget, forms.CheckboxInput | forms.NullBooleanSelect):
        return SecretBooleanSelect(attrs={**widget.attrs})
    base = type(widget)
    mixin: type[forms.Widget] = (
        _WriteOnlySelect
        if isinstance(widget, forms.Select) and not widget.allow_multiple_selected
        else _WriteOnly
    )
    cls = _WRITE_ONLY_CLASSES.get(base)
    if cls is None:
        cls = type(f"WriteOnly{base.__name__}", (mixin, base), {})
        _WRITE_ONLY_CLASSES[base] = cls
    copied = copy.deepcopy(widget)
    copied.__class__ = cls
    if isinstance(copied, Input) and copied.input_type in _TEXT_INPUTS:
        copied.input_type = "password"
    return copied


def _display(form_field: forms.Field, value: Any) -> Any:
    """A JSON initial value as the widget shows it: an ISO date-time with an offset becomes an
    aware datetime, which the field shows in the current time zone."""
    if isinstance(form_field, forms.DateTimeField) and isinstance(value, str):
        try:
            return parse_datetime(value) or value
        except ValueError:
            return value
    return value
