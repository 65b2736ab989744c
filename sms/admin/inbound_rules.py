"""Inbound rules in the tenant site."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from sms.admin.common import ChannelsRequiredMixin, ServiceSavedAdmin
from sms.inbound.rules import PERIODS, RULE_FIELDS, inbound_rule_delete, inbound_rule_save
from sms.models import (
    Action,
    InboundRule,
)
from trunks.models import Trunk

# --- inbound rules -----------------------------------------------------------------------------


def destination_summary(rule: InboundRule, prefix: str) -> str:
    """Describe where one period of a rule sends messages."""
    action = getattr(rule, f"{prefix}_action")
    label = Action(action).label if action in Action.values else action
    if action == Action.EXTENSION:
        extension = getattr(rule, f"{prefix}_extension")
        return f"{label}: {extension}" if extension else f"{label}: (none)"
    if action == Action.RING_GROUP:
        group = getattr(rule, f"{prefix}_ring_group")
        return f"{label}: {group}" if group else f"{label}: (none)"
    if action == Action.DROP:
        return label
    target = getattr(rule, f"{prefix}_target")
    if action == Action.AUTO_REPLY and len(target) > 40:
        target = target[:40] + "…"
    return f"{label}: {target}"


class InboundRuleAdmin(ChannelsRequiredMixin, ServiceSavedAdmin):
    service_fields = RULE_FIELDS
    list_display = [
        "name",
        "trunk",
        "did_range",
        "caller_mask",
        "priority",
        "enabled",
        "office_destination",
        "after_hours_destination",
        "holiday_destination",
    ]
    list_select_related = [
        "trunk",
        *(f"{prefix}_{kind}" for prefix, _ in PERIODS for kind in ("extension", "ring_group")),
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "did_range", "caller_mask"]
    list_per_page = 15

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        return {"trunk": Trunk.objects.available_to(request.tenant)}

    def _fields(self, form: Any) -> dict[str, Any]:
        fields = super()._fields(form)
        if fields.get("custom_hours") is None:
            # An emptied box means no own hours, not a malformed schedule.
            fields["custom_hours"] = []
        return fields

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        zone = request.tenant.timezone if request.tenant else "UTC"
        return (
            (
                None,
                {"fields": ("name", "trunk", "did_range", "caller_mask", "priority", "enabled")},
            ),
            (
                _("Schedule"),
                {
                    "fields": ("use_custom_hours", "custom_hours"),
                    "description": _(
                        "Times are in the tenant's time zone, %(zone)s. Without own hours "
                        "the rule follows the tenant's office hours; holidays come first."
                    )
                    % {"zone": zone},
                },
            ),
            *(
                (
                    label,
                    {
                        "fields": tuple(
                            f"{prefix}_{part}"
                            for part in ("action", "extension", "ring_group", "target")
                        )
                    },
                )
                for prefix, label in PERIODS
            ),
        )

    @admin.display(description=_("Office hours"))
    def office_destination(self, obj: InboundRule) -> str:
        return destination_summary(obj, "office")

    @admin.display(description=_("Outside office hours"))
    def after_hours_destination(self, obj: InboundRule) -> str:
        return destination_summary(obj, "after_hours")

    @admin.display(description=_("Holidays"))
    def holiday_destination(self, obj: InboundRule) -> str:
        return destination_summary(obj, "holiday")

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return inbound_rule_save(tenant=request.tenant, actor=request.user, rule=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        inbound_rule_delete(rule=obj, actor=request.user)
