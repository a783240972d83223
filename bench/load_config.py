"""What `python -m bench.load` talks to and how its operators poll (see bench/load.py)."""

from __future__ import annotations

import re

HOST = "127.0.0.1"  # loopback only: nothing here listens on, or talks to, another address
QUEUE = "bench.load"
WORKERS = 2
USERNAME = "bench-operator"
HTTP_TIMEOUT = 30.0
READY_TIMEOUT = 90.0  # two workers booting at once on 2 cores, beside a busy web server
# tab -> (poll kind, the region's id as htmx sends it in HX-Target, the page's interval in s)
TABS: dict[str, tuple[str, str, float]] = {
    "overview": ("overview_active", "active-runs", 2.0),
    "runs": ("runs_rows", "rows", 2.0),
    "run": ("run_live", "live", 1.0),
}
LIST_URLS = ("/runs/?job=bench.steps", "/runs/?job=bench.steps&state=STARTED&state=PROGRESS")
# A region keeps polling while it carries its trigger (the templates drop it when nothing is
# active); a link of an active row of the runs list is a run to watch.
POLLING = b'hx-trigger="every '
ACTIVE_ROW = re.compile(rb'<tr class="active">.*?<a href="(/runs/[^"/?#]+/)"', re.DOTALL)
WEB_PROBLEM = re.compile(
    r"Traceback|\bERROR\b|\bCRITICAL\b|WORKER TIMEOUT|Internal Server Error"
    r"|^(Not Found|Forbidden|Bad Request|Unauthorized|Method Not Allowed|Service Unavailable):",
    re.MULTILINE,
)
WORKER_PROBLEM = re.compile(rb"ERROR/|CRITICAL/|Traceback|raised unexpected")
