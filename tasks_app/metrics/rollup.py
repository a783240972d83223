"""The stats rollup. (Being written: see issue 13.)"""

from __future__ import annotations

from datetime import datetime


def roll_up(now: datetime | None = None) -> int:
    """Count runs finished since the last rollup into the stats tables; returns how many."""
    return 0
