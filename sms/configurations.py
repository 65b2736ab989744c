"""SMS/MMS configurations: create, change, rotate the webhook, verify against VoIP.ms."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError, Conflict
from core.tasks import enqueue
from sms.models import (
    CredentialsStatus,
    NumberFormat,
    SmsConfiguration,
    VerificationStatus,
    webhook_token_digest,
)
from sms.providers import voipms_client_for
from tenants.access import messaging_refusal
from tenants.models import Tenant, User
from tenants.services import audit_record, audit_secret_changed
from trunks.models import Brand, PoolRange, Trunk
from trunks.numbers import InvalidNumber, number_to_int
from trunks.voipms.client import VoipmsClient
from trunks.voipms.errors import VoipmsError
from trunks.voipms.formats import voipms_date

EDITABLE_FIELDS = (
    "name",
    "trunk",
    "username",
    "number_format",
    "channel",
    "long_message_policy",
    "prepend_plus",
    "daily_send_limit",
    "enabled",
    "poll_enabled",
)


def _new_token() -> str:
    # 32 random bytes: 256 bits, URL-safe.
    return secrets.token_urlsafe(32)


def _check_trunk(*, tenant: Tenant, trunk: Trunk) -> None:
    if trunk.brand != Brand.VOIPMS:
        raise ApplicationError(_("Choose a VoIP.ms trunk."), code="trunk_not_voipms", field="trunk")
    if not Trunk.objects.available_to(tenant).filter(pk=trunk.pk).exists():
        raise ApplicationError(
            _("Choose a trunk assigned to this tenant."), code="trunk_not_assigned", field="trunk"
        )


def _sandbox_claim(configuration: SmsConfiguration) -> None:
    """Give the sandbox account the configuration signs in to its tenant, if nobody owns it."""
    if not settings.VOIPMS_SANDBOX or not apps.is_installed("trunks.voipms.sandbox"):
        return
    from trunks.voipms.sandbox.services import sandbox_account_claim

    sandbox_account_claim(username=configuration.username, tenant=configuration.tenant)


def _save(configuration: SmsConfiguration) -> None:
    configuration.full_clean(exclude=["tenant"], validate_unique=False)
    clash = (
        SmsConfiguration.objects.for_tenant(configuration.tenant)
        .filter(name=configuration.name)
        .exclude(pk=configuration.pk)
        .exists()
    )
    if clash:
        raise ApplicationError(
            _("A configuration named %(name)r exists already.") % {"name": configuration.name},
            code="name_taken",
            field="name",
        )
    try:
        with transaction.atomic():
            configuration.save()
    except IntegrityError as error:
        raise Conflict(_("The configuration could not be saved; try again.")) from error


@transaction.atomic
def sms_configuration_create(
    *, tenant: Tenant, actor: User | None, api_password: str, **fields: Any
) -> SmsConfiguration:
    """Create a configuration with a fresh webhook URL."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    if not api_password:
        raise ApplicationError(
            _("Enter the VoIP.ms API password."), code="required", field="api_password"
        )
    configuration = SmsConfiguration(tenant=tenant, api_password=api_password, **fields)
    _check_trunk(tenant=tenant, trunk=configuration.trunk)
    token = _new_token()
    configuration.webhook_token = token
    configuration.webhook_token_digest = webhook_token_digest(token)
    _credentials_check_mark(configuration)
    _save(configuration)
    _sandbox_claim(configuration)
    _credentials_check_enqueue(configuration)
    audit_record(
        actor=actor,
        action="created",
        tenant=tenant,
        obj=configuration,
        detail={"fields": sorted([*fields, "api_password"])},
    )
    audit_secret_changed(actor=actor, tenant=tenant, obj=configuration, field="api_password")
    return configuration


