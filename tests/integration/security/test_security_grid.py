"""Who may do what: every role against every action, through every way in (pages, the JSON API
with the role's own token, the Django admin). The rules (tasks_app/services):

- launch a job, and run a schedule now: tasks_app.launch_job
- retry one run, retry many: tasks_app.retry_run; cancel one or many: tasks_app.cancel_run
- create, edit, pause/resume, delete a schedule, and reset a declared one to what its code
  declares: tasks_app.manage_schedules
- API tokens: every staff user may create and revoke their own; someone else's token only a
  superuser may revoke (tokens are made in the dashboard, never through the API)
- a superuser has every permission; staff with none of them may browse but not act;
  a token carries exactly its user's permissions.
- on top (test_security_permissions.py): a job's own `permission=` for acting on and reading
  its runs and schedules (cleanup and send_email have theirs), superuser for anything on a plain
  Celery task that is not a registered job.

Each cell asserts either "allowed" (2xx/3xx and the effect happened) or "refused" (403, and
nothing changed: no run, schedule, token or audit entry was added, changed or removed).

In the admin, every role also holds django-celery-beat's own model permissions (add, change,
delete, view periodic tasks), so the cells show that the admin still applies Taskdeck's rule on
top of them. The admin refuses a form (add, change, delete) with 403; an action the user may not
use is not offered, and posting it anyway changes nothing ("No action selected.").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app import services
from tasks_app.models import ApiToken, AuditEntry, Run, RunState
from tasks_app.schedules.declared import BUILTIN, REAPER
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing, definition_of
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.support.shared_rows import module_rows, refetch, session_of, signed_in

pytestmark = pytest.mark.django_db

LAUNCH, RETRY, CANCEL, MANAGE = "launch_job", "retry_run", "cancel_run", "manage_schedules"
# Not permissions but the token rules: OWN, any staff user (every role); OTHERS', superusers only.
OWN, OTHERS = "own token", "someone else's token"
# role -> the one Taskdeck permission its group grants ("*": superuser, None: none at all)
ROLES: dict[str, str | None] = {
    "superuser": "*",
    "viewer": None,
    "launcher": LAUNCH,
    "retrier": RETRY,
    "canceller": CANCEL,
    "scheduler": MANAGE,
}
BEAT_MODEL_PERMS = (
    "add_periodictask", "change_periodictask", "delete_periodictask", "view_periodictask",
)  # fmt: skip
SCHEDULE = "grid schedule"
ADMIN_LIST = "/admin/django_celery_beat/periodictask/"


@dataclass
class World:
    """What every cell acts on, made before the cell acts."""

    client: Client
    token: str
    failed: Run  # retriable
    queued: Run  # cancellable
    schedule: PeriodicTask
    declared: PeriodicTask  # a built-in schedule, edited by hand: resettable
    own_token: ApiToken  # the role's own (the one `token` is), revocable by it
    others_token: ApiToken  # another user's

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.generic(
            method,
            f"/api/v1/{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )


def make_user(role: str, *, admin_access: bool) -> User:
    grant = ROLES[role]
    username = f"{role}-admin" if admin_access else role
    if grant == "*":
        return User.objects.create_superuser(username, password="x-Secret-123")
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    if grant is not None:
        group, _ = Group.objects.get_or_create(name=f"{role}s")
        group.permissions.add(
            Permission.objects.get(codename=grant, content_type__app_label="tasks_app")
        )
        user.groups.add(group)
    if admin_access:
        user.user_permissions.add(*Permission.objects.filter(codename__in=BEAT_MODEL_PERMS))
    return user


@dataclass(frozen=True)
class Member:
    """A user of one role (with or without beat's admin permissions): a signed-in session
    and the user's own API token."""

    session: str
    raw_token: str
    own_token: ApiToken


@dataclass(frozen=True)
class Shared:
    """What every cell acts on, and every role's user: made once for the module's cells."""

    failed: Run
    queued: Run
    schedule: PeriodicTask
    declared: PeriodicTask
    others_token: ApiToken
    members: dict[tuple[str, bool], Member]


@pytest.fixture(scope="module")
def shared(django_db_setup: None, django_db_blocker: Any) -> Iterator[Shared]:
    """Made once, each cell running inside a savepoint (tests.support.shared_rows): making
    them for each of the 180 cells took most of the grid's time."""
    with module_rows(django_db_blocker):
        yield make_shared()


def make_shared() -> Shared:
    now = timezone.now()
    failed = Run.objects.create(
        task_id="grid-failed", job_name="demo.flaky", state=RunState.FAILURE, queued_at=now,
        finished_at=now, params={"failure_rate": 1.0},
    )  # fmt: skip
    queued = Run.objects.create(
        task_id="grid-queued", job_name="demo.progress", state=RunState.PENDING, queued_at=now,
        params={"steps": 1, "step_seconds": 0.0},
    )  # fmt: skip
    owner = User.objects.create_superuser("owner", password="x-Secret-123")
    schedule = services.schedule_save(
        ScheduleDefinition(
            name=SCHEDULE, job="demo.progress",
            timing=Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="UTC"),
            params={"steps": 1, "step_seconds": 0.0},
        ),
        actor=Actor(user=owner),
    )  # fmt: skip
    # The reaper's: the cleanup job asks for a permission of its own (tasks_app.run_cleanup).
    builtin = PeriodicTask.objects.get(name=REAPER)  # synced by migrate
    declared = services.schedule_save(
        replace(definition_of(builtin), description="edited by hand"),
        actor=Actor(user=owner),
        task=builtin,
    )
    members = {}
    for role in ROLES:
        for admin_access in (False, True):
            user = make_user(role, admin_access=admin_access)
            own_token, raw = issue_token(user, "grid")
            members[role, admin_access] = Member(session_of(user), raw, own_token)
    others_token = issue_token(owner, "owner's")[0]
    return Shared(failed, queued, schedule, declared, others_token, members)


