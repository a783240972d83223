"""Built-in jobs. Celery's autodiscovery imports this module in every worker."""

from celery import shared_task


@shared_task(name="taskdeck.ping")
def ping() -> str:
    """Answer "pong": proves the broker, a worker and the result store work end to end."""
    return "pong"
