"""Indexes for the runs history at millions of rows (measured with `python -m bench.history`).

- (actor_label, -queued_at, -id) and (schedule_name, -queued_at, -id): the "Launched by" and
  "Schedule" filters are free text; without them a rare value or a typo walked the whole
  history (at 1M runs: 120 ms for a value matching nothing, 25 ms for a 0.14% one).
- The plain job_name and schedule_name indexes (and, on PostgreSQL, their varchar_pattern_ops
  twins) go: the composite indexes leading with the same column serve every query, and each
  index costs the ledger's writes.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0002_builtin_schedules"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="job_name",
            field=models.CharField(max_length=255),
        ),
        migrations.AlterField(
            model_name="run",
            name="schedule_name",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                fields=["actor_label", "-queued_at", "-id"], name="run_actor_queued_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                fields=["schedule_name", "-queued_at", "-id"], name="run_schedule_queued_idx"
            ),
        ),
    ]
