"""POST status changes of sent messages to their status callback URL, signed, retried for a day.

Each status change is a StatusCallback row (written with the change, see sms.outbound.events);
its task tries it once and comes back after a backoff until STATUS_CALLBACK_RETRY_HOURS have
passed. Every try is kept as a MessageEvent of kind "callback" on the message. The request is
signed as HTTP destinations are: X-Seed-Timestamp, and X-Seed-Signature "sha256=<hex>", the
HMAC-SHA256 of "<timestamp>.<body>" under the tenant's callback secret.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from core.http import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HttpError,
    backoff_delay,
    post_json,
    signature,
)
from sms.models import CallbackStatus, EventKind, MessageEvent, StatusCallback
from tenants.access import messaging_refusal
from tenants.services import tenant_callback_secret

logger = logging.getLogger(__name__)

# Errors no later try can mend: the URL is unusable or leads to an address that is refused.
PERMANENT_ERRORS = ("invalid_url", "address_refused")


def status_callback_run(*, callback_id: int) -> float | None:
    """Try a pending status callback once; return seconds until its next try, or None."""
    row = (
        StatusCallback.objects.select_related("message", "tenant")
        .filter(pk=callback_id, status=CallbackStatus.PENDING)
        .first()
    )
    if row is None:
        return None
    # Two copies of one task (acks_late after a lost worker) try the same number: one wins.
    attempt = row.attempts + 1
    claimed = StatusCallback.objects.filter(
        pk=row.pk, status=CallbackStatus.PENDING, attempts=row.attempts
    ).update(attempts=F("attempts") + 1, next_try_at=timezone.now() + timedelta(minutes=5))
    if not claimed:
        return None
    message, tenant = row.message, row.tenant
    url = message.status_callback
    refusal = messaging_refusal(tenant)
    if refusal:
        ok, retry, code, detail = False, False, "channels_off", refusal
    elif not url:
        ok, retry, code, detail = False, False, "no_url", "the message has no status callback"
    else:
        secret = tenant_callback_secret(tenant=tenant)
        ok, retry, code, detail = _post(url, row.body.encode(), secret)
    give_up_at = row.created_at + timedelta(hours=settings.STATUS_CALLBACK_RETRY_HOURS)
    delay = None
    if not ok and retry:
        delay = backoff_delay(
            attempt=attempt,
            base=settings.STATUS_CALLBACK_RETRY_BASE_SECONDS,
            cap=settings.STATUS_CALLBACK_RETRY_MAX_SECONDS,
        )
        if timezone.now() + timedelta(seconds=delay) > give_up_at:
            delay = None
    if ok:
        state, note = CallbackStatus.DELIVERED, "delivered"
    elif delay is not None:
        state, note = CallbackStatus.PENDING, f"{detail}; next try in {int(delay)} s"
    else:
        state, note = CallbackStatus.FAILED, f"{detail}; given up"
    reported = json.loads(row.body).get("status", "")
    MessageEvent.objects.create(
        tenant_id=row.tenant_id,
        message_id=row.message_id,
        kind=EventKind.CALLBACK,
        status=str(reported)[:10],
        code=code[:50],
        detail=f"try {attempt}: {note}"[:300],
    )
    StatusCallback.objects.filter(pk=row.pk).update(
        status=state, next_try_at=timezone.now() + timedelta(seconds=delay or 0)
    )
    logger.info("status callback %s of message %s, try %d: %s", row.pk, message.pk, attempt, note)
    return delay


def _post(url: str, body: bytes, secret: str) -> tuple[bool, bool, str, str]:
    """POST the signed body; return (ok, worth retrying, code, detail)."""
    timestamp = int(time.time())
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret=secret, timestamp=timestamp, body=body),
    }
    try:
        status = post_json(url, body, headers, timeout=settings.DESTINATION_HTTP_TIMEOUT_SECONDS)
    except HttpError as error:
        return False, error.code not in PERMANENT_ERRORS, error.code, error.message
    if 200 <= status < 300:
        return True, False, f"http_{status}", f"answered HTTP {status}"
    return False, True, f"http_{status}", f"answered HTTP {status}"