def world_of(shared: Shared, role: str, *, admin_access: bool) -> World:
    """The shared rows read afresh, and a new client signed in as the role's user."""
    member = shared.members[role, admin_access]
    return World(
        signed_in(member.session), member.raw_token, refetch(shared.failed),
        refetch(shared.queued), refetch(shared.schedule), refetch(shared.declared),
        refetch(member.own_token), refetch(shared.others_token),
    )  # fmt: skip


def state() -> tuple[Any, ...]:
    """Everything an action could change."""
    runs = sorted(Run.objects.values_list("task_id", "state", "cancel_requested_at"))
    schedules = sorted(
        PeriodicTask.objects.values_list("pk", "name", "enabled", "description", "kwargs")
    )
    # Not last_used_at: a refused API request still authenticated with its token.
    tokens = sorted(ApiToken.objects.values_list("pk", "user_id", "name", "revoked_at"))
    return runs, schedules, tokens, AuditEntry.objects.count()


# --- the actions: each does one thing and says whether its effect happened ---------------------


def editor_post(**changes: str) -> dict[str, str]:
    data = {
        "name": "made here", "job": "demo.progress", "kind": "crontab", "cron": "0 3 * * *",
        "timezone": "UTC", "period": "minutes", "enabled": "on", "description": "",
        "param-steps": "2", "param-step_seconds": "0",
    }  # fmt: skip
    data.update(changes)
    return data


def admin_form(**changes: str) -> dict[str, str]:
    interval, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
    data = {
        "name": "made in admin", "job": "demo.progress", "enabled": "on", "description": "",
        "interval": str(interval.pk), "crontab": "", "solar": "", "clocked": "",
        "start_time_0": "", "start_time_1": "", "expires_0": "", "expires_1": "",
        "expire_seconds": "", "queue": "", "priority": "", "exchange": "", "routing_key": "",
        "headers": "{}", "param-steps": "2", "param-step_seconds": "0",
    }  # fmt: skip
    data.update(changes)
    return data


def admin_action(w: World, action: str) -> Any:
    return w.client.post(
        ADMIN_LIST, {"action": action, "_selected_action": [w.schedule.pk], "index": "0"}
    )


def new_run_of(job: str) -> Callable[[World], bool]:
    return lambda w: Run.objects.filter(job_name=job).exclude(
        pk__in=[w.failed.pk, w.queued.pk]
    ).exists()  # fmt: skip


def retried(w: World) -> bool:
    return Run.objects.filter(retry_of=w.failed).exists()


def cancelled(w: World) -> bool:
    run = Run.objects.get(pk=w.queued.pk)
    return run.state == RunState.REVOKED or run.cancel_requested_at is not None


def schedule_named(name: str) -> Callable[[World], bool]:
    return lambda w: PeriodicTask.objects.filter(name=name).exists()


def described(w: World) -> bool:
    return PeriodicTask.objects.get(pk=w.schedule.pk).description == "changed"


def paused(w: World) -> bool:
    return not PeriodicTask.objects.get(pk=w.schedule.pk).enabled


