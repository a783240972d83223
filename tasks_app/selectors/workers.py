"""What the Workers & queues page and the API's stats show: the broker's answer, read-only."""

from __future__ import annotations

from ..worker import broker
from ..worker.broker import BrokerSnapshot


def workers_snapshot(timeout: float = 1.0) -> BrokerSnapshot:
    """Online workers and queue depths, never raising for an unreachable broker."""
    return broker.snapshot(timeout=timeout)
