"""The URL VoIP.ms posts received messages to: store first, answer fast, process later."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from core import metrics
from core.middleware import query_nul_allowed
from core.throttle import failure_throttle
from sms.inbound.store import webhook_delivery_accept
from sms.models import DeliveryStatus, webhook_token_digest
from trunks.voipms.webhooks import WebhookError, parse_callback_query_string, parse_webhook_json

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
# The same headers as request.META keys: read directly, without building request.headers.
_KEPT_META = tuple(
    (name, key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
    for name in KEPT_HEADERS
    for key in [name.upper().replace("-", "_")]
)


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _judge(request: HttpRequest, body: bytes) -> tuple[str, str, int]:
    """Return (delivery status, reason, HTTP status) for a request body, before any lookup."""
    if len(body) > MAX_BODY:
        return DeliveryStatus.REJECTED, f"body over {MAX_BODY // 1024} KiB", 413
    try:
        if request.method == "POST" and body.strip():
            parse_webhook_json(body)
        else:
            # The raw query string, as stored, not request.GET: the worker parses the stored
            # string, and door and worker must read the same values to agree.
            parse_callback_query_string(request.META.get("QUERY_STRING", ""))
    except WebhookError as error:
        return DeliveryStatus.REJECTED, str(error), 400
    return DeliveryStatus.RECEIVED, "", 200


# A NUL in a callback's text is stored as sent and cleaned when processed (ARCHITECTURE.md).
@query_nul_allowed
@csrf_exempt
def voipms_webhook(request: HttpRequest, token: str) -> HttpResponse:
    """Store a VoIP.ms webhook (JSON POST) or URL callback (GET) and acknowledge it.

    Unknown token: 404, nothing stored (429 once the address missed too often). Stored and
    answered "ok": received (processed later), or ignored (configuration disabled, Message
    Channels off). Stored and answered 400 or 413 with the reason: rejected. Nothing could be
    stored: 503, so the sender tries again.
    """
    if request.method not in ("GET", "POST"):
        response = _text("method not allowed", 405)
        response["Allow"] = "GET, POST"
        return response
    body = request.read(MAX_BODY + 1) if request.method == "POST" else b""
    status, reason, http_status = _judge(request, body)
    try:
        stored = webhook_delivery_accept(
            token_digest=webhook_token_digest(token),
            method=request.method,
            body=body[:MAX_BODY],
            query=request.META.get("QUERY_STRING", ""),
            content_type=request.content_type or "",
            remote_addr=request.META.get("REMOTE_ADDR"),
            headers={name: request.META[key] for name, key in _KEPT_META if key in request.META},
            status=status,
            reason=reason,
        )
    except DatabaseError:
        logger.exception("webhook: database unavailable")
        return _text("temporarily unavailable", 503)
    if stored is None:
        metrics.incr("webhooks_unknown_token")
        wait = failure_throttle(
            kind="webhook_token",
            request=request,
            per_minute=settings.WEBHOOK_TOKEN_MISSES_PER_MINUTE,
        )
        if wait is not None:
            response = _text("too many unknown webhook URLs from this address", 429)
            response["Retry-After"] = str(wait)
            return response
        return _text("not found", 404)
    metrics.incr(
        {
            DeliveryStatus.RECEIVED: "webhooks_received",
            DeliveryStatus.IGNORED: "webhooks_ignored",
        }.get(stored.status, "webhooks_rejected")
    )
    if http_status == 200:
        # VoIP.ms repeats a callback until the body is exactly "ok" (DOMAIN.md §3).
        return _text("ok", 200)
    return _text(reason, http_status)
