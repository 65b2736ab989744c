"""Read the sandbox: conversations between a DID and a handset."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Tenant
from trunks.voipms.sandbox.models import SandboxAccount, SandboxDid, SandboxMessage

THREAD_LENGTH = 200


def sandbox_thread(*, did: str, handset: str, limit: int = THREAD_LENGTH) -> list[SandboxMessage]:
    """Return the latest messages between a DID and a handset, oldest first."""
    # Insertion order breaks ties: SMS and MMS ids come from separate counters.
    latest = SandboxMessage.objects.filter(did=did, contact=handset).order_by("-created_at", "-pk")
    return list(reversed(latest[:limit]))


def sandbox_accounts_of(*, tenant: Tenant) -> QuerySet[SandboxAccount]:
    """Return the sandbox accounts the tenant owns."""
    return SandboxAccount.objects.filter(tenant=tenant)


def sandbox_dids_of(*, tenant: Tenant | None) -> QuerySet[SandboxDid]:
    """Return the DIDs of the tenant's sandbox accounts, or every DID for None."""
    dids = SandboxDid.objects.select_related("account", "account__tenant").order_by("did")
    return dids if tenant is None else dids.filter(account__tenant=tenant)
