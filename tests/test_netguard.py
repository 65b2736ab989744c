"""The outbound guard: only public addresses (or allowed networks), checked and pinned per hop."""

from __future__ import annotations

import datetime
import io
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.http import HttpError, post_json
from core.netguard import (
    AddressRefused,
    HostUnresolved,
    url_address_resolve,
    url_literal_host_check,
)
from trunks.voipms.fetch import MediaDownloadError, download_media

REAL_GETADDRINFO = socket.getaddrinfo
BODY = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100


def answering(table: dict[str, list[str]]) -> Callable[..., Any]:
    """Return a getaddrinfo that answers the names in the table and no other name."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (address, port, 0, 0) if ":" in address else (address, port),
                )
                for address in table[host]
            ]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    return getaddrinfo


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], None]:
    """Return a setter of what host names resolve to; any other name does not resolve."""

    def answer(table: dict[str, list[str]]) -> None:
        monkeypatch.setattr(socket, "getaddrinfo", answering(table))

    return answer


# --- the checker ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.5", "10.0.0.5"),
        ("172.16.4.1", "172.16.4.1"),
        ("192.168.1.1", "192.168.1.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("100.64.0.1", "100.64.0.1"),
        ("0.0.0.0", "0.0.0.0"),  # noqa: S104 - an address refused, not one listened on
        ("224.0.0.1", "224.0.0.1"),
        ("240.0.0.1", "240.0.0.1"),
        ("255.255.255.255", "255.255.255.255"),
        ("[::1]", "::1"),
        ("[::]", "::"),
        ("[fe80::1]", "fe80::1"),
        ("[fc00::1]", "fc00::1"),
        ("[ff02::1]", "ff02::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[::ffff:169.254.169.254]", "::ffff:169.254.169.254"),
        ("[2002:a00:5::1]", "2002:a00:5::1"),
        ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),
    ],
)
def test_an_address_that_is_not_public_is_refused_with_its_host_named(
    host: str, address: str
) -> None:
    with pytest.raises(AddressRefused) as refused:
        url_address_resolve(url=f"http://{host}/latest/meta-data/")

    shown = ipaddress.ip_address(address)
    assert refused.value.message == f'the address of "{host.strip("[]")}" is not public ({shown})'


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://8.8.8.8/a.png", "8.8.8.8"),
        ("http://[2606:4700:4700::1111]:8080/", "2606:4700:4700::1111"),
        ("https://[::ffff:8.8.4.4]/", "::ffff:8.8.4.4"),
        ("https://[2002:808:808::1]/", "2002:808:808::1"),
    ],
)
def test_a_public_address_is_returned_to_connect_to(url: str, address: str) -> None:
    assert url_address_resolve(url=url) == str(ipaddress.ip_address(address))


def test_a_host_name_that_resolves_to_a_private_address_is_refused(
    dns: Callable[[dict[str, list[str]]], None],
) -> None:
    dns({"intranet.example.com": ["10.1.2.3"]})

    with pytest.raises(AddressRefused) as refused:
        url_address_resolve(url="https://intranet.example.com/hook")

    assert refused.value.message == 'the address of "intranet.example.com" is not public (10.1.2.3)'


def test_one_private_address_among_public_ones_is_refused(
    dns: Callable[[dict[str, list[str]]], None],
) -> None:
    dns({"mixed.example.com": ["93.184.215.14", "2606:4700::6810:85e5", "fd00::7"]})

    with pytest.raises(AddressRefused) as refused:
        url_address_resolve(url="https://mixed.example.com/")

    assert refused.value.message == 'the address of "mixed.example.com" is not public (fd00::7)'


def test_a_host_name_with_public_addresses_gives_the_first(
    dns: Callable[[dict[str, list[str]]], None],
) -> None:
    dns({"cdn.example.com": ["93.184.215.14", "93.184.215.15"]})

    assert url_address_resolve(url="https://cdn.example.com/a.png") == "93.184.215.14"


def test_allowed_networks_let_their_addresses_through_and_no_others(
    settings: Any, dns: Callable[[dict[str, list[str]]], None]
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8"]
    dns({"crm.internal": ["10.20.30.40", "fd00::7"]})

    assert url_address_resolve(url="http://crm.internal/hook") == "10.20.30.40"
    assert url_address_resolve(url="http://[::ffff:10.0.0.5]/") == str(
        ipaddress.ip_address("::ffff:10.0.0.5")
    )
    with pytest.raises(AddressRefused):
        url_address_resolve(url="http://192.168.1.1/")
    with pytest.raises(AddressRefused):
        url_address_resolve(url="http://127.0.0.1/")


def test_an_unresolvable_host_is_a_transient_error_not_a_refusal(
    dns: Callable[[dict[str, list[str]]], None],
) -> None:
    dns({})

    with pytest.raises(HostUnresolved) as unresolved:
        url_address_resolve(url="https://gone.example.com/a.png")

    assert unresolved.value.code == "connection_error"
    assert unresolved.value.message == 'could not resolve "gone.example.com"'


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:8080/hook", 'the address of "localhost" is not public (127.0.0.1)'),
        ("http://api.localhost/hook", 'the address of "api.localhost" is not public (127.0.0.1)'),
        ("http://10.0.0.5/hook", 'the address of "10.0.0.5" is not public (10.0.0.5)'),
        ("https://[::1]/hook", 'the address of "::1" is not public (::1)'),
        (
            "https://169.254.169.254/",
            'the address of "169.254.169.254" is not public (169.254.169.254)',
        ),
    ],
)
def test_the_save_time_check_refuses_localhost_and_private_literals(url: str, message: str) -> None:
    with pytest.raises(AddressRefused) as refused:
        url_literal_host_check(url=url)

    assert refused.value.message == message


def test_the_save_time_check_never_looks_a_name_up(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kw: looked_up.append(host))

    url_literal_host_check(url="https://crm.internal/hook")
    url_literal_host_check(url="https://8.8.8.8/hook")

    assert looked_up == []


def test_the_save_time_check_honours_allowed_networks(settings: Any) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]

    url_literal_host_check(url="http://localhost:8080/hook")
    url_literal_host_check(url="http://127.0.0.1:8080/hook")
    with pytest.raises(AddressRefused):
        url_literal_host_check(url="http://10.0.0.5/hook")


# --- requests through the guard ------------------------------------------------------------------


def test_post_json_to_a_private_address_is_refused_without_a_request() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post("http://10.0.0.5/hook", status=204)
        with pytest.raises(HttpError) as refused:
            post_json("http://10.0.0.5/hook", b"{}", {}, timeout=5)

        assert len(mocked.calls) == 0
    assert refused.value.code == "address_refused"
    assert refused.value.message == 'the address of "10.0.0.5" is not public (10.0.0.5)'


@dataclass
class Recorder:
    """A server on 127.0.0.1 that answers every request and records the Host headers it got."""

    server: ThreadingHTTPServer
    hosts: list[str]

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@pytest.fixture
def serve() -> Iterator[Callable[..., Recorder]]:
    """Return a starter of recording servers, in plain HTTP or with a certificate and key."""
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(tls: tuple[Path, Path] | None = None) -> Recorder:
        hosts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hosts.append(self.headers["Host"])
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return Recorder(server, hosts)

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join()


def rebinding(monkeypatch: pytest.MonkeyPatch, name: str, first: str) -> list[str]:
    """Make `name` resolve to `first` once and never again, as a rebinding attacker would."""
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            lookups.append(host)
            if len(lookups) > 1:
                raise socket.gaierror(socket.EAI_NONAME, "rebound elsewhere")
            return answering({name: [first]})(host, port)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_a_plain_http_download_connects_to_the_address_that_was_checked(
    settings: Any, monkeypatch: pytest.MonkeyPatch, serve: Callable[..., Recorder]
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    recorder = serve()
    lookups = rebinding(monkeypatch, "media.rebind.test", "127.0.0.1")
    spool = io.BytesIO()

    download = download_media(
        f"http://media.rebind.test:{recorder.port}/a.png", destination=spool, max_bytes=10_000
    )

    assert spool.getvalue() == BODY
    assert download.size == len(BODY)
    assert lookups == ["media.rebind.test"]
    assert recorder.hosts == [f"media.rebind.test:{recorder.port}"]


def test_an_http_destination_connects_to_the_address_that_was_checked(
    settings: Any, monkeypatch: pytest.MonkeyPatch, serve: Callable[..., Recorder]
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    recorder = serve()
    lookups = rebinding(monkeypatch, "crm.rebind.test", "127.0.0.1")

    status = post_json(f"http://crm.rebind.test:{recorder.port}/hook", b"{}", {}, timeout=5)

    assert status == 200
    assert lookups == ["crm.rebind.test"]
    assert recorder.hosts == [f"crm.rebind.test:{recorder.port}"]


def certificate_for(name: str, directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for one host name and its key; return both paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_an_https_download_is_pinned_and_still_checks_the_certificate_of_the_name(
    settings: Any, monkeypatch: pytest.MonkeyPatch, serve: Callable[..., Recorder], tmp_path: Path
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    cert_path, key_path = certificate_for("media.rebind.test", tmp_path)
    recorder = serve((cert_path, key_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    lookups = rebinding(monkeypatch, "media.rebind.test", "127.0.0.1")
    spool = io.BytesIO()

    download_media(
        f"https://media.rebind.test:{recorder.port}/a.png", destination=spool, max_bytes=10_000
    )

    assert spool.getvalue() == BODY
    assert lookups == ["media.rebind.test"]
    assert recorder.hosts == [f"media.rebind.test:{recorder.port}"]


def test_an_https_download_refuses_a_certificate_for_another_name(
    settings: Any,
    dns: Callable[[dict[str, list[str]]], None],
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    cert_path, key_path = certificate_for("other.rebind.test", tmp_path)
    recorder = serve((cert_path, key_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    dns({"media.rebind.test": ["127.0.0.1"]})

    with pytest.raises(MediaDownloadError) as failed:
        download_media(
            f"https://media.rebind.test:{recorder.port}/a.png",
            destination=io.BytesIO(),
            max_bytes=10_000,
        )

    assert failed.value.message == "could not download from media.rebind.test (SSLError)"
    assert recorder.hosts == []
