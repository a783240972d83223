"""Where webhooks may go, and how long one attempt may take, with real sockets on 127.0.0.1 and
no database: literal private addresses refused when a channel is saved and when it is sent to,
a TLS handshake held to the attempt's deadline, and TLS checked against the URL's host name
while the connection goes to the address checked."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks_app.alerts import channels, targets
from tests.support.receiver import WebhookReceiver

NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "10.0.0.1",  # private
    "10.255.255.254",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # link-local: the cloud metadata service
    "0.0.0.0",  # noqa: S104 - unspecified: reaches this machine
    "100.64.0.1",  # shared (carrier-grade NAT)
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped IPv6
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


def url_of(address: str, port: int = 8080) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/hook"


@pytest.fixture
def private_refused(settings: Any) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = False  # the default (the suite turns it on)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_a_literal_address_that_is_not_public_is_refused_when_saved(
    private_refused: None, address: str
) -> None:
    assert not targets.is_public(ipaddress.ip_address(address))
    problem = targets.target_problem(url_of(address))
    assert problem is not None
    assert "not a public address" in problem


@pytest.mark.parametrize(
    "url", ["http://localhost/hook", "https://LOCALHOST.:8443/", "http://api.localhost/x"]
)
def test_localhost_is_refused_when_saved(private_refused: None, url: str) -> None:
    problem = targets.target_problem(url)
    assert problem is not None
    assert "is this machine" in problem


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_and_a_host_name_may_be_saved(private_refused: None, address: str) -> None:
    assert targets.is_public(ipaddress.ip_address(address))
    assert targets.target_problem(url_of(address)) is None
    # A name is judged by what it resolves to when sending, not when saving.
    assert targets.target_problem("https://hooks.slack.com/services/T0/B0/x") is None


def test_private_addresses_may_be_saved_when_the_setting_allows(settings: Any) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = True
    assert targets.target_problem("http://127.0.0.1:9000/hook") is None
    assert targets.target_problem("http://localhost/hook") is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://bücher.example/", "The webhook URL has non-ASCII characters"),
        ("ftp://files.example/x", "The webhook URL is not an http(s) URL."),
        ("http://hooks.example:http/", "The webhook URL is not a valid URL."),
        ("http://hooks.example/a\nb", "The webhook URL contains spaces or control characters."),
    ],
)
def test_a_url_that_cannot_be_sent_to_is_refused_whatever_the_setting(
    settings: Any, url: str, problem: str
) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = True
    found = targets.target_problem(url)
    assert found is not None
    assert found.startswith(problem)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"])
def test_resolving_refuses_private_addresses_unless_allowed(address: str) -> None:
    deadline = time.monotonic() + 5
    with pytest.raises(targets.Refused) as refused:
        targets.resolve(address, 80, deadline, private_ok=False)
    assert str(refused.value) == f"refused: {address} resolves to a private address"

    [(family, sockaddr)] = targets.resolve(address, 80, deadline, private_ok=True)
    assert family == (socket.AF_INET6 if ":" in address else socket.AF_INET)
    assert (sockaddr[0], sockaddr[1]) == (address, 80)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on 127.0.0.1 that nobody answers from."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_sending_to_a_private_address_is_refused_before_connecting(
    listener: socket.socket, host: str
) -> None:
    port = listener.getsockname()[1]
    outcome = channels.post(f"http://{host}:{port}/hook", b"{}", {}, timeout=2)

    assert (outcome.ok, outcome.final, outcome.status) == (False, True, None)
    name = host.strip("[]")
    assert outcome.error == f"refused: {name} resolves to a private address"
    with pytest.raises(BlockingIOError):  # no connection was ever made
        listener.accept()


def test_a_tls_handshake_trickled_byte_by_byte_cannot_stretch_the_attempt(
    listener: socket.socket,
) -> None:
    """The server starts a TLS record of 16 KiB and sends it one byte per 0.1 s: each read is
    quick, so only the attempt's deadline ends the handshake."""
    stop = threading.Event()

    def trickle() -> None:
        listener.setblocking(True)
        listener.settimeout(5)
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record, 16384 bytes long
            while not stop.wait(0.1):
                try:
                    connection.sendall(b"\x00")
                except OSError:
                    return  # the sender gave up: what the test wants

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    port = listener.getsockname()[1]
    started = time.monotonic()
    try:
        outcome = channels.post(
            f"https://127.0.0.1:{port}/hook", b"{}", {}, timeout=1, private_ok=True
        )
    finally:
        stop.set()
        server.join(10)
    elapsed = time.monotonic() - started

    assert elapsed < 1 * 2 + 2  # a bound (the timeout plus a generous margin), not a benchmark
    assert (outcome.ok, outcome.error, outcome.timed_out) == (False, "Timed out after 1 s.", True)
    assert not outcome.final  # a timeout may pass: it is retried


class Certificates:
    """A throwaway CA and server certificates it signs, written as PEM files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Taskdeck test CA")])
        self.ca_file = folder / "ca.pem"
        ca = (
            self._builder(self._name, self._key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self._ca = ca
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def server_context(self, dns_name: str) -> ssl.SSLContext:
        """A server-side TLS context with a certificate for `dns_name`."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
        certificate = (
            self._builder(subject, key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = self.folder / f"{dns_name}.pem"
        chain.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context

    def _builder(
        self, subject: x509.Name, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(hours=1))
        )


@pytest.fixture
def certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certificates:
    """The test CA, trusted by ssl.create_default_context() (OpenSSL reads SSL_CERT_FILE)."""
    made = Certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(made.ca_file))
    return made


def test_tls_names_the_host_while_connecting_to_its_checked_address(
    certificates: Certificates,
) -> None:
    with WebhookReceiver(tls=certificates.server_context("localhost")) as receiver:
        outcome = channels.post(
            f"https://localhost:{receiver.port}/hook", b"{}", {}, timeout=5, private_ok=True
        )
        assert (outcome.ok, outcome.status, outcome.error) == (True, 200, "")
        [request] = receiver.wait_for(1)
    assert receiver.server_names == ["localhost"]  # SNI: the URL's host name
    assert request.headers["host"] == f"localhost:{receiver.port}"


def test_tls_checks_the_certificate_against_the_host_name(certificates: Certificates) -> None:
    with WebhookReceiver(tls=certificates.server_context("hooks.example.com")) as receiver:
        outcome = channels.post(
            f"https://localhost:{receiver.port}/hook", b"{}", {}, timeout=5, private_ok=True
        )
        assert receiver.requests == []
    assert not outcome.ok
    assert outcome.error.startswith("SSLCertVerificationError")
    assert "localhost" in outcome.error  # the name it was checked against
