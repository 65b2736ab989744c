"""The inbox: who sees which conversation, reading, replying, retrying, handing over, media."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import responses
from django.test import Client
from playwright.sync_api import Page, expect

from sms.inbound.media import media_fetch
from sms.inbound.process import inbound_message_ingest
from sms.inbound.rules import inbound_rule_save
from sms.models import (
    Action,
    Conversation,
    Direction,
    Message,
    MessageMedia,
    MessageStatus,
    SmsConfiguration,
    Source,
)
from sms.outbound.deliver import message_deliver
from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import AuditEvent, Extension, RingGroup, Role, SmsPermission, Tenant, User
from tenants.services import extension_create, user_create
from tenants.services_groups import ring_group_member_save, ring_group_save
from tests.browser import browser, login, page  # noqa: F401
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration, make_rule
from tests.tasks import TaskRecorder
from trunks.voipms.errors import VoipmsError
from trunks.voipms.webhooks import InboundMessage

ClientFor = Callable[[User | None], Client]

OWN, OTHER, GROUP = "+13125550001", "+13125550002", "+13125550003"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PNG_URL = "https://voip.ms/media/abc/photo.png"
PDF_URL = "https://voip.ms/media/abc/menu.exe"

_provider_ids = itertools.count(5_000_000)


def receive(
    configuration: SmsConfiguration,
    *,
    did: str,
    remote: str,
    text: str = "Hello",
    media: tuple[str, ...] = (),
) -> Message:
    """Ingest a message as if VoIP.ms had posted it, and return it routed."""
    inbound = InboundMessage(
        kind="mms" if media else "sms",
        provider_id=next(_provider_ids),
        from_number=remote,
        to_number=did,
        text=text,
        media_urls=media,
        received_at=None,
        received_at_raw="",
        event_type="message.received",
        source="webhook",
    )
    result = inbound_message_ingest(
        configuration=configuration, inbound=inbound, source=Source.WEBHOOK
    )
    assert result.message is not None
    return Message.objects.get(pk=result.message.pk)


def ring_group_rule(tenant: Tenant, *, did_range: str, group: RingGroup) -> None:
    """Send every period of a DID to a ring group."""
    inbound_rule_save(
        tenant=tenant,
        actor=None,
        name=f"Group {did_range}",
        trunk=shared_trunk(),
        did_range=did_range,
        **{
            f"{period}_{part}": value
            for period in ("office", "after_hours", "holiday")
            for part, value in (("action", Action.RING_GROUP), ("ring_group", group))
        },
    )


@dataclass
class Inbox:
    configuration: SmsConfiguration
    own_extension: Extension
    carol: User
    carol_extension: Extension
    group: RingGroup
    own: Conversation
    other: Conversation
    grouped: Conversation


@pytest.fixture
def inbox(world: World) -> Inbox:
    """Tenant A with three conversations: user_a's, carol's, and their ring group's."""
    tenant = world.tenant_a
    configuration = make_configuration(tenant, name="Inbox")
    own_extension = world.user_a.extension
    carol = user_create(
        username="carol-102", password="correct horse 42", role=Role.USER, tenant=tenant
    )
    carol_extension = extension_create(
        tenant=tenant, number="102", user=carol, sms_permission=SmsPermission.DISABLE
    )
    group = ring_group_save(tenant=tenant, actor=None, name="Sales")
    ring_group_member_save(group=group, extension=own_extension, position=0)
    ring_group_member_save(group=group, extension=carol_extension, position=1)
    make_rule(tenant, did_range="12125550101", extension=own_extension, name="Own")
    make_rule(tenant, did_range="12125550102", extension=carol_extension, name="Carol")
    ring_group_rule(tenant, did_range="12125550103", group=group)
    own = receive(configuration, did="+12125550101", remote=OWN).conversation
    other = receive(configuration, did="+12125550102", remote=OTHER).conversation
    grouped = receive(configuration, did="+12125550103", remote=GROUP).conversation
    return Inbox(
        configuration=configuration,
        own_extension=own_extension,
        carol=carol,
        carol_extension=carol_extension,
        group=group,
        own=own,
        other=other,
        grouped=grouped,
    )


