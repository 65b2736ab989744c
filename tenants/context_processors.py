from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from core.clock import zone_abbreviation, zone_name


def tenant(request: HttpRequest) -> dict[str, Any]:
    """Expose the acting tenant, and the zone the page shows times in, to templates."""
    name, abbreviation = zone_name(), zone_abbreviation()
    return {
        "acting_tenant": getattr(request, "tenant", None),
        "voipms_sandbox": settings.VOIPMS_SANDBOX,
        # "America/Toronto (EST)"; just "UTC" when the abbreviation is the name.
        "time_zone_label": name if abbreviation == name else f"{name} ({abbreviation})",
    }
