"""Contacts on the tenant site: CSV import with a preview, CSV export, names in the message log."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sms.contacts import contact_save
from sms.models import (
    Contact,
    Conversation,
    Direction,
    Kind,
    Message,
    MessageStatus,
    OptOut,
    SmsConfiguration,
)
from tenants.models import AuditEvent
from tests.factories import World

CONTACTS = "/tenant/sms/contact/"
IMPORT = "/tenant/sms/contact/import/"
EXPORT = "/tenant/sms/contact/export/"
MESSAGES = "/tenant/sms/message/"

FILE = (
    "Name,Number,Notes\r\n"
    "Dana Ortiz,(312) 555-0142,Plumber\r\n"  # updates the existing contact
    "Lee Park,212.555.0188,\r\n"  # new
    ",3125550100,nameless\r\n"  # rejected: no name
    "Sam Roe,call me,\r\n"  # rejected: not a number
    "Lee Again,+1 212 555 0188,\r\n"  # rejected: the number is on line 3
    "Shorty,72975,short code\r\n"  # new, a short code
    "\r\n"  # blank lines are skipped
)


def upload(content: str | bytes, name: str = "contacts.csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


def csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def dana(world: World) -> Contact:
    return contact_save(
        tenant=world.tenant_a, actor=None, name="Dana O.", number="312-555-0142", notes="Old"
    )


@pytest.mark.django_db
def test_the_preview_saves_nothing_and_the_import_does_what_it_showed(
    world: World, client_for: Any, dana: Contact
) -> None:
    client = client_for(world.admin_a)
    assert 'href="/tenant/sms/contact/import/"' in client.get(CONTACTS).content.decode()
    preview = client.post(IMPORT, {"file": upload(FILE)})
    assert preview.status_code == 200
    result = preview.context["result"]
    assert [(r.line, r.outcome) for r in result.rows] == [
        (2, "updated"),
        (3, "created"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "rejected"),
        (7, "created"),
    ]
    reasons = [r.reason for r in result.rejected]
    assert reasons == [
        "The name is missing.",
        "“call me” is not a US or Canadian number or a short code.",
        "+12125550188 is on line 3 already.",
    ]
    page = preview.content.decode()
    assert "Preview: nothing is saved yet" in page and "+12125550188 is on line 3 already." in page
    assert Contact.objects.for_tenant(world.tenant_a).count() == 1
    dana.refresh_from_db()
    assert dana.name == "Dana O."

    done = client.post(IMPORT, {"confirm": "1", "content": preview.context["content"]})
    assert done.status_code == 200
    assert "2 created, 1 updated, 0 unchanged, 3 rejected" in done.content.decode()
    contacts = Contact.objects.for_tenant(world.tenant_a)
    assert sorted(contacts.values_list("number", "name", "notes")) == [
        ("+12125550188", "Lee Park", ""),
        ("+13125550142", "Dana Ortiz", "Plumber"),
        ("72975", "Shorty", "short code"),
    ]
    event = AuditEvent.objects.get(tenant=world.tenant_a, action="contacts imported")
    assert event.detail == {"created": 2, "updated": 1, "unchanged": 0, "rejected": 3}
    # The same file again changes nothing.
    again = client.post(IMPORT, {"file": upload(FILE)}).context["result"]
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 3)


@pytest.mark.django_db
def test_an_import_never_touches_another_tenants_contacts(
    world: World, client_for: Any, dana: Contact
) -> None:
    # Tenant B imports the number tenant A has: B gets a contact of its own, A's stays.
    client = client_for(world.admin_b)
    preview = client.post(IMPORT, {"file": upload("name,number\nBob's Dana,3125550142\n")})
    assert [r.outcome for r in preview.context["result"].rows] == ["created"]
    client.post(IMPORT, {"confirm": "1", "content": preview.context["content"]})
    dana.refresh_from_db()
    assert (dana.name, dana.tenant_id) == ("Dana O.", world.tenant_a.pk)
    theirs = Contact.objects.for_tenant(world.tenant_b).get(number="+13125550142")
    assert theirs.name == "Bob's Dana"
    assert Contact.objects.filter(number="+13125550142").count() == 2


@pytest.mark.django_db
def test_the_export_holds_only_the_tenants_contacts_and_reads_back(
    world: World, client_for: Any, dana: Contact
) -> None:
    contact_save(tenant=world.tenant_a, actor=None, name="=HYPERLINK(1)", number="2125550199")
    contact_save(tenant=world.tenant_b, actor=None, name="Bob Only", number="2125550177")
    response = client_for(world.admin_a).get(EXPORT)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    rows = csv_rows(response)
    assert rows == [
        ["name", "number", "notes"],
        ["'=HYPERLINK(1)", "+12125550199", ""],
        ["Dana O.", "+13125550142", "Old"],
    ]
    # Imported back into tenant B, the defused name comes back as it was.
    text = "\n".join(",".join(f'"{cell}"' for cell in row) for row in rows)
    preview = client_for(world.admin_b).post(IMPORT, {"file": upload(text)})
    assert [r.name for r in preview.context["result"].created] == ["=HYPERLINK(1)", "Dana O."]
    assert csv_rows(client_for(world.admin_b).get(EXPORT))[1:] == [["Bob Only", "+12125550177", ""]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"nom,telephone\nA,3125550100\n", "The first line must name the columns"),
        (b"", "The submitted file is empty."),
        ("name,number\nZoë,3125550100\n".encode("latin-1"), "is not UTF-8 text"),
        (b"name,number\n", "The file holds no contacts."),
        (b"name;number;notes\n", "The file holds no contacts."),
    ],
)
def test_a_file_that_cannot_be_imported_says_why(
    world: World, client_for: Any, content: bytes, problem: str
) -> None:
    response = client_for(world.admin_a).post(IMPORT, {"file": upload(content)})
    assert response.status_code == 200
    assert problem in " ".join(response.context["form"].errors["file"])
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_semicolon_files_from_european_spreadsheets_import(world: World, client_for: Any) -> None:
    preview = client_for(world.admin_a).post(
        IMPORT, {"file": upload("\ufeffName;Phone;Notes\nZoë Roy;514-555-0123;Montréal\n")}
    )
    (row,) = preview.context["result"].rows
    assert (row.outcome, row.name, row.number, row.notes) == (
        "created",
        "Zoë Roy",
        "+15145550123",
        "Montréal",
    )


@pytest.mark.django_db
def test_users_cannot_import_or_export(world: World, client_for: Any) -> None:
    client = client_for(world.user_a)
    assert client.get(EXPORT, follow=True).status_code == 403
    assert client.post(IMPORT, {"file": upload(FILE)}, follow=True).status_code == 403
    assert not Contact.objects.exists()


def _message(world: World, tenant: Any, remote: str, body: str) -> Message:
    configuration = SmsConfiguration.objects.for_tenant(tenant).first()
    return Message.objects.create(
        tenant=tenant,
        configuration=configuration,
        direction=Direction.IN,
        kind=Kind.SMS,
        status=MessageStatus.ROUTED,
        did="+12125550100",
        remote=remote,
        body=body,
    )


@pytest.mark.django_db
def test_the_message_log_shows_the_tenants_contact_names(
    world: World, client_for: Any, dana: Contact
) -> None:
    contact_save(tenant=world.tenant_b, actor=None, name="B's secret name", number="3125550142")
    message = _message(world, world.tenant_a, "+13125550142", "Leak under the sink")
    _message(world, world.tenant_a, "+13125550999", "Unknown sender")
    Conversation.objects.create(
        tenant=world.tenant_a,
        did="+12125550100",
        remote="+13125550142",
        configuration=message.configuration,
    )
    OptOut.objects.create(tenant=world.tenant_a, did="+12125550100", remote="+13125550142")
    client = client_for(world.admin_a)
    listing = client.get(MESSAGES).content.decode()
    assert '<span class="contact-name">Dana O.</span>' in listing
    assert "B&#x27;s secret name" not in listing and "B's secret name" not in listing
    detail = client.get(f"{MESSAGES}{message.pk}/change/").content.decode()
    assert "Dana O." in detail and "+13125550142" in detail
    for url in ("/tenant/sms/conversation/", "/tenant/sms/optout/"):
        assert '<span class="contact-name">Dana O.</span>' in client.get(url).content.decode()
    # Searching the log by the contact's name finds the number's messages.
    found = client.get(MESSAGES, {"q": "dana"})
    assert [m.pk for m in found.context["cl"].result_list] == [message.pk]
    export = csv_rows(client.get("/tenant/sms/message/export/"))
    assert export[0][-1] == "contact"
    assert sorted(row[-1] for row in export[1:]) == ["", "Dana O."]
    # Tenant B's log names B's own contact, never A's.
    _message(world, world.tenant_b, "+13125550142", "Hello B")
    other = client_for(world.admin_b).get(MESSAGES).content.decode()
    assert "B&#x27;s secret name" in other and "Dana O." not in other
