"""Who chooses the sender: "Allow" versus "Allow with Sender ID", and which configuration sends
when several share a trunk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from core.errors import ApplicationError, NotAllowed
from sms.configurations import sms_configuration_update
from sms.models import Message, SmsConfiguration
from sms.outbound.rules import outbound_rule_save, sms_caller_id_save
from sms.outbound.send import message_send, sender_did_count_for_user, sender_dids_for_user
from tenants.models import Extension, SmsPermission, User
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration
from trunks.models import Trunk

ClientFor = Callable[[User | None], Client]

OWN = "+12125550103"  # first SMS caller ID of extension 101
OTHER = "+12125550104"  # its second
CONTACT = "3125550199"
MESSAGES = "/api/v1/messages/"
SENDERS = "/inbox/compose/senders/"


@pytest.fixture(autouse=True)
def _fresh_limits(fresh_limits: None) -> None:
    """Every test starts with no send counted."""


@pytest.fixture
def extension(world: World) -> Extension:
    """Return extension 101 (user_a) with two SMS caller IDs, OWN added first."""
    extension = Extension.objects.get(user=world.user_a)
    for did in (OWN, OTHER):
        sms_caller_id_save(
            tenant=world.tenant_a, extension=extension, trunk=shared_trunk(), did=did
        )
    return extension


def allow(world: World, permission: str) -> None:
    Extension.objects.filter(user=world.user_a).update(sms_permission=permission)
    # world.user_a holds its own copy of the extension.
    world.user_a.extension.refresh_from_db()


def send(world: World, user: User, did: str | None, **kwargs: Any) -> list[Message]:
    return message_send(user=user, tenant=world.tenant_a, to=CONTACT, body="Hi", did=did, **kwargs)


# Allow / Allow with Sender ID -------------------------------------------------------------------


@pytest.mark.django_db
def test_allow_sends_only_from_the_extensions_own_number(
    world: World, extension: Extension
) -> None:
    allow(world, SmsPermission.ALLOW)

    assert sender_dids_for_user(user=world.user_a, tenant=world.tenant_a) == [OWN]
    assert sender_did_count_for_user(user=world.user_a, tenant=world.tenant_a) == 1
    (message,) = send(world, world.user_a, None)
    assert message.did == OWN
    with pytest.raises(NotAllowed) as refused:
        send(world, world.user_a, OTHER)
    assert refused.value.code == "sender_id_not_allowed"
    assert "Allow with Sender ID" in refused.value.message


@pytest.mark.django_db
def test_allow_with_sender_id_chooses_among_the_extensions_caller_ids(
    world: World, extension: Extension
) -> None:
    allow(world, SmsPermission.ALLOW_WITH_SENDER_ID)

    assert sender_dids_for_user(user=world.user_a, tenant=world.tenant_a) == [OWN, OTHER]
    (message,) = send(world, world.user_a, OTHER)
    assert message.did == OTHER
    with pytest.raises(ApplicationError) as refused:
        send(world, world.user_a, None)
    assert refused.value.code == "from_required"
    # A number of the pool that is not one of its caller IDs stays refused.
    with pytest.raises(NotAllowed) as refused:
        send(world, world.user_a, "+12125550100")
    assert refused.value.code == "from_not_allowed"


@pytest.mark.django_db
def test_the_compose_senders_follow_the_permission(
    world: World, extension: Extension, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)
    allow(world, SmsPermission.ALLOW)
    assert [s["did"] for s in client.get(SENDERS).json()["senders"]] == [OWN]
    allow(world, SmsPermission.ALLOW_WITH_SENDER_ID)
    assert [s["did"] for s in client.get(SENDERS).json()["senders"]] == [OWN, OTHER]


@pytest.mark.django_db
def test_the_api_refuses_another_sender_to_a_plain_allow_extension(
    world: World, extension: Extension, client_for: ClientFor
) -> None:
    allow(world, SmsPermission.ALLOW)
    body = {"from": OTHER, "to": CONTACT, "body": "Hi"}

    refused = client_for(world.user_a).post(MESSAGES, body, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "sender_id_not_allowed"

    allow(world, SmsPermission.ALLOW_WITH_SENDER_ID)
    sent = client_for(world.user_a).post(MESSAGES, body, content_type="application/json")
    assert sent.status_code == 202, sent.content
    assert Message.objects.get(pk=sent.json()["id"]).did == OTHER


# Several configurations on one trunk ------------------------------------------------------------


def verified(configuration: SmsConfiguration, *dids: str) -> None:
    """Store what a verification of the configuration read from getDIDsInfo."""
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        verification_status="ok",
        verification_result={"dids": [{"did": did, "sms_enabled": True} for did in dids]},
    )


@pytest.fixture
def two(world: World) -> tuple[SmsConfiguration, SmsConfiguration]:
    """Return tenant A's two configurations on the shared trunk, each a VoIP.ms account."""
    first = world.objects_a[SmsConfiguration]
    second = make_configuration(world.tenant_a, name="Second account", username="two@a.example")
    verified(first, "+12125550100", "+12125550101")
    verified(second, "+12125550102", "+12125550103")
    return first, second


