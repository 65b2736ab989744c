"""Trunks in the REST API: each tenant's view of its trunks and pools, and system
administrators' CRUD of trunks and of tenant assignments with the service's DID pool rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from core.errors import ApplicationError
from sms.configurations import sms_configuration_delete
from sms.models import SmsConfiguration
from tenants.models import Extension, User
from tenants.services import tenant_create
from tests.factories import OWN_POOLS, POOLS, World, shared_trunk
from tests.sms.helpers import make_rule
from trunks.models import PoolRange, Trunk, TrunkAssignment
from trunks.services import did_pool_check, trunk_save

ClientFor = Callable[[User | None], Client]

TRUNKS = "/api/v1/trunks/"
ADMIN_TRUNKS = "/api/v1/admin/trunks/"
SIP_PASSWORD = "sip-Secret-Zebra-9431"
SIP_USERNAME = "100000_pbx"
TENANT_FIELDS = {
    "id",
    "name",
    "private",
    "brand",
    "host",
    "port",
    "transport",
    "enabled",
    "did_pool",
    "max_concurrent_calls",
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _assignments_url(trunk: Trunk, assignment: TrunkAssignment | None = None) -> str:
    url = f"{ADMIN_TRUNKS}{trunk.pk}/assignments/"
    return f"{url}{assignment.pk}/" if assignment else url


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    return body


def _post(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data, content_type="application/json")


def _patch(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.patch(url, data, content_type="application/json")


def _service_message(**kwargs: Any) -> str:
    """Return the message the DID pool service gives for these arguments."""
    with pytest.raises(ApplicationError) as caught:
        did_pool_check(**kwargs)
    return caught.value.message


# --- the tenant's trunks -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["admin_a", "user_a"])
def test_tenant_user_lists_its_trunks_with_host_and_own_pool(
    world: World, client_for: ClientFor, who: str
) -> None:
    response = client_for(getattr(world, who)).get(TRUNKS)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    rows = {row["name"]: row for row in body["results"]}
    assert set(rows) == {"Trunk of a.example", "VoIP.ms San Jose"}
    assert all(set(row) == TENANT_FIELDS for row in rows.values())
    assert rows["VoIP.ms San Jose"]["host"] == "sanjose2.voip.ms"
    assert rows["VoIP.ms San Jose"]["did_pool"] == POOLS["a.example"]
    assert rows["VoIP.ms San Jose"]["id"] == shared_trunk().pk
    assert rows["Trunk of a.example"]["did_pool"] == OWN_POOLS["a.example"]


@pytest.mark.django_db
def test_tenant_trunk_list_never_shows_another_tenants_pool_or_sip_credentials(
    world: World, client_for: ClientFor
) -> None:
    raw = client_for(world.admin_a).get(TRUNKS).content.decode()

    for hidden in (
        POOLS["b.example"],
        OWN_POOLS["b.example"],
        "12125550110",
        "16465550105",
        "Trunk of b.example",
        SIP_PASSWORD,
        SIP_USERNAME,
        "sip_",
    ):
        assert hidden not in raw, hidden


@pytest.mark.django_db
def test_each_tenant_sees_its_own_pool_on_the_shared_trunk_detail(
    world: World, client_for: ClientFor
) -> None:
    url = f"{TRUNKS}{shared_trunk().pk}/"

    body_a = client_for(world.admin_a).get(url).json()
    body_b = client_for(world.admin_b).get(url).json()

    assert set(body_a) == TENANT_FIELDS
    assert body_a["did_pool"] == POOLS["a.example"]
    assert body_b["did_pool"] == POOLS["b.example"]
    assert body_a["host"] == body_b["host"] == "sanjose2.voip.ms"
    assert SIP_PASSWORD not in json.dumps(body_a) + json.dumps(body_b)


@pytest.mark.django_db
def test_another_tenants_private_trunk_is_404(world: World, client_for: ClientFor) -> None:
    response = client_for(world.admin_a).get(f"{TRUNKS}{world.objects_b[Trunk].pk}/")

    body = _error(response, 404, "not_found")
    assert "b.example" not in json.dumps(body)


@pytest.mark.django_db
def test_system_admin_reads_a_tenants_trunks_with_the_tenant_header(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)

    body = client.get(TRUNKS, HTTP_X_TENANT="b.example").json()

    assert {row["name"]: row["did_pool"] for row in body["results"]} == {
        "Trunk of b.example": OWN_POOLS["b.example"],
        "VoIP.ms San Jose": POOLS["b.example"],
    }
    _error(client.get(TRUNKS), 400, "tenant_required")


@pytest.mark.django_db
def test_tenant_admin_naming_another_tenant_in_the_header_gets_404(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    _error(client.get(TRUNKS, HTTP_X_TENANT="b.example"), 404, "not_found")
    _error(client.get(f"{TRUNKS}{shared_trunk().pk}/", HTTP_X_TENANT="b.example"), 404, "not_found")


@pytest.mark.django_db
def test_tenant_trunk_routes_are_read_only(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)
    url = f"{TRUNKS}{shared_trunk().pk}/"

    assert _patch(client, url, {"did_pool": "12125550100-12125550119"}).status_code == 405
    assert client.delete(url).status_code == 405
    assert _post(client, TRUNKS, {"name": "Mine"}).status_code == 405
    assert world.objects_a[TrunkAssignment].did_pool == POOLS["a.example"]


# --- system administrators: trunks ---------------------------------------------------------


@pytest.mark.django_db
def test_system_admin_lists_trunks_without_sip_passwords(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.sysadmin).get(ADMIN_TRUNKS)

    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows) == {"Trunk of a.example", "Trunk of b.example", "VoIP.ms San Jose"}
    assert all("sip_password" not in row for row in rows.values())
    assert rows["VoIP.ms San Jose"]["sip_password_set"] is True
    assert rows["VoIP.ms San Jose"]["sip_username"] == SIP_USERNAME
    assert rows["Trunk of a.example"]["sip_password_set"] is False
    assert SIP_PASSWORD not in response.content.decode()


@pytest.mark.django_db
def test_system_admin_creates_a_trunk_and_the_password_is_write_only(
    world: World, client_for: ClientFor
) -> None:
    response = _post(
        client_for(world.sysadmin),
        ADMIN_TRUNKS,
        {
            "name": "VoIP.ms Dallas",
            "host": "dallas1.voip.ms",
            "transport": "tls",
            "port": 5061,
            "sip_username": "300000_pbx",
            "sip_password": "Dallas-Pass-6620",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert "sip_password" not in body
    assert body["sip_password_set"] is True
    assert "Dallas-Pass-6620" not in response.content.decode()
    trunk = Trunk.objects.get(pk=body["id"])
    assert (trunk.host, trunk.port, trunk.transport) == ("dallas1.voip.ms", 5061, "tls")
    assert trunk.sip_password == "Dallas-Pass-6620"
    assert trunk.tenant is None


@pytest.mark.django_db
@pytest.mark.parametrize("sent", [{}, {"sip_password": ""}])
def test_changing_a_trunk_without_a_password_keeps_the_stored_one(
    world: World, client_for: ClientFor, sent: dict[str, str]
) -> None:
    trunk = shared_trunk()

    response = _patch(
        client_for(world.sysadmin),
        f"{ADMIN_TRUNKS}{trunk.pk}/",
        {"host": "sanjose3.voip.ms", **sent},
    )

    assert response.status_code == 200, response.content
    assert response.json()["sip_password_set"] is True
    trunk.refresh_from_db()
    assert trunk.host == "sanjose3.voip.ms"
    assert trunk.sip_password == SIP_PASSWORD


@pytest.mark.django_db
def test_a_new_sip_password_replaces_the_stored_one(world: World, client_for: ClientFor) -> None:
    trunk = shared_trunk()

    response = _patch(
        client_for(world.sysadmin), f"{ADMIN_TRUNKS}{trunk.pk}/", {"sip_password": "Fresh-7310"}
    )

    assert response.status_code == 200, response.content
    assert "Fresh-7310" not in response.content.decode()
    trunk.refresh_from_db()
    assert trunk.sip_password == "Fresh-7310"


@pytest.mark.django_db
def test_trunk_detail_never_returns_the_password(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).get(f"{ADMIN_TRUNKS}{shared_trunk().pk}/")

    assert response.status_code == 200
    assert "sip_password" not in response.json()
    assert SIP_PASSWORD not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"host": "dallas1.voip.ms"}, {"name"}),
        ({"name": "VoIP.ms San Jose", "host": "x.voip.ms"}, {"name"}),
        ({"name": "Bad", "host": "x.voip.ms", "port": 70000}, {"port"}),
        ({"name": "Bad", "host": "x.voip.ms", "transport": "sctp"}, {"transport"}),
        ({"name": "Bad", "host": "x.voip.ms", "reregister_interval": 5}, {"reregister_interval"}),
        ({"name": "", "host": ""}, {"name", "host"}),
    ],
)
def test_invalid_trunk_is_refused_with_errors_per_field(
    world: World, client_for: ClientFor, data: dict[str, Any], fields: set[str]
) -> None:
    response = _post(client_for(world.sysadmin), ADMIN_TRUNKS, data)

    body = _error(response, 400, "invalid")
    assert set(body["errors"]) == fields
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())
    assert Trunk.objects.count() == 3


@pytest.mark.django_db
def test_deleting_a_trunk_in_use_is_409_and_an_unused_one_is_deleted(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    unused = trunk_save(name="VoIP.ms Unused", host="unused.voip.ms")

    body = _error(client.delete(f"{ADMIN_TRUNKS}{shared_trunk().pk}/"), 409, "trunk_in_use")
    response = client.delete(f"{ADMIN_TRUNKS}{unused.pk}/")

    assert body["detail"] == (
        "Trunk VoIP.ms San Jose cannot be deleted while these use it: "
        "SMS/MMS configuration 'Factory configuration'"
    )
    assert Trunk.objects.filter(pk=shared_trunk().pk).exists()
    assert response.status_code == 204
    assert not Trunk.objects.filter(pk=unused.pk).exists()


# --- system administrators: assignments ----------------------------------------------------


@pytest.mark.django_db
def test_system_admin_lists_a_trunks_assignments(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).get(_assignments_url(shared_trunk()))

    assert response.status_code == 200
    rows = response.json()["results"]
    assert {row["tenant"]: row["did_pool"] for row in rows} == POOLS
    assert all(set(row) == {"id", "tenant", "did_pool", "max_concurrent_calls"} for row in rows)


@pytest.mark.django_db
def test_system_admin_assigns_a_tenant_with_a_pool(world: World, client_for: ClientFor) -> None:
    trunk = trunk_save(name="VoIP.ms Denver", host="denver1.voip.ms")

    response = _post(
        client_for(world.sysadmin),
        _assignments_url(trunk),
        {"tenant": "a.example", "did_pool": "7205550105;17205550100-7205550104"},
    )

    assert response.status_code == 201, response.content
    assert response.json()["did_pool"] == "17205550100-17205550105"
    assert response.json()["tenant"] == "a.example"
    assert list(
        PoolRange.objects.filter(trunk=trunk).values_list("tenant__slug", "start", "end")
    ) == [("a.example", 17205550100, 17205550105)]


@pytest.mark.django_db
def test_overlapping_pool_is_400_with_the_services_message(
    world: World, client_for: ClientFor
) -> None:
    tenant_c = tenant_create(name="Tenant C", slug="c.example")
    trunk = shared_trunk()
    pool = "12125550105-12125550112"
    expected = _service_message(trunk=trunk, tenant=tenant_c, did_pool=pool)

    response = _post(
        client_for(world.sysadmin),
        _assignments_url(trunk),
        {"tenant": "c.example", "did_pool": pool},
    )

    body = _error(response, 400, "did_pool_overlap")
    assert body["detail"] == expected
    assert body["detail"] == (
        "The pool overlaps another tenant's pool on trunk VoIP.ms San Jose: "
        "Tenant A: 12125550105-12125550109; Tenant B: 12125550110-12125550112"
    )
    assert body["field"] == "did_pool"
    assert not TrunkAssignment.objects.filter(tenant=tenant_c).exists()


@pytest.mark.django_db
def test_changing_a_pool_into_another_tenants_numbers_is_400(
    world: World, client_for: ClientFor
) -> None:
    assignment = world.objects_b[TrunkAssignment]

    response = _patch(
        client_for(world.sysadmin),
        _assignments_url(assignment.trunk, assignment),
        {"did_pool": "12125550109-12125550119"},
    )

    body = _error(response, 400, "did_pool_overlap")
    assert body["detail"].endswith("Tenant A: 12125550109")
    assignment.refresh_from_db()
    assert assignment.did_pool == POOLS["b.example"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pool", "message"),
    [
        (
            "+12125550120",
            'Entry 1 "+12125550120": remove the leading "+"; write 10 digits, '
            "or 11 digits starting with 1",
        ),
        ("12125550129-12125550120", 'Entry 1 "12125550129-12125550120": the range is reversed'),
        ("12125550120;", 'Entry 2 is empty: remove the extra ";"'),
    ],
)
def test_invalid_pool_is_400_with_the_parsers_message(
    world: World, client_for: ClientFor, pool: str, message: str
) -> None:
    tenant_create(name="Tenant C", slug="c.example")

    response = _post(
        client_for(world.sysadmin),
        _assignments_url(shared_trunk()),
        {"tenant": "c.example", "did_pool": pool},
    )

    assert _error(response, 400, "invalid_did_pool")["detail"] == message


@pytest.mark.django_db
def test_range_over_the_size_limit_is_400(
    world: World, client_for: ClientFor, settings: Any
) -> None:
    settings.DID_POOL_MAX_RANGE_SIZE = 100
    trunk = trunk_save(name="VoIP.ms Denver", host="denver1.voip.ms")

    response = _post(
        client_for(world.sysadmin),
        _assignments_url(trunk),
        {"tenant": "a.example", "did_pool": "17205550100-17205550200"},
    )

    assert _error(response, 400, "invalid_did_pool")["detail"] == (
        'Entry 1 "17205550100-17205550200": the range holds 101 numbers, more than the 100 allowed'
    )


@pytest.mark.django_db
def test_shrinking_a_pool_a_rule_uses_is_409(world: World, client_for: ClientFor) -> None:
    make_rule(world.tenant_a, did_range="12125550109", extension=world.objects_a[Extension])
    assignment = world.objects_a[TrunkAssignment]

    response = _patch(
        client_for(world.sysadmin),
        _assignments_url(assignment.trunk, assignment),
        {"did_pool": "12125550100-12125550108"},
    )

    body = _error(response, 409, "did_pool_in_use")
    assert body["detail"] == (
        "Tenant A's pool on VoIP.ms San Jose cannot be shrunk while these use its numbers: "
        "inbound rule 'To reception' (+12125550109)"
    )
    assignment.refresh_from_db()
    assert assignment.did_pool == POOLS["a.example"]


@pytest.mark.django_db
def test_shrinking_that_keeps_the_used_numbers_is_allowed(
    world: World, client_for: ClientFor
) -> None:
    make_rule(world.tenant_a, did_range="12125550109", extension=world.objects_a[Extension])
    assignment = world.objects_a[TrunkAssignment]

    response = _patch(
        client_for(world.sysadmin),
        _assignments_url(assignment.trunk, assignment),
        {"did_pool": "12125550105-12125550109", "max_concurrent_calls": 2},
    )

    assert response.status_code == 200, response.content
    assert response.json()["did_pool"] == "12125550105-12125550109"
    assert response.json()["max_concurrent_calls"] == 2


@pytest.mark.django_db
def test_moving_an_assignment_to_another_tenant_is_400(world: World, client_for: ClientFor) -> None:
    assignment = world.objects_a[TrunkAssignment]

    response = _patch(
        client_for(world.sysadmin),
        _assignments_url(assignment.trunk, assignment),
        {"tenant": "b.example", "did_pool": "12125550190"},
    )

    assert _error(response, 400, "invalid")["detail"] == (
        "An assignment cannot move to another tenant."
    )
    assignment.refresh_from_db()
    assert assignment.tenant == world.tenant_a


@pytest.mark.django_db
def test_removing_a_tenant_in_use_is_409_and_allowed_once_unused(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    assignment = world.objects_a[TrunkAssignment]
    url = _assignments_url(assignment.trunk, assignment)

    body = _error(client.delete(url), 409, "did_pool_in_use")
    assert body["detail"] == (
        "Tenant A's pool on VoIP.ms San Jose cannot be removed from the trunk while these use "
        "its numbers: SMS/MMS configuration 'Factory configuration'"
    )
    sms_configuration_delete(configuration=world.objects_a[SmsConfiguration], actor=None)

    assert client.delete(url).status_code == 204
    assert not TrunkAssignment.objects.filter(pk=assignment.pk).exists()
    assert not PoolRange.objects.filter(assignment_id=assignment.pk).exists()


@pytest.mark.django_db
def test_an_assignment_is_reached_only_through_its_own_trunk(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    assignment = world.objects_a[TrunkAssignment]
    other_trunk = world.objects_b[Trunk]

    _error(client.get(_assignments_url(other_trunk, assignment)), 404, "not_found")
    _error(client.delete(_assignments_url(other_trunk, assignment)), 404, "not_found")
    _error(client.get(f"{ADMIN_TRUNKS}999999/assignments/"), 404, "not_found")
    assert TrunkAssignment.objects.filter(pk=assignment.pk).exists()


@pytest.mark.django_db
def test_unknown_tenant_slug_is_a_field_error(world: World, client_for: ClientFor) -> None:
    trunk = trunk_save(name="VoIP.ms Denver", host="denver1.voip.ms")

    response = _post(
        client_for(world.sysadmin),
        _assignments_url(trunk),
        {"tenant": "nobody.example", "did_pool": "17205550100"},
    )

    assert set(_error(response, 400, "invalid")["errors"]) == {"tenant"}


# --- permissions ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["admin_a", "user_a"])
def test_tenant_users_get_403_on_the_admin_routes(
    world: World, client_for: ClientFor, who: str
) -> None:
    client = client_for(getattr(world, who))
    trunk = shared_trunk()
    assignment = world.objects_a[TrunkAssignment]

    for response in (
        client.get(ADMIN_TRUNKS),
        client.get(f"{ADMIN_TRUNKS}{trunk.pk}/"),
        _post(client, ADMIN_TRUNKS, {"name": "Mine", "host": "mine.voip.ms"}),
        _patch(client, f"{ADMIN_TRUNKS}{trunk.pk}/", {"sip_password": "hijack"}),
        client.delete(f"{ADMIN_TRUNKS}{trunk.pk}/"),
        client.get(_assignments_url(trunk)),
        _post(client, _assignments_url(trunk), {"tenant": "a.example", "did_pool": "1"}),
        _patch(
            client, _assignments_url(trunk, assignment), {"did_pool": "12125550100-12125550119"}
        ),
        client.delete(_assignments_url(trunk, assignment)),
    ):
        _error(response, 403, "permission_denied")
        assert SIP_PASSWORD not in response.content.decode()

    trunk.refresh_from_db()
    assert trunk.sip_password == SIP_PASSWORD
    assert TrunkAssignment.objects.get(pk=assignment.pk).did_pool == POOLS["a.example"]


@pytest.mark.django_db
def test_anonymous_requests_are_refused(world: World, client_for: ClientFor) -> None:
    client = client_for(None)
    trunk = shared_trunk()

    for url in (TRUNKS, f"{TRUNKS}{trunk.pk}/", ADMIN_TRUNKS, _assignments_url(trunk)):
        response = client.get(url)
        assert response.status_code in (401, 403), url
        assert response.json()["code"] == "not_authenticated"
        assert POOLS["a.example"] not in response.content.decode()


@pytest.mark.django_db
def test_assigning_a_tenant_twice_to_one_trunk_is_refused(world: World, client_for: Any) -> None:
    trunk = world.objects_a[Trunk]
    response = client_for(world.sysadmin).post(
        f"/api/v1/admin/trunks/{trunk.pk}/assignments/",
        {"tenant": world.tenant_a.slug, "did_pool": "16465550100"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "already_assigned"
    assert trunk.assignments.get().did_pool == "16465550100-16465550104"
