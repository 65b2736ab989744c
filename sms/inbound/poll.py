"""Poll VoIP.ms for received messages that no webhook brought, once per VoIP.ms account."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from core.tasks import enqueue
from sms.inbound.process import inbound_message_ingest
from sms.models import SmsConfiguration, Source
from sms.providers import voipms_client_for
from tenants.access import messaging_allowed, messaging_refusal
from trunks.numbers import normalize_number
from trunks.selectors import did_owner_tenant_id
from trunks.voipms.client import SmsRecord
from trunks.voipms.errors import VoipmsError
from trunks.voipms.formats import voipms_date
from trunks.voipms.webhooks import MESSAGE_RECEIVED, InboundMessage, clean_text

logger = logging.getLogger(__name__)

SOURCE_POLL = "poll"
RECEIVED = 1


@dataclass(frozen=True)
class PollResult:
    """What one poll of a VoIP.ms account found."""

    seen: int = 0
    recovered: int = 0
    duplicates: int = 0
    skipped: int = 0
    error: str = ""


def _pollable() -> QuerySet[SmsConfiguration]:
    return SmsConfiguration.objects.filter(
        messaging_allowed("tenant__"), enabled=True, poll_enabled=True
    )


def poll_accounts_enqueue() -> list[int]:
    """Enqueue one poll per distinct VoIP.ms account and return the configurations chosen."""
    chosen: dict[str, int] = {}
    rows = (
        _pollable()
        .annotate(account=Lower("username"))
        .order_by("account", "pk")
        .values_list("account", "pk")
    )
    for account, configuration_id in rows:
        # Every configuration of an account sees the same history: polling it once is enough.
        chosen.setdefault(account, configuration_id)
    for configuration_id in chosen.values():
        enqueue("sms.poll_voipms_account", configuration_id)
    return list(chosen.values())


def _history(configuration: SmsConfiguration) -> tuple[list[SmsRecord], VoipmsError | None]:
    """Return the received SMS and MMS of yesterday and today, and the first error met."""
    today = voipms_date()
    window = {
        "date_from": today - timedelta(days=1),
        "date_to": today,
        "type": RECEIVED,
        # VoIP.ms answers 50 rows unless asked for more (DOMAIN.md §2).
        "limit": int(getattr(settings, "SMS_POLL_LIMIT", 1000)),
    }
    records: list[SmsRecord] = []
    with voipms_client_for(configuration) as client:
        for kind in ("sms", "mms"):
            try:
                rows = client.get_messages(kind, **window)
            except VoipmsError as error:
                return records, error
            if len(rows) >= window["limit"]:
                logger.warning(
                    "Poll of configuration %s hit the %d-row limit", configuration.pk, len(rows)
                )
            records.extend(rows)
    return records, None


def _inbound(record: SmsRecord) -> InboundMessage:
    """Return a history row as the message a webhook would have brought."""
    return InboundMessage(
        kind=record.kind,
        provider_id=record.id,
        from_number=normalize_number(record.contact),
        to_number=normalize_number(record.did),
        text=clean_text(record.message),
        media_urls=record.media,
        received_at=record.date,
        received_at_raw=record.date.isoformat(),
        event_type=MESSAGE_RECEIVED,
        source=SOURCE_POLL,
    )


class _Owners:
    """Find, among the configurations of one account, the one whose tenant owns a DID."""

    def __init__(self, polled: SmsConfiguration) -> None:
        self.polled = polled
        # Enabled configurations first, so a tenant's working configuration wins over a spare.
        self.candidates = list(
            SmsConfiguration.objects.select_related("tenant", "trunk")
            .filter(username__iexact=polled.username)
            .order_by("-enabled", "pk")
        )
        self.cache: dict[str, SmsConfiguration | None] = {}

    def configuration_for(self, did: str) -> SmsConfiguration | None:
        """Return the configuration to file a message to `did` under, or None to skip it."""
        if did not in self.cache:
            self.cache[did] = self._find(did)
        return self.cache[did]

    def _find(self, did: str) -> SmsConfiguration | None:
        owners: dict[int, int | None] = {}
        for candidate in self.candidates:
            if candidate.trunk_id not in owners:
                owners[candidate.trunk_id] = did_owner_tenant_id(
                    trunk=candidate.trunk_id, number=did
                )
            if owners[candidate.trunk_id] != candidate.tenant_id:
                continue
            tenant = candidate.tenant
            if candidate.enabled and not messaging_refusal(tenant):
                return candidate
            # The DID's tenant switched messaging off: the message is his, so it is not filed
            # under another tenant's configuration either.
            return None
        # Nobody's pool holds it: keep it where a webhook to this account would have put it,
        # unrouted for "DID not in pool".
        return self.polled


def poll_account(*, configuration_id: int) -> PollResult | None:
    """Fetch the account's received messages of yesterday and today and ingest the unknown ones."""
    configuration = (
        _pollable().select_related("tenant", "trunk").filter(pk=configuration_id).first()
    )
    if configuration is None:
        return None
    # The HTTP calls run outside any transaction (ingest opens its own, per message).
    records, error = _history(configuration)
    owners = _Owners(configuration)
    recovered = duplicates = skipped = 0
    for record in records:
        inbound = _inbound(record)
        owner = owners.configuration_for(inbound.to_number)
        if owner is None:
            skipped += 1
            continue
        try:
            result = inbound_message_ingest(
                configuration=owner, inbound=inbound, source=Source.POLL
            )
        except Exception:
            # One row that breaks ingest must not block every later poll of the account.
            logger.exception("Poll could not ingest %s %s", record.kind, record.id)
            skipped += 1
            continue
        if result.duplicate:
            duplicates += 1
        else:
            recovered += 1
    if recovered:
        logger.info("Poll of configuration %s recovered %d messages", configuration.pk, recovered)
    message = ""
    if error is not None:
        logger.warning("Poll of configuration %s failed with %s", configuration.pk, error.code)
        message = f"Polling VoIP.ms failed: {error}"[:500]
        SmsConfiguration.objects.filter(pk=configuration.pk).update(
            last_error=message, last_error_at=timezone.now()
        )
    return PollResult(
        seen=len(records),
        recovered=recovered,
        duplicates=duplicates,
        skipped=skipped,
        error=message,
    )
