"""Reading a parameter's type annotation (`Annotated`, `T | None`, `list[...]`, Enum, Literal
and annotated_types bounds) into a `_Spec`, before it becomes a form field."""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, cast

import annotated_types as at
from django.forms.utils import pretty_name

from .info import Param
from .values import _jsonish

SUPPORTED = (
    "str, int, float, bool, date, datetime, Decimal, an Enum, a Literal of str or int values, "
    "list[...] of those, and T | None"
)
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
