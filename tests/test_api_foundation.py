"""REST API foundations: authentication, errors as {code, detail}, X-Tenant, tenants CRUD, docs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

from tenants.models import ApiToken, AuditEvent, Tenant, User
from tenants.services import tenant_create
from tests.factories import POOLS, World

ClientFor = Callable[[User | None], Client]

TENANTS = "/api/v1/admin/tenants/"
TRUNKS = "/api/v1/trunks/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _token_client(key: str) -> Client:
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")


def _create_token_through_the_portal(client: Client) -> str:
    response = client.post("/account/api-tokens/", {"action": "create", "name": "script"})
    assert response.status_code == 200
    match = re.search(r'data-testid="new-token">\s*([\w-]{43})\s*<', response.content.decode())
    assert match, "the new token is not shown on the page"
    return match.group(1)


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    return body


# --- authentication ------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_created_on_the_portal_page_authenticates_the_api(
    world: World, client_for: ClientFor
) -> None:
    key = _create_token_through_the_portal(client_for(world.admin_a))

    response = _token_client(key).get(TRUNKS)

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 2
    assert AuditEvent.objects.filter(actor=world.admin_a, action="api_token_created").exists()


@pytest.mark.django_db
def test_new_token_is_shown_once_only(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)
    key = _create_token_through_the_portal(client)

    page = client.get("/account/api-tokens/").content.decode()

    assert key not in page
    token = ApiToken.objects.get(user=world.admin_a)
    assert f"<code>{token.prefix}…</code>" in page
    assert ">script<" in page


@pytest.mark.django_db
def test_a_second_token_on_the_portal_page_leaves_the_first_working(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    old_key = _create_token_through_the_portal(client)
    new_key = _create_token_through_the_portal(client)

    assert new_key != old_key
    assert _token_client(old_key).get(TRUNKS).status_code == 200
    assert _token_client(new_key).get(TRUNKS).status_code == 200


@pytest.mark.django_db
def test_revoked_token_gets_401(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)
    key = _create_token_through_the_portal(client)
    assert _token_client(key).get(TRUNKS).status_code == 200
    token = ApiToken.objects.get(user=world.admin_a)

    response = client.post("/account/api-tokens/", {"action": "revoke", "token": token.pk})

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked
    body = _assert_error(_token_client(key).get(TRUNKS), 401, "authentication_failed")
    assert key not in json.dumps(body)


@pytest.mark.django_db
def test_issue_api_token_command_prints_a_working_token(world: World) -> None:
    out = StringIO()
    call_command("issue_api_token", world.sysadmin.username, "--name", "deploy", stdout=out)

    key = out.getvalue().strip()
    token = ApiToken.objects.get(user=world.sysadmin)
    assert (token.name, token.prefix) == ("deploy", key[:8])
    assert key not in {token.digest, token.name, token.prefix}
    event = AuditEvent.objects.get(action="api_token_created")
    assert (event.actor, event.actor_name, event.detail) == (None, "system", {"user": "root"})
    response = _token_client(key).get(TENANTS)
    assert response.status_code == 200
    assert response.json()["count"] == 2


@pytest.mark.django_db
def test_session_of_a_signed_in_user_authenticates_the_api(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.sysadmin).get(TENANTS)

    assert response.status_code == 200
    assert {row["slug"] for row in response.json()["results"]} == {"a.example", "b.example"}


@pytest.mark.django_db
def test_session_write_without_csrf_token_is_refused(world: World) -> None:
    client = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
    client.force_login(world.sysadmin)

    response = client.post(
        TENANTS, {"name": "Tenant C", "slug": "c.example"}, content_type="application/json"
    )

    _assert_error(response, 403, "permission_denied")
    assert not Tenant.objects.filter(slug="c.example").exists()


@pytest.mark.django_db
def test_anonymous_request_gets_401(world: World, client_for: ClientFor) -> None:
    _assert_error(client_for(None).get(TENANTS), 401, "not_authenticated")
    _assert_error(client_for(None).get(TRUNKS), 401, "not_authenticated")


@pytest.mark.django_db
def test_unknown_token_gets_401(world: World) -> None:
    _assert_error(_token_client("0" * 40).get(TRUNKS), 401, "authentication_failed")


# --- /api/v1/admin/tenants/ ------------------------------------------------------------------


@pytest.mark.django_db
def test_system_admin_creates_lists_changes_and_deletes_a_tenant(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)

    response = client.post(
        TENANTS, {"name": "Tenant C", "slug": "c.example"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["slug"] == "c.example"
    assert created["enabled"] is True
    tenant = Tenant.objects.get(slug="c.example")
    assert created["id"] == tenant.pk

    listing = client.get(TENANTS).json()
    assert set(listing) == {"count", "next", "previous", "results"}
    assert listing["count"] == 3
    assert listing["next"] is None
    assert listing["previous"] is None
    assert [row["name"] for row in listing["results"]] == ["Tenant A", "Tenant B", "Tenant C"]

    response = client.patch(
        f"{TENANTS}{tenant.pk}/",
        {"name": "Tenant C2", "message_channels_enabled": False},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    tenant.refresh_from_db()
    assert tenant.name == "Tenant C2"
    assert tenant.message_channels_enabled is False
    assert tenant.slug == "c.example"

    assert client.get(f"{TENANTS}{tenant.pk}/").json()["name"] == "Tenant C2"

    response = client.delete(f"{TENANTS}{tenant.pk}/")
    assert response.status_code == 204
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert Tenant.objects.count() == 2


@pytest.mark.django_db
def test_tenant_list_is_paginated(world: World, client_for: ClientFor) -> None:
    for number in range(55):
        tenant_create(name=f"Tenant {number:03}", slug=f"t{number:03}.example")
    client = client_for(world.sysadmin)

    first = client.get(TENANTS).json()
    assert first["count"] == 57
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert first["next"].endswith(f"{TENANTS}?page=2")

    second = client.get(f"{TENANTS}?page=2").json()
    assert len(second["results"]) == 7
    assert second["next"] is None
    assert second["previous"] is not None
    slugs = {row["slug"] for row in first["results"]} | {row["slug"] for row in second["results"]}
    assert len(slugs) == 57


@pytest.mark.django_db
def test_tenant_admin_is_refused_the_tenants_api(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    _assert_error(client.get(TENANTS), 403, "permission_denied")
    _assert_error(client.get(f"{TENANTS}{world.tenant_a.pk}/"), 403, "permission_denied")
    response = client.post(
        TENANTS, {"name": "Tenant C", "slug": "c.example"}, content_type="application/json"
    )
    _assert_error(response, 403, "permission_denied")
    response = client.patch(
        f"{TENANTS}{world.tenant_b.pk}/", {"enabled": False}, content_type="application/json"
    )
    _assert_error(response, 403, "permission_denied")
    _assert_error(client.delete(f"{TENANTS}{world.tenant_b.pk}/"), 403, "permission_denied")

    assert not Tenant.objects.filter(slug="c.example").exists()
    assert Tenant.objects.get(pk=world.tenant_b.pk).enabled is True


@pytest.mark.django_db
def test_extension_user_is_refused_the_tenants_api(world: World, client_for: ClientFor) -> None:
    _assert_error(client_for(world.user_a).get(TENANTS), 403, "permission_denied")


@pytest.mark.django_db
def test_invalid_slug_is_a_400_naming_the_field(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).post(
        TENANTS, {"name": "Tenant C", "slug": "Not A Domain!"}, content_type="application/json"
    )

    body = _assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"slug"}
    assert body["errors"]["slug"]
    assert not Tenant.objects.filter(name="Tenant C").exists()


@pytest.mark.django_db
def test_duplicate_slug_is_a_400(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).post(
        TENANTS, {"name": "Another A", "slug": "a.example"}, content_type="application/json"
    )

    body = _assert_error(response, 400, "invalid")
    assert "slug" in body["errors"]
    assert Tenant.objects.filter(slug="a.example").count() == 1


@pytest.mark.django_db
def test_unknown_tenant_id_is_a_404(world: World, client_for: ClientFor) -> None:
    missing = Tenant.objects.order_by("-pk").first().pk + 1000

    _assert_error(client_for(world.sysadmin).get(f"{TENANTS}{missing}/"), 404, "not_found")


# --- X-Tenant --------------------------------------------------------------------------------


def _trunk_names(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["name"] for row in response.json()["results"]}


@pytest.mark.django_db
def test_system_admin_must_name_a_tenant(world: World, client_for: ClientFor) -> None:
    _assert_error(client_for(world.sysadmin).get(TRUNKS), 400, "tenant_required")


@pytest.mark.django_db
def test_system_admin_naming_an_unknown_tenant_gets_404(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.sysadmin).get(TRUNKS, headers={"X-Tenant": "nobody.example"})

    _assert_error(response, 404, "not_found")


@pytest.mark.django_db
def test_system_admin_sees_the_trunks_of_the_named_tenant(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)

    response = client.get(TRUNKS, headers={"X-Tenant": "a.example"})

    assert _trunk_names(response) == {"VoIP.ms San Jose", "Trunk of a.example"}
    pools = {row["name"]: row["did_pool"] for row in response.json()["results"]}
    assert pools["VoIP.ms San Jose"] == POOLS["a.example"]
    assert _trunk_names(client.get(TRUNKS, headers={"X-Tenant": "b.example"})) == {
        "VoIP.ms San Jose",
        "Trunk of b.example",
    }


@pytest.mark.django_db
def test_tenant_user_acts_in_his_own_tenant(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    assert _trunk_names(client.get(TRUNKS)) == {"VoIP.ms San Jose", "Trunk of a.example"}
    own = client.get(TRUNKS, headers={"X-Tenant": "a.example"})
    assert _trunk_names(own) == {"VoIP.ms San Jose", "Trunk of a.example"}


@pytest.mark.django_db
def test_tenant_user_naming_another_tenant_gets_404(world: World, client_for: ClientFor) -> None:
    for user in (world.admin_a, world.user_a):
        response = client_for(user).get(TRUNKS, headers={"X-Tenant": "b.example"})
        body = _assert_error(response, 404, "not_found")
        assert "Trunk of b.example" not in json.dumps(body)


@pytest.mark.django_db
def test_tenant_user_gets_404_for_another_tenants_trunk(
    world: World, client_for: ClientFor
) -> None:
    from trunks.models import Trunk

    trunk_b = world.objects_b[Trunk]
    response = client_for(world.admin_a).get(f"{TRUNKS}{trunk_b.pk}/")

    _assert_error(response, 404, "not_found")


# --- OpenAPI ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_openapi_schema_describes_the_api(client_for: ClientFor) -> None:
    response = client_for(None).get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/admin/tenants/" in schema["paths"]
    assert "/api/v1/admin/tenants/{id}/" in schema["paths"]
    assert "/api/v1/trunks/" in schema["paths"]
    header_names = {
        parameter["name"]
        for parameter in schema["paths"]["/api/v1/trunks/"]["get"].get("parameters", [])
        if parameter["in"] == "header"
    }
    assert "X-Tenant" in header_names

    as_json = client_for(None).get("/api/schema/?format=json")
    assert as_json.status_code == 200
    assert json.loads(as_json.content)["paths"].keys() == schema["paths"].keys()


@pytest.mark.django_db
def test_api_docs_load_no_asset_from_a_cdn(client_for: ClientFor) -> None:
    response = client_for(None).get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html
    for cdn in ("cdn.jsdelivr", "unpkg", "cdnjs", "googleapis"):
        assert cdn not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(not asset.startswith(("http://", "https://", "//")) for asset in assets), assets
