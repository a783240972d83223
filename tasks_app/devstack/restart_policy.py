"""When the dev stack restarts a process that exited, and when it gives up (pure, no I/O).

Like systemd's `Restart=on-failure` with `StartLimitBurst`: a process that exits is started
again after a delay that doubles with each quick exit in a row (1, 2, 4 ... capped at 30 s); a
process that exits within `crash_window` seconds of its start `crash_limit` times in a row is in
a crash loop (a bad setting, a missing dependency: starting it again will not help) and stays
down. A process that ran longer than the window before dying (the OOM killer, a kill) resets the
count: it was working, so it is restarted after the shortest delay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "TASKDECK_DEVSTACK_"


class PolicyError(ValueError):
    """A restart setting in the environment is not a valid number."""


@dataclass(frozen=True)
class Verdict:
    quick_exits: int  # the streak to carry to the next exit
    restart_in: float | None  # None: a crash loop, leave it down


@dataclass(frozen=True)
class RestartPolicy:
    delay: float = 1.0  # seconds before the first restart
    max_delay: float = 30.0
    crash_limit: int = 5  # quick exits in a row that make a crash loop
    crash_window: float = 10.0  # an exit this soon after the start is a quick one

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RestartPolicy:
        """Read TASKDECK_DEVSTACK_RESTART_DELAY, _RESTART_MAX_DELAY, _CRASH_LIMIT and
        _CRASH_WINDOW; unset or empty ones keep their defaults."""
        default = cls()
        limit = _number(env, "CRASH_LIMIT", default.crash_limit, minimum=1, whole=True)
        return cls(
            delay=_number(env, "RESTART_DELAY", default.delay, minimum=0.0),
            max_delay=_number(env, "RESTART_MAX_DELAY", default.max_delay, minimum=0.0),
            crash_limit=int(limit),
            crash_window=_number(env, "CRASH_WINDOW", default.crash_window, minimum=0.0),
        )

    def backoff(self, quick_exits: int) -> float:
        """Seconds to wait before a restart after `quick_exits` quick exits in a row (0 after a
        long-lived process died): delay, delay, 2*delay, 4*delay ... never above max_delay."""
        return float(min(self.max_delay, self.delay * 2 ** max(quick_exits - 1, 0)))

    def after_exit(self, quick_exits: int, uptime: float) -> Verdict:
        """What to do with a process that exited after `uptime` seconds, having exited quickly
        `quick_exits` times in a row before this start."""
        streak = quick_exits + 1 if uptime < self.crash_window else 0
        if streak >= self.crash_limit:
            return Verdict(quick_exits=streak, restart_in=None)
        return Verdict(quick_exits=streak, restart_in=self.backoff(streak))


def _number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, whole: bool = False
) -> float:
    raw = env.get(PREFIX + name, "").strip()
    if not raw:
        return default
    kind = "a whole number" if whole else "a number of seconds"
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise PolicyError(f"{PREFIX}{name} must be {kind}, not {raw!r}.")
    if value < minimum:
        raise PolicyError(f"{PREFIX}{name} must be at least {minimum:g}, not {raw!r}.")
    return value
