"""App configuration of the VoIP.ms sandbox."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VoipmsSandboxConfig(AppConfig):
    """Register the sandbox under the label voipms_sandbox."""

    name = "trunks.voipms.sandbox"
    label = "voipms_sandbox"
    verbose_name = _("VoIP.ms sandbox")
    default_auto_field = "django.db.models.BigAutoField"
