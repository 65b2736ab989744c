"""Read the sandbox: conversations between a DID and a handset."""

from __future__ import annotations

from trunks.voipms.sandbox.models import SandboxMessage

THREAD_LENGTH = 200


def sandbox_thread(*, did: str, handset: str, limit: int = THREAD_LENGTH) -> list[SandboxMessage]:
    """Return the latest messages between a DID and a handset, oldest first."""
    # Insertion order breaks ties: SMS and MMS ids come from separate counters.
    latest = SandboxMessage.objects.filter(did=did, contact=handset).order_by("-created_at", "-pk")
    return list(reversed(latest[:limit]))
