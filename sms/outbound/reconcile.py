"""Settle what VoIP.ms alone knows: sends whose outcome is unknown, and carrier delivery status."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.limits import limits
from core.tasks import enqueue
from sms.models import DeliveryAttempt, Direction, Message, MessageStatus, SmsConfiguration
from sms.outbound.events import status_record, statuses_record_by_id
from sms.providers import voipms_client_for
from trunks.voipms.client import SmsRecord
from trunks.voipms.errors import VoipmsError
from trunks.voipms.formats import history_dates, history_number

logger = logging.getLogger(__name__)
RECONCILE_WINDOW = timedelta(minutes=15)


# getSMS/getMMS rows asked for per call; a longer answer may have been cut short.
HISTORY_LIMIT = 1000


def message_reconcile(*, message_id: int) -> str:
    """Look for an unknown message in VoIP.ms's history: sent, re-sent once, or still unknown."""
    message = Message.objects.filter(pk=message_id, status=MessageStatus.UNKNOWN).first()
    if message is None:
        return "not unknown"
    configuration = SmsConfiguration.objects.filter(pk=message.configuration_id).first()
    if configuration is None:
        return "no configuration"
    sent_around = message.last_attempt_at or message.created_at
    step = (message.route_plan or [{}])[
        min(message.route_index, len(message.route_plan or [{}]) - 1)
    ]
    did = str(step.get("did", message.did))
    dst = str(step.get("dst", message.remote))
    try:
        with voipms_client_for(configuration, read_timeout=30.0) as client:
            rows = client.get_messages(
                message.kind,
                **history_dates(sent_around),
                type=0,
                did=history_number(did),
                contact=history_number(dst),
                limit=200,
            )
    except VoipmsError as error:
        logger.warning("reconcile: VoIP.ms answered %s", error.code)
        return "voipms error"
    taken = set(
        Message.objects.filter(
            provider_account=configuration.username.lower(),
            kind=message.kind,
            direction=Direction.OUT,
            provider_id__in=[row.id for row in rows],
        ).values_list("provider_id", flat=True)
    )
    # Nearest in time first; a row another message already holds is an earlier identical text.
    for row in sorted(rows, key=lambda row: abs(row.date - sent_around)):
        if row.id in taken:
            continue
        if row.message == message.body and abs(row.date - sent_around) <= RECONCILE_WINDOW:
            changed = Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
                status=MessageStatus.SENT,
                provider_id=row.id,
                provider_account=configuration.username.lower(),
                sent_at=row.date,
                error_code="",
                error_message="",
            )
            DeliveryAttempt.objects.create(
                tenant_id=message.tenant_id, message=message, outcome="reconciled", code="found"
            )
            if changed:
                status_record(
                    message, status=MessageStatus.SENT, detail="Found in VoIP.ms's history."
                )
            return "sent"
    if timezone.now() - sent_around < timedelta(seconds=settings.SMS_UNKNOWN_GRACE_SECONDS):
        return "unknown"
    if message.resend_count >= 1:
        detail = "VoIP.ms never confirmed this message, even after one resend."
        changed = Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
            status=MessageStatus.FAILED, error_code="outcome_unknown", error_message=detail
        )
        if changed:
            status_record(
                message, status=MessageStatus.FAILED, code="outcome_unknown", detail=detail
            )
        return "failed"
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
            status=MessageStatus.QUEUED, resend_count=message.resend_count + 1, next_attempt_at=None
        )
        if changed:
            DeliveryAttempt.objects.create(
                tenant_id=message.tenant_id, message=message, outcome="resend", code="absent"
            )
            status_record(
                message,
                status=MessageStatus.QUEUED,
                code="absent",
                detail="Not in VoIP.ms's history: sent once more.",
            )
            enqueue("sms.deliver_message", message.pk)
    return "resent"


