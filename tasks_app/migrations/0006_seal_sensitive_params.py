"""Seal the sensitive parameter values stored before sealing existed (runs and schedules),
so none stays readable at rest. Values already sealed are left as they are."""

import json
from typing import Any

from django.db import migrations


def seal_stored(apps: Any, schema_editor: Any) -> None:
    from tasks_app.jobs.registry import all_jobs
    from tasks_app.jobs.sealing import is_sealed, seal

    sensitive = {spec.name: spec.sensitive for spec in all_jobs() if spec.sensitive}
    if not sensitive:
        return

    def sealed(params: dict[str, Any], names: frozenset[str]) -> dict[str, Any] | None:
        changed = {
            k: seal(v)
            for k, v in params.items()
            if k in names and v not in (None, "", []) and not is_sealed(v)
        }
        return {**params, **changed} if changed else None

    run_model = apps.get_model("tasks_app", "Run")
    for run in run_model.objects.filter(job_name__in=list(sensitive)).iterator(chunk_size=500):
        new = sealed(run.params or {}, sensitive[run.job_name])
        if new is not None:
            run_model.objects.filter(pk=run.pk).update(params=new)
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for task in task_model.objects.filter(task__in=list(sensitive)):
        try:
            kwargs = json.loads(task.kwargs or "{}")
        except ValueError:
            continue
        new = sealed(kwargs, sensitive[task.task]) if isinstance(kwargs, dict) else None
        if new is not None:
            task_model.objects.filter(pk=task.pk).update(kwargs=json.dumps(new))


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0005_api_tokens"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seal_stored, migrations.RunPython.noop)]
