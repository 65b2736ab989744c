"""Every kind of page, opened in Chromium under the Content-Security-Policy: the `page` fixture
fails a test on any CSP violation, console error or uncaught exception, so visiting is the test."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from sms.models import SmsConfiguration
from tests.browser import login, watch_for_page_errors
from tests.factories import World

PASSWORD = "correct horse 42"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _visit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert response.status == 200, f"{path} answered {response.status}"
    page.wait_for_load_state("networkidle")


def test_tenant_pages_run_under_the_policy_without_errors(page: Page, world: World) -> None:
    configuration = world.objects_a[SmsConfiguration]
    login(page, world.admin_a.username, PASSWORD)
    for path in (
        "/tenant/",
        "/tenant/sms/smsconfiguration/",
        f"/tenant/sms/smsconfiguration/{configuration.pk}/details/",
        f"/tenant/sms/smsconfiguration/{configuration.pk}/change/",
        "/tenant/sms/smsconfiguration/add/",
        "/tenant/sms/message/",
        "/tenant/tenants/extension/add/",
        "/inbox/",
        "/inbox/compose/",
        "/account/api-tokens/",
    ):
        _visit(page, path)
    _visit(page, f"/tenant/sms/smsconfiguration/{configuration.pk}/details/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#rotate-form button").click()
    expect(page.locator("#webhook-url")).to_have_value(configuration.webhook_url)


def test_system_pages_and_api_docs_run_under_the_policy_without_errors(
    page: Page, world: World
) -> None:
    login(page, world.sysadmin.username, PASSWORD)
    for path in (
        "/admin/",
        "/admin/tenants/tenant/",
        f"/admin/tenants/tenant/{world.tenant_a.pk}/change/",
        "/admin/trunks/trunk/",
        "/admin/trunks/trunk/add/",
        "/api/v1/",
    ):
        _visit(page, path)
    _visit(page, "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Seed SMS Portal API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()


def test_the_sign_in_page_runs_under_the_policy_without_errors(
    page: Page, live_server: Any
) -> None:
    _visit(page, "/login/")


def test_an_inline_script_and_an_uncaught_exception_are_reported(
    browser: Browser, live_server: Any
) -> None:
    context = browser.new_context(base_url=live_server.url)
    problems = watch_for_page_errors(context)
    try:
        page = context.new_page()
        page.goto("/login/")
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.inlineRan = true";
                document.head.append(script);
            }"""
        )
        page.evaluate("() => { setTimeout(() => { throw new Error('thrown by the page'); }); }")
        for _ in range(100):
            if any(p.startswith("CSP: script-src") for p in problems) and any(
                p.startswith("page error") for p in problems
            ):
                break
            page.wait_for_timeout(50)
        assert page.evaluate("window.inlineRan === undefined")
    finally:
        context.close()
    assert any("script-src" in problem and "inline" in problem for problem in problems), problems
    assert any("thrown by the page" in problem for problem in problems), problems
