"""The system site's message log and webhook-delivery log: every tenant's rows, read only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin import CheckedChangeListMixin, ReadOnlyAdminMixin, cut
from core.clock import time_display
from sms.admin.messages import (
    ContactNamesMixin,
    DeliveryAttemptInline,
    DeliveryMessagesMixin,
    DestinationAttemptInline,
    MessageAdmin,
    MessageDisplayMixin,
    WebhookDeliveryAdmin,
)
from sms.models import Direction, Message, WebhookDelivery

TEXT_SHOWN = 40


class _ReadOnlySystemLog(ReadOnlyAdminMixin, CheckedChangeListMixin, admin.ModelAdmin):
    """A log the system administrator reads and searches, but never writes."""

    list_per_page = 50
    show_full_result_count = False


class SystemMessageAdmin(ContactNamesMixin, MessageDisplayMixin, _ReadOnlySystemLog):
    list_display = ["time", "tenant", "numbers", "status", "short_text", "short_outcome"]
    list_filter = ["tenant", "direction", "status", "kind", "created_at"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    search_fields = ["did", "remote", "body"]
    search_help_text = _("Search the DID, the contact's number or the text.")
    inlines = [DeliveryAttemptInline, DestinationAttemptInline]
    fields = ["tenant", *MessageAdmin.fields]
    readonly_fields = fields

    @admin.display(description=_("DID and contact"))
    def numbers(self, obj: Message) -> str:
        arrow = "←" if obj.direction == Direction.IN else "→"
        return format_html(
            '{}<br><span class="log-number" title="{}">{} {}</span>',
            obj.did,
            obj.get_direction_display(),
            arrow,
            obj.remote,
        )

    @admin.display(description=_("Text"))
    def short_text(self, obj: Message) -> str:
        text = f"[{len(obj.media_urls)} media] {obj.body}" if obj.media_urls else obj.body
        return cut(text, TEXT_SHOWN)

    @admin.display(description=_("Routed to / error"))
    def short_outcome(self, obj: Message) -> str:
        return cut(obj.routed_to if obj.direction == Direction.IN else obj.error_message, 30)


class SystemWebhookDeliveryAdmin(DeliveryMessagesMixin, _ReadOnlySystemLog):
    list_display = [
        "time",
        "tenant",
        "configuration",
        "method",
        "status",
        "short_reason",
        "source_address",
    ]
    list_filter = ["tenant", "status", "method", "received_at"]
    list_select_related = ["tenant", "configuration"]
    date_hierarchy = "received_at"
    search_fields = ["reason", "query", "configuration__name"]
    search_help_text = _("Search the reason, the query string or the configuration's name.")
    # The tenant site's page, with the tenant after the time.
    fields = [WebhookDeliveryAdmin.fields[0], "tenant", *WebhookDeliveryAdmin.fields[1:]]
    readonly_fields = fields

    @admin.display(description=_("Received at"), ordering="received_at")
    def time(self, obj: WebhookDelivery) -> str:
        return time_display(obj.received_at)

    @admin.display(description=_("From"), ordering="remote_addr")
    def source_address(self, obj: WebhookDelivery) -> str:
        return obj.remote_addr or "—"

    @admin.display(description=_("Reason"))
    def short_reason(self, obj: WebhookDelivery) -> str:
        return cut(obj.reason, TEXT_SHOWN)
