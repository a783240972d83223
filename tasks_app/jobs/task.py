"""Where the task class lived before the worker runtime got its own package.

Celery apps configured before keep working: `Celery(task_cls="tasks_app.jobs.task:TaskdeckTask")`
resolves here. New code names `tasks_app.worker.task:TaskdeckTask`. Nothing in the app imports
this module; it is the one place the job framework refers to the runtime, which is why the
layering contracts in pyproject.toml list it as an allowed exception.
"""

from ..worker.task import TaskdeckTask

__all__ = ["TaskdeckTask"]
