"""The demo's sandbox: each tenant owns its account, and its DIDs deliver both ways."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from sms.inbound.process import webhook_delivery_process
from sms.models import Direction, Message, SmsConfiguration, WebhookDelivery
from tenants.models import Tenant
from trunks.voipms.sandbox.models import SandboxAccount, SandboxDid
from trunks.voipms.sandbox.services import callback_url, sandbox_inbound_emit


@pytest.mark.django_db
def test_the_demo_gives_each_tenant_its_sandbox_with_webhook_and_callback_dids(
    client: Any, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    call_command("demo_setup", stdout=io.StringIO())
    call_command("demo_setup", stdout=io.StringIO())  # idempotent
    acme = Tenant.objects.get(slug="acme.demo")
    birch = Tenant.objects.get(slug="birch.demo")
    assert SandboxAccount.objects.get(username="acme@demo.example").tenant == acme
    assert SandboxAccount.objects.get(username="birch@demo.example").tenant == birch
    configuration = SmsConfiguration.objects.for_tenant(acme).get()
    dids = list(SandboxDid.objects.filter(account__tenant=acme).order_by("did"))
    assert [d.did for d in dids] == ["3322496213", "3322496214", "3322496215"]
    assert [d.webhook_enabled for d in dids] == [True, False, True]
    for did in dids:
        assert did.webhook_url == configuration.webhook_url
        assert did.callback_enabled
        assert did.callback_url == (
            f"{configuration.webhook_url}"
            "?from={FROM}&to={TO}&message={MESSAGE}&id={ID}&date={TIMESTAMP}&media={MEDIA}"
        )


@pytest.mark.django_db(transaction=True)
def test_the_demos_url_callback_reaches_the_portal(live_server: Any, settings: Any) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    call_command("demo_setup", stdout=io.StringIO())
    message = sandbox_inbound_emit(
        did="3322496214", from_number="2125550143", text="Running late, 10 min", via="callback"
    )
    assert (message.delivered_to_portal, message.portal_http_status) == (True, 200)
    assert callback_url(message, SandboxDid.objects.get(did="3322496214")).startswith(
        live_server.url
    )
    (delivery,) = WebhookDelivery.objects.filter(method="GET")
    webhook_delivery_process(delivery_id=delivery.pk)
    received = Message.objects.get(direction=Direction.IN, body="Running late, 10 min")
    assert received.tenant.slug == "acme.demo"
    assert (received.did, received.remote, received.source) == (
        "+13322496214",
        "+12125550143",
        "callback",
    )
