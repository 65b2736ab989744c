"""The home pages show message volume and health as pictures."""

from __future__ import annotations

from typing import Any

import pytest

from sms.dashboard import configuration_health, message_volume
from sms.models import Direction, Message, MessageStatus
from tests.factories import World
from tests.sms.helpers import make_configuration


def _message(tenant: Any, direction: str, status: str) -> Message:
    return Message.objects.create(
        tenant=tenant, direction=direction, status=status, did="+12125550101", remote="+18457231213"
    )


@pytest.mark.django_db
def test_the_volume_counts_only_the_tenants_messages_by_kind_of_outcome(world: World) -> None:
    _message(world.tenant_a, Direction.IN, MessageStatus.ROUTED)
    _message(world.tenant_a, Direction.OUT, MessageStatus.SENT)
    _message(world.tenant_a, Direction.IN, MessageStatus.UNROUTED)
    _message(world.tenant_b, Direction.IN, MessageStatus.ROUTED)
    volume = message_volume(tenant=world.tenant_a)
    assert volume["totals"] == {"received": 1, "sent": 1, "failed": 1}
    assert volume["chart"].count("<rect") == 3
    assert message_volume(tenant=None)["totals"]["received"] == 2


@pytest.mark.django_db
def test_health_is_a_traffic_light_per_configuration(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    states = {
        h["configuration"].pk: h["state"] for h in configuration_health(tenant=world.tenant_a)
    }
    assert states[configuration.pk] == "warning"  # never received
    type(configuration).objects.filter(pk=configuration.pk).update(enabled=False)
    states = {
        h["configuration"].pk: h["state"] for h in configuration_health(tenant=world.tenant_a)
    }
    assert states[configuration.pk] == "off"


@pytest.mark.django_db
def test_the_tenant_home_page_draws_the_chart_and_the_system_home_page_the_health(
    world: World, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        _message(world.tenant_a, Direction.IN, MessageStatus.ROUTED)
    with django_assert_max_num_queries(25):
        page = client_for(world.admin_a).get("/tenant/").content.decode()
    assert "<svg" in page and "30</strong> received" in page
    system = client_for(world.sysadmin).get("/admin/").content.decode()
    assert "System health" in system and "Database" in system
