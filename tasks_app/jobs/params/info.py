"""What is known about one parameter: the author's `Param` marker, the `ParamInfo` templates
and API docs read, and the schema's own `_Entry` for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Param:
    """Extra facts about a parameter, used inside `Annotated[T, Param(...)]`."""

    label: str | None = None
    help: str = ""
    sensitive: bool = False


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


@dataclass(frozen=True)
class _Entry:
    info: ParamInfo
    kind: str  # scalar kind, for the JSON Schema
    refuse_null: bool  # a typed parameter that is not `T | None`
    default: Callable[[], Any] | None  # its JSON default, fresh each time; None: no default
