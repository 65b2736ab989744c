"""The webhook's fast path (one prepared INSERT ... SELECT) and its ORM twin store the same rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from sms.inbound.store import webhook_delivery_accept, webhook_delivery_store
from sms.models import DeliveryStatus, SmsConfiguration, WebhookDelivery
from tenants.models import Tenant
from tests.factories import World
from tests.sms.helpers import make_configuration
from trunks.voipms.webhooks import WebhookError, parse_callback_query_string, parse_webhook_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voipms"
# Set by the database at different moments on each path: compared as set or unset only.
TIMESTAMPS = ("received_at", "processed_at")
HEADERS = {"User-Agent": "VoIP.ms webhook", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Request:
    """What the webhook view hands to the store for one request."""

    method: str
    body: bytes
    query: str
    content_type: str
    remote_addr: str | None = "203.0.113.7"
    headers: dict[str, Any] = field(default_factory=lambda: dict(HEADERS))
    status: str = DeliveryStatus.RECEIVED
    reason: str = ""


def _judged(request: Request) -> Request:
    """Return the request with the status and reason the view gives it before any lookup."""
    try:
        if request.method == "POST" and request.body.strip():
            parse_webhook_json(request.body)
        else:
            parse_callback_query_string(request.query)
    except WebhookError as error:
        return replace(request, status=DeliveryStatus.REJECTED, reason=str(error))
    return replace(request, status=DeliveryStatus.RECEIVED, reason="")


def _from_fixture(path: Path) -> Request:
    """Return a fixture as VoIP.ms sends it: a JSON body posted, or a callback's query string."""
    if path.suffix == ".txt":
        query = path.read_text(encoding="utf-8").rstrip("\n")
        return _judged(Request(method="GET", body=b"", query=query, content_type=""))
    return _judged(
        Request(method="POST", body=path.read_bytes(), query="", content_type="application/json")
    )


FIXTURE_REQUESTS = {path.name: _from_fixture(path) for path in sorted(FIXTURES.iterdir())}
SMS = FIXTURE_REQUESTS["sms.json"]
# Values at the edges of what the columns hold, each written once by each path.
EDGE_REQUESTS = {
    "oversized body, truncated and rejected": replace(
        SMS,
        body=b"{" + b" " * (256 * 1024 - 2) + b"}",
        status=DeliveryStatus.REJECTED,
        reason="body over 256 KiB",
    ),
    "long reason and content type, cut to their columns": replace(
        SMS,
        content_type="application/json; " + "x" * 300,
        reason="r" * 700,
        status=DeliveryStatus.REJECTED,
    ),
    "empty POST body, judged as a callback": _judged(
        Request(method="POST", body=b"", query="", content_type="")
    ),
    "IPv6 remote address": replace(SMS, remote_addr="2001:DB8:0:0:0:0:0:1"),
    "no remote address": replace(SMS, remote_addr=None),
    "empty remote address": replace(SMS, remote_addr=""),
    "no kept headers": replace(SMS, headers={}),
    "headers with non-ASCII and quotes": replace(
        SMS, headers={"User-Agent": 'caf\u00e9 "agent" \u2603', "X-Forwarded-For": "198.51.100.2"}
    ),
    "body bytes that are not UTF-8": _judged(replace(SMS, body=b"\xff\x00\xfe{")),
}


def _row(delivery_id: int) -> dict[str, Any]:
    """Return a stored delivery's columns as comparable values, timestamps as set or unset."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    row: dict[str, Any] = {}
    for model_field in WebhookDelivery._meta.concrete_fields:
        if model_field.primary_key:
            continue
        value = getattr(delivery, model_field.attname)
        if model_field.name in TIMESTAMPS:
            value = value is not None
        elif isinstance(value, memoryview):
            value = bytes(value)
        row[model_field.attname] = value
    return row


def _store_fast(configuration: SmsConfiguration, request: Request) -> tuple[int, str, str]:
    """Store the request as the webhook view does, by the token's digest."""
    stored = webhook_delivery_accept(
        token_digest=configuration.webhook_token_digest,
        method=request.method,
        body=request.body,
        query=request.query,
        content_type=request.content_type,
        remote_addr=request.remote_addr,
        headers=request.headers,
        status=request.status,
        reason=request.reason,
    )
    assert stored is not None
    return stored.delivery_id, stored.status, stored.reason


def _store_orm(configuration: SmsConfiguration, request: Request) -> tuple[int, str, str]:
    """Store the request through the ORM twin, given the configuration itself."""
    delivery = webhook_delivery_store(
        configuration=SmsConfiguration.objects.select_related("tenant").get(pk=configuration.pk),
        method=request.method,
        body=request.body,
        query=request.query,
        content_type=request.content_type,
        remote_addr=request.remote_addr,
        headers=request.headers,
        status=request.status,
        reason=request.reason,
    )
    return delivery.pk, delivery.status, delivery.reason


