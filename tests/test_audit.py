"""The audit trail: sign-ins, failures, lock-outs, tokens, Manage and every secret change, each
with user, tenant, client address and time."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from sms.inbound.rules import inbound_rule_secret
from sms.models import Action, SmsConfiguration
from tenants.middleware import current_client_address
from tenants.models import AuditEvent, Extension, User
from tenants.services import api_token_create, audit_record, tenant_update
from tests.factories import World
from tests.sms.helpers import make_rule
from trunks.models import Trunk

ClientFor = Callable[[User | None], Client]

PASSWORD = "correct horse 42"
ADDRESS = "203.0.113.7"


def _client(user: User | None = None, address: str = ADDRESS) -> Client:
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=address)
    if user is not None:
        client.force_login(user)
    return client


def _sign_in(username: str, password: str, address: str = ADDRESS) -> Any:
    return _client(address=address).post("/login/", {"username": username, "password": password})


def _everything_recorded() -> str:
    return json.dumps(list(AuditEvent.objects.values()), default=str)


def _event(action: str, **filters: Any) -> AuditEvent:
    return AuditEvent.objects.get(action=action, **filters)


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sign_in_is_recorded_with_user_tenant_address_and_time(world: World) -> None:
    response = _sign_in(world.admin_a.username, PASSWORD)

    assert response.status_code == 302
    event = _event("signed_in", address=ADDRESS)
    assert (event.actor, event.actor_name, event.tenant) == (
        world.admin_a,
        "alice-admin",
        world.tenant_a,
    )
    assert event.at is not None
    assert PASSWORD not in _everything_recorded()


@pytest.mark.django_db
def test_a_failed_sign_in_is_recorded_under_the_tried_name_without_the_password(
    world: World,
) -> None:
    _sign_in(world.admin_a.username, "Wrong-Password-9931")
    _sign_in("nobody-at-all", "Another-Guess-5512", address="198.51.100.9")

    known = _event("sign_in_failed", actor_name="alice-admin")
    assert (known.actor, known.tenant, known.address) == (None, world.tenant_a, ADDRESS)
    assert known.object_id == str(world.admin_a.pk)
    unknown = _event("sign_in_failed", actor_name="nobody-at-all")
    assert (unknown.tenant, unknown.address, unknown.object_id) == (None, "198.51.100.9", "")
    recorded = _everything_recorded()
    assert "Wrong-Password-9931" not in recorded
    assert "Another-Guess-5512" not in recorded
    assert not AuditEvent.objects.filter(action="signed_in").exists()


@pytest.mark.django_db
def test_a_disabled_tenants_sign_in_is_recorded_as_failed(world: World) -> None:
    tenant_update(tenant=world.tenant_a, enabled=False)

    _sign_in(world.user_a.username, PASSWORD)

    assert _event("sign_in_failed").tenant == world.tenant_a
    assert not AuditEvent.objects.filter(action="signed_in").exists()


@pytest.mark.django_db
def test_a_lock_out_is_recorded(world: World, settings: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(world.admin_b.username, "wrong")

    response = _sign_in(world.admin_b.username, PASSWORD)

    assert response.status_code == 429
    events = AuditEvent.objects.filter(action="locked_out")
    assert events.exists()
    assert {(e.actor_name, e.tenant_id, e.address) for e in events} == {
        ("bob-admin", world.tenant_b.pk, ADDRESS)
    }
    assert not AuditEvent.objects.filter(action="signed_in").exists()


# --- Manage and Switch to Administrator ------------------------------------------------------


@pytest.mark.django_db
def test_manage_and_switch_to_administrator_record_the_address(world: World) -> None:
    client = _client(world.sysadmin)

    client.post(f"/admin/tenants/tenant/{world.tenant_b.pk}/manage/")
    client.post("/tenant/switch-to-administrator/")

    for action in ("manage", "switch_to_administrator"):
        event = _event(action)
        assert (event.actor, event.tenant, event.address) == (
            world.sysadmin,
            world.tenant_b,
            ADDRESS,
        )


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_creation_and_revocation_record_who_for_whom_and_from_where(
    world: World,
) -> None:
    client = _client(world.admin_a)

    created = client.post(
        "/api/v1/api-tokens/", {"user": world.user_a.pk}, content_type="application/json"
    )
    client.delete(f"/api/v1/api-tokens/{created.json()['id']}/")

    for action in ("api_token_created", "api_token_revoked"):
        event = _event(action)
        assert (event.actor, event.tenant, event.address) == (
            world.admin_a,
            world.tenant_a,
            ADDRESS,
        )
        assert event.detail == {"user": "alice-101"}
    assert created.json()["key"] not in _everything_recorded()


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_voipms_api_password_is_recorded_without_its_value(world: World) -> None:
    configuration = world.objects_a[SmsConfiguration]
    client = _client(world.admin_a)

    response = client.patch(
        f"/api/v1/sms-configurations/{configuration.pk}/",
        {"password": "Brand-New-Api-Password-77"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    event = _event("secret_changed", address=ADDRESS)
    assert (event.actor, event.tenant, event.detail) == (
        world.admin_a,
        world.tenant_a,
        {"field": "api_password"},
    )
    assert event.object_id == str(configuration.pk)
    assert "Brand-New-Api-Password-77" not in _everything_recorded()


@pytest.mark.django_db
def test_a_change_without_a_password_records_no_secret_change(world: World) -> None:
    configuration = world.objects_a[SmsConfiguration]

    _client(world.admin_a).patch(
        f"/api/v1/sms-configurations/{configuration.pk}/",
        {"name": "Renamed"},
        content_type="application/json",
    )

    assert not AuditEvent.objects.filter(action="secret_changed", address=ADDRESS).exists()


@pytest.mark.django_db
def test_a_webhook_rotation_is_recorded_as_a_secret_change(world: World) -> None:
    configuration = world.objects_a[SmsConfiguration]

    response = _client(world.admin_a).post(
        f"/api/v1/sms-configurations/{configuration.pk}/rotate-webhook/"
    )

    assert response.status_code == 200, response.content
    event = _event("secret_changed", address=ADDRESS)
    assert (event.actor, event.tenant, event.detail) == (
        world.admin_a,
        world.tenant_a,
        {"field": "webhook_token"},
    )
    assert _event("webhook_rotated").address == ADDRESS
    configuration.refresh_from_db()
    assert configuration.webhook_token not in _everything_recorded()


@pytest.mark.django_db
def test_a_new_sip_password_is_recorded_without_its_value(world: World) -> None:
    trunk = world.objects_a[Trunk]

    response = _client(world.sysadmin).patch(
        f"/api/v1/admin/trunks/{trunk.pk}/",
        {"sip_password": "Sip-Secret-Password-31"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    event = _event("secret_changed", address=ADDRESS)
    assert (event.actor, event.detail, event.object_id) == (
        world.sysadmin,
        {"field": "sip_password"},
        str(trunk.pk),
    )
    assert "Sip-Secret-Password-31" not in _everything_recorded()


@pytest.mark.django_db
def test_a_signing_secret_made_on_first_use_is_recorded_once(world: World) -> None:
    rule = make_rule(
        world.tenant_a,
        did_range="12125550101",
        extension=world.objects_a[Extension],
        office_action=Action.HTTP,
        office_target="https://hooks.example.com/in",
    )

    secret = inbound_rule_secret(rule=rule)
    inbound_rule_secret(rule=rule)

    event = _event("secret_changed", object_id=str(rule.pk))
    assert (event.tenant, event.actor, event.address) == (world.tenant_a, None, None)
    assert event.detail == {"field": "webhook_secret"}
    assert secret not in _everything_recorded()


# --- the helper ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_outside_a_request_there_is_no_address(world: World) -> None:
    _client(world.admin_a).get("/api/v1/trunks/")

    assert current_client_address() is None
    api_token_create(user=world.user_b, name="cli")

    assert _event("api_token_created").address is None


@pytest.mark.django_db
def test_audit_record_takes_an_explicit_address(world: World) -> None:
    event = audit_record(
        actor=world.admin_a,
        action="two_factor_enrolled",
        tenant=world.tenant_a,
        obj=world.admin_a,
        address="2001:db8::1",
    )

    event.refresh_from_db()
    assert (event.address, event.actor_name, event.object_id) == (
        "2001:db8::1",
        "alice-admin",
        str(world.admin_a.pk),
    )
