"""Tests of the sandbox's inbound side: webhooks, URL callbacks, the command and the phone page."""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from freezegun import freeze_time

from tenants.models import User
from tests.factories import World
from trunks.voipms.sandbox.models import MessageType, SandboxAccount, SandboxDid, SandboxMessage
from trunks.voipms.sandbox.services import (
    SandboxError,
    sandbox_account_ensure,
    sandbox_did_configure,
    sandbox_inbound_emit,
    sandbox_message_send,
    sandbox_outbox,
)
from trunks.voipms.webhooks import InboundMessage, parse_callback_query_string, parse_webhook_json

USERNAME = "owner@example.com"
PASSWORD = "Sandbox-Api-Pa55w0rd"
DID = "8455577768"
DID_2 = "8455577769"
HANDSET = "2125550143"
FIRST_ID = 100000
EASTERN = ZoneInfo("America/New_York")
PHONE = "/sandbox/voipms/phone/"
THREAD = "/sandbox/voipms/phone/thread/"


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny portal stand-in on 127.0.0.1 that records every request it gets."""

    port: int = 0
    status: int = 200
    answer: bytes = b"ok"
    hits: list[Hit] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.hits.append(Hit(self.command, self.path, headers, body))
            self.send_response(state.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            self.wfile.write(state.answer)

        do_GET = _record
        do_POST = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def account(db: None) -> SandboxAccount:
    return sandbox_account_ensure(username=USERNAME, api_password=PASSWORD, dids=[DID, DID_2])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# JSON webhook ------------------------------------------------------------------------------


def test_the_webhook_posts_the_captured_sms_shape(
    account: SandboxAccount, receiver: Receiver
) -> None:
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/hooks/voipms/tok-123/")
    with freeze_time("2026-09-07 14:20:46.654321"):
        message = sandbox_inbound_emit(
            did=f"+1{DID}", from_number=HANDSET, text="Connect webhook test 14:20:19"
        )
    (hit,) = receiver.hits
    assert (hit.method, hit.path) == ("POST", "/hooks/voipms/tok-123/")
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"]
    assert json.loads(hit.body) == {
        "data": {
            "id": FIRST_ID,
            "payload": {
                "id": FIRST_ID,
                "to": [{"status": "webhook_delivered", "phone_number": DID}],
                "from": {"phone_number": HANDSET},
                "text": "Connect webhook test 14:20:19",
                "type": "SMS",
                "media": [],
                "received_at": "2026-09-07T14:20:46.000000+00:00",
                "record_type": "message",
            },
            "event_type": "message.received",
            "record_type": "event",
        }
    }
    # Key order as captured from production (DOMAIN.md §3).
    assert hit.body.startswith(
        b'{"data":{"id":100000,"payload":{"id":100000,"to":[{"status":"webhook_delivered",'
    )
    assert list(json.loads(hit.body)["data"]["payload"]) == [
        "id",
        "to",
        "from",
        "text",
        "type",
        "media",
        "received_at",
        "record_type",
    ]
    assert parse_webhook_json(hit.body) == InboundMessage(
        kind="sms",
        provider_id=FIRST_ID,
        from_number=f"+1{HANDSET}",
        to_number=f"+1{DID}",
        text="Connect webhook test 14:20:19",
        media_urls=(),
        received_at=dt.datetime(2026, 9, 7, 14, 20, 46, tzinfo=dt.UTC),
        received_at_raw="2026-09-07T14:20:46.000000+00:00",
        event_type="message.received",
        source="webhook",
    )
    assert (message.portal_http_status, message.delivered_to_portal) == (200, True)
    stored = SandboxMessage.objects.get()
    assert (stored.kind, stored.type, stored.did, stored.contact) == ("sms", 1, DID, HANDSET)
    assert (stored.via, stored.portal_http_status, stored.delivered_to_portal) == (
        "webhook",
        200,
        True,
    )


def test_the_webhook_of_an_mms_in_e164_format(account: SandboxAccount, receiver: Receiver) -> None:
    sandbox_did_configure(
        did=DID, webhook_url=f"{receiver.url}/hooks/voipms/tok/", number_format="e164"
    )
    sms = sandbox_inbound_emit(did=DID, from_number=HANDSET, text="first")
    media = ["https://voip.ms/media/MTc4/media.png", "https://example.com/b.gif"]
    mms = sandbox_inbound_emit(did=DID, from_number=f"1{HANDSET}", media_urls=media)
    assert (sms.kind, sms.provider_id, mms.kind, mms.provider_id) == (
        "sms",
        FIRST_ID,
        "mms",
        FIRST_ID,
    )
    payload = json.loads(receiver.hits[1].body)["data"]["payload"]
    assert payload["id"] == FIRST_ID
    assert payload["type"] == "MMS"
    assert payload["text"] == ""
    assert payload["to"] == [{"status": "webhook_delivered", "phone_number": f"+1{DID}"}]
    assert payload["from"] == {"phone_number": f"+1{HANDSET}"}
    assert payload["media"] == [{"url": url} for url in media]
    parsed = parse_webhook_json(receiver.hits[1].body)
    assert isinstance(parsed, InboundMessage)
    assert (parsed.kind, parsed.media_urls) == ("mms", tuple(media))


def test_a_short_code_sender_passes_unchanged(account: SandboxAccount, receiver: Receiver) -> None:
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/h/", number_format="e164")
    sandbox_inbound_emit(did=DID, from_number="55555", text="Your code is 1234")
    assert json.loads(receiver.hits[0].body)["data"]["payload"]["from"] == {"phone_number": "55555"}


def test_a_failing_portal_is_recorded(account: SandboxAccount, receiver: Receiver) -> None:
    receiver.status = 500
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/h/")
    message = sandbox_inbound_emit(did=DID, from_number=HANDSET, text="hi")
    assert (message.portal_http_status, message.delivered_to_portal) == (500, False)
    assert "HTTP 500" in message.portal_error
    stored = SandboxMessage.objects.get()
    assert (stored.portal_http_status, stored.delivered_to_portal) == (500, False)


def test_a_redirect_is_not_a_delivery(account: SandboxAccount, receiver: Receiver) -> None:
    receiver.status = 302
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/h/")
    message = sandbox_inbound_emit(did=DID, from_number=HANDSET, text="hi")
    assert (message.portal_http_status, message.delivered_to_portal) == (302, False)


def test_an_unreachable_portal_is_recorded_without_its_token(account: SandboxAccount) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks/voipms/secret-token-xyz/"
    sandbox_did_configure(did=DID, webhook_url=url)
    message = sandbox_inbound_emit(did=DID, from_number=HANDSET, text="hi")
    assert message.portal_http_status is None
    assert not message.delivered_to_portal
    assert "could not be reached" in message.portal_error
    assert "secret-token-xyz" not in message.portal_error


def test_a_did_without_a_webhook_keeps_the_message_for_get_sms(account: SandboxAccount) -> None:
    message = sandbox_inbound_emit(did=DID, from_number=HANDSET, text="hi")
    assert message.portal_http_status is None
    assert "no enabled SMS/MMS webhook" in message.portal_error
    assert SandboxMessage.objects.filter(type=MessageType.RECEIVED).count() == 1


def test_a_disabled_webhook_is_not_called(account: SandboxAccount, receiver: Receiver) -> None:
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/h/", webhook_enabled=False)
    sandbox_inbound_emit(did=DID, from_number=HANDSET, text="hi")
    assert receiver.hits == []


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"did": "3322496213"}, "not on any sandbox account"),
        ({"did": "12"}, "not a US or Canadian"),
        ({"from_number": "12"}, "not a US or Canadian number or a short code"),
        ({"text": ""}, "Write a text"),
        ({"text": "x" * 2049}, "at most 2048"),
        ({"media_urls": ["https://x.test/1"] * 4}, "at most 3 media"),
        ({"media_urls": ["ftp://x.test/a.png"]}, "public http"),
        ({"via": "fax"}, "webhook"),
    ],
)
def test_emit_refuses_what_voipms_could_not_deliver(
    account: SandboxAccount, arguments: dict[str, Any], words: str
) -> None:
    with pytest.raises(SandboxError, match=words):
        sandbox_inbound_emit(**{"did": DID, "from_number": HANDSET, "text": "hi", **arguments})
    assert not SandboxMessage.objects.exists()


# URL callback ------------------------------------------------------------------------------

CALLBACK = (
    "/hooks/voipms/tok-123/?from={FROM}&to={TO}&message={MESSAGE}&id={ID}"
    "&date={TIMESTAMP}&media={MEDIA}"
)


def test_the_callback_gets_the_form_encoded_template(
    account: SandboxAccount, receiver: Receiver
) -> None:
    sandbox_did_configure(did=DID, callback_url=f"{receiver.url}{CALLBACK}")
    text = "Hi there + you / 50% & more é?"
    media = ["https://example.com/a.png", "https://example.com/c.gif"]
    with freeze_time("2026-09-07 14:20:46"):
        message = sandbox_inbound_emit(
            did=DID, from_number=HANDSET, text=text, media_urls=media, via="callback"
        )
    (hit,) = receiver.hits
    assert hit.method == "GET"
    assert hit.body == b""
    assert hit.path == (
        "/hooks/voipms/tok-123/?from=2125550143&to=8455577768"
        "&message=Hi+there+%2B+you+%2F+50%25+%26+more+%C3%A9%3F&id=100000"
        "&date=2026-09-07+10%3A20%3A46"
        "&media=https%3A%2F%2Fexample.com%2Fa.png%2Chttps%3A%2F%2Fexample.com%2Fc.gif"
    )
    parsed = parse_callback_query_string(hit.path.partition("?")[2])
    assert (parsed.kind, parsed.provider_id, parsed.text, parsed.media_urls) == (
        "mms",
        FIRST_ID,
        text,
        tuple(media),
    )
    assert (parsed.from_number, parsed.to_number) == (f"+1{HANDSET}", f"+1{DID}")
    assert parsed.received_at == dt.datetime(2026, 9, 7, 10, 20, 46, tzinfo=EASTERN)
    assert (message.via, message.portal_http_status, message.delivered_to_portal) == (
        "callback",
        200,
        True,
    )


def test_the_callback_writes_e164_numbers_with_an_escaped_plus(
    account: SandboxAccount, receiver: Receiver
) -> None:
    sandbox_did_configure(
        did=DID,
        callback_url=f"{receiver.url}/cb?from={{FROM}}&to={{TO}}&m={{MESSAGE}}&x={{UNKNOWN}}",
        number_format="e164",
    )
    sandbox_inbound_emit(did=DID, from_number=HANDSET, text="a b", via="callback")
    assert receiver.hits[0].path == (
        "/cb?from=%2B12125550143&to=%2B18455577768&m=a+b&x=%7BUNKNOWN%7D"
    )


@pytest.mark.parametrize(
    ("retry", "answer", "delivered"),
    [(True, b"ok", True), (True, b"OK", False), (True, b"ok\n", False), (False, b"OK", True)],
)
def test_callback_retry_wants_exactly_ok(
    account: SandboxAccount, receiver: Receiver, retry: bool, answer: bytes, delivered: bool
) -> None:
    receiver.answer = answer
    sandbox_did_configure(
        did=DID, callback_url=f"{receiver.url}/cb?id={{ID}}", callback_retry=retry
    )
    message = sandbox_inbound_emit(did=DID, from_number=HANDSET, text="hi", via="callback")
    assert message.delivered_to_portal is delivered
    assert message.portal_http_status == 200
    assert ('exactly "ok"' in message.portal_error) is not delivered


# Outbox ------------------------------------------------------------------------------------


def test_the_outbox_lists_what_the_portal_sent_oldest_first(account: SandboxAccount) -> None:
    with freeze_time("2026-09-07 14:00:00"):
        sandbox_message_send(account=account, kind="sms", did=DID, contact=HANDSET, message="1")
    with freeze_time("2026-09-07 14:01:00"):
        sandbox_message_send(
            account=account, kind="mms", did=DID_2, contact=HANDSET, message="2", media=["h://x"]
        )
        sandbox_message_send(
            account=account, kind="sms", did=DID, contact="2125550100", message="3"
        )
    sandbox_inbound_emit(did=DID, from_number=HANDSET, text="inbound is not in the outbox")
    assert [m.message for m in sandbox_outbox()] == ["1", "2", "3"]
    assert [m.message for m in sandbox_outbox(did=f"+1{DID}")] == ["1", "3"]
    assert [m.message for m in sandbox_outbox(contact=f"+1{HANDSET}")] == ["1", "2"]
    assert [m.message for m in sandbox_outbox(did=DID, contact=HANDSET)] == ["1"]


# Management command ------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("voipms_sandbox", *args, stdout=out)
    return out.getvalue()


def test_the_command_creates_and_updates_an_account(db: None) -> None:
    output = run(
        "account",
        "--username",
        USERNAME,
        "--api-password",
        PASSWORD,
        "--did",
        DID,
        "--did",
        f"+1{DID_2}",
        "--ip-allow",
        "10.0.0.0/8",
        "--ip-allow",
        "192.168.*.*",
        "--daily-cap",
        "7",
        "--latency-ms",
        "5",
        "--fault-mode",
        "error_522",
        "--fault-rate",
        "0.25",
    )
    assert PASSWORD not in output
    assert USERNAME in output
    account = SandboxAccount.objects.get()
    assert account.api_password == PASSWORD
    assert (account.ip_allowlist, account.daily_send_cap, account.latency_ms) == (
        "10.0.0.0/8,192.168.*.*",
        7,
        5,
    )
    assert (account.fault_mode, account.fault_rate) == ("error_522", 0.25)
    assert sorted(account.dids.values_list("did", flat=True)) == [DID, DID_2]
    run("account", "--username", USERNAME, "--fault-mode", "none", "--no-api-enabled")
    account.refresh_from_db()
    assert (account.fault_mode, account.api_enabled, account.api_password) == ("", False, PASSWORD)
    with pytest.raises(CommandError, match="needs an API password"):
        run("account", "--username", "new@example.com")


def test_the_command_configures_a_did(account: SandboxAccount) -> None:
    output = run(
        "did",
        "--did",
        DID,
        "--webhook-url",
        "https://portal.example/hooks/voipms/secret-token/",
        "--callback-url",
        "https://portal.example/cb/secret-token/?from={FROM}",
        "--format",
        "e164",
        "--no-sms",
        "--no-mms",
        "--callback-retry",
    )
    assert "secret-token" not in output
    sandbox_did = SandboxDid.objects.get(did=DID)
    assert sandbox_did.webhook_url == "https://portal.example/hooks/voipms/secret-token/"
    assert sandbox_did.callback_url == "https://portal.example/cb/secret-token/?from={FROM}"
    assert (sandbox_did.number_format, sandbox_did.sms_enabled, sandbox_did.mms_available) == (
        "e164",
        False,
        False,
    )
    assert sandbox_did.callback_retry
    run("did", "--did", DID, "--sms", "--mms")
    sandbox_did.refresh_from_db()
    assert (sandbox_did.sms_enabled, sandbox_did.mms_available, sandbox_did.number_format) == (
        True,
        True,
        "e164",
    )
    with pytest.raises(CommandError, match="not on any sandbox account"):
        run("did", "--did", "3322496213", "--no-sms")


def test_the_command_emits_and_prints_the_portals_status(
    account: SandboxAccount, receiver: Receiver
) -> None:
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/h/")
    output = run("emit", "--did", DID, "--from", HANDSET, "--text", "hello")
    assert output.strip() == "SMS 100000 pushed by webhook: HTTP 200"
    output = run(
        "emit",
        "--did",
        DID,
        "--from",
        HANDSET,
        "--media",
        "https://x.test/a.png",
        "--via",
        "webhook",
    )
    assert output.strip() == "MMS 100000 pushed by webhook: HTTP 200"
    receiver.status = 503
    with pytest.raises(CommandError, match="HTTP 503"):
        run("emit", "--did", DID, "--from", HANDSET, "--text", "again")
    assert len(receiver.hits) == 3


def test_the_command_prints_the_outbox_and_resets_faults(account: SandboxAccount) -> None:
    assert run("outbox").strip() == "The portal has sent nothing."
    with freeze_time("2026-09-07 14:20:46"):
        sandbox_message_send(
            account=account, kind="sms", did=DID, contact=HANDSET, message="Your table is ready"
        )
    output = run("outbox", "--did", DID)
    assert "2026-09-07 10:20:46 ET  SMS 100000  8455577768 -> 2125550143" in output
    assert "Message delivered to handset." in output
    assert "Your table is ready" in output
    SandboxAccount.objects.update(fault_mode="soap_fault", latency_ms=100)
    assert "1 account(s)" in run("reset-faults")
    account.refresh_from_db()
    assert (account.fault_mode, account.latency_ms) == ("", 0)


# Phone simulator ---------------------------------------------------------------------------


@pytest.fixture
def owned_by_a(account: SandboxAccount, user_a: User) -> SandboxAccount:
    """Give the account (DID and DID_2) to tenant A."""
    account.tenant = user_a.tenant
    account.save(update_fields=["tenant"])
    return account


def test_the_phone_needs_a_login(account: SandboxAccount, client_for: Callable) -> None:
    client = client_for(None)
    for url in (PHONE, f"{THREAD}?did={DID}&handset={HANDSET}"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    response = client.post(PHONE, {"did": DID, "handset": HANDSET, "text": "hi"})
    assert response.status_code == 302
    assert not SandboxMessage.objects.exists()


def test_sending_without_a_number_asks_for_one(
    account: SandboxAccount, sysadmin: User, client_for: Callable
) -> None:
    client = client_for(sysadmin)
    response = client.post(PHONE, {"handset": HANDSET, "text": "hi"})
    assert response.status_code == 302 and response["Location"] == PHONE
    assert "Choose the number to text." in client.get(PHONE).content.decode()
    assert not SandboxMessage.objects.exists()


def test_a_system_admin_sees_every_did(
    account: SandboxAccount, sysadmin: User, client_for: Callable
) -> None:
    sandbox_account_ensure(username="other@example.com", api_password="x", dids=["3322496213"])
    response = client_for(sysadmin).get(PHONE)
    assert response.status_code == 200
    assert [d.did for d in response.context["dids"]] == ["3322496213", DID, DID_2]
    assert b"+18455577769" in response.content
    assert b"csrfmiddlewaretoken" in response.content
    assert b'value="2125550143"' in response.content


def test_a_tenant_user_sees_only_the_dids_of_its_tenant(
    owned_by_a: SandboxAccount, user_a: User, admin_b: User, client_for: Callable
) -> None:
    sandbox_account_ensure(username="b@example.com", api_password="x", dids=["3322496213"])
    response = client_for(user_a).get(PHONE)
    assert [d.did for d in response.context["dids"]] == [DID, DID_2]
    assert b"+13322496213" not in response.content
    nothing = client_for(admin_b).get(PHONE)
    assert nothing.status_code == 200
    assert list(nothing.context["dids"]) == []
    assert b"No sandbox DID is visible to you" in nothing.content


def test_another_tenants_did_is_a_404(
    owned_by_a: SandboxAccount, admin_b: User, user_a: User, client_for: Callable
) -> None:
    sandbox_account_ensure(
        username="b@example.com", api_password="x", dids=["3322496213"], tenant=admin_b.tenant
    )
    client = client_for(user_a)
    for did in ("3322496213", "2125550199", "nonsense"):
        assert client.get(f"{PHONE}?did={did}").status_code == 404
        assert client.get(THREAD, {"did": did, "handset": HANDSET}).status_code == 404
        response = client.post(PHONE, {"did": did, "handset": HANDSET, "text": "hi"})
        assert response.status_code == 404
    assert not SandboxMessage.objects.exists()


def test_the_phone_sends_and_shows_the_thread(
    owned_by_a: SandboxAccount, user_a: User, client_for: Callable, receiver: Receiver
) -> None:
    account = owned_by_a
    sandbox_did_configure(did=DID, webhook_url=f"{receiver.url}/hooks/voipms/tok/")
    client = client_for(user_a)
    with freeze_time("2026-09-07 14:20:00"):
        response = client.post(
            PHONE, {"did": DID, "handset": "(212) 555-0143", "text": "Table for two?"}
        )
    assert response.status_code == 302
    assert response["Location"] == f"{PHONE}?did={DID}&handset={HANDSET}"
    (hit,) = receiver.hits
    assert json.loads(hit.body)["data"]["payload"]["text"] == "Table for two?"
    with freeze_time("2026-09-07 14:21:00"):
        sandbox_message_send(
            account=account, kind="sms", did=DID, contact=HANDSET, message="Yes, 7 pm."
        )
        sandbox_message_send(
            account=account, kind="sms", did=DID, contact="2125550100", message="Someone else"
        )
    with freeze_time("2026-09-07 14:21:05"):
        thread = client.get(THREAD, {"did": DID, "handset": f"+1{HANDSET}"})
    assert thread.status_code == 200
    assert thread.json() == {
        "did": f"+1{DID}",
        "handset": HANDSET,
        "messages": [
            {
                "id": FIRST_ID,
                "kind": "sms",
                "from_handset": True,
                "text": "Table for two?",
                "media": [],
                # The tenant's time (America/New_York), as on every page of the tenant.
                "at": "2026-09-07T10:20:00-04:00",
                "at_display": "Sept. 7, 2026, 10:20 a.m. EDT",
                "status": "pushed by webhook: HTTP 200",
            },
            {
                "id": FIRST_ID + 1,
                "kind": "sms",
                "from_handset": False,
                "text": "Yes, 7 pm.",
                "media": [],
                "at": "2026-09-07T10:21:00-04:00",
                "at_display": "Sept. 7, 2026, 10:21 a.m. EDT",
                "status": "Message sent",
            },
        ],
    }
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["selected"].did == DID
    assert b"pushed to the portal, which answered HTTP 200" in page.content


def test_the_phone_sends_an_mms_by_callback_and_reports_problems(
    account: SandboxAccount, sysadmin: User, client_for: Callable, receiver: Receiver
) -> None:
    sandbox_did_configure(did=DID_2, callback_url=f"{receiver.url}/cb?id={{ID}}&media={{MEDIA}}")
    client = client_for(sysadmin)
    response = client.post(
        PHONE,
        {
            "did": DID_2,
            "handset": HANDSET,
            "text": "",
            "media_url": "https://example.com/a.png",
            "via": "callback",
        },
        follow=True,
    )
    assert b"MMS 100000 pushed to the portal" in response.content
    assert receiver.hits[0].path == "/cb?id=100000&media=https%3A%2F%2Fexample.com%2Fa.png"
    response = client.post(PHONE, {"did": DID, "handset": HANDSET, "text": "hi"}, follow=True)
    assert b"recorded, but: The DID has no enabled SMS/MMS webhook URL" in response.content
    response = client.post(PHONE, {"did": DID, "handset": HANDSET, "text": ""}, follow=True)
    assert b"Write a text or attach a media URL" in response.content
    response = client.post(PHONE, {"did": DID, "handset": "12", "text": "x"}, follow=True)
    assert b"is not a US or Canadian number or a short code" in response.content
    assert SandboxMessage.objects.count() == 2
    assert client.get(THREAD, {"did": DID, "handset": "12"}).status_code == 400


def test_the_phone_form_needs_its_csrf_token(account: SandboxAccount, sysadmin: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(sysadmin)
    response = client.post(PHONE, {"did": DID, "handset": HANDSET, "text": "hi"})
    assert response.status_code == 403
    assert not SandboxMessage.objects.exists()


def test_the_phone_shows_the_acting_tenants_dids_only(world: World, client_for: Callable) -> None:
    sandbox_account_ensure(
        username="a@example.com", api_password=PASSWORD, dids=[DID], tenant=world.tenant_a
    )
    sandbox_account_ensure(
        username="b@example.com", api_password=PASSWORD, dids=[DID_2], tenant=world.tenant_b
    )
    sandbox_account_ensure(
        username="nobody@example.com", api_password=PASSWORD, dids=["3322496213"]
    )
    assert [d.did for d in client_for(world.user_a).get(PHONE).context["dids"]] == [DID]
    assert [d.did for d in client_for(world.admin_b).get(PHONE).context["dids"]] == [DID_2]
    thread = client_for(world.user_a).get(THREAD, {"did": DID_2, "handset": HANDSET})
    assert thread.status_code == 404
    # A system administrator on the system site sees every DID, labelled by its tenant ...
    root = client_for(world.sysadmin)
    page = root.get(PHONE)
    assert [d.did for d in page.context["dids"]] == ["3322496213", DID, DID_2]
    assert "+18455577769 — Tenant B" in page.content.decode()
    # ... and managing tenant B, B's only: not A's, not the unowned one.
    session = root.session
    session["managed_tenant_id"] = world.tenant_b.pk
    session.save()
    managing = root.get(PHONE)
    assert [d.did for d in managing.context["dids"]] == [DID_2]
    assert root.get(f"{PHONE}?did={DID}").status_code == 404
    response = root.post(PHONE, {"did": DID, "handset": HANDSET, "text": "hi"})
    assert response.status_code == 404
    assert not SandboxMessage.objects.exists()
