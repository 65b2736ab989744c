"""Inbound rules in the tenant site."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from core.admin import cut
from sms.admin.common import ChannelsRequiredMixin, ServiceSavedAdmin, office_hours_notice
from sms.inbound.rules import (
    PERIODS,
    RULE_FIELDS,
    inbound_rule_delete,
    inbound_rule_save,
    inbound_rule_secret_reveal,
    inbound_rule_secret_rotate,
)
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


def has_http_destination(rule: InboundRule) -> bool:
    """Return whether one period of the rule POSTs messages to a URL (and so signs them)."""
    return any(getattr(rule, f"{prefix}_action") == Action.HTTP for prefix, _label in PERIODS)


class InboundRuleAdmin(ChannelsRequiredMixin, ServiceSavedAdmin):
    service_fields = RULE_FIELDS
    change_form_template = "admin/sms/inboundrule/change_form.html"
    list_display = [
        "name",
        "did_range",
        "caller_mask",
        "priority",
        "enabled",
        "destinations",
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

    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<int:object_id>/signing-secret/",
                self.admin_site.admin_view(require_POST(self.secret_reveal_view)),
                name=f"{name}_secret_reveal",
            ),
            path(
                "<int:object_id>/signing-secret/rotate/",
                self.admin_site.admin_view(require_POST(self.secret_rotate_view)),
                name=f"{name}_secret_rotate",
            ),
            *super().get_urls(),
        ]

    def _rule_for_secret(self, request: HttpRequest, object_id: int) -> InboundRule:
        rule = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_change_permission(request, rule):
            raise PermissionDenied
        return rule

    def _no_http_destination(self) -> HttpResponse:
        return JsonResponse(
            {"detail": _("This rule has no HTTP POST destination: nothing is signed.")},
            status=400,
        )

    def secret_reveal_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Return the rule's signing secret (POST, so that it is never cached or prefetched)."""
        rule = self._rule_for_secret(request, object_id)
        if not has_http_destination(rule):
            return self._no_http_destination()
        secret = inbound_rule_secret_reveal(rule=rule, actor=request.user)
        return JsonResponse({"secret": secret}, headers={"Cache-Control": "no-store"})

    def secret_rotate_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Replace the rule's signing secret and return the new one."""
        rule = self._rule_for_secret(request, object_id)
        if not has_http_destination(rule):
            return self._no_http_destination()
        secret = inbound_rule_secret_rotate(rule=rule, actor=request.user)
        return JsonResponse(
            {
                "secret": secret,
                "message": _("A new secret signs this rule's requests from now on."),
            },
            headers={"Cache-Control": "no-store"},
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        context = {**office_hours_notice(request), **(extra_context or {})}
        return super().add_view(request, form_url, context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        context = {**office_hours_notice(request), **(extra_context or {})}
        rule = (
            self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        )
        if rule is not None and has_http_destination(rule):
            name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
            context["signing_secret"] = {
                "id": "rule-signing-secret",
                "title": _("Signing secret"),
                "description": _(
                    "Every HTTP POST destination of this rule is signed with this secret. Give "
                    "it to the receiver so that it can check each request came from this portal."
                ),
                "reveal_url": reverse(f"{name}_secret_reveal", args=[rule.pk]),
                "rotate_url": reverse(f"{name}_secret_rotate", args=[rule.pk]),
            }
        return super().change_view(request, object_id, form_url, context)

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

    @admin.display(description=_("Destinations"))
    def destinations(self, obj: InboundRule) -> str:
        # One column for the three periods: three columns of names do not fit the screen.
        return format_html_join(
            "",
            '<span class="destination">{}: {}</span>',
            ((label, cut(destination_summary(obj, prefix), 50)) for prefix, label in PERIODS),
        )

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return inbound_rule_save(tenant=request.tenant, actor=request.user, rule=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        inbound_rule_delete(rule=obj, actor=request.user)
