"""The schedule entry beat keeps for each row: django-celery-beat's, writing only what beat owns.

After every send beat records the row's last run (CELERY_BEAT_SYNC_EVERY = 1). Stock
`ModelEntry.save()` reads the row, sets the last run and the run count on that copy, then saves
the whole row: an operator's edit committed between the read and the write (new parameters, a
pause) was silently undone, and beat went on firing the old one. Its `_disable()` saves the
whole copy beat loaded, however old. Here both write their own columns and nothing else, as the
services leave those columns to beat (`services.schedules._BEAT_OWNED`). Upstream:
celery/django-celery-beat#1038 (open) and #1069.
"""

from __future__ import annotations

from typing import Any

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry


class TaskdeckEntry(ModelEntry):
    def save(self) -> None:
        """Record the last run and the run count: one UPDATE of those two columns (no signal:
        beat's own bookkeeping is not a change of the schedule)."""
        model: Any = self.model
        PeriodicTask.objects.filter(pk=model.pk).update(
            last_run_at=model.last_run_at, total_run_count=model.total_run_count
        )

    def _disable(self, model: Any) -> None:
        """Disable a row beat cannot run (its schedule is gone, its arguments do not load, it
        expired), as PeriodicTask.save() would store it: not enabled, no last run."""
        model.no_changes = True
        model.enabled = False
        model.last_run_at = None
        PeriodicTask.objects.filter(pk=model.pk).update(enabled=False, last_run_at=None)
