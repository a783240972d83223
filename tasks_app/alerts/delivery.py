"""Message delivery. (Being written: see issue 13.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def deliver_due(now: datetime | None = None) -> dict[str, Any]:
    """Attempt every pending delivery whose time has come; returns counts."""
    return {}
