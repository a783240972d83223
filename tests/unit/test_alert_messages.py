"""What an alert message says: errors cut to one line, deadlines in words, the payload's shape."""

from __future__ import annotations

from datetime import UTC, datetime

from tasks_app.alerts.firing import duration
from tasks_app.alerts.messages import (
    ERROR_CHARS,
    PAYLOAD_ALERTS,
    SUBJECT_CHARS,
    build_payload,
    first_line,
    subject_for,
)
from tasks_app.models import Alert, AlertEvent, AlertRule, AlertRuleKind


def test_an_error_is_cut_to_its_first_line_and_at_most_300_characters() -> None:
    assert first_line("\n  ValueError: bad  \nTraceback (most recent call last):\n...") == (
        "ValueError: bad"
    )
    long = first_line("x" * 1000)
    assert len(long) == ERROR_CHARS
    assert long.endswith("…")
    assert first_line("") == ""


def test_deadlines_read_in_the_unit_that_fits() -> None:
    assert [duration(s) for s in (45, 119, 120, 300, 7199, 7200, 9000)] == [
        "45 s", "119 s", "2 min", "5 min", "119 min", "2 h", "2 h 30 min",
    ]  # fmt: skip


def test_a_payload_lists_at_most_20_alerts_and_counts_the_rest() -> None:
    rule = AlertRule(pk=7, name="Nightly", kind=AlertRuleKind.RUN_FAILED)
    fired = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    alerts = [
        Alert(pk=n, summary=f"job {n} failed", job_name="demo.flaky", fired_at=fired,
              details={"task_id": f"t{n}", "state": "FAILURE"})
        for n in range(25)
    ]  # fmt: skip

    payload = build_payload(AlertEvent.FIRED, "subject", rule, alerts, 25)

    assert payload["rule"] == {"id": 7, "name": "Nightly", "kind": "run_failed"}
    assert (payload["event"], payload["alert_count"], payload["more"]) == ("fired", 25, 5)
    assert len(payload["alerts"]) == PAYLOAD_ALERTS
    assert payload["alerts"][0] == {
        "id": 0, "summary": "job 0 failed", "job": "demo.flaky", "schedule": None,
        "task_id": "t0", "state": "FAILURE", "url": None,  # no TASKDECK_BASE_URL set
        "fired_at": "2026-01-02T03:04:05+00:00", "resolved_at": None,
    }  # fmt: skip


def test_subjects_name_the_rule_and_one_alert_or_a_count_and_stay_short() -> None:
    rule = AlertRule(name="R", kind=AlertRuleKind.RUN_FAILED)
    one = [Alert(summary="demo.flaky failed: boom")]
    assert subject_for(rule, AlertEvent.FIRED, one, 1) == "[Taskdeck] R: demo.flaky failed: boom"
    assert subject_for(rule, AlertEvent.RESOLVED, one * 3, 3) == "[Taskdeck] Resolved: R: 3 alerts"
    long = subject_for(rule, AlertEvent.FIRED, [Alert(summary="y" * 500)], 1)
    assert len(long) == SUBJECT_CHARS
