"""Job parameters: one schema per job, from its type hints or from an explicit Django Form.

The same schema renders the launch form, validates every way in (HTML POST, API JSON, schedule
kwargs), gives the JSON-safe kwargs that travel in the Celery message, and turns them back into
exact Python values in the worker. Keeping a single source means the form, the API and the
worker can never disagree about what a parameter accepts.
"""

from __future__ import annotations

import copy
import enum
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, cast
from uuid import UUID

import annotated_types as at
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import BaseValidator
from django.db import models
from django.forms.utils import pretty_name
from django.forms.widgets import Input
from django.utils.dateparse import parse_datetime

from .sealing import SealError, is_sealed, seal, unseal, unseal_for

MASK = "••••••"
SUPPORTED = (
    "str, int, float, bool, date, datetime, Decimal, an Enum, a Literal of str or int values, "
    "list[...] of those, and T | None"
)
REQUIRED = str(forms.Field.default_error_messages["required"])
_SCALARS: dict[object, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    date: "date",
    datetime: "datetime",
    Decimal: "decimal",
}
_NUMERIC = frozenset({"int", "float", "decimal"})
_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no", ""})


# --- Public types -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Param:
    """Extra facts about a parameter, used inside `Annotated[T, Param(...)]`."""

    label: str | None = None
    help: str = ""
    sensitive: bool = False


class ParamsError(ValueError):
    """Parameters that do not fit the schema; `errors` maps each field (or "__all__") to
    its messages, so an API can answer with all problems at once."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors: dict[str, list[str]] = {k: [str(m) for m in v] for k, v in errors.items()}
        super().__init__(
            "; ".join(
                message if name == NON_FIELD_ERRORS else f"{name}: {message}"
                for name, messages in self.errors.items()
                for message in messages
            )
        )


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as templates and API docs see it (values in their JSON form)."""

    name: str
    label: str
    help: str
    type_label: str  # "int", "date", "choice", "list[date]", ...
    required: bool
    default: Any  # JSON form; None without a default; masked when sensitive
    choices: tuple[tuple[Any, str], ...] | None
    minimum: float | None
    maximum: float | None
    many: bool
    sensitive: bool
    nullable: bool = False
    min_length: int | None = None  # characters of a str, items of a list
    max_length: int | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None


# --- JSON conversion ----------------------------------------------------------------------


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


# --- Fields and widgets -------------------------------------------------------------------


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


# --- Reading annotations ------------------------------------------------------------------


@dataclass
class _Bounds:
    """annotated_types constraints, gathered from `Annotated` metadata."""

    ge: Any = None
    gt: Any = None
    le: Any = None
    lt: Any = None
    min_length: int | None = None
    max_length: int | None = None

    @property
    def numeric(self) -> bool:
        return any(v is not None for v in (self.ge, self.gt, self.le, self.lt))

    @property
    def lengths(self) -> bool:
        return self.min_length is not None or self.max_length is not None

    def add(self, item: Any) -> bool:
        """Record one constraint; False if it is not one we enforce."""
        attribute = {at.Ge: "ge", at.Gt: "gt", at.Le: "le", at.Lt: "lt"}.get(type(item))
        if attribute is not None:
            setattr(self, attribute, getattr(item, attribute))
        elif isinstance(item, at.MinLen):
            self.min_length = item.min_length
        elif isinstance(item, at.MaxLen):
            self.max_length = item.max_length
        else:
            return False
        return True


@dataclass
class _Spec:
    """What a parameter's annotation says, before it becomes a form field."""

    kind: str
    many: bool = False
    nullable: bool = False
    choices: tuple[tuple[Any, str], ...] | None = None
    bounds: _Bounds = field(default_factory=_Bounds)  # of the value, or of each list item
    count: _Bounds = field(default_factory=_Bounds)  # of the list
    marker: Param = field(default_factory=Param)

    @property
    def type_label(self) -> str:
        return f"list[{self.kind}]" if self.many else self.kind


class _Unsupported(TypeError):
    """Raised while reading one annotation; re-raised naming the function and parameter."""


