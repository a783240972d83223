"""Which workers are online, answered in one Redis round trip (for /metrics).

Asking the workers themselves (`broker.online_workers`, a control broadcast) waits a whole
timeout for replies: too slow for a scrape. Instead each worker's main process keeps its
hostname in a sorted set in the broker's Redis, scored with the time it last said so (every
PRESENCE_INTERVAL seconds, from a daemon thread started when the worker is ready), and removes
it when it shuts down. A worker that dies without a word drops out once its score is older than
ONLINE_WINDOW. Scores are the workers' clocks: hosts must keep them roughly in step (NTP).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery import current_app
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY = "taskdeck:workers-online"
PRESENCE_INTERVAL = 10.0
ONLINE_WINDOW = 30.0
# Members silent this long (killed workers) are pruned by the survivors' next beat.
FORGET_AFTER = 3600.0
TIMEOUT = 2.0

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_url(broker_url: str) -> str:
    """The broker's URL in redis-py's spelling (kombu's ``redis+socket://`` is ``unix://``);
    of failover URLs (``url1;url2``) the first."""
    url = broker_url.split(";", 1)[0].strip()
    scheme, sep, rest = url.partition("://")
    return f"unix://{rest}" if sep and scheme == "redis+socket" else url


def client() -> redis.Redis:
    """A client of the current broker's Redis, one per URL (redis-py pools its connections and
    is thread-safe). Short timeouts: a scrape must not hang on a broker that is down."""
    configured: Any = current_app.conf.broker_write_url or current_app.conf.broker_url
    if isinstance(configured, list | tuple):
        configured = configured[0] if configured else ""
    url = redis_url(str(configured or ""))
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
            )
        return _clients[url]


def online_count(window: float = ONLINE_WINDOW) -> int:
    """Workers that said they were online in the last `window` seconds. Raises RedisError."""
    return int(client().zcount(KEY, time.time() - window, "+inf"))


def announce(hostname: str) -> None:
    """Say `hostname` is online now (and forget long-silent workers), in one round trip."""
    now = time.time()
    pipe = client().pipeline(transaction=False)
    pipe.zadd(KEY, {hostname: now})
    pipe.zremrangebyscore(KEY, "-inf", now - FORGET_AFTER)
    pipe.execute()


class Presence:
    """The announcing thread of this worker process (at most one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hostname = ""

    def start(self, hostname: str) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self.hostname = hostname
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="taskdeck-presence", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is None:
            return
        thread.join(TIMEOUT * 2)
        try:
            client().zrem(KEY, self.hostname)
        except RedisError as error:  # it drops out after ONLINE_WINDOW anyway
            logger.warning("Could not remove %s from the online workers: %s", self.hostname, error)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                announce(self.hostname)
            except RedisError as error:  # the broker is down: try again at the next beat
                logger.warning("Could not announce worker %s: %s", self.hostname, error)
            self._stop.wait(PRESENCE_INTERVAL)


presence = Presence()


def on_worker_ready(sender: Any = None, **_: object) -> None:
    """celery.signals.worker_ready (main process; the sender is the consumer)."""
    hostname = getattr(sender, "hostname", "")
    if hostname:
        presence.start(str(hostname))


def on_worker_shutdown(**_: object) -> None:
    """celery.signals.worker_shutdown (main process)."""
    presence.stop()
