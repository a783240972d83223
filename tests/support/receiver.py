"""A real local HTTP server that stands in for a webhook target in tests.

`WebhookReceiver` is a `ThreadingHTTPServer` on 127.0.0.1 (a free port) served from a thread. It
records every request as it arrives (before any delay, so a hanging receiver still shows what it
got), answers with the statuses it is told to (then 200), and can hang (`delay_seconds`) or
trickle its body one byte at a time (`trickle_seconds`) to test a sender's deadline.

    with WebhookReceiver() as receiver:
        receiver.respond_with(500, 500)  # the next two requests get 500, later ones 200
        ...
        [request] = receiver.wait_for(1)
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

# The body a trickling receiver promises (Content-Length) and dribbles out byte by byte.
TRICKLE_LENGTH = 100_000


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int  # the status the receiver answered (or was about to, if it hung)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still hanging must not hold up the test's teardown
    receiver: WebhookReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = receiver._record(self.command, self.path, headers, body)
        if receiver.delay_seconds > 0 and receiver._stopping.wait(receiver.delay_seconds):
            return  # stopped while hanging: drop the connection unanswered
        self.send_response(status)
        if 300 <= status < 400:
            # Somewhere to go, so a sender that followed redirects would show up as a request.
            self.send_header("Location", f"{receiver.url}/redirected")
        self.send_header("Content-Type", "application/json")
        if receiver.trickle_seconds > 0:
            self.send_header("Content-Length", str(TRICKLE_LENGTH))
            self.end_headers()
            for _ in range(TRICKLE_LENGTH):
                if receiver._stopping.wait(receiver.trickle_seconds):
                    return
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return  # the sender gave up: what the test wants
            return
        answer = b'{"ok": true}' if 200 <= status < 300 else b'{"ok": false}'
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads `requests`, not stderr."""


class WebhookReceiver:
    """A real HTTP webhook target on 127.0.0.1 for the duration of a `with` block."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.delay_seconds: float = 0.0  # sleep this long before answering (a hanging receiver)
        self.trickle_seconds: float = 0.0  # answer at once, then one body byte per this long
        self._statuses: deque[int] = deque()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()  # wakes hanging and trickling handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def respond_with(self, *statuses: int) -> None:
        """The next requests get these statuses, in order; later ones get 200."""
        with self._changed:
            self._statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """The requests received so far, once there are at least `count` of them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(
                    f"The receiver got {len(self.requests)} request(s) in {timeout} s, "
                    f"expected {count}"
                )
            return list(self.requests)

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        """Keeps a request and picks its status, under one lock (concurrent handlers)."""
        with self._changed:
            status = self._statuses.popleft() if self._statuses else 200
            self.requests.append(ReceivedRequest(method, path, headers, body, status))
            self._changed.notify_all()
            return status
