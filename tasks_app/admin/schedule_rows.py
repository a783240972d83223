"""Beat's shared schedule rows (crontab, interval, clocked, solar): view-only admins that keep
the stock admins' columns and fields, each listing the schedules using the row."""

from __future__ import annotations

from typing import Any

# Registers the stock admins first: their classes are extended below, not dropped.
import django_celery_beat.admin  # noqa: F401
from django.contrib import admin
from django.http import HttpRequest
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)


class _ReadOnlyTasksInline(admin.TabularInline):  # type: ignore[type-arg]
    """The schedules using a row, listed (each links to its own, service-checked, page).

    Name and task only: django-celery-beat's own inline also shows args and kwargs raw, i.e.
    sealed values, restricted jobs' parameters and plain tasks' arguments."""

    model = PeriodicTask
    fields = readonly_fields = ("name", "task")
    can_delete = False
    extra = 0
    show_change_link = True
    verbose_name = verbose_name_plural = "Schedules using this row"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SharedScheduleRowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A crontab, interval, clocked or solar row is shared by every schedule using it, so
    changing or deleting it (deleting cascades to those schedules) would change them all with
    no service check and no audit. Adding one stays possible (a new row changes no schedule),
    so the periodic task form's "+" beside each timing still works; browsing too."""

    inlines = (_ReadOnlyTasksInline,)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


for _model in (CrontabSchedule, IntervalSchedule, ClockedSchedule, SolarSchedule):
    _stock = type(admin.site._registry[_model]) if admin.site.is_registered(_model) else None
    _bases = (SharedScheduleRowAdmin,) if _stock is None else (SharedScheduleRowAdmin, _stock)
    if _stock is not None:
        admin.site.unregister(_model)
    # The stock class's columns and fields; no change or delete.
    admin.site.register(_model, type(f"Shared{_model.__name__}Admin", _bases, {}))