def _split_annotated(tp: Any, bounds: _Bounds, spec: _Spec | None) -> Any:
    """Strip `Annotated`, recording its constraints (and our Param marker if `spec`)."""
    if typing.get_origin(tp) is not Annotated:
        return tp
    for item in tp.__metadata__:
        for part in item if isinstance(item, at.GroupedMetadata) else (item,):
            if isinstance(part, Param) and spec is not None:
                spec.marker = part
            elif not bounds.add(part):
                raise _Unsupported(f"unsupported constraint {part!r}")
    return tp.__origin__


def _split_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return tp, False
    args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if len(args) != 1 or len(args) == len(typing.get_args(tp)):
        raise _Unsupported("only `T | None` unions are supported")
    return args[0], True


def _choices_of(tp: Any) -> tuple[tuple[Any, str], ...] | None:
    """(JSON value, label) pairs of an Enum or Literal, or None for other types."""
    if typing.get_origin(tp) is Literal:
        pairs = tuple((value, str(value)) for value in typing.get_args(tp))
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        pairs = tuple(
            (member.value, str(getattr(member, "label", pretty_name(member.name.lower()))))
            for member in tp
        )
    else:
        return None
    values = [value for value, _label in pairs]
    if not values or any(not isinstance(v, str | int) or isinstance(v, bool) for v in values):
        raise _Unsupported("choices must be str or int values")
    if len({str(v) for v in values}) != len(values):
        raise _Unsupported("choices must differ as text (1 and '1' cannot both be choices)")
    return pairs


def _coerce_for(tp: Any) -> Callable[[Any], Any]:
    """Form text -> the Enum member or the Literal value with its own type."""
    options: list[Any] = list(cast(Iterable[Any], tp)) if isinstance(tp, type) else []
    options += typing.get_args(tp)
    by_text = {str(_jsonish(option)): option for option in options}
    return lambda text: by_text[str(text)]


def _read_scalar(tp: Any, spec: _Spec) -> Any:
    """Fill `spec.kind` (and choices) from a bare type; answer the choice type, if any."""
    spec.choices = _choices_of(tp)
    if spec.choices is not None:
        spec.kind = "choice"
        return tp
    kind = _SCALARS.get(tp)
    if kind is None:
        raise _Unsupported("unsupported type")
    spec.kind = kind
    return None


def _read_annotation(annotation: Any) -> tuple[_Spec, Any]:
    """The spec of one parameter and its choice type (Enum/Literal) if it has one."""
    spec = _Spec(kind="")
    tp = _split_annotated(annotation, spec.bounds, spec)
    tp, spec.nullable = _split_optional(tp)
    tp = _split_annotated(tp, spec.bounds, spec)
    if typing.get_origin(tp) is list or tp is list:
        (item,) = typing.get_args(tp) or (None,)
        if item is None:
            raise _Unsupported("a list needs its item type, e.g. list[int]")
        if spec.nullable:
            raise _Unsupported("a list cannot be None; give it a default of [] instead")
        spec.many = True
        spec.count = _Bounds(min_length=spec.bounds.min_length, max_length=spec.bounds.max_length)
        spec.bounds.min_length = spec.bounds.max_length = None
        tp = _split_annotated(item, spec.bounds, None)
    choice_type = _read_scalar(tp, spec)
    if spec.bounds.numeric and spec.kind not in _NUMERIC:
        raise _Unsupported(f"bounds need a number, not {spec.kind}")
    if spec.bounds.lengths and spec.kind != "str":
        raise _Unsupported(f"MinLen/MaxLen need a str or a list, not {spec.kind}")
    return spec, choice_type


# --- Building form fields -----------------------------------------------------------------


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


# --- The schema ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    info: ParamInfo
    kind: str  # scalar kind, for the JSON Schema
    refuse_null: bool  # a typed parameter that is not `T | None`
    default: Callable[[], Any] | None  # its JSON default, fresh each time; None: no default


def _mask_value(value: Any) -> Any:
    return MASK if value not in (None, "", []) else value


