"""Objects for tests: one of every tenant-owned model in a tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models

from tenants.models import Extension, Role, Tenant, User
from tenants.services import extension_create, user_create
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
    }


def shared_trunk() -> Trunk:
    """Return the VoIP.ms trunk that test tenants share, creating it once."""
    return Trunk.objects.filter(name="VoIP.ms San Jose").first() or trunk_save(
        name="VoIP.ms San Jose",
        host="sanjose2.voip.ms",
        sip_username="100000_pbx",
        sip_password="sip-Secret-Zebra-9431",
    )
