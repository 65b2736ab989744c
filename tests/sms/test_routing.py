"""Inbound routing: opt-out keywords, rule matching, office hours, holidays and destinations."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from sms.inbound.process import inbound_message_ingest
from sms.models import (
    Action,
    Conversation,
    DestinationDelivery,
    DestinationStatus,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    Source,
)
from sms.selectors import inbound_rule_matching, time_period
from tenants.models import Extension, Holiday, OfficeHours, RingGroup, RingGroupMember
from tenants.services import extension_create
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from trunks.voipms.webhooks import InboundMessage

NEW_YORK = ZoneInfo("America/New_York")
_ids = itertools.count(5000)


def _receive(
    configuration: Any, text: str, *, to: str = "+12125550101", sender: str = "+18457231213"
) -> Message:
    inbound = InboundMessage(
        kind="sms",
        provider_id=next(_ids),
        from_number=sender,
        to_number=to,
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
    result.message.refresh_from_db()
    return result.message


@pytest.fixture
def reception(world: World) -> Extension:
    return Extension.objects.for_tenant(world.tenant_a).get(number="101")


@pytest.fixture
def configuration(world: World, reception: Extension) -> Any:
    configuration = make_configuration(world.tenant_a)
    make_rule(world.tenant_a, did_range="12125550100-12125550109", extension=reception)
    return configuration


def _replies(conversation_id: int) -> list[str]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, direction=Direction.OUT)
        .order_by("id")
        .values_list("body", flat=True)
    )


# --- opt-out ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "word",
    ["STOP", "stop", " Unsubscribe ", "STOPALL", "cancel", "END", "Quit", "revoke", "OPTOUT"],
)
def test_every_stop_keyword_opts_the_contact_out_with_one_confirmation(
    configuration: Any, word: str
) -> None:
    message = _receive(configuration, word)
    assert OptOut.objects.filter(did="+12125550101", remote="+18457231213").exists()
    assert _replies(message.conversation_id) == [configuration.stop_reply]
    _receive(configuration, "STOP")  # a second STOP sends no second confirmation
    assert _replies(message.conversation_id) == [configuration.stop_reply]


@pytest.mark.django_db
@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_start_keywords_opt_the_contact_back_in(configuration: Any, word: str) -> None:
    _receive(configuration, "STOP")
    _receive(configuration, word)
    assert not OptOut.objects.exists()


@pytest.mark.django_db
def test_help_gets_the_configured_reply_and_a_sentence_with_stop_does_not_opt_out(
    configuration: Any,
) -> None:
    message = _receive(configuration, "help")
    assert _replies(message.conversation_id) == [configuration.help_reply]
    _receive(configuration, "Please stop by tomorrow")
    assert not OptOut.objects.exists()


@pytest.mark.django_db
def test_keyword_messages_still_reach_the_inbox(configuration: Any, reception: Extension) -> None:
    message = _receive(configuration, "STOP")
    assert (message.status, message.extension_id) == (MessageStatus.ROUTED, reception.pk)


# --- rule matching -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_single_did_beats_a_range_and_a_mask_beats_none_then_priority(
    world: World, configuration: Any, reception: Extension
) -> None:
    other = extension_create(tenant=world.tenant_a, number="300", display_name="Sales")
    third = extension_create(tenant=world.tenant_a, number="301", display_name="Support")
    single = make_rule(world.tenant_a, name="Single", did_range="12125550105", extension=other)
    masked = make_rule(
        world.tenant_a,
        name="Masked",
        did_range="12125550100-12125550109",
        extension=third,
        caller_mask="1845*******",
        priority=500,
    )
    kwargs = {"configuration": configuration}
    assert inbound_rule_matching(**kwargs, did="+12125550105", caller="+18457231213") == single
    assert inbound_rule_matching(**kwargs, did="+12125550106", caller="+18457231213") == masked
    assert (
        inbound_rule_matching(**kwargs, did="+12125550106", caller="+13125550000").name
        == "To reception"
    )
    cheap = make_rule(
        world.tenant_a,
        name="Cheap",
        did_range="12125550100-12125550109",
        extension=other,
        caller_mask="1845*******",
        priority=1,
    )
    assert inbound_rule_matching(**kwargs, did="+12125550106", caller="+18457231213") == cheap


@pytest.mark.django_db
def test_masks_match_ranges_and_ten_digit_spellings(world: World, configuration: Any) -> None:
    extension = extension_create(tenant=world.tenant_a, number="302")
    rule = make_rule(
        world.tenant_a,
        name="Range mask",
        did_range="12125550103",
        extension=extension,
        caller_mask="8457231200-8457231299;3125550000",
    )
    kwargs = {"configuration": configuration, "did": "+12125550103"}
    assert inbound_rule_matching(**kwargs, caller="+18457231213") == rule
    assert inbound_rule_matching(**kwargs, caller="+13125550000") == rule
    assert inbound_rule_matching(**kwargs, caller="+18457231300").name == "To reception"


@pytest.mark.django_db
def test_a_disabled_rule_is_skipped_and_no_match_is_unrouted_with_the_reason(
    world: World, reception: Extension
) -> None:
    configuration = make_configuration(world.tenant_a)
    rule = make_rule(world.tenant_a, did_range="12125550101", extension=reception)
    type(rule).objects.filter(pk=rule.pk).update(enabled=False)
    message = _receive(configuration, "hello")
    assert (message.status, message.routed_to) == (
        MessageStatus.UNROUTED,
        "no inbound rule matches",
    )
    configuration.refresh_from_db()
    assert "no inbound rule matches" in configuration.last_error


@pytest.mark.django_db
def test_look_alike_numbers_of_another_tenant_never_route_there(world: World) -> None:
    # Tenant B's configuration on the same trunk receives a number of tenant A's pool.
    configuration_b = make_configuration(world.tenant_b, name="B")
    message = _receive(configuration_b, "hi", to="2125550101")
    assert message.tenant_id == world.tenant_b.pk
    assert message.status == MessageStatus.UNROUTED
    assert not Message.objects.filter(tenant=world.tenant_a).exists()


# --- office hours and holidays in the tenant's time zone -------------------------------------


@pytest.fixture
def hours(world: World) -> None:
    for weekday in range(5):
        OfficeHours.objects.create(
            tenant=world.tenant_a, weekday=weekday, start=time(9), end=time(17)
        )
    Holiday.objects.create(
        tenant=world.tenant_a,
        name="Independence Day",
        start_date=date(2026, 7, 4),
        end_date=date(2026, 7, 4),
        every_year=True,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("local", "period"),
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK), "office"),  # Monday 09:00 New York
        (datetime(2026, 11, 23, 16, 59, tzinfo=NEW_YORK), "office"),
        (datetime(2026, 11, 23, 17, 0, tzinfo=NEW_YORK), "after_hours"),
        (datetime(2026, 11, 23, 8, 59, tzinfo=NEW_YORK), "after_hours"),
        (datetime(2026, 11, 28, 12, 0, tzinfo=NEW_YORK), "after_hours"),  # Saturday
        (datetime(2027, 7, 4, 12, 0, tzinfo=NEW_YORK), "holiday"),  # every year
    ],
)
def test_the_period_follows_the_tenants_time_zone(
    world: World, hours: None, local: datetime, period: str
) -> None:
    assert time_period(tenant=world.tenant_a, at=local) == period


@pytest.mark.django_db
def test_a_rule_with_its_own_hours_ignores_the_tenants(
    world: World, configuration: Any, hours: None, reception: Extension
) -> None:
    rule = make_rule(
        world.tenant_a,
        name="Night desk",
        did_range="12125550107",
        extension=reception,
        use_custom_hours=True,
        custom_hours=[{"weekday": 0, "start": "20:00", "end": "23:00"}],
    )
    evening = datetime(2026, 11, 23, 21, 0, tzinfo=NEW_YORK)
    assert time_period(tenant=world.tenant_a, at=evening, rule=rule) == "office"
    assert time_period(tenant=world.tenant_a, at=evening) == "after_hours"


@pytest.mark.django_db
def test_messages_go_to_the_destination_of_their_period(
    world: World, hours: None, reception: Extension
) -> None:
    configuration = make_configuration(world.tenant_a)
    night = extension_create(tenant=world.tenant_a, number="400", display_name="Night")
    holiday = extension_create(tenant=world.tenant_a, number="401", display_name="Holiday")
    make_rule(
        world.tenant_a,
        did_range="12125550101",
        extension=reception,
        after_hours_extension=night,
        holiday_extension=holiday,
    )
    # 14:00 UTC is 09:00 in New York: office hours there, though after hours in UTC+10.
    with freeze_time("2026-11-23 14:00:00"):
        assert _receive(configuration, "a").extension_id == reception.pk
    with freeze_time("2026-11-23 23:30:00"):
        assert _receive(configuration, "b").extension_id == night.pk
    with freeze_time("2027-07-04 16:00:00"):
        assert _receive(configuration, "c").extension_id == holiday.pk


# --- destinations ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_ring_group_assigns_members_round_robin_and_keeps_the_agent(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    members = [extension_create(tenant=world.tenant_a, number=str(n)) for n in (501, 502)]
    group = RingGroup.objects.create(tenant=world.tenant_a, name="Front")
    for position, extension in enumerate(members):
        RingGroupMember.objects.create(
            tenant=world.tenant_a, ring_group=group, extension=extension, position=position
        )
    reception = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(
        world.tenant_a,
        did_range="12125550101",
        extension=reception,
        **{f"{p}_action": Action.RING_GROUP for p in ("office", "after_hours", "holiday")},
        **{f"{p}_ring_group": group for p in ("office", "after_hours", "holiday")},
    )
    first = _receive(configuration, "one", sender="+18457231213")
    again = _receive(configuration, "two", sender="+18457231213")
    second = _receive(configuration, "three", sender="+13125550111")
    assert first.extension_id == again.extension_id == members[0].pk
    assert second.extension_id == members[1].pk
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert (conversation.ring_group_id, conversation.extension_id) == (group.pk, members[0].pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "target", "expected"),
    [
        (Action.FORWARD, "3125550123", "forwarded to +13125550123"),
        (Action.AUTO_REPLY, "We are closed", "auto-reply"),
        (Action.DROP, "", "dropped by rule To reception"),
    ],
)
def test_forward_auto_reply_and_drop(
    world: World, reception: Extension, action: str, target: str, expected: str
) -> None:
    configuration = make_configuration(world.tenant_a)
    make_rule(
        world.tenant_a,
        did_range="12125550101",
        extension=reception,
        **{f"{p}_action": action for p in ("office", "after_hours", "holiday")},
        **{f"{p}_target": target for p in ("office", "after_hours", "holiday")},
    )
    message = _receive(configuration, "Hello")
    assert message.routed_to == expected
    outbound = Message.objects.filter(direction=Direction.OUT)
    if action == Action.FORWARD:
        forwarded = outbound.get()
        assert (forwarded.did, forwarded.remote, forwarded.status) == (
            "+12125550101",
            "+13125550123",
            "queued",
        )
        assert forwarded.body == "From +18457231213: Hello"
    elif action == Action.AUTO_REPLY:
        assert list(outbound.values_list("remote", "body")) == [("+18457231213", "We are closed")]
    else:
        assert message.status == MessageStatus.IGNORED and not outbound.exists()


@pytest.mark.django_db
def test_an_extension_asking_for_e_mail_is_notified(
    world: World, reception: Extension, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Extension.objects.filter(pk=reception.pk).update(email="desk@example.com", notify_by_email=True)
    configuration = make_configuration(world.tenant_a)
    make_rule(world.tenant_a, did_range="12125550101", extension=reception)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _receive(configuration, "Call me")
    # Run only the notification task, synchronously, as the worker would.
    from sms.tasks import deliver_destination

    message = Message.objects.get(direction=Direction.IN)
    destination = DestinationDelivery.objects.get(message=message)
    assert (destination.action, destination.extension) == (Action.EMAIL, reception)
    deliver_destination(destination.pk)
    destination.refresh_from_db()
    assert (destination.status, destination.attempts) == (DestinationStatus.DELIVERED, 1)
    assert callbacks
    assert mail.outbox[0].to == ["desk@example.com"]
    assert "Call me" in mail.outbox[0].body
