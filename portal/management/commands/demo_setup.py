"""Create the demo tenants, logins, trunk, SMS configurations and sandbox (idempotent)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from sms.configurations import sms_configuration_create
from sms.contacts import contact_save
from sms.inbound.rules import inbound_rule_save
from sms.models import (
    Action,
    Contact,
    Conversation,
    Direction,
    InboundRule,
    Kind,
    Message,
    MessageStatus,
    SmsCallerId,
    SmsConfiguration,
    Source,
)
from sms.outbound.rules import sms_caller_id_save
from tenants.models import Extension, OfficeHours, Role, SmsPermission, Tenant, User
from tenants.services import extension_create, tenant_create, user_create
from tenants.services_groups import office_hours_save
from trunks.models import Trunk, TrunkAssignment
from trunks.numbers import parse_did_pool
from trunks.services import trunk_assignment_save, trunk_save

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed to the person running the demo

DEMO_API_PASSWORD = "sandbox-api-pass-2026"  # noqa: S105 - the sandbox's fake VoIP.ms account
DEMO_TENANTS = [
    {
        "name": "Acme Dental",
        "slug": "acme.demo",
        "admin": "acme-admin",
        "user": "acme-101",
        "pool": "13322496213-13322496215",
        "voipms": "acme@demo.example",
        "monthly_quota": 600,
    },
    {
        "name": "Birch Legal",
        "slug": "birch.demo",
        "admin": "birch-admin",
        "user": "birch-101",
        "pool": "16468097069",
        "voipms": "birch@demo.example",
    },
]


DEMO_CONTACTS = [
    ("+13125550140", "Avery Tremblay"),
    ("+13125550141", "Jordan Gagnon"),
    ("+13125550142", "Sam Roy"),
]


class Command(BaseCommand):
    help = "Create the demo system administrator, two demo tenants and their logins."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        logins = [("System administrator", self._user("sysadmin", Role.SYSTEM_ADMIN, None))]
        for spec in DEMO_TENANTS:
            tenant = Tenant.objects.filter(slug=spec["slug"]).first() or tenant_create(
                name=spec["name"], slug=spec["slug"], monthly_quota=spec.get("monthly_quota")
            )
            logins.append(
                (f"{tenant.name} admin", self._user(spec["admin"], Role.TENANT_ADMIN, tenant))
            )
            user = self._user(spec["user"], Role.USER, tenant)
            logins.append((f"{tenant.name} extension 101", user))
            if not Extension.objects.for_tenant(tenant).filter(number="101").exists():
                extension_create(
                    tenant=tenant,
                    number="101",
                    display_name=f"{tenant.name} front desk",
                    user=user,
                    sms_permission=SmsPermission.ALLOW,
                )
        system_trunks = Trunk.objects.filter(tenant__isnull=True)
        trunk = system_trunks.filter(name="VoIP.ms San Jose").first() or trunk_save(
            name="VoIP.ms San Jose", host="sanjose2.voip.ms", sip_username="100000_demo"
        )
        for spec in DEMO_TENANTS:
            self._messaging(spec, trunk)
        for label, user in logins:
            self.stdout.write(f"  {label:<34} {user.username} / {DEMO_PASSWORD}")

    def _messaging(self, spec: dict[str, str], trunk: Trunk) -> None:
        tenant = Tenant.objects.get(slug=spec["slug"])
        admin = User.objects.get(username=spec["admin"])
        if not TrunkAssignment.objects.filter(trunk=trunk, tenant=tenant).exists():
            trunk_assignment_save(trunk=trunk, tenant=tenant, did_pool=spec["pool"], actor=admin)
        configuration = SmsConfiguration.objects.for_tenant(tenant).first()
        if configuration is None:
            configuration = sms_configuration_create(
                tenant=tenant,
                actor=admin,
                api_password=DEMO_API_PASSWORD,
                name="Main numbers",
                trunk=trunk,
                username=spec["voipms"],
            )
        if not InboundRule.objects.for_tenant(tenant).exists():
            extension = Extension.objects.for_tenant(tenant).get(number="101")
            inbound_rule_save(
                tenant=tenant,
                actor=admin,
                name="Front desk",
                trunk=trunk,
                did_range=spec["pool"].split(";")[0],
                office_action=Action.EXTENSION,
                office_extension=extension,
                after_hours_action=Action.EXTENSION,
                after_hours_extension=extension,
                holiday_action=Action.EXTENSION,
                holiday_extension=extension,
            )
        extension = Extension.objects.for_tenant(tenant).get(number="101")
        first_did = spec["pool"].split(";")[0].split("-")[0]
        if not SmsCallerId.objects.for_tenant(tenant).filter(extension=extension).exists():
            sms_caller_id_save(tenant=tenant, extension=extension, trunk=trunk, did=first_did)
        if settings.VOIPMS_SANDBOX:
            self._sandbox(spec, tenant, configuration)
        self._usage(tenant, configuration, spec["pool"])
        self._contacts(tenant, admin)
        if spec is DEMO_TENANTS[0] and not OfficeHours.objects.for_tenant(tenant).exists():
            # The first tenant keeps office hours; the second has none, and its home page says
            # which destinations then apply.
            for weekday in range(5):
                office_hours_save(
                    tenant=tenant, actor=admin, weekday=weekday, start=time(9), end=time(17)
                )

    def _contacts(self, tenant: Tenant, admin: User) -> None:
        """Name some of the demo traffic's outside numbers, as the inbox and the log show them."""
        if Contact.objects.for_tenant(tenant).exists():
            return
        for number, name in DEMO_CONTACTS:
            contact_save(tenant=tenant, actor=admin, name=name, number=number, notes="Demo contact")

    def _sandbox(
        self, spec: dict[str, str], tenant: Tenant, configuration: SmsConfiguration
    ) -> None:
        """Give the tenant its sandbox account; its DIDs deliver by webhook and by URL callback.

        Every DID gets both the configuration's webhook URL and a URL callback to the same
        address, so the phone simulator can use either; the second DID of a pool has its webhook
        switched off, to show a DID that delivers by URL callback only (DOMAIN.md §3).
        """
        from sms.admin.sandbox import callback_template
        from trunks.voipms.sandbox.services import sandbox_account_ensure, sandbox_did_configure

        pool = parse_did_pool(spec["pool"])
        dids = [str(n)[1:] for r in pool for n in range(r.start, r.end + 1)]
        sandbox_account_ensure(
            username=spec["voipms"], api_password=DEMO_API_PASSWORD, dids=dids, tenant=tenant
        )
        for index, did in enumerate(dids):
            sandbox_did_configure(
                did=did,
                webhook_url=configuration.webhook_url,
                webhook_enabled=index != 1,
                callback_url=callback_template(configuration),
                callback_enabled=True,
            )

    def _usage(self, tenant: Tenant, configuration: SmsConfiguration, pool: str) -> None:
        """Give a new demo tenant six weeks of past traffic, so its usage page shows bars."""
        if Message.objects.for_tenant(tenant).exists():
            return
        rng = random.Random(tenant.slug)  # noqa: S311 - made-up demo traffic
        start, end = pool.split(";")[0].partition("-")[::2]
        dids = [f"+{n}" for n in range(int(start), int(end or start) + 1)]
        remotes = [f"+1312555{n:04d}" for n in range(140, 146)]
        today = timezone.now().astimezone(tenant.zone).date()
        rows: list[tuple[Message, datetime]] = []
        for back in range(42, 0, -1):
            day = today - timedelta(days=back)
            noon = datetime.combine(day, time(12), tzinfo=tenant.zone)
            for n in range(rng.randint(2, 9) + rng.randint(2, 9)):
                did, remote = rng.choice(dids), rng.choice(remotes)
                outbound = n % 2 == 1
                parts = 2 if outbound and rng.random() < 0.2 else 1
                failed = outbound and rng.random() < 0.08
                for index in range(parts):
                    message = Message(
                        tenant=tenant,
                        configuration=configuration,
                        direction=Direction.OUT if outbound else Direction.IN,
                        kind=Kind.SMS,
                        status=(MessageStatus.FAILED if failed else MessageStatus.DELIVERED)
                        if outbound
                        else MessageStatus.ROUTED,
                        source=Source.PORTAL if outbound else Source.WEBHOOK,
                        did=did,
                        remote=remote,
                        body="Demo message",
                        segments=parts if outbound else 1,
                        part_index=index,
                    )
                    rows.append((message, noon + timedelta(minutes=n * 7 + index)))
        Message.objects.bulk_create([message for message, _ in rows])
        for message, at in rows:
            message.created_at = at
        Message.objects.bulk_update([message for message, _ in rows], ["created_at"])
        for message, _ in rows:
            conversation, _created = Conversation.objects.get_or_create(
                tenant=tenant,
                did=message.did,
                remote=message.remote,
                defaults={"configuration": configuration},
            )
            message.conversation = conversation
        Message.objects.bulk_update([message for message, _ in rows], ["conversation"])
        for conversation in Conversation.objects.for_tenant(tenant):
            last = conversation.messages.order_by("-created_at").first()
            Conversation.objects.filter(pk=conversation.pk).update(
                last_message_at=last.created_at, last_message_text=last.body
            )

    def _user(self, username: str, role: str, tenant: Tenant | None) -> User:
        return User.objects.filter(username=username).first() or user_create(
            username=username, password=DEMO_PASSWORD, role=role, tenant=tenant
        )
