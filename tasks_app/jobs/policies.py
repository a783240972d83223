"""Named queues and retry policies for jobs."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

# Named queues, most urgent first; a worker is started with `-Q high,default,low`.
QUEUES: tuple[str, ...] = tuple(getattr(settings, "TASKDECK_QUEUES", ("high", "default", "low")))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter: the n-th retry waits a random time
    between 0 and `backoff_seconds * 2**n` (capped), so a burst of failures spreads out."""

    name: str
    max_retries: int
    backoff_seconds: int = 0
    backoff_max_seconds: int = 3600

    def celery_options(self) -> dict[str, object]:
        if self.max_retries == 0:
            return {"max_retries": 0}
        return {
            "max_retries": self.max_retries,
            "retry_backoff": self.backoff_seconds,
            "retry_backoff_max": self.backoff_max_seconds,
            "retry_jitter": True,
        }


RETRY_POLICIES: dict[str, RetryPolicy] = {
    policy.name: policy
    for policy in (
        RetryPolicy("standard", max_retries=3, backoff_seconds=60),
        RetryPolicy("aggressive", max_retries=5, backoff_seconds=30),
        RetryPolicy("long_running", max_retries=2, backoff_seconds=300, backoff_max_seconds=7200),
        RetryPolicy("no_retry", max_retries=0),
    )
}


def retry_policy(policy: str | RetryPolicy) -> RetryPolicy:
    if isinstance(policy, RetryPolicy):
        return policy
    try:
        return RETRY_POLICIES[policy]
    except KeyError:
        known = ", ".join(RETRY_POLICIES)
        raise ValueError(f"Unknown retry policy {policy!r}; use one of: {known}.") from None


def check_queue(queue: str) -> str:
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}; use one of: {', '.join(QUEUES)}.")
    return queue
