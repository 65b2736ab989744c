"""Create the demo tenants and logins (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from tenants.models import Extension, Role, SmsPermission, Tenant, User
from tenants.services import extension_create, tenant_create, user_create

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed to the person running the demo

DEMO_TENANTS = [
    {"name": "Acme Dental", "slug": "acme.demo", "admin": "acme-admin", "user": "acme-101"},
    {"name": "Birch Legal", "slug": "birch.demo", "admin": "birch-admin", "user": "birch-101"},
]


class Command(BaseCommand):
    help = "Create the demo system administrator, two demo tenants and their logins."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        logins = [("System administrator", self._user("sysadmin", Role.SYSTEM_ADMIN, None))]
        for spec in DEMO_TENANTS:
            tenant = Tenant.objects.filter(slug=spec["slug"]).first() or tenant_create(
                name=spec["name"], slug=spec["slug"]
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
        for label, user in logins:
            self.stdout.write(f"  {label:<34} {user.username} / {DEMO_PASSWORD}")

    def _user(self, username: str, role: str, tenant: Tenant | None) -> User:
        return User.objects.filter(username=username).first() or user_create(
            username=username, password=DEMO_PASSWORD, role=role, tenant=tenant
        )
