"""The URL VoIP.ms posts received messages to: store first, answer fast, process later."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from portal import metrics
from sms.models import DeliveryStatus, SmsConfiguration, webhook_token_digest
from sms.services.deliveries import webhook_delivery_store
from trunks.voipms.webhooks import WebhookError, parse_callback_query, parse_webhook_json

logger = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
KEPT_HEADERS = (
    "User-Agent",
    "Content-Type",
    "Content-Length",
    "X-Forwarded-For",
    "X-Real-IP",
    "CF-Connecting-IP",
    "CF-Ray",
)


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def voipms_inbound(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a VoIP.ms webhook view: CSRF exempt, methods, token lookup, database outages."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            response = _text("method not allowed", 405)
            response["Allow"] = "GET, POST"
            return response
        try:
            # Only the columns the view needs: it runs for every webhook.
            configuration = (
                SmsConfiguration.objects.select_related("tenant")
                .only(
                    "id",
                    "tenant_id",
                    "enabled",
                    "last_webhook_at",
                    "tenant__id",
                    "tenant__message_channels_enabled",
                )
                .filter(webhook_token_digest=webhook_token_digest(token))
            )
            try:
                configuration = configuration.get()
            except SmsConfiguration.DoesNotExist:
                metrics.incr("webhooks_unknown_token")
                return _text("not found", 404)
            return view(request, configuration)
        except DatabaseError:
            # Nothing could be stored: ask the sender to try again later.
            logger.exception("webhook: database unavailable")
            return _text("temporarily unavailable", 503)

    return wrapper


def _decide(
    request: HttpRequest, configuration: SmsConfiguration, body: bytes
) -> tuple[str, str, int]:
    """Return (delivery status, reason, HTTP status) for a request."""
    if len(body) > MAX_BODY:
        return DeliveryStatus.REJECTED, f"body over {MAX_BODY // 1024} KiB", 413
    try:
        if request.method == "POST" and body.strip():
            parse_webhook_json(body)
        else:
            parse_callback_query(request.GET)
    except WebhookError as error:
        return DeliveryStatus.REJECTED, str(error), 400
    if not configuration.tenant.message_channels_enabled:
        # Answer 200 so VoIP.ms stops retrying; the request is kept, marked ignored.
        return DeliveryStatus.IGNORED, "Message Channels are off for this tenant", 200
    if not configuration.enabled:
        return DeliveryStatus.IGNORED, "the configuration is disabled", 200
    return DeliveryStatus.RECEIVED, "", 200


@voipms_inbound
def voipms_webhook(request: HttpRequest, configuration: SmsConfiguration) -> HttpResponse:
    """Store a VoIP.ms webhook (JSON POST) or URL callback (GET) and acknowledge it."""
    body = request.read(MAX_BODY + 1) if request.method == "POST" else b""
    status, reason, http_status = _decide(request, configuration, body)
    headers: dict[str, Any] = {
        name: request.headers[name] for name in KEPT_HEADERS if name in request.headers
    }
    webhook_delivery_store(
        configuration=configuration,
        method=request.method,
        body=body[:MAX_BODY],
        query=request.META.get("QUERY_STRING", ""),
        content_type=request.content_type or "",
        remote_addr=request.META.get("REMOTE_ADDR"),
        headers=headers,
        status=status,
        reason=reason,
    )
    metrics.incr(
        {
            DeliveryStatus.RECEIVED: "webhooks_received",
            DeliveryStatus.IGNORED: "webhooks_ignored",
        }.get(status, "webhooks_rejected")
    )
    if http_status == 200:
        # VoIP.ms repeats a callback until the body is exactly "ok" (DOMAIN.md §3).
        return _text("ok", 200)
    return _text(reason, http_status)
