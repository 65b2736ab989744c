"""Shared fixtures: two tenants (A and B) with an admin and an extension user each, a system
administrator, and clients signed in as each of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from tenants.models import Role, SmsPermission, Tenant, User
from tenants.services import extension_create, tenant_create, user_create
from tests import factories
from tests.browser import browser, page  # noqa: F401 - Playwright fixtures for every test module


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
    # Each test starts with no memory of when this process last noted a webhook's arrival.
    from sms.services import deliveries

    deliveries._last_noted.clear()
