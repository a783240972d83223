"""The worker runtime: what runs inside Celery (task class, request, heartbeat, result
backend, reaper), the ledger's state SQL (`lifecycle`), the one launch path (`enqueue`) and the
broker inspection (`broker`). It imports the job framework and the models, never services,
selectors, pages, the API or the admin (checked by import-linter in `make check`)."""
