"""Tasks only the fault tests use, loaded into their workers with `--include`.

A plain Celery task (recorded in the ledger like any task, as TaskdeckTask is the app's task
class) that touches the database only where Celery itself does: STARTED at the start, the
result at the end. With nothing in between, a connection killed while it runs is first met by
the result backend.
"""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(name="faults.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