@transaction.atomic
def sms_configuration_update(
    *,
    configuration: SmsConfiguration,
    actor: User | None,
    api_password: str | None = None,
    **fields: Any,
) -> SmsConfiguration:
    """Change a configuration; a blank or missing API password keeps the stored one."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    configuration = SmsConfiguration.objects.select_for_update().get(pk=configuration.pk)
    changed = [name for name, value in fields.items() if getattr(configuration, name) != value]
    for name, value in fields.items():
        setattr(configuration, name, value)
    if api_password:
        configuration.api_password = api_password
        changed.append("api_password")
    if "trunk" in changed:
        _check_trunk(tenant=configuration.tenant, trunk=configuration.trunk)
    if {"username", "api_password", "trunk"} & set(changed):
        # The DIDs the last verification found belong to the old account or trunk: sending
        # must not choose a configuration by them (see configuration_for_sender).
        configuration.verification_status = ""
        configuration.verification_result = {}
        configuration.verified_at = None
    # New credentials are checked again; so are credentials whose last check did not pass, on any
    # save, so that fixing the account at VoIP.ms and saving shows the new result.
    recheck = bool({"username", "api_password"} & set(changed)) or (
        configuration.credentials_status not in (CredentialsStatus.OK, CredentialsStatus.CHECKING)
    )
    if recheck:
        _credentials_check_mark(configuration)
    _save(configuration)
    if "username" in changed:
        _sandbox_claim(configuration)
    if recheck:
        _credentials_check_enqueue(configuration)
    if changed:
        audit_record(
            actor=actor,
            action="changed",
            tenant=configuration.tenant,
            obj=configuration,
            detail={"fields": sorted(changed)},
        )
    if api_password:
        audit_secret_changed(
            actor=actor, tenant=configuration.tenant, obj=configuration, field="api_password"
        )
    return configuration


@transaction.atomic
def sms_configuration_rotate_webhook(*, configuration: SmsConfiguration, actor: User | None) -> str:
    """Give the configuration a new webhook URL; the old one stops working at once."""
    token = _new_token()
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        webhook_token=token,
        webhook_token_digest=webhook_token_digest(token),
        updated_at=timezone.now(),
    )
    configuration.webhook_token = token
    configuration.webhook_token_digest = webhook_token_digest(token)
    audit_record(
        actor=actor, action="webhook_rotated", tenant=configuration.tenant, obj=configuration
    )
    audit_secret_changed(
        actor=actor, tenant=configuration.tenant, obj=configuration, field="webhook_token"
    )
    return configuration.webhook_url


@transaction.atomic
def sms_configuration_delete(*, configuration: SmsConfiguration, actor: User | None) -> None:
    """Delete a configuration and its webhook URL."""
    audit_record(actor=actor, action="deleted", tenant=configuration.tenant, obj=configuration)
    configuration.delete()


def sms_configuration_set_enabled(
    *, configuration: SmsConfiguration, enabled: bool, actor: User | None
) -> SmsConfiguration:
    """Switch a configuration on or off."""
    return sms_configuration_update(configuration=configuration, actor=actor, enabled=enabled)


@transaction.atomic
def sms_configuration_verify_start(*, configuration: SmsConfiguration, actor: User | None) -> None:
    """Mark the configuration as being verified and enqueue the verification."""
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        verification_status=VerificationStatus.RUNNING
    )
    configuration.verification_status = VerificationStatus.RUNNING
    audit_record(
        actor=actor, action="verification_started", tenant=configuration.tenant, obj=configuration
    )
    enqueue("sms.verify_configuration", configuration.pk)


logger = logging.getLogger(__name__)


def _credentials_check_mark(configuration: SmsConfiguration) -> None:
    configuration.credentials_status = CredentialsStatus.CHECKING
    configuration.credentials_error = ""


def _credentials_check_enqueue(configuration: SmsConfiguration) -> None:
    # The task takes the id only: it reads the credentials from the row (never a task argument).
    enqueue("sms.check_credentials", configuration.pk)


API_MENU = "Main Menu > SOAP and REST/JSON API"


LISTED = 20


PLAIN_WORDS = {
    "invalid_credentials": _(
        "VoIP.ms rejected the username or API password. Check the e-mail you sign in to VoIP.ms "
        "with, and the API password set under %(menu)s."
    ),
    "missing_credentials": _(
        "VoIP.ms rejected the username or API password. Check the e-mail you sign in to VoIP.ms "
        "with, and the API password set under %(menu)s."
    ),
    "api_not_enabled": _(
        "The API is switched off for this VoIP.ms account. Enable it under %(menu)s."
    ),
}


def voipms_problem(error: VoipmsError, ip: str | None) -> str:
    """Return what a VoIP.ms failure means for the tenant, in plain words."""
    if error.code == "ip_not_enabled":
        if ip:
            return _(
                "VoIP.ms refuses API calls from this portal's IP address %(ip)s. Add it to the "
                "allowed IP addresses under %(menu)s."
            ) % {"ip": ip, "menu": API_MENU}
        return _(
            "VoIP.ms refuses API calls from this portal's IP address. Add it to the allowed IP "
            "addresses under %(menu)s."
        ) % {"menu": API_MENU}
    if error.code in PLAIN_WORDS:
        return PLAIN_WORDS[error.code] % {"menu": API_MENU}
    if not error.permanent:
        return _("VoIP.ms did not answer properly (%(code)s). Try again in a minute.") % {
            "code": error.code
        }
    return _("VoIP.ms answered %(code)s: %(message)s") % {
        "code": error.code,
        "message": error.message,
    }


def _pool_numbers(configuration: SmsConfiguration, limit: int = 100_000) -> set[int]:
    numbers: set[int] = set()
    ranges = PoolRange.objects.for_tenant(configuration.tenant).filter(trunk=configuration.trunk)
    for pool_range in ranges:
        numbers.update(range(pool_range.start, min(pool_range.end, pool_range.start + limit) + 1))
    return numbers


# How many recent history rows verification reads to learn each DID's number format.
FORMAT_HISTORY_ROWS = 200
FORMAT_HISTORY_DAYS = 30


def _seen_number_formats(client: VoipmsClient) -> dict[int, str]:
    """Return the number format each DID shows in recent getSMS history, by number."""
    # getDIDsInfo does not report the number format; getSMS writes the DID in it (DOMAIN.md §3:
    # "+1 and 10 digits" in E.164 mode, seen in getSMS). A DID without recent history is unknown.
    today = voipms_date()
    try:
        records = client.get_sms(
            date_from=today - dt.timedelta(days=FORMAT_HISTORY_DAYS),
            date_to=today,
            limit=FORMAT_HISTORY_ROWS,
        )
    except VoipmsError:
        return {}
    formats: dict[int, str] = {}
    for record in records:
        try:
            number = number_to_int(record.did)
        except InvalidNumber:
            continue
        seen = NumberFormat.E164 if record.did.startswith("+") else NumberFormat.NANPA
        formats.setdefault(number, seen)
    return formats


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
            result["problems"].append(voipms_problem(error, None))
            return _finish(configuration, VerificationStatus.FAILED, result)
        try:
            dids = client.get_dids_info()
        except VoipmsError as error:
            result["problems"].append(voipms_problem(error, result["ip"]))
            return _finish(configuration, VerificationStatus.FAILED, result)
        seen_formats = _seen_number_formats(client)

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
            "number_format": seen_formats.get(number),
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
    other_format = [
        f"+{n}" for n in in_pool if seen_formats.get(n) not in (None, configuration.number_format)
    ]
    if other_format:
        wanted = configuration.get_number_format_display()
        result["warnings"].append(
            f"VoIP.ms writes numbers in another format than this configuration's ({wanted}) on "
            + ", ".join(other_format[:LISTED])
            + (f" and {len(other_format) - LISTED} more" if len(other_format) > LISTED else "")
            + f": choose {wanted} on each of them at VoIP.ms, or point them here from the "
            "portal (which sets the format)."
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


def _credentials_problem(client: VoipmsClient, error: VoipmsError) -> str:
    ip = None
    if error.code == "ip_not_enabled":
        # getIP answers from any address: it tells the tenant which one to allow-list.
        try:
            ip = client.get_ip()
        except VoipmsError:
            ip = None
    if error.permanent:
        reason = _("VoIP.ms answered %(code)s: %(message)s") % {
            "code": error.code,
            "message": error.message,
        }
        advice = voipms_problem(error, ip)
        return f"{reason}. {advice}" if advice != reason else reason
    return _("VoIP.ms could not be reached to check the credentials (%(error)s).") % {
        "error": error.message
    }


def sms_configuration_check_credentials(*, configuration_id: int) -> str | None:
    """Ask VoIP.ms whether the configuration's credentials work and record the answer."""
    configuration = (
        SmsConfiguration.objects.select_related("tenant").filter(pk=configuration_id).first()
    )
    if configuration is None:
        return None
    checked = (configuration.username, configuration.api_password)
    refusal = messaging_refusal(configuration.tenant)
    if refusal:
        problem = _("Not checked: %(reason)s.") % {"reason": refusal}
        _credentials_record(configuration_id, checked, CredentialsStatus.UNREACHABLE, problem)
        return CredentialsStatus.UNREACHABLE
    # Called outside any transaction: VoIP.ms takes seconds to answer.
    with voipms_client_for(configuration, read_timeout=30.0) as client:
        try:
            client.get_dids_info()
        except VoipmsError as error:
            status = CredentialsStatus.FAILED if error.permanent else CredentialsStatus.UNREACHABLE
            problem = _credentials_problem(client, error)
        else:
            status, problem = CredentialsStatus.OK, ""
    if not _credentials_record(configuration_id, checked, status, problem):
        return None
    if status == CredentialsStatus.OK and not configuration.verification_status:
        # Working credentials on a configuration not verified since its account or trunk changed:
        # verify it now, so that the details page shows its DIDs and sending knows which
        # configuration of a trunk owns which DID (configuration_for_sender).
        sms_configuration_verify(configuration=configuration)
    return status


def _credentials_record(
    configuration_id: int, checked: tuple[str, str], status: str, problem: str
) -> bool:
    with transaction.atomic():
        current = SmsConfiguration.objects.select_for_update().filter(pk=configuration_id).first()
        if current is None or (current.username, current.api_password) != checked:
            # The credentials changed while VoIP.ms answered: the check of the new ones decides.
            return False
        SmsConfiguration.objects.filter(pk=configuration_id).update(
            credentials_status=status,
            credentials_error=problem[:500],
            credentials_checked_at=timezone.now(),
        )
        audit_record(
            actor=None,
            action="credentials_checked",
            tenant=current.tenant,
            obj=current,
            detail={"status": status},
        )
    return True


def credentials_check_state(configuration: SmsConfiguration) -> dict[str, Any]:
    """Return what the details page shows of the last credentials check."""
    return {
        "status": configuration.credentials_status or "none",
        "label": str(CredentialsStatus(configuration.credentials_status).label),
        "error": configuration.credentials_error,
        "checked_at": configuration.credentials_checked_at.isoformat()
        if configuration.credentials_checked_at
        else None,
    }
