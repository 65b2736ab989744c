"""English date formats: Django's, with the time zone's abbreviation after every time."""

from __future__ import annotations

# "Dec. 4, 2026, 9:05 a.m. EST": a time without its zone is ambiguous between the tenant's
# pages and the system pages, which show different zones.
DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