# --- Write-only widgets for sensitive fields -----------------------------------------------

STORED_SECRET_HELP = "A value is stored (not shown); leave this empty to keep it."  # noqa: S105
STORED_SECRET_PLACEHOLDER = "(stored; leave empty to keep)"  # noqa: S105
_KEPT = "_taskdeck_kept_secrets"  # on a form: {name: the stored JSON value it keeps}
_LEFT_EMPTY: tuple[Any, ...] = (None, "", [], ())
_TEXT_INPUTS = frozenset({"text", "number", "email", "url", "tel", "search"})


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


class ParamSchema:
    """The parameters of one job; build with `from_function` or `from_form`."""

    def __init__(
        self, form_class: type[forms.Form], entries: Iterable[_Entry], *, job: str = ""
    ) -> None:
        self.form_class = form_class
        self.job = job  # the job these parameters belong to: sensitive values are sealed for it
        self._entries = tuple(entries)
        self.params: tuple[ParamInfo, ...] = tuple(e.info for e in self._entries)
        self.sensitive: frozenset[str] = frozenset(p.name for p in self.params if p.sensitive)
        self._names = frozenset(p.name for p in self.params)

    def __repr__(self) -> str:
        return f"<ParamSchema {', '.join(p.name for p in self.params)}>"

    # --- construction

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        skip_first: bool = True,
        job: str = "",
        sensitive: Iterable[str] = (),
    ) -> ParamSchema:
        """Read `fn`'s typed parameters (after the context); TypeError names what is wrong.
        `sensitive` names parameters to treat as `Param(sensitive=True)` (`@job(sensitive=)`)."""
        where = f"Job function {fn.__module__}.{fn.__qualname__}"
        parameters = list(inspect.signature(fn).parameters.values())
        if skip_first:
            if not parameters:
                raise TypeError(f"{where}: must take the job context as its first parameter.")
            parameters = parameters[1:]
        hidden = frozenset(sensitive)
        unknown = hidden - {p.name for p in parameters}
        if unknown:
            raise TypeError(f"{where}: sensitive names no parameter: {sorted(unknown)}")
        hints = _type_hints(fn, {p.name for p in parameters}, where)
        fields: dict[str, forms.Field] = {}
        defaults: dict[str, Any] = {}
        entries = []
        for parameter in parameters:
            prefix = f"{where}: parameter {parameter.name!r}"
            entry, fields[parameter.name], python_default = _function_entry(
                parameter, hints, prefix, sensitive=parameter.name in hidden
            )
            if python_default is not _NO_DEFAULT and not entry.info.nullable:
                defaults[parameter.name] = python_default
            entries.append(entry)
        form_class = cast(
            type[forms.Form],
            type(
                f"{fn.__name__.title().replace('_', '')}ParamsForm",
                (_ParamsForm,),
                {**fields, "param_defaults": defaults},
            ),
        )
        return cls(form_class, entries, job=job)

    @classmethod
    def from_form(
        cls, form_class: type[forms.Form], *, sensitive: Iterable[str] = (), job: str = ""
    ) -> ParamSchema:
        """Use an explicit Form's own fields; `sensitive` names the ones to mask."""
        hidden = frozenset(sensitive)
        unknown = hidden - set(form_class.base_fields)
        if unknown:
            raise TypeError(
                f"{form_class.__qualname__}: sensitive names no field: {sorted(unknown)}"
            )
        entries = [
            _form_entry(name, form_field, sensitive=name in hidden)
            for name, form_field in form_class.base_fields.items()
        ]
        return cls(form_class, entries, job=job)

    # --- the ways in

    def form(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
        prefix: str | None = None,
    ) -> forms.Form:
        """The launch form, bound to POST `data` or showing JSON `initial` (a schedule's kwargs).

        A sensitive value never reaches the browser: every sensitive field has a write-only
        widget (it renders no value, whatever its type), and a sensitive value in `initial`
        is not shown but kept on the server: left empty, the field keeps it
        (`validate_form` puts the stored, sealed value back)."""
        fields = self.form_class.base_fields
        given = initial or {}
        shown = {
            k: _display(fields[k], v)
            for k, v in given.items()
            if k in fields and k not in self.sensitive
        }
        form = self.form_class(data, initial=shown or None, prefix=prefix)
        kept: dict[str, Any] = {}
        for name in self.sensitive & set(form.fields):
            form_field = form.fields[name]
            form_field.widget = write_only(form_field.widget)
            stored = given.get(name)
            if stored in (None, "", []):
                continue
            try:
                unseal_for(stored, self.job, name, unbound_ok=True)
            except SealError as error:
                form_field.help_text = f"{form_field.help_text} {error}".strip()
                continue
            kept[name] = copy.deepcopy(stored)
            form_field.required = False
            form_field.help_text = f"{form_field.help_text} {STORED_SECRET_HELP}".strip()
            form_field.widget.attrs.setdefault("placeholder", STORED_SECRET_PLACEHOLDER)
        setattr(form, _KEPT, kept)
        return form

    def validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Strictly check API, schedule or code input; answer JSON kwargs of every parameter,
        sensitive ones sealed (a value sealed before is checked and kept as it is, so a retry
        or a schedule sends exactly what it was given)."""
        values = self.to_json(self._clean(data, unbound_ok=False))
        sealed = self.seal(values)
        for name in self.sensitive:
            given: Any = data.get(name)
            if is_sealed(given) and unseal(given) == values.get(name):
                sealed[name] = dict(given)
        return sealed

    def validate_form(self, form: forms.Form) -> dict[str, Any] | None:
        """JSON kwargs from a bound launch form (sensitive ones sealed), or None: its errors
        stay on it for display. A sensitive field left empty that had a stored value (see
        `form`) keeps that stored, sealed value."""
        if not form.is_valid():
            return None
        values = {k: v for k, v in form.cleaned_data.items() if k in self._names}
        sealed = self.seal(self.to_json(values))
        kept: dict[str, Any] = getattr(form, _KEPT, {})
        for name, stored in kept.items():
            if form[name].data in _LEFT_EMPTY:
                sealed[name] = copy.deepcopy(stored)
        return sealed

    def to_python(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """In the worker: the message's JSON kwargs as the exact values the job declared,
        sealed ones opened. Re-validates, since a message may predate a change to the job."""
        return self._clean(json_kwargs, unbound_ok=True)  # a message sent before binding

    def seal(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The kwargs with every sensitive value that is set sealed for its job and parameter
        (see `sealing`)."""
        return {
            k: seal(v, self.job, k) if k in self.sensitive and v not in (None, "", []) else v
            for k, v in json_kwargs.items()
        }

    def unsealed(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The kwargs with sealed values opened: only for code that must compare or re-enter
        them, never for display (SealError if one cannot be opened)."""
        return {k: unseal(v) for k, v in json_kwargs.items()}

    # --- the ways out

    def to_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Python values as JSON-safe kwargs, in parameter order."""
        self._refuse_unknown(values)
        return {p.name: to_json_value(values[p.name]) for p in self.params if p.name in values}

    def mask(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The kwargs with every sensitive (or sealed) value hidden: for pages, logs and API
        answers. Call it through `registry.masked_params`."""
        return {
            k: _mask_value(v) if k in self.sensitive or is_sealed(v) else v
            for k, v in json_kwargs.items()
        }

    def json_schema(self) -> dict[str, Any]:
        """A JSON Schema of the kwargs `validate` accepts: for the API's OpenAPI document."""
        return {
            "type": "object",
            "properties": {e.info.name: _property_schema(e) for e in self._entries},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    # --- internals

    def _refuse_unknown(self, data: Mapping[str, Any]) -> None:
        unknown = sorted(str(k) for k in data if k not in self._names)
        if unknown:
            raise ParamsError({NON_FIELD_ERRORS: [f"Unknown parameter(s): {', '.join(unknown)}"]})

    def _clean(self, data: Mapping[str, Any], *, unbound_ok: bool) -> dict[str, Any]:
        """Validate a dict of JSON (or Python) values through the form; the cleaned values.
        A sealed value must have been sealed for this job and parameter (`unbound_ok`: or
        before binding existed, for messages already in the broker)."""
        self._refuse_unknown(data)
        prepared: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for entry in self._entries:
            name = entry.info.name
            if name in data:
                try:
                    given = (
                        unseal_for(data[name], self.job, name, unbound_ok=unbound_ok)
                        if name in self.sensitive
                        else data[name]
                    )
                except SealError as error:
                    errors[name] = [str(error)]
                    continue
                value = _jsonish(given)
                if value is _UNCONVERTIBLE:
                    errors[name] = [_shape_problem(entry, data[name]) or "Unsupported value."]
                elif problem := _shape_problem(entry, value):
                    errors[name] = [problem]
                else:
                    prepared[name] = value
            elif entry.info.required:
                errors[name] = [REQUIRED]
            elif entry.default is not None:
                prepared[name] = entry.default()
        form = self.form_class(prepared)
        if not form.is_valid() or errors:
            raise ParamsError({**_form_errors(form), **errors})
        return {k: v for k, v in form.cleaned_data.items() if k in self._names}


_NO_DEFAULT = inspect.Parameter.empty


def _type_hints(fn: Callable[..., Any], names: set[str], where: str) -> dict[str, Any]:
    """The resolved hints of the named parameters only: the context's and the return type's
    may be imported under TYPE_CHECKING, and must not break the job's import."""
    function = inspect.unwrap(fn)
    annotations = getattr(function, "__annotations__", {})
    holder = types.SimpleNamespace(
        __annotations__={k: v for k, v in annotations.items() if k in names},
        __globals__=getattr(function, "__globals__", {}),
    )
    try:
        return typing.get_type_hints(holder, include_extras=True)
    except Exception as exc:  # an unresolvable string annotation: NameError and friends
        raise TypeError(f"{where}: cannot read its type hints ({exc!r}).") from exc


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


def _display(form_field: forms.Field, value: Any) -> Any:
    """A JSON initial value as the widget shows it: an ISO date-time with an offset becomes an
    aware datetime, which the field shows in the current time zone."""
    if isinstance(form_field, forms.DateTimeField) and isinstance(value, str):
        try:
            return parse_datetime(value) or value
        except ValueError:
            return value
    return value


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


def _form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {
        name: [error["message"] for error in errors]
        for name, errors in form.errors.get_json_data().items()
    }


_JSON_TYPES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "decimal": {"type": "string", "format": "decimal"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "format": "time"},
}


def _value_schema(entry: _Entry) -> dict[str, Any]:
    """The JSON Schema of one value (of the parameter, or of each item of a list)."""
    info = entry.info
    if info.choices is not None:
        values = [value for value, _label in info.choices]
        schema: dict[str, Any] = {"enum": values}
        if all(isinstance(v, str) for v in values):
            schema["type"] = "string"
        elif all(isinstance(v, int) for v in values):
            schema["type"] = "integer"
    else:
        schema = dict(_JSON_TYPES.get(entry.kind, {}))
    for key, value in (
        ("minimum", info.minimum),
        ("maximum", info.maximum),
        ("exclusiveMinimum", info.exclusive_minimum),
        ("exclusiveMaximum", info.exclusive_maximum),
    ):
        if value is not None:
            schema[key] = value
    if not info.many:
        for key, length in (("minLength", info.min_length), ("maxLength", info.max_length)):
            if length is not None:
                schema[key] = length
    return schema


def _property_schema(entry: _Entry) -> dict[str, Any]:
    info = entry.info
    schema = _value_schema(entry)
    if info.many:
        schema = {"type": "array", "items": schema}
        if info.min_length is not None:
            schema["minItems"] = info.min_length
        if info.max_length is not None:
            schema["maxItems"] = info.max_length
    if info.nullable:
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    schema["title"] = info.label
    if info.help:
        schema["description"] = info.help
    if not info.required and not info.sensitive and entry.default is not None:
        schema["default"] = info.default
    if info.sensitive:
        schema["writeOnly"] = True
    return schema
