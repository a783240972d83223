"""Jobs with sensitive parameters of every kind, for the security tests of sealed values.

Imported by those tests, and loaded into their own worker with `--include` (the session's
worker does not know them). `secrets.function` marks its parameters sensitive the way a
function job does (`@job(sensitive=[...])`), `secrets.form` an explicit Form's fields. Each
returns what it got, as digests, so a test can check the job saw the real values without the
values themselves landing in a result.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, Literal

from django import forms

from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import job

PIN = 482915
DAY = date(2031, 7, 14)
CODES = ["alpha-7781", "bravo-9925"]
TIER = "platinum-tier"
API_KEY = "key-Zq81-never-shown"
PASSWORD = "pw-Hx42-never-shown"
ACCOUNT = "acct-Lm55-never-shown"
LIMIT = 771203


def digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


@job(
    name="secrets.function",
    title="Secrets: a function job",
    retry="no_retry",
    sensitive=["pin", "day", "codes", "tier", "api_key", "password"],
)
def function_job(
    ctx: JobContext,
    pin: int = 0,
    day: date | None = None,
    codes: list[str] = [],  # noqa: B006 - a JSON default, copied per launch
    tier: Literal["basic", "gold", "platinum-tier"] = "basic",
    api_key: str = "",
    password: str = "",
    label: str = "",
) -> dict[str, str]:
    return {
        name: digest(value)
        for name, value in (
            ("pin", pin), ("day", day), ("codes", codes), ("tier", tier),
            ("api_key", api_key), ("password", password),
        )
    }  # fmt: skip


class AccountForm(forms.Form):
    account = forms.CharField()
    limit = forms.IntegerField(required=False)
    label = forms.CharField(required=False)


@job(
    name="secrets.form",
    title="Secrets: a form job",
    retry="no_retry",
    form=AccountForm,
    sensitive=["account", "limit"],
)
def form_job(ctx: JobContext, account: str, limit: int | None, label: str) -> dict[str, str]:
    return {"account": digest(account), "limit": digest(limit)}
