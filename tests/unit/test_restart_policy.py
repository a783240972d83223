"""The dev stack's restart policy (issue 16): backoff, crash-loop limit, settings from the
environment."""

from __future__ import annotations

import pytest

from tasks_app.devstack.restart_policy import PolicyError, RestartPolicy, Verdict


def test_backoff_doubles_from_the_delay_and_stops_at_the_cap() -> None:
    policy = RestartPolicy(delay=1, max_delay=30)

    assert [policy.backoff(n) for n in range(9)] == [1, 1, 2, 4, 8, 16, 30, 30, 30]


def test_quick_exits_back_off_then_give_up_at_the_crash_limit() -> None:
    policy = RestartPolicy(delay=1, max_delay=30, crash_limit=5, crash_window=10)
    streak, delays = 0, []
    for _ in range(5):
        verdict = policy.after_exit(streak, uptime=0.5)
        streak = verdict.quick_exits
        delays.append(verdict.restart_in)

    assert delays == [1, 2, 4, 8, None]  # the fifth quick exit in a row: a crash loop
    assert streak == 5


def test_a_long_lived_process_that_dies_resets_the_count() -> None:
    policy = RestartPolicy(delay=1, crash_limit=3, crash_window=10)

    after_two_quick = policy.after_exit(policy.after_exit(0, 1).quick_exits, 1)
    long_lived = policy.after_exit(after_two_quick.quick_exits, uptime=3600)
    quick_again = policy.after_exit(long_lived.quick_exits, uptime=1)

    assert after_two_quick == Verdict(quick_exits=2, restart_in=2)
    assert long_lived == Verdict(quick_exits=0, restart_in=1)
    assert quick_again == Verdict(quick_exits=1, restart_in=1)


def test_an_exit_at_the_window_is_not_quick() -> None:
    policy = RestartPolicy(crash_limit=1, crash_window=10)

    assert policy.after_exit(0, uptime=9.9).restart_in is None
    assert policy.after_exit(0, uptime=10).restart_in == 1


def test_defaults_and_environment_overrides() -> None:
    assert RestartPolicy.from_env({}) == RestartPolicy(
        delay=1, max_delay=30, crash_limit=5, crash_window=10
    )
    env = {
        "TASKDECK_DEVSTACK_RESTART_DELAY": "0.5",
        "TASKDECK_DEVSTACK_RESTART_MAX_DELAY": "4",
        "TASKDECK_DEVSTACK_CRASH_LIMIT": "3",
        "TASKDECK_DEVSTACK_CRASH_WINDOW": " 20 ",
        "TASKDECK_DEVSTACK_UNRELATED": "x",
    }
    assert RestartPolicy.from_env(env) == RestartPolicy(
        delay=0.5, max_delay=4, crash_limit=3, crash_window=20
    )
    assert RestartPolicy.from_env({"TASKDECK_DEVSTACK_CRASH_LIMIT": ""}).crash_limit == 5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RESTART_DELAY", "soon", "TASKDECK_DEVSTACK_RESTART_DELAY must be a number of seconds"),
        ("RESTART_DELAY", "-1", "TASKDECK_DEVSTACK_RESTART_DELAY must be at least 0"),
        ("RESTART_MAX_DELAY", "nan", "TASKDECK_DEVSTACK_RESTART_MAX_DELAY must be a number of"),
        ("CRASH_LIMIT", "2.5", "TASKDECK_DEVSTACK_CRASH_LIMIT must be a whole number"),
        ("CRASH_LIMIT", "0", "TASKDECK_DEVSTACK_CRASH_LIMIT must be at least 1"),
        ("CRASH_WINDOW", "inf", "TASKDECK_DEVSTACK_CRASH_WINDOW must be a number of seconds"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        RestartPolicy.from_env({f"TASKDECK_DEVSTACK_{name}": value})
