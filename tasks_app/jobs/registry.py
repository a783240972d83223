"""`@job`: a Celery task together with the spec the dashboard needs to launch it.

The task's class is the Celery app's default (`task_cls`, Taskdeck's ledger task class, checked
by `tasks_app.checks`), so the job framework never imports the worker runtime: the runtime
imports it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import current_app, shared_task
from django import forms
from django.utils.crypto import salted_hmac

from .context import JobContext, RecordingStore
from .errors import NEVER_RETRIED, BadInput, UnknownJob
from .params import MASK as MASK  # re-exported: what pages and the API show for a secret
from .params import ParamSchema, ParamsError
from .policies import RetryPolicy, check_queue, retry_policy
from .sealing import is_sealed

_REGISTRY: dict[str, JobSpec] = {}


@dataclass(frozen=True)
class JobSpec:
    name: str
    title: str
    description: str
    func: Callable[..., Any]
    params: ParamSchema
    queue: str
    retry: RetryPolicy
    soft_time_limit: int | None = None
    time_limit: int | None = None
    unique: bool = False
    unique_key: Callable[[Mapping[str, Any]], str] | None = None
    idempotent: bool = False
    permission: str | None = None
    ledger: bool = True
    # At most this many runs at once across all workers (None: no limit); an operator's
    # JobLimit row overrides it at runtime.
    concurrency: int | None = None

    def key_for(self, params: Mapping[str, Any]) -> str | None:
        """The uniqueness key of a launch with these (JSON) parameters, if the job is unique."""
        if self.unique_key is None and not self.unique:
            return None
        values = self.params.unsealed(params)  # the same values, however they were sealed
        if self.unique_key is not None:
            return f"{self.name}:{self.unique_key(values)}"[:255]
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
        # Keyed, so the key of a run with a sensitive parameter cannot be matched offline
        # against guesses of its value.
        return f"{self.name}:{salted_hmac('taskdeck.unique-key', canonical).hexdigest()}"

    @property
    def sensitive(self) -> frozenset[str]:
        """The sensitive parameters: the schema's, the one source for sealing, masking and
        the write-only widgets (`@job(sensitive=...)` marks them there)."""
        return self.params.sensitive

    def mask(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters with every sensitive value hidden (as `masked_params`)."""
        return self.params.mask(params)

    @property
    def task(self) -> Any:
        return current_app.tasks[self.name]


def job(
    name: str | None = None,
    *,
    title: str | None = None,
    description: str | None = None,
    queue: str = "default",
    retry: str | RetryPolicy = "standard",
    soft_time_limit: int | None = None,
    time_limit: int | None = None,
    unique: bool = False,
    unique_key: Callable[[Mapping[str, Any]], str] | None = None,
    sensitive: Iterable[str] = (),
    idempotent: bool = False,
    permission: str | None = None,
    form: type[forms.Form] | None = None,
    ledger: bool = True,
    concurrency: int | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """Register `func(ctx, **params)` as a job and a Celery task named `name`.

    Idempotent jobs are acknowledged late and re-queued if their worker dies; others are
    acknowledged on receipt, so a lost worker never runs them twice (at most once).
    `ledger=False` is for frequent housekeeping (the reaper): its runs are neither recorded nor
    stored as results, so they do not bury the history; what it changes goes to the audit trail.
    `concurrency=N`: at most N runs of the job execute at once across all workers; the others
    wait in the queue for a slot (`tasks_app.worker.slots`).
    """
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise ValueError(f"concurrency must be a positive integer, not {concurrency!r}.")

    def decorate(func: Callable[..., Any]) -> Any:
        task_name = name or f"{func.__module__}.{func.__name__}"
        if task_name in _REGISTRY:
            raise ValueError(f"A job named {task_name!r} is already registered.")
        schema = (
            ParamSchema.from_form(form, sensitive=sensitive, job=task_name)
            if form is not None
            else ParamSchema.from_function(func, job=task_name, sensitive=sensitive)
        )
        policy = retry_policy(retry)
        spec = JobSpec(
            name=task_name,
            title=title or task_name,
            description=description if description is not None else (func.__doc__ or "").strip(),
            func=func,
            params=schema,
            queue=check_queue(queue),
            retry=policy,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
            unique=unique,
            unique_key=unique_key,
            idempotent=idempotent,
            permission=permission,
            ledger=ledger,
            concurrency=concurrency,
        )
        _REGISTRY[task_name] = spec
        options: dict[str, Any] = {
            "name": task_name,
            "bind": True,
            "acks_late": idempotent,
            "reject_on_worker_lost": idempotent,
            **policy.celery_options(),
        }
        if not ledger:
            options.update(ignore_result=True, track_started=False)
        if policy.max_retries:
            options.update(autoretry_for=(Exception,), dont_autoretry_for=NEVER_RETRIED)
        if soft_time_limit is not None:
            options["soft_time_limit"] = soft_time_limit
        if time_limit is not None:
            options["time_limit"] = time_limit

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            return run_job_body(self, spec, args, kwargs)

        run.__name__ = func.__name__
        run.__doc__ = func.__doc__
        run.__module__ = func.__module__
        return shared_task(**options)(run)

    return decorate


def run_job_body(task: Any, spec: JobSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Turn the message's JSON parameters into typed values and call the job with a context:
    the worker's (the task class puts it on the request), or a recording one when called
    directly, outside a worker."""
    if args:
        raise BadInput(f"{spec.name} takes keyword parameters only.")
    values: dict[str, Any] = {}
    # A job without parameters, sent none, has nothing to convert: skip building its form.
    if kwargs or spec.params.params:
        try:
            values = spec.params.to_python(kwargs)
        except ParamsError as error:
            raise BadInput(f"Invalid parameters for {spec.name}: {error}") from error
    ctx = getattr(task.request, "taskdeck_context", None)
    if ctx is None:
        ctx = JobContext(task_id="direct-call", job_name=spec.name, store=RecordingStore())
    return ctx.result_with_counters(spec.func(ctx, **values))


def get_job(name: str) -> JobSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownJob(f"No job named {name!r}.") from None


def find_job(name: str) -> JobSpec | None:
    return _REGISTRY.get(name)


def masked_params(job_name: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` (a run's or a schedule's JSON kwargs) as every page, API answer, admin page,
    audit entry, result row and export shows them: sensitive values, and any sealed value
    (even of a job no longer registered), replaced by a mask. The one masking helper."""
    spec = _REGISTRY.get(job_name) if job_name else None
    if spec is not None:
        return spec.params.mask(params)
    return {k: MASK if is_sealed(v) else v for k, v in params.items()}


def all_jobs() -> list[JobSpec]:
    """Every registered job, by title."""
    return sorted(_REGISTRY.values(), key=lambda spec: spec.title.lower())


def route_job(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any) -> Any:
    """Celery router (CELERY_TASK_ROUTES): a job's messages go to its declared queue unless
    the caller chose one."""
    spec = _REGISTRY.get(name)
    return {"queue": spec.queue} if spec is not None else None
