"""Data as the pages show it: JSON text, never Python's repr. Selectors hand templates these
strings ready to print; the templates escape them like any other text."""

import json
from collections.abc import Mapping
from typing import Any


def json_text(value: Any) -> str:
    """`value` as JSON with its keys sorted; a string as it is, not quoted again."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def json_texts(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each name of `values`, in order, with its value's JSON text."""
    return [(name, json_text(value)) for name, value in values.items()]
