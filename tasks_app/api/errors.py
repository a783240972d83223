"""API errors: every refusal is JSON `{"detail": ..., "errors": {field: [messages]}}` with a
4xx status (503 when the broker is down), and each operation documents the ones it can give."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..jobs.sealing import is_sealed
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


def refuse_sealed_input(
    params: Mapping[str, Any], stored: Mapping[str, Any] | None = None, prefix: str = "params"
) -> None:
    """Refuse a `{"$sealed": ...}` value a client sent, unless it is the very value stored in
    that parameter (`stored`: the schedule being changed). Answers show the mask, and sending
    the mask back keeps a stored secret, so any other sealed value was copied from storage or
    the broker (another run's, another schedule's): refused, naming the field."""
    stored = stored or {}
    forged = [
        name for name, value in params.items() if is_sealed(value) and stored.get(name) != value
    ]
    if forged:
        message = "Send the value itself; sealed values are not accepted from clients."
        raise ApiError(400, "Invalid parameters.", {f"{prefix}.{n}": [message] for n in forged})
