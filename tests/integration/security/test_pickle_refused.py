"""A message is data, never code: the real worker refuses a pickle-serialized task message.

Celery's own producer will not send one (the app accepts and produces JSON only), so the
message is built and published with kombu directly, onto the worker's queue, exactly as a
hostile client with access to the broker would. Its body is a pickle whose loading would create
a file (any code would run the same way). The worker must refuse to deserialize it: it logs the
refusal, the file never appears, and the task never runs (no run, no result).
"""

from __future__ import annotations

import pickle
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django_celery_results.models import TaskResult
from kombu import Connection

from dashboard.celery import app
from tasks_app.models import Run
from tasks_app.tasks import ping
from tests.support.services import WorkerProcess, wait_for

PICKLE = "application/x-python-serialize"


class CreatesAFile:
    """Unpickling this calls open(path, "w"): proof that the body was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def publish_pickled(broker_url: str, task_name: str, task_id: str, body: bytes) -> None:
    headers = {
        "lang": "py", "task": task_name, "id": task_id, "root_id": task_id, "parent_id": None,
        "group": None, "shadow": None, "eta": None, "expires": None, "retries": 0,
        "timelimit": [None, None], "argsrepr": "()", "kwargsrepr": "{}", "origin": "attacker",
        "ignore_result": False,
    }  # fmt: skip
    with Connection(broker_url) as connection:
        producer = connection.Producer()
        producer.publish(
            body,  # bytes, sent as they are: kombu serializes nothing
            exchange="default",
            routing_key="default",
            content_type=PICKLE,
            content_encoding="binary",
            headers=headers,
            correlation_id=task_id,
            delivery_mode=2,
        )


def test_a_pickled_task_message_is_refused_by_the_worker(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    task_id = f"pickled-{uuid.uuid4()}"
    body = pickle.dumps(((CreatesAFile(marker),), {}, {"callbacks": None, "errbacks": None,
                                                       "chain": None, "chord": None}))  # fmt: skip
    log_before = worker.log_path.read_text(errors="replace")

    publish_pickled(settings.CELERY_BROKER_URL, "taskdeck.ping", task_id, body)

    def refused() -> str | None:
        log = worker.log_path.read_text(errors="replace")[len(log_before) :]
        return log if "Refusing to deserialize untrusted content of type pickle" in log else None

    logged = wait_for(refused, timeout=30)
    assert "The message has been ignored and discarded." in logged, logged
    # The worker goes on: a JSON task sent after it runs, so the pickled one had its turn.
    assert ping.delay().get(timeout=30) == "pong"
    time.sleep(0.5)
    assert not marker.exists(), "the worker unpickled the message body"
    assert not Run.objects.filter(task_id=task_id).exists()
    assert not TaskResult.objects.filter(task_id=task_id).exists()


def test_the_app_itself_will_not_produce_or_accept_pickle() -> None:
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.result_accept_content == ["json"]
