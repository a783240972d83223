"""Reading settings from the environment: typed values with clear errors, the secret key and
the database. Kept out of settings.py so that file stays a flat list of values."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

__all__ = ["databases", "env_bool", "env_int", "env_list", "env_str", "secret_key"]


def env_str(name: str, default: str = "") -> str:
    """The variable's value; unset and empty both mean the default."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def secret_key(*, debug: bool, data_dir: Path) -> str:
    """SECRET_KEY, required when DEBUG is off; in development, one kept per checkout."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. It is required when DEBUG is off: set SECRET_KEY to a long "
            "random string, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    # Development: one random key per checkout, kept so logins survive restarts.
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def databases(*, data_dir: Path) -> dict[str, Any]:
    """DATABASES from DATABASE_URL; unset, a SQLite file under `data_dir`."""
    default_url = f"sqlite:///{data_dir / 'db.sqlite3'}"
    db: dict[str, Any] = dict(
        dj_database_url.parse(
            env_str("DATABASE_URL") or default_url,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    )
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        db["OPTIONS"] = {
            # WAL lets the web server read while a worker writes; IMMEDIATE takes the write
            # lock at BEGIN so concurrent writers wait (timeout) instead of failing mid-way.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # A file, not memory: a worker in another process must see the test database. One per
        # test process, so two test runs in one checkout never delete each other's database.
        db["TEST"] = {"NAME": str(data_dir / f"test-db-{os.getpid()}.sqlite3")}
    return {"default": db}
