"""Personal API tokens: issue one (shown once), check one on a request, revoke one.

A token reads `tdk_<prefix>_<secret>`: `tdk_` marks it as Taskdeck's (secret scanners and people
recognise it), `prefix` is 8 random hex digits shown in lists to tell tokens apart, `secret` is 32
random bytes from `secrets`, URL-safe base64. Only the SHA-256 digest of the whole token is stored
(see `ApiToken` for why a fast hash is right).

Permissions and the audit trail are the services' business (`tasks_app.services.tokens`); this
module only knows tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ApiToken

SCHEME = "tdk_"
PREFIX_BYTES = 4  # 8 hex digits: enough to tell a user's tokens apart, not part of the secret
SECRET_BYTES = 32
# `last_used_at` is written at most this often per token: not one write per API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Longer than any token we issue (4 + 8 + 1 + 43 characters); anything longer is not hashed.
MAX_LENGTH = 128


def digest_of(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(
    user: Any, name: str, *, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for `user` (refused from `expires_at` on, if given); answer it and the raw
    token, which exists nowhere else."""
    prefix = SCHEME + secrets.token_hex(PREFIX_BYTES)
    raw = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, digest=digest_of(raw), expires_at=expires_at
    )
    return token, raw


def may_use_tokens(user: Any) -> bool:
    """Whether `user` may act through a token: the rule of the pages (active staff)."""
    return bool(user is not None and user.is_active and user.is_staff)


def authenticate(raw: str) -> ApiToken | None:
    """The active token `raw` is, with its user loaded, or None: unknown, revoked, expired, or its
    user is inactive or no longer staff (the pages' rule: the token carries exactly its user's
    rights).

    Safe against timing attacks without a constant-time comparison of the secret: the lookup is
    by digest, and an attacker who learns how much of a digest matched learns nothing about a
    token that hashes to it. `last_used_at` is recorded at most once a minute per token, so a
    busy client does not cause a database write per request.
    """
    if not isinstance(raw, str) or not raw.startswith(SCHEME) or len(raw) > MAX_LENGTH:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest_of(raw)).first()
    if token is None or not token.is_active or not may_use_tokens(token.user):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so simultaneous requests write once between them.
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def expired(raw: str) -> ApiToken | None:
    """The token `raw` is if it is refused only because it expired (not revoked), so the API
    can say so; None otherwise."""
    if not isinstance(raw, str) or not raw.startswith(SCHEME) or len(raw) > MAX_LENGTH:
        return None
    return ApiToken.objects.filter(
        digest=digest_of(raw), revoked_at__isnull=True, expires_at__lte=timezone.now()
    ).first()


def revoke(token: ApiToken) -> bool:
    """Revoke `token` from now on; False if it already was (it keeps its first revocation time)."""
    now = timezone.now()
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if changed:
        token.revoked_at = now
    else:
        token.refresh_from_db(fields=["revoked_at"])
    return bool(changed)


def tokens_of(user: Any) -> QuerySet[ApiToken]:
    """`user`'s tokens, active and revoked, newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def unexpired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def active_count(user: Any) -> int:
    """`user`'s tokens that still work: neither revoked nor expired."""
    return ApiToken.objects.filter(unexpired(), user=user, revoked_at__isnull=True).count()


def revoke_all(user: Any) -> list[ApiToken]:
    """Revoke every token of `user` that still works; answer those revoked."""
    now = timezone.now()
    live = list(ApiToken.objects.filter(unexpired(), user=user, revoked_at__isnull=True))
    ApiToken.objects.filter(pk__in=[t.pk for t in live], revoked_at__isnull=True).update(
        revoked_at=now
    )
    for token in live:
        token.revoked_at = now
    return live
