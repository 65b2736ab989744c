"""The inbox of extension users and tenant administrators."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.clock import time_display, time_export
from core.errors import ApplicationError
from sms.contacts import contact_save
from sms.conversations import (
    conversation_mark_read,
    conversation_reply,
    conversation_transfer,
    message_retry,
)
from sms.inbound.media import DEFAULT_CONTENT_TYPE, MediaUnavailable, media_open
from sms.models import (
    Conversation,
    Direction,
    MediaStatus,
    Message,
    MessageMedia,
    MessageStatus,
    SmsConfiguration,
    Source,
)
from sms.outbound.attachments import ACCEPT as ATTACHMENT_TYPES
from sms.outbound.attachments import MAX_ATTACHMENTS, attachments_read
from sms.outbound.send import (
    message_send,
    sender_did_count_for_user,
    sender_dids_for_user,
    sender_dids_matching,
)
from sms.outbound.splitting import MMS_MAX_CHARS, SMS_MAX_BYTES
from sms.selectors import (
    contacts_by_number,
    conversations_for_user,
    conversations_listed,
    conversations_search,
    inbound_message_latest_id,
    inbound_messages_after,
    is_opted_out,
)
from sms.templates_service import reply_templates_for
from tenants.access import messaging_refusal
from tenants.models import RingGroupMember, Tenant
from trunks.models import PoolRange
from trunks.numbers import InvalidNumber, number_to_int, parse_nanp

PAGE_SIZE = 50
SHOWN_MESSAGES = 200
MEDIA_FIELDS = 3
COMPOSE_FIELDS = ("from", "to", "body", "media_urls", "attachments")
SEARCH_MAX_LENGTH = 100
SNIPPET_CONTEXT = 40
NOTIFY_TEXT_CHARS = 100
# Up to this many DIDs, From is a list of them all; above, a search box over the DIDs.
SENDER_LIST_MAX = 200
SENDER_SUGGESTIONS = 20


def _visible(request: HttpRequest) -> QuerySet[Conversation]:
    return conversations_for_user(user=request.user, tenant=request.tenant)


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    conversation = (
        _visible(request)
        .select_related("tenant", "configuration", "extension", "ring_group")
        .filter(pk=pk)
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _is_admin(request: HttpRequest) -> bool:
    return request.user.is_system_admin or request.user.is_tenant_admin


def _media_query() -> Prefetch:
    return Prefetch("media", queryset=MessageMedia.objects.order_by("id"))


def _media_json(media: MessageMedia) -> dict[str, Any]:
    return {
        "url": reverse("inbox_media", args=[media.pk]),
        "content_type": media.content_type,
        "name": (media.url or media.file.name).rsplit("/", 1)[-1][:80],
        "image": media.status == MediaStatus.STORED
        and media.content_type.startswith("image/")
        and media.content_type != "image/svg+xml",
        "status": media.status,
    }


def _message_json(message: Message, zone: tzinfo) -> dict[str, Any]:
    at = message.received_at if message.direction == Direction.IN else message.created_at
    at = at or message.created_at
    failed = message.direction == Direction.OUT and message.status == MessageStatus.FAILED
    return {
        "id": message.pk,
        "direction": message.direction,
        "kind": message.kind,
        "status": message.status,
        "status_label": message.get_status_display(),
        "body": message.body,
        "at": time_export(at, zone),
        "at_display": time_display(at, zone),
        "error_message": message.error_message if failed else "",
        "media": [_media_json(media) for media in message.media.all()],
        "media_links": [
            url for url in message.media_urls if url.startswith(("http://", "https://"))
        ]
        if message.direction == Direction.OUT
        else [],
        "retry_url": reverse("inbox_retry", args=[message.pk]) if failed else None,
    }


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """Render an inbox page in the portal's frame (the admin's header, theme and dark mode)."""
    tenant = request.tenant
    live = None
    if tenant is not None:
        live = {
            "url": reverse("inbox_conversations_json"),
            "after": inbound_message_latest_id(user=request.user, tenant=tenant),
        }
    context = {"has_permission": True, "live": live, **context}
    return render(request, template, context, status=status)


def highlight(text: str, query: str, *, context: int | None = None) -> SafeString:
    """Return `text` escaped with the first match of `query` in <mark>; cut around it if asked."""
    found = re.search(re.escape(query), text, re.IGNORECASE) if query else None
    if found is None:
        if context is not None and len(text) > 2 * context:
            text = text[: 2 * context] + "…"
        return escape(text)
    at, end = found.span()
    before, match, after = text[:at], text[at:end], text[end:]
    if context is not None:
        if len(before) > context:
            before = "…" + before[-context:]
        if len(after) > context:
            after = after[:context] + "…"
    return mark_safe(f"{escape(before)}<mark>{escape(match)}</mark>{escape(after)}")  # noqa: S308


@dataclass
class Row:
    """One conversation of the list, with its contact and, in a search, the matching text."""

    conversation: Conversation
    name: str
    label: SafeString
    snippet: SafeString


def _rows(request: HttpRequest, conversations: list[Conversation], query: str = "") -> list[Row]:
    """Return the list rows: contact names in one query, matching texts in one more."""
    contacts = contacts_by_number(tenant=request.tenant, numbers=[c.remote for c in conversations])
    match_ids = [c.match_id for c in conversations if getattr(c, "match_id", None)]
    bodies = dict(
        Message.objects.for_tenant(request.tenant)
        .filter(pk__in=match_ids)
        .values_list("pk", "body")
        if match_ids
        else []
    )
    rows = []
    for conversation in conversations:
        contact = contacts.get(conversation.remote)
        name = contact.name if contact else ""
        body = bodies.get(getattr(conversation, "match_id", None) or 0)
        text = body if body is not None else conversation.last_message_text
        rows.append(
            Row(
                conversation=conversation,
                name=name,
                label=highlight(name or conversation.remote, query),
                snippet=highlight(" ".join(text.split()), query, context=SNIPPET_CONTEXT)
                if query
                else escape(text),
            )
        )
    return rows


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """List the conversations the user may read, newest first, or those matching ?q=."""
    tenant = request.tenant
    query = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    page = None
    rows: list[Row] = []
    if tenant is not None:
        conversations = (
            conversations_search(user=request.user, tenant=tenant, query=query)
            if query
            else conversations_listed(user=request.user, tenant=tenant)
        )
        page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = _rows(request, list(page.object_list), query)
    return _page(
        request,
        "sms/inbox.html",
        {
            "page": page,
            "rows": rows,
            "query": query,
            "tenant": tenant,
            "extension": getattr(request.user, "extension", None),
        },
    )


def _row_json(row: Row, zone: tzinfo) -> dict[str, Any]:
    conversation = row.conversation
    at = conversation.last_message_at
    return {
        "id": conversation.pk,
        "url": reverse("inbox_conversation", args=[conversation.pk]),
        "name": row.name,
        "remote": conversation.remote,
        "did": conversation.did,
        "text": conversation.last_message_text,
        "at": time_export(at, zone) if at else "",
        "at_display": time_display(at, zone) if at else "",
        "assigned": str(conversation.extension or ""),
        "ring_group": str(conversation.ring_group or ""),
        "unread": conversation.unread_count,
    }


@login_required
@require_GET
@never_cache
def conversations_json(request: HttpRequest) -> HttpResponse:
    """Return the first page of the conversation list and the inbound messages after ?after=.

    The list carries an ETag: a poll that sends it back in If-None-Match while nothing changed
    gets 304 (new messages for notifications are then none either, as they change the list).
    """
    tenant = request.tenant
    if tenant is None:
        return JsonResponse({"conversations": [], "inbound": [], "after": 0})
    try:
        after = max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        after = 0
    conversations = list(conversations_listed(user=request.user, tenant=tenant)[:PAGE_SIZE])
    rows = [_row_json(row, tenant.zone) for row in _rows(request, conversations)]
    inbound = inbound_messages_after(user=request.user, tenant=tenant, after=after)
    contacts = contacts_by_number(tenant=tenant, numbers=[m.remote for m in inbound])
    payload = {
        "conversations": rows,
        "inbound": [
            {
                "id": message.pk,
                "conversation": message.conversation_id,
                "url": reverse("inbox_conversation", args=[message.conversation_id]),
                "sender": (
                    f"{contacts[message.remote].name} ({message.remote})"
                    if message.remote in contacts
                    else message.remote
                ),
                "text": message.body[:NOTIFY_TEXT_CHARS]
                or (_("[picture or file]") if message.kind == "mms" else ""),
            }
            for message in inbound
        ],
        "after": max([after, *(message.pk for message in inbound)]),
    }
    etag = '"' + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = JsonResponse(payload)
    response["ETag"] = etag
    return response


@login_required
@require_GET
@never_cache
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show one conversation as bubbles, mark it read, and offer reply, retry and hand-over."""
    conversation = _conversation(request, pk)
    conversation_mark_read(conversation=conversation)
    recent = list(
        Message.objects.for_tenant(request.tenant)
        .filter(conversation=conversation)
        .prefetch_related(_media_query())
        .order_by("-created_at", "-id")[:SHOWN_MESSAGES]
    )
    recent.reverse()
    members = []
    if conversation.ring_group_id:
        members = list(
            RingGroupMember.objects.for_tenant(request.tenant)
            .filter(ring_group_id=conversation.ring_group_id, enabled=True)
            .select_related("extension")
            .order_by("position", "id")
        )
    context = {
        "conversation": conversation,
        "tenant": request.tenant,
        "bubbles": [_message_json(message, request.tenant.zone) for message in recent],
        "truncated": len(recent) == SHOWN_MESSAGES,
        "last_id": max((message.pk for message in recent), default=0),
        "opted_out": is_opted_out(
            tenant=request.tenant, did=conversation.did, remote=conversation.remote
        ),
        "channels_on": not messaging_refusal(request.tenant),
        "members": members,
        "limits": {"sms_bytes": SMS_MAX_BYTES, "mms_chars": MMS_MAX_CHARS},
        "contact": contacts_by_number(tenant=request.tenant, numbers=[conversation.remote]).get(
            conversation.remote
        ),
        "attach": _attach_context(),
        "draft": request.session.pop(_reply_draft_key(conversation), None),
    }
    return _page(request, "sms/conversation.html", context)


