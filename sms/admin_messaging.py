"""Messaging pages of the tenant site: logs, inbound rules, ring groups, hours, opt-outs."""

from __future__ import annotations

from django.contrib import admin

from portal.admin_sites import ReadOnlyScopedAdmin, tenant_site
from sms.models import WebhookDelivery


@admin.register(WebhookDelivery, site=tenant_site)
class WebhookDeliveryAdmin(ReadOnlyScopedAdmin):
    list_display = ["received_at", "configuration", "method", "status", "reason", "remote_addr"]
    list_filter = ["status", "method"]
    list_select_related = ["configuration"]
    date_hierarchy = "received_at"
    fields = [
        "received_at",
        "configuration",
        "method",
        "status",
        "reason",
        "remote_addr",
        "content_type",
        "query",
        "body_text",
        "headers",
        "processed_at",
        "attempts",
    ]
    readonly_fields = fields
