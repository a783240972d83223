"""GET /api/v1/schedules/calendar?days=1|7: the calendar page's forecast as JSON, in time
order, bounded the same way; any other window is a 400 naming `days`."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app import services
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.selectors.calendar_timeline import CAP, DENSE_LISTED
from tasks_app.services import Actor
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/schedules/calendar"


@pytest.fixture
def boss() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user, 'calendar')[1]}"}


def test_the_week_in_time_order_each_time_in_its_zone_and_utc(client: Client, boss: User) -> None:
    hourly = services.schedule_save(
        ScheduleDefinition(
            name="hourly", job="demo.progress", params={"steps": 1},
            timing=Timing(Kind.CRONTAB, cron="15 * * * *", timezone="Asia/Kolkata"),
        ),
        actor=Actor(user=boss),
    )  # fmt: skip
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="hammer", task="demo.progress", interval=every)
    PeriodicTask.objects.exclude(name__in=["hourly", "hammer"]).update(enabled=False)

    response = client.get(URL, {"days": "7"}, headers=bearer(boss))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["days"] == 7
    assert body["cap"] == CAP
    ats = [datetime.fromisoformat(e["at_utc"]) for e in body["entries"]]
    assert ats == sorted(ats)
    mine = [e for e in body["entries"] if e["schedule_id"] == hourly.pk]
    assert len(mine) == CAP
    assert mine[-1]["more"] == 7 * 24 - CAP
    assert mine[0]["timezone"] == "Asia/Kolkata"
    assert mine[0]["at"].endswith("+05:30")
    assert datetime.fromisoformat(mine[0]["at"]) == datetime.fromisoformat(mine[0]["at_utc"])
    frequent = {f["name"]: (f["listed"], f["total"]) for f in body["frequent"]}
    assert frequent["hourly"] == (CAP, 7 * 24)
    assert frequent["hammer"][0] == DENSE_LISTED
    assert frequent["hammer"][1] >= 7 * 86400 - 1
    assert body["fires"] == frequent["hourly"][1] + frequent["hammer"][1]


@pytest.mark.parametrize("days", ["3", "0", "x", "1.5", "-7"])
def test_another_window_is_a_400_naming_days(client: Client, boss: User, days: str) -> None:
    response = client.get(URL, {"days": days}, headers=bearer(boss))
    assert response.status_code == 400
    assert "days" in response.json()["errors"]


def test_a_schedule_is_still_read_by_its_id(client: Client, boss: User) -> None:
    task = PeriodicTask.objects.order_by("pk").first()
    assert task is not None
    response = client.get(f"/api/v1/schedules/{task.pk}", headers=bearer(boss))
    assert response.status_code == 200
    assert response.json()["name"] == task.name
