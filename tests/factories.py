"""Objects for tests: one of every tenant-owned model in a tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models

from tenants.models import Extension, Role, Tenant, User
from tenants.services import extension_create, user_create


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
    return {
        Extension: extension_create(tenant=tenant, number="200", display_name="Reception"),
        User: member,
    }
