"""The local admin login `make run` creates: printed once, kept on re-runs, overridable."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_creates_admin_once_with_a_printed_random_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    first = ensure_admin()
    password = first.split("password: ")[1].split()[0]
    second = ensure_admin()

    assert authenticate(username="admin", password=password) is not None
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert "password: " not in second
    assert authenticate(username="admin", password=password) is not None


@pytest.mark.django_db
def test_environment_sets_username_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first-Secret-1")
    ensure_admin()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "second-Secret-2")

    output = ensure_admin()

    assert "first-Secret-1" not in output
    assert authenticate(username="ops", password="second-Secret-2") is not None
    assert not User.objects.filter(username="admin").exists()
