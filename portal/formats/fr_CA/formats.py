"""French (Canada) date formats: Django's, with the time zone's abbreviation after every time."""

from __future__ import annotations

DATETIME_FORMAT = "j F Y, H\xa0\\h\xa0i T"  # 4 décembre 2026, 09 h 05 EST
SHORT_DATETIME_FORMAT = "Y-m-d H\xa0\\h\xa0i T"
