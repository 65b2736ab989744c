"""Change the sandbox: accounts, DIDs, recorded sends, and messages pushed to the portal."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus, urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
import requests
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import F, Max
from django.utils import timezone

from core.errors import ApplicationError
from tenants.models import Tenant
from trunks.voipms.sandbox.models import (
    FIRST_PROVIDER_ID,
    FaultMode,
    MessageKind,
    MessageType,
    SandboxAccount,
    SandboxCounter,
    SandboxDid,
    SandboxMessage,
    Via,
)

logger = logging.getLogger("trunks.voipms.sandbox")

# VoIP.ms reads date filters and writes wall-clock times in US Eastern (DOMAIN.md §2).
EASTERN = ZoneInfo("America/New_York")
USER_AGENT = "VoIP.ms-Sandbox/1.0 (Seed SMS Portal)"
EMIT_TIMEOUT = (5.0, 15.0)
MAX_MEDIA = 3
MAX_MMS_CHARS = 2048
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - VoIP.ms's allow-list spelling of "any address"

_NANP = re.compile(r"(?:\+1|1)?([2-9][0-9]{2}[2-9][0-9]{6})")
_SHORT_CODE = re.compile(r"[0-9]{5,6}")
_PLACEHOLDER = re.compile(r"\{(FROM|TO|MESSAGE|ID|TIMESTAMP|MEDIA)\}")
_NANP_REGIONS = frozenset({"US", "CA"})


class SandboxError(ApplicationError):
    """Raise when a sandbox request cannot be carried out."""

    code = "sandbox_invalid"


class SandboxLimitReached(SandboxError):
    """Raise when an account has used its daily send cap."""

    code = "limit_reached"


def nanp_digits(raw: str) -> str | None:
    """Return the 10 digits of a US or Canadian number given as VoIP.ms accepts it, or None."""
    # VoIP.ms takes 10 digits, or 11 starting with 1, or +1 and 10 digits; nothing else.
    match = _NANP.fullmatch(raw.strip())
    if match is None:
        return None
    national = match[1]
    number = phonenumbers.parse(f"+1{national}", None)
    if phonenumbers.region_code_for_number(number) not in _NANP_REGIONS:
        return None
    return national


def now_in_seconds() -> dt.datetime:
    """Return the current time cut to whole seconds, the precision VoIP.ms keeps."""
    return timezone.now().replace(microsecond=0)


def eastern_day(moment: dt.datetime) -> dt.date:
    """Return the US Eastern calendar day the moment falls on (VoIP.ms's daily cap resets then)."""
    return moment.astimezone(EASTERN).date()


def _validated(instance: models.Model, *, exclude: Sequence[str] = ()) -> None:
    """Validate a model instance, raising SandboxError with every message."""
    try:
        instance.full_clean(exclude=list(exclude))
    except ValidationError as error:
        details = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
        )
        raise SandboxError(details) from None


def _did_digits(did: str) -> str:
    """Return a DID as 10 digits, or raise SandboxError."""
    digits = nanp_digits(did)
    if digits is None:
        raise SandboxError(f'"{did}" is not a US or Canadian 10-digit number')
    return digits


def sandbox_did_get(*, did: str) -> SandboxDid:
    """Return the sandbox DID written in any VoIP.ms form, or raise SandboxError."""
    digits = _did_digits(did)
    found = SandboxDid.objects.select_related("account").filter(did=digits).first()
    if found is None:
        raise SandboxError(f"DID {digits} is not on any sandbox account")
    return found


