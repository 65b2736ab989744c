"""The inbox of extension users and tenant administrators."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Prefetch, QuerySet
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
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from portal.errors import ApplicationError
from sms.models import Conversation, Direction, MediaStatus, Message, MessageMedia, MessageStatus
from sms.selectors import conversations_for_user, is_opted_out
from sms.services.conversations import (
    conversation_mark_read,
    conversation_reply,
    conversation_transfer,
    message_retry,
)
from sms.services.media import DEFAULT_CONTENT_TYPE, MediaUnavailable, media_open
from tenants.models import RingGroupMember

PAGE_SIZE = 50
SHOWN_MESSAGES = 200


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
        "name": media.url.rsplit("/", 1)[-1][:80],
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
        "at": at.isoformat(),
        "at_display": timezone.localtime(at, zone).strftime("%Y-%m-%d %H:%M"),
        "error_message": message.error_message if failed else "",
        "media": [_media_json(media) for media in message.media.all()],
        "media_links": [
            url for url in message.media_urls if url.startswith(("http://", "https://"))
        ]
        if message.direction == Direction.OUT
        else [],
        "retry_url": reverse("inbox_retry", args=[message.pk]) if failed else None,
    }


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """List the conversations the user may read, newest first, with unread counts."""
    conversations = (
        _visible(request)
        .select_related("extension", "ring_group")
        .order_by(F("last_message_at").desc(nulls_last=True), "-id")
    )
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "sms/inbox.html",
        {
            "page": page,
            "tenant": request.tenant,
            "extension": getattr(request.user, "extension", None),
        },
    )


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
        "channels_on": request.tenant.message_channels_enabled,
        "members": members,
    }
    return render(request, "sms/conversation.html", context)


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
    body = request.POST.get("body", "")
    try:
        conversation_reply(conversation=conversation, user=request.user, body=body)
    except ApplicationError as error:
        messages.error(request, error.message)
    return _back(conversation)


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
            messages.success(request, "The message is queued again.")
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
        messages.error(request, "Choose a member of the conversation's ring group.")
        return _back(conversation)
    try:
        conversation_transfer(
            conversation=conversation, extension=member.extension, actor=request.user
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Handed over to {member.extension}.")
    return _back(conversation)
