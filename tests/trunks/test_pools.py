"""DID pools on trunks: syntax, overlap across tenants, numbers in use, owner lookups, races."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from core.errors import ApplicationError, Conflict
from sms.configurations import sms_configuration_delete
from sms.inbound.rules import inbound_rule_delete
from tenants.models import Extension, Tenant
from tenants.services import extension_create, tenant_create
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration, make_rule
from trunks import services
from trunks.models import PoolRange, Trunk, TrunkAssignment
from trunks.selectors import did_owner_tenant_id, tenant_owns_number
from trunks.services import (
    trunk_assignment_delete,
    trunk_assignment_save,
    trunk_check_delete,
    trunk_delete,
    trunk_save,
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def trunk(db: None) -> Trunk:
    return trunk_save(name="VoIP.ms New York", host="newyork1.voip.ms")


@pytest.fixture
def reception(tenant_a: Tenant) -> Extension:
    return extension_create(tenant=tenant_a, number="200", display_name="Reception")


@pytest.fixture
def pool_a(tenant_a: Tenant) -> TrunkAssignment:
    """Give tenant A the numbers 12125550100-12125550109 on the shared trunk."""
    return trunk_assignment_save(
        trunk=shared_trunk(), tenant=tenant_a, did_pool="12125550100-12125550109"
    )


def _stored(assignment: TrunkAssignment) -> list[tuple[int, int]]:
    return list(
        PoolRange.objects.filter(assignment=assignment)
        .order_by("start")
        .values_list("start", "end")
    )


def _refusal(call: Callable[[], Any]) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call()
    return caught.value


# --- syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("did_pool", "message"),
    [
        ("12125550100;;12125550105", 'Entry 2 is empty: remove the extra ";"'),
        ("12125550100;2125550x01", 'Entry 2 "2125550x01": "x" is not a digit; use digits only'),
        ("12125550100-", 'Entry 1 "12125550100-": a range needs a number on each side of "-"'),
        (
            "12125550100-12125550101-12125550102",
            'Entry 1 "12125550100-12125550101-12125550102": '
            'write a range as two numbers joined by one "-"',
        ),
        (
            "+12125550100",
            'Entry 1 "+12125550100": remove the leading "+"; write 10 digits, '
            "or 11 digits starting with 1",
        ),
        (
            "12125550100-+12125550105",
            'Entry 1 "12125550100-+12125550105": remove the leading "+" ("+12125550105"); '
            "write 10 digits, or 11 digits starting with 1",
        ),
        (
            "02125550100",
            'Entry 1 "02125550100": remove the leading "0"; write 10 digits, '
            "or 11 digits starting with 1",
        ),
        (
            "0012125550100",
            'Entry 1 "0012125550100": remove the leading "00"; write 10 digits, '
            "or 11 digits starting with 1",
        ),
        (
            "442079460000",
            'Entry 1 "442079460000": not a US/Canada number: write 10 digits, '
            "or 11 digits starting with 1",
        ),
        (
            "11125550100",
            'Entry 1 "11125550100": not a US/Canada number: the area code cannot start with 0 or 1',
        ),
        (
            "2121550100",
            'Entry 1 "2121550100": not a US/Canada number: the exchange cannot start with 0 or 1',
        ),
        ("18762345678", 'Entry 1 "18762345678": not a US/Canada number'),
        ("12125550109-12125550100", 'Entry 1 "12125550109-12125550100": the range is reversed'),
    ],
)
def test_invalid_pool_is_refused_with_a_message_naming_the_entry(
    trunk: Trunk, tenant_a: Tenant, did_pool: str, message: str
) -> None:
    error = _refusal(lambda: trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool=did_pool))

    assert error.message == message
    assert error.code == "invalid_did_pool"
    assert error.field == "did_pool"
    assert not TrunkAssignment.objects.filter(trunk=trunk).exists()


def test_range_larger_than_the_setting_is_refused(
    trunk: Trunk, tenant_a: Tenant, settings: Any
) -> None:
    settings.DID_POOL_MAX_RANGE_SIZE = 10

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550110"
        )
    )

    assert error.message == (
        'Entry 1 "12125550100-12125550110": the range holds 11 numbers, more than the 10 allowed'
    )
    assert error.code == "invalid_did_pool"


def test_range_of_exactly_the_maximum_size_is_accepted(
    trunk: Trunk, tenant_a: Tenant, settings: Any
) -> None:
    settings.DID_POOL_MAX_RANGE_SIZE = 10

    assignment = trunk_assignment_save(
        trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550109"
    )

    assert _stored(assignment) == [(12125550100, 12125550109)]


def test_valid_pool_is_stored_sorted_merged_and_in_eleven_digit_form(
    trunk: Trunk, tenant_a: Tenant
) -> None:
    assignment = trunk_assignment_save(
        trunk=trunk,
        tenant=tenant_a,
        did_pool=" 6465550105 ; 12125550100-12125550104;2125550105-2125550106",
    )

    assert assignment.did_pool == "12125550100-12125550106;16465550105"
    assert _stored(assignment) == [(12125550100, 12125550106), (16465550105, 16465550105)]
    assert all(
        r.tenant_id == tenant_a.pk and r.trunk_id == trunk.pk for r in assignment.pool_ranges.all()
    )


# --- overlap -------------------------------------------------------------------------------


def test_overlap_with_another_tenants_pool_on_the_trunk_names_the_tenant_and_the_numbers(
    trunk: Trunk, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550109")

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=trunk, tenant=tenant_b, did_pool="12125550105-12125550120;16465550100"
        )
    )

    assert error.message == (
        "The pool overlaps another tenant's pool on trunk VoIP.ms New York: "
        "Tenant A: 12125550105-12125550109"
    )
    assert error.code == "did_pool_overlap"
    assert error.field == "did_pool"
    assert not TrunkAssignment.objects.filter(trunk=trunk, tenant=tenant_b).exists()


def test_overlap_with_several_tenants_names_each_with_its_shared_numbers(
    trunk: Trunk, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    tenant_c = tenant_create(name="Tenant C", slug="c.example")
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100;12125550102")
    trunk_assignment_save(trunk=trunk, tenant=tenant_b, did_pool="12125550110-12125550119")

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=trunk, tenant=tenant_c, did_pool="12125550100-12125550111"
        )
    )

    assert error.message == (
        "The pool overlaps another tenant's pool on trunk VoIP.ms New York: "
        "Tenant A: 12125550100;12125550102; Tenant B: 12125550110-12125550111"
    )


def test_changing_a_pool_into_another_tenants_numbers_is_refused_and_keeps_the_old_pool(
    trunk: Trunk, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550109")
    mine = trunk_assignment_save(trunk=trunk, tenant=tenant_b, did_pool="12125550110")

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=trunk, tenant=tenant_b, did_pool="12125550109-12125550110", assignment=mine
        )
    )

    assert error.code == "did_pool_overlap"
    mine.refresh_from_db()
    assert mine.did_pool == "12125550110"
    assert _stored(mine) == [(12125550110, 12125550110)]


def test_adjacent_pools_of_two_tenants_do_not_overlap(
    trunk: Trunk, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550109")

    assignment = trunk_assignment_save(
        trunk=trunk, tenant=tenant_b, did_pool="12125550110-12125550119"
    )

    assert _stored(assignment) == [(12125550110, 12125550119)]


def test_same_numbers_on_a_different_trunk_are_fine(
    trunk: Trunk, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550109")
    other = trunk_save(name="VoIP.ms Chicago", host="chicago1.voip.ms")

    assignment = trunk_assignment_save(
        trunk=other, tenant=tenant_b, did_pool="12125550100-12125550109"
    )

    assert _stored(assignment) == [(12125550100, 12125550109)]
    assert did_owner_tenant_id(trunk=trunk, number="+12125550105") == tenant_a.pk
    assert did_owner_tenant_id(trunk=other, number="+12125550105") == tenant_b.pk


def test_a_tenant_may_change_its_own_pool_over_its_own_numbers(
    trunk: Trunk, tenant_a: Tenant
) -> None:
    first = trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100-12125550109")

    again = trunk_assignment_save(
        trunk=trunk, tenant=tenant_a, did_pool="12125550105-12125550119", max_concurrent_calls=3
    )

    assert again.pk == first.pk
    assert again.max_concurrent_calls == 3
    assert _stored(again) == [(12125550105, 12125550119)]


# --- numbers in use ------------------------------------------------------------------------


def test_removing_a_tenant_is_refused_while_a_configuration_uses_the_trunk(
    pool_a: TrunkAssignment,
) -> None:
    make_configuration(pool_a.tenant, name="Front desk")

    error = _refusal(lambda: trunk_assignment_delete(assignment=pool_a))

    assert isinstance(error, Conflict)
    assert error.code == "did_pool_in_use"
    assert error.message == (
        "Tenant A's pool on VoIP.ms San Jose cannot be removed from the trunk while these use "
        "its numbers: SMS/MMS configuration 'Front desk'"
    )
    assert TrunkAssignment.objects.filter(pk=pool_a.pk).exists()
    assert _stored(pool_a) == [(12125550100, 12125550109)]


def test_removing_a_tenant_is_refused_while_an_inbound_rule_uses_its_numbers(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    make_rule(pool_a.tenant, did_range="12125550105", extension=reception, name="Sales")
    make_rule(
        pool_a.tenant, did_range="12125550106-12125550108", extension=reception, name="Support"
    )

    error = _refusal(lambda: trunk_assignment_delete(assignment=pool_a))

    assert error.code == "did_pool_in_use"
    assert error.message == (
        "Tenant A's pool on VoIP.ms San Jose cannot be removed from the trunk while these use "
        "its numbers: inbound rule 'Sales' (+12125550105); "
        "inbound rule 'Support' (+12125550106 to +12125550108)"
    )


def test_removing_a_tenant_is_allowed_once_nothing_uses_its_numbers(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    configuration = make_configuration(pool_a.tenant)
    rule = make_rule(pool_a.tenant, did_range="12125550105", extension=reception)
    sms_configuration_delete(configuration=configuration, actor=None)
    inbound_rule_delete(rule=rule, actor=None)

    trunk_assignment_delete(assignment=pool_a)

    assert not TrunkAssignment.objects.filter(pk=pool_a.pk).exists()
    assert not PoolRange.objects.filter(assignment_id=pool_a.pk).exists()
    assert did_owner_tenant_id(trunk=shared_trunk(), number="12125550105") is None


def test_emptying_a_pool_is_refused_while_a_configuration_uses_the_trunk(
    pool_a: TrunkAssignment,
) -> None:
    make_configuration(pool_a.tenant, name="Front desk")

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=pool_a.trunk, tenant=pool_a.tenant, did_pool="", assignment=pool_a
        )
    )

    assert error.code == "did_pool_in_use"
    assert "SMS/MMS configuration 'Front desk'" in error.message


def test_shrinking_a_pool_is_refused_while_an_inbound_rule_uses_the_removed_numbers(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    make_rule(pool_a.tenant, did_range="12125550105-12125550107", extension=reception)

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=pool_a.trunk,
            tenant=pool_a.tenant,
            did_pool="12125550100-12125550106",
            assignment=pool_a,
        )
    )

    assert isinstance(error, Conflict)
    assert error.code == "did_pool_in_use"
    assert error.message == (
        "Tenant A's pool on VoIP.ms San Jose cannot be shrunk while these use its numbers: "
        "inbound rule 'To reception' (+12125550105 to +12125550107)"
    )
    pool_a.refresh_from_db()
    assert pool_a.did_pool == "12125550100-12125550109"
    assert _stored(pool_a) == [(12125550100, 12125550109)]


def test_shrinking_that_splits_a_rules_range_across_two_entries_is_refused(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    make_rule(pool_a.tenant, did_range="12125550104-12125550106", extension=reception)

    error = _refusal(
        lambda: trunk_assignment_save(
            trunk=pool_a.trunk,
            tenant=pool_a.tenant,
            did_pool="12125550100-12125550104;12125550106-12125550109",
            assignment=pool_a,
        )
    )

    assert error.code == "did_pool_in_use"


def test_shrinking_that_keeps_the_used_numbers_is_allowed(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    make_configuration(pool_a.tenant)
    make_rule(pool_a.tenant, did_range="12125550105-12125550107", extension=reception)

    assignment = trunk_assignment_save(
        trunk=pool_a.trunk,
        tenant=pool_a.tenant,
        did_pool="12125550105-12125550107;12125550109",
        assignment=pool_a,
    )

    assert assignment.did_pool == "12125550105-12125550107;12125550109"
    assert _stored(assignment) == [(12125550105, 12125550107), (12125550109, 12125550109)]


def test_shrinking_is_allowed_once_the_rule_is_removed(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    rule = make_rule(pool_a.tenant, did_range="12125550108", extension=reception)
    inbound_rule_delete(rule=rule, actor=None)

    assignment = trunk_assignment_save(
        trunk=pool_a.trunk, tenant=pool_a.tenant, did_pool="12125550100", assignment=pool_a
    )

    assert _stored(assignment) == [(12125550100, 12125550100)]


def test_another_tenants_rules_do_not_block_shrinking_my_pool(world: World) -> None:
    pool_b = world.objects_b[TrunkAssignment]
    make_rule(
        world.tenant_a,
        did_range="12125550100-12125550109",
        extension=world.objects_a[Extension],
    )

    assignment = trunk_assignment_save(
        trunk=pool_b.trunk, tenant=world.tenant_b, did_pool="12125550110", assignment=pool_b
    )

    assert _stored(assignment) == [(12125550110, 12125550110)]


def test_removal_message_lists_at_most_ten_uses_and_counts_the_rest(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    for n in range(12):
        make_rule(
            pool_a.tenant, did_range=f"1212555010{n % 10}", extension=reception, name=f"R{n:02}"
        )

    error = _refusal(lambda: trunk_assignment_delete(assignment=pool_a))

    assert error.message.endswith("; and 2 more")
    assert error.message.count("inbound rule") == 10


# --- trunk deletion ------------------------------------------------------------------------


def test_deleting_a_trunk_used_by_a_configuration_is_refused(world: World) -> None:
    trunk = shared_trunk()

    error = _refusal(lambda: trunk_delete(trunk=trunk))

    assert isinstance(error, Conflict)
    assert error.code == "trunk_in_use"
    assert error.message.startswith("Trunk VoIP.ms San Jose cannot be deleted while these use it: ")
    assert "SMS/MMS configuration 'Factory configuration'" in error.message
    assert Trunk.objects.filter(pk=trunk.pk).exists()
    assert PoolRange.objects.filter(trunk=trunk).count() == 2


def test_trunk_check_delete_names_the_rules_using_the_trunk(
    pool_a: TrunkAssignment, reception: Extension
) -> None:
    make_rule(pool_a.tenant, did_range="12125550101", extension=reception, name="Night line")

    error = _refusal(lambda: trunk_check_delete(trunk=pool_a.trunk))

    assert error.message == (
        "Trunk VoIP.ms San Jose cannot be deleted while these use it: "
        "inbound rule 'Night line' (+12125550101)"
    )


def test_deleting_a_trunk_that_nothing_uses_removes_its_assignments_and_pools(
    trunk: Trunk, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100")
    trunk_assignment_save(trunk=trunk, tenant=tenant_b, did_pool="12125550101")
    trunk_check_delete(trunk=trunk)

    trunk_delete(trunk=trunk)

    assert not Trunk.objects.filter(pk=trunk.pk).exists()
    assert not TrunkAssignment.objects.filter(trunk_id=trunk.pk).exists()
    assert not PoolRange.objects.filter(trunk_id=trunk.pk).exists()


# --- owner lookups -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "owner"),
    [
        ("12125550099", None),
        ("12125550100", "a"),
        ("+12125550100", "a"),
        ("2125550100", "a"),
        ("12125550109", "a"),
        ("12125550110", "b"),
        ("+12125550119", "b"),
        ("12125550120", None),
        ("16465550100", None),  # tenant A's, but on its own trunk
        ("not a number", None),
        ("+442079460000", None),
    ],
)
def test_did_owner_is_found_at_range_edges_and_none_outside(
    world: World, number: str, owner: str | None
) -> None:
    owners = {"a": world.tenant_a.pk, "b": world.tenant_b.pk, None: None}

    assert did_owner_tenant_id(trunk=shared_trunk(), number=number) == owners[owner]


def test_did_owner_accepts_a_trunk_id_and_an_integer(world: World) -> None:
    assert did_owner_tenant_id(trunk=shared_trunk().pk, number=12125550110) == world.tenant_b.pk


def test_did_owner_is_none_in_a_gap_between_two_ranges_of_one_tenant(
    trunk: Trunk, tenant_a: Tenant
) -> None:
    trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool="12125550100;12125550102")

    assert did_owner_tenant_id(trunk=trunk, number="12125550101") is None
    assert did_owner_tenant_id(trunk=trunk, number="12125550102") == tenant_a.pk


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "client-bound"])
def test_did_owner_costs_one_query_in_a_pool_of_100000_numbers(
    trunk: Trunk,
    tenant_a: Tenant,
    tenant_b: Tenant,
    django_assert_num_queries: Any,
    settings: Any,
    prepared: bool,
) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    # 50 ranges of 2,000 numbers, 1,000 apart, through the real service.
    starts = [12125000000 + i * 3000 for i in range(50)]
    pool = ";".join(f"{start}-{start + 1999}" for start in starts)
    assignment = trunk_assignment_save(trunk=trunk, tenant=tenant_a, did_pool=pool)
    trunk_assignment_save(trunk=trunk, tenant=tenant_b, did_pool="13125550100-13125550199")
    assert PoolRange.objects.filter(assignment=assignment).count() == 50
    assert sum(end - start + 1 for start, end in _stored(assignment)) == 100_000
    probes = {
        starts[0]: tenant_a.pk,
        starts[25] + 1000: tenant_a.pk,
        starts[49] + 1999: tenant_a.pk,
        starts[10] + 2000: None,  # the gap after range 10
        starts[0] - 1: None,
        13125550150: tenant_b.pk,
        13125550200: None,
    }

    for number, owner in probes.items():
        with django_assert_num_queries(1):
            found = did_owner_tenant_id(trunk=trunk, number=f"+{number}")
        assert found == owner, number


def test_tenant_owns_the_numbers_of_its_pools_only(world: World) -> None:
    a, b, trunk = world.tenant_a, world.tenant_b, shared_trunk()

    assert tenant_owns_number(tenant=a, number="+12125550100")
    assert tenant_owns_number(tenant=a, number="2125550109", trunk=trunk)
    assert tenant_owns_number(tenant=a, number="+16465550104")
    assert not tenant_owns_number(tenant=a, number="+16465550104", trunk=trunk)
    assert not tenant_owns_number(tenant=a, number="+12125550110")
    assert tenant_owns_number(tenant=b, number="+12125550110")
    assert not tenant_owns_number(tenant=a, number="+12125550099")
    assert not tenant_owns_number(tenant=a, number="hello")
    assert not tenant_owns_number(tenant=None, number="+12125550100")


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_assignments_on_one_trunk_end_with_one_winner(
    tenant_a: Tenant, tenant_b: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    trunk = trunk_save(name="VoIP.ms Race", host="atlanta1.voip.ms")
    real_check = services.did_pool_check

    def slow_check(**kwargs: Any) -> Any:
        # Hold the transaction open after checking: without the trunk lock, both writers
        # would pass the overlap check before either stored its ranges.
        ranges = real_check(**kwargs)
        time.sleep(0.5)
        return ranges

    monkeypatch.setattr(services, "did_pool_check", slow_check)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def assign(tenant: Tenant, did_pool: str) -> None:
        try:
            barrier.wait(timeout=10)
            trunk_assignment_save(trunk=trunk, tenant=tenant, did_pool=did_pool)
            outcomes[tenant.slug] = "saved"
        except ApplicationError as error:
            outcomes[tenant.slug] = error.code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=assign, args=(tenant_a, "12125550100-12125550109")),
        threading.Thread(target=assign, args=(tenant_b, "12125550105-12125550114")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["did_pool_overlap", "saved"], outcomes
    winner = next(slug for slug, outcome in outcomes.items() if outcome == "saved")
    assert set(PoolRange.objects.filter(trunk=trunk).values_list("tenant__slug", flat=True)) == {
        winner
    }
    assert TrunkAssignment.objects.filter(trunk=trunk).count() == 1