@pytest.mark.django_db
def test_a_send_goes_through_the_configuration_whose_account_owns_the_did(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration]
) -> None:
    first, second = two

    (through_first,) = send(world, world.admin_a, "+12125550101")
    (through_second,) = send(world, world.admin_a, "+12125550102")

    assert through_first.configuration == first
    assert through_first.route_plan[0]["configuration_id"] == first.pk
    assert through_second.configuration == second
    assert through_second.route_plan[0]["configuration_id"] == second.pk


@pytest.mark.django_db
def test_a_did_no_configuration_is_known_to_own_is_refused_with_the_reason(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration]
) -> None:
    with pytest.raises(ApplicationError) as refused:
        send(world, world.admin_a, "+12125550105")

    assert refused.value.code == "configuration_ambiguous"
    assert "none is known to own +12125550105" in refused.value.message
    assert not Message.objects.filter(did="+12125550105").exists()


@pytest.mark.django_db
def test_a_did_owned_by_two_accounts_is_refused_not_guessed(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration]
) -> None:
    first, _ = two
    verified(first, "+12125550100", "+12125550102")

    with pytest.raises(ApplicationError) as refused:
        send(world, world.admin_a, "+12125550102")

    assert refused.value.code == "configuration_ambiguous"
    assert "several configurations" in refused.value.message


@pytest.mark.django_db
def test_the_api_answers_400_with_the_code_for_an_ambiguous_sender(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration], client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).post(
        MESSAGES,
        {"from": "2125550105", "to": CONTACT, "body": "Hi"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "configuration_ambiguous"


@pytest.mark.django_db
def test_the_compose_page_shows_the_reason(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration], client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).post(
        "/inbox/compose/", {"from": "+12125550105", "to": CONTACT, "body": "Hi"}
    )

    assert response.status_code == 400
    assert "none is known to own +12125550105" in response.content.decode()


@pytest.mark.django_db
def test_an_outbound_route_naming_a_configuration_sends_through_it(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration]
) -> None:
    _, second = two
    outbound_rule_save(
        tenant=world.tenant_a,
        actor=None,
        name="Through the second account",
        lengths="10",
        routes=[{"trunk": shared_trunk(), "configuration": second}],
    )

    # Unknown to both accounts, but the route names the configuration: no guess needed.
    (message,) = send(world, world.admin_a, "+12125550105")

    assert message.configuration == second


@pytest.mark.django_db
def test_a_route_may_not_name_a_configuration_on_another_trunk_or_tenant(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration], client_for: ClientFor
) -> None:
    other_trunk = make_configuration(
        world.tenant_a, name="Own trunk", trunk=world.objects_a[Trunk], username="own@a.example"
    )
    with pytest.raises(ApplicationError) as refused:
        outbound_rule_save(
            tenant=world.tenant_a,
            actor=None,
            name="Wrong",
            lengths="10",
            routes=[{"trunk": shared_trunk(), "configuration": other_trunk}],
        )
    assert refused.value.code == "configuration_not_on_trunk"

    response = client_for(world.admin_a).post(
        "/api/v1/outbound-rules/",
        {
            "name": "Cross",
            "lengths": "10",
            "routes": [
                {
                    "trunk": shared_trunk().pk,
                    "configuration": world.objects_b[SmsConfiguration].pk,
                }
            ],
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "configuration" in str(response.json())


@pytest.mark.django_db
def test_one_configuration_on_a_trunk_sends_without_a_verification(world: World) -> None:
    assert world.objects_a[SmsConfiguration].account_dids == frozenset()

    (message,) = send(world, world.admin_a, "+12125550105")

    assert message.configuration == world.objects_a[SmsConfiguration]


@pytest.mark.django_db
def test_changing_a_configurations_account_forgets_the_dids_it_owned(
    world: World, two: tuple[SmsConfiguration, SmsConfiguration]
) -> None:
    _, second = two
    sms_configuration_update(configuration=second, actor=None, daily_send_limit=50)
    second.refresh_from_db()
    assert "+12125550102" in second.account_dids

    sms_configuration_update(configuration=second, actor=None, username="three@a.example")

    second.refresh_from_db()
    assert second.account_dids == frozenset()
    with pytest.raises(ApplicationError) as refused:
        send(world, world.admin_a, "+12125550102")
    assert refused.value.code == "configuration_ambiguous"
