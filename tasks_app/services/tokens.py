"""Actions on personal API tokens: create (the raw token is answered once) and revoke. Both are
audited with the token's name and prefix, never the token or its digest.

Any active staff user manages their own tokens (no extra permission: a token carries exactly its
user's permissions); superusers may revoke anyone's; `manage.py create_api_token` issues tokens
for a named user as a system actor. A token may expire (`expires_in_days`); every token of a
user is revoked when their password changes (`revoke_tokens_on_password_change`), as a leaked
password's tokens must not outlive the new password.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from .. import tokens
from ..models import ApiToken
from .common import Actor, ServiceError, audit

NAME_MAX = ApiToken._meta.get_field("name").max_length or 100
MAX_ACTIVE_TOKENS = 20
MAX_EXPIRY_DAYS = 3660  # ten years: any longer is "never", which is offered as such


class InvalidTokenName(ServiceError):
    field = "name"


class InvalidTokenExpiry(ServiceError):
    field = "expires_in_days"


class TooManyTokens(ServiceError):
    pass


def token_actor(token: ApiToken) -> Actor:
    """Who acts on a request authenticated by `token` (from `tokens.authenticate`): its user,
    with exactly the user's permissions, audited as "<username> (token <name>)"."""
    return Actor(user=token.user, token_name=token.name)


def token_create(
    *, actor: Actor, name: str, user: Any = None, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Issue a token named `name` for the acting user (or for `user`: system actors only, such
    as manage.py), refused after `expires_in_days` days (None: until revoked). Answers the token
    and the raw token, which is never stored nor shown again. Raises PermissionDenied,
    InvalidTokenName, InvalidTokenExpiry or TooManyTokens (at most MAX_ACTIVE_TOKENS)."""
    if actor.token_name:
        # A leaked token must not be able to mint tokens that outlive its own revocation.
        raise PermissionDenied("API tokens are created in the dashboard, not with a token.")
    if user is None:
        if actor.user_id is None:
            raise PermissionDenied("Sign in to create an API token.")
        user = actor.user
    elif not actor.system:
        raise PermissionDenied("Only the system creates tokens for another user.")
    if not tokens.may_use_tokens(user):
        raise ServiceError(
            f"{user.get_username()} is not an active staff user, so no token of theirs would "
            "be accepted."
        )
    name = " ".join(str(name).split())
    if not name:
        raise InvalidTokenName("Give the token a name: what it is for.")
    if len(name) > NAME_MAX:
        raise InvalidTokenName(f"Keep the name to {NAME_MAX} characters.")
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidTokenExpiry(
                f"Give a number of days between 1 and {MAX_EXPIRY_DAYS}, or no expiry."
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    with transaction.atomic():
        # Lock the owner so two simultaneous creations cannot both pass the limit.
        get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()
        if tokens.active_count(user) >= MAX_ACTIVE_TOKENS:
            raise TooManyTokens(
                f"{user.get_username()} already has {MAX_ACTIVE_TOKENS} active tokens: "
                "revoke one first."
            )
        token, raw = tokens.issue_token(user, name, expires_at=expires_at)
        details = {**_details(token, user), "expires_at": _iso(expires_at)}
        audit(actor, "token.create", None, details, target=_target(token))
    return token, raw


def token_revoke(token: ApiToken, *, actor: Actor) -> bool:
    """Revoke `token`: the owner's own, any for superusers (and system actors). False when it
    was already revoked (nothing is audited then). Raises PermissionDenied."""
    if not _may_revoke(actor, token):
        raise PermissionDenied("You may revoke only your own API tokens.")
    with transaction.atomic():
        changed = tokens.revoke(token)
        if changed:
            audit(actor, "token.revoke", None, _details(token, token.user), target=_target(token))
    return changed


def tokens_revoke_all(user: Any, *, actor: Actor, reason: str) -> list[ApiToken]:
    """Revoke every working token of `user` (audited once, naming them and `reason`); answers
    those revoked. For the system: the owner's password changed."""
    with transaction.atomic():
        revoked = tokens.revoke_all(user)
        if revoked:
            details = {
                "user": user.get_username(),
                "reason": reason,
                "tokens": [{"name": t.name, "prefix": t.prefix} for t in revoked],
            }
            audit(actor, "token.revoke_all", None, details, target=("user", str(user.pk)))
    return revoked


def revoke_tokens_on_password_change(
    sender: type[Any], instance: AbstractBaseUser, **kwargs: Any
) -> None:
    """`post_save` of the user model: a user whose password was just set (`set_password` then
    `save()`, which every way to change one uses: the password change and reset pages, the
    admin's password form, `manage.py changepassword`) loses every API token, so a token made
    with a stolen password stops working with it. Django's own hash upgrade on login is no
    change: it clears the marker before saving, as Django's `password_changed` hook relies on.
    Connected in `TasksAppConfig.ready`."""
    if kwargs.get("created") or kwargs.get("raw"):
        return
    # AbstractBaseUser.set_password keeps the new password here until save() has run the
    # validators' password_changed hooks; post_save runs inside that save, before it is cleared.
    if getattr(instance, "_password", None) is None:
        return
    tokens_revoke_all(
        instance, actor=Actor(system="password change"), reason="the user's password changed"
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _may_revoke(actor: Actor, token: ApiToken) -> bool:
    if actor.system:
        return True
    user = actor.user
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(getattr(user, "is_superuser", False)) or token.user_id == actor.user_id


def _details(token: ApiToken, user: Any) -> dict[str, Any]:
    # Name and prefix identify the token; the raw token and its digest never leave `tokens`.
    return {"name": token.name, "prefix": token.prefix, "user": user.get_username()}


def _target(token: ApiToken) -> tuple[str, str]:
    return ("token", str(token.pk))
