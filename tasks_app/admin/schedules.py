"""django-celery-beat's PeriodicTask admin, made to follow Taskdeck's rules.

A schedule of a registered job is edited with the job chooser and the job's own parameter form
(`schedule_forms`); beat's own schedule rows (interval, crontab, solar, clocked) and options
stay as in the stock admin. The raw task name and JSON args/kwargs are for superusers only, on
schedules of plain Celery tasks; others see those read-only.

Every write goes through the services, so the permission checks (`tasks_app.manage_schedules`,
the job's own permission) and the audit trail with the values before and after are the
dashboard's: saving (`periodic_task_save`), enabling and pausing (`schedules_toggle`), running
now (`schedule_run_now`) and deleting (`schedule_delete`, which refuses schedules declared in
code). The missed-run policy is edited beside the row, on both forms ("Missed runs").
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as stock_delete_selected
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django_celery_beat.admin import PeriodicTaskAdmin as StockPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from .. import services
from ..jobs.registry import find_job, masked_params
from ..schedules.definition import definition_of
from ..schedules.missed import missed_runs_of
from ..services import Actor, AlreadyActive, PermissionDenied
from ..services.schedules import MANAGE, periodic_task_save, require_job_permission
from .schedule_forms import JobScheduleForm, PlainTaskForm

LAUNCH = "tasks_app.launch_job"


class PeriodicTaskAdmin(StockPeriodicTaskAdmin):
    # (The stock class's attributes have narrower inferred types than ModelAdmin's.)
    form = JobScheduleForm  # type: ignore[assignment]
    change_form_template = "admin/django_celery_beat/periodictask/change_form.html"
    actions = (  # type: ignore[assignment]
        "enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks", "delete_selected",
    )  # fmt: skip

    # --- who may do what (the services decide again on every write)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_add_permission(request)) and _actor(request).has_perm(MANAGE)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = bool(super().has_change_permission(request, obj))
        return allowed and _may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = bool(super().has_delete_permission(request, obj))
        return allowed and _may_edit(request, obj)

    def has_run_permission(self, request: HttpRequest) -> bool:
        return _actor(request).has_perm(LAUNCH)

    # --- the form

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = obj is None or self.has_change_permission(request, obj)
        missed: tuple[str, ...] = ("missed_policy", "missed_cap") if editable else ("missed_runs",)
        missed_set = ("Missed runs", {"fields": missed, "classes": ("extrapretty", "wide")})
        if _plain(request, obj):
            return (*super().get_fieldsets(request, obj), missed_set)  # the stock ones
        what: tuple[str, ...] = ("name", "job", "enabled", "description")
        if obj is not None and not self.has_change_permission(request, obj):
            what = ("name", "task", "parameters", "enabled", "description")  # read-only
        options: tuple[str, ...] = ("expires", "expire_seconds", "queue", "priority")
        if request.user.is_superuser:
            options += ("exchange", "routing_key", "headers")
        schedule = (
            "interval", "crontab", "crontab_translation", "solar", "clocked", "start_time",
            "last_run_at", "one_off",
        )  # fmt: skip
        return (
            (None, {"fields": what, "classes": ("extrapretty", "wide")}),
            ("Schedule", {"fields": schedule, "classes": ("extrapretty", "wide")}),
            ("Execution options", {"fields": options, "classes": ("extrapretty", "wide")}),
            missed_set,
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = PlainTaskForm if _plain(request, obj) else JobScheduleForm
        kwargs["form"] = type(base.__name__, (base,), {"actor": _actor(request)})
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="Parameters")
    def parameters(self, task: PeriodicTask) -> str:
        return json.dumps(masked_params(task.task, definition_of(task).params))

    @admin.display(description="Missed runs")
    def missed_runs(self, task: PeriodicTask) -> str:
        return missed_runs_of(task).in_words()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        task = self.get_object(request, unquote(object_id)) if object_id else None
        plain = _plain(request, task)
        editable = self.has_change_permission(request, task) if task else True
        context = {
            **(extra_context or {}),
            "show_job_params": not plain and editable,
            "offer_plain": task is None and request.user.is_superuser,
            "plain": plain,
            "plain_read_only": plain and task is not None and not editable,
        }
        if request.method == "GET":
            _note_missing_permission(request)
        try:
            response: HttpResponse = super().changeform_view(  # type: ignore[no-untyped-call]
                request, object_id, form_url, context
            )
        except (services.ServiceError, services.ParamsError) as error:
            # Refused at save time (the form checks the same rules first): nothing is stored.
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            _note_missing_permission(request)
        response: HttpResponse = super().changelist_view(  # type: ignore[no-untyped-call]
            request, extra_context
        )
        return response

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        missed = form.missed_runs() if hasattr(form, "missed_runs") else None
        periodic_task_save(obj, actor=_actor(request), missed=missed)

    # --- deleting

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.schedule_delete(obj, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = _actor(request)
        for task in queryset:
            try:
                services.schedule_delete(task, actor=actor)
            except services.ServiceError as error:
                self.message_user(request, str(error), messages.ERROR)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        task = self.get_object(request, unquote(object_id))
        change_url = reverse("admin:django_celery_beat_periodictask_change", args=[object_id])
        if task is not None and _declared_names([task.pk]):
            self.message_user(request, _refusal([task.name]), messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            response: HttpResponse = super().delete_view(request, object_id, extra_context)
        except services.ServiceError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(change_url)
        return response

    @admin.action(description="Delete selected periodic tasks", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        declared = _declared_names(list(queryset.values_list("pk", flat=True)))
        if declared:
            self.message_user(request, f"Nothing was deleted. {_refusal(declared)}", messages.ERROR)
            return None
        return stock_delete_selected(self, request, queryset)

    # --- actions

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._toggle(request, queryset, True)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._toggle(request, queryset, False)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._toggle(request, queryset, None)

    def _toggle(self, request: HttpRequest, queryset: QuerySet[Any], enabled: bool | None) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        try:
            changed = services.schedules_toggle(ids, actor=_actor(request), enabled=enabled)
        except (PermissionDenied, services.ServiceError) as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        verb = {True: "enabled", False: "disabled", None: "toggled"}[enabled]
        note = f" ({len(ids) - len(changed)} already were)" if enabled is not None else ""
        note = note if len(changed) < len(ids) else ""
        self.message_user(request, f"{len(changed)} schedule(s) {verb}{note}.", messages.SUCCESS)

    @admin.action(description="Run selected tasks now", permissions=["run"])
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = _actor(request)
        launched: list[tuple[str, str, str]] = []
        for task in queryset.order_by("name"):
            try:
                run = services.schedule_run_now(task, actor=actor)
            except services.BrokerUnavailable:
                problem = "the broker is unavailable, so nothing was queued."
            except services.ParamsError as error:
                problem = f"its parameters are not valid for its job: {error}"
            except (PermissionDenied, AlreadyActive, services.ServiceError) as error:
                problem = str(error)
            else:
                url = reverse("tasks_app:run", args=[run.task_id])
                launched.append((task.name, url, run.task_id))
                continue
            self.message_user(request, f"“{task.name}”: {problem}", messages.ERROR)
        if launched:
            runs = format_html_join(", ", '“{}” (<a href="{}">{}</a>)', launched)
            self.message_user(
                request,
                format_html("Launched {} run(s): {}", len(launched), runs),
                messages.SUCCESS,
            )


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=request.user)


def _plain(request: HttpRequest, task: PeriodicTask | None) -> bool:
    """Edited as the stock raw form: a stored schedule of a task that is not a registered job,
    or a new one a superuser asked for with ?plain=1."""
    if task is not None:
        return find_job(task.task) is None
    return bool(request.user.is_superuser and request.GET.get("plain") == "1")


def _may_edit(request: HttpRequest, task: PeriodicTask | None) -> bool:
    """Manages schedules, and may schedule this one's job (superusers: any plain task)."""
    actor = _actor(request)
    if not actor.has_perm(MANAGE):
        return False
    if task is None:
        return True
    if find_job(task.task) is None:
        return bool(request.user.is_superuser)
    try:
        require_job_permission(actor, task.task)  # as every service that writes it does
    except PermissionDenied:
        return False
    return True


def _note_missing_permission(request: HttpRequest) -> None:
    """Say why a user with beat's own change permission can only look."""
    user = request.user
    beat_perms = ("django_celery_beat.change_periodictask", "django_celery_beat.add_periodictask")
    if not _actor(request).has_perm(MANAGE) and any(user.has_perm(p) for p in beat_perms):
        messages.warning(
            request,
            "You can only view schedules here: changing them needs the permission "
            "“Can manage schedules” (tasks_app.manage_schedules).",
        )


def _declared_names(ids: list[int]) -> list[str]:
    found = PeriodicTask.objects.filter(pk__in=ids, declaration__isnull=False)
    return sorted(found.values_list("name", flat=True))


def _refusal(names: list[str]) -> str:
    listed = ", ".join(repr(name) for name in names)
    return (
        f"Declared in code, so it would come back at the next restart: {listed}. "
        "Disable it instead, or remove it from the code."
    )


if admin.site.is_registered(PeriodicTask):
    admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
