"""A disabled tenant's users are refused everywhere, with the reason; Message Channels off
leaves reading and refuses sending. Token and session access alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from portal.urls import router
from sms.models import Message, SmsConfiguration
from tenants.models import User
from tenants.services import api_token_create, tenant_update
from tests.factories import World

ClientFor = Callable[[User | None], Client]

PASSWORD = "correct horse 42"
MESSAGES = "/api/v1/messages/"


def _api_list_routes(world: World) -> list[str]:
    """Return the list URL of every route of the API router."""
    trunk = world.objects_a[SmsConfiguration].trunk
    urls = []
    for _prefix, _viewset, basename in router.registry:
        kwargs = {"trunk_pk": trunk.pk} if "assignment" in basename else {}
        urls.append(reverse(f"{basename}-list", kwargs=kwargs))
    assert len(urls) >= 10
    return urls


def _token_client(user: User) -> Client:
    _, key = api_token_create(user=user, name="test")
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")


def _signed_in(user: User) -> Client:
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def _send_body() -> dict[str, Any]:
    return {"from": "2125550101", "to": "2125550199", "body": "hello"}


def _assert_refused(response: Any, code: str) -> None:
    assert response.status_code == 403, (response.request["PATH_INFO"], response.content)
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"].strip()


ACCESS = ["token", "session"]


def _client(how: str, user: User) -> Client:
    return _token_client(user) if how == "token" else _signed_in(user)


# --- disabled tenant -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("how", ACCESS)
def test_a_disabled_tenants_users_get_403_with_the_reason_on_every_api_route(
    world: World, how: str
) -> None:
    clients = {user: _client(how, user) for user in (world.admin_a, world.user_a)}
    routes = _api_list_routes(world)
    assert clients[world.admin_a].get(MESSAGES).status_code == 200

    tenant_update(tenant=world.tenant_a, enabled=False)

    for client in clients.values():
        for url in routes:
            response = client.get(url)
            _assert_refused(response, "tenant_disabled")
            assert "Tenant A is disabled" in response.json()["detail"]
        sent = client.post(MESSAGES, _send_body(), content_type="application/json")
        _assert_refused(sent, "tenant_disabled")
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("how", ACCESS)
def test_another_tenant_is_not_touched_by_a_disabled_one(world: World, how: str) -> None:
    client = _client(how, world.admin_b)

    tenant_update(tenant=world.tenant_a, enabled=False)

    assert client.get(MESSAGES).status_code == 200
    assert client.get("/api/v1/trunks/").json()["count"] == 2


@pytest.mark.django_db
def test_enabling_the_tenant_again_lets_its_tokens_back_in(world: World) -> None:
    client = _token_client(world.admin_a)
    tenant_update(tenant=world.tenant_a, enabled=False)
    _assert_refused(client.get(MESSAGES), "tenant_disabled")

    tenant_update(tenant=world.tenant_a, enabled=True)

    assert client.get(MESSAGES).status_code == 200


@pytest.mark.django_db
def test_a_session_of_a_disabled_tenant_is_signed_out_of_the_pages_with_the_reason(
    world: World,
) -> None:
    client = _signed_in(world.user_a)
    assert client.get("/inbox/").status_code == 200

    tenant_update(tenant=world.tenant_a, enabled=False)

    response = client.get("/inbox/", follow=True)
    assert response.request["PATH_INFO"] == "/login/"
    page = response.content.decode()
    assert 'data-testid="tenant-disabled"' in page
    assert "Tenant A is disabled" in page


@pytest.mark.django_db
def test_the_login_page_tells_a_disabled_tenants_user_why(world: World) -> None:
    tenant_update(tenant=world.tenant_a, enabled=False)
    client = Client(HTTP_HOST="127.0.0.1")

    right = client.post("/login/", {"username": world.admin_a.username, "password": PASSWORD})

    assert right.status_code == 200
    assert "_auth_user_id" not in client.session
    assert 'data-testid="tenant-disabled"' in right.content.decode()
    assert "Tenant A is disabled" in right.content.decode()


@pytest.mark.django_db
def test_the_login_page_tells_nothing_to_someone_without_the_password(world: World) -> None:
    tenant_update(tenant=world.tenant_a, enabled=False)

    wrong = Client(HTTP_HOST="127.0.0.1").post(
        "/login/", {"username": world.admin_a.username, "password": "guess"}
    )

    assert wrong.status_code == 200
    page = wrong.content.decode()
    assert "didn't match" in page
    assert "Tenant A" not in page
    assert "tenant-disabled" not in page


@pytest.mark.django_db
def test_a_system_admins_token_is_not_refused_for_a_disabled_tenant(world: World) -> None:
    client = _token_client(world.sysadmin)

    tenant_update(tenant=world.tenant_a, enabled=False)

    assert client.get("/api/v1/admin/tenants/").status_code == 200


# --- Message Channels off --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("how", ACCESS)
def test_message_channels_off_reads_but_does_not_send(world: World, how: str) -> None:
    client = _client(how, world.admin_a)
    configuration = world.objects_a[SmsConfiguration]

    tenant_update(tenant=world.tenant_a, message_channels_enabled=False)

    for url in _api_list_routes(world):
        if "/admin/" in url:
            continue
        response = client.get(url)
        # A route that takes only POST (erase-remote) answers 405 to a read, as always.
        post_only = response.status_code == 405 and "GET" not in response.get("Allow", "")
        assert response.status_code == 200 or post_only, url
    url = f"/api/v1/sms-configurations/{configuration.pk}/"
    assert client.get(url).status_code == 200
    sent = client.post(MESSAGES, _send_body(), content_type="application/json")
    _assert_refused(sent, "message_channels_disabled")
    changed = client.patch(url, {"name": "Renamed"}, content_type="application/json")
    _assert_refused(changed, "message_channels_disabled")
    rotated = client.post(f"{url}rotate-webhook/")
    _assert_refused(rotated, "message_channels_disabled")
    assert not Message.objects.exists()
    configuration.refresh_from_db()
    assert configuration.name == "Factory configuration"


@pytest.mark.django_db
@pytest.mark.parametrize("how", ACCESS)
def test_message_channels_off_in_one_tenant_leaves_the_other_sending(
    world: World, how: str
) -> None:
    client = _client(how, world.admin_b)

    tenant_update(tenant=world.tenant_a, message_channels_enabled=False)

    changed = client.patch(
        f"/api/v1/sms-configurations/{world.objects_b[SmsConfiguration].pk}/",
        {"name": "Renamed"},
        content_type="application/json",
    )
    assert changed.status_code == 200, changed.content
