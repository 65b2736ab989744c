"""Signing in, lock-out after repeated failures, and who may Manage a tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import AuditEvent, Role, User
from tests.factories import World

ClientFor = Callable[[User | None], Client]

PASSWORD = "correct horse 42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _sign_in(username: str, password: str, *, ip: str = "127.0.0.1") -> Any:
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=ip)
    response = client.post("/login/", {"username": username, "password": password})
    response.client = client
    return response


def _signed_in(response: Any) -> bool:
    return "_auth_user_id" in response.client.session


def _manage_url(tenant_id: int) -> str:
    return f"/admin/tenants/tenant/{tenant_id}/manage/"


def _refused(client: Client, response: Any) -> bool:
    """Return whether the response refuses: 403, or a detour via a login page that ends in 403."""
    if response.status_code == 403:
        return True
    if response.status_code != 302 or "/login/" not in response["Location"]:
        return False
    final = client.get(response["Location"], follow=True)
    return final.status_code == 403 or final.request["PATH_INFO"] == "/login/"


def _final_path(client: Client, url: str) -> str:
    response = client.get(url, follow=True)
    assert response.status_code == 200
    return response.request["PATH_INFO"]


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_role_is_sent_to_its_own_place_after_signing_in(world: World) -> None:
    for user, place in (
        (world.sysadmin, "/admin/"),
        (world.admin_a, "/tenant/"),
        (world.user_a, "/inbox/"),
    ):
        response = _sign_in(user.username, PASSWORD)
        assert response.status_code == 302
        assert _signed_in(response)
        home = response.client.get(response["Location"])
        assert home.status_code == 302
        assert home["Location"] == place, user.username


@pytest.mark.django_db
def test_wrong_password_shows_the_form_again(world: World) -> None:
    response = _sign_in(world.admin_a.username, "wrong password")

    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert not _signed_in(response)


@pytest.mark.django_db
def test_repeated_failed_sign_ins_lock_the_username_from_that_address(
    world: World, settings: Any
) -> None:
    username = world.admin_a.username
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(username, "wrong password")

    response = _sign_in(username, PASSWORD)

    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert not _signed_in(response)
    assert response.client.get("/tenant/").status_code == 302


@pytest.mark.django_db
def test_fewer_failures_than_the_limit_do_not_lock(world: World, settings: Any) -> None:
    username = world.admin_a.username
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(username, "wrong password").status_code == 200

    response = _sign_in(username, PASSWORD)

    assert response.status_code == 302
    assert _signed_in(response)


@pytest.mark.django_db
def test_lock_out_keeps_other_addresses_and_other_usernames_free(
    world: World, settings: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(world.admin_a.username, "wrong password", ip="10.0.0.1")
    assert _sign_in(world.admin_a.username, PASSWORD, ip="10.0.0.1").status_code == 429

    from_elsewhere = _sign_in(world.admin_a.username, PASSWORD, ip="10.0.0.2")
    assert from_elsewhere.status_code == 302
    assert _signed_in(from_elsewhere)

    someone_else = _sign_in(world.admin_b.username, PASSWORD, ip="10.0.0.1")
    assert someone_else.status_code == 302
    assert _signed_in(someone_else)


@pytest.mark.django_db
def test_user_of_a_disabled_tenant_cannot_sign_in(world: World) -> None:
    from tenants.services import tenant_update

    tenant_update(tenant=world.tenant_a, enabled=False)

    response = _sign_in(world.admin_a.username, PASSWORD)

    assert response.status_code == 200
    assert b"disabled" in response.content
    assert not _signed_in(response)


@pytest.mark.django_db
def test_disabling_a_tenant_ends_its_users_sessions(world: World, client_for: ClientFor) -> None:
    from tenants.services import tenant_update

    client = client_for(world.admin_a)
    assert client.get("/tenant/").status_code == 200

    tenant_update(tenant=world.tenant_a, enabled=False)

    assert _final_path(client, "/tenant/") == "/login/"


# --- Manage and Switch to Administrator --------------------------------------------------------


@pytest.mark.django_db
def test_system_admin_manages_a_tenant_and_it_is_audited(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)

    response = client.post(_manage_url(world.tenant_a.pk))

    assert response.status_code == 302
    assert response["Location"] == "/tenant/"
    assert client.session[MANAGED_TENANT_SESSION_KEY] == world.tenant_a.pk
    event = AuditEvent.objects.get(action="manage")
    assert event.tenant == world.tenant_a
    assert event.actor == world.sysadmin
    assert event.actor_name == world.sysadmin.username
    assert event.object_id == str(world.tenant_a.pk)
    page = client.get("/tenant/")
    assert page.status_code == 200
    assert b'data-testid="acting-as">Tenant A / root<' in page.content


@pytest.mark.django_db
def test_tenant_admin_cannot_manage_a_tenant(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    for tenant in (world.tenant_a, world.tenant_b):
        response = client.post(_manage_url(tenant.pk))
        assert _refused(client, response), response
        assert MANAGED_TENANT_SESSION_KEY not in client.session

    assert not AuditEvent.objects.filter(action="manage").exists()
    assert b"Tenant B" not in client.get("/tenant/").content


@pytest.mark.django_db
def test_extension_user_and_anonymous_cannot_manage_a_tenant(
    world: World, client_for: ClientFor
) -> None:
    user = client_for(world.user_a)
    assert _refused(user, user.post(_manage_url(world.tenant_b.pk)))
    anonymous = client_for(None)
    assert _final_path(anonymous, _manage_url(world.tenant_b.pk)) == "/login/"
    assert _refused(anonymous, anonymous.post(_manage_url(world.tenant_b.pk)))

    assert not AuditEvent.objects.filter(action="manage").exists()


@pytest.mark.django_db
def test_manage_is_refused_over_get(world: World, client_for: ClientFor) -> None:
    client = client_for(world.sysadmin)

    response = client.get(_manage_url(world.tenant_a.pk))

    assert response.status_code == 405
    assert MANAGED_TENANT_SESSION_KEY not in client.session
    assert not AuditEvent.objects.filter(action="manage").exists()


@pytest.mark.django_db
def test_managing_an_unknown_tenant_is_a_404(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).post(_manage_url(world.tenant_b.pk + 1000))

    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="manage").exists()


@pytest.mark.django_db
def test_switch_to_administrator_clears_the_managed_tenant_and_is_audited(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    client.post(_manage_url(world.tenant_a.pk))

    response = client.post("/tenant/switch-to-administrator/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/tenants/tenant/"
    assert MANAGED_TENANT_SESSION_KEY not in client.session
    event = AuditEvent.objects.get(action="switch_to_administrator")
    assert event.tenant == world.tenant_a
    assert event.actor == world.sysadmin
    # Without a managed tenant the tenant site sends the system admin back to the tenant list.
    assert _final_path(client, "/tenant/") == "/admin/tenants/tenant/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_switch_to_administrator_is_refused_to_tenant_users_and_over_get(
    world: World, client_for: ClientFor
) -> None:
    assert client_for(world.admin_a).post("/tenant/switch-to-administrator/").status_code == 403
    assert client_for(world.sysadmin).get("/tenant/switch-to-administrator/").status_code == 405
    assert not AuditEvent.objects.filter(action="switch_to_administrator").exists()


@pytest.mark.django_db
def test_createsuperuser_creates_a_system_administrator_without_a_tenant() -> None:
    call_command("createsuperuser", interactive=False, username="root", email="root@example.com")
    user = User.objects.get(username="root")
    assert (user.role, user.tenant_id, user.is_superuser) == (Role.SYSTEM_ADMIN, None, True)


@pytest.mark.django_db
def test_the_first_system_administrator_signs_in_and_opens_the_system_site(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", interactive=False, username="first", email="first@example.com")

    response = _sign_in("first", PASSWORD)

    assert response.status_code == 302
    assert response.client.get("/admin/").status_code == 200
    assert response.client.get("/admin/tenants/tenant/").status_code == 200
