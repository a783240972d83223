"""`manage.py devstack`: the process manager behind `make run`.

Starts the bundled Redis (when REDIS_URL is unset), a Celery worker, celery beat and the web
server; Ctrl-C or SIGTERM stops all of them. A worker, beat or bundled Redis that dies is
restarted (tasks_app.devstack.restart_policy: TASKDECK_DEVSTACK_RESTART_DELAY,
_RESTART_MAX_DELAY, _CRASH_LIMIT, _CRASH_WINDOW); the web server's exit stops everything.
TASKDECK_DEVSTACK_WORKER_ARGS adds arguments to the worker's command line (e.g. "--pool threads").

Redis is restarted rather than taken as the end of the stack: it keeps its queue on disk
(appendonly), the worker and beat reconnect by themselves, and the dashboard stays up meanwhile.
"""

import os
import shlex
import socket
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from tasks_app.devstack.bundled_redis import BundledRedis, BundledRedisError
from tasks_app.devstack.restart_policy import PolicyError, RestartPolicy
from tasks_app.devstack.supervisor import Child, Supervisor


class Command(BaseCommand):
    help = "Run Redis (bundled, if REDIS_URL is unset), a Celery worker, beat and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args: Any, port: int, host: str, concurrency: int, **options: Any) -> None:
        python = sys.executable
        try:
            policy = RestartPolicy.from_env(os.environ)
            worker_args = shlex.split(os.environ.get("TASKDECK_DEVSTACK_WORKER_ARGS", ""))
        except (PolicyError, ValueError) as error:
            raise SystemExit(f"[taskdeck] {error}") from None
        on_stop: list[Callable[[], None]] = []
        first_stage: list[Child] = []
        if settings.TASKDECK_USES_BUNDLED_REDIS:
            bundled = BundledRedis(settings.TASKDECK_BUNDLED_REDIS_DIR, persistent=True)
            try:
                started = bundled.start()
            except BundledRedisError as error:
                raise SystemExit(f"[taskdeck] {error}") from None
            if started and bundled.process is not None:
                # Ours to keep running; one another `make run` started is that one's.
                redis = Child("bundled Redis", bundled.server_args())
                redis.adopt(bundled.process)
                first_stage.append(redis)
                on_stop.append(bundled.stop)  # removes the socket file
            self.stdout.write(f"[taskdeck] bundled Redis on {bundled.socket_path}")
        else:
            self.stdout.write(f"[taskdeck] using Redis at {settings.REDIS_URL}")

        celery = [python, "-m", "celery", "-A", "dashboard"]
        worker = Child(
            "worker",
            [*celery, "worker", "-l", "INFO", "-Q", ",".join(settings.TASKDECK_QUEUES),
             "--concurrency", str(concurrency), "-n", "taskdeck@%h", *worker_args],
            stop_timeout=20,
        )  # fmt: skip
        beat = Child("beat", [*celery, "beat", "-l", "INFO"])
        runserver = [python, "manage.py", "runserver", f"{host}:{port}"]
        web = Child("web server", runserver, essential=True)
        supervisor = Supervisor(
            stages=[first_stage, [worker], [beat, web]],
            env=dict(os.environ),
            cwd=str(settings.BASE_DIR),
            on_stop=on_stop,
            policy=policy,
        )
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        supervisor.ready = lambda: _answers(shown_host, port)
        supervisor.ready_message = self.style.SUCCESS(
            f"\n[taskdeck] Taskdeck is running: open http://{shown_host}:{port}/ and log in "
            "(the admin login was printed when it was created). Press Ctrl-C to stop.\n"
        )
        self.stdout.write(f"[taskdeck] starting the worker, beat and the web server on port {port}")
        status = supervisor.run()
        if status:
            raise SystemExit(status)


def _answers(host: str, port: int) -> bool:
    """True once something accepts connections on the web server's port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