def sandbox_account_ensure(
    *,
    username: str,
    api_password: str | None,
    dids: Sequence[str] = (),
    api_enabled: bool | None = None,
    ip_allowlist: str | None = None,
    daily_send_cap: int | None = None,
    latency_ms: int | None = None,
    fault_mode: str | None = None,
    fault_rate: float | None = None,
    timeout_sleep_s: float | None = None,
    delivery_delay_s: int | None = None,
    tenant: Tenant | None = None,
) -> SandboxAccount:
    """Create or update an account and attach the DIDs; None leaves a setting as it is."""
    username = username.strip().lower()
    numbers = [_did_digits(did) for did in dids]
    changes: dict[str, Any] = {
        name: value
        for name, value in {
            "api_enabled": api_enabled,
            "ip_allowlist": ip_allowlist,
            "daily_send_cap": daily_send_cap,
            "latency_ms": latency_ms,
            "fault_mode": fault_mode,
            "fault_rate": fault_rate,
            "timeout_sleep_s": timeout_sleep_s,
            "delivery_delay_s": delivery_delay_s,
            "tenant": tenant,
        }.items()
        if value is not None
    }
    if api_password:
        changes["api_password"] = api_password
    with transaction.atomic():
        account = SandboxAccount.objects.select_for_update().filter(username=username).first()
        if account is None:
            if not api_password:
                raise SandboxError("A new sandbox account needs an API password")
            account = SandboxAccount(username=username, **changes)
            _validated(account)
            account.save()
        elif changes:
            for name, value in changes.items():
                setattr(account, name, value)
            _validated(account, exclude=["username"])
            account.save(update_fields=list(changes))
        for number in numbers:
            existing = SandboxDid.objects.filter(did=number).first()
            if existing is None:
                SandboxDid.objects.create(account=account, did=number)
            elif existing.account_id != account.pk:
                raise SandboxError(f"DID {number} belongs to another sandbox account")
    logger.info("Sandbox account %s ensured with %d DIDs", account.pk, len(numbers))
    return account


def sandbox_did_configure(
    *,
    did: str,
    webhook_url: str | None = None,
    webhook_enabled: bool | None = None,
    callback_url: str | None = None,
    callback_enabled: bool | None = None,
    callback_retry: bool | None = None,
    number_format: str | None = None,
    sms_available: bool | None = None,
    sms_enabled: bool | None = None,
    mms_available: bool | None = None,
    email_address: str | None = None,
    email_enabled: bool | None = None,
    forward_to: str | None = None,
    forward_enabled: bool | None = None,
) -> SandboxDid:
    """Change the messaging settings of a DID; None leaves a setting as it is."""
    changes: dict[str, Any] = {
        name: value
        for name, value in {
            "webhook_url": webhook_url.strip() if webhook_url is not None else None,
            "webhook_enabled": webhook_enabled,
            "callback_url": callback_url.strip() if callback_url is not None else None,
            "callback_enabled": callback_enabled,
            "callback_retry": callback_retry,
            "number_format": number_format,
            "sms_available": sms_available,
            "sms_enabled": sms_enabled,
            "mms_available": mms_available,
            "email_address": email_address,
            "email_enabled": email_enabled,
            "forward_to": forward_to,
            "forward_enabled": forward_enabled,
        }.items()
        if value is not None
    }
    sandbox_did = sandbox_did_get(did=did)
    if changes:
        for name, value in changes.items():
            setattr(sandbox_did, name, value)
        _validated(sandbox_did, exclude=["account", "did"])
        sandbox_did.save(update_fields=list(changes))
    return sandbox_did


def sandbox_account_claim(
    *, username: str, tenant: Tenant, api_password: str | None = None
) -> SandboxAccount | None:
    """Give the account with this login to the tenant whose configuration uses it.

    An account nobody owns is claimed; one another tenant owns is left alone (None). With an API
    password, a missing account is created for the tenant, as VoIP.ms would have it already.
    """
    username = username.strip().lower()
    with transaction.atomic():
        account = SandboxAccount.objects.select_for_update().filter(username=username).first()
        if account is None:
            if not api_password:
                return None
            account = SandboxAccount(username=username, api_password=api_password, tenant=tenant)
            _validated(account)
            account.save()
            logger.info("Sandbox account %s created for tenant %s", account.pk, tenant.pk)
            return account
        if account.tenant_id is None:
            account.tenant = tenant
            account.save(update_fields=["tenant"])
            logger.info("Sandbox account %s claimed by tenant %s", account.pk, tenant.pk)
        return account if account.tenant_id == tenant.pk else None


def sandbox_did_add(*, account: SandboxAccount, did: str, webhook_url: str = "") -> SandboxDid:
    """Add a DID to an account, or raise SandboxError when it is no DID or already taken."""
    digits = _did_digits(did)
    with transaction.atomic():
        if SandboxDid.objects.filter(did=digits).exists():
            raise SandboxError(f"DID {digits} is already on a sandbox account")
        sandbox_did = SandboxDid(account=account, did=digits, webhook_url=webhook_url.strip())
        _validated(sandbox_did, exclude=["account"])
        sandbox_did.save()
    logger.info("Sandbox DID %s added to account %s", sandbox_did.pk, account.pk)
    return sandbox_did


