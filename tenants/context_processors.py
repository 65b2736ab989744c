from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def tenant(request: HttpRequest) -> dict[str, Any]:
    """Expose the acting tenant to templates."""
    return {
        "acting_tenant": getattr(request, "tenant", None),
        "voipms_sandbox": settings.VOIPMS_SANDBOX,
    }
