"""Saved reply templates: texts a tenant's users start a message from in the compose box."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.models import ReplyTemplate
from tenants.models import Tenant, User
from tenants.services import audit_record

REPLY_TEMPLATE_FIELDS = ("name", "body")


@transaction.atomic
def reply_template_save(
    *, tenant: Tenant, actor: User | None, template: ReplyTemplate | None = None, **fields: Any
) -> ReplyTemplate:
    """Create or change a reply template of the tenant; names are unique per tenant."""
    unknown = set(fields) - set(REPLY_TEMPLATE_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = template is None
    template = template or ReplyTemplate(tenant=tenant)
    for name, value in fields.items():
        setattr(template, name, value)
    if not template.name.strip():
        raise ApplicationError(_("Give the template a name."), code="name_required", field="name")
    if not template.body.strip():
        raise ApplicationError(_("Write the template's text."), code="body_required", field="body")
    if len(template.body) > 1600:
        raise ApplicationError(
            _("A template holds at most 1600 characters."), code="too_long", field="body"
        )
    taken = ReplyTemplate.objects.for_tenant(tenant).filter(name=template.name)
    if template.pk is not None:
        taken = taken.exclude(pk=template.pk)
    if taken.exists():
        raise ApplicationError(
            _("A template with this name exists already."), code="name_taken", field="name"
        )
    template.save()
    audit_record(
        actor=actor, action="created" if created else "changed", tenant=tenant, obj=template
    )
    return template


@transaction.atomic
def reply_template_delete(*, template: ReplyTemplate, actor: User | None) -> None:
    """Delete a reply template."""
    audit_record(actor=actor, action="deleted", tenant=template.tenant, obj=template)
    template.delete()


def reply_templates_for(*, tenant: Tenant) -> list[ReplyTemplate]:
    """Return the tenant's templates by name (at most 200, for the compose box)."""
    return list(ReplyTemplate.objects.for_tenant(tenant).order_by("name")[:200])
