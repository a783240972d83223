"""The operators of `python -m bench.load`: threads polling the live pages as htmx does, and
the latencies and failures they record."""

from __future__ import annotations

import http.client
import math
import random
import threading
import time
from dataclasses import dataclass, field

from .load_config import ACTIVE_ROW, HOST, HTTP_TIMEOUT, LIST_URLS, POLLING, TABS
from .load_signals import signals_deferred

# --- figures ---------------------------------------------------------------------------------


@dataclass
class Samples:
    """Latencies by kind and every failure, shared by the operator threads."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    http_errors: list[str] = field(default_factory=list)  # answers other than 2xx
    request_errors: list[str] = field(default_factory=list)  # no answer at all
    reconnects: int = 0  # keep-alive connections the server had closed: reopened, as browsers do
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)

    def http_error(self, message: str) -> None:
        with self.lock:
            self.http_errors.append(message)

    def request_error(self, message: str) -> None:
        with self.lock:
            self.request_errors.append(message)

    def reconnected(self) -> None:
        with self.lock:
            self.reconnects += 1

    def polls(self) -> list[float]:
        return [s for kind, values in self.latencies.items() if kind in POLL_KINDS for s in values]


POLL_KINDS = frozenset(kind for kind, _, _ in TABS.values())


def percentile(values: list[float], p: float) -> float:
    """Nearest rank, as bench.history reports it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(len(ordered) * p / 100)))
    return ordered[rank - 1]


# --- the operators ---------------------------------------------------------------------------


class Operator(threading.Thread):
    """One person with the overview, the runs list and one run open, polling as htmx does."""

    def __init__(
        self, port: int, cookie: str, list_url: str, samples: Samples, stop: threading.Event,
        seed: int,
    ) -> None:  # fmt: skip
        super().__init__(daemon=True, name=f"operator-{seed}")
        self.port, self.cookie, self.list_url = port, cookie, list_url
        self.samples, self.stop_event = samples, stop
        self.random = random.Random(seed)  # noqa: S311 - spreads the polls, no secrets
        self.conns: dict[str, http.client.HTTPConnection] = {}
        self.candidates: list[str] = []  # links of the active rows in the list's latest HTML

    def get(self, tab: str, kind: str, path: str, target: str | None) -> bytes | None:
        """One GET on the tab's keep-alive connection; its body, or None when it failed."""
        headers = {"Cookie": self.cookie, "Connection": "keep-alive"}
        if target:
            headers |= {"HX-Request": "true", "HX-Target": target}
        started = time.perf_counter()
        for attempt in (1, 2):
            conn = self.conns.get(tab)
            if conn is None:
                conn = self.conns[tab] = http.client.HTTPConnection(
                    HOST, self.port, timeout=HTTP_TIMEOUT
                )
            reused = conn.sock is not None
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                del self.conns[tab]
                stale = isinstance(
                    error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                )
                if attempt == 1 and reused and stale:
                    self.samples.reconnected()  # gunicorn closed an idle keep-alive connection
                    continue
                self.samples.request_error(f"{kind} {path}: {error!r}")
                return None
            self.samples.add(kind, time.perf_counter() - started)
            if not 200 <= response.status < 300:
                self.samples.http_error(f"{kind} {path}: HTTP {response.status}")
                return None
            return body
        return None

    def visit(self, tab: str, polling: bool, watching: str | None) -> tuple[bool, str | None]:
        """What the tab does when its timer fires; whether it polls on, and the run it shows."""
        kind, target, _ = TABS[tab]
        if tab == "overview":
            body = (
                self.get(tab, kind, "/", target)
                if polling
                else self.get(tab, "page_overview", "/", None)
            )
        elif tab == "runs":
            if polling:
                body = self.get(tab, kind, self.list_url, target)
            else:
                body = self.get(tab, "page_runs", self.list_url, None)
            if body is not None:
                self.candidates = [link.decode() for link in ACTIVE_ROW.findall(body)]
        elif polling and watching:
            body = self.get(tab, kind, watching, target)
        else:
            # Its run ended (or none was open yet): open another one the list shows as active.
            choices = [link for link in self.candidates if link != watching]
            if not choices:
                return False, watching
            watching = self.random.choice(choices)
            body = self.get(tab, "page_run", watching, None)
        return body is not None and POLLING in body, watching

    def run(self) -> None:
        polling = dict.fromkeys(TABS, False)  # the first visit of each tab opens its page
        watching: str | None = None
        now = time.monotonic()
        # The runs list first, so that the run tab has something to open.
        due = {tab: now + (0.0 if tab == "runs" else 0.5) + self.random.random() for tab in TABS}
        try:
            while not self.stop_event.is_set():
                tab = min(due, key=due.__getitem__)
                wait = due[tab] - time.monotonic()
                if wait > 0 and self.stop_event.wait(wait):
                    break
                polling[tab], watching = self.visit(tab, polling[tab], watching)
                # htmx's `every Ns` timer restarts once the swapped-in answer is in place.
                due[tab] = time.monotonic() + TABS[tab][2]
        finally:
            for conn in self.conns.values():
                conn.close()


class Operators:
    """The operator threads of one flow; stopped (and joined, bounded) on leaving."""

    def __init__(self, port: int, cookies: list[str], samples: Samples) -> None:
        self.stop = threading.Event()
        self.threads = [
            Operator(port, cookie, LIST_URLS[i % len(LIST_URLS)], samples, self.stop, seed=i)
            for i, cookie in enumerate(cookies)
        ]
        self.samples = samples

    def __enter__(self) -> Operators:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with signals_deferred():
            self.stop_all()

    def stop_all(self) -> None:
        self.stop.set()
        deadline = time.monotonic() + 2 * HTTP_TIMEOUT + 5
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.samples.request_error(f"{thread.name} did not stop")