@pytest.fixture
def no_tasks() -> Iterator[TaskRecorder]:
    with mock.patch("core.tasks.publish", TaskRecorder("sms.deliver_message")) as delay:
        yield delay


class FailingClient:
    """A VoIP.ms client whose sends fail for good, as when SMS is off on the DID."""

    def __enter__(self) -> FailingClient:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def send_sms(self, **kwargs: Any) -> int:
        raise VoipmsError("sms_failed", "SMS is not enabled on this DID", permanent=True)


def failed_reply(inbox: Inbox, client: Client) -> Message:
    """Reply in user_a's conversation and let VoIP.ms refuse it."""
    client.post(f"/inbox/c/{inbox.own.pk}/reply/", {"body": "Are you there?"})
    message = Message.objects.get(conversation=inbox.own, direction=Direction.OUT)
    with mock.patch("sms.outbound.deliver.voipms_client_for", return_value=FailingClient()):
        message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    return message


# --- visibility ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_extension_user_sees_his_and_his_ring_groups_conversations_only(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    html = client_for(world.user_a).get("/inbox/").content.decode()

    assert OWN in html
    assert GROUP in html
    assert OTHER not in html


@pytest.mark.django_db
def test_tenant_admin_sees_every_conversation_of_the_tenant(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    html = client_for(world.admin_a).get("/inbox/").content.decode()

    assert OWN in html and OTHER in html and GROUP in html


@pytest.mark.django_db
def test_system_admin_managing_a_tenant_sees_its_conversations(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    assert OWN not in client.get("/inbox/").content.decode()
    session = client.session
    session[MANAGED_TENANT_SESSION_KEY] = world.tenant_a.pk
    session.save()

    html = client.get("/inbox/").content.decode()

    assert OWN in html and OTHER in html and GROUP in html
    assert client.get(f"/inbox/c/{inbox.other.pk}/").status_code == 200


@pytest.mark.django_db
def test_the_list_shows_unread_count_did_last_text_and_assignee(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="Second question")

    html = client_for(world.user_a).get("/inbox/").content.decode()

    row = html[html.index(f'data-conversation="{inbox.own.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "+12125550101" in row
    assert "Second question" in row
    assert "101" in row
    assert 'data-testid="unread">2<' in row


@pytest.mark.django_db
def test_another_extensions_conversation_is_404_on_every_route(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.user_a)
    pk = inbox.other.pk
    message = inbox.other.messages.get()

    for url in (f"/inbox/c/{pk}/", f"/inbox/c/{pk}/messages.json"):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/inbox/c/{pk}/reply/",
        f"/inbox/c/{pk}/transfer/",
        f"/inbox/m/{message.pk}/retry/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"body": "x"}).status_code == 404, url
    assert not Message.objects.filter(conversation=inbox.other, direction=Direction.OUT).exists()


@pytest.mark.django_db
def test_tenant_b_gets_404_for_every_inbox_route_of_tenant_a(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    message = failed_reply(inbox, client_for(world.user_a))
    media = receive(
        inbox.configuration, did="+12125550101", remote=OWN, media=(PNG_URL,)
    ).media.get()

    for user in (world.admin_b, world.user_b):
        client = client_for(user)
        for url in (
            f"/inbox/c/{inbox.own.pk}/",
            f"/inbox/c/{inbox.own.pk}/messages.json",
            f"/inbox/c/{inbox.own.pk}/reply/",
            f"/inbox/c/{inbox.grouped.pk}/transfer/",
            f"/inbox/m/{message.pk}/retry/",
            f"/inbox/media/{media.pk}/",
        ):
            assert client.get(url).status_code == 404, (user, url)
            assert client.post(url, {"body": "x", "extension": "1"}).status_code in (404, 405)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(inbox: Inbox, client_for: ClientFor) -> None:
    response = client_for(None).get(f"/inbox/c/{inbox.own.pk}/")

    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.django_db
def test_the_inbox_list_costs_the_same_queries_for_many_conversations(
    world: World, inbox: Inbox, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    for index in range(30):
        receive(inbox.configuration, did="+12125550103", remote=f"+1312555{index + 100:04d}")
    client = client_for(world.user_a)

    # Session, user, tenant, count, page, the rows' contacts, the notifications' cursor...
    with django_assert_max_num_queries(8):
        response = client.get("/inbox/")

    # Her own, the ring group's first, and the 30 new ones of the ring group.
    assert response.content.decode().count("conversation-row") == 32


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_opening_a_conversation_marks_it_read(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="Again")
    inbox.own.refresh_from_db()
    assert inbox.own.unread_count == 2

    response = client_for(world.user_a).get(f"/inbox/c/{inbox.own.pk}/")

    assert response.status_code == 200
    inbox.own.refresh_from_db()
    assert inbox.own.unread_count == 0
    assert not inbox.own.messages.filter(direction=Direction.IN, read_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_conversation_shows_bubbles_in_left_out_right_with_status(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.user_a)
    client.post(f"/inbox/c/{inbox.own.pk}/reply/", {"body": "On my way <b>now</b>"})

    html = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()

    assert html.index("bubble bubble-in") < html.index("bubble bubble-out")
    assert "On my way &lt;b&gt;now&lt;/b&gt;" in html
    assert 'class="status status-queued">Queued<' in html
    assert "portal/inbox.js" in html


@pytest.mark.django_db
def test_the_conversation_page_costs_the_same_queries_for_many_messages(
    world: World, inbox: Inbox, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    for index in range(25):
        receive(inbox.configuration, did="+12125550103", remote=GROUP, media=(f"{PNG_URL}{index}",))
    client = client_for(world.user_a)

    with django_assert_max_num_queries(15):
        response = client.get(f"/inbox/c/{inbox.grouped.pk}/")

    assert response.content.decode().count("bubble bubble-in") == 26


@pytest.mark.django_db
def test_polling_returns_messages_after_an_id_and_updates_pending_ones(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.user_a)
    first = inbox.own.messages.get()
    client.post(f"/inbox/c/{inbox.own.pk}/reply/", {"body": "Queued reply"})
    reply = inbox.own.messages.get(direction=Direction.OUT)
    newer = receive(inbox.configuration, did="+12125550101", remote=OWN, text="New one")
    with mock.patch("sms.outbound.deliver.voipms_client_for", return_value=FailingClient()):
        message_deliver(message_id=reply.pk)

    data = client.get(
        f"/inbox/c/{inbox.own.pk}/messages.json", {"after": reply.pk, "pending": f"{reply.pk}"}
    ).json()

    assert [m["id"] for m in data["messages"]] == [newer.pk]
    assert data["messages"][0]["body"] == "New one"
    assert data["messages"][0]["direction"] == "in"
    assert data["updated"][0]["status"] == "failed"
    assert data["updated"][0]["error_message"] == "SMS is not enabled on this DID"
    assert data["updated"][0]["retry_url"] == f"/inbox/m/{reply.pk}/retry/"
    assert data["opted_out"] is False
    assert first.pk < reply.pk
    inbox.own.refresh_from_db()
    assert inbox.own.unread_count == 0


# --- replying ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reply_queues_a_message_from_the_conversations_did(
    world: World,
    inbox: Inbox,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Any,
    no_tasks: TaskRecorder,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(world.user_a).post(
            f"/inbox/c/{inbox.own.pk}/reply/", {"body": "We open at nine."}
        )

    assert response.status_code == 302
    assert response["Location"] == f"/inbox/c/{inbox.own.pk}/"
    message = Message.objects.get(conversation=inbox.own, direction=Direction.OUT)
    assert message.status == MessageStatus.QUEUED
    assert message.source == Source.PORTAL
    assert (message.did, message.remote, message.body) == ("+12125550101", OWN, "We open at nine.")
    assert message.extension == inbox.own_extension
    assert message.configuration == inbox.configuration
    no_tasks.assert_called_once_with(message.pk)


@pytest.mark.django_db
def test_a_refused_reply_shows_the_reason(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    response = client_for(world.user_a).post(
        f"/inbox/c/{inbox.own.pk}/reply/", {"body": "   "}, follow=True
    )

    assert "Write a message." in response.content.decode()
    assert not Message.objects.filter(direction=Direction.OUT).exists()


@pytest.mark.django_db
def test_a_refused_reply_keeps_the_text_typed_in_the_reply_box_once(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.user_a)
    # Long texts go as one MMS here, and an MMS holds at most 2048 characters: refused.
    SmsConfiguration.objects.filter(pk=inbox.own.configuration_id).update(long_message_policy="mms")
    typed = "A reply that is far too long " * 80
    response = client.post(f"/inbox/c/{inbox.own.pk}/reply/", {"body": typed}, follow=True)

    shown = response.content.decode()
    box = shown.split('id="reply-body"')[1].split("</textarea>")[0]
    assert typed.strip() in box
    assert 'id="reply-error"' in shown
    assert not Message.objects.filter(direction=Direction.OUT).exists()
    again = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    assert typed.strip() not in again.split('id="reply-body"')[1].split("</textarea>")[0]


@pytest.mark.django_db
def test_an_extension_not_allowed_to_send_cannot_reply(
    inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    response = client_for(inbox.carol).post(
        f"/inbox/c/{inbox.other.pk}/reply/", {"body": "Hi"}, follow=True
    )

    assert "not allowed to send SMS" in response.content.decode()
    assert not Message.objects.filter(direction=Direction.OUT).exists()


@pytest.mark.django_db
def test_an_opted_out_contact_replaces_the_reply_box_and_blocks_replies(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="STOP")
    client = client_for(world.user_a)
    before = Message.objects.filter(direction=Direction.OUT).count()  # the STOP confirmation

    html = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    response = client.post(f"/inbox/c/{inbox.own.pk}/reply/", {"body": "Still there?"}, follow=True)

    assert f"{OWN} opted out (texted STOP); messages to them are blocked." in html
    assert 'data-testid="reply-form"' not in html
    assert "opted out" in response.content.decode()
    assert Message.objects.filter(direction=Direction.OUT).count() == before


# --- retrying ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_message_shows_its_reason_and_retry_queues_it_again(
    world: World,
    inbox: Inbox,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Any,
    no_tasks: TaskRecorder,
) -> None:
    client = client_for(world.user_a)
    message = failed_reply(inbox, client)
    no_tasks.reset_mock()

    html = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/inbox/m/{message.pk}/retry/")

    assert "SMS is not enabled on this DID" in html
    assert f'action="/inbox/m/{message.pk}/retry/"' in html
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    assert message.attempt_count == 1
    assert message.error_message == ""
    no_tasks.assert_called_once_with(message.pk)
    assert AuditEvent.objects.filter(action="retried", object_id=str(message.pk)).exists()


@pytest.mark.django_db
def test_retry_refuses_a_message_that_did_not_fail(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.user_a)
    client.post(f"/inbox/c/{inbox.own.pk}/reply/", {"body": "Queued"})
    message = Message.objects.get(direction=Direction.OUT)
    no_tasks.reset_mock()

    response = client.post(f"/inbox/m/{message.pk}/retry/", follow=True)

    assert "Only failed messages can be retried." in response.content.decode()
    no_tasks.assert_not_called()


# --- handing over --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_transfer_hands_a_ring_group_conversation_to_another_member_for_later_messages(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    assert inbox.grouped.extension == inbox.own_extension
    client = client_for(world.user_a)
    html = client.get(f"/inbox/c/{inbox.grouped.pk}/").content.decode()
    assert 'data-testid="transfer-form"' in html

    response = client.post(
        f"/inbox/c/{inbox.grouped.pk}/transfer/", {"extension": inbox.carol_extension.pk}
    )

    assert response.status_code == 302
    inbox.grouped.refresh_from_db()
    assert inbox.grouped.extension == inbox.carol_extension
    later = receive(inbox.configuration, did="+12125550103", remote=GROUP, text="Follow-up")
    assert later.extension == inbox.carol_extension
    assert "→ 102" in later.routed_to
    event = AuditEvent.objects.get(action="transferred")
    assert event.detail == {"from": "101", "to": "102"}


@pytest.mark.django_db
def test_transfer_refuses_an_extension_outside_the_ring_group(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    outsider = world.objects_a[Extension]

    response = client_for(world.admin_a).post(
        f"/inbox/c/{inbox.grouped.pk}/transfer/", {"extension": outsider.pk}, follow=True
    )

    assert "Choose a member" in response.content.decode()
    inbox.grouped.refresh_from_db()
    assert inbox.grouped.extension == inbox.own_extension


@pytest.mark.django_db
def test_a_conversation_without_ring_group_offers_no_transfer(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)

    html = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    response = client.post(
        f"/inbox/c/{inbox.own.pk}/transfer/", {"extension": inbox.own_extension.pk}, follow=True
    )

    assert 'data-testid="transfer-form"' not in html
    assert "Choose a member" in response.content.decode()


# --- media ---------------------------------------------------------------------------------------


@pytest.fixture
def stored_media(settings: Any, tmp_path: Path, inbox: Inbox) -> tuple[MessageMedia, MessageMedia]:
    """Receive an MMS with a picture and a program, and download both."""
    settings.MEDIA_ROOT = tmp_path / "media"
    message = receive(inbox.configuration, did="+12125550101", remote=OWN, media=(PNG_URL, PDF_URL))
    with responses.RequestsMock() as mocked:
        mocked.get(PNG_URL, body=PNG, content_type="image/png")
        mocked.get(PDF_URL, body=b"MZ\x90\x00", content_type="application/x-msdownload")
        picture, program = message.media.order_by("id")
        media_fetch(media_id=picture.pk)
        media_fetch(media_id=program.pk)
    picture.refresh_from_db()
    program.refresh_from_db()
    return picture, program


@pytest.mark.django_db
def test_a_picture_is_shown_inline_to_those_who_see_the_conversation(
    world: World,
    inbox: Inbox,
    stored_media: tuple[MessageMedia, MessageMedia],
    client_for: ClientFor,
) -> None:
    picture, program = stored_media
    client = client_for(world.user_a)

    html = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    response = client.get(f"/inbox/media/{picture.pk}/")

    assert f'<img src="/inbox/media/{picture.pk}/"' in html
    assert f'href="/inbox/media/{program.pk}/" class="media-link"' in html
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    assert "attachment" not in response.get("Content-Disposition", "")
    assert response["Content-Security-Policy"].startswith("sandbox")


@pytest.mark.django_db
def test_any_other_file_is_a_download(
    world: World, stored_media: tuple[MessageMedia, MessageMedia], client_for: ClientFor
) -> None:
    _, program = stored_media

    response = client_for(world.admin_a).get(f"/inbox/media/{program.pk}/")

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == b"MZ\x90\x00"


@pytest.mark.django_db
def test_media_is_404_for_a_user_who_cannot_see_the_conversation(
    world: World,
    inbox: Inbox,
    stored_media: tuple[MessageMedia, MessageMedia],
    client_for: ClientFor,
) -> None:
    picture, _ = stored_media

    for user in (inbox.carol, world.admin_b, world.user_b):
        assert client_for(user).get(f"/inbox/media/{picture.pk}/").status_code == 404


@pytest.mark.django_db
def test_media_not_downloaded_yet_links_to_the_providers_copy(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    media = receive(
        inbox.configuration, did="+12125550101", remote=OWN, media=(PNG_URL,)
    ).media.get()

    response = client_for(world.user_a).get(f"/inbox/media/{media.pk}/")

    assert response.status_code == 302
    assert response["Location"] == PNG_URL


# --- in the browser -------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_new_messages_and_status_changes_appear_without_reloading(
    world: World,
    inbox: Inbox,
    page: Page,  # noqa: F811
    no_tasks: TaskRecorder,
) -> None:
    login(page, world.user_a.username, "correct horse 42")
    page.goto(f"/inbox/c/{inbox.own.pk}/")
    page.fill("#reply-body", "Let me check.")
    with page.expect_navigation():
        page.click("#reply-form button[type=submit]")
    sent = page.locator(".bubble-out").last
    expect(sent.locator(".status")).to_have_text("Queued")

    receive(inbox.configuration, did="+12125550101", remote=OWN, text="Any news?")
    reply = Message.objects.get(direction=Direction.OUT)
    with mock.patch("sms.outbound.deliver.voipms_client_for", return_value=FailingClient()):
        message_deliver(message_id=reply.pk)

    expect(page.locator(".bubble-in").last).to_have_text(
        re.compile(re.escape("Any news?")), timeout=10_000
    )
    expect(sent.locator(".status")).to_have_text("Failed", timeout=10_000)
    expect(sent.locator(".bubble-error")).to_have_text("SMS is not enabled on this DID")
    expect(sent.locator(".retry-form button")).to_be_visible()
