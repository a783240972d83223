"""Alerting: evaluate rules against the ledger and the schedules (`evaluate`), group and throttle
what fires into messages (`messages`), and send messages to channels with retries (`delivery`,
`channels`).

It sits beside the worker runtime: the worker calls `evaluate.on_run_final` when a run fails or
is lost, and the built-in jobs `taskdeck.evaluate_alerts` / `taskdeck.deliver_alerts` do the
rest. Nothing here imports the worker package.
"""
