"""Bind every stored sealed value to the job and parameter it belongs to, and seal what should
have been sealed.

Until now a sealed value did not say what it was for, so one copied to another parameter or
job was accepted; validation now refuses a token not sealed for its place, so the tokens stored
in runs (a retry re-sends them) and schedules (beat sends them) are re-sealed bound to where
they are. Parameters marked sensitive with `@job(sensitive=[...])` on a function job were
masked but stored in clear: those values are sealed now. A token this deployment's keys cannot
open is left as it is (the run or schedule then says to enter the value again)."""

import json
from typing import Any

from django.db import migrations
from django.utils import timezone


def bind_sealed(apps: Any, schema_editor: Any) -> None:
    from tasks_app.jobs.registry import all_jobs
    from tasks_app.jobs.sealing import SealError, is_sealed, open_sealed, seal

    sensitive = {spec.name: spec.sensitive for spec in all_jobs() if spec.sensitive}

    def bound(job: str, params: dict[str, Any]) -> dict[str, Any] | None:
        changed: dict[str, Any] = {}
        for name, value in params.items():
            if is_sealed(value):
                try:
                    opened = open_sealed(value)
                except SealError:
                    continue
                if opened.bound_to is None:
                    changed[name] = seal(opened.value, job, name)
            elif name in sensitive.get(job, ()) and value not in (None, "", []):
                changed[name] = seal(value, job, name)
        return {**params, **changed} if changed else None

    run_model = apps.get_model("tasks_app", "Run")
    runs = run_model.objects.filter(job_name__in=list(sensitive)).only("pk", "job_name", "params")
    for run in runs.iterator(chunk_size=500):
        new = bound(run.job_name, run.params) if isinstance(run.params, dict) else None
        if new is not None:
            run_model.objects.filter(pk=run.pk).update(params=new)
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    tasks = task_model.objects.filter(task__in=list(sensitive)) | task_model.objects.filter(
        kwargs__contains='"$sealed"'
    )
    rewritten = 0
    for task in tasks.only("pk", "task", "kwargs").iterator(chunk_size=500):
        try:
            kwargs = json.loads(task.kwargs or "{}")
        except ValueError:
            continue
        new = bound(task.task, kwargs) if isinstance(kwargs, dict) else None
        if new is not None:
            task_model.objects.filter(pk=task.pk).update(kwargs=json.dumps(new))
            rewritten += 1
    if rewritten:
        # A queryset update sends no signal: tell a running beat to re-read its schedules, or
        # it keeps sending the unbound tokens it cached, which validation now refuses.
        apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
            ident=1, defaults={"last_update": timezone.now()}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0008_permissions_and_token_expiry"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(bind_sealed, migrations.RunPython.noop)]
