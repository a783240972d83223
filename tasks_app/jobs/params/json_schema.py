"""The JSON Schema of a job's kwargs, for the API's OpenAPI document."""

from __future__ import annotations

from typing import Any

from .info import _Entry

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
