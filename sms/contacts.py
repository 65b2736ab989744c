"""Contacts: the tenant's names and notes for outside numbers, one contact per number."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.models import Contact
from sms.retention import remote_number_normalize
from tenants.models import Tenant, User
from tenants.services import audit_record

CONTACT_FIELDS = ("name", "number", "notes")


@transaction.atomic
def contact_save(
    *, tenant: Tenant, actor: User | None, contact: Contact | None = None, **fields: Any
) -> Contact:
    """Create or change a contact of the tenant; its number is unique in the tenant."""
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = contact is None
    contact = contact or Contact(tenant=tenant)
    if "number" in fields:
        fields["number"] = remote_number_normalize(fields["number"], field="number")
    for name, value in fields.items():
        setattr(contact, name, value.strip() if isinstance(value, str) else value)
    if not contact.name:
        raise ApplicationError(_("Give the contact a name."), field="name")
    clash = Contact.objects.for_tenant(tenant).filter(number=contact.number)
    if clash.exclude(pk=contact.pk).exists():
        raise ApplicationError(
            _("%(number)s is a contact already (%(name)s).")
            % {"number": contact.number, "name": clash.get().name},
            field="number",
        )
    contact.save()
    audit_record(
        actor=actor,
        action="created" if created else "changed",
        tenant=tenant,
        obj=contact,
        detail={"fields": sorted(fields)},
    )
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, actor: User | None) -> None:
    """Delete a contact (its messages stay)."""
    audit_record(actor=actor, action="deleted", tenant=contact.tenant, obj=contact)
    contact.delete()