def _stored_by_both(
    configuration: SmsConfiguration, request: Request, capture: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Store one request by each path; check each answers what it stored and hands off alike."""
    rows = []
    hand_offs = []
    for store in (_store_fast, _store_orm):
        with capture() as callbacks:
            delivery_id, status, reason = store(configuration, request)
        row = _row(delivery_id)
        assert (status, reason) == (row["status"], row["reason"])
        rows.append(row)
        hand_offs.append(len(callbacks))
    # A received delivery is handed to the workers after commit; nothing else is.
    expected_hand_offs = 1 if rows[0]["status"] == DeliveryStatus.RECEIVED else 0
    assert hand_offs == [expected_hand_offs, expected_hand_offs]
    return rows[0], rows[1]


@pytest.fixture
def configuration(world: World) -> SmsConfiguration:
    return make_configuration(world.tenant_a)


@pytest.fixture(params=[True, False], ids=["prepared", "client-bound"])
def prepared(request: pytest.FixtureRequest, settings: Any) -> bool:
    settings.DATABASE_PREPARED_STATEMENTS = request.param
    return bool(request.param)


def test_the_fixtures_cover_received_and_rejected_requests_of_both_methods() -> None:
    kinds = {(request.method, request.status) for request in FIXTURE_REQUESTS.values()}
    assert kinds == {
        ("GET", DeliveryStatus.RECEIVED),
        ("GET", DeliveryStatus.REJECTED),
        ("POST", DeliveryStatus.RECEIVED),
        ("POST", DeliveryStatus.REJECTED),
    }
    assert all(
        request.reason for request in FIXTURE_REQUESTS.values() if request.status == "rejected"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FIXTURE_REQUESTS))
def test_both_paths_store_the_same_row_for_every_fixture(
    name: str,
    configuration: SmsConfiguration,
    prepared: bool,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert connection.vendor == "postgresql"
    request = FIXTURE_REQUESTS[name]
    fast, orm = _stored_by_both(configuration, request, django_capture_on_commit_callbacks)
    assert fast == orm
    assert (fast["status"], fast["reason"]) == (request.status, request.reason)
    assert fast["received_at"] is True
    assert fast["processed_at"] is (request.status != DeliveryStatus.RECEIVED)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(EDGE_REQUESTS))
def test_both_paths_store_the_same_row_for_values_at_the_edges(
    name: str,
    configuration: SmsConfiguration,
    prepared: bool,
    django_capture_on_commit_callbacks: Any,
) -> None:
    fast, orm = _stored_by_both(
        configuration, EDGE_REQUESTS[name], django_capture_on_commit_callbacks
    )
    assert fast == orm
    assert len(fast["reason"]) <= 500
    assert len(fast["content_type"]) <= 200


def _disable_configuration(configuration: SmsConfiguration) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(enabled=False)


def _turn_message_channels_off(configuration: SmsConfiguration) -> None:
    Tenant.objects.filter(pk=configuration.tenant_id).update(message_channels_enabled=False)


def _disable_tenant(configuration: SmsConfiguration) -> None:
    Tenant.objects.filter(pk=configuration.tenant_id).update(enabled=False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("refuse", "reason"),
    [
        (_disable_configuration, "the configuration is disabled"),
        (_turn_message_channels_off, "Message Channels are off for this tenant"),
        (_disable_tenant, "the tenant is disabled"),
    ],
    ids=["configuration disabled", "Message Channels off", "tenant disabled"],
)
@pytest.mark.parametrize("name", ["sms.json", "callback_sms.txt"])
def test_both_paths_store_a_received_request_as_ignored_when_messaging_is_refused(
    refuse: Callable[[SmsConfiguration], None],
    reason: str,
    name: str,
    configuration: SmsConfiguration,
    prepared: bool,
    django_capture_on_commit_callbacks: Any,
) -> None:
    refuse(configuration)
    request = FIXTURE_REQUESTS[name]
    assert request.status == DeliveryStatus.RECEIVED
    fast, orm = _stored_by_both(configuration, request, django_capture_on_commit_callbacks)
    assert fast == orm
    assert (fast["status"], fast["reason"], fast["processed_at"]) == (
        DeliveryStatus.IGNORED,
        reason,
        True,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "refuse",
    [_disable_configuration, _turn_message_channels_off, _disable_tenant],
    ids=["configuration disabled", "Message Channels off", "tenant disabled"],
)
def test_both_paths_keep_a_rejected_request_rejected_when_messaging_is_refused(
    refuse: Callable[[SmsConfiguration], None],
    configuration: SmsConfiguration,
    prepared: bool,
    django_capture_on_commit_callbacks: Any,
) -> None:
    refuse(configuration)
    request = FIXTURE_REQUESTS["malformed_missing_id.json"]
    fast, orm = _stored_by_both(configuration, request, django_capture_on_commit_callbacks)
    assert fast == orm
    assert (fast["status"], fast["reason"]) == (DeliveryStatus.REJECTED, request.reason)