def sandbox_did_remove(*, sandbox_did: SandboxDid) -> None:
    """Remove a DID from its account; the messages it carried stay in the account's history."""
    logger.info("Sandbox DID %s removed from account %s", sandbox_did.pk, sandbox_did.account_id)
    sandbox_did.delete()


def sandbox_account_reset_faults(*, username: str | None = None) -> int:
    """Switch off latency and faults of one account, or of all; return how many changed."""
    accounts = SandboxAccount.objects.all()
    if username is not None:
        accounts = accounts.filter(username=username.strip().lower())
    return accounts.update(
        latency_ms=0, fault_mode=FaultMode.NONE, fault_rate=1.0, timeout_sleep_s=60.0
    )


def _provider_id_next(kind: str) -> int:
    """Return the next id of the kind's counter; call inside a transaction."""
    # The row lock serialises allocation across processes on PostgreSQL; SQLite's IMMEDIATE
    # transactions serialise every writer anyway. Every send takes an id: one statement.
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            " ".join(
                [
                    f"UPDATE {quote(SandboxCounter._meta.db_table)}",
                    "SET last_id = last_id + 1 WHERE kind = %s RETURNING last_id",
                ]
            ),
            [kind],
        )
        row = cursor.fetchone()
    if row is not None:
        return int(row[0])
    # A missing counter (first use, or a flushed test database) starts above any id in use.
    counter, _ = SandboxCounter.objects.select_for_update().get_or_create(
        kind=kind,
        defaults={
            "last_id": lambda: max(
                FIRST_PROVIDER_ID - 1,
                SandboxMessage.objects.filter(kind=kind).aggregate(top=Max("provider_id"))["top"]
                or 0,
            )
        },
    )
    SandboxCounter.objects.filter(pk=kind).update(last_id=F("last_id") + 1)
    return counter.last_id + 1


def sandbox_message_send(
    *,
    account: SandboxAccount,
    kind: str,
    did: str,
    contact: str,
    message: str,
    media: Sequence[str] = (),
) -> SandboxMessage:
    """Record a message the portal sent, within the account's daily cap.

    VoIP.ms takes many sends of one account at once. The cap is a counter on the account row
    and the message id a counter row, so every send locks both; on PostgreSQL the counting, the
    id and the INSERT are one statement (`_send_statement`), which holds the locks for that
    statement only and lets hundreds of sends a second through. The ORM path below does the same
    in a transaction; it serves SQLite and the first send of a kind, when its counter row is
    missing.
    """
    now = now_in_seconds()
    row = {
        "account_id": account.pk,
        "kind": kind,
        "type": MessageType.SENT,
        "did": did,
        "contact": contact,
        "message": message,
        "media": list(media),
        "created_at": now,
    }
    day = eastern_day(now)
    if connection.vendor == "postgresql":
        sent = _send_statement(row, day=day)
        if sent is not None:
            return sent
    return _send_in_transaction(row, day=day)


def _send_in_transaction(row: dict[str, Any], *, day: dt.date) -> SandboxMessage:
    """Count, number and insert one send through the ORM, in one transaction."""
    with transaction.atomic():
        counted = (
            SandboxAccount.objects.filter(pk=row["account_id"])
            .alias(
                sent=models.Case(
                    models.When(sends_day=day, then=F("sends_today")),
                    default=models.Value(0),
                )
            )
            .filter(sent__lt=F("daily_send_cap"))
            .update(sends_today=F("sent") + 1, sends_day=day)
        )
        if not counted:
            cap = SandboxAccount.objects.values_list("daily_send_cap", flat=True).get(
                pk=row["account_id"]
            )
            raise SandboxLimitReached(f"The daily limit of {cap} messages has been reached")
        return SandboxMessage.objects.create(provider_id=_provider_id_next(row["kind"]), **row)


_CASTS = {"type": "smallint", "media": "jsonb", "created_at": "timestamptz"}


