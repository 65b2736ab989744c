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
