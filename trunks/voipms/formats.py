"""How VoIP.ms writes numbers and dates: its two number formats and its US Eastern clock.

VoIP.ms reads the getSMS/getMMS date filters, writes history rows and resets its daily sending
counters by US Eastern wall-clock time (DOMAIN.md §2). A DID's "number format" decides whether
sendSMS/sendMMS and the webhooks use 10 digits (NANPA) or +1 and 10 digits (E.164).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from trunks.numbers import (
    NUMBER_FORMAT_E164,
    NUMBER_FORMAT_NANPA,
    InvalidNumber,
    normalize_number,
    to_e164_format,
    to_nanpa,
)

VOIPMS_TIMEZONE = ZoneInfo("America/New_York")


def voipms_date(at: datetime | None = None) -> date:
    """Return the US Eastern calendar date of a moment (now by default), as VoIP.ms counts days."""
    return (at or timezone.now()).astimezone(VOIPMS_TIMEZONE).date()


def voipms_day(at: datetime | None = None) -> str:
    """Return `voipms_date` as YYYY-MM-DD, the key of a daily sending counter."""
    return voipms_date(at).isoformat()


def history_dates(around: datetime, *, days_before: int = 1, days_after: int = 1) -> dict:
    """Return the getSMS/getMMS `date_from`/`date_to` filters for days around a moment."""
    day = voipms_date(around)
    return {
        "date_from": day - timedelta(days=days_before),
        "date_to": day + timedelta(days=days_after),
    }


def format_for_voipms(e164: str, number_format: str) -> str:
    """Return the number as the DID's VoIP.ms number format ("nanpa" or "e164") expects."""
    if number_format == NUMBER_FORMAT_NANPA:
        return to_nanpa(e164)
    if number_format == NUMBER_FORMAT_E164:
        return to_e164_format(e164)
    raise ValueError(f'number format must be "nanpa" or "e164", not "{number_format}"')


def history_number(e164: str) -> str:
    """Return a number as getSMS/getMMS filter on it (`did`, `contact`): 10 digits for NANP."""
    try:
        return normalize_number(e164).removeprefix("+1")
    except InvalidNumber:
        return e164
