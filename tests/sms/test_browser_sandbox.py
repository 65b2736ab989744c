"""The Sandbox page and the phone simulator, clicked through in Chromium by a tenant admin."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser import browser, login, page  # noqa: F401
from tests.factories import World
from tests.sms.helpers import make_configuration
from trunks.voipms.sandbox.models import SandboxDid, SandboxMessage
from trunks.voipms.sandbox.services import sandbox_account_ensure

PASSWORD = "correct horse 42"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_tenant_admin_sets_up_a_sandbox_did_and_texts_it(
    page: Page,  # noqa: F811
    world: World,
    live_server: Any,
    settings: Any,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PUBLIC_BASE_URL = live_server.url
    make_configuration(world.tenant_a, name="Front desk", username="clinic@example.com")
    sandbox_account_ensure(
        username="other@example.com", api_password="x", dids=["8455577769"], tenant=world.tenant_b
    )
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/")
    page.get_by_role("link", name="Sandbox").first.click()
    expect(page.get_by_test_id("sandbox-no-account")).to_be_visible()
    # The configuration signs in as a login the sandbox does not know yet: one click creates it.
    with page.expect_navigation():
        page.locator("form", has_text="Front desk").get_by_role(
            "button", name="Create this sandbox account"
        ).click()
    expect(page.locator(".messagelist")).to_contain_text("clinic@example.com is ready")
    expect(page.get_by_test_id("sandbox-accounts")).to_contain_text("clinic@example.com")

    page.fill("#id_did", "(332) 249-6216")
    page.select_option("#id_configuration", label="Front desk")
    with page.expect_navigation():
        page.get_by_role("button", name="Add DID").click()
    row = page.locator("tr[data-did='3322496216']")
    expect(row).to_contain_text("+13322496216")
    expect(row.locator("td").nth(2)).to_contain_text("on · http")
    expect(page.get_by_test_id("sandbox-dids")).not_to_contain_text("8455577769")

    # Deliver by URL callback only: the configuration's template is one click away.
    row.get_by_role("link", name="Delivery").click()
    # The configuration signing in to the DID's account is offered first.
    expect(page.get_by_test_id("sandbox-defaults").locator("p").first).to_contain_text("Front desk")
    page.get_by_role("button", name="Use its URL callback").first.click()
    webhook_url = SandboxDid.objects.get(did="3322496216").webhook_url
    expect(page.locator("#id_callback_url")).to_have_value(
        webhook_url
        + "?from={FROM}&to={TO}&message={MESSAGE}&id={ID}&date={TIMESTAMP}&media={MEDIA}"
    )
    expect(page.locator("#id_callback_enabled")).to_be_checked()
    page.uncheck("#id_webhook_enabled")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(row.locator("td").nth(2)).to_contain_text("off")
    expect(row.locator("td").nth(3)).to_contain_text("on · http")

    # The phone simulator, in the portal's header, offers this tenant's DID only.
    page.get_by_role("link", name="phone simulator", exact=True).click()
    expect(page.locator("#site-name")).to_contain_text("Seed SMS Portal")
    expect(page.get_by_test_id("acting-as")).to_contain_text(world.tenant_a.name)
    expect(page.locator("#sandbox-did option")).to_have_count(1)
    expect(page.locator("#sandbox-did")).to_have_value("3322496216")
    expect(page.locator("#sandbox-via")).to_have_value("callback")
    page.fill("#sandbox-text", "Can I move my cleaning?")
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "pushed to the portal, which answered HTTP 200"
    )
    expect(page.locator(".bubble.handset")).to_contain_text("Can I move my cleaning?")
    expect(page.locator(".bubble.handset")).to_contain_text("pushed by callback: HTTP 200")
    assert SandboxMessage.objects.get().via == "callback"

    # Removing the DID asks first, then it is gone from the page and the simulator.
    page.goto("/tenant/sandbox/")
    row.get_by_role("link", name="Remove").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, remove it").click()
    expect(page.get_by_test_id("sandbox-no-dids")).to_be_visible()
    page.goto("/sandbox/voipms/phone/")
    expect(page.get_by_test_id("sandbox-no-dids")).to_be_visible()
