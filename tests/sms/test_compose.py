"""The compose page: who may send from which DID, what is queued, and how refusals are shown."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sms.configurations import sms_configuration_update
from sms.models import (
    Conversation,
    Direction,
    Kind,
    LongMessagePolicy,
    Message,
    MessageStatus,
    OptOut,
    SmsConfiguration,
    Source,
)
from sms.outbound.rules import sms_caller_id_save
from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import Extension, SmsPermission, User
from tests.factories import POOLS, World, shared_trunk
from tests.tasks import TaskRecorder
from trunks.services import trunk_assignment_save

ClientFor = Callable[[User | None], Client]

URL = "/inbox/compose/"
DID = "+12125550105"
CONTACT = "+15145550123"
POOL_A = [f"+1212555010{n}" for n in range(10)]
OPTION = re.compile(r'<option value="(\+\d+)"([^>]*)>')


@pytest.fixture
def no_tasks() -> Iterator[TaskRecorder]:
    with mock.patch("core.tasks.publish", TaskRecorder("sms.deliver_message")) as delay:
        yield delay


@pytest.fixture
def caller_id(world: World) -> str:
    """Let user_a's extension 101 send from one DID of tenant A's pool on the shared trunk."""
    sms_caller_id_save(
        tenant=world.tenant_a,
        extension=world.user_a.extension,
        trunk=shared_trunk(),
        did=DID.removeprefix("+"),
    )
    return DID


def options(html: str) -> dict[str, str]:
    """Return the From select's DIDs with the attributes of each option."""
    return dict(OPTION.findall(html))


def configuration_a(world: World) -> SmsConfiguration:
    return world.objects_a[SmsConfiguration]


# --- who may send from what -----------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_sent_to_the_login_page(client_for: ClientFor) -> None:
    response = client_for(None).get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_inbox_links_to_the_compose_page(world: World, client_for: ClientFor) -> None:
    html = client_for(world.user_a).get("/inbox/").content.decode()

    assert f'href="{URL}"' in html
    assert "New message" in html


