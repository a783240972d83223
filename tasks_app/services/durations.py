"""Durations as people type them: "90s", "15m", "2h", "1h30m", "1d", or a plain number of
seconds. One parser for the pages, the admin and the API, so a deadline means the same
everywhere; `duration_text` writes a stored number of seconds back in the same form."""

from __future__ import annotations

import re

MIN_SECONDS = 1
MAX_SECONDS = 30 * 24 * 3600  # 30 days: a deadline longer than that is no deadline

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Units largest first, each at most once: "1h30m", "2d 4h", "90s".
_PARTS = re.compile(r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?")
_PLAIN = re.compile(r"[0-9]+")
EXAMPLES = "90s, 15m, 2h, 1h30m, 1d, or a number of seconds"


class InvalidDuration(ValueError):
    """Text that is not a duration, or one out of bounds; the message says which."""


def parse_duration(value: str | int) -> int:
    """`value` in seconds, from 1 second to 30 days. Raises InvalidDuration."""
    if isinstance(value, bool):  # an int to Python, never a duration to anyone else
        raise InvalidDuration(f"Give a duration such as {EXAMPLES}.")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip().lower()
        if not text:
            raise InvalidDuration(f"Give a duration such as {EXAMPLES}.")
        # Digits are checked by length before int(), which refuses very long texts.
        if len(text) > 40:
            raise InvalidDuration(f"Give a duration such as {EXAMPLES}.")
        if _PLAIN.fullmatch(text):
            seconds = int(text)
        else:
            match = _PARTS.fullmatch(text)
            if match is None or not any(match.groups()):
                raise InvalidDuration(
                    f"“{value}” is not a duration: give one such as {EXAMPLES} "
                    "(units d, h, m, s, largest first)."
                )
            seconds = sum(
                int(amount) * UNITS[unit]
                for amount, unit in zip(match.groups(), "dhms", strict=True)
                if amount
            )
    if seconds < MIN_SECONDS:
        raise InvalidDuration("Give at least 1 second.")
    if seconds > MAX_SECONDS:
        raise InvalidDuration("Give at most 30 days (30d).")
    return seconds


def duration_text(seconds: int | None) -> str:
    """3600 -> "1h", 5400 -> "1h30m", 90 -> "1m30s": what `parse_duration` reads back."""
    if seconds is None:
        return ""
    parts = []
    rest = int(seconds)
    for unit, size in UNITS.items():
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


__all__ = [
    "MAX_SECONDS",
    "MIN_SECONDS",
    "InvalidDuration",
    "duration_text",
    "parse_duration",
]
