"""Tell the trunk services what in the sms app uses a tenant's numbers on a trunk."""

from __future__ import annotations

from collections.abc import Iterator

from sms.models import InboundRule, OutboundRoute, SmsCallerId, SmsConfiguration
from trunks.models import TrunkAssignment
from trunks.numbers import number_to_int
from trunks.services import PoolUse, register_pool_user


def sms_configurations_on_trunk(assignment: TrunkAssignment) -> Iterator[PoolUse]:
    """Yield the tenant's SMS/MMS configurations on the assignment's trunk."""
    names = (
        SmsConfiguration.objects.for_tenant(assignment.tenant)
        .filter(trunk_id=assignment.trunk_id)
        .values_list("name", flat=True)
    )
    for name in names:
        yield PoolUse(what=f"SMS/MMS configuration {name!r}")


def inbound_rules_on_trunk(assignment: TrunkAssignment) -> Iterator[PoolUse]:
    """Yield the DIDs the tenant's inbound rules on the trunk route."""
    rules = InboundRule.objects.for_tenant(assignment.tenant).filter(trunk_id=assignment.trunk_id)
    for name, start, end in rules.values_list("name", "did_start", "did_end"):
        yield PoolUse(what=f"inbound rule {name!r}", number=start, end=end)


def caller_ids_on_trunk(assignment: TrunkAssignment) -> Iterator[PoolUse]:
    """Yield the DIDs extensions send from, and the caller IDs of outbound routes."""
    caller_ids = SmsCallerId.objects.for_tenant(assignment.tenant).filter(
        trunk_id=assignment.trunk_id
    )
    for extension, did in caller_ids.values_list("extension__number", "did"):
        yield PoolUse(what=f"SMS caller ID of extension {extension}", number=number_to_int(did))
    routes = (
        OutboundRoute.objects.for_tenant(assignment.tenant)
        .filter(trunk_id=assignment.trunk_id)
        .exclude(caller_id="")
    )
    for rule, did in routes.values_list("rule__name", "caller_id"):
        yield PoolUse(what=f"outbound rule {rule!r}", number=number_to_int(did))


def register() -> None:
    """Tell the trunk services about each of the functions above (once, when the app is ready)."""
    for pool_user in (sms_configurations_on_trunk, inbound_rules_on_trunk, caller_ids_on_trunk):
        register_pool_user(pool_user)
