"""No secret in any log line or error report: webhook tokens are cut to six characters, and API
tokens, VoIP.ms API passwords, SIP passwords and session ids never appear.

The requests run through the real logging set-up (settings.LOGGING, applied the way Django applies
it, with every level at DEBUG), its stream handlers writing into buffers and the admins' error
e-mails into the outbox; Django's development server and gunicorn's logger class write there too.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client
from django.utils.log import configure_logging
from gunicorn.config import Config

from core.redaction import RedactSecretsFilter, redact_text
from portal.gunicorn_logging import RedactingLogger
from sms.models import SmsConfiguration
from tenants.services import api_token_create
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration
from trunks.models import Trunk

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "voipms"
NEW_API_PASSWORD = "Fresh-VoipMS-Api-Secret-7719"
NEW_SIP_PASSWORD = "Fresh-SIP-Secret-Walrus-3302"


@dataclass
class Captured:
    streams: list[io.StringIO] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def text(self) -> str:
        mails = [
            "\n".join(
                [m.subject, m.body, *(content for content, _ in getattr(m, "alternatives", []))]
            )
            for m in mail.outbox
        ]
        return "\n".join([*(s.getvalue() for s in self.streams), *mails, *self.extra])


@pytest.fixture
def captured_logs(settings: Any) -> Iterator[Captured]:
    """Apply settings.LOGGING at DEBUG level with its stream handlers writing into buffers."""
    settings.ADMINS = [("Operations", "ops@example.com")]
    config = copy.deepcopy(settings.LOGGING)
    captured = Captured()
    for handler in config["handlers"].values():
        if handler["class"] == "logging.StreamHandler":
            handler["stream"] = io.StringIO()
            captured.streams.append(handler["stream"])
    config["root"]["level"] = "DEBUG"
    for name in ("django", "django.request", "django.server", "sms", "core", "tenants"):
        config["loggers"].setdefault(name, {})["level"] = "DEBUG"
    configure_logging(settings.LOGGING_CONFIG, config)
    try:
        yield captured
    finally:
        configure_logging(settings.LOGGING_CONFIG, django_settings.LOGGING)


@dataclass
class Secrets:
    webhook_token: str
    api_token: str
    session_ids: list[str] = field(default_factory=list)

    def all(self) -> dict[str, str]:
        return {
            "webhook token": self.webhook_token,
            "webhook token after its 6th character": self.webhook_token[6:],
            "API token": self.api_token,
            "VoIP.ms API password": NEW_API_PASSWORD,
            "SIP password": NEW_SIP_PASSWORD,
            **{f"session id {n}": value for n, value in enumerate(self.session_ids, 1)},
        }


def _assert_no_secret(text: str, secrets: Secrets) -> None:
    assert text.strip(), "nothing was captured"
    for name, value in secrets.all().items():
        assert value, name
        assert value not in text, f"the {name} is in the output"


def _configuration_form(configuration: SmsConfiguration, **changes: str) -> dict[str, Any]:
    return {
        "name": configuration.name,
        "trunk": configuration.trunk_id,
        "enabled": "on",
        "username": configuration.username,
        "api_password": NEW_API_PASSWORD,
        "number_format": "nanpa",
        "channel": "sms",
        "long_message_policy": "split",
        "daily_send_limit": "100",
        **changes,
    }


def _trunk_form(trunk: Trunk) -> dict[str, Any]:
    return {
        "name": trunk.name,
        "brand": trunk.brand,
        "enabled": "on",
        "host": trunk.host,
        "port": trunk.port,
        "transport": trunk.transport,
        "sip_username": trunk.sip_username,
        "sip_password": NEW_SIP_PASSWORD,
        "reregister_interval": trunk.reregister_interval,
        "max_concurrent_calls": trunk.max_concurrent_calls,
        "assignments-TOTAL_FORMS": "0",
        "assignments-INITIAL_FORMS": "0",
        "assignments-MIN_NUM_FORMS": "0",
        "assignments-MAX_NUM_FORMS": "1000",
    }


def _boom(message: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(message)

    return fail


def _run_requests(world: World, monkeypatch: pytest.MonkeyPatch, *, debug: bool) -> Secrets:
    """Send a webhook, API calls with a token and configuration saves with passwords, some of
    them failing with a 500, and return the secrets they carried."""
    configuration = make_configuration(world.tenant_a)
    webhook = f"/hooks/voipms/{configuration.webhook_token}/"
    secrets = Secrets(
        webhook_token=configuration.webhook_token,
        api_token=api_token_create(user=world.admin_a, name="logs")[1],
    )
    anonymous = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    body = (FIXTURES / "sms.json").read_bytes()
    assert anonymous.post(webhook, body, content_type="application/json").status_code == 200
    assert anonymous.get(webhook, {"to": "2125550101", "message": "hi"}).status_code == 400
    assert anonymous.post(webhook, b"{", content_type="application/json").status_code == 400
    assert anonymous.get(f"{webhook}extra/?token={secrets.webhook_token}").status_code == 404
    with monkeypatch.context() as patch:
        patch.setattr(
            "sms.inbound.receive.webhook_delivery_accept",
            _boom(f"could not store http://127.0.0.1{webhook}"),
        )
        assert anonymous.post(webhook, body, content_type="application/json").status_code == 500

    api = Client(
        HTTP_HOST="127.0.0.1",
        HTTP_AUTHORIZATION=f"Token {secrets.api_token}",
        raise_request_exception=False,
    )
    assert api.get("/api/v1/messages/", {"q": "hello"}).status_code == 200
    bad_token = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {secrets.api_token}x")
    assert bad_token.get("/api/v1/messages/").status_code == 401
    with monkeypatch.context() as patch:
        patch.setattr(
            "sms.api.messages.MessageViewSet.get_queryset", _boom("the message list failed")
        )
        assert api.get("/api/v1/messages/").status_code == 500

    tenant_admin = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    tenant_admin.force_login(world.admin_a)
    secrets.session_ids.append(tenant_admin.cookies[django_settings.SESSION_COOKIE_NAME].value)
    change = f"/tenant/sms/smsconfiguration/{configuration.pk}/change/"
    assert tenant_admin.post(change, _configuration_form(configuration)).status_code == 302
    configuration.refresh_from_db()
    assert configuration.api_password == NEW_API_PASSWORD
    with monkeypatch.context() as patch:
        patch.setattr(
            "sms.admin.configurations.sms_configuration_update",
            _boom("the configuration save failed"),
        )
        failed = tenant_admin.post(change, _configuration_form(configuration, name="Renamed"))
    assert failed.status_code == 500
    if debug:
        # The debug page is an error report too.
        page = failed.content.decode()
        assert "the configuration save failed" in page
        _assert_no_secret(page, secrets)

    system_admin = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    system_admin.force_login(world.sysadmin)
    secrets.session_ids.append(system_admin.cookies[django_settings.SESSION_COOKIE_NAME].value)
    trunk = shared_trunk()
    trunk_change = f"/admin/trunks/trunk/{trunk.pk}/change/"
    assert system_admin.post(trunk_change, _trunk_form(trunk)).status_code == 302
    trunk.refresh_from_db()
    assert trunk.sip_password == NEW_SIP_PASSWORD
    with monkeypatch.context() as patch:
        patch.setattr("trunks.admin.trunk_save", _boom("the trunk save failed"))
        assert system_admin.post(trunk_change, _trunk_form(trunk)).status_code == 500

    # What Django's development server logs for each request it serves.
    server = WSGIRequestHandler.__new__(WSGIRequestHandler)
    server.request = None
    server.log_message(
        '"%s" %s %s', f"POST {webhook}?token={secrets.webhook_token} HTTP/1.1", "200", "2"
    )
    server.log_message('"%s" %s %s', f"GET {webhook} HTTP/1.1", "404", "9")
    return secrets


@pytest.mark.django_db
def test_logs_and_error_reports_hold_no_secret(
    world: World,
    captured_logs: Captured,
    monkeypatch: pytest.MonkeyPatch,
    published: Any,
) -> None:
    secrets = _run_requests(world, monkeypatch, debug=False)
    assert len(secrets.session_ids) == 2

    output = captured_logs.text()
    _assert_no_secret(output, secrets)
    shown = f"/hooks/voipms/{secrets.webhook_token[:6]}***/"
    assert f"Bad Request: {shown}" in output
    assert f"Internal Server Error: {shown}" in output
    assert f"POST {shown}?token=*** HTTP/1.1" in output
    reports = [m.body for m in mail.outbox]
    assert len(reports) == 4
    assert any("could not store" in r and "api_password" not in r for r in reports)
    configuration_report = next(r for r in reports if "the configuration save failed" in r)
    assert "api_password" in configuration_report  # the field is listed, its value is not
    assert any("HTTP_AUTHORIZATION" in r for r in reports)


@pytest.mark.django_db
def test_with_debug_on_logs_and_the_debug_page_hold_no_secret(
    world: World,
    captured_logs: Captured,
    monkeypatch: pytest.MonkeyPatch,
    published: Any,
    settings: Any,
) -> None:
    settings.DEBUG = True

    secrets = _run_requests(world, monkeypatch, debug=True)

    output = captured_logs.text()
    _assert_no_secret(output, secrets)
    assert "Traceback" in output
    assert f"/hooks/voipms/{secrets.webhook_token[:6]}***/" in output


def test_every_handler_of_the_logging_settings_redacts_secrets() -> None:
    config = django_settings.LOGGING
    redacting = {
        name
        for name, spec in config["filters"].items()
        if spec.get("()") == "core.redaction.RedactSecretsFilter"
    }
    assert redacting
    for name, handler in config["handlers"].items():
        assert redacting & set(handler.get("filters", [])), f"handler {name} does not redact"
    # Django's own handlers, which lack the filter, are replaced for its loggers.
    assert config["loggers"]["django"]["handlers"]
    assert config["loggers"]["django.server"]["handlers"] == ["django.server"]


def test_the_filter_redacts_the_message_its_arguments_and_the_traceback() -> None:
    token = "Qm9vbGVhbkZsYWdzQXJlTm90U2VjcmV0cy4uLg"
    try:
        raise ValueError(f"no route to /hooks/voipms/{token}/")
    except ValueError as error:
        record = logging.LogRecord(
            "sms",
            logging.ERROR,
            __file__,
            1,
            "webhook %s failed",
            (f"/hooks/voipms/{token}/",),
            (type(error), error, error.__traceback__),
        )
    assert RedactSecretsFilter().filter(record) is True
    formatted = logging.Formatter().format(record)
    assert token not in formatted
    assert "webhook /hooks/voipms/Qm9vbG***/ failed" in formatted
    assert "ValueError: no route to /hooks/voipms/Qm9vbG***/" in formatted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /hooks/voipms/AbCdEf0123456789-_x/?to=1", "GET /hooks/voipms/AbCdEf***/?to=1"),
        ("next=%2Fhooks%2Fvoipms%2FAbCdEf0123456789%2F", "next=%2Fhooks%2Fvoipms%2FAbCdEf***%2F"),
        (
            "Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
            "Authorization: Token ***",
        ),
        ("Token authentication failed", "Token authentication failed"),
        ("{'api_password': ['s3cret'], 'name': ['x']}", "{'api_password': ['***'], 'name': ['x']}"),
        ('{"sip_password": "abc", "port": 5060}', '{"sip_password": "***", "port": 5060}'),
        ("sessionid=abc123; csrftoken=def456", "sessionid=***; csrftoken=***"),
        ("/api/?api_password=foo&page=2", "/api/?api_password=***&page=2"),
        ("password = 'hunter2'", "password = '***'"),
        (
            "&#x27;new_password1&#x27;: &#x27;hunter2&#x27;",
            "&#x27;new_password1&#x27;: &#x27;***&#x27;",
        ),
        ("/hooks/voipms/abc123***/", "/hooks/voipms/abc123***/"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


class _FakeResponse:
    status = "200 OK"
    sent = 2
    headers = [("Content-Type", "text/plain"), ("Set-Cookie", "sessionid=respsecret123; Path=/")]


def test_gunicorn_access_and_error_logs_hold_no_secret(tmp_path: Path) -> None:
    token = "Zm9yIHRoZSBhY2Nlc3MgbG9nIG9ubHkgdGVzdHM"
    api_token = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    cfg.set("loglevel", "debug")
    cfg.set("logger_class", "portal.gunicorn_logging.RedactingLogger")
    cfg.set(
        "access_log_format",
        '%(h)s "%(r)s" %(U)s %(q)s %(s)s "%(f)s" "%({authorization}i)s" "%({cookie}i)s" '
        '"%({set-cookie}o)s" "%({http_cookie}e)s"',
    )
    assert cfg.logger_class is RedactingLogger
    logger = RedactingLogger(cfg)
    path = f"/hooks/voipms/{token}/"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"{path}?token={token}",
        "PATH_INFO": path,
        "QUERY_STRING": f"token={token}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": f"https://portal.example{path}",
        "HTTP_COOKIE": "sessionid=cookiesecret456",
    }
    request = SimpleNamespace(
        headers=[
            ("AUTHORIZATION", f"Token {api_token}"),
            ("COOKIE", "sessionid=cookiesecret456"),
        ]
    )

    logger.access(_FakeResponse(), request, environ, timedelta(milliseconds=3))
    try:
        raise RuntimeError(f"worker failed on {path}")
    except RuntimeError:
        logger.exception("Error handling request %s", environ["RAW_URI"])
    logger.info("Booting worker for %s", json.dumps({"url": f"http://x{path}"}))
    for handler in [*logger.access_log.handlers, *logger.error_log.handlers]:
        handler.flush()

    access = (tmp_path / "access.log").read_text()
    errors = (tmp_path / "error.log").read_text()
    assert f'"POST /hooks/voipms/{token[:6]}***/?token=*** HTTP/1.1"' in access
    assert "203.0.113.9" in access
    assert f"Error handling request /hooks/voipms/{token[:6]}***/" in errors
    assert "RuntimeError: worker failed on /hooks/voipms/Zm9yIH***/" in errors
    for secret in (token[6:], api_token, "cookiesecret456", "respsecret123"):
        assert secret not in access + errors


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_gunicorn_started_as_shipped_logs_no_token_and_no_query_string(tmp_path: Path) -> None:
    token = "c2hpcHBlZCBjb25maWcgd2l0aCBhIHJlYWwgc2VydmVy"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "VAR_DIR": str(tmp_path / "var"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--config",
            "python:portal.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(tmp_path / "access.log"),
            "--error-logfile",
            str(tmp_path / "error.log"),
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                _get(f"{base}/favicon.ico")
                break
            except OSError:
                time.sleep(0.1)
        status = _get(f"{base}/hooks/voipms/{token}/extra/?token={token}&message=see+you+at+7")
        assert status == 404
    finally:
        server.terminate()
        server.wait(timeout=60)

    access = (tmp_path / "access.log").read_text()
    errors = (tmp_path / "error.log").read_text()
    assert f'"GET /hooks/voipms/{token[:6]}***/extra/ HTTP/1.1" 404' in access
    for secret in (token[6:], "see+you+at+7"):
        assert secret not in access + errors
