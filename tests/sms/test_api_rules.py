"""Inbound rules and conversations in the REST API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from sms.models import Action, InboundRule
from tenants.models import AuditEvent, Extension, User
from tenants.services import tenant_update
from tenants.services_groups import ring_group_member_save, ring_group_save
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration, make_rule
from tests.sms.test_inbox import receive
from trunks.models import Trunk

ClientFor = Callable[[User | None], Client]


RULES = "/api/v1/inbound-rules/"
CONVERSATIONS = "/api/v1/conversations/"


def rule_body(extension: Extension, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Main line",
        "trunk": shared_trunk().pk,
        "did_range": "12125550101",
        "caller_mask": "",
        "priority": 10,
        "enabled": True,
    }
    for period in ("office", "after_hours", "holiday"):
        body[f"{period}_action"] = Action.EXTENSION
        body[f"{period}_extension"] = extension.pk
    body.update(changes)
    return body


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, body, content_type="application/json")


def patch(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.patch(url, body, content_type="application/json")


# --- inbound rules -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_creates_reads_changes_and_deletes_a_rule(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    extension = world.objects_a[Extension]

    created = post(client, RULES, rule_body(extension))
    assert created.status_code == 201, created.content
    body = created.json()
    url = f"{RULES}{body['id']}/"
    changed = patch(client, url, {"caller_mask": "1312555****", "holiday_action": "drop"})
    listed = client.get(RULES).json()
    deleted = client.delete(url)

    assert "webhook_secret" not in body
    assert body["did_start"] == body["did_end"] == 12125550101
    assert body["office_extension"] == extension.pk
    assert body["trunk"] == shared_trunk().pk
    assert changed.status_code == 200, changed.content
    assert changed.json()["caller_mask"] == "1312555****"
    assert changed.json()["holiday_action"] == "drop"
    assert changed.json()["office_extension"] == extension.pk
    assert listed["count"] == 1
    assert deleted.status_code == 204
    assert not InboundRule.objects.exists()
    actions = set(AuditEvent.objects.filter(object_type="sms.inboundrule").values_list("action"))
    assert actions == {("created",), ("changed",), ("deleted",)}


@pytest.mark.django_db
def test_a_did_outside_the_pool_is_refused_with_the_field(
    world: World, client_for: ClientFor
) -> None:
    response = post(
        client_for(world.admin_a),
        RULES,
        rule_body(world.objects_a[Extension], did_range="12125550110"),
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "did_not_in_pool",
        "detail": "12125550110 is not inside this tenant's DID pool on VoIP.ms San Jose.",
        "field": "did_range",
    }


@pytest.mark.django_db
def test_ids_of_another_tenant_are_refused(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)
    own = world.objects_a[Extension]
    foreign_group = ring_group_save(tenant=world.tenant_b, actor=None, name="B group")

    responses = {
        "office_extension": post(
            client, RULES, rule_body(own, office_extension=world.objects_b[Extension].pk)
        ),
        "trunk": post(client, RULES, rule_body(own, trunk=world.objects_b[Trunk].pk)),
        "holiday_ring_group": post(
            client,
            RULES,
            rule_body(own, holiday_action="ring_group", holiday_ring_group=foreign_group.pk),
        ),
    }

    for field, response in responses.items():
        assert response.status_code == 400, field
        assert field in response.json()["errors"], response.json()
    assert not InboundRule.objects.exists()


@pytest.mark.django_db
def test_another_tenants_rule_is_404_for_every_verb(world: World, client_for: ClientFor) -> None:
    rule = make_rule(world.tenant_a, did_range="12125550101", extension=world.objects_a[Extension])
    client = client_for(world.admin_b)
    url = f"{RULES}{rule.pk}/"

    assert client.get(url).status_code == 404
    assert patch(client, url, {"name": "Taken over"}).status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(RULES).json()["count"] == 0
    rule.refresh_from_db()
    assert rule.name == "To reception"


@pytest.mark.django_db
def test_extension_users_may_not_use_the_rules_route(world: World, client_for: ClientFor) -> None:
    response = client_for(world.user_a).get(RULES)

    assert response.status_code == 403


@pytest.mark.django_db
def test_message_channels_off_leaves_both_routes_readable_and_refuses_changes(
    world: World, client_for: ClientFor
) -> None:
    tenant_update(tenant=world.tenant_a, message_channels_enabled=False)
    client = client_for(world.admin_a)

    for url in (RULES, CONVERSATIONS):
        assert client.get(url).status_code == 200, url
    response = client.post(RULES, {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "message_channels_disabled"


@pytest.mark.django_db
def test_a_system_admin_names_the_tenant_with_the_header(
    world: World, client_for: ClientFor
) -> None:
    make_rule(world.tenant_a, did_range="12125550101", extension=world.objects_a[Extension])
    client = client_for(world.sysadmin)

    assert client.get(RULES, HTTP_X_TENANT="a.example").json()["count"] == 1
    assert client.get(RULES, HTTP_X_TENANT="b.example").json()["count"] == 0


# --- conversations -----------------------------------------------------------------------------


@pytest.fixture
def conversations(world: World) -> dict[str, Any]:
    """Give user_a one conversation and tenant A's reception another."""
    tenant = world.tenant_a
    configuration = make_configuration(tenant)
    mine = world.user_a.extension
    make_rule(tenant, did_range="12125550101", extension=mine, name="Mine")
    make_rule(tenant, did_range="12125550102", extension=world.objects_a[Extension], name="Desk")
    group = ring_group_save(tenant=tenant, actor=None, name="Sales")
    ring_group_member_save(group=group, extension=mine)
    return {
        "mine": receive(configuration, did="+12125550101", remote="+13125550001").conversation,
        "desk": receive(configuration, did="+12125550102", remote="+13125550002").conversation,
    }


