"""Message log, conversations, opt-outs and webhook deliveries in the tenant site."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin import (
    ReadOnlyScopedAdmin,
    TenantScopedAdmin,
    TenantScopedInline,
    TenantTimeMixin,
    cut,
)
from core.clock import time_display, time_export
from sms.admin.common import ChannelsRequiredMixin
from sms.contacts import contact_name_of, contact_numbers_named
from sms.conversations import opt_out_delete
from sms.inbound.process import webhook_deliveries_reprocess
from sms.models import (
    Action,
    Conversation,
    DeliveryAttempt,
    DestinationAttempt,
    Direction,
    Message,
    MessageMedia,
    WebhookDelivery,
)
from sms.story import events_text, message_events, message_routed_to, message_unrouted_reason

# --- contact names -------------------------------------------------------------------------------


class ContactNamesMixin:
    """Show the tenant's contact name with each outside number; a search finds names too."""

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).annotate(contact_name=contact_name_of("remote"))

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term and "\x00" not in term and request.tenant is not None:
            named = contact_numbers_named(tenant=request.tenant, text=term)
            found = found | queryset.filter(remote__in=named)
        return found, may_have_duplicates

    @admin.display(description=_("Outside number"), ordering="remote")
    def remote_with_name(self, obj: Any) -> str:
        name = getattr(obj, "contact_name", None)
        if not name:
            return obj.remote
        return format_html(
            '<span class="contact-name">{}</span> <span class="contact-number">{}</span>',
            name,
            obj.remote,
        )


# --- opt-outs ------------------------------------------------------------------------------------


class OptOutAdmin(ContactNamesMixin, ChannelsRequiredMixin, TenantTimeMixin, TenantScopedAdmin):
    list_display = ["remote_with_name", "did", "keyword", "created_at"]
    search_fields = ["remote", "did"]
    fields = ["remote_with_name", "did", "keyword", "created_at"]
    readonly_fields = fields
    date_hierarchy = "created_at"
    actions = ["opt_back_in"]
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Opt back in (allow messages again)"), permissions=["delete"])
    def opt_back_in(self, request: HttpRequest, queryset: Any) -> None:
        count = 0
        for opt_out in queryset:
            opt_out_delete(opt_out=opt_out, actor=request.user)
            count += 1
        messages.success(request, _("%(count)s contact(s) opted back in.") % {"count": count})

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        opt_out_delete(opt_out=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for opt_out in queryset:
            opt_out_delete(opt_out=opt_out, actor=request.user)


# --- messages log ------------------------------------------------------------------------------


class DidListFilter(admin.SimpleListFilter):
    """Filter by one of the tenant's DIDs that has a conversation."""

    title = _("DID")
    parameter_name = "did"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Conversations are few per DID and indexed on (tenant, did, remote): one cheap query.
        dids = (
            Conversation.objects.for_tenant(request.tenant)
            .order_by("did")
            .values_list("did", flat=True)
            .distinct()[:200]
        )
        return [(did, did) for did in dids]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(did=value) if value else queryset


class _ReadOnlyInline(TenantScopedInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryAttemptInline(_ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["at", "outcome", "code", "detail", "elapsed_ms"]
    readonly_fields = fields
    verbose_name_plural = _("calls to VoIP.ms")


class DestinationAttemptInline(_ReadOnlyInline):
    model = DestinationAttempt
    fields = ["at", "action", "target", "attempt", "ok", "status_code", "error"]
    readonly_fields = fields
    verbose_name_plural = _("hand-overs to e-mail or HTTP")


class MessageMediaInline(_ReadOnlyInline):
    model = MessageMedia
    fields = ["preview", "status", "content_type", "size", "error"]
    readonly_fields = fields

    @admin.display(description=_("File"))
    def preview(self, obj: MessageMedia) -> str:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            reverse("inbox_media", args=[obj.pk]),
            obj.url.rsplit("/", 1)[-1][:60] or obj.url[:60],
        )


_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^\+?\d+$")


def csv_cell(value: Any) -> str:
    """Return the value as CSV text that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if _FORMULA.match(text) and not _NUMBER.match(text):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write() returns what it is given, for streaming csv rows."""

    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "id",
    "time",
    "direction",
    "kind",
    "status",
    "did",
    "remote",
    "text",
    "media",
    "extension",
    "rule",
    "routed to",
    "route type",
    "route id",
    "route name",
    "unrouted reason",
    "error code",
    "error",
    "provider id",
    "segments",
    "sent at",
    "received at",
    "send at",
    "events",
    "contact",
]


class MessageDisplayMixin:
    """How a message reads in a list and on its page, on the tenant site and the system site."""

    @admin.display(description="Destination")
    def destination(self, obj: Message) -> str:
        routed = message_routed_to(obj)
        if routed is None:
            return "—"
        label = dict(Action.choices).get(routed["type"], routed["type"])
        return f"{label}: {routed['name']}"

    @admin.display(description="Why not routed")
    def unrouted_reason(self, obj: Message) -> str:
        return message_unrouted_reason(obj) or "—"

    @admin.display(description="Story")
    def story(self, obj: Message) -> str:
        events = message_events(obj)
        if not events:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    time_display(e.at),
                    e.type,
                    e.status,
                    e.code,
                    e.detail,
                )
                for e in events
            ),
        )
        return format_html(
            '<table class="message-story"><thead><tr><th>Time</th><th>What</th>'
            "<th>Status</th><th>Code</th><th>Detail</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Time", ordering="created_at")
    def time(self, obj: Message) -> str:
        return time_display(obj.created_at)

    @admin.display(description="Text")
    def excerpt(self, obj: Message) -> str:
        text = f"[{len(obj.media_urls)} media] {obj.body}" if obj.media_urls else obj.body
        return cut(text, 60)

    @admin.display(description="Routed to / error")
    def outcome(self, obj: Message) -> str:
        return cut(obj.routed_to if obj.direction == Direction.IN else obj.error_message, 60)


