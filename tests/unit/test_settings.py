"""Settings come from the environment; production values pass `check --deploy`."""

from __future__ import annotations

import json
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


def python(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A fresh Python in the checkout: this environment without DEBUG and SECRET_KEY, then
    `env`, and a data folder of its own."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update(env, TASKDECK_DATA_DIR=str(tmp_path))
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return python("manage.py", *args, env=env, tmp_path=tmp_path)


def read_settings(code: str, *, env: dict[str, str], tmp_path: Path) -> str:
    """What `code` prints in a fresh process that loads the settings module alone, as every
    process does first: a fifth of the time of `manage.py shell`, which sets up every app."""
    result = python(
        "-c", f"from django.conf import settings\n{code}",
        env={**env, "DJANGO_SETTINGS_MODULE": "dashboard.settings"}, tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


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
    code = "print(settings.SECRET_KEY)"
    env = {"DEBUG": "true"}

    first = read_settings(code, env=env, tmp_path=tmp_path)
    second = read_settings(code, env=env, tmp_path=tmp_path)

    assert len(first.strip()) >= 50
    assert first == second
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
    assert conf.result_backend == "tasks_app.worker.backend:LedgerBackend"
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


SECURITY_SETTINGS = (
    "HTTPS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS",
    "SECURE_REFERRER_POLICY", "SECURE_CROSS_ORIGIN_OPENER_POLICY", "SECURE_PROXY_SSL_HEADER",
    "AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME",
)  # fmt: skip


def security_settings(tmp_path: Path, **env: str) -> dict[str, object]:
    names = ", ".join(repr(n) for n in SECURITY_SETTINGS)
    code = f"import json; print(json.dumps({{n: getattr(settings, n, None) for n in ({names})}}))"
    printed = read_settings(code, env={**PRODUCTION, **env}, tmp_path=tmp_path)
    values: dict[str, object] = json.loads(printed.strip().splitlines()[-1])
    return values


def test_production_is_https_only_with_secure_cookies_and_hsts(tmp_path: Path) -> None:
    values = security_settings(tmp_path)

    assert values == {
        "HTTPS": True, "SECURE_SSL_REDIRECT": True, "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True, "SESSION_COOKIE_HTTPONLY": True, "CSRF_COOKIE_HTTPONLY": True,
        "SECURE_HSTS_SECONDS": 31_536_000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True, "X_FRAME_OPTIONS": "DENY",
        "SECURE_REFERRER_POLICY": "same-origin", "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "SECURE_PROXY_SSL_HEADER": None,  # no proxy is trusted unless told
        "AXES_FAILURE_LIMIT": 5, "AXES_COOLOFF_TIME": 0.25,  # hours
    }  # fmt: skip


def test_a_trusted_proxy_and_the_throttle_come_from_the_environment(tmp_path: Path) -> None:
    values = security_settings(
        tmp_path, TRUST_X_FORWARDED_PROTO="true", TASKDECK_LOGIN_FAILURE_LIMIT="10",
        TASKDECK_LOGIN_LOCKOUT_MINUTES="30", SECURE_HSTS_SECONDS="600",
    )  # fmt: skip

    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (values["AXES_FAILURE_LIMIT"], values["AXES_COOLOFF_TIME"]) == (10, 0.5)
    assert values["SECURE_HSTS_SECONDS"] == 600


def test_a_plain_http_trial_turns_the_https_settings_off(tmp_path: Path) -> None:
    values = security_settings(tmp_path, HTTPS="false")

    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_HTTPONLY"] is True  # whatever the scheme


def test_check_deploy_is_clean_behind_a_proxy_too(tmp_path: Path) -> None:
    env = {**PRODUCTION, "TRUST_X_FORWARDED_PROTO": "true", "TASKDECK_TRUSTED_PROXIES": "1"}

    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=env, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout


# What a browser gets in production: the answers of the real middleware stack, through Django's
# test client in a process with production settings (static files from the plain storage, as
# nothing was collected; a throwaway SQLite database).
PRODUCTION_RESPONSES = """
import json
from django.test import Client, override_settings
from django.test.utils import setup_test_environment
setup_test_environment()
storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
with override_settings(STORAGES=storages):
    client = Client(HTTP_HOST="taskdeck.example.com")
    plain = client.get("/login/")
    secure = client.get("/login/", secure=True)
    forwarded = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
cookie = secure.cookies["csrftoken"]
print(json.dumps({
    "plain": [plain.status_code, plain.headers.get("Location")],
    "forwarded": forwarded.status_code,
    "secure": secure.status_code,
    "hsts": secure.headers.get("Strict-Transport-Security"),
    "csp": secure.headers.get("Content-Security-Policy"),
    "frame": secure.headers.get("X-Frame-Options"),
    "nosniff": secure.headers.get("X-Content-Type-Options"),
    "referrer": secure.headers.get("Referrer-Policy"),
    "cookie": {"secure": cookie["secure"], "httponly": cookie["httponly"],
               "samesite": cookie["samesite"]},
}))
"""


def test_production_answers_redirect_to_https_and_send_hsts_and_secure_cookies(
    tmp_path: Path,
) -> None:
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    result = manage("shell", "--no-imports", "-c", PRODUCTION_RESPONSES, env=env, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://taskdeck.example.com/login/"]
    assert seen["forwarded"] == 301  # X-Forwarded-Proto is not trusted unless told
    assert seen["secure"] == 200
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self'" in seen["csp"]
    assert "frame-ancestors 'none'" in seen["csp"]
    assert (seen["frame"], seen["nosniff"], seen["referrer"]) == ("DENY", "nosniff", "same-origin")
    assert seen["cookie"] == {"secure": True, "httponly": True, "samesite": "Lax"}
