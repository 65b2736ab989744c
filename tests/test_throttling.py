"""Failed API authentications and unknown webhook URLs are limited per client address, in Redis;
valid tokens and known webhook URLs never are."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from core import limits as portal_limits
from sms.models import WebhookDelivery
from tenants.models import User
from tests.factories import World
from tests.sms.helpers import make_configuration

TRUNKS = "/api/v1/trunks/"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "voipms"
ATTACKER = "198.51.100.66"
NEIGHBOUR = "198.51.100.77"

ClientFor = Callable[[User | None], Client]


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.API_AUTH_FAILURES_PER_MINUTE = 5
    settings.WEBHOOK_TOKEN_MISSES_PER_MINUTE = 4
    settings.TRUSTED_PROXY_COUNT = 0


def _client(address: str, authorization: str | None = None, **extra: Any) -> Client:
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    return Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=address, **extra)


def _valid_token(client_for: ClientFor, user: User) -> str:
    response = client_for(user).post("/account/api-tokens/", {"action": "create"})
    match = re.search(r'data-testid="new-token">\s*([^<\s]+)\s*<', response.content.decode())
    assert match, "the new token is not shown on the page"
    return match.group(1)


def _failure_keys() -> list[bytes]:
    store = portal_limits.limits()
    assert isinstance(store, portal_limits.RedisLimits), "these tests need REDIS_URL"
    return list(store.client.scan_iter("limits:failures:*"))


@pytest.mark.django_db
def test_bad_tokens_get_429_with_retry_after_once_over_the_limit(world: World) -> None:
    client = _client(ATTACKER, "Token 0000000000000000000000000000000000000000")

    answers = [client.get(TRUNKS).status_code for _ in range(5)]
    blocked = client.get(TRUNKS)

    assert answers == [401] * 5
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "throttled"
    assert 1 <= int(blocked["Retry-After"]) <= 60
    assert client.get(TRUNKS).status_code == 429


@pytest.mark.django_db
def test_a_valid_token_from_a_blocked_address_still_works(
    world: World, client_for: ClientFor
) -> None:
    key = _valid_token(client_for, world.admin_a)
    bad = _client(ATTACKER, "Token not-a-token")
    for _ in range(6):
        bad.get(TRUNKS)
    assert bad.get(TRUNKS).status_code == 429

    response = _client(ATTACKER, f"Token {key}").get(TRUNKS)

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 2


@pytest.mark.django_db
def test_valid_tokens_are_never_counted(world: World, client_for: ClientFor) -> None:
    key = _valid_token(client_for, world.admin_a)
    good = _client(ATTACKER, f"Token {key}")

    answers = {good.get(TRUNKS).status_code for _ in range(12)}

    assert answers == {200}
    assert _failure_keys() == []
    bad = _client(ATTACKER, "Token not-a-token")
    assert [bad.get(TRUNKS).status_code for _ in range(5)] == [401] * 5


@pytest.mark.django_db
def test_the_count_lives_in_redis_per_address_and_expires_within_a_minute(world: World) -> None:
    for _ in range(6):
        _client(ATTACKER, "Token not-a-token").get(TRUNKS)

    assert _client(NEIGHBOUR, "Token not-a-token").get(TRUNKS).status_code == 401
    store = portal_limits.limits()
    key = f"limits:failures:api_auth:{ATTACKER}"
    assert int(store.client.get(key)) == 6
    assert 0 < store.client.pttl(key) <= 60_000
    store.client.delete(key)
    assert _client(ATTACKER, "Token not-a-token").get(TRUNKS).status_code == 401


@pytest.mark.django_db
def test_any_rejected_credentials_count_but_requests_without_any_do_not(world: World) -> None:
    anonymous = _client(ATTACKER)
    assert {anonymous.get(TRUNKS).status_code for _ in range(8)} == {401}

    bearer = _client(ATTACKER, "Bearer whatever")
    answers = [bearer.get(TRUNKS).status_code for _ in range(6)]

    assert answers == [401] * 5 + [429]


@pytest.mark.django_db
def test_forwarded_for_is_believed_only_through_trusted_proxies(
    world: World, settings: Any
) -> None:
    def attempt(forwarded: str) -> int:
        client = _client("10.0.0.2", "Token nope", HTTP_X_FORWARDED_FOR=forwarded)
        return client.get(TRUNKS).status_code

    # No trusted proxy: a client cannot escape its count by writing X-Forwarded-For.
    answers = [attempt(f"203.0.113.{n}") for n in range(6)]
    assert answers == [401] * 5 + [429]

    settings.TRUSTED_PROXY_COUNT = 1
    assert [attempt(f"192.0.2.9, {ATTACKER}") for _ in range(6)] == [401] * 5 + [429]
    assert attempt(NEIGHBOUR) == 401


@pytest.mark.django_db
def test_zero_turns_the_api_limit_off(world: World, settings: Any) -> None:
    settings.API_AUTH_FAILURES_PER_MINUTE = 0
    client = _client(ATTACKER, "Token not-a-token")

    assert {client.get(TRUNKS).status_code for _ in range(8)} == {401}
    assert _failure_keys() == []


# Webhook URLs ----------------------------------------------------------------------------------


def _hook(client: Client, token: str) -> Any:
    body = (FIXTURES / "sms.json").read_bytes()
    return client.post(f"/hooks/voipms/{token}/", body, content_type="application/json")


@pytest.mark.django_db
def test_unknown_webhook_urls_get_429_after_repeated_misses(world: World) -> None:
    client = _client(ATTACKER)

    answers = [_hook(client, f"guess-{n}").status_code for n in range(4)]
    blocked = _hook(client, "guess-5")

    assert answers == [404] * 4
    assert blocked.status_code == 429
    assert 1 <= int(blocked["Retry-After"]) <= 60
    assert _hook(_client(NEIGHBOUR), "guess-6").status_code == 404
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_valid_webhook_url_is_never_throttled(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    client = _client(ATTACKER)
    for n in range(6):
        _hook(client, f"guess-{n}")
    assert _hook(client, "guess-7").status_code == 429

    answers = [_hook(client, configuration.webhook_token).status_code for _ in range(10)]

    assert answers == [200] * 10
    assert WebhookDelivery.objects.filter(configuration=configuration).count() == 10
    assert json.loads(bytes(WebhookDelivery.objects.first().body))["data"]["id"]
    assert int(portal_limits.limits().client.get(f"limits:failures:webhook_token:{ATTACKER}")) == 7


@pytest.mark.django_db
def test_a_redis_outage_leaves_failures_unthrottled_not_broken(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any) -> None:
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(portal_limits.limits(), "count_failure", unavailable)
    client = _client(ATTACKER, "Token not-a-token")

    assert {client.get(TRUNKS).status_code for _ in range(7)} == {401}
    assert {_hook(client, f"guess-{n}").status_code for n in range(6)} == {404}


def test_the_demo_counts_failures_in_memory_per_kind_and_address() -> None:
    store = portal_limits.LocalLimits()

    counts = [store.count_failure("api_auth", ATTACKER, 60.0)[0] for _ in range(3)]
    other_address = store.count_failure("api_auth", NEIGHBOUR, 60.0)
    other_kind = store.count_failure("webhook_token", ATTACKER, 60.0)

    assert counts == [1, 2, 3]
    assert other_address[0] == other_kind[0] == 1
    assert 0 < other_address[1] <= 60.0
