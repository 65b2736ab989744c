"""Ring groups, office hours and holidays: the tenant's schedule and shared inboxes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from tenants.models import Extension, Holiday, OfficeHours, RingGroup, RingGroupMember, Tenant, User
from tenants.services import audit_record

RING_GROUP_FIELDS = ("name", "number")
OFFICE_HOURS_FIELDS = ("weekday", "start", "end")
HOLIDAY_FIELDS = ("name", "start_date", "end_date", "every_year")


def _apply(obj: models.Model, allowed: tuple[str, ...], fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    for name, value in fields.items():
        setattr(obj, name, value)


def _full_clean(obj: models.Model) -> None:
    # Constraints are checked by the caller with a readable message; the rest by Django.
    try:
        obj.full_clean(exclude=["tenant"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise ApplicationError(messages[0], field=None if field == "__all__" else field) from error


def _record(*, actor: User | None, tenant: Tenant, obj: models.Model, created: bool) -> None:
    audit_record(actor=actor, action="created" if created else "changed", tenant=tenant, obj=obj)


@transaction.atomic
def ring_group_save(
    *, tenant: Tenant, actor: User | None, group: RingGroup | None = None, **fields: Any
) -> RingGroup:
    """Create or change a ring group; its name is unique in the tenant."""
    created = group is None
    group = group or RingGroup(tenant=tenant)
    _apply(group, RING_GROUP_FIELDS, fields)
    _full_clean(group)
    if RingGroup.objects.for_tenant(tenant).filter(name=group.name).exclude(pk=group.pk).exists():
        raise ApplicationError(
            _("A ring group named %(name)r exists already.") % {"name": group.name}, field="name"
        )
    group.save()
    _record(actor=actor, tenant=tenant, obj=group, created=created)
    return group


@transaction.atomic
def ring_group_delete(*, group: RingGroup, actor: User | None) -> None:
    """Delete a ring group; inbound rules that use it protect it."""
    audit_record(actor=actor, action="deleted", tenant=group.tenant, obj=group)
    group.delete()


@transaction.atomic
def ring_group_member_save(
    *,
    group: RingGroup,
    extension: Extension,
    enabled: bool = True,
    position: int = 0,
    member: RingGroupMember | None = None,
    actor: User | None = None,
) -> RingGroupMember:
    """Add an extension of the group's tenant to a ring group, or change its membership."""
    if extension.tenant_id != group.tenant_id:
        raise ApplicationError(_("Choose an extension of this tenant."), field="extension")
    clash = (
        RingGroupMember.objects.for_tenant(group.tenant)
        .filter(ring_group=group, extension=extension)
        .exclude(pk=member.pk if member else None)
    )
    if clash.exists():
        raise ApplicationError(
            _("Extension %(number)s is in this ring group already.") % {"number": extension.number},
            field="extension",
        )
    created = member is None
    member = member or RingGroupMember(tenant_id=group.tenant_id, ring_group=group)
    member.tenant_id = group.tenant_id
    member.ring_group = group
    member.extension = extension
    member.enabled = enabled
    member.position = position
    _full_clean(member)
    member.save()
    _record(actor=actor, tenant=group.tenant, obj=member, created=created)
    return member


@transaction.atomic
def ring_group_member_delete(*, member: RingGroupMember, actor: User | None) -> None:
    """Take an extension out of a ring group."""
    audit_record(actor=actor, action="deleted", tenant=member.tenant, obj=member)
    member.delete()


@transaction.atomic
def office_hours_save(
    *, tenant: Tenant, actor: User | None, hours: OfficeHours | None = None, **fields: Any
) -> OfficeHours:
    """Create or change one weekly range of the tenant's office hours."""
    created = hours is None
    hours = hours or OfficeHours(tenant=tenant)
    _apply(hours, OFFICE_HOURS_FIELDS, fields)
    _full_clean(hours)
    if hours.start >= hours.end:
        raise ApplicationError(_("The end must be after the start."), field="end")
    overlapping = (
        OfficeHours.objects.for_tenant(tenant)
        .filter(weekday=hours.weekday, start__lt=hours.end, end__gt=hours.start)
        .exclude(pk=hours.pk)
        .first()
    )
    if overlapping is not None:
        raise ApplicationError(
            _("This range overlaps %(overlapping)s.") % {"overlapping": overlapping}, field="start"
        )
    hours.save()
    _record(actor=actor, tenant=tenant, obj=hours, created=created)
    return hours


@transaction.atomic
def office_hours_delete(*, hours: OfficeHours, actor: User | None) -> None:
    """Delete one range of office hours."""
    audit_record(actor=actor, action="deleted", tenant=hours.tenant, obj=hours)
    hours.delete()


@transaction.atomic
def holiday_save(
    *, tenant: Tenant, actor: User | None, holiday: Holiday | None = None, **fields: Any
) -> Holiday:
    """Create or change a holiday of the tenant."""
    created = holiday is None
    holiday = holiday or Holiday(tenant=tenant)
    _apply(holiday, HOLIDAY_FIELDS, fields)
    _full_clean(holiday)
    if holiday.start_date > holiday.end_date:
        raise ApplicationError(_("The last day cannot be before the first."), field="end_date")
    holiday.save()
    _record(actor=actor, tenant=tenant, obj=holiday, created=created)
    return holiday


@transaction.atomic
def holiday_delete(*, holiday: Holiday, actor: User | None) -> None:
    """Delete a holiday."""
    audit_record(actor=actor, action="deleted", tenant=holiday.tenant, obj=holiday)
    holiday.delete()


@transaction.atomic
def ring_group_members_set(
    *, group: RingGroup, members: list[dict[str, Any]], actor: User | None
) -> list[RingGroupMember]:
    """Make the group's members exactly these ({extension, enabled?, position?}), in order."""
    seen: set[int] = set()
    for item in members:
        extension = item["extension"]
        if extension.pk in seen:
            raise ApplicationError(
                _("Extension %(number)s is listed twice.") % {"number": extension.number},
                field="members",
            )
        seen.add(extension.pk)
    existing = {
        m.extension_id: m
        for m in RingGroupMember.objects.for_tenant(group.tenant).filter(ring_group=group)
    }
    for extension_id, member in existing.items():
        if extension_id not in seen:
            ring_group_member_delete(member=member, actor=actor)
    return [
        ring_group_member_save(
            group=group,
            extension=item["extension"],
            enabled=item.get("enabled", True),
            position=item.get("position", index),
            member=existing.get(item["extension"].pk),
            actor=actor,
        )
        for index, item in enumerate(members)
    ]
