"""Senders: one attempt to put an alert message in front of people, by email or webhook.

Each sender returns an `Outcome` and never raises for what a receiver or mail server does; the
caller (`delivery`) records it and decides about retries. One webhook attempt takes at most the
channel's `timeout_seconds` in total, however the receiver or its name servers behave (hang,
trickle bytes): the name lookup, each connection try, the TLS handshake and every write and read
wait only until the attempt's deadline. A webhook reaches only public addresses (unless
settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE): see `targets`.

Error texts never contain the webhook URL: it may itself be a credential (Slack's are).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import select
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.core.mail import get_connection, send_mail

from ..models import AlertChannel, AlertChannelKind, AlertMessage, WebhookFormat
from . import targets

USER_AGENT = "Taskdeck-Alerts/1"
SIGNATURE_HEADER = "X-Taskdeck-Signature"
# Enough of a response to show why a receiver refused; nothing more is read.
RESPONSE_READ_LIMIT = 4096
ERROR_EXCERPT_CHARS = 300
# Bytes written per socket call, each call held to the attempt's deadline.
SEND_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Outcome:
    """How one attempt went. `final`: a retry cannot help (the channel is gone, disabled or
    misconfigured, or its URL is refused)."""

    ok: bool
    status: int | None = None
    error: str = ""
    final: bool = False
    timed_out: bool = False  # the receiver took the whole timeout (likely to do so again)


def sign(secret: str, body: bytes) -> str:
    """The X-Taskdeck-Signature value: "sha256=" + hex HMAC-SHA256 of the exact body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send(
    channel: AlertChannel, message: AlertMessage, *, delivery_id: int, attempt: int, at: datetime
) -> Outcome:
    """One attempt to deliver `message` to `channel`."""
    if channel.kind == AlertChannelKind.EMAIL:
        return send_email(channel, message)
    if channel.kind == AlertChannelKind.WEBHOOK:
        return send_webhook(channel, message, delivery_id=delivery_id, attempt=attempt, at=at)
    return Outcome(ok=False, error=f"Unknown channel kind {channel.kind!r}.", final=True)


# --- Email


def email_addresses(email_to: str) -> list[str]:
    """The channel's addresses: one per line, blank lines ignored."""
    return [line.strip() for line in email_to.splitlines() if line.strip()]


def email_text(payload: Mapping[str, Any]) -> str:
    """The plain-text body: what fired (or resolved), one paragraph per alert, with links."""
    lines = [str(payload.get("subject", "")), ""]
    rule = payload.get("rule")
    if isinstance(rule, Mapping):
        lines.append(f"Rule: {rule.get('name', '')} ({rule.get('kind', '')})")
    if payload.get("event") == "test":
        lines.append("This is a test message: the channel works.")
    else:
        lines.append(f"Alerts: {payload.get('alert_count', 0)}")
    for alert in _alerts(payload):
        lines += ["", f"- {alert.get('summary', '')}"]
        facts = [
            f"{name}: {alert[name]}" for name in ("job", "schedule", "state") if alert.get(name)
        ]
        if facts:
            lines.append("  " + ", ".join(facts))
        if alert.get("url"):
            lines.append(f"  {alert['url']}")
    if payload.get("more"):
        lines += ["", f"...and {payload['more']} more."]
    lines += ["", "-- ", "Sent by Taskdeck alerts."]
    return "\n".join(lines) + "\n"


def send_email(channel: AlertChannel, message: AlertMessage) -> Outcome:
    addresses = email_addresses(channel.email_to)
    if not addresses:
        return Outcome(ok=False, error="The channel has no email addresses.", final=True)
    subject = " ".join(message.subject.split())  # a header: never a line break in it
    try:
        # The SMTP backend applies the timeout to each socket operation.
        connection = get_connection(timeout=channel.timeout_seconds)
        send_mail(subject, email_text(message.payload), None, addresses, connection=connection)
    except Exception as error:  # SMTP errors, OSError, a misconfigured backend
        return Outcome(ok=False, error=_describe(error))
    return Outcome(ok=True)


# --- Webhook