@pytest.mark.django_db
def test_a_user_lists_only_the_conversations_he_may_read(
    world: World, conversations: dict[str, Any], client_for: ClientFor
) -> None:
    mine, desk = conversations["mine"], conversations["desk"]
    client = client_for(world.user_a)

    listed = client.get(CONVERSATIONS).json()

    assert [row["id"] for row in listed["results"]] == [mine.pk]
    assert listed["results"][0]["extension_number"] == "101"
    assert listed["results"][0]["remote"] == "+13125550001"
    assert client.get(f"{CONVERSATIONS}{desk.pk}/").status_code == 404
    assert client.get(f"{CONVERSATIONS}{mine.pk}/").status_code == 200


@pytest.mark.django_db
def test_an_admin_filters_conversations_by_did_and_remote(
    world: World, conversations: dict[str, Any], client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    by_did = client.get(CONVERSATIONS, {"did": "2125550102"}).json()
    by_remote = client.get(CONVERSATIONS, {"remote": "+13125550001"}).json()
    everything = client.get(CONVERSATIONS).json()

    assert [row["id"] for row in by_did["results"]] == [conversations["desk"].pk]
    assert [row["id"] for row in by_remote["results"]] == [conversations["mine"].pk]
    assert everything["count"] == 2


@pytest.mark.django_db
def test_another_tenants_conversation_is_404(
    world: World, conversations: dict[str, Any], client_for: ClientFor
) -> None:
    client = client_for(world.admin_b)

    assert client.get(f"{CONVERSATIONS}{conversations['mine'].pk}/").status_code == 404
    assert client.get(CONVERSATIONS).json()["count"] == 0


@pytest.mark.django_db
def test_the_lists_cost_a_constant_number_of_queries(
    world: World,
    conversations: dict[str, Any],
    client_for: ClientFor,
    django_assert_max_num_queries: Any,
) -> None:
    configuration = make_configuration(world.tenant_a, name="More")
    for index in range(15):
        make_rule(
            world.tenant_a,
            did_range="12125550103",
            caller_mask=f"13125551{index:03d}",
            extension=world.objects_a[Extension],
            name=f"Rule {index}",
        )
        receive(configuration, did="+12125550103", remote=f"+13125551{index:03d}")
    client = client_for(world.admin_a)

    with django_assert_max_num_queries(6):
        conversation_list = client.get(CONVERSATIONS)
    with django_assert_max_num_queries(6):
        rule_list = client.get(RULES)

    assert conversation_list.json()["count"] == 17
    assert rule_list.json()["count"] == 17


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("target", "detail"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            'Office hours: the address of "169.254.169.254" is not public (169.254.169.254).',
        ),
        (
            "http://localhost:8080/hook",
            'Office hours: the address of "localhost" is not public (127.0.0.1).',
        ),
        (
            "https://[fe80::1]/hook",
            'Office hours: the address of "fe80::1" is not public (fe80::1).',
        ),
    ],
)
def test_an_http_destination_at_a_private_address_is_refused_with_the_field(
    world: World, client_for: ClientFor, target: str, detail: str
) -> None:
    body = rule_body(world.objects_a[Extension], office_action=Action.HTTP, office_target=target)

    response = post(client_for(world.admin_a), RULES, body)

    assert response.status_code == 400
    assert response.json() == {
        "code": "address_refused",
        "detail": detail,
        "field": "office_target",
    }
    assert not InboundRule.objects.exists()


@pytest.mark.django_db
def test_an_http_destination_on_an_allowed_network_or_a_host_name_is_saved(
    world: World, client_for: ClientFor, settings: Any
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    body = rule_body(
        world.objects_a[Extension],
        office_action=Action.HTTP,
        office_target="http://10.0.0.5/hook",
        holiday_action=Action.HTTP,
        holiday_target="https://crm.example.com/hook",
    )

    response = post(client_for(world.admin_a), RULES, body)

    assert response.status_code == 201, response.content
    rule = InboundRule.objects.get()
    assert (rule.office_target, rule.holiday_target) == (
        "http://10.0.0.5/hook",
        "https://crm.example.com/hook",
    )
