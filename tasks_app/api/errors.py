"""API errors: every refusal is JSON `{"detail": ..., "errors": {field: [messages]}}` with a
4xx status (503 when the broker is down), and each operation documents the ones it can give."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .schemas import ErrorOut

# Every operation: bad input, no or bad token, not permitted, body over the limit.
COMMON = (400, 401, 403, 413)
DESCRIPTIONS = {
    400: "Invalid input; `errors` names each field.",
    401: "No valid token.",
    403: "Not permitted.",
    404: "No such object.",
    409: "Conflicts with the object's state.",
    413: "Body over the API's limit.",
    503: "The broker is unavailable; nothing was queued.",
}


class ApiError(Exception):
    def __init__(
        self, status: int, detail: str, errors: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        super().__init__(detail)


def responses(ok: Mapping[int, Any], *extra: int) -> dict[int, Any]:
    """An operation's documented responses: `ok`, the common errors and `extra` ones."""
    return {**ok, **dict.fromkeys((*COMMON, *extra), ErrorOut)}


def field_errors(prefix: str, errors: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """A service's per-field errors under `prefix` ("params.steps"); `__all__` is the prefix."""
    return {
        prefix if name == "__all__" else f"{prefix}.{name}": list(messages)
        for name, messages in errors.items()
    }
