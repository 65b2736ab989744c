"""Ring groups, office hours and holidays in the tenant site."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import (
    TenantScopedInline,
)
from sms.admin.common import ServiceSavedAdmin
from tenants.models import RingGroup, RingGroupMember
from tenants.services_groups import (
    HOLIDAY_FIELDS,
    OFFICE_HOURS_FIELDS,
    RING_GROUP_FIELDS,
    holiday_delete,
    holiday_save,
    office_hours_delete,
    office_hours_save,
    ring_group_delete,
    ring_group_member_delete,
    ring_group_member_save,
    ring_group_save,
)

# --- ring groups, office hours, holidays -------------------------------------------------------


class RingGroupMemberInline(TenantScopedInline):
    model = RingGroupMember
    fk_name = "ring_group"
    fields = ["extension", "enabled", "position"]
    extra = 1
    verbose_name = _("member")


class RingGroupAdmin(ServiceSavedAdmin):
    service_fields = RING_GROUP_FIELDS
    fields = ["name", "number"]
    inlines = [RingGroupMemberInline]
    list_display = ["name", "number", "member_list", "last_assigned"]
    list_select_related = ["last_assigned"]
    search_fields = ["name", "number"]
    list_per_page = 15

    def get_queryset(self, request: HttpRequest) -> Any:
        members = RingGroupMember.objects.select_related("extension").order_by("position", "id")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(models.Prefetch("memberships", queryset=members))
        )

    @admin.display(description=_("Members"))
    def member_list(self, obj: RingGroup) -> str:
        return ", ".join(
            m.extension.number + ("" if m.enabled else " (off)") for m in obj.memberships.all()
        )

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return ring_group_save(tenant=request.tenant, actor=request.user, group=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        ring_group_delete(group=obj, actor=request.user)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        members = formset.save(commit=False)
        for member in formset.deleted_objects:
            ring_group_member_delete(member=member, actor=request.user)
        for member in members:
            ring_group_member_save(
                group=form.instance,
                extension=member.extension,
                enabled=member.enabled,
                position=member.position,
                member=None if member._state.adding else member,
                actor=request.user,
            )


def _zone_note(request: HttpRequest) -> str:
    tenant = getattr(request, "tenant", None)
    zone = tenant.timezone if tenant is not None else "UTC"
    return _("times in %(zone)s") % {"zone": zone}


class OfficeHoursAdmin(ServiceSavedAdmin):
    service_fields = OFFICE_HOURS_FIELDS
    fields = ["weekday", "start", "end"]
    list_display = ["weekday", "start", "end"]
    list_filter = ["weekday"]
    list_per_page = 50

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = _("Office hours (%(zone_note)s)") % {"zone_note": _zone_note(request)}
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        for name in ("start", "end"):
            if name in form.base_fields:
                form.base_fields[name].help_text = _("HH:MM, %(zone_note)s.") % {
                    "zone_note": _zone_note(request)
                }
        return form

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return office_hours_save(tenant=request.tenant, actor=request.user, hours=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        office_hours_delete(hours=obj, actor=request.user)


class HolidayAdmin(ServiceSavedAdmin):
    service_fields = HOLIDAY_FIELDS
    fields = ["name", "start_date", "end_date", "every_year"]
    list_display = ["name", "start_date", "end_date", "every_year"]
    list_filter = ["every_year"]
    search_fields = ["name"]
    date_hierarchy = "start_date"
    list_per_page = 50

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return holiday_save(tenant=request.tenant, actor=request.user, holiday=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        holiday_delete(holiday=obj, actor=request.user)
