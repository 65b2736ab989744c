"""Tests of the VoIP.ms sandbox REST API: status codes, limits, history, faults and real HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import requests
from django.db import connection
from django.test import Client
from freezegun import freeze_time

from trunks.voipms.client import VoipmsClient
from trunks.voipms.errors import VoipmsError, VoipmsOutcomeUnknown, VoipmsTransientError
from trunks.voipms.sandbox import api, services
from trunks.voipms.sandbox.models import (
    FIRST_PROVIDER_ID,
    MessageKind,
    MessageType,
    SandboxAccount,
    SandboxCounter,
    SandboxDid,
    SandboxMessage,
)
from trunks.voipms.sandbox.services import (
    ANY_ADDRESS,
    SandboxError,
    SandboxLimitReached,
    sandbox_account_ensure,
    sandbox_account_reset_faults,
    sandbox_did_configure,
    sandbox_inbound_emit,
    sandbox_message_send,
)

API = "/sandbox/voipms/api/v1/rest.php"
USERNAME = "owner@example.com"
PASSWORD = "Sandbox-Api-Pa55w0rd"
DID = "8455577768"
DID_2 = "8455577769"
FOREIGN_DID = "3322496213"
DST = "2125550143"
EASTERN = ZoneInfo("America/New_York")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


@pytest.fixture
def account(db: None) -> SandboxAccount:
    return sandbox_account_ensure(username=USERNAME, api_password=PASSWORD, dids=[DID, DID_2])


@pytest.fixture
def other_account(db: None) -> SandboxAccount:
    return sandbox_account_ensure(
        username="other@example.com", api_password="other-secret", dids=[FOREIGN_DID]
    )


@pytest.fixture
def api_client() -> Client:
    return Client(HTTP_HOST="127.0.0.1")


def call(
    client: Client, method: str | None, *, remote_addr: str = "127.0.0.1", **params: str
) -> dict[str, Any]:
    """POST one API call as multipart/form-data, as the real client does, and return its JSON."""
    data = {"api_username": USERNAME, "api_password": PASSWORD, **params}
    if method is not None:
        data["method"] = method
    response = client.post(API, data, REMOTE_ADDR=remote_addr)
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"] == "application/json"
    return response.json()


def update(account: SandboxAccount, **changes: Any) -> None:
    SandboxAccount.objects.filter(pk=account.pk).update(**changes)


def received(
    account: SandboxAccount,
    at: dt.datetime,
    *,
    kind: str = MessageKind.SMS,
    provider_id: int = 500,
    message_type: int = MessageType.RECEIVED,
    did: str = DID,
    contact: str = DST,
    text: str = "hi",
    media: list[str] | None = None,
) -> SandboxMessage:
    return SandboxMessage.objects.create(
        account=account,
        kind=kind,
        provider_id=provider_id,
        type=message_type,
        did=did,
        contact=contact,
        message=text,
        media=media or [],
        created_at=at,
    )


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# Protocol --------------------------------------------------------------------------------------


def test_get_with_a_query_string_works(account: SandboxAccount, api_client: Client) -> None:
    query = urlencode({"api_username": USERNAME, "api_password": PASSWORD, "method": "getIP"})
    response = api_client.get(f"{API}?{query}")
    assert response.status_code == 200
    assert response.json() == {"status": "success", "ip": "127.0.0.1"}


def test_get_can_send_an_sms(account: SandboxAccount, api_client: Client) -> None:
    query = urlencode(
        {
            "api_username": USERNAME,
            "api_password": PASSWORD,
            "method": "sendSMS",
            "did": DID,
            "dst": DST,
            "message": "by GET",
        }
    )
    assert api_client.get(f"{API}?{query}").json() == {
        "status": "success",
        "sms": FIRST_PROVIDER_ID,
    }


def test_url_encoded_post_is_answered_with_a_soap_fault(
    account: SandboxAccount, api_client: Client
) -> None:
    body = urlencode(
        {"api_username": USERNAME, "api_password": PASSWORD, "method": "sendSMS", "did": DID}
    )
    response = api_client.post(API, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/xml")
    assert b"<SOAP-ENV:Fault>" in response.content
    assert not SandboxMessage.objects.exists()


def test_other_http_methods_are_refused(account: SandboxAccount, api_client: Client) -> None:
    assert api_client.put(API).status_code == 405


def test_the_api_needs_no_csrf_token(account: SandboxAccount) -> None:
    client = Client(enforce_csrf_checks=True)
    data = {"api_username": USERNAME, "api_password": PASSWORD, "method": "getIP"}
    assert client.post(API, data).json()["status"] == "success"


def test_the_password_never_reaches_the_log(
    account: SandboxAccount, api_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    call(api_client, "sendSMS", did=DID, dst=DST, message="hello")
    call(api_client, "getIP", api_password="wrong-" + PASSWORD)
    assert "sendSMS" in caplog.text
    assert PASSWORD not in caplog.text


# Every status code ---------------------------------------------------------------------------

STATUS_CASES: list[tuple[str, str | None, dict[str, str], dict[str, Any], dict[str, Any]]] = [
    # (expected status, method, params, account changes, DID changes)
    ("missing_credentials", "getIP", {"api_password": ""}, {}, {}),
    ("missing_credentials", "getIP", {"api_username": ""}, {}, {}),
    ("invalid_credentials", "getIP", {"api_password": "not-it"}, {}, {}),
    ("invalid_credentials", "getIP", {"api_username": "nobody@example.com"}, {}, {}),
    ("api_not_enabled", "getIP", {}, {"api_enabled": False}, {}),
    ("missing_method", None, {}, {}, {}),
    ("missing_method", "", {}, {}, {}),
    ("invalid_method", "getBalanceOfEverything", {}, {}, {}),
    ("ip_not_enabled", "sendSMS", {}, {"ip_allowlist": "203.0.113.9"}, {}),
    ("ip_not_enabled", "getSMS", {}, {"ip_allowlist": ""}, {}),
    ("ip_not_enabled", "getDIDsInfo", {}, {"ip_allowlist": "10.0.0.0/8"}, {}),
    ("missing_did", "sendSMS", {"dst": DST, "message": "hi"}, {}, {}),
    ("missing_did", "sendMMS", {"dst": DST, "message": "hi"}, {}, {}),
    ("invalid_did", "sendSMS", {"did": FOREIGN_DID, "dst": DST, "message": "hi"}, {}, {}),
    ("invalid_did", "sendSMS", {"did": "12345", "dst": DST, "message": "hi"}, {}, {}),
    ("invalid_did", "getDIDsInfo", {"did": FOREIGN_DID}, {}, {}),
    ("invalid_did", "getSMS", {"did": FOREIGN_DID}, {}, {}),
    ("missing_params", "sendSMS", {"did": DID, "message": "hi"}, {}, {}),
    ("invalid_dst", "sendSMS", {"did": DID, "dst": "12345", "message": "hi"}, {}, {}),
    ("invalid_dst", "sendSMS", {"did": DID, "dst": "+442071234567", "message": "hi"}, {}, {}),
    ("invalid_dst", "sendSMS", {"did": DID, "dst": "8765551234", "message": "hi"}, {}, {}),
    ("invalid_dst", "sendSMS", {"did": DID, "dst": "(212) 555-0143", "message": "hi"}, {}, {}),
    ("invalid_dst", "sendMMS", {"did": DID, "dst": "0125550143", "message": "hi"}, {}, {}),
    ("message_empty", "sendSMS", {"did": DID, "dst": DST, "message": ""}, {}, {}),
    ("message_empty", "sendSMS", {"did": DID, "dst": DST}, {}, {}),
    ("message_empty", "sendMMS", {"did": DID, "dst": DST, "message": " "}, {}, {}),
    ("sms_toolong", "sendSMS", {"did": DID, "dst": DST, "message": "x" * 161}, {}, {}),
    ("sms_toolong", "sendMMS", {"did": DID, "dst": DST, "message": "x" * 2049}, {}, {}),
    ("sms_failed", "sendSMS", {"did": DID, "dst": DST, "message": "hi"}, {}, {"sms_enabled": 0}),
    ("sms_failed", "sendSMS", {"did": DID, "dst": DST, "message": "hi"}, {}, {"sms_available": 0}),
    ("sms_failed", "sendMMS", {"did": DID, "dst": DST, "message": "hi"}, {}, {"mms_available": 0}),
    (
        "limit_reached",
        "sendSMS",
        {"did": DID, "dst": DST, "message": "hi"},
        {"daily_send_cap": 0},
        {},
    ),
    (
        "limit_reached",
        "sendMMS",
        {"did": DID, "dst": DST, "message": "a"},
        {"daily_send_cap": 0},
        {},
    ),
    ("invalid_media", "sendMMS", {"did": DID, "dst": DST, "media1": "ftp://x.test/a.png"}, {}, {}),
    ("invalid_media", "sendMMS", {"did": DID, "dst": DST, "media1": "just text"}, {}, {}),
    (
        "invalid_media",
        "sendMMS",
        {"did": DID, "dst": DST, "media2": "data:text/plain;base64,aGk="},
        {},
        {},
    ),
    (
        "invalid_media",
        "sendMMS",
        {"did": DID, "dst": DST, "media3": "data:image/png;base64,not*base64"},
        {},
        {},
    ),
    ("invalid_date", "getSMS", {"from": "2026-02-30"}, {}, {}),
    ("invalid_date", "getMMS", {"to": "09/07/2026"}, {}, {}),
    ("invalid_daterange", "getSMS", {"from": "2026-01-01", "to": "2026-04-04"}, {}, {}),
    ("invalid_daterange", "getMMS", {"from": "2026-05-02", "to": "2026-05-01"}, {}, {}),
    ("no_sms", "getSMS", {}, {}, {}),
    ("no_sms", "getMMS", {"from": "2026-01-01", "to": "2026-04-03"}, {}, {}),
]


@pytest.mark.parametrize(
    ("expected", "method", "params", "account_changes", "did_changes"),
    STATUS_CASES,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(STATUS_CASES)],
)
def test_the_sandbox_answers_each_error_with_its_voipms_status(
    account: SandboxAccount,
    other_account: SandboxAccount,
    api_client: Client,
    expected: str,
    method: str | None,
    params: dict[str, str],
    account_changes: dict[str, Any],
    did_changes: dict[str, Any],
) -> None:
    update(account, **account_changes)
    SandboxDid.objects.filter(did=DID).update(**did_changes)
    answer = call(api_client, method, **params)
    assert answer["status"] == expected
    assert isinstance(answer["message"], str)
    assert answer["message"]
    assert set(answer) == {"status", "message"}
    assert not SandboxMessage.objects.exists()


def test_no_did_is_the_answer_for_an_account_without_dids(db: None, api_client: Client) -> None:
    sandbox_account_ensure(username=USERNAME, api_password=PASSWORD)
    assert call(api_client, "getDIDsInfo")["status"] == "no_did"


def test_get_ip_answers_from_an_address_not_on_the_allow_list(
    account: SandboxAccount, api_client: Client
) -> None:
    update(account, ip_allowlist="203.0.113.9")
    answer = call(api_client, "getIP", remote_addr="198.51.100.77")
    assert answer == {"status": "success", "ip": "198.51.100.77"}
    blocked = call(api_client, "getDIDsInfo", remote_addr="198.51.100.77")
    assert blocked["status"] == "ip_not_enabled"
    assert call(api_client, "getDIDsInfo", remote_addr="203.0.113.9")["status"] == "success"


def test_the_username_is_matched_without_regard_to_case(
    account: SandboxAccount, api_client: Client
) -> None:
    answer = call(api_client, "getIP", api_username="Owner@Example.COM")
    assert answer["status"] == "success"


# IP allow-list -------------------------------------------------------------------------------


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {"pbx.example.com": "198.51.100.20"}

    def gethostbyname(name: str) -> str:
        if name not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return names[name]

    monkeypatch.setattr(api.socket, "gethostbyname", gethostbyname)


@pytest.mark.parametrize(
    ("allowlist", "address", "allowed"),
    [
        (ANY_ADDRESS, "203.0.113.9", True),
        (ANY_ADDRESS, "2001:db8::1", True),
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.168.1.0/24", "192.168.1.255", True),
        ("192.168.1.0/24", "192.168.2.1", False),
        ("2001:db8::/32", "2001:db8:0:1::5", True),
        ("2001:db8::/32", "10.0.0.1", False),
        ("192.168.*.*", "192.168.4.5", True),
        ("192.168.*.*", "192.169.4.5", False),
        ("203.0.*.9", "203.0.113.9", True),
        ("203.0.*.9", "203.0.113.10", False),
        ("203.0.113.9", "203.0.113.9", True),
        ("203.0.113.9", "203.0.113.90", False),
        ("203.0.113.9\n198.51.100.7", "198.51.100.7", True),
        ("203.0.113.9, 198.51.100.7", "198.51.100.7", True),
        ("203.0.113.9,198.51.100.7", "198.51.100.8", False),
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("pbx.example.com", "198.51.100.20", True),
        ("pbx.example.com", "198.51.100.21", False),
        ("no-such-host.invalid", "198.51.100.20", False),
        ("not a host!", "198.51.100.20", False),
        ("10.0.0.0/99", "10.0.0.1", False),
        ("", "203.0.113.9", False),
        (ANY_ADDRESS, "not-an-ip", False),
    ],
)
@pytest.mark.usefixtures("fake_dns")
def test_the_ip_allow_list_takes_every_documented_form(
    allowlist: str, address: str, allowed: bool
) -> None:
    assert api.ip_allowed(allowlist, address) is allowed


def test_the_allow_list_refuses_through_the_api_and_takes_cidr(
    account: SandboxAccount, api_client: Client
) -> None:
    update(account, ip_allowlist="10.0.0.0/8\n192.168.*.*")
    params = {"did": DID, "dst": DST, "message": "hi"}
    assert call(api_client, "sendSMS", remote_addr="172.16.0.1", **params)["status"] == (
        "ip_not_enabled"
    )
    assert call(api_client, "sendSMS", remote_addr="10.9.8.7", **params)["status"] == "success"
    assert call(api_client, "sendSMS", remote_addr="192.168.0.3", **params)["status"] == "success"


# Sending -----------------------------------------------------------------------------------


@pytest.mark.parametrize("did", [DID, f"1{DID}", f"+1{DID}"])
@pytest.mark.parametrize("dst", [DST, f"1{DST}", f"+1{DST}"])
def test_send_sms_takes_did_and_dst_in_every_voipms_form(
    account: SandboxAccount, api_client: Client, did: str, dst: str
) -> None:
    answer = call(api_client, "sendSMS", did=did, dst=dst, message="hello")
    assert answer == {"status": "success", "sms": FIRST_PROVIDER_ID}
    message = SandboxMessage.objects.get()
    assert (message.kind, message.type, message.did, message.contact, message.message) == (
        MessageKind.SMS,
        MessageType.SENT,
        DID,
        DST,
        "hello",
    )
    assert message.created_at.microsecond == 0


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("é" * 80, True),
        ("é" * 81, False),
        ("😀" * 40, True),
        ("😀" * 40 + "a", False),
        ("a" * 160, True),
        ("a" * 161, False),
        ("a" * 157 + "€", True),
        ("a" * 158 + "€", False),
    ],
)
def test_send_sms_counts_the_160_limit_in_utf8_bytes(
    account: SandboxAccount, api_client: Client, text: str, accepted: bool
) -> None:
    answer = call(api_client, "sendSMS", did=DID, dst=DST, message=text)
    if accepted:
        assert answer["status"] == "success"
        assert SandboxMessage.objects.get().message == text
    else:
        assert answer["status"] == "sms_toolong"
        assert not SandboxMessage.objects.exists()


def test_sms_and_mms_ids_come_from_separate_counters_that_collide(
    account: SandboxAccount, api_client: Client
) -> None:
    sms = call(api_client, "sendSMS", did=DID, dst=DST, message="one")
    mms = call(
        api_client, "sendMMS", did=DID, dst=DST, message="two", media1="https://x.test/a.png"
    )
    again = call(api_client, "sendSMS", did=DID, dst=DST, message="three")
    assert sms == {"status": "success", "sms": FIRST_PROVIDER_ID}
    assert mms == {"status": "success", "mms": FIRST_PROVIDER_ID}
    assert again == {"status": "success", "sms": FIRST_PROVIDER_ID + 1}
    same_id = SandboxMessage.objects.filter(provider_id=FIRST_PROVIDER_ID)
    assert sorted(same_id.values_list("kind", flat=True)) == ["mms", "sms"]
    inbound = sandbox_inbound_emit(did=DID, from_number=DST, text="hi back")
    assert (inbound.kind, inbound.provider_id) == ("sms", FIRST_PROVIDER_ID + 2)


def test_send_mms_takes_urls_and_base64_data(account: SandboxAccount, api_client: Client) -> None:
    data_url = f"data:image/png;base64,{PNG}"
    answer = call(
        api_client,
        "sendMMS",
        did=DID,
        dst=DST,
        message="",
        media1="https://example.com/cat.jpg",
        media2=data_url,
        media3="http://example.com/clip.mp4",
    )
    assert answer == {"status": "success", "mms": FIRST_PROVIDER_ID}
    message = SandboxMessage.objects.get()
    assert message.media == ["https://example.com/cat.jpg", data_url, "http://example.com/clip.mp4"]
    assert message.message == ""


def test_send_mms_refuses_media_over_the_size_limit(
    account: SandboxAccount, api_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "MAX_MEDIA_BYTES", 16)
    answer = call(
        api_client, "sendMMS", did=DID, dst=DST, message="x", media1=f"data:image/png;base64,{PNG}"
    )
    assert answer["status"] == "invalid_media"


def test_an_oversized_form_is_refused_like_a_web_server_would(
    account: SandboxAccount, api_client: Client, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api_client.post(
        API,
        {
            "api_username": USERNAME,
            "api_password": PASSWORD,
            "method": "sendMMS",
            "did": DID,
            "dst": DST,
            "media1": "data:image/png;base64," + "A" * 2000,
        },
    )
    assert response.status_code == 413
    assert not SandboxMessage.objects.exists()


def test_the_daily_cap_counts_sms_and_mms_per_day_in_us_eastern(
    account: SandboxAccount, api_client: Client
) -> None:
    update(account, daily_send_cap=2)
    params = {"did": DID, "dst": DST, "message": "hi"}
    # 2026-03-10 03:50 UTC is 23:50 on 9 March in New York (EDT, UTC-4).
    with freeze_time("2026-03-10 03:50:00"):
        assert call(api_client, "sendSMS", **params)["status"] == "success"
        assert call(api_client, "sendMMS", **params)["status"] == "success"
        assert call(api_client, "sendSMS", **params)["status"] == "limit_reached"
    # 03:59:59 UTC is still 9 March in New York, although it is 10 March in UTC all along.
    with freeze_time("2026-03-10 03:59:59"):
        assert call(api_client, "sendSMS", **params)["status"] == "limit_reached"
    with freeze_time("2026-03-10 04:00:00"):
        assert call(api_client, "sendSMS", **params)["status"] == "success"
        assert call(api_client, "sendSMS", **params)["status"] == "success"
        assert call(api_client, "sendSMS", **params)["status"] == "limit_reached"
    # Received messages do not count.
    with freeze_time("2026-03-11 04:00:00"):
        sandbox_inbound_emit(did=DID, from_number=DST, text="in")
        sandbox_inbound_emit(did=DID, from_number=DST, text="in")
        assert call(api_client, "sendSMS", **params)["status"] == "success"
    assert SandboxMessage.objects.filter(type=MessageType.SENT).count() == 5


# History -----------------------------------------------------------------------------------


def test_get_sms_reads_and_writes_dates_in_new_york(
    account: SandboxAccount, api_client: Client
) -> None:
    # 02:30 UTC on 8 September is 22:30 on 7 September in New York (EDT).
    received(account, utc(2026, 9, 8, 2, 30, 0), provider_id=15601)
    # 04:59:59 UTC on 15 January is 23:59:59 on 14 January (EST, UTC-5).
    received(account, utc(2026, 1, 15, 4, 59, 59), provider_id=15602, text="winter")
    answer = call(api_client, "getSMS", **{"from": "2026-09-07", "to": "2026-09-07"})
    assert answer == {
        "status": "success",
        "sms": [
            {
                "id": "15601",
                "date": "2026-09-07 22:30:00",
                "type": "1",
                "did": DID,
                "contact": DST,
                "message": "hi",
                "carrier_status": "received",
            }
        ],
    }
    assert call(api_client, "getSMS", **{"from": "2026-09-08", "to": "2026-09-08"}) == {
        "status": "no_sms",
        "message": "There are no SMS messages",
    }
    winter = call(api_client, "getSMS", **{"from": "2026-01-14", "to": "2026-01-14"})
    assert [(row["id"], row["date"]) for row in winter["sms"]] == [("15602", "2026-01-14 23:59:59")]
    assert call(api_client, "getSMS", **{"from": "2026-01-15", "to": "2026-01-15"})["status"] == (
        "no_sms"
    )


def test_get_sms_takes_a_range_of_at_most_92_days(
    account: SandboxAccount, api_client: Client
) -> None:
    received(account, utc(2026, 1, 1, 12), provider_id=1)
    received(account, utc(2026, 4, 3, 12), provider_id=2)
    answer = call(api_client, "getSMS", **{"from": "2026-01-01", "to": "2026-04-03"})
    assert [row["id"] for row in answer["sms"]] == ["2", "1"]
    too_long = call(api_client, "getSMS", **{"from": "2026-01-01", "to": "2026-04-04"})
    assert too_long["status"] == "invalid_daterange"


def test_get_sms_defaults_to_today_in_new_york(account: SandboxAccount, api_client: Client) -> None:
    with freeze_time("2026-09-08 03:00:00"):
        received(account, utc(2026, 9, 7, 4, 30), provider_id=7)  # 00:30 on 7 Sept in New York
        received(account, utc(2026, 9, 7, 3, 30), provider_id=6)  # 23:30 on 6 Sept
        answer = call(api_client, "getSMS")
    assert [row["id"] for row in answer["sms"]] == ["7"]


def test_get_sms_filters_newest_first(account: SandboxAccount, api_client: Client) -> None:
    base = utc(2026, 9, 7, 14, 0)
    received(account, base, provider_id=1, contact="2125550100")
    received(account, base + dt.timedelta(minutes=1), provider_id=2, message_type=0)
    received(account, base + dt.timedelta(minutes=2), provider_id=3, did=DID_2)
    received(account, base + dt.timedelta(minutes=3), provider_id=4)
    received(account, base + dt.timedelta(minutes=4), provider_id=5, kind=MessageKind.MMS)
    day = {"from": "2026-09-07", "to": "2026-09-07"}

    def ids(**params: str) -> list[str]:
        answer = call(api_client, "getSMS", **day, **params)
        return [row["id"] for row in answer.get("sms", [])]

    assert ids() == ["4", "3", "2", "1"]
    assert ids(type="1") == ["4", "3", "1"]
    assert ids(type="0") == ["2"]
    assert ids(did=DID_2) == ["3"]
    assert ids(did=f"+1{DID_2}") == ["3"]
    assert ids(contact="2125550100") == ["1"]
    assert ids(contact="+12125550100") == ["1"]
    assert ids(limit="2") == ["4", "3"]
    assert ids(sms="2") == ["2"]
    assert ids(sms="5") == []
    assert ids(sms="abc") == []


def test_get_sms_shows_delivery_to_the_handset_after_the_delay(
    account: SandboxAccount, api_client: Client
) -> None:
    update(account, delivery_delay_s=30)
    with freeze_time("2026-09-07 14:20:46"):
        sent = call(api_client, "sendSMS", did=DID, dst=DST, message="hi")
    query = {"from": "2026-09-07", "to": "2026-09-07", "sms": str(sent["sms"])}
    with freeze_time("2026-09-07 14:21:15"):
        row = call(api_client, "getSMS", **query)["sms"][0]
    assert row["carrier_status"] == "Message sent"
    assert (row["date"], row["type"], row["did"], row["contact"]) == (
        "2026-09-07 10:20:46",
        "0",
        DID,
        DST,
    )
    with freeze_time("2026-09-07 14:21:16"):
        row = call(api_client, "getSMS", **query)["sms"][0]
    assert row["carrier_status"] == "Message delivered to handset."


def test_get_sms_writes_numbers_in_the_dids_format(
    account: SandboxAccount, api_client: Client
) -> None:
    sandbox_did_configure(did=DID, number_format="e164")
    sent = call(api_client, "sendSMS", did=DID, dst=DST, message="hi")
    row = call(api_client, "getSMS", sms=str(sent["sms"]))["sms"][0]
    assert (row["did"], row["contact"]) == (f"+1{DID}", f"+1{DST}")


def test_get_mms_lists_rows_under_sms_with_media_columns(
    account: SandboxAccount, api_client: Client
) -> None:
    data_url = f"data:image/png;base64,{PNG}"
    sent = call(
        api_client,
        "sendMMS",
        did=DID,
        dst=DST,
        message="look",
        media1="https://example.com/a.png",
        media2=data_url,
    )
    call(api_client, "sendSMS", did=DID, dst=DST, message="not an mms")
    answer = call(api_client, "getMMS")
    assert answer["status"] == "success"
    assert set(answer) == {"status", "sms"}
    (row,) = answer["sms"]
    served = f"http://127.0.0.1/sandbox/voipms/media/?mms={sent['mms']}&index=2"
    assert row["id"] == str(sent["mms"])
    assert row["message"] == "look"
    assert (row["col_media1"], row["col_media2"], row["col_media3"]) == (
        "https://example.com/a.png",
        served,
        "",
    )
    assert row["media"] == ["https://example.com/a.png", served]
    media = api_client.get(served)
    assert media.status_code == 200
    assert media["Content-Type"] == "image/png"
    assert media.content == base64.b64decode(PNG)
    assert api_client.get("/sandbox/voipms/media/?mms=999&index=1").status_code == 404
    assert api_client.get(f"/sandbox/voipms/media/?mms={sent['mms']}&index=1").status_code == 404


def test_get_dids_info_reports_flags_as_strings(
    account: SandboxAccount, api_client: Client
) -> None:
    sandbox_did_configure(
        did=DID_2, webhook_url="https://portal.example/hooks/voipms/tok/", mms_available=False
    )
    sandbox_did_configure(did=DID, sms_enabled=False, webhook_enabled=False)
    answer = call(api_client, "getDIDsInfo")
    assert answer == {
        "status": "success",
        "dids": [
            {
                "did": DID,
                "description": "",
                "sms_available": "1",
                "sms_enabled": "0",
                "mms_available": "1",
                "sms_email": "",
                "sms_email_enabled": "0",
                "sms_forward": "",
                "sms_forward_enabled": "0",
                "sms_url_callback": "",
                "sms_url_callback_enabled": "1",
                "sms_url_callback_retry": "0",
                "webhook": "",
                "webhook_enabled": "0",
            },
            {
                "did": DID_2,
                "description": "",
                "sms_available": "1",
                "sms_enabled": "1",
                "mms_available": "0",
                "sms_email": "",
                "sms_email_enabled": "0",
                "sms_forward": "",
                "sms_forward_enabled": "0",
                "sms_url_callback": "",
                "sms_url_callback_enabled": "1",
                "sms_url_callback_retry": "0",
                "webhook": "https://portal.example/hooks/voipms/tok/",
                "webhook_enabled": "1",
            },
        ],
    }
    one = call(api_client, "getDIDsInfo", did=f"1{DID_2}")
    assert [row["did"] for row in one["dids"]] == [DID_2]


# Faults ------------------------------------------------------------------------------------


def test_latency_delays_the_answer(account: SandboxAccount, api_client: Client) -> None:
    update(account, latency_ms=200)
    started = time.monotonic()
    assert call(api_client, "getIP")["status"] == "success"
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("roll", "faulted"), [(0.0, True), (0.49, True), (0.5, False), (0.99, False)]
)
def test_the_fault_rate_decides_which_calls_fail(
    account: SandboxAccount,
    api_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    roll: float,
    faulted: bool,
) -> None:
    update(account, fault_mode="error_522", fault_rate=0.5)
    monkeypatch.setattr(api.random, "random", lambda: roll)
    response = api_client.post(
        API, {"api_username": USERNAME, "api_password": PASSWORD, "method": "getIP"}
    )
    assert response.status_code == (522 if faulted else 200)


def test_a_fault_rate_of_zero_never_faults(account: SandboxAccount, api_client: Client) -> None:
    update(account, fault_mode="cloudflare_html", fault_rate=0.0)
    for _ in range(5):
        assert call(api_client, "getIP")["status"] == "success"


def test_reset_faults_switches_everything_off(account: SandboxAccount, api_client: Client) -> None:
    update(account, fault_mode="soap_fault", latency_ms=5000, fault_rate=0.3, timeout_sleep_s=2)
    assert sandbox_account_reset_faults(username=USERNAME.upper()) == 1
    account.refresh_from_db()
    assert (account.fault_mode, account.latency_ms, account.fault_rate) == ("", 0, 1.0)
    assert account.timeout_sleep_s == 60.0
    assert call(api_client, "getIP")["status"] == "success"


def sandbox_client(live_server: Any, **options: Any) -> VoipmsClient:
    return VoipmsClient(USERNAME, PASSWORD, f"{live_server.url}{API}", **options)


@pytest.mark.parametrize(
    ("mode", "http_status", "words"),
    [
        ("cloudflare_html", 403, "Attention Required! | Cloudflare"),
        ("error_522", 522, "error code: 522"),
        ("html_521", 521, "Web server is down"),
        ("soap_fault", 500, "Bad Request"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_each_fault_mode_is_a_transient_error_for_the_client(
    live_server: Any, mode: str, http_status: int, words: str
) -> None:
    sandbox_account_ensure(
        username=USERNAME, api_password=PASSWORD, dids=[DID], fault_mode=mode, fault_rate=1.0
    )
    with sandbox_client(live_server) as client, pytest.raises(VoipmsTransientError) as caught:
        client.send_sms(did=DID, dst=DST, message="hello")
    assert caught.value.code == "bad_response"
    assert caught.value.http_status == http_status
    assert words in caught.value.excerpt
    assert not SandboxMessage.objects.exists()


def test_the_fault_pages_look_like_cloudflares(account: SandboxAccount, api_client: Client) -> None:
    update(account, fault_mode="cloudflare_html")
    response = api_client.post(API, {"api_username": USERNAME, "method": "getIP"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"<title>Attention Required! | Cloudflare</title>" in response.content
    update(account, fault_mode="error_522")
    response = api_client.post(API, {"api_username": USERNAME, "method": "getIP"})
    assert (response.status_code, response.content) == (522, b"error code: 522")


@pytest.mark.django_db(transaction=True)
def test_timeout_after_accept_records_the_send_and_answers_too_late(live_server: Any) -> None:
    sandbox_account_ensure(
        username=USERNAME,
        api_password=PASSWORD,
        dids=[DID],
        fault_mode="timeout_after_accept",
        timeout_sleep_s=1.5,
    )
    started = time.monotonic()
    with sandbox_client(live_server, read_timeout=0.4) as client:
        with pytest.raises(VoipmsOutcomeUnknown):
            client.send_sms(did=DID, dst=DST, message="did it go?")
        # Reads are not sends: they answer at once.
        assert client.get_ip() == "127.0.0.1"
    message = SandboxMessage.objects.get()
    assert (message.kind, message.type, message.message) == ("sms", 0, "did it go?")
    # Let the sleeping request finish before the database is flushed.
    time.sleep(max(0.0, 1.7 - (time.monotonic() - started)))


# Real HTTP ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_voipms_client_works_against_the_sandbox_over_real_http(live_server: Any) -> None:
    sandbox_account_ensure(username=USERNAME, api_password=PASSWORD, dids=[DID, DID_2])
    sandbox_did_configure(did=DID_2, mms_available=False, webhook_url="https://p.example/h/t/")
    today = dt.datetime.now(tz=EASTERN).date()
    with sandbox_client(live_server) as client:
        assert client.get_ip() == "127.0.0.1"
        dids = {info.did: info for info in client.get_dids_info()}
        assert set(dids) == {DID, DID_2}
        assert dids[DID].sms_enabled and dids[DID].mms_available
        assert not dids[DID_2].mms_available
        assert dids[DID_2].webhook == "https://p.example/h/t/"
        sms_id = client.send_sms(did=DID, dst=f"+1{DST}", message="Héllo 😀")
        (record,) = client.get_sms(date_from=today, date_to=today, sms_id=sms_id)
        assert (record.id, record.kind, record.type) == (sms_id, "sms", 0)
        assert (record.did, record.contact, record.message) == (DID, DST, "Héllo 😀")
        assert record.carrier_status == "Message sent"
        assert abs(record.date - dt.datetime.now(tz=EASTERN)) < dt.timedelta(minutes=1)
        mms_id = client.send_mms(
            did=DID, dst=DST, message="pic", media=[f"data:image/png;base64,{PNG}"]
        )
        assert mms_id == sms_id
        (picture,) = client.get_mms(date_from=today, date_to=today, type=0)
        assert picture.media[0].startswith(live_server.url)
        assert requests.get(picture.media[0], timeout=5).content == base64.b64decode(PNG)
        with pytest.raises(VoipmsError) as caught:
            client.send_sms(did=FOREIGN_DID, dst=DST, message="x")
        assert (caught.value.code, caught.value.permanent) == ("invalid_did", True)
    wrong = VoipmsClient(USERNAME, "wrong", f"{live_server.url}{API}")
    with wrong, pytest.raises(VoipmsError) as caught:
        wrong.get_ip()
    assert caught.value.code == "invalid_credentials"


# Services and concurrency ------------------------------------------------------------------


def test_account_ensure_is_idempotent(db: None) -> None:
    first = sandbox_account_ensure(
        username=" Owner@Example.com ", api_password=PASSWORD, dids=[DID]
    )
    again = sandbox_account_ensure(username=USERNAME, api_password=None, dids=[f"+1{DID}", DID_2])
    assert first.pk == again.pk
    assert again.username == USERNAME
    assert again.api_password == PASSWORD
    assert sorted(again.dids.values_list("did", flat=True)) == [DID, DID_2]
    assert SandboxAccount.objects.count() == 1
    changed = sandbox_account_ensure(
        username=USERNAME, api_password="new-one", daily_send_cap=7, ip_allowlist="10.0.0.0/8"
    )
    assert (changed.api_password, changed.daily_send_cap, changed.ip_allowlist) == (
        "new-one",
        7,
        "10.0.0.0/8",
    )
    assert changed.dids.count() == 2


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"username": "new@example.com", "api_password": None}, "needs an API password"),
        ({"dids": ["12345"]}, "not a US or Canadian"),
        ({"dids": [FOREIGN_DID]}, "belongs to another sandbox account"),
        ({"fault_mode": "explode"}, "fault_mode"),
        ({"fault_rate": 1.5}, "fault_rate"),
        ({"username": "not-an-email", "api_password": "x"}, "username"),
    ],
)
def test_account_ensure_refuses_bad_settings(
    account: SandboxAccount,
    other_account: SandboxAccount,
    changes: dict[str, Any],
    words: str,
) -> None:
    arguments: dict[str, Any] = {"username": USERNAME, "api_password": PASSWORD, **changes}
    with pytest.raises(SandboxError, match=words):
        sandbox_account_ensure(**arguments)


def test_did_configure_refuses_an_unknown_did_or_format(account: SandboxAccount) -> None:
    with pytest.raises(SandboxError, match="not on any sandbox account"):
        sandbox_did_configure(did=FOREIGN_DID, number_format="e164")
    with pytest.raises(SandboxError, match="number_format"):
        sandbox_did_configure(did=DID, number_format="nanpa-ish")


def _in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `count` threads at once and return the results or exceptions."""
    assert connection.vendor == "postgresql", "the test suite runs on PostgreSQL (bin/test)"
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_id_allocation_is_atomic_under_concurrency() -> None:
    sandbox_account_ensure(username=USERNAME, api_password=PASSWORD, dids=[DID])
    sandbox_account_ensure(username="other@example.com", api_password="x", dids=[FOREIGN_DID])

    def work(index: int) -> list[int]:
        ids = []
        for _ in range(5):
            message = sandbox_inbound_emit(
                did=DID if index % 2 else FOREIGN_DID, from_number=DST, text=f"t{index}"
            )
            ids.append(message.provider_id)
        return ids

    results = _in_threads(8, work)
    assert not [result for result in results if isinstance(result, Exception)]
    ids = sorted(provider_id for result in results for provider_id in result)
    assert ids == list(range(FIRST_PROVIDER_ID, FIRST_PROVIDER_ID + 40))


