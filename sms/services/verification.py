"""Check a configuration against VoIP.ms: credentials, IP allow-list, DIDs and webhooks."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from sms.models import SmsConfiguration, VerificationStatus
from sms.providers import voipms_client_for
from tenants.services import audit_record
from trunks.models import PoolRange
from trunks.numbers import InvalidNumber, number_to_int
from trunks.voipms.errors import VoipmsError

logger = logging.getLogger(__name__)

API_MENU = "Main Menu > SOAP and REST/JSON API"
LISTED = 20

PLAIN_WORDS = {
    "invalid_credentials": "VoIP.ms rejected the username or API password. Check the e-mail "
    f"you sign in to VoIP.ms with, and the API password set under {API_MENU}.",
    "missing_credentials": "VoIP.ms rejected the username or API password. Check the e-mail "
    f"you sign in to VoIP.ms with, and the API password set under {API_MENU}.",
    "api_not_enabled": "The API is switched off for this VoIP.ms account. "
    f"Enable it under {API_MENU}.",
}


def _problem(error: VoipmsError, ip: str | None) -> str:
    if error.code == "ip_not_enabled":
        where = f"this portal's IP address {ip}" if ip else "this portal's IP address"
        return (
            f"VoIP.ms refuses API calls from {where}. Add it to the allowed IP addresses "
            f"under {API_MENU}."
        )
    if error.code in PLAIN_WORDS:
        return PLAIN_WORDS[error.code]
    if not error.permanent:
        return f"VoIP.ms did not answer properly ({error.code}). Try again in a minute."
    return f"VoIP.ms answered {error.code}: {error.message}"


def _pool_numbers(configuration: SmsConfiguration, limit: int = 100_000) -> set[int]:
    numbers: set[int] = set()
    ranges = PoolRange.objects.for_tenant(configuration.tenant).filter(trunk=configuration.trunk)
    for pool_range in ranges:
        numbers.update(range(pool_range.start, min(pool_range.end, pool_range.start + limit) + 1))
    return numbers


def _finish(configuration: SmsConfiguration, status: str, result: dict[str, Any]) -> dict[str, Any]:
    result["status"] = status
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        verification_status=status, verification_result=result, verified_at=timezone.now()
    )
    audit_record(
        actor=None,
        action="verified",
        tenant=configuration.tenant,
        obj=configuration,
        detail={"status": status},
    )
    return result


def sms_configuration_verify(*, configuration: SmsConfiguration) -> dict[str, Any]:
    """Ask VoIP.ms about the configuration's account and store a result in plain words."""
    result: dict[str, Any] = {"ip": None, "problems": [], "warnings": [], "dids": []}
    with voipms_client_for(configuration, read_timeout=30.0) as client:
        try:
            result["ip"] = client.get_ip()
        except VoipmsError as error:
            result["problems"].append(_problem(error, None))
            return _finish(configuration, VerificationStatus.FAILED, result)
        try:
            dids = client.get_dids_info()
        except VoipmsError as error:
            result["problems"].append(_problem(error, result["ip"]))
            return _finish(configuration, VerificationStatus.FAILED, result)

    pool = _pool_numbers(configuration)
    account: dict[int, Any] = {}
    for info in dids:
        try:
            account[number_to_int(info.did)] = info
        except InvalidNumber:
            continue
    in_pool = sorted(number for number in account if number in pool)
    result["dids"] = [
        {
            "did": f"+{number}",
            "sms_enabled": account[number].sms_enabled,
            "mms_available": account[number].mms_available,
            "webhook_matches": account[number].webhook == configuration.webhook_url,
        }
        for number in in_pool
    ]
    result["account_did_count"] = len(account)
    no_sms = [f"+{n}" for n in in_pool if not account[n].sms_enabled]
    if no_sms:
        result["warnings"].append(
            "SMS is not enabled at VoIP.ms on "
            + ", ".join(no_sms[:LISTED])
            + (f" and {len(no_sms) - LISTED} more" if len(no_sms) > LISTED else "")
            + ": DID Numbers > Manage DIDs > Edit > Message Service (SMS/MMS)."
        )
    other_hook = [f"+{n}" for n in in_pool if account[n].webhook != configuration.webhook_url]
    if other_hook:
        result["warnings"].append(
            "The SMS/MMS Webhook URL at VoIP.ms is not this configuration's URL on "
            + ", ".join(other_hook[:LISTED])
            + (f" and {len(other_hook) - LISTED} more" if len(other_hook) > LISTED else "")
            + "."
        )
    missing = sorted(pool - set(account))
    if missing:
        result["warnings"].append(
            f"{len(missing)} pool number(s) are not on this VoIP.ms account: "
            + ", ".join(f"+{n}" for n in missing[:LISTED])
            + (" …" if len(missing) > LISTED else "")
        )
    status = VerificationStatus.WARNING if result["warnings"] else VerificationStatus.OK
    return _finish(configuration, status, result)