def deleted(w: World) -> bool:
    return not PeriodicTask.objects.filter(pk=w.schedule.pk).exists()


def ran_now(w: World) -> bool:
    return Run.objects.filter(schedule_name=SCHEDULE).exists()


def reset(w: World) -> bool:
    return PeriodicTask.objects.get(pk=w.declared.pk).description == BUILTIN[REAPER].description


def token_named(name: str) -> Callable[[World], bool]:
    return lambda w: ApiToken.objects.filter(name=name).exists()


def revoked(which: str) -> Callable[[World], bool]:
    def effect(w: World) -> bool:
        token: ApiToken = getattr(w, which)
        return ApiToken.objects.get(pk=token.pk).revoked_at is not None

    return effect


@dataclass(frozen=True)
class Action:
    perm: str
    way: str  # "page", "api" or "admin"
    do: Callable[[World], Any]
    effect: Callable[[World], bool]
    admin_action: str = ""  # the admin changelist action's name, for admin actions


ACTIONS: dict[str, Action] = {
    # launch
    "launch page": Action(LAUNCH, "page", lambda w: w.client.post(
        "/jobs/demo.progress/", {"steps": "1", "step_seconds": "0"}), new_run_of("demo.progress")),
    "launch api": Action(LAUNCH, "api", lambda w: w.api(
        "POST", "runs", {"job": "demo.progress", "params": {"steps": 1, "step_seconds": 0}}),
        new_run_of("demo.progress")),
    # retry
    "retry page": Action(RETRY, "page", lambda w: w.client.post(
        f"/runs/{w.failed.task_id}/retry/"), retried),
    "retry api": Action(RETRY, "api", lambda w: w.api(
        "POST", f"runs/{w.failed.task_id}/retry"), retried),
    "bulk retry page": Action(RETRY, "page", lambda w: w.client.post(
        "/runs/bulk/", {"action": "retry", "run": [w.failed.pk]}), retried),
    "retry all failed page": Action(RETRY, "page", lambda w: w.client.post(
        "/runs/retry-failed/?job=demo.flaky"), retried),
    "bulk retry api": Action(RETRY, "api", lambda w: w.api(
        "POST", "runs/retry", {"task_ids": [w.failed.task_id]}), retried),
    # cancel
    "cancel page": Action(CANCEL, "page", lambda w: w.client.post(
        f"/runs/{w.queued.task_id}/cancel/"), cancelled),
    "cancel api": Action(CANCEL, "api", lambda w: w.api(
        "POST", f"runs/{w.queued.task_id}/cancel", {"terminate": False}), cancelled),
    "bulk cancel page": Action(CANCEL, "page", lambda w: w.client.post(
        "/runs/bulk/", {"action": "cancel", "run": [w.queued.pk]}), cancelled),
    # schedules: create, edit, pause, delete
    "schedule create page": Action(MANAGE, "page", lambda w: w.client.post(
        "/schedules/new/", editor_post()), schedule_named("made here")),
    "schedule create api": Action(MANAGE, "api", lambda w: w.api("POST", "schedules", {
        "name": "made here", "job": "demo.progress", "params": {"steps": 2},
        "timing": {"kind": "crontab", "cron": "0 3 * * *", "timezone": "UTC"}}),
        schedule_named("made here")),
    "schedule create admin": Action(MANAGE, "admin", lambda w: w.client.post(
        f"{ADMIN_LIST}add/", admin_form()), schedule_named("made in admin")),
    "schedule edit page": Action(MANAGE, "page", lambda w: w.client.post(
        f"/schedules/{w.schedule.pk}/edit/",
        editor_post(name=SCHEDULE, cron="30 2 * * 1-5", description="changed")), described),
    "schedule edit api": Action(MANAGE, "api", lambda w: w.api(
        "PATCH", f"schedules/{w.schedule.pk}", {"description": "changed"}), described),
    "schedule edit admin": Action(MANAGE, "admin", lambda w: w.client.post(
        f"{ADMIN_LIST}{w.schedule.pk}/change/", admin_form(name=SCHEDULE, description="changed")),
        described),
    "schedule toggle page": Action(MANAGE, "page", lambda w: w.client.post(
        f"/schedules/{w.schedule.pk}/toggle/", {"enabled": "0"}), paused),
    "schedule bulk pause page": Action(MANAGE, "page", lambda w: w.client.post(
        "/schedules/bulk/", {"action": "disable", "schedule": [w.schedule.pk]}), paused),
    "schedule toggle api": Action(MANAGE, "api", lambda w: w.api(
        "PATCH", f"schedules/{w.schedule.pk}", {"enabled": False}), paused),
    "schedule toggle admin": Action(MANAGE, "admin", lambda w: admin_action(w, "disable_tasks"),
        paused, admin_action="disable_tasks"),
    "schedule delete page": Action(MANAGE, "page", lambda w: w.client.post(
        f"/schedules/{w.schedule.pk}/delete/"), deleted),
    "schedule delete api": Action(MANAGE, "api", lambda w: w.api(
        "DELETE", f"schedules/{w.schedule.pk}"), deleted),
    "schedule delete admin": Action(MANAGE, "admin", lambda w: w.client.post(
        f"{ADMIN_LIST}{w.schedule.pk}/delete/", {"post": "yes"}), deleted),
    "schedule reset page": Action(MANAGE, "page", lambda w: w.client.post(
        f"/schedules/{w.declared.pk}/reset/"), reset),
    # schedules: run now launches, so it needs the launch permission
    "schedule run now page": Action(LAUNCH, "page", lambda w: w.client.post(
        f"/schedules/{w.schedule.pk}/run/"), ran_now),
    "schedule run now api": Action(LAUNCH, "api", lambda w: w.api(
        "POST", f"schedules/{w.schedule.pk}/run"), ran_now),
    "schedule run now admin": Action(LAUNCH, "admin", lambda w: admin_action(w, "run_tasks"),
        ran_now, admin_action="run_tasks"),
    # API tokens: the role's own, and someone else's
    "token create page": Action(OWN, "page", lambda w: w.client.post(
        "/tokens/", {"name": "made here"}), token_named("made here")),
    "token revoke own page": Action(OWN, "page", lambda w: w.client.post(
        f"/tokens/{w.own_token.pk}/revoke/"), revoked("own_token")),
    "token revoke others page": Action(OTHERS, "page", lambda w: w.client.post(
        f"/tokens/{w.others_token.pk}/revoke/"), revoked("others_token")),
}  # fmt: skip