@pytest.mark.django_db(transaction=True)
def test_the_daily_cap_holds_under_concurrent_sends() -> None:
    account = sandbox_account_ensure(
        username=USERNAME, api_password=PASSWORD, dids=[DID], daily_send_cap=5
    )

    def work(index: int) -> int:
        return sandbox_message_send(
            account=account, kind="sms", did=DID, contact=DST, message=str(index)
        ).provider_id

    results = _in_threads(12, work)
    sent = sorted(result for result in results if isinstance(result, int))
    refused = [result for result in results if isinstance(result, SandboxLimitReached)]
    assert sent == list(range(FIRST_PROVIDER_ID, FIRST_PROVIDER_ID + 5))
    assert len(refused) == 7
    assert SandboxMessage.objects.count() == 5


def _sent_row(
    account: SandboxAccount, *, kind: str, message: str, media: list[str]
) -> dict[str, Any]:
    """Return the columns sandbox_message_send writes for a send from DID to DST now."""
    return {
        "account_id": account.pk,
        "kind": kind,
        "type": MessageType.SENT,
        "did": DID,
        "contact": DST,
        "message": message,
        "media": media,
        "created_at": services.now_in_seconds(),
    }


@pytest.mark.parametrize(
    ("kind", "media"),
    [("sms", []), ("mms", ["https://x.test/a.png", "data:image/png;base64,aGk="])],
)
def test_the_send_statement_and_the_orm_path_store_the_same_rows(
    account: SandboxAccount, kind: str, media: list[str]
) -> None:
    assert connection.vendor == "postgresql", "the test suite runs on PostgreSQL (bin/test)"
    with freeze_time("2026-03-10 15:00:00"):
        # The first send of a kind creates its counter row through the ORM path.
        sandbox_message_send(account=account, kind=kind, did=DID, contact=DST, message="first")
        row = _sent_row(account, kind=kind, message="Ünïcode ' \" %s text", media=media)
        day = services.eastern_day(row["created_at"])
        fast = services._send_statement(row, day=day)
        slow = services._send_in_transaction(row, day=day)
    assert fast is not None
    stored = {
        message.pk: SandboxMessage.objects.values().get(pk=message.pk) for message in (fast, slow)
    }
    assert [stored[fast.pk]["provider_id"], stored[slow.pk]["provider_id"]] == [
        FIRST_PROVIDER_ID + 1,
        FIRST_PROVIDER_ID + 2,
    ]
    for values in stored.values():
        del values["id"], values["provider_id"]
    assert stored[fast.pk] == stored[slow.pk]
    assert stored[fast.pk]["media"] == media
    # What the statement path returns is what it stored.
    assert (fast.message, fast.media, fast.created_at) == (row["message"], media, row["created_at"])
    account.refresh_from_db()
    assert (account.sends_day, account.sends_today) == (dt.date(2026, 3, 10), 3)


