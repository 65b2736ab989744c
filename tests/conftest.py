"""Shared fixtures: two tenants (A and B) with an admin and an extension user each, a system
administrator, and clients signed in as each of them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import responses
from django.conf import settings as django_settings
from django.test import Client
from django.utils import translation

from core import limits as portal_limits
from tenants.models import Role, SmsPermission, Tenant, User
from tenants.services import extension_create, tenant_create, user_create
from tests import factories
from tests.browser import browser, page  # noqa: F401 - Playwright fixtures for every test module
from tests.tasks import TaskRecorder


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    return tenant_create(name="Tenant A", slug="a.example")


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    return tenant_create(name="Tenant B", slug="b.example")


def _member(tenant: Tenant, name: str, role: str) -> User:
    user = user_create(username=name, password="correct horse 42", role=role, tenant=tenant)
    if role == Role.USER:
        extension_create(tenant=tenant, number="101", user=user, sms_permission=SmsPermission.ALLOW)
    return user


@pytest.fixture
def admin_a(tenant_a: Tenant) -> User:
    return _member(tenant_a, "alice-admin", Role.TENANT_ADMIN)


@pytest.fixture
def user_a(tenant_a: Tenant) -> User:
    return _member(tenant_a, "alice-101", Role.USER)


@pytest.fixture
def admin_b(tenant_b: Tenant) -> User:
    return _member(tenant_b, "bob-admin", Role.TENANT_ADMIN)


@pytest.fixture
def user_b(tenant_b: Tenant) -> User:
    return _member(tenant_b, "bob-101", Role.USER)


@pytest.fixture
def sysadmin(db: None) -> User:
    return user_create(username="root", password="correct horse 42", role=Role.SYSTEM_ADMIN)


@pytest.fixture
def client_for() -> Callable[[User | None], Client]:
    """Return a factory of test clients, signed in as the given user (or anonymous)."""

    def make(user: User | None) -> Client:
        client = Client(HTTP_HOST="127.0.0.1")
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def world(
    tenant_a: Tenant,
    tenant_b: Tenant,
    admin_a: User,
    user_a: User,
    admin_b: User,
    user_b: User,
    sysadmin: User,
) -> factories.World:
    """Return both tenants with one object of every tenant-owned model in each."""
    return factories.World(
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        admin_a=admin_a,
        user_a=user_a,
        admin_b=admin_b,
        user_b=user_b,
        sysadmin=sysadmin,
        objects_a=factories.make_tenant_objects(tenant_a),
        objects_b=factories.make_tenant_objects(tenant_b),
    )


@pytest.fixture(autouse=True)
def _portal_settings(settings: object) -> None:
    # A fast hasher: the suite creates many users and never tests hash strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    # Production's default: tests that reach a server on this machine allow loopback themselves.
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = []
    # Each test starts with no memory of when this process last noted a webhook's arrival.
    from sms.inbound import store as deliveries

    deliveries._last_noted.clear()


@pytest.fixture(autouse=True)
def _english_between_tests() -> Iterator[None]:
    """Start every test in the default language; a request for a French-speaking user leaves
    French active in the test's thread (as LocaleMiddleware does), which must not reach the next
    test."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _no_counted_failures(settings: Any) -> None:
    """Start each test with no failed authentications or webhook misses counted (throttling)."""
    store = portal_limits.limits()
    if isinstance(store, portal_limits.RedisLimits):
        keys = list(store.client.scan_iter("limits:failures:*", count=1000))
        if keys:
            store.client.delete(*keys)
    else:
        store.failures.clear()


@pytest.fixture(autouse=True)
def _no_request_rate_wait(settings: Any) -> None:
    """Let sends through without waiting for VoIP.ms's request rate (one a second by default):
    otherwise a test's send waits for, and is requeued after, a slot an earlier test took on the
    same account less than a second before. Tests of the rate set their own."""
    settings.VOIPMS_REQUESTS_PER_SECOND = 1000


@pytest.fixture
def fresh_limits(settings: Any) -> Iterator[None]:
    """Start a test with no send counted and no request slot taken (VoIP.ms limits in Redis)."""
    settings.VOIPMS_REQUESTS_PER_SECOND = 1000
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.flushdb()
        client.close()
    portal_limits._limits.cache_clear()
    yield
    portal_limits._limits.cache_clear()


@pytest.fixture
def voipms_dids() -> Iterator[responses.RequestsMock]:
    """Answer every VoIP.ms API call with one DID, for the pages and routes that list them."""
    row = {"did": "2125550100", "sms_available": "1", "sms_enabled": "1", "webhook": ""}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(django_settings.VOIPMS_API_URL, json={"status": "success", "dids": [row]})
        yield mock


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> TaskRecorder:
    """Record every task the code publishes (through core.tasks) instead of sending it."""
    recorder = TaskRecorder()
    monkeypatch.setattr("core.tasks.publish", recorder)
    return recorder


# What every host name but localhost resolves to in tests (a public address: example.com's).
PUBLIC_TEST_ADDRESS = "93.184.215.14"


def _is_address(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host))
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def _offline_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve outsiders' host names to a public address: the outbound guard looks every name up
    before it connects, and the test machine has no DNS."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host != "localhost" and not _is_address(host):
            host = PUBLIC_TEST_ADDRESS
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