def _send_statement(row: dict[str, Any], *, day: dt.date) -> SandboxMessage | None:
    """Count, number and insert one send in one statement; None to take the ORM path."""
    quote = connection.ops.quote_name
    account_table = quote(SandboxAccount._meta.db_table)
    counter_table = quote(SandboxCounter._meta.db_table)
    message_table = quote(SandboxMessage._meta.db_table)
    fields = [name for name in row if name != "account_id"]
    columns = ", ".join(quote(name) for name in ("provider_id", "account_id", *fields))
    values = ", ".join(f"%({name})s::{_CASTS.get(name, 'text')}" for name in fields)
    sql = " ".join(
        [
            f"WITH counted AS (UPDATE {account_table}",
            "SET sends_today = CASE WHEN sends_day = %(day)s THEN sends_today + 1 ELSE 1 END,",
            "sends_day = %(day)s WHERE id = %(account_id)s",
            "AND CASE WHEN sends_day = %(day)s THEN sends_today ELSE 0 END < daily_send_cap",
            "AND EXISTS (SELECT 1",
            f"FROM {counter_table} WHERE kind = %(kind)s) RETURNING id),",
            f"numbered AS (UPDATE {counter_table}",
            "SET last_id = last_id + 1",
            "WHERE kind = %(kind)s AND EXISTS (SELECT 1 FROM counted) RETURNING last_id)",
            f"INSERT INTO {message_table} ({columns}, via, delivered_to_portal, portal_error)",
            f"SELECT numbered.last_id, counted.id, {values}, '', false, ''",
            "FROM counted CROSS JOIN numbered RETURNING id, provider_id",
        ]
    )
    params = {**row, "type": int(row["type"]), "media": json.dumps(row["media"]), "day": day}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    if inserted is None:
        # The cap is reached or the kind has no counter yet: nothing was written, and the ORM
        # path says which (or creates the counter).
        return None
    message = SandboxMessage(id=inserted[0], provider_id=inserted[1], **row)
    message._state.adding = False
    message._state.db = connection.alias
    return message


def sandbox_outbox(
    *, did: str | None = None, contact: str | None = None
) -> models.QuerySet[SandboxMessage]:
    """Return what the portal sent through the sandbox API, oldest first."""
    messages = SandboxMessage.objects.filter(type=MessageType.SENT)
    if did is not None:
        messages = messages.filter(did=_did_digits(did))
    if contact is not None:
        messages = messages.filter(contact=nanp_digits(contact) or contact.strip())
    return messages.order_by("created_at", "kind", "provider_id")


# Inbound messages ---------------------------------------------------------------------------


def sender_digits(from_number: str) -> str:
    """Return the sender as 10 digits, or a short code as given, or raise SandboxError."""
    digits = nanp_digits(from_number)
    if digits is not None:
        return digits
    if _SHORT_CODE.fullmatch(from_number.strip()):
        return from_number.strip()
    raise SandboxError(f'"{from_number}" is not a US or Canadian number or a short code')


def webhook_body(message: SandboxMessage, sandbox_did: SandboxDid) -> dict[str, Any]:
    """Return the JSON webhook VoIP.ms posts for a received message (DOMAIN.md §3)."""
    # Key order as captured from production.
    received_at = message.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return {
        "data": {
            "id": message.provider_id,
            "payload": {
                "id": message.provider_id,
                "to": [
                    {
                        "status": "webhook_delivered",
                        "phone_number": sandbox_did.formatted(message.did),
                    }
                ],
                "from": {"phone_number": sandbox_did.formatted(message.contact)},
                "text": message.message,
                "type": message.kind.upper(),
                "media": [{"url": url} for url in message.media],
                "received_at": received_at,
                "record_type": "message",
            },
            "event_type": "message.received",
            "record_type": "event",
        }
    }


def callback_url(message: SandboxMessage, sandbox_did: SandboxDid) -> str:
    """Return the DID's URL callback template filled in for a received message."""
    values = {
        "FROM": sandbox_did.formatted(message.contact),
        "TO": sandbox_did.formatted(message.did),
        "MESSAGE": message.message,
        "ID": str(message.provider_id),
        "TIMESTAMP": message.created_at.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S"),
        "MEDIA": ",".join(message.media),
    }
    # Values arrive form-encoded: a space is "+", and "+", "/", "&" are %-escaped (DOMAIN.md §3).
    return _PLACEHOLDER.sub(
        lambda match: quote_plus(values[match[1]], safe=""), sandbox_did.callback_url
    )


