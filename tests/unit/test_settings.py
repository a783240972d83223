"""Settings come from the environment; production values pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from dashboard.celery import app

BASE_DIR = Path(settings.BASE_DIR)

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x8!pL2#qv9_Tz4@rW7$mK1^nB5&cY3*hJ6(dF0)gS-eA+uZ=iO~",
    "ALLOWED_HOSTS": "taskdeck.example.com",
    "DATABASE_URL": "postgres://taskdeck@db.internal:5432/taskdeck",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update(env, TASKDECK_DATA_DIR=str(tmp_path))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_check_deploy_is_clean_with_production_values(tmp_path: Path) -> None:
    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=PRODUCTION, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_missing_secret_key_without_debug_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}

    result = manage("check", env=env, tmp_path=tmp_path)

    assert result.returncode != 0
    assert "SECRET_KEY is not set. It is required when DEBUG is off" in result.stderr


def test_a_malformed_boolean_is_refused_by_name(tmp_path: Path) -> None:
    result = manage("check", env={**PRODUCTION, "DEBUG": "maybe"}, tmp_path=tmp_path)

    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_debug_generates_and_keeps_a_per_checkout_secret_key(tmp_path: Path) -> None:
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {"DEBUG": "true"}

    first = manage("shell", "--no-imports", "-c", code, env=env, tmp_path=tmp_path)
    second = manage("shell", "--no-imports", "-c", code, env=env, tmp_path=tmp_path)

    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_default_database_is_sqlite_in_wal_mode_under_the_data_folder(tmp_path: Path) -> None:
    code = (
        "from django.db import connection; connection.ensure_connection();"
        "print(connection.settings_dict['NAME']);"
        "print(connection.cursor().execute('PRAGMA journal_mode').fetchone()[0])"
    )
    env = {"DEBUG": "true", "DATABASE_URL": ""}

    result = manage("shell", "--no-imports", "-c", code, env=env, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "db.sqlite3"), "wal"]


def test_celery_accepts_and_produces_json_only() -> None:
    conf = app.conf

    assert conf.accept_content == ["json"]
    assert conf.result_accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    # django-celery-results' database backend, extended with the run ledger
    assert conf.result_backend == "tasks_app.backend:LedgerBackend"
    assert conf.result_extended is True
    assert conf.task_track_started is True
    # django-celery-beat's DatabaseScheduler behind a leader lock, writing each send at once
    assert conf.beat_scheduler == "tasks_app.schedules.beat:TaskdeckScheduler"
    assert conf.beat_sync_every == 1
    assert conf.broker_connection_retry_on_startup is True
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.result_backend_always_retry is True
    assert conf.task_time_limit > conf.task_soft_time_limit > 0
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [
        ("", ["localhost", "127.0.0.1", "[::1]"]),
        ("a.example, b.example", ["a.example", "b.example"]),
    ],
)
def test_allowed_hosts_come_from_a_comma_separated_list(
    env_value: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.settings import env_list

    monkeypatch.setenv("ALLOWED_HOSTS", env_value)

    assert env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]") == expected
