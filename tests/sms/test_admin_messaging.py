"""The messaging pages of the tenant site: rules, ring groups, hours, opt-outs and the logs."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from sms.inbound.store import webhook_delivery_store
from sms.models import (
    Action,
    Conversation,
    DeliveryStatus,
    Direction,
    InboundRule,
    Message,
    OptOut,
    SmsConfiguration,
    WebhookDelivery,
)
from sms.outbound.deliver import message_deliver
from tenants.models import (
    AuditEvent,
    Extension,
    Holiday,
    OfficeHours,
    RingGroup,
    RingGroupMember,
    User,
)
from tenants.services import extension_create, tenant_update
from tenants.services_groups import (
    holiday_save,
    office_hours_save,
    ring_group_member_save,
    ring_group_save,
)
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration, make_rule
from tests.sms.test_inbox import FailingClient, receive
from tests.tasks import TaskRecorder
from trunks.models import Trunk

ClientFor = Callable[[User | None], Client]

RULES = "/tenant/sms/inboundrule/"
GROUPS = "/tenant/tenants/ringgroup/"
HOURS = "/tenant/tenants/officehours/"
HOLIDAYS = "/tenant/tenants/holiday/"
OPT_OUTS = "/tenant/sms/optout/"
MESSAGES = "/tenant/sms/message/"
CONVERSATIONS = "/tenant/sms/conversation/"
DELIVERIES = "/tenant/sms/webhookdelivery/"
EXPORT = "/tenant/sms/message/export/"


def rule_form(extension: Extension, **changes: Any) -> dict[str, Any]:
    """Return the add form of an inbound rule sending every period to one extension."""
    data = {
        "name": "Main line",
        "trunk": shared_trunk().pk,
        "did_range": "12125550101",
        "caller_mask": "",
        "priority": "100",
        "enabled": "on",
        "custom_hours": "[]",
    }
    for period in ("office", "after_hours", "holiday"):
        data[f"{period}_action"] = Action.EXTENSION
        data[f"{period}_extension"] = extension.pk
        data[f"{period}_ring_group"] = ""
        data[f"{period}_target"] = ""
    data.update(changes)
    return data


def form_errors(response: Any) -> dict[str, list[str]]:
    """Return the errors of the admin form on a re-rendered add or change page."""
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return {name: list(errors) for name, errors in form.errors.items()}


def csv_rows(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- inbound rules -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_rule_whose_did_is_outside_the_pool_shows_the_reason_on_the_did_field(
    world: World, client_for: ClientFor
) -> None:
    extension = world.objects_a[Extension]

    response = client_for(world.admin_a).post(
        f"{RULES}add/", rule_form(extension, did_range="12125550110")
    )

    errors = form_errors(response)
    assert errors["did_range"] == [
        "12125550110 is not inside this tenant's DID pool on VoIP.ms San Jose."
    ]
    assert not InboundRule.objects.exists()
    assert not AuditEvent.objects.filter(object_type="sms.inboundrule").exists()


@pytest.mark.django_db
def test_a_rule_without_its_extension_shows_the_error_on_that_field(
    world: World, client_for: ClientFor
) -> None:
    extension = world.objects_a[Extension]

    response = client_for(world.admin_a).post(
        f"{RULES}add/", rule_form(extension, after_hours_extension="")
    )

    assert form_errors(response)["after_hours_extension"] == [
        "Outside office hours: choose the extension."
    ]


@pytest.mark.django_db
def test_a_rule_posting_to_a_private_address_shows_the_reason_on_the_target_field(
    world: World, client_for: ClientFor
) -> None:
    extension = world.objects_a[Extension]

    response = client_for(world.admin_a).post(
        f"{RULES}add/",
        rule_form(
            extension, after_hours_action=Action.HTTP, after_hours_target="http://10.0.0.5/hook"
        ),
    )

    assert form_errors(response)["after_hours_target"] == [
        'Outside office hours: the address of "10.0.0.5" is not public (10.0.0.5).'
    ]
    assert not InboundRule.objects.exists()


@pytest.mark.django_db
def test_a_rule_is_saved_and_deleted_through_the_service(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    extension = world.objects_a[Extension]

    response = client.post(
        f"{RULES}add/", rule_form(extension, caller_mask="1312555****", custom_hours="")
    )

    assert response.status_code == 302
    rule = InboundRule.objects.get()
    assert rule.tenant == world.tenant_a
    assert (rule.did_start, rule.did_end) == (12125550101, 12125550101)
    assert rule.caller_mask == "1312555****"
    assert rule.custom_hours == []
    assert (
        AuditEvent.objects.filter(
            action="created", object_type="sms.inboundrule", object_id=str(rule.pk)
        ).count()
        == 1
    )

    changed = client.post(
        f"{RULES}{rule.pk}/change/", rule_form(extension, did_range="12125550102-12125550104")
    )

    assert changed.status_code == 302
    rule.refresh_from_db()
    assert (rule.did_start, rule.did_end) == (12125550102, 12125550104)
    assert (
        AuditEvent.objects.filter(
            action="changed", object_type="sms.inboundrule", object_id=str(rule.pk)
        ).count()
        == 1
    )

    response = client.post(f"{RULES}{rule.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not InboundRule.objects.exists()
    assert AuditEvent.objects.filter(
        action="deleted", object_type="sms.inboundrule", object_id=str(rule.pk)
    ).exists()


@pytest.mark.django_db
def test_a_rule_with_another_tenants_extension_or_trunk_is_refused(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    own = world.objects_a[Extension]

    foreign_extension = client.post(
        f"{RULES}add/", rule_form(own, office_extension=world.objects_b[Extension].pk)
    )
    foreign_trunk = client.post(f"{RULES}add/", rule_form(own, trunk=world.objects_b[Trunk].pk))

    assert "office_extension" in form_errors(foreign_extension)
    assert "trunk" in form_errors(foreign_trunk)
    assert not InboundRule.objects.exists()


@pytest.mark.django_db
def test_the_rule_form_offers_only_the_tenants_trunks_extensions_and_groups(
    world: World, client_for: ClientFor
) -> None:
    ring_group_save(tenant=world.tenant_b, actor=None, name="B group")

    form = client_for(world.admin_a).get(f"{RULES}add/").context["adminform"].form

    trunks = set(form.fields["trunk"].queryset)
    assert trunks == {shared_trunk(), world.objects_a[Trunk]}
    assert world.objects_b[Extension] not in form.fields["office_extension"].queryset
    assert not form.fields["holiday_ring_group"].queryset.exists()


@pytest.mark.django_db
def test_the_rule_list_summarises_the_three_destinations(
    world: World, client_for: ClientFor
) -> None:
    group = ring_group_save(tenant=world.tenant_a, actor=None, name="Sales")
    make_rule(
        world.tenant_a,
        did_range="12125550101-12125550105",
        extension=world.objects_a[Extension],
        after_hours_action=Action.RING_GROUP,
        after_hours_ring_group=group,
        holiday_action=Action.DROP,
    )

    page = client_for(world.admin_a).get(RULES).content.decode()

    assert "12125550101-12125550105" in page
    assert "Extension inbox: 200 Reception" in page
    assert "Ring group: Sales" in page
    assert '<span class="destination">Holidays: Drop</span>' in page


# --- ring groups, office hours, holidays ---------------------------------------------------------


def group_form(name: str, members: list[tuple[Extension, bool, int]]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "number": "600",
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, (extension, enabled, position) in enumerate(members):
        data[f"memberships-{index}-extension"] = extension.pk
        data[f"memberships-{index}-position"] = str(position)
        if enabled:
            data[f"memberships-{index}-enabled"] = "on"
    return data


@pytest.mark.django_db
def test_a_ring_group_is_saved_with_its_members(world: World, client_for: ClientFor) -> None:
    second = extension_create(tenant=world.tenant_a, number="300")
    members = [(world.objects_a[Extension], True, 0), (second, False, 1)]

    response = client_for(world.admin_a).post(f"{GROUPS}add/", group_form("Sales", members))

    assert response.status_code == 302
    group = RingGroup.objects.get()
    assert group.tenant == world.tenant_a
    saved = list(RingGroupMember.objects.filter(ring_group=group).order_by("position"))
    assert [(m.extension.number, m.enabled, m.tenant_id) for m in saved] == [
        ("200", True, world.tenant_a.pk),
        ("300", False, world.tenant_a.pk),
    ]


@pytest.mark.django_db
def test_a_ring_group_name_is_unique_in_the_tenant_only(
    world: World, client_for: ClientFor
) -> None:
    ring_group_save(tenant=world.tenant_a, actor=None, name="Sales")
    ring_group_save(tenant=world.tenant_b, actor=None, name="Support")

    taken = client_for(world.admin_a).post(f"{GROUPS}add/", group_form("Sales", []))
    free = client_for(world.admin_a).post(f"{GROUPS}add/", group_form("Support", []))

    assert form_errors(taken)["name"] == ["A ring group named 'Sales' exists already."]
    assert free.status_code == 302


@pytest.mark.django_db
def test_office_hours_show_the_time_zone_and_refuse_an_end_before_the_start(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    page = client.get(HOURS).content.decode()
    response = client.post(f"{HOURS}add/", {"weekday": "0", "start": "17:00", "end": "09:00"})
    saved = client.post(f"{HOURS}add/", {"weekday": "0", "start": "09:00", "end": "17:00"})

    assert "Office hours (times in America/New_York)" in page
    assert form_errors(response) == {"end": ["The end must be after the start."]}
    assert saved.status_code == 302
    assert [str(hours) for hours in OfficeHours.objects.for_tenant(world.tenant_a)] == [
        "Monday 09:00-17:00"
    ]


@pytest.mark.django_db
def test_a_holiday_is_saved_for_the_tenant(world: World, client_for: ClientFor) -> None:
    response = client_for(world.admin_a).post(
        f"{HOLIDAYS}add/",
        {"name": "New Year", "start_date": "2027-01-01", "end_date": "2027-01-01"},
    )

    assert response.status_code == 302
    assert Holiday.objects.for_tenant(world.tenant_a).get().name == "New Year"


# --- opt-outs ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_opting_a_contact_back_in_deletes_the_opt_out(world: World, client_for: ClientFor) -> None:
    configuration = make_configuration(world.tenant_a)
    make_rule(world.tenant_a, did_range="12125550101", extension=world.objects_a[Extension])
    receive(configuration, did="+12125550101", remote="+13125550111", text="STOP")
    receive(configuration, did="+12125550101", remote="+13125550222", text="STOP")
    client = client_for(world.admin_a)
    opt_out = OptOut.objects.get(remote="+13125550111")

    search = client.get(OPT_OUTS, {"q": "5550111"}).content.decode()
    response = client.post(
        OPT_OUTS, {"action": "opt_back_in", "_selected_action": [opt_out.pk], "index": "0"}
    )

    assert "+13125550111" in search and "+13125550222" not in search
    assert response.status_code == 302
    assert list(OptOut.objects.values_list("remote", flat=True)) == ["+13125550222"]
    assert AuditEvent.objects.filter(action="opted_in", object_id=str(opt_out.pk)).exists()


# --- lists cost a constant number of queries -----------------------------------------------------


@dataclass
class Busy:
    configuration: SmsConfiguration


@pytest.fixture
def busy(world: World) -> Busy:
    """Fill tenant A with a dozen or more rows of every messaging model."""
    tenant = world.tenant_a
    configuration = make_configuration(tenant)
    extensions = [extension_create(tenant=tenant, number=str(300 + i)) for i in range(4)]
    groups = []
    for index in range(12):
        group = ring_group_save(tenant=tenant, actor=None, name=f"Group {index}")
        for position, extension in enumerate(extensions[:2]):
            ring_group_member_save(group=group, extension=extension, position=position)
        groups.append(group)
    for index in range(12):
        make_rule(
            tenant,
            name=f"Rule {index}",
            did_range="12125550100-12125550109",
            caller_mask=f"131255501{index:02d}",
            extension=extensions[index % 4],
            after_hours_action=Action.RING_GROUP,
            after_hours_ring_group=groups[index],
        )
    for weekday in range(7):
        office_hours_save(tenant=tenant, actor=None, weekday=weekday, start=time(0), end=time(23))
    for index in range(12):
        day = date(2027, 1, 1 + index)
        holiday_save(tenant=tenant, actor=None, name=f"Day {index}", start_date=day, end_date=day)
    for index in range(12):
        remote = f"+131255501{index:02d}"
        receive(configuration, did="+12125550100", remote=remote, text=f"Hello {index}")
        receive(configuration, did="+12125550100", remote=remote, text="STOP")
        webhook_delivery_store(
            configuration=configuration,
            method="POST",
            body=b"{}",
            query="",
            content_type="application/json",
            remote_addr="127.0.0.1",
            headers={},
            status=DeliveryStatus.PROCESSED,
        )
    return Busy(configuration=configuration)


# The most queries each list may cost, whatever its number of rows (each holds 12 or more).
LIST_QUERIES = {
    RULES: 6,
    GROUPS: 7,
    HOURS: 6,
    HOLIDAYS: 8,
    OPT_OUTS: 8,
    MESSAGES: 9,
    CONVERSATIONS: 6,
    DELIVERIES: 9,
}


@pytest.mark.django_db
@pytest.mark.parametrize("url", list(LIST_QUERIES))
def test_each_list_costs_a_constant_number_of_queries(
    world: World,
    busy: Busy,
    client_for: ClientFor,
    django_assert_max_num_queries: Any,
    url: str,
) -> None:
    client = client_for(world.admin_a)

    with django_assert_max_num_queries(LIST_QUERIES[url]):
        response = client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 7


# --- messages log --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_message_log_filters_by_the_tenants_dids_only(
    world: World, busy: Busy, client_for: ClientFor
) -> None:
    other = make_configuration(world.tenant_b)
    make_rule(world.tenant_b, did_range="12125550110", extension=world.objects_b[Extension])
    receive(other, did="+12125550110", remote="+13125550999")

    response = client_for(world.admin_a).get(MESSAGES, {"did": "+12125550100"})
    page = response.content.decode()

    assert "?did=%2B12125550100" in page
    assert "12125550110" not in page
    assert (
        response.context["cl"].result_count == Message.objects.filter(tenant=world.tenant_a).count()
    )


@pytest.mark.django_db
def test_the_message_detail_shows_attempts_and_media(world: World, client_for: ClientFor) -> None:
    configuration = make_configuration(world.tenant_a)
    make_rule(world.tenant_a, did_range="12125550101", extension=world.objects_a[Extension])
    received = receive(
        configuration,
        did="+12125550101",
        remote="+13125550111",
        media=("https://voip.ms/media/x/photo.jpg",),
    )
    admin = client_for(world.admin_a)
    admin.post(f"/inbox/c/{received.conversation_id}/reply/", {"body": "Thanks"})
    sent = Message.objects.get(direction=Direction.OUT)
    with mock.patch("sms.outbound.deliver.voipms_client_for", return_value=FailingClient()):
        message_deliver(message_id=sent.pk)

    out_page = admin.get(f"{MESSAGES}{sent.pk}/change/").content.decode()
    in_page = admin.get(f"{MESSAGES}{received.pk}/change/").content.decode()

    assert "Calls to VoIP.ms" in out_page
    assert "SMS is not enabled on this DID" in out_page
    assert f'href="/inbox/media/{received.media.get().pk}/"' in in_page
    assert "photo.jpg" in in_page


@pytest.mark.django_db
def test_export_csv_streams_the_filtered_list(
    world: World, busy: Busy, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    receive(busy.configuration, did="+12125550100", remote="+13125550100", text='=HYPERLINK("x")')
    expected = Message.objects.filter(tenant=world.tenant_a, direction=Direction.IN).count()
    client = client_for(world.admin_a)

    list_page = client.get(MESSAGES, {"direction": "in"}).content.decode()
    # Two more per chunk of 2000 rows: the events and VoIP.ms calls of each message.
    with django_assert_max_num_queries(9):
        response = client.get(EXPORT, {"direction": "in"})
        rows = csv_rows(response)

    assert f'href="{EXPORT}?direction=in"' in list_page
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="messages-')
    assert rows[0][:7] == ["id", "time", "direction", "kind", "status", "did", "remote"]
    assert len(rows) == expected + 1
    assert {row[2] for row in rows[1:]} == {"in"}
    assert {row[5] for row in rows[1:]} == {"+12125550100"}
    assert [row[7] for row in rows if "HYPERLINK" in row[7]] == ['\'=HYPERLINK("x")']
    assert rows[1][1].endswith("-05:00") or rows[1][1].endswith("-04:00")


@pytest.mark.django_db
def test_export_csv_holds_only_the_tenants_messages(
    world: World, busy: Busy, client_for: ClientFor
) -> None:
    rows = csv_rows(client_for(world.admin_b).get(EXPORT))

    assert rows == [rows[0]]


# --- conversations and webhook deliveries --------------------------------------------------------


@pytest.mark.django_db
def test_the_conversation_list_links_to_the_inbox(
    world: World, busy: Busy, client_for: ClientFor
) -> None:
    conversation = Conversation.objects.filter(tenant=world.tenant_a).first()

    page = client_for(world.admin_a).get(CONVERSATIONS).content.decode()

    assert f'href="/inbox/c/{conversation.pk}/"' in page


@pytest.mark.django_db
def test_reprocess_requeues_failed_and_processed_deliveries_and_leaves_duplicates(
    world: World,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Any,
) -> None:
    configuration = make_configuration(world.tenant_a)

    def store(status: str) -> WebhookDelivery:
        return webhook_delivery_store(
            configuration=configuration,
            method="POST",
            body=b'{"data": "raw body kept"}',
            query="",
            content_type="application/json",
            remote_addr="127.0.0.1",
            headers={},
            status=status,
            reason="processing failed: KeyError" if status == DeliveryStatus.FAILED else "",
        )

    failed, processed = store(DeliveryStatus.FAILED), store(DeliveryStatus.PROCESSED)
    duplicate = store(DeliveryStatus.DUPLICATE)
    client = client_for(world.admin_a)

    detail = client.get(f"{DELIVERIES}{failed.pk}/change/").content.decode()
    with (
        mock.patch("core.tasks.publish", TaskRecorder("sms.process_webhook")) as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            DELIVERIES,
            {
                "action": "reprocess",
                "_selected_action": [failed.pk, processed.pk, duplicate.pk],
                "index": "0",
            },
            follow=True,
        )

    assert "raw body kept" in detail
    assert "2 deliveries queued for processing. 1 duplicate of another delivery" in (
        response.content.decode()
    )
    failed.refresh_from_db()
    processed.refresh_from_db()
    duplicate.refresh_from_db()
    assert (failed.status, failed.reason, failed.processed_at) == (
        DeliveryStatus.RECEIVED,
        "",
        None,
    )
    assert processed.status == DeliveryStatus.RECEIVED
    assert duplicate.status == DeliveryStatus.DUPLICATE
    assert sorted(delay.ids()) == sorted([failed.pk, processed.pk])


@pytest.mark.django_db
def test_reprocess_touches_no_delivery_of_another_tenant(
    world: World, client_for: ClientFor
) -> None:
    other = webhook_delivery_store(
        configuration=make_configuration(world.tenant_b),
        method="POST",
        body=b"{}",
        query="",
        content_type="application/json",
        remote_addr=None,
        headers={},
        status=DeliveryStatus.FAILED,
    )

    with mock.patch("core.tasks.publish", TaskRecorder("sms.process_webhook")) as delay:
        client_for(world.admin_a).post(
            DELIVERIES, {"action": "reprocess", "_selected_action": [other.pk], "index": "0"}
        )

    other.refresh_from_db()
    assert other.status == DeliveryStatus.FAILED
    delay.assert_not_called()


# --- Message Channels ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_message_channels_off_hides_the_messaging_menus(
    world: World, client_for: ClientFor
) -> None:
    tenant_update(tenant=world.tenant_a, message_channels_enabled=False)
    client = client_for(world.admin_a)

    index = client.get("/tenant/").content.decode()

    for label in ("Inbound rules", "Messages", "Conversations", "Opt-outs", "Webhook deliveries"):
        assert f">{label}<" not in index, label
    assert ">Ring groups<" in index
    for url in (RULES, MESSAGES, CONVERSATIONS, OPT_OUTS, DELIVERIES, EXPORT):
        assert client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_the_menus_use_portsip_labels(world: World, client_for: ClientFor) -> None:
    index = client_for(world.admin_a).get("/tenant/").content.decode()

    for label in (
        "Inbound rules",
        "Ring groups",
        "Office hours",
        "Holidays",
        "Opt-outs",
        "Messages",
        "Conversations",
        "Webhook deliveries",
    ):
        assert f">{label}<" in index, label