class MessageAdmin(
    MessageDisplayMixin,
    ContactNamesMixin,
    ChannelsRequiredMixin,
    TenantTimeMixin,
    ReadOnlyScopedAdmin,
):
    list_display = [
        "time",
        "direction",
        "kind",
        "status",
        "did",
        "remote_with_name",
        "excerpt",
        "extension",
        "outcome",
    ]
    list_filter = ["direction", "status", DidListFilter]
    list_select_related = ["extension"]
    date_hierarchy = "created_at"
    search_fields = ["body", "did", "remote"]
    search_help_text = _("Search the text, the DID, the outside number or its contact's name.")
    list_per_page = 50
    change_list_template = "sms/admin/message_change_list.html"
    inlines = [MessageMediaInline, DeliveryAttemptInline, DestinationAttemptInline]
    fields = [
        "created_at",
        "direction",
        "kind",
        "status",
        "source",
        "configuration",
        "conversation",
        "did",
        "remote_with_name",
        "body",
        "media_urls",
        "segments",
        "extension",
        "rule_name",
        "routed_to",
        "destination",
        "unrouted_reason",
        "error_code",
        "error_message",
        "provider_account",
        "provider_id",
        "attempt_count",
        "last_attempt_at",
        "next_attempt_at",
        "received_at",
        "received_at_note",
        "send_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "story",
    ]
    readonly_fields = fields

    def get_urls(self) -> list[Any]:
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="sms_message_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Stream the filtered list as CSV, in constant queries and memory."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        # The rows stream after the middleware has put the zone back: keep the tenant's here.
        zone = timezone.get_current_timezone()
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return redirect(reverse("tenant:sms_message_changelist"))
        rows = (
            changelist.queryset.select_related("extension")
            .prefetch_related("events", "attempts")
            .iterator(chunk_size=2000)
        )
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(CSV_HEADER)
            for m in rows:
                yield writer.writerow(
                    [
                        csv_cell(value)
                        for value in (
                            m.pk,
                            time_export(m.created_at, zone),
                            m.direction,
                            m.kind,
                            m.status,
                            m.did,
                            m.remote,
                            m.body,
                            " ".join(m.media_urls or []),
                            m.extension.number if m.extension else "",
                            m.rule_name,
                            m.routed_to,
                            m.route_type if m.direction == Direction.IN else "",
                            m.route_id if m.direction == Direction.IN else "",
                            m.route_name if m.direction == Direction.IN else "",
                            message_unrouted_reason(m) or "",
                            m.error_code,
                            m.error_message,
                            m.provider_id,
                            m.segments,
                            time_export(m.sent_at, zone),
                            time_export(m.received_at, zone),
                            time_export(m.send_at, zone),
                            events_text(m, zone=zone),
                            m.contact_name or "",
                        )
                    ]
                )

        stamp = timezone.now().astimezone(zone).strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.csv"'
        return response


