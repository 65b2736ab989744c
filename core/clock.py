"""One clock: how every page shows a time and every export writes one.

Pages show times in the active time zone (the tenant's on tenant pages, the user's own on
system pages; `tenants.middleware.TimeZoneMiddleware` activates it) with the zone's
abbreviation, through the DATETIME_FORMAT of `portal/formats`. Exports write ISO 8601 with the
offset, in the same zone, so a spreadsheet and a person read the same instant.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from django.utils import formats, timezone


def time_display(value: datetime | None, zone: tzinfo | None = None) -> str:
    """Return the time as pages show it, in the active zone (or `zone`), with its abbreviation."""
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(value, zone), "DATETIME_FORMAT")


def time_export(value: datetime | None, zone: tzinfo | None = None) -> str:
    """Return the time in ISO 8601 with its offset, in the active zone (or `zone`)."""
    if value is None:
        return ""
    return timezone.localtime(value, zone).isoformat(timespec="seconds")


def zone_abbreviation(zone: tzinfo | None = None, at: datetime | None = None) -> str:
    """Return the zone's abbreviation now (or at `at`), e.g. EST or EDT for America/Toronto."""
    return timezone.localtime(at or timezone.now(), zone).tzname() or ""


def zone_name(zone: tzinfo | None = None) -> str:
    """Return the IANA name of the zone (the active one by default), e.g. America/Toronto."""
    return str(zone or timezone.get_current_timezone())
