"""Read queries for the pages and the API. Nothing here writes; JSON is decoded here, once."""

from .alerts import (
    AlertRow,
    AlertsPage,
    ChannelRow,
    DeliveryRow,
    RuleRow,
    alerts_page,
    channel_rows,
    firing_alerts,
    mask_url,
    recent_deliveries,
    resolved_alerts,
    rule_rows,
)
from .audit import AuditPage, audit_page
from .job_stats import (
    DAY,
    WEEK,
    JobNumbers,
    WaitHour,
    WindowNumbers,
    job_numbers,
    queue_wait_by_hour,
)
from .metrics import metrics_content_type, metrics_exposition
from .overview import (
    HourBucket,
    StateTotals,
    active_runs,
    hourly_activity,
    latest_failures,
    state_totals,
)
from .paging import PAGE_SIZE
from .run_detail import Progress, RunDetail, RunLive, progress_of, run_detail, run_live
from .runs import (
    RunFilter,
    RunPage,
    decode_cursor,
    encode_cursor,
    runs_count_up_to,
    runs_matching,
    runs_page,
)
from .schedules import ScheduleDetail, ScheduleRow, schedule_detail, schedule_rows
from .workers import workers_snapshot

__all__ = [
    "DAY",
    "PAGE_SIZE",
    "WEEK",
    "AlertRow",
    "AlertsPage",
    "AuditPage",
    "ChannelRow",
    "DeliveryRow",
    "HourBucket",
    "JobNumbers",
    "Progress",
    "RuleRow",
    "RunDetail",
    "RunFilter",
    "RunLive",
    "RunPage",
    "ScheduleDetail",
    "ScheduleRow",
    "StateTotals",
    "WaitHour",
    "WindowNumbers",
    "active_runs",
    "alerts_page",
    "audit_page",
    "channel_rows",
    "decode_cursor",
    "encode_cursor",
    "firing_alerts",
    "hourly_activity",
    "job_numbers",
    "latest_failures",
    "mask_url",
    "metrics_content_type",
    "metrics_exposition",
    "progress_of",
    "queue_wait_by_hour",
    "recent_deliveries",
    "resolved_alerts",
    "rule_rows",
    "run_detail",
    "run_live",
    "runs_count_up_to",
    "runs_matching",
    "runs_page",
    "schedule_detail",
    "schedule_rows",
    "state_totals",
    "workers_snapshot",
]