# --- conversations and webhook deliveries ------------------------------------------------------


class ConversationAdmin(
    ContactNamesMixin, ChannelsRequiredMixin, TenantTimeMixin, ReadOnlyScopedAdmin
):
    list_display = [
        "remote_with_name",
        "did",
        "extension",
        "ring_group",
        "last_message_at",
        "last_text",
        "unread_count",
        "open_in_inbox",
    ]
    list_select_related = ["extension", "ring_group"]
    search_fields = ["remote", "did", "last_message_text"]
    fields = [
        "remote_with_name",
        "did",
        "configuration",
        "extension",
        "ring_group",
        "last_message_at",
        "last_message_text",
        "unread_count",
    ]
    readonly_fields = fields
    list_per_page = 50

    @admin.display(description=_("Last message text"), ordering="last_message_text")
    def last_text(self, obj: Conversation) -> str:
        return cut(obj.last_message_text, 60)

    @admin.display(description=_("Inbox"))
    def open_in_inbox(self, obj: Conversation) -> str:
        return format_html('<a href="{}">Open</a>', reverse("inbox_conversation", args=[obj.pk]))


class DeliveryMessagesMixin:
    """Link a webhook delivery to the messages it made, on the site showing it."""

    admin_site: admin.AdminSite

    @admin.display(description=_("Messages"))
    def messages_made(self, obj: WebhookDelivery) -> str:
        made = Message.objects.filter(tenant_id=obj.tenant_id, delivery=obj)[:10]
        change = f"{self.admin_site.name}:sms_message_change"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse(change, args=[m.pk]), str(m)) for m in made),
        )


class WebhookDeliveryAdmin(
    DeliveryMessagesMixin, ChannelsRequiredMixin, TenantTimeMixin, ReadOnlyScopedAdmin
):
    list_display = [
        "received_at",
        "configuration",
        "method",
        "status",
        "short_reason",
        "remote_addr",
    ]
    list_filter = ["status", "method"]
    list_select_related = ["configuration"]
    date_hierarchy = "received_at"
    actions = ["reprocess"]
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
        "messages_made",
    ]
    readonly_fields = fields

    @admin.display(description=_("Reason"), ordering="reason")
    def short_reason(self, obj: WebhookDelivery) -> str:
        return cut(obj.reason, 60)

    @admin.action(
        description=_("Reprocess (received, failed, rejected or ignored deliveries)"),
        permissions=["view"],
    )
    def reprocess(self, request: HttpRequest, queryset: Any) -> None:
        count = webhook_deliveries_reprocess(
            tenant=request.tenant, deliveries=queryset, actor=request.user
        )
        skipped = queryset.count() - count
        text = f"{count} deliver{'y' if count == 1 else 'ies'} queued for processing."
        if skipped:
            plural = "" if skipped == 1 else "s"
            text += f" {skipped} duplicate{plural} of another delivery, left alone."
        messages.success(request, text)