def webhook_body(
    channel: AlertChannel, message: AlertMessage, *, delivery_id: int, attempt: int, at: datetime
) -> bytes:
    """The exact bytes POSTed (and signed)."""
    body: dict[str, Any]
    if channel.payload_format == WebhookFormat.SLACK:
        body = {"text": slack_text(message.payload)}
    else:
        body = {
            **message.payload,
            "delivery_id": delivery_id,
            "attempt": attempt,
            "sent_at": at.isoformat(),
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def slack_text(payload: Mapping[str, Any]) -> str:
    """A Slack incoming-webhook `text` (mrkdwn): the subject, then one line per alert."""
    lines = [f"*{_slack_escape(str(payload.get('subject', '')))}*"]
    for alert in _alerts(payload):
        line = f"• {_slack_escape(str(alert.get('summary', '')))}"
        if alert.get("url"):
            line += f" (<{_slack_escape(str(alert['url']))}|open>)"
        lines.append(line)
    if payload.get("more"):
        lines.append(f"…and {payload['more']} more.")
    return "\n".join(lines)


def webhook_headers(
    channel: AlertChannel, message: AlertMessage, body: bytes, *, delivery_id: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Taskdeck-Event": message.event,
        "X-Taskdeck-Delivery": str(delivery_id),
        SIGNATURE_HEADER: sign(channel.secret, body),
    }


def send_webhook(
    channel: AlertChannel, message: AlertMessage, *, delivery_id: int, attempt: int, at: datetime
) -> Outcome:
    body = webhook_body(channel, message, delivery_id=delivery_id, attempt=attempt, at=at)
    headers = webhook_headers(channel, message, body, delivery_id=delivery_id)
    return post(
        channel.url,
        body,
        headers,
        timeout=float(channel.timeout_seconds),
        private_ok=targets.allow_private(),
    )


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    private_ok: bool = False,
) -> Outcome:
    """POST `body` to `url` and read the status and at most RESPONSE_READ_LIMIT bytes, all
    within `timeout` seconds: the name lookup, connecting, the TLS handshake, sending and
    reading each get only what is left of it. Only public addresses are reached unless
    `private_ok` (see `targets`), and the connection goes to the very addresses checked; the
    Host header, TLS SNI and certificate check use the URL's host name. Redirects are not
    followed (http.client never does): a 3xx is a failure like any other non-2xx. Proxies from
    the environment are not used."""
    problem = targets.url_problem(url)
    if problem is not None:
        return Outcome(ok=False, error=problem, final=True)
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        addresses = targets.resolve(host, port, deadline, private_ok=private_ok)
    except targets.Refused as refusal:
        return Outcome(ok=False, error=str(refusal), final=True)
    except TimeoutError:
        return _timed_out(timeout)
    except OSError as error:  # the name does not resolve (now): a retry may find it
        return Outcome(ok=False, error=_describe(error))
    connection = _PinnedConnection(host, port, addresses, deadline, tls=tls)
    try:
        connection.connect()
        connection.request("POST", path, body=body, headers={**headers, "Connection": "close"})
        response = connection.getresponse()
        excerpt = _read_some(response)
    except TimeoutError:
        return _timed_out(timeout)
    except http.client.InvalidURL as error:  # what url_problem let through: no retry helps
        return Outcome(ok=False, error=_describe(error), final=True)
    except (OSError, http.client.HTTPException) as error:
        return Outcome(ok=False, error=_describe(error))
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Outcome(ok=True, status=response.status)
    why = "redirects are not followed" if 300 <= response.status < 400 else response.reason
    detail = f": {excerpt}" if excerpt else ""
    return Outcome(
        ok=False, status=response.status, error=f"HTTP {response.status} ({why}){detail}"
    )