def test_the_send_statement_leaves_everything_unchanged_at_the_cap(
    account: SandboxAccount,
) -> None:
    update(account, daily_send_cap=1)
    sandbox_message_send(account=account, kind="sms", did=DID, contact=DST, message="one")
    row = _sent_row(account, kind="sms", message="two", media=[])
    assert services._send_statement(row, day=services.eastern_day(row["created_at"])) is None
    with pytest.raises(SandboxLimitReached, match="daily limit of 1 messages"):
        sandbox_message_send(account=account, kind="sms", did=DID, contact=DST, message="two")
    account.refresh_from_db()
    assert account.sends_today == 1
    assert SandboxMessage.objects.count() == 1
    assert SandboxCounter.objects.get(kind="sms").last_id == FIRST_PROVIDER_ID


def test_a_flushed_counter_starts_above_the_ids_in_use(account: SandboxAccount) -> None:
    received(account, utc(2026, 9, 7, 12), provider_id=FIRST_PROVIDER_ID + 41)
    message = sandbox_inbound_emit(did=DID, from_number=DST, text="next")
    assert message.provider_id == FIRST_PROVIDER_ID + 42
    assert sandbox_inbound_emit(
        did=DID, from_number=DST, media_urls=["https://x.test/a.png"]
    ).provider_id == (FIRST_PROVIDER_ID)
