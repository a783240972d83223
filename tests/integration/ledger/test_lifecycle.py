"""State only moves forward: final states are never overwritten, whatever the message order.

The rule lives in `lifecycle.accepts` and, as a WHERE clause, in every UPDATE; these tests check
both agree for every pair of states, and feed random message orders to a real database row.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks_app.models import FINAL_STATES, Run, RunState
from tasks_app.worker import lifecycle
from tests.support import ledger

EVENTS = [s for s in RunState if s is not RunState.PENDING]


def make_run(state: RunState = RunState.PENDING, retries: int = 0) -> Run:
    return ledger.make_run(state, job_name="t", retries=retries)


def apply(task_id: str, event: RunState, retries: int) -> None:
    """Deliver one message the way a worker, the reaper or an operator would."""
    if event is RunState.STARTED:
        first_seen = lifecycle.QueuedRun(task_id=task_id, job_name="t", params={}, args=[])
        lifecycle.mark_started(task_id, retries=retries, worker="w", first_seen=first_seen)
    elif event is RunState.PROGRESS:
        lifecycle.mark_progress(task_id, retries=retries, done=1, total=2, message="m")
    elif event is RunState.RETRY:
        lifecycle.mark_retry(task_id, retries=retries, error="again")
    else:
        lifecycle.mark_finished(task_id, event)


def test_final_states_accept_nothing() -> None:
    for current, new, a, b in itertools.product(FINAL_STATES, RunState, range(3), range(3)):
        assert not lifecycle.accepts(current, a, new, b)


def test_an_older_attempt_never_overwrites_a_newer_one() -> None:
    for current, new in itertools.product(RunState, RunState):
        if new not in FINAL_STATES:
            assert not lifecycle.accepts(current, 2, new, 1)


@pytest.mark.django_db
def test_the_database_rule_matches_the_rule_in_python() -> None:
    for current, new, cur_retries, new_retries in itertools.product(
        RunState, EVENTS, range(2), range(2)
    ):
        run = make_run(current, cur_retries)
        expected = lifecycle.accepts(current, cur_retries, new, new_retries)

        apply(run.task_id, new, new_retries)

        run.refresh_from_db()
        assert run.state == (new if expected else current), (current, cur_retries, new, new_retries)


messages = st.lists(st.tuples(st.sampled_from(EVENTS), st.integers(0, 3)), max_size=12)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=messages)
def test_random_message_orders_never_leave_a_final_state(
    messages: list[tuple[RunState, int]],
) -> None:
    run = make_run()
    first_final: RunState | None = None
    highest_retries = 0
    for event, retries in messages:
        apply(run.task_id, event, retries)
        run.refresh_from_db()
        if first_final is None and event in FINAL_STATES:
            first_final = event
        if first_final is not None:
            assert run.state == first_final  # final is final
        assert run.retries >= highest_retries  # never back to an older attempt
        highest_retries = run.retries


@pytest.mark.django_db
def test_a_late_started_after_success_changes_nothing() -> None:
    run = make_run()
    apply(run.task_id, RunState.STARTED, 0)
    lifecycle.mark_finished(run.task_id, RunState.SUCCESS)
    finished_at = Run.objects.get(pk=run.pk).finished_at

    apply(run.task_id, RunState.STARTED, 0)
    apply(run.task_id, RunState.PROGRESS, 0)
    apply(run.task_id, RunState.RETRY, 1)

    run.refresh_from_db()
    assert run.state == RunState.SUCCESS
    assert run.finished_at == finished_at
    assert run.attempts == 1


@pytest.mark.django_db
def test_cancelling_a_queued_run_makes_it_final_and_it_never_starts() -> None:
    run = make_run()

    outcome = lifecycle.request_cancel(run.task_id, by="ops", terminate=False)
    started = lifecycle.mark_started(
        run.task_id, retries=0, worker="w",
        first_seen=lifecycle.QueuedRun(task_id=run.task_id, job_name="t", params={}, args=[]),
    )  # fmt: skip

    run.refresh_from_db()
    assert outcome is lifecycle.CancelOutcome.REVOKED
    assert started is lifecycle.StartOutcome.FINAL
    assert run.state == RunState.REVOKED
    assert run.started_at is None
    assert run.cancel_requested_by == "ops"


@pytest.mark.django_db
def test_cancelling_a_running_run_flags_it_for_its_next_progress_point() -> None:
    run = make_run()
    apply(run.task_id, RunState.STARTED, 0)

    outcome = lifecycle.request_cancel(run.task_id, by="ops", terminate=False)
    cancelled = lifecycle.mark_progress(run.task_id, retries=0, done=1, total=9, message="")

    assert outcome is lifecycle.CancelOutcome.REQUESTED
    assert cancelled is True
    assert lifecycle.heartbeat([run.task_id]) == {run.task_id}
