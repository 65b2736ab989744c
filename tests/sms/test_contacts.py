"""Contacts: one per number in a tenant, through the API (every user of the tenant) and the
tenant site, never across tenants; erasing a number takes its contact too."""

from __future__ import annotations

from typing import Any

import pytest

from sms.models import Contact
from sms.retention import remote_number_erase
from tenants.models import AuditEvent
from tests.factories import World

CONTACTS = "/api/v1/contacts/"


@pytest.fixture
def contact_a(world: World) -> Contact:
    from sms.contacts import contact_save

    return contact_save(
        tenant=world.tenant_a, actor=None, name="Dana Ortiz", number="312-555-0142", notes="Plumber"
    )


@pytest.mark.django_db
def test_a_user_of_the_tenant_keeps_contacts_with_numbers_stored_as_e164(
    world: World, client_for: Any
) -> None:
    client = client_for(world.user_a)  # an extension user, not an administrator

    created = client.post(
        CONTACTS, {"name": "Lee Park", "number": "(212) 555-0188"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["number"] == "+12125550188"
    pk = created.json()["id"]
    changed = client.patch(f"{CONTACTS}{pk}/", {"notes": "Prefers texts"}, "application/json")
    assert changed.status_code == 200
    assert Contact.objects.get(pk=pk).notes == "Prefers texts"
    assert AuditEvent.objects.filter(action="created", object_type__icontains="contact").exists()
    assert client.delete(f"{CONTACTS}{pk}/").status_code == 204
    assert not Contact.objects.filter(pk=pk).exists()


@pytest.mark.django_db
def test_bad_input_is_a_400_naming_the_field(
    world: World, client_for: Any, contact_a: Contact
) -> None:
    client = client_for(world.admin_a)
    for body, field in (
        ({"name": "Dup", "number": "+13125550142"}, "number"),
        ({"name": "Bad", "number": "not a number"}, "number"),
        ({"name": "", "number": "+13125550143"}, "name"),
        ({"number": "+13125550144"}, "name"),
    ):
        response = client.post(CONTACTS, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert field in str(response.json()), (body, response.json())


@pytest.mark.django_db
def test_another_tenant_never_sees_or_changes_a_contact(
    world: World, client_for: Any, contact_a: Contact
) -> None:
    for user in (world.admin_b, world.user_b):
        client = client_for(user)
        listed = client.get(CONTACTS).json()["results"]
        assert contact_a.pk not in {row["id"] for row in listed}
        assert client.get(f"{CONTACTS}{contact_a.pk}/").status_code == 404
        changed = client.patch(f"{CONTACTS}{contact_a.pk}/", {"name": "x"}, "application/json")
        assert changed.status_code == 404
        assert client.delete(f"{CONTACTS}{contact_a.pk}/").status_code == 404
    contact_a.refresh_from_db()
    assert contact_a.name == "Dana Ortiz"
    # The same number may be a contact of the other tenant too.
    other = client_for(world.admin_b).post(
        CONTACTS, {"name": "Dana at B", "number": "+13125550142"}, content_type="application/json"
    )
    assert other.status_code == 201


@pytest.mark.django_db
def test_the_tenant_site_lists_only_the_tenants_contacts(
    world: World, client_for: Any, contact_a: Contact
) -> None:
    page = client_for(world.admin_a).get("/tenant/sms/contact/")
    assert page.status_code == 200
    assert "Dana Ortiz" in page.content.decode()
    other = client_for(world.admin_b).get("/tenant/sms/contact/")
    assert "Dana Ortiz" not in other.content.decode()
    assert client_for(world.admin_b).get(
        f"/tenant/sms/contact/{contact_a.pk}/change/"
    ).status_code in (302, 404)


@pytest.mark.django_db
def test_erasing_a_number_erases_its_contact_in_that_tenant_only(
    world: World, contact_a: Contact
) -> None:
    from sms.contacts import contact_save

    kept = contact_save(tenant=world.tenant_b, actor=None, name="B's", number="+13125550142")
    remote_number_erase(tenant=world.tenant_a, remote="3125550142", actor=None)
    erased = AuditEvent.objects.get(action="remote_number_erased")
    assert erased.detail["contacts"] == 1
    assert not Contact.objects.filter(pk=contact_a.pk).exists()
    assert Contact.objects.filter(pk=kept.pk).exists()
