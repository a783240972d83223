"""A real local HTTP server that stands in for a webhook target in tests.

`WebhookReceiver` is a `ThreadingHTTPServer` on 127.0.0.1 (a free port) served from a thread. It
records every request as it arrives (before any delay, so a hanging receiver still shows what it
got), answers with the statuses it is told to (then 200), and can hang (`delay_seconds`, until
the sender hangs up) or trickle its body one byte at a time (`trickle_seconds`) to test a
sender's deadline. `peak_open` counts the most requests it had open at once (senders still
waiting for an answer): how many attempts overlapped. Given an `ssl.SSLContext` it serves HTTPS
and records the server names (SNI) clients asked for.

    with WebhookReceiver() as receiver:
        receiver.respond_with(500, 500)  # the next two requests get 500, later ones 200
        ...
        [request] = receiver.wait_for(1)
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
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
    received_at: float = 0.0  # time.monotonic() on arrival: for ordering, not for durations


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
        status = receiver._record(self.command, self.path, headers, body, self.connection)
        try:
            self._answer(receiver, status)
        finally:
            receiver._answered(self.connection)

    def _answer(self, receiver: WebhookReceiver, status: int) -> None:
        if receiver.delay_seconds > 0 and not receiver._hang(
            self.connection, receiver.delay_seconds
        ):
            return  # stopped, or the sender hung up: drop the connection unanswered
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

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[ReceivedRequest] = []
        self.delay_seconds: float = 0.0  # wait this long before answering (a hanging receiver)
        self.trickle_seconds: float = 0.0  # answer at once, then one body byte per this long
        self.peak_open = 0  # the most requests open at once (their senders still waiting)
        self.server_names: list[str | None] = []  # SNI of each TLS handshake
        self._open: set[socket.socket] = set()
        self._statuses: deque[int] = deque()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        host, port = self._server.server_address[:2]
        self.port: int = port
        self.url = f"http://{host!s}:{port}"
        if tls is not None:
            tls.sni_callback = self._record_server_name
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.url = f"https://{host!s}:{port}"
        # A short poll: shutdown() waits for the serving loop's next look, 0.5 s by default,
        # and that wait was most of what a delivery test took.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="webhook-receiver",
            daemon=True,
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

    def _record(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        connection: socket.socket,
    ) -> int:
        """Keeps a request and picks its status, under one lock (concurrent handlers). Counts it
        open with the others whose senders have not hung up: a sender closes its connection
        before it starts its next request, so the count is exact, not a race."""
        with self._changed:
            status = self._statuses.popleft() if self._statuses else 200
            arrived = time.monotonic()
            self.requests.append(ReceivedRequest(method, path, headers, body, status, arrived))
            self._open = {other for other in self._open if not _hung_up(other)}
            self._open.add(connection)
            self.peak_open = max(self.peak_open, len(self._open))
            self._changed.notify_all()
            return status

    def _answered(self, connection: socket.socket) -> None:
        with self._changed:
            self._open.discard(connection)

    def _hang(self, connection: socket.socket, seconds: float) -> bool:
        """Wait `seconds` before answering; False if the receiver stops or the sender hangs up
        first (then there is no one to answer)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stopping.is_set():
                return False
            readable, _, _ = select.select([connection], [], [], min(remaining, 0.1))
            if readable and _hung_up(connection):
                return False
        return not self._stopping.is_set()

    def _record_server_name(
        self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, context: ssl.SSLContext
    ) -> None:
        with self._changed:
            self.server_names.append(name)


def _hung_up(connection: socket.socket) -> bool:
    """Whether the sender closed its end (its request was read in full: anything readable now
    is the end of the stream). Over TLS only once closed on this side: peeking reads records."""
    if isinstance(connection, ssl.SSLSocket):
        return connection.fileno() == -1
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or closed on this side already
        return True
