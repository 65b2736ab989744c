"""/metrics: Prometheus text for system administrators and allowed addresses only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import World


@pytest.mark.django_db
def test_metrics_are_refused_to_anonymous_and_tenant_users(world: World, client_for: Any) -> None:
    assert client_for(None).get("/metrics").status_code == 403
    assert client_for(world.admin_a).get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_show_counters_and_messages_to_a_system_administrator(
    world: World, client_for: Any
) -> None:
    text = client_for(world.sysadmin).get("/metrics").content.decode()
    assert "sms_portal_webhooks_received_total" in text
    assert "sms_portal_voipms_call_seconds_count" in text


@pytest.mark.django_db
def test_an_allowed_address_reads_metrics_without_signing_in(
    world: World, client_for: Any, settings: Any
) -> None:
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert client_for(None).get("/metrics").status_code == 200


@pytest.mark.django_db
def test_webhooks_are_counted_once_each(world: World, client_for: Any) -> None:
    from core.metrics import read_all
    from tests.sms.helpers import make_configuration

    configuration = make_configuration(world.tenant_a)
    before = read_all()
    client = client_for(None)
    for _ in range(2):
        client.post(
            f"/hooks/voipms/{configuration.webhook_token}/", b"{}", content_type="application/json"
        )
    client.post("/hooks/voipms/unknown/", b"{}", content_type="application/json")
    after = read_all()
    assert after["webhooks_rejected"] - before["webhooks_rejected"] == 2
    assert after["webhooks_unknown_token"] - before["webhooks_unknown_token"] == 1
