"""Inline SVG charts computed on the server: the template only draws the rectangles (and the
histogram's text labels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from .models.stats import BUCKET_BOUNDS, BUCKETS
from .selectors import HourBucket, WaitHour


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    runs_y: float
    runs_height: float
    failures_y: float
    failures_height: float
    label: str
    runs: int
    failures: int


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    first_label: str
    last_label: str


def hourly_chart(buckets: list[HourBucket], width: int = 720, height: int = 160) -> BarChart:
    """Runs per hour as bars, with the failed part of each bar drawn over it."""
    peak = max((b.runs for b in buckets), default=0) or 1
    slot = width / max(len(buckets), 1)
    bars = []
    for i, bucket in enumerate(buckets):
        runs_h = bucket.runs / peak * (height - 4)
        fail_h = bucket.failures / peak * (height - 4)
        bars.append(
            Bar(
                x=round(i * slot + 1, 2),
                width=round(max(slot - 2, 1), 2),
                runs_y=round(height - runs_h, 2),
                runs_height=round(runs_h, 2),
                failures_y=round(height - fail_h, 2),
                failures_height=round(fail_h, 2),
                label=f"{bucket.start:%H:00}",
                runs=bucket.runs,
                failures=bucket.failures,
            )
        )
    return BarChart(
        width=width,
        height=height,
        bars=bars,
        peak=peak,
        first_label=bars[0].label if bars else "",
        last_label=bars[-1].label if bars else "",
    )


def seconds_label(seconds: float) -> str:
    """A length of time in one unit, two significant digits at most: 0.025 -> "25 ms",
    2.5 -> "2.5 s", 1800 -> "30 min", 86400 -> "1 d"."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            return f"{_number(seconds / size)} {unit}"
    return f"{_number(seconds * 1000)} ms"


def _number(value: float) -> str:
    return str(round(value)) if value >= 10 else f"{value:.2g}"


@dataclass(frozen=True)
class WaitBar:
    x: float
    width: float
    p95_y: float
    p95_height: float
    p50_y: float
    p50_height: float
    label: str
    runs: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class WaitChart:
    width: int
    height: int
    bars: list[WaitBar]
    peak: float  # the highest p95, seconds; 0 when no run started
    first_label: str
    last_label: str


def wait_chart(hours: list[WaitHour], width: int = 720, height: int = 160) -> WaitChart:
    """p95 queue wait per hour as bars, with the p50 part of each bar drawn over it."""
    peak = max((h.p95 or 0.0 for h in hours), default=0.0)
    scale = (height - 4) / peak if peak else 0.0
    slot = width / max(len(hours), 1)
    bars = []
    for i, hour in enumerate(hours):
        p95_h = (hour.p95 or 0.0) * scale
        p50_h = (hour.p50 or 0.0) * scale
        bars.append(
            WaitBar(
                x=round(i * slot + 1, 2),
                width=round(max(slot - 2, 1), 2),
                p95_y=round(height - p95_h, 2),
                p95_height=round(p95_h, 2),
                p50_y=round(height - p50_h, 2),
                p50_height=round(p50_h, 2),
                label=f"{timezone.localtime(hour.start):%H:%M}",
                runs=hour.runs,
                p50=hour.p50,
                p95=hour.p95,
            )
        )
    return WaitChart(
        width=width,
        height=height,
        bars=bars,
        peak=peak,
        first_label=bars[0].label if bars else "",
        last_label=bars[-1].label if bars else "",
    )


@dataclass(frozen=True)
class HistogramBar:
    x: float
    width: float
    y: float
    height: float
    count: int
    range_label: str  # "1 s to 2.5 s", for its title
    tick: str  # its upper bound under it ("≤ 2.5 s"), or "" where labels would crowd
    middle: float  # where its texts are centred
    count_y: float


@dataclass(frozen=True)
class Histogram:
    width: int
    height: int
    bars: list[HistogramBar]
    total: int
    axis_y: float  # the baseline; tick labels go below it

    @property
    def mode(self) -> HistogramBar | None:
        """The fullest bucket (the first of equals)."""
        return max(self.bars, key=lambda bar: bar.count, default=None) if self.total else None


def duration_histogram(
    buckets: Sequence[int], width: int = 720, height: int = 200, max_ticks: int = 10
) -> Histogram:
    """Runs per duration bucket (`JobHourStats`' fixed bounds), from the shortest bucket holding
    a run to the longest, with one empty bucket either side for context."""
    counts = [int(c) for c in buckets[:BUCKETS]]
    filled = [i for i, count in enumerate(counts) if count]
    top, bottom = 16.0, 22.0  # room for the counts above and the ticks below
    axis_y = height - bottom
    if not filled:
        return Histogram(width, height, [], 0, axis_y)
    first, last = max(filled[0] - 1, 0), min(filled[-1] + 1, BUCKETS - 1)
    shown = range(first, last + 1)
    peak = max(counts)
    slot = width / len(shown)
    every = -(-len(shown) // max_ticks)  # label every n-th bar so the ticks never overlap
    bars = []
    for n, index in enumerate(shown):
        bar_h = counts[index] / peak * (axis_y - top)
        lower = 0.0 if index == 0 else BUCKET_BOUNDS[index - 1]
        if index >= len(BUCKET_BOUNDS):
            range_label, tick = f"over {seconds_label(lower)}", f"> {seconds_label(lower)}"
        else:
            upper = seconds_label(BUCKET_BOUNDS[index])
            range_label = f"{seconds_label(lower)} to {upper}" if index else f"up to {upper}"
            tick = f"≤ {upper}"
        bars.append(
            HistogramBar(
                x=round(n * slot + 1, 2),
                width=round(max(slot - 2, 1), 2),
                y=round(axis_y - bar_h, 2),
                height=round(bar_h, 2),
                count=counts[index],
                range_label=range_label,
                tick=tick if n % every == 0 else "",
                middle=round(n * slot + slot / 2, 2),
                count_y=round(axis_y - bar_h - 4, 2),
            )
        )
    return Histogram(width, height, bars, sum(counts), axis_y)
