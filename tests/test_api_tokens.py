"""Named API tokens stored as digests: created once, listed without keys, revoked at once."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import yaml
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.models import ApiToken, AuditEvent, User
from tenants.services import api_token_create, api_token_revoke
from tests.factories import World

ClientFor = Callable[[User | None], Client]

TOKENS = "/api/v1/api-tokens/"
TRUNKS = "/api/v1/trunks/"


def _token_client(key: str, **headers: str) -> Client:
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}", **headers)


def _ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def tokens(world: World) -> dict[str, ApiToken]:
    """One token for each person of the world, named after him."""
    made = {}
    for user in (world.admin_a, world.user_a, world.admin_b, world.user_b, world.sysadmin):
        made[user.username], _ = api_token_create(user=user, name=f"{user.username} script")
    return made


# --- creating and showing once ---------------------------------------------------------------


@pytest.mark.django_db
def test_post_creates_a_token_and_answers_its_key_once(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    response = client.post(TOKENS, {"name": "CRM sync"}, content_type="application/json")

    assert response.status_code == 201, response.content
    body = response.json()
    key = body["key"]
    assert len(key) >= 40
    assert body["name"] == "CRM sync"
    assert body["prefix"] == key[:8]
    assert (body["user"], body["username"]) == (world.admin_a.pk, world.admin_a.username)
    assert body["last_used_at"] is None
    assert _token_client(key).get(TRUNKS).status_code == 200

    listing = client.get(TOKENS)
    assert listing.status_code == 200
    assert key not in listing.content.decode()
    (row,) = listing.json()["results"]
    assert set(row) == {"id", "name", "prefix", "user", "username", "created_at", "last_used_at"}
    assert row["last_used_at"] is not None
    assert key not in client.get(f"{TOKENS}{row['id']}/").content.decode()


@pytest.mark.django_db
def test_the_database_holds_only_the_digest_of_a_key(world: World) -> None:
    token, key = api_token_create(user=world.admin_a, name="x")

    stored = ApiToken.objects.filter(pk=token.pk).values().get()

    assert stored["digest"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(stored, default=str)
    assert key not in json.dumps(list(AuditEvent.objects.values()), default=str)


@pytest.mark.django_db
def test_a_user_may_hold_several_named_tokens(world: World, client_for: ClientFor) -> None:
    client = client_for(world.user_a)
    keys = [
        client.post(TOKENS, {"name": name}, content_type="application/json").json()["key"]
        for name in ("phone app", "backup")
    ]

    names = {row["name"] for row in client.get(TOKENS).json()["results"]}

    assert names == {"phone app", "backup"}
    assert all(_token_client(key).get("/api/v1/messages/").status_code == 200 for key in keys)


@pytest.mark.django_db
def test_a_name_too_long_is_a_400_naming_it(world: World, client_for: ClientFor) -> None:
    response = client_for(world.admin_a).post(
        TOKENS, {"name": "x" * 101}, content_type="application/json"
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name"}
    assert not ApiToken.objects.exists()


# --- revoking --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_revokes_the_token_at_once_and_is_audited(
    world: World, client_for: ClientFor
) -> None:
    token, key = api_token_create(user=world.admin_a, name="old")
    token_client = _token_client(key)
    assert token_client.get(TRUNKS).status_code == 200

    response = client_for(world.admin_a).delete(f"{TOKENS}{token.pk}/")

    assert response.status_code == 204
    refused = token_client.get(TRUNKS)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    assert client_for(world.admin_a).get(f"{TOKENS}{token.pk}/").status_code == 404
    event = AuditEvent.objects.get(action="api_token_revoked")
    assert (event.actor, event.tenant, event.object_id) == (
        world.admin_a,
        world.tenant_a,
        str(token.pk),
    )


@pytest.mark.django_db
def test_a_token_can_revoke_itself(world: World) -> None:
    token, key = api_token_create(user=world.user_a, name="leaked")

    assert _token_client(key).delete(f"{TOKENS}{token.pk}/").status_code == 204

    assert _token_client(key).get(TOKENS).status_code == 401


# --- who sees and revokes which tokens -------------------------------------------------------


@pytest.mark.django_db
def test_tenant_admin_sees_and_revokes_only_his_tenants_tokens(
    world: World, client_for: ClientFor, tokens: dict[str, ApiToken]
) -> None:
    client = client_for(world.admin_a)

    assert _ids(client.get(TOKENS)) == {tokens["alice-admin"].pk, tokens["alice-101"].pk}
    for other in ("bob-admin", "bob-101", "root"):
        pk = tokens[other].pk
        assert client.get(f"{TOKENS}{pk}/").status_code == 404
        assert client.delete(f"{TOKENS}{pk}/").status_code == 404
        assert not ApiToken.objects.get(pk=pk).revoked
    assert client.get(TOKENS, headers={"X-Tenant": "b.example"}).status_code == 404

    assert client.delete(f"{TOKENS}{tokens['alice-101'].pk}/").status_code == 204
    assert ApiToken.objects.get(pk=tokens["alice-101"].pk).revoked


@pytest.mark.django_db
def test_tenant_admin_issues_a_token_for_a_user_of_his_tenant_only(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    own = client.post(TOKENS, {"user": world.user_a.pk}, content_type="application/json")
    assert own.status_code == 201, own.content
    assert ApiToken.objects.get(pk=own.json()["id"]).user == world.user_a
    event = AuditEvent.objects.get(action="api_token_created")
    assert (event.actor, event.tenant) == (world.admin_a, world.tenant_a)

    for outsider in (world.user_b, world.admin_b, world.sysadmin):
        response = client.post(TOKENS, {"user": outsider.pk}, content_type="application/json")
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"user"}
        assert outsider.username not in response.content.decode()
    assert not ApiToken.objects.filter(user__in=[world.user_b, world.admin_b]).exists()


@pytest.mark.django_db
def test_extension_user_sees_issues_and_revokes_only_his_own(
    world: World, client_for: ClientFor, tokens: dict[str, ApiToken]
) -> None:
    client = client_for(world.user_a)

    assert _ids(client.get(TOKENS)) == {tokens["alice-101"].pk}
    assert client.get(f"{TOKENS}{tokens['alice-admin'].pk}/").status_code == 404
    assert client.delete(f"{TOKENS}{tokens['alice-admin'].pk}/").status_code == 404
    assert not ApiToken.objects.get(pk=tokens["alice-admin"].pk).revoked
    response = client.post(TOKENS, {"user": world.admin_a.pk}, content_type="application/json")
    assert response.status_code == 400
    assert not ApiToken.objects.filter(user=world.admin_a).exclude(pk=tokens["alice-admin"].pk)


@pytest.mark.django_db
def test_system_admin_sees_all_tokens_or_one_tenants_and_revokes_any(
    world: World, client_for: ClientFor, tokens: dict[str, ApiToken]
) -> None:
    client = client_for(world.sysadmin)

    assert _ids(client.get(TOKENS)) == {token.pk for token in tokens.values()}
    assert _ids(client.get(TOKENS, headers={"X-Tenant": "b.example"})) == {
        tokens["bob-admin"].pk,
        tokens["bob-101"].pk,
    }
    assert client.get(TOKENS, headers={"X-Tenant": "nobody.example"}).status_code == 404

    created = client.post(TOKENS, {"user": world.user_b.pk}, content_type="application/json")
    assert created.status_code == 201
    assert client.delete(f"{TOKENS}{tokens['bob-101'].pk}/").status_code == 204
    assert ApiToken.objects.get(pk=tokens["bob-101"].pk).revoked


@pytest.mark.django_db
def test_the_portal_page_lists_and_revokes_only_the_users_own_tokens(
    world: World, client_for: ClientFor, tokens: dict[str, ApiToken]
) -> None:
    client = client_for(world.admin_a)

    page = client.get("/account/api-tokens/").content.decode()
    assert "alice-admin script" in page
    assert "alice-101 script" not in page
    assert "bob-admin script" not in page

    for other in ("alice-101", "bob-admin"):
        response = client.post(
            "/account/api-tokens/", {"action": "revoke", "token": tokens[other].pk}
        )
        assert response.status_code == 404
        assert not ApiToken.objects.get(pk=tokens[other].pk).revoked
    bad = client.post("/account/api-tokens/", {"action": "revoke", "token": "\uff11\uff12"})
    assert bad.status_code == 404


# --- last used -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(world: World) -> None:
    token, key = api_token_create(user=world.admin_a, name="busy")
    client = _token_client(key)

    client.get(TRUNKS)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None

    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    client.get(TRUNKS)
    token.refresh_from_db()
    assert token.last_used_at == recent

    stale = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    client.get(TRUNKS)
    token.refresh_from_db()
    assert token.last_used_at > stale + timedelta(minutes=1)


@pytest.mark.django_db
def test_a_request_within_the_minute_writes_nothing(world: World) -> None:
    _, key = api_token_create(user=world.admin_a, name="busy")
    client = _token_client(key)
    client.get(TRUNKS)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(TRUNKS).status_code == 200

    assert not [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"].upper()]


# --- the migration from DRF's plain-text tokens ----------------------------------------------


LEGACY_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.django_db
def test_the_migration_hashes_plain_text_tokens_in_place(world: World) -> None:
    migration = importlib.import_module("tenants.migrations.0004_api_tokens_and_audit_address")
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
            "created timestamp with time zone NOT NULL, user_id bigint NOT NULL UNIQUE)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s), (%s, %s, %s)",
            [LEGACY_KEY, created, world.admin_a.pk, "f" * 40, created, 999_999],
        )

    with connection.schema_editor() as editor:
        migration.hash_legacy_api_tokens(apps, editor)

    token = ApiToken.objects.get()
    assert token.user == world.admin_a
    assert token.tenant == world.tenant_a
    assert token.prefix == LEGACY_KEY[:8]
    assert token.digest == hashlib.sha256(LEGACY_KEY.encode()).hexdigest()
    assert token.created_at == created
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
    response = _token_client(LEGACY_KEY).get(TRUNKS)
    assert response.status_code == 200
    assert response.json()["count"] == 2


@pytest.mark.django_db
def test_the_migration_does_nothing_without_the_old_table(world: World) -> None:
    migration = importlib.import_module("tenants.migrations.0004_api_tokens_and_audit_address")

    with connection.schema_editor() as editor:
        migration.hash_legacy_api_tokens(apps, editor)

    assert not ApiToken.objects.exists()


# --- the admin and the schema ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_tokens_without_keys_and_revokes_them(
    world: World, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    made = [api_token_create(user=user, name="n")[1] for user in (world.admin_a, world.user_b)]
    client = client_for(world.sysadmin)

    with django_assert_max_num_queries(12):
        page = client.get("/admin/tenants/apitoken/")

    assert page.status_code == 200
    html = page.content.decode()
    for key in made:
        assert key not in html
        assert key[:8] in html
    token = ApiToken.objects.get(user=world.user_b)
    detail = client.get(f"/admin/tenants/apitoken/{token.pk}/change/")
    assert detail.status_code == 200
    assert token.digest not in detail.content.decode()

    response = client.post(
        "/admin/tenants/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked
    assert _token_client(made[1]).get(TRUNKS).status_code == 401
    assert AuditEvent.objects.get(action="api_token_revoked").actor == world.sysadmin


@pytest.mark.django_db
def test_tenant_users_cannot_open_the_token_admin(world: World, client_for: ClientFor) -> None:
    api_token_create(user=world.admin_b, name="n")
    for user in (world.admin_a, world.user_a):
        response = client_for(user).get("/admin/tenants/apitoken/")
        assert response.status_code in (302, 403)
        assert b"bob-admin" not in response.content


@pytest.mark.django_db
def test_the_old_plain_text_token_admin_is_gone(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).get("/admin/authtoken/tokenproxy/")

    assert response.status_code == 404


@pytest.mark.django_db
def test_the_schema_describes_the_token_route(client_for: ClientFor) -> None:
    schema = yaml.safe_load(client_for(None).get("/api/schema/").content)

    paths = schema["paths"]
    assert set(paths[TOKENS]) >= {"get", "post"}
    assert set(paths[TOKENS + "{id}/"]) >= {"get", "delete"}
    created = paths[TOKENS]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    name = created["$ref"].rsplit("/", 1)[-1]
    assert "key" in schema["components"]["schemas"][name]["properties"]
    listed = paths[TOKENS]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    row = schema["components"]["schemas"][listed["$ref"].rsplit("/", 1)[-1]]
    item = row["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert "key" not in schema["components"]["schemas"][item]["properties"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db
def test_revoking_twice_records_one_event(world: World) -> None:
    token, _ = api_token_create(user=world.admin_a, name="n")

    api_token_revoke(token=token, actor=world.admin_a)
    api_token_revoke(token=token, actor=world.admin_a)

    assert AuditEvent.objects.filter(action="api_token_revoked").count() == 1


@pytest.mark.django_db
def test_issue_api_token_refuses_an_unknown_user_and_a_long_name(world: World) -> None:
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("issue_api_token", "nobody", stdout=StringIO())
    with pytest.raises(CommandError, match="too long"):
        call_command("issue_api_token", world.user_a.username, "--name", "x" * 101)

    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_the_tenant_site_lists_and_revokes_only_the_tenants_tokens(
    world: World, client_for: ClientFor, tokens: dict[str, ApiToken]
) -> None:
    client = client_for(world.admin_a)

    page = client.get("/tenant/tenants/apitoken/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "alice-admin script" in html
    assert "alice-101 script" in html
    assert "bob-admin script" not in html
    assert "root script" not in html
    other = tokens["bob-101"]
    assert client.get(f"/tenant/tenants/apitoken/{other.pk}/change/").status_code == 404
    client.post(
        "/tenant/tenants/apitoken/",
        {"action": "revoke", "_selected_action": [other.pk, tokens["alice-101"].pk]},
    )
    assert not ApiToken.objects.get(pk=other.pk).revoked
    assert ApiToken.objects.get(pk=tokens["alice-101"].pk).revoked
    assert client_for(world.user_a).get("/tenant/tenants/apitoken/").status_code in (302, 403)


@pytest.mark.django_db
def test_a_token_does_not_follow_its_user_into_another_tenant(world: World) -> None:
    _, key = api_token_create(user=world.admin_a, name="old job")
    assert _token_client(key).get(TRUNKS).status_code == 200

    User.objects.filter(pk=world.admin_a.pk).update(tenant=world.tenant_b)

    assert _token_client(key).get(TRUNKS).status_code == 401
