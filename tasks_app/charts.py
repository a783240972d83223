"""Inline SVG charts computed on the server: the template only draws the rectangles."""

from __future__ import annotations

from dataclasses import dataclass

from .selectors import HourBucket


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
