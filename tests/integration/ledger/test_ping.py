"""The foundation works end to end: a task goes through real Redis to a real worker and its
result lands in django-celery-results' TaskResult."""

from django_celery_results.models import TaskResult

from tasks_app.tasks import ping
from tests.support.services import WorkerProcess


def test_ping_runs_on_a_real_worker_and_is_stored(worker: WorkerProcess) -> None:
    result = ping.delay()

    assert result.get(timeout=30) == "pong"
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "taskdeck.ping"
    assert stored.result == '"pong"'  # JSON, never pickle
    assert stored.content_type == "application/json"
    # (celery-types' stub of TaskResult lacks the `worker` column, so read it by name)
    worker_name = TaskResult.objects.values_list("worker", flat=True).get(task_id=result.id)
    assert str(worker_name).startswith("test-worker")
    assert stored.date_done is not None
