"""The options a launch may carry (queue, priority), checked once: a launch now
(`LaunchOptions`), a schedule saved from the editor or the API, and a schedule row saved from
the admin all accept exactly the same values, and say the same thing about the rest."""

from __future__ import annotations

from ..jobs.policies import QUEUES

# The priorities a launch may ask for.
PRIORITY_MIN, PRIORITY_MAX = 0, 9


def queue_error(queue: str | None) -> str | None:
    """Why `queue` cannot be used, or None. None is the job's own queue; a schedule stores
    "no queue" as "" (or NULL), so its callers pass `queue or None`."""
    if queue is not None and queue not in QUEUES:
        return f"Unknown queue; use one of: {', '.join(QUEUES)}."
    return None


def priority_error(priority: int | None) -> str | None:
    """Why `priority` cannot be used, or None. None is the job's own priority."""
    if priority is not None and not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        return f"Priority must be between {PRIORITY_MIN} and {PRIORITY_MAX}."
    return None


__all__ = ["PRIORITY_MAX", "PRIORITY_MIN", "priority_error", "queue_error"]
