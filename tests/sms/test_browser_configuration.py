"""The seed workflow, clicked through in Chromium: add a configuration, copy its webhook URL,
open its details, and see a webhook from the VoIP.ms sandbox arrive."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from sms.models import SmsConfiguration
from tests.browser import login
from tests.factories import World
from trunks.voipms.sandbox.services import (
    sandbox_account_ensure,
    sandbox_did_configure,
    sandbox_inbound_emit,
)

PASSWORD = "correct horse 42"
API_PASSWORD = "Browser-Typed-API-Secret-5520"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def public_live_server(live_server: Any, settings: Any) -> Any:
    settings.PUBLIC_BASE_URL = live_server.url
    settings.VOIPMS_API_URL = f"{live_server.url}/sandbox/voipms/api/v1/rest.php"
    return live_server


def _add_copy_and_open(page: Page, name: str) -> str:
    """Add a configuration from the SMS/MMS menu and return the URL Copy Webhook copied."""
    page.locator("#content-main tr.model-smsconfiguration a").first.click()
    page.locator("#toolbar-add").click()
    page.fill("#id_name", name)
    page.select_option("#id_trunk", label="VoIP.ms San Jose")
    page.fill("#id_username", "owner@example.com")
    page.fill("#id_api_password", API_PASSWORD)
    page.locator("input[name=_save]").click()

    expect(page).to_have_url(re.compile(r"/tenant/sms/smsconfiguration/$"))
    expect(page.locator(".messagelist")).to_contain_text("SMS/MMS Webhook URL")
    assert API_PASSWORD not in page.content()

    row = page.locator("#result_list tbody tr", has=page.locator("a.config-name", has_text=name))
    page.locator("#toolbar-copy-webhook").click()
    expect(page.locator("#toolbar-message")).to_contain_text("Select one configuration")
    row.locator("input.action-select").check()
    page.locator("#toolbar-copy-webhook").click()
    expect(page.locator("#toolbar-message")).to_have_text("Webhook URL copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")

    row.locator("td.field-trunk_host").dblclick()
    expect(page.locator("#webhook-url")).to_have_value(copied)
    return copied


def _sandbox_sends_to(url: str, did: str) -> None:
    sandbox_account_ensure(username="owner@example.com", api_password=API_PASSWORD, dids=[did])
    sandbox_did_configure(did=did, webhook_url=url)
    sandbox_inbound_emit(did=did, from_number="8457231213", text="Hello portal")


def test_a_system_administrator_manages_a_tenant_and_adds_a_configuration(
    page: Page, world: World, public_live_server: Any
) -> None:
    login(page, world.sysadmin.username, PASSWORD)
    page.locator("#content-main tr.model-tenant").get_by_role("link", name="Tenants").click()
    page.locator(f'button.manage-tenant[data-tenant="{world.tenant_a.slug}"]').click()
    expect(page.get_by_test_id("acting-as")).to_have_text(f"Tenant A / {world.sysadmin.username}")

    copied = _add_copy_and_open(page, "Main numbers")
    configuration = SmsConfiguration.objects.get(name="Main numbers")
    assert configuration.tenant_id == world.tenant_a.pk
    assert copied == configuration.webhook_url

    _sandbox_sends_to(copied, "2125550101")
    page.goto("/tenant/sms/smsconfiguration/")
    row = page.locator(
        "#result_list tbody tr", has=page.locator("a.config-name", has_text="Main numbers")
    )
    expect(row.get_by_test_id("status")).to_contain_text("Last webhook")


def test_a_tenant_administrator_signing_in_directly_does_the_same(
    page: Page, world: World, public_live_server: Any
) -> None:
    login(page, world.admin_b.username, PASSWORD)
    expect(page.get_by_test_id("acting-as")).to_have_text(f"Tenant B / {world.admin_b.username}")
    copied = _add_copy_and_open(page, "Birch numbers")
    assert copied == SmsConfiguration.objects.get(name="Birch numbers").webhook_url

    _sandbox_sends_to(copied, "2125550112")
    page.goto("/tenant/sms/smsconfiguration/")
    page.locator("#toolbar-refresh").click()
    row = page.locator(
        "#result_list tbody tr", has=page.locator("a.config-name", has_text="Birch numbers")
    )
    expect(row.get_by_test_id("status")).to_contain_text("Last webhook")


def test_copy_webhook_shows_the_url_selected_when_the_clipboard_is_unavailable(
    page: Page, world: World, public_live_server: Any
) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/sms/smsconfiguration/")
    page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    row = page.locator("#result_list tbody tr").first
    row.locator("input.action-select").check()
    page.locator("#toolbar-copy-webhook").click()
    box = page.locator("#webhook-fallback-input")
    expect(box).to_be_visible()
    expect(box).to_have_value(SmsConfiguration.objects.get(tenant=world.tenant_a).webhook_url)


def test_the_enable_toggle_saves_in_place(
    page: Page, world: World, public_live_server: Any
) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/sms/smsconfiguration/")
    toggle = page.locator("input.enable-toggle").first
    toggle.uncheck()
    expect(page.locator("#toolbar-message")).to_have_text("Configuration disabled.")
    assert SmsConfiguration.objects.get(tenant=world.tenant_a).enabled is False
    assert page.url.endswith("/tenant/sms/smsconfiguration/")