def allowed(role: str, action: Action) -> bool:
    return action.perm == OWN or ROLES[role] in ("*", action.perm)


CELLS = [
    pytest.param(role, name, id=f"{role}-{name.replace(' ', '_')}")
    for name in ACTIONS
    for role in ROLES
]


@pytest.mark.parametrize(("role", "name"), CELLS)
def test_role_by_action(shared: Shared, broker: str, role: str, name: str) -> None:
    action = ACTIONS[name]
    world = world_of(shared, role, admin_access=action.way == "admin")
    before = state()

    response = action.do(world)

    if allowed(role, action):
        assert response.status_code in {200, 201, 204, 302}, (response.status_code, response)
        if response.status_code == 200 and action.way != "api":
            pytest.fail(f"{name}: 200 is a form shown again, not a done action")
        assert action.effect(world), f"{role} may {name}, but it did not happen"
        if action.way == "page" and name != "schedule delete page":
            messages = [m.level_tag for m in get_messages(response.wsgi_request)]
            assert "error" not in messages, [str(m) for m in get_messages(response.wsgi_request)]
        return
    if action.admin_action:
        # Not offered in the changelist; posted anyway, nothing happens.
        page = world.client.get(ADMIN_LIST).content.decode()
        assert f'value="{action.admin_action}"' not in page
        assert response.status_code in {200, 302}
    else:
        assert response.status_code == 403, (role, name, response.status_code)
    assert not action.effect(world)
    assert state() == before, f"{role} was refused {name}, yet something changed"


def test_every_role_and_action_has_a_cell() -> None:
    assert len(CELLS) == len(ROLES) * len(ACTIONS)
    for perm in (LAUNCH, RETRY, CANCEL, MANAGE):
        for way in ("page", "api"):
            assert any(a.perm == perm and a.way == way for a in ACTIONS.values()), (perm, way)


def test_the_admin_needs_taskdecks_permission_as_well_as_its_own(shared: Shared) -> None:
    """Managing schedules without beat's model permissions: the admin refuses (its own rule);
    the dashboard and the API are where such a user manages them."""
    world = world_of(shared, "scheduler", admin_access=False)
    client = world.client
    before = state()

    listing = client.get(ADMIN_LIST)
    add = client.post(f"{ADMIN_LIST}add/", admin_form())
    change = client.post(f"{ADMIN_LIST}{world.schedule.pk}/change/", admin_form(name=SCHEDULE))

    assert (listing.status_code, add.status_code, change.status_code) == (403, 403, 403)
    assert state() == before
