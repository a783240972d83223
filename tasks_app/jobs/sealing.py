"""Sealed parameter values: a sensitive parameter's value travels and rests encrypted.

`{"$sealed": "<Fernet token>"}` stands for the value in the run ledger (so a retry sends the
exact same parameters), in a schedule's kwargs (beat sends them as they are), in the broker's
message and in the result store; only the job, on the worker, sees the value. Fernet
(the `cryptography` package: AES-128-CBC + HMAC-SHA256, a timestamped, authenticated token)
rather than anything hand-made.

The key is derived from SECRET_KEY (and SECRET_KEY_FALLBACKS, so rotating the key keeps old
tokens readable while the fallback is listed), or given as TASKDECK_SEALING_KEYS. Web, worker
and beat must share it; a token sealed with a key no longer configured cannot be read, and the
run that carries it fails with a message saying so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SEALED: Final = "$sealed"


class SealError(ValueError):
    """A sealed value that this deployment's keys cannot open."""


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def seal(value: Any) -> dict[str, str]:
    """The JSON `value`, sealed; sealing an already sealed value answers it unchanged."""
    if is_sealed(value):
        return dict(value)
    token = _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode())
    return {SEALED: token.decode("ascii")}


def unseal(value: Any) -> Any:
    """The JSON value inside a sealed one; anything else is answered as it is."""
    if not is_sealed(value):
        return value
    try:
        return json.loads(_fernet().decrypt(value[SEALED].encode("ascii")))
    except (InvalidToken, UnicodeError, ValueError) as error:
        raise SealError(
            "This value was sealed with a key this deployment no longer has "
            "(SECRET_KEY or TASKDECK_SEALING_KEYS changed); enter it again."
        ) from error


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
