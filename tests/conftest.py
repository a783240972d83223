"""Session-wide fixtures: the real broker and the real Celery worker every integration test uses."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from kombu import Queue

import tasks_app.demo  # noqa: F401 - the suite drives the demo jobs, whatever the settings say
from dashboard.celery import app as celery_app
from tasks_app.devstack.bundled_redis import BundledRedis
from tasks_app.jobs.policies import QUEUES
from tests.support.services import SESSION_WORKERS, WorkerProcess, use_broker


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Django's own advice for test suites: PBKDF2's ~0.3 s per hash (by design) went into
    every test that creates or logs in a user. Only in this process: the worker, beat and
    dev-stack processes the tests start keep the real hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def local_webhooks() -> Iterator[None]:
    """Webhooks may reach the suite's receiver on 127.0.0.1 (a test about refusing private
    addresses turns this off), and retry after half a second, not 10 s. The session worker
    gets the same settings (tests.support.services.child_env)."""
    with override_settings(
        TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE=True, TASKDECK_ALERT_RETRY_BASE_SECONDS=0.5
    ):
        yield


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The environment's Redis (REDIS_URL, flushed: give the suite a database of its own), or
    a bundled redis-server started for this session only, so a `make run` worker never takes
    the tests' messages."""
    env_url = os.environ.get("REDIS_URL", "").strip()
    bundled: BundledRedis | None = None
    if env_url:
        url = xdist_database(env_url, os.environ.get("PYTEST_XDIST_WORKER", ""))
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    else:
        bundled = BundledRedis(tmp_path_factory.mktemp("redis"))
        bundled.start()
        url = bundled.url
    settings.CELERY_BROKER_URL = url
    use_broker(url)
    yield url
    celery_app.close()
    if bundled is not None:
        bundled.stop()


def xdist_database(url: str, xdist_worker: str) -> str:
    """Under pytest-xdist each test process (gw0, gw1, ...) flushes and fills a Redis database
    of its own: the URL's database plus the process's number, wrapping within Redis's 16."""
    if not xdist_worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = (base + int(xdist_worker[2:])) % 16
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def purge_queues(broker_url: str) -> Iterator[Callable[[], None]]:
    """Empties every queue a test may have sent to. Celery's `control.purge()` empties only the
    queues selected for consuming (here just the default one), not those it creates on a
    first send (`high`, `low`): a run sent there without a worker would run in a later test.
    One connection to the test broker for the whole session: opening one for each test that
    queued took most of the 2.6 ms a purge cost (about 2.5 s of CPU in `make test-fast`)."""
    connection = celery_app.connection_for_write(broker_url)

    def purge() -> None:
        channel = connection.default_channel
        for name in sorted({*QUEUES, *celery_app.amqp.queues.keys()}):
            Queue(name, channel=channel).purge()

    yield purge
    connection.release()


@pytest.fixture(scope="session")
def celery_worker_process(
    broker_url: str,
    purge_queues: Callable[[], None],
    django_db_setup: None,
    django_db_blocker: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """One real worker for the whole session, on the test database and the test broker."""
    # Messages left by tests that launched without a worker must not run against later tests.
    purge_queues()
    worker = WorkerProcess(broker_url, tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    SESSION_WORKERS.append(worker)
    yield worker
    SESSION_WORKERS.remove(worker)
    worker.stop()


@pytest.fixture
def broker(broker_url: str, purge_queues: Callable[[], None]) -> Iterator[str]:
    """The broker for a test that queues runs without a worker: emptied afterwards, so nothing
    it queued runs later against another test's database."""
    yield broker_url
    purge_queues()


@pytest.fixture
def worker(celery_worker_process: WorkerProcess, transactional_db: None) -> Iterator[WorkerProcess]:
    """Use in a test that sends tasks: the worker, with committed (visible) test data."""
    yield celery_worker_process
    if celery_worker_process.process is None or celery_worker_process.process.poll() is not None:
        pytest.fail(f"The worker died during the test:\n{celery_worker_process.log_tail()}")


_skipped: list[str] = []
_postgresql_only: list[str] = []


WORKER_FIXTURES = frozenset({"worker", "celery_worker_process"})


def start_order(item: pytest.Item) -> int:
    """Slow tests first: those that start processes of their own take up to a minute, browser
    and worker tests seconds, the rest milliseconds. Run in parallel (pytest-xdist), the long
    ones then overlap each other and the quick ones fill the gaps, instead of one long test
    running alone at the end. A stable sort: each file's tests stay together, in order."""
    for rank, mark in enumerate(("processes", "browser", "worker")):
        if item.get_closest_marker(mark):
            return rank
    return 3


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks what `make test-fast` leaves out: `worker` on tests that use the session worker,
    `browser` on the browser tests (marked here, from the fixture or folder, so no test can
    forget it). Tests marked `postgresql` need PostgreSQL. On another database they are
    deselected, not skipped (CI counts a skip as a failure): `make test` runs them in its
    PostgreSQL pass."""
    for item in items:
        if WORKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.worker)
        if item.path.parent.name == "browser":
            item.add_marker(pytest.mark.browser)
    items.sort(key=start_order)
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    deselected = [item for item in items if item.get_closest_marker("postgresql")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql")]
        _postgresql_only.extend(item.nodeid for item in deselected)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection built (modules, test items, schemathesis' cases, hypothesis'
    strategies) lives until the end: moved out of the garbage collector's sight, so its full
    passes, and pytest's own at the end, stop walking it again and again: in `make test-fast`,
    9.0 s of CPU in the collector before, 7.4 s after."""
    gc.collect()
    gc.freeze()


def pytest_testnodedown(node: Any, error: object | None) -> None:
    """Under pytest-xdist the test processes collect and deselect, not this one: each reports
    what it deselected when it ends (pytest_sessionfinish), all alike."""
    reported = getattr(node, "workeroutput", {}).get("postgresql_only", [])
    if not _postgresql_only:
        _postgresql_only.extend(reported)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgresql_only:
        terminalreporter.write_line(
            f"{len(_postgresql_only)} PostgreSQL-only test(s) deselected: they run in the "
            "PostgreSQL pass (DATABASE_URL=postgres://...)."
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: nothing may pass by not running. (Under pytest-xdist
    this process's reports include those of the test processes.)"""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["postgresql_only"] = _postgresql_only
    if os.environ.get("CI") and _skipped:
        print(f"\nFAILED: {len(_skipped)} test(s) skipped in CI: {', '.join(_skipped)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