def _attach_context() -> dict[str, Any]:
    return {"accept": ATTACHMENT_TYPES, "max": MAX_ATTACHMENTS, "max_mb": "1.2"}


@login_required
@require_http_methods(["GET", "POST"])
def conversation_contact_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Add the conversation's number to the tenant's contacts, or rename its contact."""
    conversation = _conversation(request, pk)
    if request.method != "POST":
        return _back(conversation)
    contact = contacts_by_number(tenant=request.tenant, numbers=[conversation.remote]).get(
        conversation.remote
    )
    try:
        contact_save(
            tenant=request.tenant,
            actor=request.user,
            contact=contact,
            name=request.POST.get("name", "")[:100],
            number=conversation.remote,
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Contact saved.")
            if contact
            else _("%(number)s added to contacts.") % {"number": conversation.remote},
        )
    return _back(conversation)


@login_required
@require_GET
@never_cache
def conversation_messages_json(request: HttpRequest, pk: int) -> JsonResponse:
    """Return messages newer than ?after=<id>, and the status of the ?pending= ids."""
    conversation = _conversation(request, pk)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    pending = [int(x) for x in request.GET.get("pending", "").split(",")[:100] if x.isdigit()]
    zone = request.tenant.zone
    scoped = Message.objects.for_tenant(request.tenant).filter(conversation=conversation)
    new = list(
        scoped.filter(pk__gt=after).prefetch_related(_media_query()).order_by("id")[:SHOWN_MESSAGES]
    )
    if any(message.direction == Direction.IN for message in new):
        conversation_mark_read(conversation=conversation)
    updated = scoped.filter(pk__in=pending).prefetch_related(_media_query()) if pending else []
    return JsonResponse(
        {
            "messages": [_message_json(message, zone) for message in new],
            "updated": [_message_json(message, zone) for message in updated],
            "opted_out": is_opted_out(
                tenant=request.tenant, did=conversation.did, remote=conversation.remote
            ),
        }
    )


@login_required
@require_GET
def media_file(request: HttpRequest, pk: int) -> HttpResponse:
    """Serve a stored MMS file to a user who may read its conversation."""
    media = (
        MessageMedia.objects.for_tenant(request.tenant)
        .select_related("message")
        .filter(pk=pk)
        .first()
    )
    if media is None:
        raise Http404("No such file.")
    conversation_id = media.message.conversation_id
    if conversation_id is None:
        if not _is_admin(request):
            raise Http404("No such file.")
    elif not _visible(request).filter(pk=conversation_id).exists():
        raise Http404("No such file.")
    try:
        handle, content_type = media_open(media=media)
    except MediaUnavailable:
        if media.url.startswith(("http://", "https://")):
            # Not downloaded (yet): the provider's link may still work.
            return HttpResponseRedirect(media.url)
        raise Http404("The file is not stored.") from None
    response = FileResponse(
        handle,
        content_type=content_type,
        as_attachment=content_type == DEFAULT_CONTENT_TYPE,
        filename=media.file.name.rsplit("/", 1)[-1],
    )
    # A file from an outside sender must never run as a page of the portal.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _back(conversation: Conversation) -> HttpResponse:
    return redirect("inbox_conversation", pk=conversation.pk)


@login_required
@require_http_methods(["GET", "POST"])
def conversation_reply_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a reply from the conversation's DID; a GET goes back to the conversation."""
    conversation = _conversation(request, pk)
    if request.method != "POST":
        return _back(conversation)
    body = _text(request.POST.get("body", ""))
    try:
        attachments = attachments_read(files=request.FILES.getlist("attachments"))
        conversation_reply(
            conversation=conversation, user=request.user, body=body, attachments=attachments
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        # The conversation page shows the refused text again under its error, once.
        request.session[_reply_draft_key(conversation)] = {"body": body, "error": error.message}
    return _back(conversation)


def _reply_draft_key(conversation: Conversation) -> str:
    return f"reply_draft:{conversation.pk}"


@login_required
@require_http_methods(["GET", "POST"])
def message_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a failed outbound message again; a GET goes back to its conversation."""
    message = (
        Message.objects.for_tenant(request.tenant)
        .select_related("tenant")
        .filter(pk=pk, conversation__isnull=False)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    conversation = _conversation(request, message.conversation_id)
    if request.method == "POST":
        try:
            message_retry(message=message, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The message is queued again."))
    return _back(conversation)


@login_required
@require_http_methods(["GET", "POST"])
def conversation_transfer_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Hand a ring-group conversation to another member; a GET goes back to it."""
    conversation = _conversation(request, pk)
    if request.method != "POST":
        return _back(conversation)
    extension_id = request.POST.get("extension", "")
    member = None
    if extension_id.isdigit() and conversation.ring_group_id:
        member = (
            RingGroupMember.objects.for_tenant(request.tenant)
            .filter(ring_group_id=conversation.ring_group_id, extension_id=int(extension_id))
            .select_related("extension")
            .first()
        )
    if member is None:
        messages.error(request, _("Choose a member of the conversation's ring group."))
        return _back(conversation)
    try:
        conversation_transfer(
            conversation=conversation, extension=member.extension, actor=request.user
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("Handed over to %(extension)s.") % {"extension": member.extension}
        )
    return _back(conversation)


def _text(raw: str) -> str:
    # Browsers submit a textarea's line breaks as CRLF; the live counter (inbox.js) counts the
    # LF the user sees, so store LF and bill what was shown.
    return raw.replace("\r\n", "\n")


@dataclass(frozen=True)
class SenderOption:
    """A DID the user may send from, with what its configuration does with long texts and media."""

    did: str
    channel: str
    long_message_policy: str


def _configurations_by_trunk(tenant: Tenant) -> dict[int, SmsConfiguration]:
    """Return the tenant's enabled configuration that message_send picks on each trunk."""
    # Like routes_for_message without outbound rules: the tenant's enabled configurations in
    # their default order (name), the first on the DID's trunk. An outbound rule may route
    # elsewhere when sending; this only sets the counter and the attachment fields.
    configurations: dict[int, SmsConfiguration] = {}
    for configuration in SmsConfiguration.objects.for_tenant(tenant).filter(enabled=True):
        configurations.setdefault(configuration.trunk_id, configuration)
    return configurations


def _sender_options(*, tenant: Tenant, dids: list[str]) -> list[SenderOption]:
    """Return each DID with the configuration message_send would pick, in two queries."""
    configurations = _configurations_by_trunk(tenant)
    ranges = list(
        PoolRange.objects.for_tenant(tenant)
        .filter(trunk_id__in=list(configurations))
        .values_list("trunk_id", "start", "end")
    )
    order = list(configurations)
    options = []
    for did in dids:
        try:
            number = number_to_int(did)
        except InvalidNumber:
            number = -1
        trunks = {trunk_id for trunk_id, start, end in ranges if start <= number <= end}
        found = next((configurations[t] for t in order if t in trunks), None)
        options.append(
            SenderOption(
                did=did,
                channel=found.channel if found else "",
                long_message_policy=found.long_message_policy if found else "",
            )
        )
    return options


def _searched_sender(request: HttpRequest, typed: str) -> SenderOption | None:
    """Return the typed From number as an option when it is one the user may send from."""
    try:
        did = parse_nanp(typed)
    except InvalidNumber:
        return None
    if sender_dids_matching(user=request.user, tenant=request.tenant, query=did, limit=1) != [did]:
        return None
    return _sender_options(tenant=request.tenant, dids=[did])[0]


@login_required
@require_GET
@never_cache
def compose_senders_json(request: HttpRequest) -> JsonResponse:
    """Return the first DIDs the user may send from whose digits contain ?q=, for From."""
    tenant = request.tenant
    if tenant is None:
        return JsonResponse({"senders": [], "more": False})
    dids = sender_dids_matching(
        user=request.user,
        tenant=tenant,
        query=request.GET.get("q", "")[:40],
        limit=SENDER_SUGGESTIONS + 1,
    )
    options = _sender_options(tenant=tenant, dids=dids[:SENDER_SUGGESTIONS])
    return JsonResponse(
        {
            "senders": [asdict(option) for option in options],
            "more": len(dids) > SENDER_SUGGESTIONS,
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    """Write a new message from one of the user's DIDs to any number, and queue it."""
    tenant = request.tenant
    sender_count = (
        sender_did_count_for_user(user=request.user, tenant=tenant) if tenant is not None else 0
    )
    searching = sender_count > SENDER_LIST_MAX
    senders = (
        _sender_options(tenant=tenant, dids=sender_dids_for_user(user=request.user, tenant=tenant))
        if tenant is not None and not searching
        else []
    )
    typed = {"from": senders[0].did if len(senders) == 1 else "", "to": "", "body": ""}
    media_urls = [""] * MEDIA_FIELDS
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST" and tenant is not None:
        typed = {
            "from": request.POST.get("from", "").strip(),
            "to": request.POST.get("to", "").strip(),
            "body": _text(request.POST.get("body", "")),
        }
        posted = [url.strip() for url in request.POST.getlist("media_urls")[:MEDIA_FIELDS]]
        media_urls = (posted + media_urls)[:MEDIA_FIELDS]
        try:
            attachments = attachments_read(files=request.FILES.getlist("attachments"))
            sent = message_send(
                user=request.user,
                tenant=tenant,
                to=typed["to"],
                body=typed["body"],
                did=typed["from"] or None,
                media_urls=tuple(url for url in media_urls if url),
                attachments=attachments,
                source=Source.PORTAL,
            )
        except ApplicationError as error:
            errors[error.field if error.field in COMPOSE_FIELDS else "form"] = error.message
            status = 400
        else:
            first = sent[0]
            if len(sent) > 1:
                queued = _("Message to %(remote)s queued as %(count)s SMS parts.") % {
                    "remote": first.remote,
                    "count": len(sent),
                }
            else:
                queued = _("Message to %(remote)s queued.") % {"remote": first.remote}
            messages.success(request, queued)
            if _visible(request).filter(pk=first.conversation_id).exists():
                return redirect("inbox_conversation", pk=first.conversation_id)
            # The conversation with this contact is handled by another extension.
            return redirect("inbox")
    if searching:
        chosen = _searched_sender(request, typed["from"]) if typed["from"] else None
        show_media = any(c.channel == "mms" for c in _configurations_by_trunk(tenant).values())
    else:
        chosen = next((option for option in senders if option.did == typed["from"]), None)
        show_media = any(option.channel == "mms" for option in senders)
    context = {
        "tenant": tenant,
        "senders": senders,
        "sender_search": {"count": sender_count, "chosen": chosen} if searching else None,
        "typed": typed,
        "media_urls": media_urls,
        "errors": errors,
        "show_media": show_media,
        "media_on": chosen is not None and chosen.channel == "mms",
        "limits": {"sms_bytes": SMS_MAX_BYTES, "mms_chars": MMS_MAX_CHARS},
        "reply_templates": reply_templates_for(tenant=tenant) if tenant is not None else [],
        "attach": _attach_context(),
    }
    return _page(request, "sms/compose.html", context, status=status)
