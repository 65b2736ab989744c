"""Build the VoIP.ms client of a configuration, with its decrypted credentials."""

from __future__ import annotations

from django.conf import settings

from sms.models import SmsConfiguration
from trunks.voipms.client import VoipmsClient


def voipms_client_for(configuration: SmsConfiguration, **options: float) -> VoipmsClient:
    """Return a VoIP.ms client signed in as the configuration's account."""
    return VoipmsClient(
        configuration.username,
        configuration.api_password,
        base_url=settings.VOIPMS_API_URL,
        **options,
    )
