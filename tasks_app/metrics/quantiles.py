"""Percentiles from bucketed histograms, estimated like Prometheus' histogram_quantile: find the
bucket holding the rank and interpolate linearly inside it. The estimate is exact at bucket
bounds and never off by more than one bucket's width; pages show it with "≈"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..models.stats import BUCKET_BOUNDS, BUCKETS, empty_buckets


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    """Bucket-wise sum of per-bucket (not cumulative) counts."""
    total = empty_buckets()
    for histogram in histograms:
        for index, count in enumerate(histogram[:BUCKETS]):
            total[index] += int(count)
    return total


def bucket_index(seconds: float) -> int:
    """The bucket a value falls in: the first whose upper bound is >= it (+Inf last)."""
    for index, bound in enumerate(BUCKET_BOUNDS):
        if seconds <= bound:
            return index
    return len(BUCKET_BOUNDS)


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """The q-quantile (0 < q < 1) of a per-bucket histogram; None when it is empty. A rank in
    the +Inf bucket is reported as the highest finite bound (as Prometheus does)."""
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(BUCKET_BOUNDS):
                return float(BUCKET_BOUNDS[-1])
            lower = 0.0 if index == 0 else float(BUCKET_BOUNDS[index - 1])
            upper = float(BUCKET_BOUNDS[index])
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(BUCKET_BOUNDS[-1])


def cumulative(buckets: Sequence[int]) -> list[tuple[str, int]]:
    """Prometheus' cumulative (le, count) pairs, "+Inf" last."""
    pairs: list[tuple[str, int]] = []
    running = 0
    for index, count in enumerate(buckets):
        running += int(count)
        bound = "+Inf" if index >= len(BUCKET_BOUNDS) else repr(float(BUCKET_BOUNDS[index]))
        pairs.append((bound, running))
    return pairs
