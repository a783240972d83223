"""The missed-run policy in Chromium, as a staff user who manages schedules (not a superuser)
uses it: chosen in the dashboard's editor, said in words on the schedule's page and recorded in
the audit trail; a cap out of range is refused next to its field with nothing changed; and the
same fields show and save in the Django admin's PeriodicTask form."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.db import close_old_connections
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import Page, expect

from tasks_app.models import AuditEntry
from tasks_app.schedules.missed import MissedRuns, missed_runs_of
from tests.browser.conftest import PASSWORD, log_in

NAME = "nightly catch-up"
RUN_ALL = "Run every missed run (capped)"
SKIP = "Skip missed runs"


@pytest.fixture
def scheduler(transactional_db: None) -> User:
    """A staff user (not a superuser) who may manage schedules, also in the admin."""
    user = User.objects.create_user("scheduler", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="manage_schedules", content_type__app_label="tasks_app"),
        *Permission.objects.filter(
            content_type__app_label="django_celery_beat",
            codename__in=["view_periodictask", "change_periodictask"],
        ),
    )
    return user


@pytest.fixture
def scheduler_page(page: Page, scheduler: User) -> Page:
    assert log_in(page, scheduler.username).status == 200
    return page


def stored() -> tuple[PeriodicTask, MissedRuns, int]:
    """The schedule as the database holds it, its policy and how many audit entries it has."""
    close_old_connections()
    task = PeriodicTask.objects.get(name=NAME)
    audits = AuditEntry.objects.filter(target_type="schedule", target_id=str(task.pk)).count()
    return task, missed_runs_of(task), audits


def test_the_policy_is_chosen_shown_refused_out_of_range_and_edited_in_the_admin(
    scheduler_page: Page,
) -> None:
    page = scheduler_page
    policy = page.get_by_label("Missed runs", exact=True)
    cap = page.get_by_label("Catch-up cap")
    shown = page.locator("dd.missed-policy")

    # Create, in the dashboard's editor, with "run every missed run" capped at 24.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedules")
    page.get_by_role("link", name="New schedule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New schedule")
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Job").select_option("demo.progress")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()
    page.get_by_label("Cron expression").fill("30 2 * * *")
    expect(policy).to_have_value("run_once")  # the default
    policy.select_option(label=RUN_ALL)
    cap.fill("24")
    page.get_by_role("button", name="Create schedule").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(NAME)
    expect(page.get_by_role("status")).to_contain_text(f"Created schedule {NAME}")
    expect(shown).to_have_text(f"{RUN_ALL}, at most 24")
    task, missed, audits = stored()
    assert missed == MissedRuns("run_all", 24)
    created = AuditEntry.objects.get(action="schedule.create", target_id=str(task.pk))
    assert created.actor_label == "scheduler"
    assert created.details["after"]["missed_policy"] == "run_all"
    assert created.details["after"]["missed_cap"] == 24

    # The audit trail shows it too.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    row = page.get_by_role("row").filter(has_text="schedule.create").filter(has_text=NAME)
    expect(row).to_have_count(1)
    expect(row).to_contain_text('"missed_cap": 24')
    expect(row).to_contain_text('"missed_policy": "run_all"')

    # A cap out of range (0, then above the maximum) is refused next to the cap field.
    page.goto(f"/schedules/{task.pk}/")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit schedule: {NAME}")
    expect(policy).to_have_value("run_all")
    expect(cap).to_have_value("24")
    for bad, problem in (("0", "greater than or equal to 1"), ("5000", "less than or equal to")):
        cap.fill(bad)
        page.get_by_role("button", name="Save").click()
        error = page.locator("#id_missed_cap_error")
        expect(error).to_contain_text(problem)
        expect(error.get_by_role("alert")).to_have_count(1)
        expect(page.locator(".missed-runs .has-error")).to_have_count(1)  # the cap's field only
        expect(cap).to_have_value(bad)  # kept, to be fixed in place
        expect(cap).to_have_attribute("aria-invalid", "true")
        assert stored() == (task, MissedRuns("run_all", 24), audits), f"cap {bad} changed it"

    # Switching to "skip" saves, and the page says so (no cap: it means nothing then).
    policy.select_option(label=SKIP)
    cap.fill("24")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved schedule {NAME}")
    expect(shown).to_have_text(SKIP)
    _, missed, after_skip = stored()
    assert missed == MissedRuns("skip", 24)
    assert after_skip == audits + 1
    edit = AuditEntry.objects.get(action="schedule.edit", target_id=str(task.pk))
    assert edit.details["before"] == {"missed_policy": "run_all"}
    assert edit.details["after"] == {"missed_policy": "skip"}

    # The admin's PeriodicTask form: the same fields, with the stored values; a bad cap is
    # refused on its field, a good one saves through the services (audited).
    page.goto(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")
    fieldset = page.locator("fieldset").filter(
        has=page.get_by_role("heading", name="Missed runs", exact=True)
    )
    expect(fieldset).to_have_count(1)
    admin_policy = page.locator("#id_missed_policy")
    admin_cap = page.locator("#id_missed_cap")
    expect(admin_policy).to_have_value("skip")
    expect(admin_cap).to_have_value("24")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()
    admin_policy.select_option(label=RUN_ALL)
    admin_cap.fill("5000")
    page.locator("input[name='_continue']").click()
    expect(page.locator(".field-missed_cap .errorlist")).to_contain_text("less than or equal to")
    expect(admin_cap).to_have_value("5000")
    assert stored() == (task, MissedRuns("skip", 24), after_skip)

    admin_cap.fill("50")
    page.locator("input[name='_continue']").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator(".errorlist")).to_have_count(0)
    expect(admin_policy).to_have_value("run_all")
    expect(admin_cap).to_have_value("50")
    _, missed, after_admin = stored()
    assert missed == MissedRuns("run_all", 50)
    assert after_admin == after_skip + 1
    latest = AuditEntry.objects.filter(action="schedule.edit", target_id=str(task.pk)).first()
    assert latest is not None
    assert latest.actor_label == "scheduler"
    assert latest.details["after"] == {"missed_policy": "run_all", "missed_cap": 50}

    page.goto(f"/schedules/{task.pk}/")
    expect(shown).to_have_text(re.compile(rf"^\s*{re.escape(RUN_ALL)}, at most 50\s*$"))
