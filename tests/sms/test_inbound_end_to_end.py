"""Captured VoIP.ms payloads through the real view, Redis and a real Celery worker."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from sms.models import DeliveryStatus, Message, MessageStatus, WebhookDelivery
from tenants.models import Extension
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from tests.worker import celery_worker
from trunks.services import trunk_assignment_save, trunk_save

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voipms"

# fixture → (kind, from, text, media count) once processed; None: an ignored event.
EXPECTED: dict[str, tuple[str, str, str, int] | None] = {
    "sms.json": ("sms", "+18457231213", "Connect webhook test 14:20:19", 0),
    "mms_one_media.json": ("mms", "+18457231213", "Connect webhook MMS test", 1),
    "mms_three_media.json": ("mms", "+18457231213", None, 3),
    "sms_e164_numbers.json": ("sms", "+18457231213", None, 0),
    "sms_11_digit_numbers.json": ("sms", "+18457231213", None, 0),
    "sms_short_code.json": ("sms", "72975", None, 0),
    "sms_emoji_accents.json": ("sms", "+18457231213", None, 0),
    "mms_empty_text.json": ("mms", "+18457231213", "", 1),
    "unknown_event.json": None,
}


@pytest.fixture
def fixture_configuration(world: World) -> Any:
    """Give tenant A the DID of the captured payloads (8455577768) on a trunk of its own."""
    trunk = trunk_save(name="Captured payloads", host="newyork1.voip.ms")
    trunk_assignment_save(trunk=trunk, tenant=world.tenant_a, did_pool="18455577768")
    configuration = make_configuration(world.tenant_a, name="Captured", trunk=trunk)
    extension = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(world.tenant_a, did_range="8455577768", extension=extension, trunk=trunk)
    return configuration


def _payload(name: str, media_base: str) -> bytes:
    payload = json.loads((FIXTURES / name).read_text())
    for index, item in enumerate(payload["data"].get("payload", {}).get("media", [])):
        # Keep fetches on this machine: the captured links point at voip.ms.
        item["url"] = f"{media_base}/no-such-media/{index}.png"
    return json.dumps(payload).encode()


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_every_captured_payload_ends_as_the_expected_message(
    fixture_configuration: Any, live_server: Any, tmp_path: Path
) -> None:
    url = f"{live_server.url}/hooks/voipms/{fixture_configuration.webhook_token}/"
    with celery_worker(tmp_path, queues="inbound,default"):
        for name in EXPECTED:
            response = requests.post(
                url,
                data=_payload(name, live_server.url),
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            assert (response.status_code, response.text) == (200, "ok"), name
        _wait_for(
            lambda: not WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).exists()
        )
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert len(deliveries) == len(EXPECTED)
    for name, delivery in zip(EXPECTED, deliveries, strict=True):
        expected = EXPECTED[name]
        if expected is None:
            assert delivery.status == DeliveryStatus.IGNORED, name
            assert not Message.objects.filter(delivery=delivery).exists()
            continue
        assert delivery.status == DeliveryStatus.PROCESSED, (name, delivery.reason)
        message = Message.objects.get(delivery=delivery)
        kind, sender, text, media = expected
        assert message.kind == kind, name
        assert message.remote == sender, name
        assert message.did == "+18455577768", name
        if text is not None:
            assert message.body == text, name
        assert message.media.count() == media, name
        assert message.status == MessageStatus.ROUTED, name
        assert message.routed_to == "extension 101", name


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_id_make_one_message(
    fixture_configuration: Any, live_server: Any, tmp_path: Path
) -> None:
    url = f"{live_server.url}/hooks/voipms/{fixture_configuration.webhook_token}/"
    body = (FIXTURES / "sms.json").read_bytes()

    def send(_: int) -> int:
        return requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        ).status_code

    with celery_worker(tmp_path, queues="inbound,default", concurrency=4):
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(send, range(20)))
        assert statuses == [200] * 20
        _wait_for(
            lambda: (
                WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 0
                and WebhookDelivery.objects.count() == 20
            )
        )
    assert Message.objects.count() == 1
    counts = {
        status: WebhookDelivery.objects.filter(status=status).count()
        for status in (DeliveryStatus.PROCESSED, DeliveryStatus.DUPLICATE)
    }
    assert counts == {DeliveryStatus.PROCESSED: 1, DeliveryStatus.DUPLICATE: 19}
