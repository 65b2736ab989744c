"""Messaging pages of the tenant site: logs, inbound rules, ring groups, hours, opt-outs."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from portal.admin_sites import (
    ReadOnlyScopedAdmin,
    ServiceWritesMixin,
    TenantScopedAdmin,
    TenantScopedInline,
    tenant_site,
)
from portal.errors import ApplicationError
from sms.admin import ChannelsRequiredMixin
from sms.models import (
    Action,
    Conversation,
    DeliveryAttempt,
    DestinationAttempt,
    Direction,
    InboundRule,
    Message,
    MessageMedia,
    OptOut,
    WebhookDelivery,
)
from sms.services.conversations import opt_out_delete
from sms.services.deliveries_admin import webhook_deliveries_reprocess
from sms.services.rules import PERIODS, RULE_FIELDS, inbound_rule_delete, inbound_rule_save
from tenants.models import Holiday, OfficeHours, RingGroup, RingGroupMember
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
from trunks.models import Trunk

# --- shared behaviour --------------------------------------------------------------------------


def _zone(request: HttpRequest) -> Any:
    tenant = getattr(request, "tenant", None)
    return tenant.zone if tenant is not None else UTC


class TenantTimeMixin:
    """Show and group times in the tenant's time zone, on the list and on the detail page."""

    def _in_tenant_time(self, request: HttpRequest, view: Any, *args: Any, **kwargs: Any) -> Any:
        with timezone.override(_zone(request)):
            response = view(request, *args, **kwargs)
            # Templates render lazily; render here, while the tenant's zone is active.
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        return self._in_tenant_time(request, super().changelist_view, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any) -> Any:
        return self._in_tenant_time(request, super().change_view, object_id, *args, **kwargs)


class ServiceSavedAdmin(ServiceWritesMixin, TenantScopedAdmin):
    """Save and delete through services; a refused save shows its message on the form's field.

    The form asks the service in a savepoint that is rolled back, so every business rule the
    service checks (pools, masks, names) appears as a form error instead of a crash after the
    form was declared valid; save_model then calls the service for real.
    """

    service_fields: tuple[str, ...] = ()

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        raise NotImplementedError

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def _fields(self, form: Any) -> dict[str, Any]:
        return {
            name: form.cleaned_data[name] for name in self.service_fields if name in form.fields
        }

    def _refusal(self, request: HttpRequest, form: Any) -> ApplicationError | None:
        existing = None
        if form.instance.pk is not None:
            existing = self.get_queryset(request).get(pk=form.instance.pk)
        try:
            with transaction.atomic():
                self.service_save(request, existing, self._fields(form))
                transaction.set_rollback(True)
        except ApplicationError as error:
            return error
        return None

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceForm(base):
            service_refused = False

            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if not self.errors:
                    error = model_admin._refusal(request, self)
                    if error is not None:
                        self.service_refused = True
                        self.add_error(
                            error.field if error.field in self.fields else None, error.message
                        )
                return cleaned

            def _post_clean(self) -> None:
                # The service's message says it better than a model constraint would.
                if not self.service_refused:
                    super()._post_clean()

        return ServiceForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = self.service_save(request, obj if change else None, self._fields(form))
        obj.pk, obj.tenant_id = saved.pk, saved.tenant_id


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


