"""SMS/MMS configurations: create, change, rotate the webhook URL, verify, delete."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.errors import ApplicationError, Conflict
from sms.models import SmsConfiguration, VerificationStatus, webhook_token_digest
from tenants.models import Tenant, User
from tenants.services import audit_record
from trunks.models import Brand, Trunk

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
        raise ApplicationError("Choose a VoIP.ms trunk.", code="trunk_not_voipms", field="trunk")
    if not Trunk.objects.available_to(tenant).filter(pk=trunk.pk).exists():
        raise ApplicationError(
            "Choose a trunk assigned to this tenant.", code="trunk_not_assigned", field="trunk"
        )


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
            f"A configuration named {configuration.name!r} exists already.",
            code="name_taken",
            field="name",
        )
    try:
        with transaction.atomic():
            configuration.save()
    except IntegrityError as error:
        raise Conflict("The configuration could not be saved; try again.") from error


@transaction.atomic
def sms_configuration_create(
    *, tenant: Tenant, actor: User | None, api_password: str, **fields: Any
) -> SmsConfiguration:
    """Create a configuration with a fresh webhook URL."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    if not api_password:
        raise ApplicationError(
            "Enter the VoIP.ms API password.", code="required", field="api_password"
        )
    configuration = SmsConfiguration(tenant=tenant, api_password=api_password, **fields)
    _check_trunk(tenant=tenant, trunk=configuration.trunk)
    token = _new_token()
    configuration.webhook_token = token
    configuration.webhook_token_digest = webhook_token_digest(token)
    _save(configuration)
    audit_record(
        actor=actor,
        action="created",
        tenant=tenant,
        obj=configuration,
        detail={"fields": sorted([*fields, "api_password"])},
    )
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
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    configuration = SmsConfiguration.objects.select_for_update().get(pk=configuration.pk)
    changed = [name for name, value in fields.items() if getattr(configuration, name) != value]
    for name, value in fields.items():
        setattr(configuration, name, value)
    if api_password:
        configuration.api_password = api_password
        changed.append("api_password")
    if "trunk" in changed:
        _check_trunk(tenant=configuration.tenant, trunk=configuration.trunk)
    _save(configuration)
    if changed:
        audit_record(
            actor=actor,
            action="changed",
            tenant=configuration.tenant,
            obj=configuration,
            detail={"fields": sorted(changed)},
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
    from sms.tasks import verify_configuration

    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        verification_status=VerificationStatus.RUNNING
    )
    configuration.verification_status = VerificationStatus.RUNNING
    audit_record(
        actor=actor, action="verification_started", tenant=configuration.tenant, obj=configuration
    )
    pk = configuration.pk
    transaction.on_commit(lambda: verify_configuration.delay(pk))