def _is_success(response: requests.Response) -> bool:
    """Tell whether the portal acknowledged a push with a 2xx status."""
    return 200 <= response.status_code < 300


def _push_webhook(message: SandboxMessage, sandbox_did: SandboxDid) -> tuple[int | None, str]:
    """POST the JSON webhook and return the HTTP status and a problem, if any."""
    if not sandbox_did.webhook_url or not sandbox_did.webhook_enabled:
        return None, "The DID has no enabled SMS/MMS webhook URL; nothing was pushed"
    body = json.dumps(webhook_body(message, sandbox_did), separators=(",", ":"))
    try:
        response = requests.post(
            sandbox_did.webhook_url,
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            timeout=EMIT_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        # The exception text would carry the URL and its secret token: name the failure only.
        return None, f"The webhook URL could not be reached ({type(exc).__name__})"
    problem = "" if _is_success(response) else f"The portal answered HTTP {response.status_code}"
    return response.status_code, problem


def _push_callback(message: SandboxMessage, sandbox_did: SandboxDid) -> tuple[int | None, str]:
    """GET the URL callback and return the HTTP status and a problem, if any."""
    if not sandbox_did.callback_url or not sandbox_did.callback_enabled:
        return None, "The DID has no enabled URL callback; nothing was pushed"
    try:
        response = requests.get(
            callback_url(message, sandbox_did),
            headers={"User-Agent": USER_AGENT},
            timeout=EMIT_TIMEOUT,
        )
    except requests.RequestException as exc:
        return None, f"The callback URL could not be reached ({type(exc).__name__})"
    if not _is_success(response):
        return response.status_code, f"The portal answered HTTP {response.status_code}"
    if sandbox_did.callback_retry and response.text != "ok":
        # With retry on, VoIP.ms repeats the callback until the body is exactly "ok" (DOMAIN.md §3).
        return response.status_code, 'The portal did not answer exactly "ok"; VoIP.ms would retry'
    return response.status_code, ""


def sandbox_inbound_emit(
    *,
    did: str,
    from_number: str,
    text: str = "",
    media_urls: Sequence[str] = (),
    via: str = Via.WEBHOOK,
) -> SandboxMessage:
    """Record a message a handset sent to a DID and push it to the portal as VoIP.ms would."""
    if via not in Via.values:
        raise SandboxError(f'Deliver via "webhook" or "callback", not "{via}"')
    sandbox_did = sandbox_did_get(did=did)
    contact = sender_digits(from_number)
    media = [url.strip() for url in media_urls if url.strip()]
    if len(media) > MAX_MEDIA:
        raise SandboxError(f"An MMS carries at most {MAX_MEDIA} media")
    for url in media:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SandboxError(f'Media must be a public http(s) URL, not "{url[:80]}"')
    if not text and not media:
        raise SandboxError("Write a text or attach a media URL")
    if len(text) > MAX_MMS_CHARS:
        raise SandboxError(f"A message holds at most {MAX_MMS_CHARS} characters")
    kind = MessageKind.MMS if media else MessageKind.SMS
    with transaction.atomic():
        message = SandboxMessage.objects.create(
            account=sandbox_did.account,
            kind=kind,
            provider_id=_provider_id_next(kind),
            type=MessageType.RECEIVED,
            did=sandbox_did.did,
            contact=contact,
            message=text,
            media=media,
            created_at=now_in_seconds(),
            via=via,
        )
    # The HTTP call runs outside any transaction: the portal may take its time answering.
    push = _push_webhook if via == Via.WEBHOOK else _push_callback
    status, problem = push(message, sandbox_did)
    message.portal_http_status = status
    message.portal_error = problem[:300]
    message.delivered_to_portal = status is not None and not problem
    SandboxMessage.objects.filter(pk=message.pk).update(
        portal_http_status=message.portal_http_status,
        portal_error=message.portal_error,
        delivered_to_portal=message.delivered_to_portal,
    )
    logger.info(
        "Sandbox pushed %s %s via %s: HTTP %s",
        message.kind.upper(),
        message.provider_id,
        via,
        status if status is not None else "none",
    )
    return message
