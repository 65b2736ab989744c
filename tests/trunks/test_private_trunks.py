"""Private trunks: a tenant allowed to creates trunks of its own in the tenant site."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import World
from trunks.models import PrivateTrunk, Trunk

URL = "/tenant/trunks/privatetrunk/"


def _allow(world: World, *tenants: Any) -> None:
    for tenant in tenants:
        type(tenant).objects.filter(pk=tenant.pk).update(allow_private_trunks=True)


def _form(**changes: Any) -> dict[str, Any]:
    data = {
        "name": "Our own VoIP.ms",
        "enabled": "on",
        "did_pool": "13322496213-13322496215",
        "host": "montreal1.voip.ms",
        "port": "5060",
        "transport": "udp",
        "sip_username": "123456_own",
        "sip_password": "Own-SIP-Secret-7788",
        "reregister_interval": "600",
        "max_concurrent_calls": "4",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_a_tenant_not_allowed_private_trunks_sees_no_menu_and_is_refused(
    world: World, client_for: Any
) -> None:
    client = client_for(world.admin_a)
    assert "privatetrunk" not in client.get("/tenant/").content.decode()
    assert client.get(URL).status_code == 403
    assert client.post(f"{URL}add/", _form()).status_code == 403
    assert not PrivateTrunk.objects.filter(name="Our own VoIP.ms").exists()


@pytest.mark.django_db
def test_an_allowed_tenant_creates_a_trunk_with_its_pool(world: World, client_for: Any) -> None:
    _allow(world, world.tenant_a)
    client = client_for(world.admin_a)
    response = client.post(f"{URL}add/", _form())
    assert response.status_code == 302, response.content.decode()[:2000]
    trunk = Trunk.objects.get(name="Our own VoIP.ms")
    assert trunk.tenant_id == world.tenant_a.pk
    assert trunk.sip_password == "Own-SIP-Secret-7788"
    assignment = trunk.assignments.get()
    assert (assignment.tenant_id, assignment.did_pool) == (
        world.tenant_a.pk,
        "13322496213-13322496215",
    )
    page = client.get(f"{URL}{trunk.pk}/change/").content.decode()
    assert "Own-SIP-Secret-7788" not in page
    assert "13322496213-13322496215" in page
    assert Trunk.objects.available_to(world.tenant_a).filter(pk=trunk.pk).exists()


@pytest.mark.django_db
def test_a_malformed_pool_is_a_form_error_and_creates_nothing(
    world: World, client_for: Any
) -> None:
    _allow(world, world.tenant_a)
    response = client_for(world.admin_a).post(f"{URL}add/", _form(did_pool="+13322496213"))
    assert response.status_code == 200
    assert "remove the leading" in response.content.decode()
    assert not Trunk.objects.filter(name="Our own VoIP.ms").exists()


@pytest.mark.django_db
def test_another_tenant_gets_404_for_a_private_trunk(world: World, client_for: Any) -> None:
    _allow(world, world.tenant_a, world.tenant_b)
    client_for(world.admin_a).post(f"{URL}add/", _form())
    trunk = Trunk.objects.get(name="Our own VoIP.ms")
    intruder = client_for(world.admin_b)
    assert intruder.get(f"{URL}{trunk.pk}/change/").status_code == 404
    assert intruder.post(f"{URL}{trunk.pk}/delete/", {"post": "yes"}).status_code == 404
    assert "Our own VoIP.ms" not in intruder.get(URL).content.decode()
    assert Trunk.objects.filter(pk=trunk.pk).exists()
