"""The inbox as people use it: search, contact names, the live list, pictures sent as MMS."""

# ruff: noqa: F811  (fixtures imported from the inbox and outbound tests)

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from sms.configurations import sms_configuration_update
from sms.models import (
    Contact,
    Direction,
    Kind,
    MediaStatus,
    Message,
    MessageMedia,
    MessageStatus,
    SmsConfiguration,
)
from sms.outbound.deliver import message_deliver
from tests.factories import World
from tests.sms.test_inbox import (  # noqa: F401
    GROUP,
    OTHER,
    OWN,
    ClientFor,
    Inbox,
    inbox,
    no_tasks,
    receive,
)
from tests.sms.test_outbound import API_URL, FakeVoipms, voipms  # noqa: F401
from tests.tasks import TaskRecorder
from trunks.voipms.sandbox.services import sandbox_account_ensure, sandbox_outbox

FACTORY_API_PASSWORD = "factory-api-password"
# A real 1x1 picture: browsers and VoIP.ms alike can show it.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def png(name: str = "photo.png", content: bytes = PNG) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="image/png")


@pytest.fixture
def mms(inbox: Inbox) -> Inbox:
    """Make the inbox's configuration send MMS."""
    sms_configuration_update(configuration=inbox.configuration, actor=None, channel="mms")
    return inbox


# --- search --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_search_finds_a_text_in_an_older_message_and_highlights_it(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    receive(inbox.configuration, did="+12125550102", remote=OTHER, text="The invoice #4471 is due")
    receive(inbox.configuration, did="+12125550102", remote=OTHER, text="Thanks, bye")

    html = client_for(world.admin_a).get("/inbox/", {"q": "INVOICE"}).content.decode()

    assert html.count("conversation-row") == 1
    assert OTHER in html
    assert "The <mark>invoice</mark> #4471 is due" in html
    assert "1 conversation matches" in html


@pytest.mark.django_db
def test_search_finds_contact_names_and_number_digits(
    world: World, inbox: Inbox, client_for: Any
) -> None:
    Contact.objects.create(tenant=world.tenant_a, name="Marguerite Tremblay", number=GROUP)
    client = client_for(world.admin_a)

    by_name = client.get("/inbox/", {"q": "tremblay"}).content.decode()
    by_digits = client.get("/inbox/", {"q": "(312) 555-0002"}).content.decode()

    assert by_name.count("conversation-row") == 1
    assert "Marguerite <mark>Tremblay</mark>" in by_name and GROUP in by_name
    assert by_digits.count("conversation-row") == 1 and OTHER in by_digits


@pytest.mark.django_db
def test_search_escapes_what_it_highlights(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="<b>bold</b> offer")

    html = client_for(world.admin_a).get("/inbox/", {"q": "bold"}).content.decode()

    assert "&lt;b&gt;<mark>bold</mark>&lt;/b&gt; offer" in html
    assert "<b>bold</b>" not in html


