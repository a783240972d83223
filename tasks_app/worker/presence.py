"""Which workers are online, answered in one Redis round trip (for /metrics).

Asking the workers themselves (`broker.online_workers`, a control broadcast) waits a whole
timeout for replies: too slow for a scrape. Instead each worker's main process keeps its
hostname in a sorted set in the broker's Redis, scored with the time it last said so (every
PRESENCE_INTERVAL seconds, from a daemon thread started when the worker is ready), and removes
it when it shuts down. A worker that dies without a word drops out once its score is older than
ONLINE_WINDOW. Scores are the workers' clocks: hosts must keep them roughly in step (NTP).

Only a Redis broker has the set: with another broker (amqp://, memory://) no worker announces
itself and the count is unknown, never an error.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery import current_app
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger(__name__)

KEY = "taskdeck:workers-online"
PRESENCE_INTERVAL = 10.0
ONLINE_WINDOW = 30.0
# Members silent this long (killed workers) are pruned by the survivors' next beat.
FORGET_AFTER = 3600.0
TIMEOUT = 2.0
# What asking the set can raise: RedisError when Redis does not answer, ValueError when the
# broker is not Redis (redis-py refuses the URL) or its URL is malformed.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, ValueError)
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_url(broker_url: str) -> str:
    """The broker's URL in redis-py's spelling (kombu's ``redis+socket://`` is ``unix://``);
    of failover URLs (``url1;url2``) the first."""
    url = broker_url.split(";", 1)[0].strip()
    scheme, sep, rest = url.partition("://")
    return f"unix://{rest}" if sep and scheme == "redis+socket" else url


def current_url() -> str:
    """The current broker's URL in redis-py's spelling (whatever its scheme)."""
    configured: Any = current_app.conf.broker_write_url or current_app.conf.broker_url
    if isinstance(configured, list | tuple):
        configured = configured[0] if configured else ""
    return redis_url(str(configured or ""))


def is_redis(url: str) -> bool:
    return url.partition("://")[0] in REDIS_SCHEMES


def client() -> redis.Redis:
    """A client of the current broker's Redis, one per URL (redis-py pools its connections and
    is thread-safe). Short timeouts and one retry without backoff (a dropped pooled connection),
    not redis-py's default three with backoff: a scrape must not hang on a broker that is down.
    Raises ValueError when the broker is not Redis."""
    url = current_url()
    if not is_redis(url):
        raise ValueError(f"The broker ({url.partition('://')[0]}://) is not Redis.")
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url,
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
                retry=Retry(NoBackoff(), 1),
            )
        return _clients[url]


def online_count(window: float = ONLINE_WINDOW) -> int:
    """Workers that said they were online in the last `window` seconds. Raises UNAVAILABLE."""
    return int(client().zcount(KEY, time.time() - window, "+inf"))


def expected_answers() -> int | None:
    """How many workers a broadcast or inspect should wait for: those online (each announces
    itself as soon as it is ready), or None when that cannot be known (the broker is not Redis,
    or does not answer): then the caller waits its whole timeout."""
    try:
        return online_count()
    except UNAVAILABLE:
        return None


def online_count_and_exists(key: str, window: float = ONLINE_WINDOW) -> tuple[int, bool]:
    """`online_count` and whether `key` exists in the same Redis, in one round trip (a scrape
    also asks whether the beat leader's lock is held). Raises UNAVAILABLE."""
    pipe = client().pipeline(transaction=False)
    pipe.zcount(KEY, time.time() - window, "+inf")
    pipe.exists(key)
    online, exists = pipe.execute()
    return int(online), bool(exists)


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
        url = current_url()
        if not is_redis(url):
            logger.info(
                "Worker %s does not announce itself: the broker (%s://) is not Redis.",
                hostname,
                url.partition("://")[0],
            )
            return
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
        except UNAVAILABLE as error:  # it drops out after ONLINE_WINDOW anyway
            logger.warning("Could not remove %s from the online workers: %s", self.hostname, error)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                announce(self.hostname)
            except UNAVAILABLE as error:  # the broker is down: try again at the next beat
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
