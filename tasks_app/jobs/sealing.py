"""Sealed parameter values: a sensitive parameter's value travels and rests encrypted.

`{"$sealed": "<Fernet token>"}` stands for the value in the run ledger (so a retry sends the
exact same parameters), in a schedule's kwargs (beat sends them as they are), in the broker's
message and in the result store; only the job, on the worker, sees the value. Fernet
(the `cryptography` package: AES-128-CBC + HMAC-SHA256, a timestamped, authenticated token)
rather than anything hand-made.

A value is sealed *for* one job's parameter: the token's content names both, so a token cannot
be moved to another parameter or job (a client that sends `{"$sealed": ...}` it copied from
elsewhere is refused by the schema, see `params.ParamSchema.validate`). Tokens sealed before
binding existed ("unbound") still open; migration 0009 binds the stored ones.

The key is derived from SECRET_KEY (and SECRET_KEY_FALLBACKS, so rotating the key keeps old
tokens readable while the fallback is listed), or given as TASKDECK_SEALING_KEYS. Web, worker
and beat must share it; a token sealed with a key no longer configured cannot be read, and the
run that carries it fails with a message saying so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SEALED: Final = "$sealed"


_FOR: Final = "$for"  # inside a bound token: [job, param]
_VALUE: Final = "value"


class SealError(ValueError):
    """A sealed value that this deployment's keys cannot open, or that is not for this place."""


@dataclass(frozen=True)
class Opened:
    """What a sealed value holds: the value, and the job and parameter it was sealed for
    (None for a token sealed before binding existed)."""

    value: Any
    bound_to: tuple[str, str] | None


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def seal(value: Any, job: str | None = None, param: str | None = None) -> dict[str, str]:
    """The JSON `value`, sealed for parameter `param` of job `job`. Without them the token is
    unbound, as before binding existed: only migration 0006 still makes such tokens (and
    0009 binds them); validation refuses them."""
    if (job is None) != (param is None):
        raise ValueError("Seal a value for both a job and a parameter, or for neither.")
    if is_sealed(value):
        raise ValueError("This value is sealed already.")
    payload = value if job is None else {_FOR: [job, param], _VALUE: value}
    token = _fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode())
    return {SEALED: token.decode("ascii")}


def open_sealed(value: Any) -> Opened:
    """Open a sealed value (SealError if this deployment's keys cannot)."""
    try:
        payload = json.loads(_fernet().decrypt(value[SEALED].encode("ascii")))
    except (InvalidToken, UnicodeError, ValueError, TypeError, KeyError) as error:
        raise SealError(
            "This value was sealed with a key this deployment no longer has "
            "(SECRET_KEY or TASKDECK_SEALING_KEYS changed); enter it again."
        ) from error
    # A parameter's value is never a JSON object, so an object with "$for" is a binding.
    if isinstance(payload, dict) and _FOR in payload:
        job, param = payload[_FOR]
        return Opened(payload.get(_VALUE), (str(job), str(param)))
    return Opened(payload, None)


def unseal(value: Any) -> Any:
    """The JSON value inside a sealed one; anything else is answered as it is."""
    return open_sealed(value).value if is_sealed(value) else value


def unseal_for(value: Any, job: str, param: str, *, unbound_ok: bool = False) -> Any:
    """The value inside a sealed one that was sealed for `param` of `job`; SealError if it was
    sealed for another job or parameter, or (unless `unbound_ok`) before binding existed.
    Anything not sealed is answered as it is."""
    if not is_sealed(value):
        return value
    opened = open_sealed(value)
    if opened.bound_to is None and not unbound_ok:
        raise SealError("This sealed value is not from this parameter; enter the value itself.")
    if opened.bound_to is not None and opened.bound_to != (job, param):
        raise SealError(
            "This sealed value belongs to another job or parameter; enter the value itself."
        )
    return opened.value


def _key(secret: str) -> bytes:
    digest = hashlib.sha256(f"taskdeck.sealed-params:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet_for(secrets: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_key(secret)) for secret in secrets])


def _fernet() -> MultiFernet:
    """The first key seals; every configured key opens."""
    explicit = tuple(getattr(settings, "TASKDECK_SEALING_KEYS", ()) or ())
    secrets = explicit or (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return _fernet_for(tuple(str(s) for s in secrets))
