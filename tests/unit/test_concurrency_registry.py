"""`@job(concurrency=N)`: kept on the spec; anything but a positive whole number is refused when
the job is declared, not at its first run. The waiting backoff stays short and bounded."""

from __future__ import annotations

from typing import Any

import pytest

from tasks_app.jobs.registry import get_job, job
from tasks_app.worker import slots


def test_the_limit_is_on_the_spec() -> None:
    assert get_job("demo.limited").concurrency == 2
    assert get_job("demo.progress").concurrency is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        job(name=f"test.concurrency-{value!r}", concurrency=value)(lambda ctx: None)


def test_a_waiting_run_is_offered_again_soon_and_never_later_than_the_cap() -> None:
    delays = [slots.wait_delay(waits) for waits in range(50)]
    assert all(0 < delay <= slots.WAIT_MAX_SECONDS * 1.25 for delay in delays)
    assert delays[0] <= slots.WAIT_BASE_SECONDS * 1.25
