"""The home pages show message volume and health as pictures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time

from sms.dashboard import (
    configuration_health,
    configuration_volume,
    message_volume,
    tenants_volume,
)
from sms.models import Conversation, Direction, Message, MessageStatus, OptOut, SmsConfiguration
from tenants.models import Tenant
from tenants.services import tenant_create
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
    client = client_for(world.admin_a)
    client.get("/tenant/")  # content types are cached after the first page
    with django_assert_max_num_queries(25):
        page = client.get("/tenant/").content.decode()
    assert "<svg" in page and "30</strong> received" in page
    system = client_for(world.sysadmin).get("/admin/").content.decode()
    assert "System health" in system and "Database" in system


def _at(message: Message, when: datetime) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=when)
    return message


@pytest.mark.django_db
@freeze_time("2026-03-20 15:00:00")
def test_a_configurations_chart_counts_its_days_in_the_tenants_zone(world: World) -> None:
    tenant = world.tenant_a
    Tenant.objects.filter(pk=tenant.pk).update(timezone="America/Toronto")
    configuration = SmsConfiguration.objects.get(pk=world.objects_a[SmsConfiguration].pk)
    other = make_configuration(tenant, name="Other")
    did, other_did = "+12125550111", "+12125550122"
    Conversation.objects.create(
        tenant=tenant, configuration=configuration, did=did, remote="+18457231213"
    )
    Conversation.objects.create(
        tenant=tenant, configuration=other, did=other_did, remote="+18457231213"
    )

    def message(direction: str, status: str, when: datetime, on: Any = configuration) -> None:
        row = Message.objects.create(
            tenant=on.tenant,
            configuration=on,
            direction=direction,
            status=status,
            did=did,
            remote="+18457231213",
        )
        _at(row, when)

    utc = UTC
    # Toronto is UTC-4 on 20 March 2026 (summer time began on 8 March), UTC-5 before.
    message(Direction.IN, MessageStatus.ROUTED, datetime(2026, 3, 20, 3, 30, tzinfo=utc))  # 19th
    message(Direction.IN, MessageStatus.ROUTED, datetime(2026, 3, 20, 4, 30, tzinfo=utc))  # 20th
    message(Direction.OUT, MessageStatus.SENT, datetime(2026, 3, 19, 12, tzinfo=utc))  # 19th
    message(Direction.OUT, MessageStatus.FAILED, datetime(2026, 3, 20, 10, tzinfo=utc))  # 20th
    message(
        Direction.IN, MessageStatus.UNROUTED, datetime(2026, 3, 7, 6, tzinfo=utc)
    )  # 7th, 1st day
    message(Direction.IN, MessageStatus.ROUTED, datetime(2026, 3, 7, 4, 59, tzinfo=utc))  # 6th
    message(Direction.IN, MessageStatus.ROUTED, datetime(2026, 3, 20, 5, tzinfo=utc), on=other)
    b_configuration = world.objects_b[SmsConfiguration]
    message(
        Direction.IN, MessageStatus.ROUTED, datetime(2026, 3, 20, 5, tzinfo=utc), b_configuration
    )
    for remote, on_did, when in (
        ("+13125550001", did, datetime(2026, 3, 20, 3, tzinfo=utc)),  # 19th
        ("+13125550002", other_did, datetime(2026, 3, 20, 3, tzinfo=utc)),  # other configuration
    ):
        opt_out = OptOut.objects.create(tenant=tenant, did=on_did, remote=remote, keyword="STOP")
        OptOut.objects.filter(pk=opt_out.pk).update(created_at=when)

    volume = configuration_volume(configuration=configuration)

    days = volume["days"]
    assert days["inbound"] == [0] * 12 + [1, 1]
    assert days["outbound"] == [0] * 12 + [1, 0]
    assert days["failed"] == [1] + [0] * 12 + [1]
    assert days["opt_outs"] == [0] * 12 + [1, 0]
    assert volume["totals"] == {"inbound": 2, "outbound": 1, "failed": 2, "opt_outs": 1}
    chart = str(volume["chart"])
    assert "<title>19 Mar: 1 opt-outs</title>" in chart
    assert "<title>7 Mar: 1 failed</title>" in chart
    assert 'role="img"' in chart and "<table" in chart and "style=" not in chart


@pytest.mark.django_db
def test_the_configurations_chart_is_one_query(
    world: World, django_assert_num_queries: Any
) -> None:
    configuration = SmsConfiguration.objects.select_related("tenant").get(
        pk=world.objects_a[SmsConfiguration].pk
    )
    for _ in range(3):
        Message.objects.create(
            tenant=world.tenant_a,
            configuration=configuration,
            direction=Direction.IN,
            status=MessageStatus.ROUTED,
            did="+12125550101",
            remote="+18457231213",
        )
    with django_assert_num_queries(1):
        volume = configuration_volume(configuration=configuration)
    assert volume["totals"]["inbound"] == 3


@pytest.mark.django_db
def test_the_system_home_draws_the_busiest_tenants_and_the_others_as_one_band(
    world: World, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    tenants = [world.tenant_a, world.tenant_b]
    tenants += [tenant_create(name=f"Tenant {n}", slug=f"t{n}.example") for n in range(3, 10)]
    for rank, tenant in enumerate(tenants):
        for _ in range(len(tenants) - rank):
            _message(tenant, Direction.IN, MessageStatus.ROUTED)
    _message(world.tenant_a, Direction.OUT, MessageStatus.FAILED)

    with django_assert_max_num_queries(2):
        volume = tenants_volume(top=4)

    names = [row["name"] for row in volume["tenants"]]
    assert names == ["Tenant A", "Tenant B", "Tenant 3", "Tenant 4", "5 other tenants"]
    assert volume["tenants"][0] == {"name": "Tenant A", "inbound": 9, "outbound": 0, "failed": 1}
    assert volume["tenants"][-1]["inbound"] == 5 + 4 + 3 + 2 + 1
    chart = str(volume["chart"])
    assert ": 10 Tenant A</title>" in chart and ": 15 5 other tenants</title>" in chart
    page = client_for(world.sysadmin).get("/admin/").content.decode()
    assert "Messages per tenant, last 14 days" in page and "Tenant 3" in page
