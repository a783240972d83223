"""If the broker is unreachable at launch, the caller gets a clear error and nothing is left
PENDING."""

from __future__ import annotations

import time

import pytest

from tasks_app import services
from tasks_app.jobs.errors import BrokerUnavailable
from tasks_app.models import AuditEntry, Run
from tests.support.runs import operator
from tests.support.services import WorkerProcess, use_broker


def test_launch_with_the_broker_down_fails_clearly_and_leaves_no_run(
    worker: WorkerProcess, broker_url: str
) -> None:
    use_broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="broker is unavailable"):
            services.job_launch("demo.progress", {"steps": 1}, actor=operator())
        elapsed = time.monotonic() - started
    finally:
        use_broker(broker_url)

    assert elapsed < 15
    assert not Run.objects.exists()
    assert not AuditEntry.objects.filter(action="run.launch").exists()