def _timed_out(timeout: float) -> Outcome:
    return Outcome(ok=False, error=f"Timed out after {timeout:g} s.", timed_out=True)


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to addresses looked up and checked beforehand (never a second
    lookup of the host name), where every step waits only until `deadline` (monotonic)."""

    def __init__(
        self,
        host: str,
        port: int,
        addresses: targets.Addresses,
        deadline: float,
        *,
        tls: bool,
    ) -> None:
        # The Host header leaves out the port when it is the scheme's default.
        self.default_port = 443 if tls else 80
        super().__init__(host, port)
        self.response_class = _response_reading_until(deadline)
        self._addresses = addresses
        self._deadline = deadline
        self._tls = ssl.create_default_context() if tls else None

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self._deadline)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            try:
                sock = _tls_handshake(self._tls, sock, self.host, self._deadline)
            except BaseException:
                sock.close()
                raise
        self.sock = sock

    def send(self, data: Any) -> None:
        """Bytes go out in pieces, each waiting only for what is left of the deadline (a
        receiver that reads slowly cannot stretch the attempt either)."""
        if not isinstance(data, bytes | bytearray) or self.sock is None:
            super().send(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), SEND_CHUNK):
            _set_timeout(self.sock, self._deadline)
            self.sock.sendall(view[start : start + SEND_CHUNK])


def _connect_any(addresses: targets.Addresses, deadline: float) -> socket.socket:
    """A TCP connection to the first address that answers. Each gets an even share of the time
    left (the last one all of it), so one address that never answers leaves time for the next."""
    error: OSError = OSError("no address to connect to")
    for index, (family, address) in enumerate(addresses):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(remaining / (len(addresses) - index))
            sock.connect(address)
        except OSError as failure:  # TimeoutError included: try the next address
            sock.close()
            error = failure
            continue
        return sock
    raise error


def _tls_handshake(
    context: ssl.SSLContext, sock: socket.socket, hostname: str, deadline: float
) -> ssl.SSLSocket:
    """The TLS handshake (SNI and certificate checked against `hostname`) within `deadline`.
    Non-blocking with a wait for each step, so a server answering byte by byte cannot stretch
    it: a socket timeout would restart for every read."""
    sock.setblocking(False)
    tls = context.wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
    waiting: tuple[list[ssl.SSLSocket], list[ssl.SSLSocket]]
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            waiting = ([tls], [])
        except ssl.SSLWantWriteError:
            waiting = ([], [tls])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        readable, writable, _ = select.select(*waiting, [], remaining)
        if not readable and not writable:
            raise TimeoutError
    _set_timeout(tls, deadline)
    return tls


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side where every receive waits only until `deadline` (monotonic):
    a receiver trickling one byte at a time cannot stretch an attempt past its timeout."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        _set_timeout(self._sock, self._deadline)
        return self._sock.recv_into(buffer)


def _response_reading_until(deadline: float) -> type[http.client.HTTPResponse]:
    """An HTTPResponse class whose status line, headers and body are read through a
    `_DeadlineReader` (http.client reads them all from `fp`)."""

    class DeadlineResponse(http.client.HTTPResponse):
        def __init__(
            self,
            sock: socket.socket,
            debuglevel: int = 0,
            method: str | None = None,
            url: str | None = None,
        ) -> None:
            super().__init__(sock, debuglevel, method, url)
            self.fp.close()  # the plain reader made above: releases its hold on the socket
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))

    return DeadlineResponse


def _set_timeout(sock: socket.socket | None, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if sock is not None:
        sock.settimeout(remaining)


def _read_some(response: http.client.HTTPResponse) -> str:
    """The first line of at most RESPONSE_READ_LIMIT bytes of the body, for the delivery log.
    The status is what counts: a body cut short by the deadline is only a shorter excerpt."""
    data = b""
    try:
        while len(data) < RESPONSE_READ_LIMIT:
            chunk = response.read1(RESPONSE_READ_LIMIT - len(data))
            if not chunk:
                break
            data += chunk
    except (OSError, http.client.HTTPException):
        pass
    text = data.decode("utf-8", errors="replace").strip()
    return _first_line(text)


def _describe(error: BaseException) -> str:
    return _first_line(f"{type(error).__name__}: {error}")


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line[:ERROR_EXCERPT_CHARS]


def _alerts(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        return []
    return [alert for alert in alerts if isinstance(alert, Mapping)]


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn escaping: only these three characters have a meaning of their own."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