def carrier_status_update() -> int:
    """Settle sends of the last 48 hours from VoIP.ms's carrier status, per account and kind.

    One history call per account and kind (getSMS, getMMS). An answer as long as the limit may
    have left rows out: the sends still unseen are then asked for DID by DID, within the
    account's request rate, until the next run is due (no fixed number of rows).
    """
    deadline = time.monotonic() + settings.CARRIER_STATUS_INTERVAL_SECONDS
    since = timezone.now() - timedelta(hours=48)
    recent = Message.objects.filter(
        direction=Direction.OUT,
        status=MessageStatus.SENT,
        sent_at__gte=since,
        provider_id__isnull=False,
    ).values_list("pk", "kind", "provider_account", "provider_id", "configuration_id", "did")
    # (account, kind) -> provider id -> (message pk, DID); SMS and MMS ids are separate counters.
    wanted: dict[tuple[str, str], dict[int, tuple[int, str]]] = defaultdict(dict)
    configuration_of: dict[str, int] = {}
    for pk, kind, account, provider_id, configuration_id, did in recent:
        wanted[(account, kind)][provider_id] = (pk, did)
        configuration_of.setdefault(account, configuration_id)
    configurations = SmsConfiguration.objects.in_bulk(list(configuration_of.values()))
    window = {**history_dates(timezone.now(), days_before=2, days_after=0), "type": 0}
    delivered = 0
    for (account, kind), unseen in sorted(wanted.items()):
        configuration = configurations.get(configuration_of[account])
        if configuration is None:
            continue
        try:
            with voipms_client_for(configuration, read_timeout=30.0) as client:
                rows = client.get_messages(kind, **window, limit=HISTORY_LIMIT)
                delivered += _apply_carrier_status(rows, unseen)
                dids = sorted({did for _, did in unseen.values()})
                if len(rows) < HISTORY_LIMIT or not dids:
                    continue
                # The answer may have been cut short: ask for the rest DID by DID, within the
                # account's request rate, until the next run is due.
                for did in dids:
                    if not unseen or not _wait_for_request_slot(account, deadline):
                        break
                    rows = client.get_messages(
                        kind, **window, did=history_number(did), limit=HISTORY_LIMIT
                    )
                    delivered += _apply_carrier_status(rows, unseen)
        except VoipmsError as error:
            logger.warning("carrier status: VoIP.ms answered %s", error.code)
    return delivered


def _apply_carrier_status(rows: list[SmsRecord], unseen: dict[int, tuple[int, str]]) -> int:
    """Record the carrier status of the rows' sends; return how many are now settled.

    The raw text is kept on the message; a delivered or failed text settles its status.
    """
    settled = 0
    for row in rows:
        if row.id not in unseen or not row.carrier_status:
            continue
        pk, _ = unseen.pop(row.id)
        fields: dict[str, object] = {"carrier_status": row.carrier_status[:200]}
        state = row.carrier_state
        if state == "delivered":
            fields.update(status=MessageStatus.DELIVERED, delivered_at=timezone.now())
        elif state == "failed":
            fields.update(
                status=MessageStatus.FAILED,
                error_code="carrier_failed",
                error_message=f"The carrier reported: {row.carrier_status}"[:500],
            )
        settled += state != "sent"
        changed = Message.objects.filter(pk=pk, status=MessageStatus.SENT).update(**fields)
        if changed and state in ("delivered", "failed"):
            statuses_record_by_id(
                [pk],
                status=str(fields["status"]),
                code="carrier_failed" if state == "failed" else "",
                detail=f"The carrier reported: {row.carrier_status}",
            )
    return settled


def _wait_for_request_slot(account: str, deadline: float) -> bool:
    """Take the account's next request slot, waiting for it; False once the deadline is near."""
    wait = limits().reserve_request(account, settings.VOIPMS_REQUESTS_PER_SECOND)
    if time.monotonic() + wait > deadline:
        return False
    time.sleep(max(wait, 0))
    return True