@pytest.mark.django_db
def test_an_extension_user_sees_only_his_did_preselected(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    html = client_for(world.user_a).get(URL).content.decode()

    assert list(options(html)) == [caller_id]
    assert " selected" in options(html)[caller_id]
    assert "Choose a number" not in html
    assert 'data-testid="compose-form"' in html


@pytest.mark.django_db
def test_an_extension_without_permission_sees_the_refusal_and_no_form(
    world: World, caller_id: str, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    Extension.objects.filter(user=world.user_a).update(sms_permission=SmsPermission.DISABLE)
    client = client_for(world.user_a)

    html = client.get(URL).content.decode()
    response = client.post(URL, {"from": caller_id, "to": CONTACT, "body": "Hi"})

    assert "This extension may not send SMS; ask your administrator." in html
    assert 'data-testid="compose-form"' not in html
    assert response.status_code == 400
    assert "not allowed to send SMS" in response.content.decode()
    assert not Message.objects.exists()
    no_tasks.assert_not_called()


@pytest.mark.django_db
def test_an_extension_without_caller_id_sees_the_refusal(
    world: World, client_for: ClientFor
) -> None:
    html = client_for(world.user_a).get(URL).content.decode()

    assert "This extension may not send SMS; ask your administrator." in html
    assert options(html) == {}


@pytest.mark.django_db
def test_a_tenant_admin_sees_every_pooled_did_with_a_configuration(
    world: World, client_for: ClientFor
) -> None:
    html = client_for(world.admin_a).get(URL).content.decode()

    # Tenant A's own trunk (16465550100-104) has no configuration; tenant B's pool is not A's.
    assert sorted(options(html)) == POOL_A
    assert "Choose a number" in html
    assert not any(" selected" in attributes for attributes in options(html).values())


@pytest.mark.django_db
def test_a_system_admin_sends_from_the_tenant_he_manages(
    world: World, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.sysadmin)
    assert "Choose a tenant" in client.get(URL).content.decode()
    session = client.session
    session[MANAGED_TENANT_SESSION_KEY] = world.tenant_a.pk
    session.save()

    assert sorted(options(client.get(URL).content.decode())) == POOL_A
    response = client.post(URL, {"from": "+12125550101", "to": CONTACT, "body": "Hi"})

    message = Message.objects.get()
    assert (message.tenant, message.did, message.extension) == (
        world.tenant_a,
        "+12125550101",
        None,
    )
    assert response["Location"] == f"/inbox/c/{message.conversation_id}/"


@pytest.mark.django_db
def test_the_options_cost_the_same_queries_whatever_the_number_of_dids(
    world: World, client_for: ClientFor, django_assert_num_queries: Any
) -> None:
    client = client_for(world.admin_a)
    with CaptureQueriesContext(connection) as few:
        assert len(options(client.get(URL).content.decode())) == 10
    trunk_assignment_save(
        trunk=shared_trunk(),
        tenant=world.tenant_a,
        did_pool=f"{POOLS['a.example']};12125551000-12125551099",
    )

    with django_assert_num_queries(len(few.captured_queries)):
        assert len(options(client.get(URL).content.decode())) == 110


# --- sending --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_extension_user_queues_a_message_and_lands_on_the_conversation(
    world: World,
    caller_id: str,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Callable[..., Any],
    no_tasks: TaskRecorder,
) -> None:
    client = client_for(world.user_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"from": caller_id, "to": "514 555 0123", "body": "Hello"})

    message = Message.objects.get()
    assert (message.direction, message.status, message.kind) == (
        Direction.OUT,
        MessageStatus.QUEUED,
        Kind.SMS,
    )
    assert (message.did, message.remote, message.body) == (caller_id, CONTACT, "Hello")
    assert message.source == Source.PORTAL
    assert message.extension == world.user_a.extension
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert (conversation.did, conversation.remote) == (caller_id, CONTACT)
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/c/{conversation.pk}/"
    no_tasks.assert_called_once_with(message.pk)
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert f"Message to {CONTACT} queued." in page.content.decode()


