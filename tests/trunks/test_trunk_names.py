"""Trunk names are unique per owner: among system trunks, and within each tenant's private
trunks, so a name taken elsewhere never shows through to a tenant."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from core.errors import ApplicationError
from tenants.models import Tenant, User
from tests.factories import World
from trunks import services
from trunks.models import PrivateTrunk, Trunk, TrunkAssignment
from trunks.services import trunk_save

ClientFor = Callable[[User | None], Client]

PRIVATE_TRUNKS = "/tenant/trunks/privatetrunk/"
SYSTEM_TRUNKS = "/admin/trunks/trunk/"
ADMIN_API = "/api/v1/admin/trunks/"
SHARED = "VoIP.ms San Jose"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def allowed(world: World) -> World:
    """Return the world with both tenants allowed private trunks."""
    Tenant.objects.filter(pk__in=[world.tenant_a.pk, world.tenant_b.pk]).update(
        allow_private_trunks=True
    )
    return world


def _private_form(name: str, did_pool: str = "13322496213") -> dict[str, Any]:
    return {
        "name": name,
        "enabled": "on",
        "did_pool": did_pool,
        "host": "montreal1.voip.ms",
        "port": "5060",
        "transport": "udp",
        "sip_username": "123456_own",
        "sip_password": "Own-SIP-Secret-7788",
        "reregister_interval": "600",
        "max_concurrent_calls": "4",
    }


def _system_form(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "brand": "voipms",
        "enabled": "on",
        "host": "montreal1.voip.ms",
        "port": 5060,
        "transport": "udp",
        "sip_username": "200000_pbx",
        "sip_password": "",
        "reregister_interval": 600,
        "max_concurrent_calls": 10,
        "assignments-TOTAL_FORMS": 0,
        "assignments-INITIAL_FORMS": 0,
        "assignments-MIN_NUM_FORMS": 0,
        "assignments-MAX_NUM_FORMS": 1000,
    }


def _system_trunk(world: World) -> Trunk:
    """Return the system trunk the tenants share (not looked up by name: names now repeat)."""
    return world.objects_a[TrunkAssignment].trunk


def _private(tenant: Tenant, name: str) -> Trunk:
    return trunk_save(owner=tenant, name=name, host="montreal1.voip.ms")


def _name_errors(response: Any) -> list[str]:
    assert response.status_code == 200, "the form was accepted"
    return list(response.context["adminform"].form.errors.get("name", []))


# --- the tenant site -------------------------------------------------------------------------


@pytest.mark.django_db
def test_tenant_b_names_private_trunks_like_tenant_as_and_like_a_system_trunk(
    allowed: World, client_for: ClientFor
) -> None:
    assert (
        client_for(allowed.admin_a)
        .post(f"{PRIVATE_TRUNKS}add/", _private_form("Our own VoIP.ms"))
        .status_code
        == 302
    )
    client_b = client_for(allowed.admin_b)

    same_as_a = client_b.post(f"{PRIVATE_TRUNKS}add/", _private_form("Our own VoIP.ms"))
    same_as_system = client_b.post(f"{PRIVATE_TRUNKS}add/", _private_form(SHARED))

    assert same_as_a.status_code == 302, html.unescape(same_as_a.content.decode())[:2000]
    assert same_as_system.status_code == 302, html.unescape(same_as_system.content.decode())[:2000]
    owners = sorted(
        Trunk.objects.filter(name="Our own VoIP.ms").values_list("tenant__slug", flat=True)
    )
    assert owners == ["a.example", "b.example"]
    assert PrivateTrunk.objects.for_tenant(allowed.tenant_b).filter(name=SHARED).exists()
    assert Trunk.objects.filter(name=SHARED, tenant=None).get() == _system_trunk(allowed)


@pytest.mark.django_db
def test_a_tenant_cannot_add_a_second_private_trunk_of_one_name(
    allowed: World, client_for: ClientFor
) -> None:
    client = client_for(allowed.admin_a)
    assert client.post(f"{PRIVATE_TRUNKS}add/", _private_form("Backup")).status_code == 302

    response = client.post(f"{PRIVATE_TRUNKS}add/", _private_form("Backup", "13322496214"))

    assert _name_errors(response) == [
        "Tenant A has a private trunk named “Backup” already; choose another name."
    ]
    assert Trunk.objects.filter(name="Backup").count() == 1


@pytest.mark.django_db
def test_a_tenant_cannot_rename_a_private_trunk_onto_another_of_its_own(
    allowed: World, client_for: ClientFor
) -> None:
    _private(allowed.tenant_a, "Backup")
    other = _private(allowed.tenant_a, "Spare")
    _private(allowed.tenant_b, "Taken by B")
    client = client_for(allowed.admin_a)
    url = f"{PRIVATE_TRUNKS}{other.pk}/change/"

    refused = client.post(url, _private_form("Backup"))
    accepted = client.post(url, _private_form("Taken by B"))

    assert _name_errors(refused) == [
        "Tenant A has a private trunk named “Backup” already; choose another name."
    ]
    assert accepted.status_code == 302
    other.refresh_from_db()
    assert other.name == "Taken by B"


# --- the system site and the admin API -------------------------------------------------------


@pytest.mark.django_db
def test_system_admin_cannot_add_a_second_system_trunk_of_one_name(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.sysadmin).post(f"{SYSTEM_TRUNKS}add/", _system_form(SHARED))

    assert _name_errors(response) == [
        f"A system trunk named “{SHARED}” exists already; choose another name."
    ]
    assert Trunk.objects.filter(name=SHARED).count() == 1


@pytest.mark.django_db
def test_system_admin_adds_a_system_trunk_named_like_a_private_one(
    allowed: World, client_for: ClientFor
) -> None:
    private = _private(allowed.tenant_a, "Montreal")

    response = client_for(allowed.sysadmin).post(f"{SYSTEM_TRUNKS}add/", _system_form("Montreal"))

    assert response.status_code == 302
    assert Trunk.objects.filter(name="Montreal", tenant=None).exclude(pk=private.pk).exists()


@pytest.mark.django_db
def test_api_refuses_a_second_system_trunk_of_one_name_and_allows_a_private_ones_name(
    allowed: World, client_for: ClientFor
) -> None:
    _private(allowed.tenant_a, "Montreal")
    client = client_for(allowed.sysadmin)

    refused = client.post(
        ADMIN_API, {"name": SHARED, "host": "x.voip.ms"}, content_type="application/json"
    )
    created = client.post(
        ADMIN_API, {"name": "Montreal", "host": "y.voip.ms"}, content_type="application/json"
    )

    assert refused.status_code == 400, refused.content
    assert refused.json()["errors"] == {
        "name": [f"A system trunk named “{SHARED}” exists already; choose another name."]
    }
    assert created.status_code == 201, created.content
    assert Trunk.objects.filter(name="Montreal").count() == 2


@pytest.mark.django_db
def test_api_refuses_renaming_a_private_trunk_onto_another_of_the_same_tenant(
    allowed: World, client_for: ClientFor
) -> None:
    _private(allowed.tenant_a, "Backup")
    spare_a = _private(allowed.tenant_a, "Spare")
    spare_b = _private(allowed.tenant_b, "Spare")
    client = client_for(allowed.sysadmin)

    refused = client.patch(
        f"{ADMIN_API}{spare_a.pk}/", {"name": "Backup"}, content_type="application/json"
    )
    accepted = client.patch(
        f"{ADMIN_API}{spare_b.pk}/", {"name": "Backup"}, content_type="application/json"
    )

    assert refused.status_code == 400, refused.content
    assert refused.json()["errors"] == {
        "name": ["Tenant A has a private trunk named “Backup” already; choose another name."]
    }
    assert accepted.status_code == 200, accepted.content
    spare_a.refresh_from_db()
    spare_b.refresh_from_db()
    assert (spare_a.name, spare_b.name) == ("Spare", "Backup")


# --- the service and the database ------------------------------------------------------------


@pytest.mark.django_db
def test_the_service_checks_names_among_the_owners_trunks_only(world: World) -> None:
    _private(world.tenant_a, "Backup")

    assert _private(world.tenant_b, "Backup").tenant == world.tenant_b
    assert trunk_save(name="Backup", host="z.voip.ms").tenant is None
    with pytest.raises(ApplicationError) as caught:
        _private(world.tenant_a, "Backup")
    assert (caught.value.code, caught.value.field) == ("trunk_name_taken", "name")


@pytest.mark.django_db
def test_a_name_taken_between_the_check_and_the_insert_gives_the_services_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _private(world.tenant_a, "Backup")
    real_check = services.trunk_name_check
    calls: list[str] = []

    def check_that_misses_the_concurrent_row(**kwargs: Any) -> None:
        calls.append(kwargs["name"])
        if len(calls) > 1:
            real_check(**kwargs)

    # Both checks before the INSERT miss the other request's row, as in a race.
    monkeypatch.setattr(services, "trunk_name_check", check_that_misses_the_concurrent_row)
    monkeypatch.setattr(Trunk, "validate_constraints", lambda self, exclude=None: None)

    with pytest.raises(ApplicationError) as caught:
        _private(world.tenant_a, "Backup")

    assert caught.value.code == "trunk_name_taken"
    assert calls == ["Backup", "Backup"]
    assert Trunk.objects.filter(name="Backup").count() == 1


@pytest.mark.django_db
def test_the_database_holds_one_name_per_owner(world: World) -> None:
    Trunk.objects.create(name="Backup", host="a.voip.ms", tenant=world.tenant_a)
    Trunk.objects.create(name="Backup", host="b.voip.ms", tenant=world.tenant_b)
    Trunk.objects.create(name="Backup", host="c.voip.ms")

    for tenant in (world.tenant_a, None):
        with pytest.raises(IntegrityError), transaction.atomic():
            Trunk.objects.create(name="Backup", host="d.voip.ms", tenant=tenant)

    assert Trunk.objects.filter(name="Backup").count() == 3


# --- what a tenant sees ----------------------------------------------------------------------


@pytest.fixture
def same_names(allowed: World) -> Trunk:
    """Give tenant A a private trunk named like the system trunk it shares, and return it."""
    private = _private(allowed.tenant_a, SHARED)
    services.trunk_assignment_save(trunk=private, tenant=allowed.tenant_a, did_pool="13322496213")
    return private


@pytest.mark.django_db
def test_tenant_trunk_list_marks_the_private_trunk_of_a_shared_name(
    allowed: World, same_names: Trunk, client_for: ClientFor
) -> None:
    page = html.unescape(
        client_for(allowed.admin_a).get("/tenant/trunks/trunkassignment/").content.decode()
    )

    assert f"{SHARED} (private)" in page
    assert page.count(SHARED) == 2


@pytest.mark.django_db
def test_trunk_choices_of_an_sms_configuration_tell_same_named_trunks_apart(
    allowed: World, same_names: Trunk, client_for: ClientFor
) -> None:
    response = client_for(allowed.admin_a).get("/tenant/sms/smsconfiguration/add/")

    labels = {
        str(value): label
        for value, label in response.context["adminform"].form.fields["trunk"].choices
        if value
    }
    assert labels[str(_system_trunk(allowed).pk)] == SHARED
    assert labels[str(same_names.pk)] == f"{SHARED} (private)"


@pytest.mark.django_db
def test_tenant_api_flags_the_private_trunk_of_a_shared_name(
    allowed: World, same_names: Trunk, client_for: ClientFor
) -> None:
    rows = client_for(allowed.admin_a).get("/api/v1/trunks/").json()["results"]

    flags = {row["id"]: (row["name"], row["private"]) for row in rows}
    assert flags[_system_trunk(allowed).pk] == (SHARED, False)
    assert flags[same_names.pk] == (SHARED, True)
