"""Two-factor sign-in clicked through in Chromium: enrol, sign in with a code and with a recovery
code, a wrong code refused, and a system administrator sent to enrolment when it is required."""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django_otp.oath import hotp
from playwright.sync_api import Page, expect

from tenants.models import Role, User
from tenants.services import tenant_create, user_create
from tests.browser import browser, login, page  # noqa: F401

PASSWORD = "correct horse 42"
STEP = 30

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@dataclass
class App:
    """The authenticator app, as the test plays it: the secret, and the last time step used."""

    key: bytes
    last_step: int = -1

    @classmethod
    def from_page(cls, page: Page) -> App:  # noqa: F811
        secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
        return cls(key=base64.b32decode(secret + "=" * (-len(secret) % 8)))

    def code(self) -> str:
        """Return a code the portal has not seen yet: this time step's, or the next one's."""
        step = max(int(time.time()) // STEP, self.last_step + 1)
        self.last_step = step
        return f"{hotp(self.key, step):06d}"


@pytest.fixture
def admin(settings: Any) -> User:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tenant = tenant_create(name="Tenant A", slug="a.example")
    return user_create(username="admin-a", password=PASSWORD, role=Role.TENANT_ADMIN, tenant=tenant)


def _expect_path(current: Page, path: str) -> None:
    expect(current).to_have_url(re.compile(rf"^https?://[^/]+{re.escape(path)}$"))


def _enrol(page: Page) -> tuple[App, list[str]]:  # noqa: F811
    """Set up two-factor sign-in from the security page; return the app and recovery codes."""
    with page.expect_navigation():
        page.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(page.locator("svg.totp-qr")).to_be_visible()
    app = App.from_page(page)
    page.fill("#id_confirm_code", app.code())
    with page.expect_navigation():
        page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_test_id("two-factor-status")).to_contain_text("on")
    codes = page.get_by_test_id("recovery-codes").locator("li code").all_inner_texts()
    assert len(codes) == 10
    return app, codes


def _log_out(page: Page) -> None:  # noqa: F811
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    _expect_path(page, "/login/")


def _enter_code(page: Page, code: str) -> None:  # noqa: F811
    page.fill("#id_code", code)
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()


def test_enrol_then_sign_in_with_a_code_a_recovery_code_and_not_a_wrong_one(
    page: Page,  # noqa: F811
    admin: User,
) -> None:
    login(page, admin.username, PASSWORD)
    _expect_path(page, "/tenant/")
    with page.expect_navigation():
        page.locator("#user-tools").get_by_role("link", name="Security").click()
    _expect_path(page, "/account/security/")
    expect(page.get_by_test_id("two-factor-status")).to_contain_text("off")

    app, recovery_codes = _enrol(page)
    page.reload()
    expect(page.get_by_test_id("recovery-codes")).to_have_count(0)
    expect(page.locator("body")).to_contain_text("10 unused recovery codes")
    _log_out(page)

    login(page, admin.username, PASSWORD)
    assert "/login/code/" in page.url
    response = page.goto("/tenant/")
    assert response is not None
    assert "/login/code/" in page.url
    _enter_code(page, app.code())
    _expect_path(page, "/tenant/")
    expect(page.get_by_test_id("acting-as")).to_have_text("Tenant A / admin-a")
    _log_out(page)

    login(page, admin.username, PASSWORD)
    _enter_code(page, recovery_codes[0])
    _expect_path(page, "/tenant/")
    _log_out(page)

    login(page, admin.username, PASSWORD)
    right = app.code()
    _enter_code(page, f"{(int(right) + 1) % 1_000_000:06d}")
    assert "/login/code/" in page.url
    expect(page.get_by_test_id("code-error")).to_contain_text("That code is not right")
    response = page.goto("/tenant/")
    assert response is not None
    assert "/login/code/" in page.url
    # A used recovery code is refused too.
    _enter_code(page, recovery_codes[0])
    expect(page.get_by_test_id("code-error")).to_be_visible()
    assert "/login/code/" in page.url


def test_require_admin_2fa_sends_a_system_admin_to_enrolment(
    page: Page,  # noqa: F811
    admin: User,
    settings: Any,
) -> None:
    settings.REQUIRE_ADMIN_2FA = True
    root = user_create(username="root", password=PASSWORD, role=Role.SYSTEM_ADMIN)

    login(page, root.username, PASSWORD)
    _expect_path(page, "/account/security/")
    expect(page.get_by_test_id("two-factor-status")).to_contain_text("required")
    response = page.goto("/admin/tenants/tenant/")
    assert response is not None
    _expect_path(page, "/account/security/")

    _enrol(page)
    with page.expect_navigation():
        page.get_by_role("link", name="System").click()
    _expect_path(page, "/admin/")
    expect(page.locator("#site-name")).to_contain_text("System administration")
    page.goto("/account/security/")
    expect(page.locator("body")).to_contain_text("required for your account, so it stays on")
    expect(page.get_by_role("button", name="Turn off two-factor sign-in")).to_have_count(0)
