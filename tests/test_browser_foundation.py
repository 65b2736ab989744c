"""Signing in, Manage and Switch to Administrator, clicked through in Chromium."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenants.models import Role, Tenant, User
from tenants.services import extension_create, tenant_create, tenant_update, user_create
from tests.browser import browser, login, page  # noqa: F401

PASSWORD = "correct horse 42"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@dataclass
class People:
    tenant_a: Tenant
    tenant_b: Tenant
    sysadmin: User
    admin_a: User
    admin_b: User
    user_a: User
    user_b: User


def _members(tenant: Tenant, key: str) -> tuple[User, User]:
    admin = user_create(
        username=f"admin-{key}", password=PASSWORD, role=Role.TENANT_ADMIN, tenant=tenant
    )
    user = user_create(username=f"user-{key}", password=PASSWORD, role=Role.USER, tenant=tenant)
    label = key.upper()
    extension_create(tenant=tenant, number="101", display_name=f"Front desk {label}", user=user)
    extension_create(tenant=tenant, number="102", display_name=f"Back office {label}")
    return admin, user


@pytest.fixture
def people(settings: Any) -> People:
    """Create a system admin and two tenants, each with an admin, a user and two extensions."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tenant_a = tenant_create(name="Tenant A", slug="a.example")
    tenant_b = tenant_create(name="Tenant B", slug="b.example")
    admin_a, user_a = _members(tenant_a, "a")
    admin_b, user_b = _members(tenant_b, "b")
    return People(
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        sysadmin=user_create(username="root", password=PASSWORD, role=Role.SYSTEM_ADMIN),
        admin_a=admin_a,
        admin_b=admin_b,
        user_a=user_a,
        user_b=user_b,
    )


def _path(current: Page) -> str:
    return re.sub(r"^https?://[^/]+", "", current.url)


def _expect_path(current: Page, path: str) -> None:
    """Wait until the page shows this path (and query string) of the live server."""
    expect(current).to_have_url(re.compile(rf"^https?://[^/]+{re.escape(path)}$"))


def test_system_admin_manages_a_tenant_and_switches_back(
    page: Page,  # noqa: F811
    people: People,
) -> None:
    login(page, people.sysadmin.username, PASSWORD)
    _expect_path(page, "/admin/")

    page.locator("#content-main tr.model-tenant").get_by_role("link", name="Tenants").click()
    _expect_path(page, "/admin/tenants/tenant/")
    manage_a = page.locator('button.manage-tenant[data-tenant="a.example"]')
    expect(manage_a).to_have_count(1)
    expect(page.locator('button.manage-tenant[data-tenant="b.example"]')).to_have_count(1)

    with page.expect_navigation():
        manage_a.click()
    _expect_path(page, "/tenant/")
    expect(page.get_by_test_id("acting-as")).to_have_text("Tenant A / root")

    page.locator("#content-main tr.model-extension").get_by_role("link", name="Extensions").click()
    _expect_path(page, "/tenant/tenants/extension/")
    results = page.locator("#result_list")
    expect(results).to_contain_text("Front desk A")
    expect(results).to_contain_text("Back office A")
    expect(results).not_to_contain_text("Front desk B")
    expect(results).not_to_contain_text("Back office B")

    page.once("dialog", lambda dialog: dialog.accept())  # "Stop managing Tenant A…?"
    with page.expect_navigation():
        page.get_by_role("button", name="Switch to Administrator").click()
    _expect_path(page, "/admin/tenants/tenant/")
    expect(page.locator("#id_password")).to_have_count(0)
    expect(page.get_by_test_id("acting-as")).to_have_count(0)
    expect(page.locator('button.manage-tenant[data-tenant="a.example"]')).to_be_visible()


@pytest.mark.console_errors(r"status of 403")
def test_tenant_admin_lands_on_the_tenant_site_and_is_refused_the_system_site(
    page: Page,  # noqa: F811
    people: People,
) -> None:
    login(page, people.admin_a.username, PASSWORD)
    _expect_path(page, "/tenant/")
    expect(page.get_by_test_id("acting-as")).to_have_text("Tenant A / admin-a")

    response = page.goto("/admin/")
    assert response is not None
    refused = response.status == 403 or _path(page).startswith("/login/")
    assert refused, f"/admin/ answered {response.status} at {page.url}"
    content = page.content()
    assert "Tenant B" not in content
    assert "System administration" not in content

    response = page.goto("/admin/tenants/tenant/")
    assert response is not None
    assert response.status == 403 or _path(page).startswith("/login/")
    assert "b.example" not in page.content()


def test_extension_user_lands_on_the_inbox(
    page: Page,  # noqa: F811
    people: People,
) -> None:
    login(page, people.user_a.username, PASSWORD)
    _expect_path(page, "/inbox/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Front desk A")


def test_user_of_a_disabled_tenant_cannot_sign_in(
    page: Page,  # noqa: F811
    people: People,
) -> None:
    tenant_update(tenant=people.tenant_b, enabled=False)

    login(page, people.admin_b.username, PASSWORD)
    _expect_path(page, "/login/")
    expect(page.locator(".login-box .error")).to_contain_text("disabled")
    expect(page.locator("#id_password")).to_be_visible()

    response = page.goto("/tenant/")
    assert response is not None
    assert _path(page).startswith("/login/")
