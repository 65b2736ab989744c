"""Bad input to the API is a 400 naming the parameter, never a 500; the schema says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import DataError
from django.test import Client
from django.utils import timezone

from core.api import exception_handler
from sms.models import Conversation, Direction, Message, MessageStatus, Source
from tenants.models import User
from tests.factories import World, shared_trunk

MESSAGES = "/api/v1/messages/"
ClientFor = Callable[[User | None], Client]


def _invalid(response: Any, parameter: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert parameter in body["errors"], body


def _message(world: World, *, body: str, created_at: Any = None) -> Message:
    tenant = world.tenant_a
    conversation, _ = Conversation.objects.get_or_create(
        tenant=tenant, did="+12125550100", remote="+13125550199"
    )
    message = Message.objects.create(
        tenant=tenant,
        conversation=conversation,
        direction=Direction.IN,
        status=MessageStatus.ROUTED,
        source=Source.WEBHOOK,
        did="+12125550100",
        remote="+13125550199",
        body=body,
        received_at=timezone.now(),
    )
    if created_at is not None:
        Message.objects.filter(pk=message.pk).update(created_at=created_at)
    return message


@pytest.mark.django_db
@pytest.mark.parametrize("parameter", ["did", "q", "remote", "status", "direction", "since"])
def test_a_nul_in_a_message_filter_is_a_400_naming_it(
    world: World, client_for: ClientFor, parameter: str
) -> None:
    response = client_for(world.admin_a).get(f"{MESSAGES}?{parameter}=a%00b")

    _invalid(response, parameter)
    assert response.json()["errors"][parameter] == ["Null characters are not allowed."]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=bogus", "status"),
        ("direction=sideways", "direction"),
        ("since=2026-01-01T00:00:00%2B99:00", "since"),
        ("since=yesterday", "since"),
        ("since=0001-01-01T00:00:00%2B05:00", "since"),
        ("q=" + "x" * 201, "q"),
        ("did=" + "1" * 41, "did"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=99999999999999999999", "page"),
    ],
)
def test_a_bad_message_filter_is_a_400_naming_it(
    world: World, client_for: ClientFor, query: str, parameter: str
) -> None:
    _invalid(client_for(world.admin_a).get(f"{MESSAGES}?{query}"), parameter)


@pytest.mark.django_db
def test_message_filters_still_filter(world: World, client_for: ClientFor) -> None:
    old = _message(world, body="old news", created_at=timezone.now() - timedelta(days=3))
    new = _message(world, body="fresh news")
    client = client_for(world.admin_a)
    since = (timezone.now() - timedelta(days=1)).isoformat()

    def ids(query: dict[str, str]) -> list[int]:
        response = client.get(MESSAGES, query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids({"since": since}) == [new.pk]
    assert ids({"q": "news", "status": "routed", "direction": "in"}) == [new.pk, old.pk]
    assert ids({"status": "queued"}) == []
    assert ids({"direction": "out"}) == []
    assert ids({"status": "", "q": ""}) == [new.pk, old.pk]
    assert ids({"did": "+12125550100", "remote": "+13125550199"}) == [new.pk, old.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/v1/conversations/?did=%00", "did"),
        ("/api/v1/conversations/?remote=1%002", "remote"),
        ("/api/v1/trunks/?page=%00", "page"),
        ("/api/v1/messages/?x%00y=1", "x\\x00y"),
    ],
)
def test_a_nul_in_any_api_query_parameter_is_a_400_naming_it(
    world: World, client_for: ClientFor, url: str, parameter: str
) -> None:
    _invalid(client_for(world.admin_a).get(url), parameter)


@pytest.mark.django_db
def test_system_admin_filters_are_checked(world: World, client_for: ClientFor) -> None:
    client = client_for(world.sysadmin)

    _invalid(client.get("/api/v1/admin/tenants/?enabled=maybe"), "enabled")
    _invalid(client.get("/api/v1/admin/tenants/?enabled=%00"), "enabled")
    assert client.get("/api/v1/admin/tenants/?enabled=true").status_code == 200


@pytest.mark.django_db
def test_a_nul_in_a_body_field_is_a_400_naming_it(world: World, client_for: ClientFor) -> None:
    response = client_for(world.admin_a).post(
        MESSAGES,
        {"to": "312555\x000199", "body": "hi"},
        content_type="application/json",
    )

    _invalid(response, "to")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/no-such-route/",
        "/api/v1/admin/trunks/abc/assignments/",
        "/api/v1/messages/1.5/",
        "/api/v1/messages/99999999999999999999999/",
    ],
)
def test_an_unknown_api_url_is_a_json_404(world: World, client_for: ClientFor, url: str) -> None:
    response = client_for(world.sysadmin).get(url, headers={"X-Tenant": "a.example"})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_pages_outside_the_api_answer_a_nul_with_a_400(world: World, client_for: ClientFor) -> None:
    response = client_for(world.user_a).get("/inbox/compose/senders/?q=%00")

    assert response.status_code == 400
    assert b"q" in response.content


@pytest.mark.django_db
def test_a_conversation_without_group_or_extension_has_nulls_not_missing_fields(
    world: World, client_for: ClientFor
) -> None:
    Conversation.objects.create(tenant=world.tenant_a, did="+12125550100", remote="+13125550199")

    row = client_for(world.admin_a).get("/api/v1/conversations/").json()["results"][0]

    assert row["ring_group_name"] is None
    assert row["extension_number"] is None


def _schema(client: Client) -> dict[str, Any]:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.mark.django_db
def test_the_schema_documents_error_answers_on_every_operation(client_for: ClientFor) -> None:
    schema = _schema(client_for(None))
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]

    assert len(operations) > 30
    for path, method, operation in operations:
        for status in ("400", "401", "403", "404", "429"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method)
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]


@pytest.mark.django_db
def test_the_schema_states_the_message_filters_and_nullable_fields(
    client_for: ClientFor,
) -> None:
    schema = _schema(client_for(None))
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in schema["paths"]["/api/v1/messages/"]["get"]["parameters"]
    }
    components = schema["components"]["schemas"]

    assert parameters["direction"]["enum"] == ["in", "out"]
    assert "bogus" not in parameters["status"]["enum"]
    assert set(parameters["status"]["enum"]) == set(MessageStatus.values)
    assert parameters["since"]["format"] == "date-time"
    assert components["Conversation"]["properties"]["ring_group_name"]["nullable"] is True
    assert components["Message"]["properties"]["extension"]["nullable"] is True


@pytest.mark.django_db
def test_office_hours_with_unknown_keys_are_a_400_not_a_database_error(
    world: World, client_for: ClientFor
) -> None:
    hours = [{"weekday": 0, "start": "09:00", "end": "17:00", "note\x00": "\x00"}]
    body = {
        "name": "Hours",
        "trunk": shared_trunk().pk,
        "did_range": "12125550100",
        "use_custom_hours": True,
        "custom_hours": hours,
        **{f"{period}_action": "drop" for period in ("office", "after_hours", "holiday")},
    }

    response = client_for(world.admin_a).post(
        "/api/v1/inbound-rules/", body, content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["field"] == "custom_hours"


def test_a_value_the_database_refuses_is_a_400() -> None:
    response = exception_handler(DataError("unsupported Unicode escape sequence"), {})

    assert response is not None
    assert response.status_code == 400
    assert response.data["code"] == "invalid"
