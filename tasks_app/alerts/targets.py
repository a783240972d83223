"""Where a webhook may go: public addresses only, unless
settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE is on.

A webhook URL is typed in by a user, and the worker that sends it sits inside the network: left
unchecked it would be a way to reach the internal network, the worker's own loopback services or
a cloud metadata service (169.254.169.254). Two checks: `target_problem` when a channel is saved
(a literal address or "localhost": a clear error at once), and `resolve` at every attempt, which
looks the name up within the attempt's deadline and refuses it if any address it resolves to is
not public. The sender then connects to those very addresses, so a name that resolves to a
public address for the check and to a private one a moment later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (family, socket address) pairs, ready for socket.socket(family).connect(address).
Addresses = list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]]

SCHEMES = ("http", "https")


class Refused(Exception):
    """The host resolves to an address a webhook may not reach: a retry cannot help."""


def allow_private() -> bool:
    return bool(settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE)


def is_public(address: IPAddress) -> bool:
    """Globally reachable unicast: not loopback, private, link-local, shared (CGNAT),
    multicast, reserved or unspecified, also when written as IPv4-mapped or 6to4 IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not is_public(embedded):
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be sent to at all (scheme, characters, host, port), or None. The texts
    never repeat the URL: it may be a credential."""
    if not url.isascii():
        return (
            "The webhook URL has non-ASCII characters: write the host name in its xn-- "
            "(punycode) form and percent-encode the path."
        )
    if any(char <= " " or char == "\x7f" for char in url):
        return "The webhook URL contains spaces or control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return "The webhook URL is not a valid URL."
    if parts.scheme not in SCHEMES or not parts.hostname:
        return "The webhook URL is not an http(s) URL."
    return None


def target_problem(url: str) -> str | None:
    """Why a channel may not be saved with this webhook URL, or None: a URL that cannot be sent
    to, or (while TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE is off) a host that is "localhost" or a
    literal address that is not public. A host name is only looked up when sending: what it
    resolves to then is what counts (`resolve`)."""
    problem = url_problem(url)
    if problem is not None or allow_private():
        return problem
    host = _host(urlsplit(url))
    if host == "localhost" or host.endswith(".localhost"):
        return f"The webhook URL's host {host} is this machine: webhooks go to public addresses."
    literal = _literal(host)
    if literal is not None and not is_public(literal):
        return (
            f"The webhook URL's host {host} is not a public address (loopback, private, "
            "link-local, multicast or reserved): webhooks go to public addresses."
        )
    return None


def resolve(host: str, port: int, deadline: float, *, private_ok: bool) -> Addresses:
    """The addresses to connect to for `host`, looked up before `deadline` (monotonic). Raises
    TimeoutError when the lookup does not answer in time, OSError when it fails, and Refused
    when any address is not public (unless `private_ok`)."""
    found = _getaddrinfo_until(host, port, deadline)
    addresses: Addresses = []
    for family, _type, _proto, _canonname, sockaddr in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        if not private_ok and not is_public(ipaddress.ip_address(str(sockaddr[0]))):
            raise Refused(f"refused: {host} resolves to a private address")
        addresses.append((family, sockaddr))
    if not addresses:
        raise OSError(f"{host} has no IPv4 or IPv6 address")
    return addresses


def _getaddrinfo_until(
    host: str, port: int, deadline: float
) -> list[tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]]:
    """socket.getaddrinfo, which has no timeout of its own, in a daemon thread given only the
    time left. A lookup that overstays is abandoned; its thread ends when the resolver gives up."""
    outcome: list[object] = []

    def look_up() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as error:  # handed to the waiting thread
            outcome.append(error)

    thread = threading.Thread(target=look_up, name="webhook-lookup", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0))
    if not outcome:
        raise TimeoutError
    [result] = outcome
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[return-value]


def _host(parts: SplitResult) -> str:
    return (parts.hostname or "").rstrip(".").lower()


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