@pytest.mark.django_db
def test_a_long_text_is_queued_as_the_parts_the_counter_announced(
    world: World, caller_id: str, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    body = "word " * 40  # 200 bytes: two parts, broken after a space

    client_for(world.user_a).post(URL, {"from": caller_id, "to": CONTACT, "body": body})

    parts = list(Message.objects.order_by("part_index").values_list("body", flat=True))
    assert "".join(parts) == body
    assert len(parts) == 2


@pytest.mark.django_db
def test_line_breaks_are_sent_as_typed_not_as_the_browsers_crlf(
    world: World, caller_id: str, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client_for(world.user_a).post(URL, {"from": caller_id, "to": CONTACT, "body": "Hi\r\nthere"})

    assert Message.objects.get().body == "Hi\nthere"


@pytest.mark.django_db
def test_a_did_of_tenant_b_is_refused_next_to_from_and_nothing_is_queued(
    world: World,
    caller_id: str,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(world.user_a).post(
            URL, {"from": "+12125550110", "to": CONTACT, "body": "Typed text"}
        )

    html = response.content.decode()
    assert response.status_code == 400
    assert re.search(
        r'id="error-from">\+12125550110 is not one of this tenant&#x27;s numbers\.<', html
    )
    assert f'value="{CONTACT}"' in html
    assert ">\nTyped text</textarea>" in html
    assert callbacks == []
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_a_did_the_extension_may_not_use_is_refused_at_the_top(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    response = client_for(world.user_a).post(
        URL, {"from": "+12125550100", "to": CONTACT, "body": "Hi"}
    )

    assert response.status_code == 400
    assert 'data-testid="form-error">You may not send from +12125550100.<' in (
        response.content.decode()
    )
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_opted_out_destination_is_refused_with_the_reason(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    OptOut.objects.create(tenant=world.tenant_a, did=caller_id, remote=CONTACT, keyword="STOP")

    response = client_for(world.user_a).post(URL, {"from": caller_id, "to": CONTACT, "body": "Hi"})

    assert response.status_code == 400
    assert (
        f'id="error-to">{CONTACT} opted out of messages from {caller_id} (texted STOP).<'
        in response.content.decode()
    )
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("to", ["12345", "+442071234567", "not a number", ""])
def test_an_invalid_destination_is_refused_next_to_to(
    world: World, caller_id: str, client_for: ClientFor, to: str
) -> None:
    response = client_for(world.user_a).post(URL, {"from": caller_id, "to": to, "body": "Kept"})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="error-to">The destination must be a valid US or Canadian 10-digit number.<' in html
    assert ">\nKept</textarea>" in html
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_empty_text_is_refused_next_to_text(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    response = client_for(world.user_a).post(URL, {"from": caller_id, "to": CONTACT, "body": ""})

    assert response.status_code == 400
    assert 'id="error-body">Write a message.<' in response.content.decode()
    assert not Message.objects.exists()


# --- SMS or MMS -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_attachment_fields_are_rendered_only_for_an_mms_configuration(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)

    sms_only = client.get(URL).content.decode()
    sms_configuration_update(configuration=configuration_a(world), actor=None, channel="mms")
    with_mms = client.get(URL).content.decode()

    assert 'data-testid="media-fields"' not in sms_only
    assert 'name="media_urls"' not in sms_only
    assert 'data-channel="sms"' in options(sms_only)[caller_id]
    assert 'data-testid="media-fields"' in with_mms
    assert with_mms.count('name="media_urls"') == 3
    assert 'data-channel="mms"' in options(with_mms)[caller_id]


@pytest.mark.django_db
def test_each_option_carries_its_configurations_long_message_policy(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    sms_configuration_update(
        configuration=configuration_a(world),
        actor=None,
        long_message_policy=LongMessagePolicy.MMS,
    )

    html = client_for(world.user_a).get(URL).content.decode()

    assert 'data-long-message-policy="mms"' in options(html)[caller_id]


@pytest.mark.django_db
def test_attachments_are_queued_as_one_mms(
    world: World, caller_id: str, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    sms_configuration_update(configuration=configuration_a(world), actor=None, channel="mms")
    picture = "https://example.com/menu.png"

    response = client_for(world.user_a).post(
        URL, {"from": caller_id, "to": CONTACT, "body": "Menu", "media_urls": ["", picture, ""]}
    )

    message = Message.objects.get()
    assert response.status_code == 302
    assert (message.kind, message.media_urls) == (Kind.MMS, [picture])


@pytest.mark.django_db
def test_attachments_through_an_sms_only_configuration_are_refused_and_kept(
    world: World, caller_id: str, client_for: ClientFor
) -> None:
    picture = "https://example.com/menu.png"

    response = client_for(world.user_a).post(
        URL, {"from": caller_id, "to": CONTACT, "body": "Menu", "media_urls": [picture]}
    )

    assert response.status_code == 400
    assert "sends SMS only; remove the attachments." in response.content.decode()
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_the_reply_box_carries_the_counter_and_the_policy(
    world: World, caller_id: str, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    sms_configuration_update(
        configuration=configuration_a(world),
        actor=None,
        long_message_policy=LongMessagePolicy.MMS,
    )
    client = client_for(world.admin_a)
    client.post(URL, {"from": caller_id, "to": CONTACT, "body": "Hi"})

    html = client.get(f"/inbox/c/{Message.objects.get().conversation_id}/").content.decode()

    assert 'data-counter="reply-counter" data-long-message-policy="mms"' in html
    assert 'id="reply-counter"' in html