@pytest.mark.django_db
def test_an_extension_user_finds_only_his_conversations(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    for did, remote in (("+12125550101", OWN), ("+12125550102", OTHER), ("+12125550103", GROUP)):
        receive(inbox.configuration, did=did, remote=remote, text="Your parcel is here")

    html = client_for(world.user_a).get("/inbox/", {"q": "parcel"}).content.decode()

    assert html.count("conversation-row") == 2
    assert OWN in html and GROUP in html and OTHER not in html


@pytest.mark.django_db
def test_search_never_finds_another_tenants_messages_or_contacts(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    receive(inbox.configuration, did="+12125550102", remote=OTHER, text="Secret recipe inside")
    Contact.objects.create(tenant=world.tenant_a, name="Secret Supplier", number=OWN)

    for user in (world.admin_b, world.user_b):
        html = client_for(user).get("/inbox/", {"q": "secret"}).content.decode()
        assert "conversation-row" not in html
        assert "No conversation matches your search." in html
        for number in (OWN, OTHER, GROUP):
            assert number not in html


@pytest.mark.django_db
def test_search_results_are_paginated(world: World, inbox: Inbox, client_for: ClientFor) -> None:
    for index in range(5):
        receive(
            inbox.configuration,
            did="+12125550101",
            remote=f"+1312555{index + 10:04d}",
            text=f"order {index}",
        )
    client = client_for(world.admin_a)

    with mock.patch("sms.views.PAGE_SIZE", 2):
        first = client.get("/inbox/", {"q": "order"}).content.decode()
        last = client.get("/inbox/", {"q": "order", "page": 3}).content.decode()

    assert first.count("conversation-row") == 2 and "5 conversations match" in first
    assert "q=order&amp;page=2" in first
    assert last.count("conversation-row") == 1


# --- contact names -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_conversation_adds_its_number_to_contacts_and_shows_the_name(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)
    page = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    assert "Add to contacts" in page

    response = client.post(f"/inbox/c/{inbox.own.pk}/contact/", {"name": "  Jeanne Roy "})

    assert response.status_code == 302
    contact = Contact.objects.get(tenant=world.tenant_a, number=OWN)
    assert contact.name == "Jeanne Roy"
    page = client.get(f"/inbox/c/{inbox.own.pk}/").content.decode()
    assert "Jeanne Roy" in page and "Edit name" in page
    listing = client.get("/inbox/").content.decode()
    assert f'<a href="/inbox/c/{inbox.own.pk}/" class="contact-name">Jeanne Roy</a>' in listing

    client.post(f"/inbox/c/{inbox.own.pk}/contact/", {"name": "Jeanne Roy-Gagnon"})
    assert Contact.objects.get(pk=contact.pk).name == "Jeanne Roy-Gagnon"
    assert Contact.objects.filter(number=OWN).count() == 1


@pytest.mark.django_db
def test_a_contact_needs_a_name(world: World, inbox: Inbox, client_for: ClientFor) -> None:
    client = client_for(world.user_a)
    response = client.post(f"/inbox/c/{inbox.own.pk}/contact/", {"name": "  "}, follow=True)

    assert "Give the contact a name." in response.content.decode()
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_contacts_of_unseen_conversations_cannot_be_saved(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    assert (
        client_for(world.user_a)
        .post(f"/inbox/c/{inbox.other.pk}/contact/", {"name": "Mine"})
        .status_code
        == 404
    )
    for user in (world.admin_b, world.user_b):
        response = client_for(user).post(f"/inbox/c/{inbox.own.pk}/contact/", {"name": "Mine"})
        assert response.status_code == 404
    assert not Contact.objects.exists()


# --- the live list -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_live_list_gives_rows_names_unread_counts_and_new_inbound_messages(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)
    Contact.objects.create(tenant=world.tenant_a, name="Jeanne Roy", number=OWN)
    cursor = client.get("/inbox/conversations.json").json()["after"]

    newer = receive(inbox.configuration, did="+12125550103", remote=GROUP, text="x" * 150)
    data = client.get("/inbox/conversations.json", {"after": cursor}).json()

    rows = {row["id"]: row for row in data["conversations"]}
    assert set(rows) == {inbox.own.pk, inbox.grouped.pk}
    assert data["conversations"][0]["id"] == inbox.grouped.pk
    assert rows[inbox.grouped.pk]["unread"] == 2
    assert rows[inbox.own.pk]["name"] == "Jeanne Roy"
    assert [m["id"] for m in data["inbound"]] == [newer.pk]
    assert data["inbound"][0]["text"] == "x" * 100
    assert data["inbound"][0]["sender"] == GROUP
    assert data["after"] == newer.pk


@pytest.mark.django_db
def test_the_live_list_answers_304_while_nothing_changed(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)
    first = client.get("/inbox/conversations.json")
    etag = first["ETag"]

    same = client.get("/inbox/conversations.json", HTTP_IF_NONE_MATCH=etag)
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="New")
    changed = client.get("/inbox/conversations.json", HTTP_IF_NONE_MATCH=etag)

    assert same.status_code == 304
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.django_db
def test_the_live_list_never_shows_another_extensions_or_tenants_conversations(
    world: World, inbox: Inbox, client_for: ClientFor
) -> None:
    mine = client_for(world.user_a).get("/inbox/conversations.json").json()
    assert inbox.other.pk not in {row["id"] for row in mine["conversations"]}
    assert OTHER not in {message["sender"] for message in mine["inbound"]}

    for user in (world.admin_b, world.user_b):
        client = client_for(user)
        data = client.get("/inbox/conversations.json").json()
        assert data["conversations"] == [] and data["inbound"] == []
        assert client.get(f"/inbox/c/{inbox.own.pk}/messages.json").status_code == 404


# --- pictures sent as MMS ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reply_with_pictures_is_one_mms_stored_privately(
    world: World, mms: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    client = client_for(world.user_a)
    response = client.post(
        f"/inbox/c/{mms.own.pk}/reply/",
        {"body": "Here it is", "attachments": [png(), SimpleUploadedFile("a.gif", GIF)]},
    )

    assert response.status_code == 302
    message = Message.objects.get(direction=Direction.OUT)
    assert (message.kind, message.body, message.media_urls) == (Kind.MMS, "Here it is", [])
    media = list(message.media.order_by("id"))
    assert [(m.content_type, m.status, m.url) for m in media] == [
        ("image/png", MediaStatus.STORED, ""),
        ("image/gif", MediaStatus.STORED, ""),
    ]
    stored = Path(media[0].file.path)
    assert stored.read_bytes() == PNG
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert not stored.is_relative_to(Path(settings.STATIC_ROOT).resolve())
    # Served to those who see the conversation, and to nobody else.
    served = client.get(f"/inbox/media/{media[0].pk}/")
    assert served.status_code == 200 and b"".join(served.streaming_content) == PNG
    for user in (world.admin_b, world.user_b):
        assert client_for(user).get(f"/inbox/media/{media[0].pk}/").status_code == 404
    page = client.get(f"/inbox/c/{mms.own.pk}/").content.decode()
    assert f'<img src="/inbox/media/{media[0].pk}/"' in page


@pytest.mark.django_db
def test_the_worker_sends_the_pictures_to_voipms_as_base64_media(
    world: World,
    mms: Inbox,
    client_for: ClientFor,
    no_tasks: TaskRecorder,
    voipms: FakeVoipms,
    fresh_limits: None,
) -> None:
    settings.VOIPMS_API_URL = API_URL
    voipms.answer("sendMMS", {"status": "success", "mms": 10456720})
    client_for(world.user_a).post(
        f"/inbox/c/{mms.own.pk}/reply/", {"body": "Menu", "attachments": [png("menu.png")]}
    )
    message = Message.objects.get(direction=Direction.OUT)

    message_deliver(message_id=message.pk)

    (call,) = voipms.sends()
    assert call["method"] == "sendMMS"
    assert call["message"] == "Menu"
    assert call["media1"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "media2" not in call
    message.refresh_from_db()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, 10456720)


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_records_the_picture_of_an_mms_sent_from_compose(
    world: World,
    client_for: ClientFor,
    live_server: Any,
    settings: Any,
    fresh_limits: None,
    no_tasks: TaskRecorder,
) -> None:
    settings.VOIPMS_API_URL = f"{live_server.url}/sandbox/voipms/api/v1/rest.php"
    configuration = world.objects_a[SmsConfiguration]
    sms_configuration_update(configuration=configuration, actor=None, channel="mms")
    sandbox_account_ensure(
        username=configuration.username, api_password=FACTORY_API_PASSWORD, dids=["+12125550104"]
    )
    response = client_for(world.admin_a).post(
        "/inbox/compose/",
        {"from": "+12125550104", "to": "514 555 0123", "body": "", "attachments": [png()]},
    )
    assert response.status_code == 302, response.content.decode()
    message = Message.objects.get(direction=Direction.OUT)
    assert message.kind == Kind.MMS and message.configuration_id == configuration.pk

    message_deliver(message_id=message.pk)

    (sent,) = sandbox_outbox(contact="+15145550123")
    assert sent.media == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.provider_id == sent.provider_id


BAD_UPLOADS = {
    "not a picture": (
        [SimpleUploadedFile("notes.png", b"just some text")],
        "not a JPEG, PNG or GIF",
    ),
    "too large": ([png("big.png", PNG + b"\0" * 1_200_000)], "larger than 1.2 MB"),
    "too many": ([png(f"{n}.png") for n in range(4)], "at most 3 pictures"),
    "empty": ([SimpleUploadedFile("empty.png", b"")], "empty.png is empty"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_pictures_are_refused_with_a_clear_error_and_nothing_queued(
    world: World, mms: Inbox, client_for: ClientFor, no_tasks: TaskRecorder, case: str
) -> None:
    files, error = BAD_UPLOADS[case]
    client = client_for(world.user_a)

    response = client.post(
        f"/inbox/c/{mms.own.pk}/reply/", {"body": "Look", "attachments": files}, follow=True
    )

    assert error in response.content.decode()
    assert not Message.objects.filter(direction=Direction.OUT).exists()
    assert not MessageMedia.objects.filter(message__direction=Direction.OUT).exists()


@pytest.mark.django_db
def test_compose_shows_the_picture_error_next_to_the_field(
    world: World, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    sms_configuration_update(
        configuration=world.objects_a[SmsConfiguration], actor=None, channel="mms"
    )
    response = client_for(world.admin_a).post(
        "/inbox/compose/",
        {
            "from": "+12125550104",
            "to": "514 555 0123",
            "body": "Hi",
            "media_urls": ["https://example.com/a.png"],
            "attachments": [png(f"{n}.png") for n in range(3)],
        },
    )

    assert response.status_code == 400
    assert 'data-testid="attachments-error"' in response.content.decode()
    assert "at most 3 media, links and pictures together" in response.content.decode()
    assert not Message.objects.exists() or not Message.objects.filter(direction="out").exists()


@pytest.mark.django_db
def test_pictures_are_refused_where_the_configuration_sends_sms_only(
    world: World, inbox: Inbox, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    response = client_for(world.user_a).post(
        f"/inbox/c/{inbox.own.pk}/reply/", {"body": "Look", "attachments": [png()]}, follow=True
    )

    assert "sends SMS only" in response.content.decode()
    assert not Message.objects.filter(direction=Direction.OUT).exists()
