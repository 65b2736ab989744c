"""Builders for sms tests: configurations and rules through the real services."""

from __future__ import annotations

from sms.configurations import sms_configuration_create
from sms.inbound.rules import inbound_rule_save
from sms.models import Action, InboundRule, SmsConfiguration
from tenants.models import Extension, Tenant
from tests.factories import shared_trunk

API_PASSWORD = "Zq9-distinctive-API-secret-4471"


def make_configuration(
    tenant: Tenant, *, name: str = "Main", username: str | None = None, **fields: object
) -> SmsConfiguration:
    """Create a configuration on the shared trunk with a distinctive API password."""
    fields.setdefault("trunk", shared_trunk())
    return sms_configuration_create(
        tenant=tenant,
        actor=None,
        api_password=API_PASSWORD,
        name=name,
        username=username or f"voipms@{tenant.slug}",
        **fields,
    )


def make_rule(
    tenant: Tenant,
    *,
    did_range: str,
    extension: Extension,
    name: str = "To reception",
    **fields: object,
) -> InboundRule:
    """Create a rule sending every period of `did_range` to one extension."""
    values = {
        "office_action": Action.EXTENSION,
        "office_extension": extension,
        "after_hours_action": Action.EXTENSION,
        "after_hours_extension": extension,
        "holiday_action": Action.EXTENSION,
        "holiday_extension": extension,
    }
    values.update(fields)
    values.setdefault("trunk", shared_trunk())
    return inbound_rule_save(tenant=tenant, actor=None, name=name, did_range=did_range, **values)
