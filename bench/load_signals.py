"""Signals of `python -m bench.load`: SIGTERM/SIGHUP act like Ctrl-C, and none of them cuts a
stop short."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(BaseException):
    """SIGTERM/SIGHUP, like Ctrl-C: leave through the `finally` blocks, which stop what was
    started (a BaseException, so that no `except Exception` on the way swallows it)."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """While stopping what it started, a Ctrl-C must not cut the stop short (leaving a worker
    running): signals are held until the block is done, then acted on. Every stop is bounded."""
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        signal.raise_signal(held[0])


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)
