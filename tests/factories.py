"""Objects for tests: one of every tenant-owned model in a tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models

from sms.configurations import sms_configuration_create
from sms.models import SmsConfiguration
from tenants.models import AuditEvent, Extension, Role, Tenant, User
from tenants.services import api_token_create, audit_record, extension_create, user_create
from trunks.models import Trunk, TrunkAssignment
from trunks.services import trunk_assignment_save, trunk_save

# Each test tenant's DID pool on the shared trunk; look-alike numbers differ by tenant.
POOLS = {"a.example": "12125550100-12125550109", "b.example": "12125550110-12125550119"}
OWN_POOLS = {"a.example": "16465550100-16465550104", "b.example": "16465550105-16465550109"}


@dataclass
class World:
    tenant_a: Tenant
    tenant_b: Tenant
    admin_a: User
    user_a: User
    admin_b: User
    user_b: User
    sysadmin: User
    objects_a: dict[type[models.Model], models.Model] = field(default_factory=dict)
    objects_b: dict[type[models.Model], models.Model] = field(default_factory=dict)


def make_tenant_objects(tenant: Tenant) -> dict[type[models.Model], Any]:
    """Create one object of each tenant-owned model in the tenant and return them by model."""
    member = user_create(
        username=f"member-{tenant.slug}", password=None, role=Role.USER, tenant=tenant
    )
    assignment = trunk_assignment_save(
        trunk=shared_trunk(), tenant=tenant, did_pool=POOLS.get(tenant.slug, "")
    )
    own_trunk = trunk_save(name=f"Trunk of {tenant.slug}", host="chicago1.voip.ms")
    trunk_assignment_save(trunk=own_trunk, tenant=tenant, did_pool=OWN_POOLS.get(tenant.slug, ""))
    return {
        Extension: extension_create(tenant=tenant, number="200", display_name="Reception"),
        User: member,
        TrunkAssignment: assignment,
        Trunk: own_trunk,
        SmsConfiguration: sms_configuration_create(
            tenant=tenant,
            actor=None,
            api_password="factory-api-password",
            name="Factory configuration",
            trunk=assignment.trunk,
            username=f"factory@{tenant.slug}",
        ),
    }


def shared_trunk() -> Trunk:
    """Return the VoIP.ms trunk that test tenants share, creating it once."""
    return Trunk.objects.filter(name="VoIP.ms San Jose", tenant__isnull=True).first() or trunk_save(
        name="VoIP.ms San Jose",
        host="sanjose2.voip.ms",
        sip_username="100000_pbx",
        sip_password="sip-Secret-Zebra-9431",
    )


def make_messaging_objects(
    tenant: Tenant, objects: dict[type[models.Model], Any]
) -> dict[type[models.Model], Any]:
    """Create one of each messaging model (rule, ring group, hours, messages…) in the tenant."""
    # Kept apart from make_tenant_objects: office hours change the routing of every test that
    # uses `world`, and messages change global counts; only the isolation matrix asks for them.
    from datetime import date, time

    from sms.inbound.process import inbound_message_ingest
    from sms.inbound.rules import inbound_rule_save
    from sms.inbound.store import webhook_delivery_store
    from sms.models import (
        Action,
        Conversation,
        DeliveryStatus,
        InboundRule,
        Message,
        MessageMedia,
        OptOut,
        Source,
        WebhookDelivery,
    )
    from tenants.models import Holiday, OfficeHours, RingGroup, RingGroupMember
    from tenants.services_groups import (
        holiday_save,
        office_hours_save,
        ring_group_member_save,
        ring_group_save,
    )
    from trunks.voipms.webhooks import InboundMessage

    configuration = objects[SmsConfiguration]
    did = POOLS[tenant.slug].split("-")[0]
    caller = "13125550199"
    group = ring_group_save(tenant=tenant, actor=None, name="Factory group", number="600")
    member = ring_group_member_save(group=group, extension=objects[Extension])
    destinations = {
        f"{period}_{part}": value
        for period in ("office", "after_hours", "holiday")
        for part, value in (("action", Action.RING_GROUP), ("ring_group", group))
    }
    rule = inbound_rule_save(
        tenant=tenant,
        actor=None,
        name="Factory rule",
        trunk=configuration.trunk,
        did_range=did,
        caller_mask=caller,  # only the factory's caller: other tests' routing is unchanged
        **destinations,
    )

    def ingest(provider_id: int, text: str, media: tuple[str, ...] = ()) -> Message:
        inbound = InboundMessage(
            kind="mms" if media else "sms",
            provider_id=provider_id,
            from_number="+" + caller,
            to_number="+" + did,
            text=text,
            media_urls=media,
            received_at=None,
            received_at_raw="",
            event_type="message.received",
            source="webhook",
        )
        result = inbound_message_ingest(
            configuration=configuration, inbound=inbound, source=Source.WEBHOOK
        )
        return result.message

    message = ingest(9000001, "Factory hello", ("https://voip.ms/media/factory.jpg",))
    ingest(9000002, "STOP")
    from sms.models import OutboundRoute, OutboundRule, SmsCallerId
    from sms.outbound.rules import outbound_rule_save, sms_caller_id_save

    outbound = outbound_rule_save(
        tenant=tenant,
        actor=None,
        name="Factory outbound",
        prefixes="9",  # dialled numbers starting with 9 only: other tests' sends are unchanged
        routes=[{"trunk": configuration.trunk, "caller_id": did}],
    )
    from sms.contacts import contact_save
    from sms.models import Contact, ReplyTemplate
    from sms.templates_service import reply_template_save
    from trunks.models import PrivateTrunk

    type(tenant).objects.filter(pk=tenant.pk).update(allow_private_trunks=True)
    private = trunk_save(
        name=f"Private trunk of {tenant.slug}", host="atlanta1.voip.ms", owner=tenant
    )
    return {
        # One audit event of the tenant, for the pages of its audit log.
        AuditEvent: audit_record(
            actor=None,
            action="factory_event",
            tenant=tenant,
            obj=configuration,
            detail={"fields": ["name"]},
            address="192.0.2.10",
        ),
        Contact: contact_save(
            tenant=tenant, actor=None, name="Factory contact", number="+13125550199", notes="VIP"
        ),
        ReplyTemplate: reply_template_save(
            tenant=tenant, actor=None, name="Factory reply", body="Thanks, we will call you back."
        ),
        PrivateTrunk: PrivateTrunk.objects.get(pk=private.pk),
        OutboundRule: outbound,
        OutboundRoute: outbound.routes.get(),
        SmsCallerId: sms_caller_id_save(
            tenant=tenant, extension=objects[Extension], trunk=configuration.trunk, did=did
        ),
        RingGroup: group,
        RingGroupMember: member,
        InboundRule: rule,
        OfficeHours: office_hours_save(
            tenant=tenant, actor=None, weekday=0, start=time(9), end=time(17)
        ),
        Holiday: holiday_save(
            tenant=tenant,
            actor=None,
            name="Factory holiday",
            start_date=date(2020, 1, 1),
            end_date=date(2020, 1, 1),
        ),
        Conversation: Conversation.objects.get(pk=message.conversation_id),
        Message: message,
        MessageMedia: MessageMedia.objects.get(message=message),
        OptOut: OptOut.objects.for_tenant(tenant).get(),
        WebhookDelivery: webhook_delivery_store(
            configuration=configuration,
            method="POST",
            body=b'{"data": {}}',
            query="",
            content_type="application/json",
            remote_addr="127.0.0.1",
            headers={},
            status=DeliveryStatus.PROCESSED,
        ),
    }


def make_system_objects(world: World) -> None:
    """Create the rows of the system site's third-party models (sign-in records) and of the
    models no tenant object makes: an API token per tenant."""
    from django.apps import apps
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    # A failed and a successful sign-in: django-axes records the attempt, the failure and the log.
    client.post("/login/", {"username": "nobody", "password": "wrong password"})
    client.post("/login/", {"username": world.sysadmin.username, "password": "correct horse 42"})
    for admin_user in (world.admin_a, world.admin_b):
        api_token_create(user=admin_user, name="every screen")
    if apps.is_installed("axes"):
        from axes.models import AccessFailureLog

        # Written only with AXES_ENABLE_ACCESS_FAILURE_LOG, which the portal leaves off.
        AccessFailureLog.objects.create(
            user_agent="Mozilla/5.0", ip_address="127.0.0.1", username="nobody", path_info="/login/"
        )


# --- long data: what real tenants type and receive ------------------------------------------

# A realistic long name (words) that ends in a long unbroken token, as pasted e-mail addresses,
# URLs and reference numbers are.
LONG_WORDS = (
    "Brooklyn Warehouse After-Hours Overflow and Weekend Dispatch Team for Northeast Deliveries "
)
LONG_TOKEN = "https://status.example-logistics-company.com/tracking/shipments/ABC1234567890XYZ"
# Free-text fields by name that hold a format (a number, a pattern, a code, a secret…) and so
# keep their value; every other free-text field of every model is made long.
FORMATTED = frozenset(
    {
        "action", "api_password", "caller_id", "caller_mask", "code", "contact", "country",
        "did", "did_pool", "did_range", "digest", "email", "email_address", "error_code",
        "forward_to", "from_extensions", "host", "hostname", "ip_address", "ip_allowlist",
        "key", "keyword", "language", "lengths", "method", "number", "object_id",
        "object_type", "password", "prefix", "prefixes", "prepend", "remote", "request_hash",
        "session_hash", "sha256", "sip_username", "slug", "time_zone", "timezone", "username",
        "webhook_token_digest", "http_accept", "path_info", "period", "route_type",
        "first_name", "last_name", "app_label", "model", "codename", "session_key",
        "session_data", "target", "office_target", "after_hours_target", "holiday_target",
    }
)  # fmt: skip


# Django's own tables whose names are code, not text a user typed.
SYSTEM_APPS = frozenset({"auth", "contenttypes", "sessions"})


def long_text(length: int, *, serial: int = 0) -> str:
    """Return realistic long text of at most `length` characters, unique by `serial`."""
    tag = f" #{serial}" if serial else ""
    text = (LONG_WORDS * (1 + length // len(LONG_WORDS)))[: max(0, length - len(tag))]
    if length >= 2 * len(LONG_TOKEN):
        text = text[: length - len(LONG_TOKEN) - len(tag) - 1] + " " + LONG_TOKEN
    return (text.rstrip() + tag)[:length]


def make_long_objects(world: World) -> None:
    """Make every free-text value of every row long (100-character names, 1,600-character
    messages, long URLs) and give Tenant A many rows: extensions, routes, conversations and
    messages, so that pages are measured with what a busy tenant shows."""
    from django.apps import apps

    from sms.inbound.process import inbound_message_ingest
    from sms.models import Source
    from sms.outbound.rules import MAX_ROUTES, outbound_rule_save, sms_caller_id_save
    from trunks.voipms.webhooks import InboundMessage

    shared = shared_trunk()
    tenant = world.tenant_a
    configuration = world.objects_a[SmsConfiguration]
    pool = [str(n) for n in range(12125550100, 12125550110)]
    for n in range(12):
        extension = extension_create(
            tenant=tenant, number=str(300 + n), display_name=long_text(100, serial=n + 1)
        )
        if n < 4:
            sms_caller_id_save(
                tenant=tenant, extension=extension, trunk=configuration.trunk, did=pool[n]
            )
    outbound_rule_save(
        tenant=tenant,
        actor=None,
        name=long_text(100),
        prefixes="8",
        routes=[
            {"trunk": configuration.trunk, "caller_id": pool[n % len(pool)]}
            for n in range(MAX_ROUTES)
        ],
    )
    for n in range(8):
        inbound_message_ingest(
            configuration=configuration,
            source=Source.WEBHOOK,
            inbound=InboundMessage(
                kind="sms",
                provider_id=9100000 + n,
                # The first ones to the factory's caller: its conversation gets long messages.
                from_number="+13125550199" if n < 3 else f"+1312555{n + 1:04d}",
                to_number="+" + pool[0],
                text=long_text(1600 if n < 3 else 160, serial=n + 1),
                media_urls=(),
                received_at=None,
                received_at_raw="",
                event_type="message.received",
                source="webhook",
            ),
        )

    for model in apps.get_models():
        fields = [
            f
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField)
            and not f.choices
            and not f.primary_key
            and "Encrypted" not in type(f).__name__
            and f.name not in FORMATTED
            and not f.name.endswith(("_digest", "_hash", "_token"))
        ]
        if not fields or model._meta.app_label in SYSTEM_APPS:
            continue
        for pk in model._default_manager.values_list("pk", flat=True)[:50]:
            values = {}
            for text_field in fields:
                length = min(text_field.max_length or 1600, 1600)
                if text_field.name.endswith("url") or isinstance(text_field, models.URLField):
                    values[text_field.name] = (LONG_TOKEN + "/" + "x" * length)[:length]
                else:
                    # Unique by row: names are unique per tenant or owner.
                    values[text_field.name] = long_text(length, serial=pk)
            model._default_manager.filter(pk=pk).update(**values)
    # The trunk the test tenants share is found by its name.
    Trunk.objects.filter(pk=shared.pk).update(name=shared.name)
