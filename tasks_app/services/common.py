"""Who acts, and the audit trail every action writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from ..models import AuditEntry, Run
from .errors import ServiceError


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, an API token (acting for its user), a schedule, or the system."""

    user: AbstractBaseUser | AnonymousUser | None = None
    token_name: str = ""
    schedule_name: str = ""
    system: str = ""

    @property
    def label(self) -> str:
        if self.user is not None and self.user.is_authenticated:
            if self.token_name:  # an API token acts for its owner: "alice (token ci)"
                return f"{self.user.get_username()} (token {self.token_name})"
            return self.user.get_username()
        if self.token_name:
            return f"token:{self.token_name}"
        return self.schedule_name or self.system or "anonymous"

    @property
    def user_id(self) -> int | None:
        if self.user is not None and self.user.is_authenticated:
            return int(self.user.pk)
        return None

    def has_perm(self, perm: str) -> bool:
        if self.schedule_name or self.system:
            return True  # configured by staff who had the permission to do so
        has_perm = getattr(self.user, "has_perm", None)  # AbstractBaseUser itself has none
        return bool(self.user is not None and self.user.is_active and has_perm and has_perm(perm))

    def require(self, *perms: str) -> None:
        missing = [perm for perm in perms if not self.has_perm(perm)]
        if missing:
            raise PermissionDenied(f"{self.label} lacks the permission {', '.join(missing)}.")

    @property
    def is_superuser(self) -> bool:
        """An active superuser (through a token too), or a schedule or the system, which, as in
        `has_perm`, act with what the staff who configured them had."""
        if self.schedule_name or self.system:
            return True
        user = self.user
        return bool(user is not None and user.is_active and getattr(user, "is_superuser", False))


def audit(
    actor: Actor,
    action: str,
    run: Run | None,
    details: dict[str, Any],
    *,
    target: tuple[str, str] | None = None,
) -> AuditEntry:
    """Record an action; `target` (type, id) for things other than runs."""
    if target is None:
        target = ("run", run.task_id) if run is not None else ("runs", "")
    return AuditEntry.objects.create(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        target_type=target[0],
        target_id=target[1],
        details=details,
    )


__all__ = ["Actor", "ServiceError", "audit"]
