"""Messages tell their story: where a received message went (or why not), and every status
change and VoIP.ms call of a sent one, in the API, the message log and its CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import responses
from django.test import Client

from core import limits as portal_limits
from sms.inbound.process import inbound_message_ingest
from sms.models import Action, Message, MessageStatus, SmsConfiguration, Source
from sms.outbound.deliver import message_deliver
from sms.outbound.send import message_send
from tenants.models import Extension, RingGroup, Tenant, User
from tenants.services_groups import ring_group_save
from tests.factories import World
from tests.sms.helpers import make_rule
from tests.sms.test_outbound import API_URL, FakeVoipms
from trunks.voipms.webhooks import InboundMessage

SENDER = "+12125550100"
CONTACT = "+13125550199"
MESSAGES = "/api/v1/messages/"
LOG = "/tenant/sms/message/"
EXPORT = "/tenant/sms/message/export/"

ClientFor = Callable[[User | None], Client]


@pytest.fixture(autouse=True)
def _outbound_settings(settings: Any) -> Iterator[None]:
    settings.VOIPMS_API_URL = API_URL
    settings.VOIPMS_REQUESTS_PER_SECOND = 1000
    settings.SMS_MAX_ATTEMPTS = 3
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.flushdb()
        client.close()
    portal_limits._limits.cache_clear()
    yield
    portal_limits._limits.cache_clear()


def receive(tenant: Tenant, provider_id: int, *, did: str = SENDER, text: str = "Hi") -> Message:
    configuration = SmsConfiguration.objects.for_tenant(tenant).get()
    inbound = InboundMessage(
        kind="sms",
        provider_id=provider_id,
        from_number=CONTACT,
        to_number=did,
        text=text,
        media_urls=(),
        received_at=None,
        received_at_raw="",
        event_type="message.received",
        source="webhook",
    )
    result = inbound_message_ingest(
        configuration=configuration, inbound=inbound, source=Source.WEBHOOK
    )
    assert result.message is not None
    return result.message


def api_message(client: Client, message: Message) -> dict[str, Any]:
    response = client.get(f"{MESSAGES}{message.pk}/")
    assert response.status_code == 200, response.content
    return response.json()


def csv_rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def reception(world: World) -> Extension:
    return world.objects_a[Extension]


# --- received messages ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_routed_to_an_extension_names_it(world: World, client_for: ClientFor) -> None:
    extension = reception(world)
    make_rule(world.tenant_a, did_range="12125550100-12125550101", extension=extension)

    message = receive(world.tenant_a, 1)
    answer = api_message(client_for(world.admin_a), message)

    assert message.status == MessageStatus.ROUTED
    assert answer["routed_to"] == {
        "type": "extension",
        "id": extension.pk,
        "name": "200 (Reception)",
    }
    assert answer["unrouted_reason"] is None
    assert [(e["type"], e["status"]) for e in answer["events"]] == [
        ("status", "received"),
        ("status", "routed"),
    ]
    assert "extension 200" in answer["events"][1]["detail"]


@pytest.mark.django_db
def test_a_message_no_rule_matches_says_why_it_went_nowhere(
    world: World, client_for: ClientFor
) -> None:
    message = receive(world.tenant_a, 2)
    answer = api_message(client_for(world.admin_a), message)

    assert message.status == MessageStatus.UNROUTED
    assert answer["routed_to"] is None
    assert answer["unrouted_reason"] == "no inbound rule matches"
    assert answer["events"][-1]["status"] == "unrouted"


@pytest.mark.django_db
def test_a_ring_group_destination_names_the_group(world: World, client_for: ClientFor) -> None:
    group = ring_group_save(tenant=world.tenant_a, actor=None, name="Front desk", number="610")
    make_rule(
        world.tenant_a,
        did_range="12125550100",
        extension=reception(world),
        office_action=Action.RING_GROUP,
        office_ring_group=group,
        after_hours_action=Action.RING_GROUP,
        after_hours_ring_group=group,
        holiday_action=Action.RING_GROUP,
        holiday_ring_group=group,
    )

    answer = api_message(client_for(world.admin_a), receive(world.tenant_a, 3))

    assert answer["routed_to"] == {"type": "ring_group", "id": group.pk, "name": "Front desk"}
    assert RingGroup.objects.filter(pk=group.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "target", "status"),
    [
        (Action.HTTP, "https://hooks.example.com/in?token=Sec-9931-token", MessageStatus.ROUTED),
        (Action.AUTO_REPLY, "We are closed.", MessageStatus.ROUTED),
        (Action.DROP, "", MessageStatus.IGNORED),
    ],
)
def test_other_destinations_name_the_rule_and_never_its_target(
    world: World, client_for: ClientFor, action: str, target: str, status: str
) -> None:
    destinations = {
        f"{period}_{part}": value
        for period in ("office", "after_hours", "holiday")
        for part, value in (("action", action), ("target", target))
    }
    rule = make_rule(
        world.tenant_a,
        did_range="12125550100",
        extension=reception(world),
        name="Night desk",
        **destinations,
    )

    message = receive(world.tenant_a, 4)
    answer = api_message(client_for(world.admin_a), message)

    assert message.status == status
    assert answer["routed_to"] == {"type": action, "id": rule.pk, "name": "Night desk"}
    assert "Sec-9931-token" not in str(answer)


# --- sent messages ---------------------------------------------------------------------------


@pytest.fixture
def voipms() -> Iterator[FakeVoipms]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeVoipms(mocked)


def send(world: World, body: str = "Your table is ready", **kwargs: Any) -> Message:
    (message,) = message_send(
        user=world.admin_a, tenant=world.tenant_a, to=CONTACT, body=body, did=SENDER, **kwargs
    )
    return message


@pytest.mark.django_db
def test_every_status_change_and_call_to_voipms_is_an_event(
    world: World, voipms: FakeVoipms, client_for: ClientFor
) -> None:
    message = send(world)
    voipms.answer(
        "sendSMS",
        (503, "text/html", "<html>busy</html>"),
        {"status": "success", "sms": 4401},
    )

    message_deliver(message_id=message.pk)
    message_deliver(message_id=message.pk)
    answer = api_message(client_for(world.admin_a), message)

    assert answer["status"] == "sent"
    steps = [(e["type"], e["status"]) for e in answer["events"]]
    assert steps == [
        ("status", "queued"),
        ("status", "sending"),
        ("attempt", "retry"),
        ("status", "queued"),
        ("status", "sending"),
        ("attempt", "sent"),
        ("status", "sent"),
    ]
    retry = answer["events"][3]
    assert retry["code"] and retry["detail"]
    assert answer["routed_to"] is None and answer["unrouted_reason"] is None


@pytest.mark.django_db
def test_a_permanent_failure_is_told_with_its_code(
    world: World, voipms: FakeVoipms, client_for: ClientFor
) -> None:
    message = send(world)
    voipms.answer("sendSMS", {"status": "sms_failed"})

    message_deliver(message_id=message.pk)
    events = api_message(client_for(world.admin_a), message)["events"]

    assert [(e["type"], e["status"]) for e in events][-2:] == [
        ("attempt", "failed"),
        ("status", "failed"),
    ]
    assert events[-1]["code"] == "sms_failed"


# --- the message log -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_message_log_shows_the_story_and_the_csv_holds_it(
    world: World, voipms: FakeVoipms, client_for: ClientFor
) -> None:
    make_rule(world.tenant_a, did_range="12125550100", extension=reception(world))
    received = receive(world.tenant_a, 5)
    unrouted = receive(world.tenant_a, 6, did="+12125550105")
    sent = send(world)
    voipms.answer("sendSMS", {"status": "success", "sms": 4402})
    message_deliver(message_id=sent.pk)
    client = client_for(world.admin_a)

    in_page = client.get(f"{LOG}{received.pk}/change/").content.decode()
    out_page = client.get(f"{LOG}{sent.pk}/change/").content.decode()
    unrouted_page = client.get(f"{LOG}{unrouted.pk}/change/").content.decode()
    rows = {int(row["id"]): row for row in csv_rows(client.get(EXPORT))}

    assert "Extension inbox: 200 (Reception)" in in_page
    assert 'class="message-story"' in out_page and "<td>attempt</td>" in out_page
    assert "no inbound rule matches" in unrouted_page
    assert rows[received.pk]["route type"] == "extension"
    assert rows[received.pk]["route id"] == str(reception(world).pk)
    assert rows[unrouted.pk]["unrouted reason"] == "no inbound rule matches"
    assert rows[unrouted.pk]["route type"] == ""
    lines = rows[sent.pk]["events"].splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["status", "queued"],
        ["status", "sending"],
        ["attempt", "sent"],
        ["status", "sent"],
    ]


@pytest.mark.django_db
def test_another_tenant_never_reads_the_story(world: World, client_for: ClientFor) -> None:
    message = receive(world.tenant_a, 7)

    assert client_for(world.admin_b).get(f"{MESSAGES}{message.pk}/").status_code == 404
    assert client_for(world.admin_b).get(f"{LOG}{message.pk}/change/").status_code in (302, 404)