@admin.register(InboundRule, site=tenant_site)
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
                "Schedule",
                {
                    "fields": ("use_custom_hours", "custom_hours"),
                    "description": f"Times are in the tenant's time zone, {zone}. Without own "
                    "hours the rule follows the tenant's office hours; holidays come first.",
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

    @admin.display(description="Office hours")
    def office_destination(self, obj: InboundRule) -> str:
        return destination_summary(obj, "office")

    @admin.display(description="Outside office hours")
    def after_hours_destination(self, obj: InboundRule) -> str:
        return destination_summary(obj, "after_hours")

    @admin.display(description="Holidays")
    def holiday_destination(self, obj: InboundRule) -> str:
        return destination_summary(obj, "holiday")

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return inbound_rule_save(tenant=request.tenant, actor=request.user, rule=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        inbound_rule_delete(rule=obj, actor=request.user)


# --- ring groups, office hours, holidays -------------------------------------------------------


class RingGroupMemberInline(TenantScopedInline):
    model = RingGroupMember
    fk_name = "ring_group"
    fields = ["extension", "enabled", "position"]
    extra = 1
    verbose_name = "member"


@admin.register(RingGroup, site=tenant_site)
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

    @admin.display(description="Members")
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
    return f"times in {tenant.timezone}" if tenant is not None else "times in UTC"


@admin.register(OfficeHours, site=tenant_site)
class OfficeHoursAdmin(ServiceSavedAdmin):
    service_fields = OFFICE_HOURS_FIELDS
    fields = ["weekday", "start", "end"]
    list_display = ["weekday", "start", "end"]
    list_filter = ["weekday"]
    list_per_page = 50

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = f"Office hours ({_zone_note(request)})"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        for name in ("start", "end"):
            if name in form.base_fields:
                form.base_fields[name].help_text = f"HH:MM, {_zone_note(request)}."
        return form

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return office_hours_save(tenant=request.tenant, actor=request.user, hours=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        office_hours_delete(hours=obj, actor=request.user)


@admin.register(Holiday, site=tenant_site)
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


# --- opt-outs ------------------------------------------------------------------------------------


@admin.register(OptOut, site=tenant_site)
class OptOutAdmin(ChannelsRequiredMixin, TenantTimeMixin, TenantScopedAdmin):
    list_display = ["remote", "did", "keyword", "created_at"]
    search_fields = ["remote", "did"]
    fields = ["remote", "did", "keyword", "created_at"]
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

    @admin.action(description="Opt back in (allow messages again)", permissions=["delete"])
    def opt_back_in(self, request: HttpRequest, queryset: Any) -> None:
        count = 0
        for opt_out in queryset:
            opt_out_delete(opt_out=opt_out, actor=request.user)
            count += 1
        messages.success(request, f"{count} contact(s) opted back in.")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        opt_out_delete(opt_out=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for opt_out in queryset:
            opt_out_delete(opt_out=opt_out, actor=request.user)


# --- messages log ------------------------------------------------------------------------------


class DidListFilter(admin.SimpleListFilter):
    """Filter by one of the tenant's DIDs that has a conversation."""

    title = "DID"
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
    verbose_name_plural = "calls to VoIP.ms"


class DestinationAttemptInline(_ReadOnlyInline):
    model = DestinationAttempt
    fields = ["at", "action", "target", "attempt", "ok", "status_code", "error"]
    readonly_fields = fields
    verbose_name_plural = "hand-overs to e-mail or HTTP"


class MessageMediaInline(_ReadOnlyInline):
    model = MessageMedia
    fields = ["preview", "status", "content_type", "size", "error"]
    readonly_fields = fields

    @admin.display(description="File")
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
    "error code",
    "error",
    "provider id",
    "segments",
    "sent at",
    "received at",
]


@admin.register(Message, site=tenant_site)
class MessageAdmin(ChannelsRequiredMixin, TenantTimeMixin, ReadOnlyScopedAdmin):
    list_display = [
        "time",
        "direction",
        "kind",
        "status",
        "did",
        "remote",
        "excerpt",
        "extension",
        "outcome",
    ]
    list_filter = ["direction", "status", DidListFilter]
    list_select_related = ["extension"]
    date_hierarchy = "created_at"
    search_fields = ["body", "did", "remote"]
    search_help_text = "Search the text, the DID or the contact's number."
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
        "remote",
        "body",
        "media_urls",
        "segments",
        "extension",
        "rule_name",
        "routed_to",
        "error_code",
        "error_message",
        "provider_account",
        "provider_id",
        "attempt_count",
        "last_attempt_at",
        "next_attempt_at",
        "received_at",
        "received_at_note",
        "sent_at",
        "delivered_at",
        "read_at",
    ]
    readonly_fields = fields

    @admin.display(description="Time", ordering="created_at")
    def time(self, obj: Message) -> str:
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="Text")
    def excerpt(self, obj: Message) -> str:
        text = obj.body if len(obj.body) <= 60 else obj.body[:60] + "…"
        if obj.media_urls:
            text = f"[{len(obj.media_urls)} media] {text}"
        return text

    @admin.display(description="Routed to / error")
    def outcome(self, obj: Message) -> str:
        if obj.direction == Direction.IN:
            return obj.routed_to
        return obj.error_message

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
        zone = _zone(request)
        with timezone.override(zone):
            try:
                changelist = self.get_changelist_instance(request)
            except IncorrectLookupParameters:
                return redirect(reverse("tenant:sms_message_changelist"))
        rows = changelist.queryset.select_related("extension").iterator(chunk_size=2000)
        writer = csv.writer(_Echo())

        def _time(value: datetime | None) -> str:
            return value.astimezone(zone).isoformat(timespec="seconds") if value else ""

        def lines() -> Iterator[str]:
            yield writer.writerow(CSV_HEADER)
            for m in rows:
                yield writer.writerow(
                    [
                        csv_cell(value)
                        for value in (
                            m.pk,
                            _time(m.created_at),
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
                            m.error_code,
                            m.error_message,
                            m.provider_id,
                            m.segments,
                            _time(m.sent_at),
                            _time(m.received_at),
                        )
                    ]
                )

        stamp = timezone.now().astimezone(zone).strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.csv"'
        return response


# --- conversations and webhook deliveries ------------------------------------------------------


@admin.register(Conversation, site=tenant_site)
class ConversationAdmin(ChannelsRequiredMixin, TenantTimeMixin, ReadOnlyScopedAdmin):
    list_display = [
        "remote",
        "did",
        "extension",
        "ring_group",
        "last_message_at",
        "last_message_text",
        "unread_count",
        "open_in_inbox",
    ]
    list_select_related = ["extension", "ring_group"]
    search_fields = ["remote", "did", "last_message_text"]
    fields = [
        "remote",
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

    @admin.display(description="Inbox")
    def open_in_inbox(self, obj: Conversation) -> str:
        return format_html('<a href="{}">Open</a>', reverse("inbox_conversation", args=[obj.pk]))


@admin.register(WebhookDelivery, site=tenant_site)
class WebhookDeliveryAdmin(ChannelsRequiredMixin, TenantTimeMixin, ReadOnlyScopedAdmin):
    list_display = ["received_at", "configuration", "method", "status", "reason", "remote_addr"]
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

    @admin.display(description="Messages")
    def messages_made(self, obj: WebhookDelivery) -> str:
        made = Message.objects.filter(tenant_id=obj.tenant_id, delivery=obj)[:10]
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("tenant:sms_message_change", args=[m.pk]), str(m)) for m in made),
        )

    @admin.action(
        description="Reprocess (received, failed, rejected or ignored deliveries)",
        permissions=["view"],
    )
    def reprocess(self, request: HttpRequest, queryset: Any) -> None:
        count = webhook_deliveries_reprocess(
            tenant=request.tenant, deliveries=queryset, actor=request.user
        )
        skipped = queryset.count() - count
        text = f"{count} deliver{'y' if count == 1 else 'ies'} queued for processing."
        if skipped:
            text += f" {skipped} already processed or duplicate, left alone."
        messages.success(request, text)
