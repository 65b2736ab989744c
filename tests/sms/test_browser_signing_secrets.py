"""Signing secrets and the tenant Settings page, clicked through in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Dialog, Page, expect

from sms.models import Action, InboundRule
from tenants.models import Extension, Tenant
from tests.browser import login
from tests.factories import World
from tests.sms.helpers import make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse 42"


def fits_the_width(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_tenant_admin_reveals_copies_and_rotates_a_rule_secret(world: World, page: Page) -> None:
    rule = make_rule(
        world.tenant_a,
        did_range="12125550107",
        extension=Extension.objects.get(user=world.user_a),
        name="To the CRM",
        office_action=Action.HTTP,
        office_extension=None,
        office_target="https://hooks.example.com/sms",
    )
    login(page, world.admin_a.username, PASSWORD)
    page.goto(f"/tenant/sms/inboundrule/{rule.pk}/change/")
    panel = page.get_by_test_id("signing-secret")
    value = panel.get_by_test_id("secret-value")
    expect(value).to_have_value("")
    assert fits_the_width(page)

    panel.get_by_test_id("secret-reveal").click()
    expect(value).not_to_have_value("")
    rule.refresh_from_db()
    expect(value).to_have_value(rule.webhook_secret)
    old = rule.webhook_secret

    panel.get_by_test_id("secret-copy").click()
    expect(panel.get_by_test_id("secret-message")).to_have_text("Secret copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == old

    # Cancelling the confirmation changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    panel.get_by_test_id("secret-rotate").click()
    expect(value).to_have_value(old)
    rule.refresh_from_db()
    assert rule.webhook_secret == old

    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    panel.get_by_test_id("secret-rotate").click()
    expect(panel.get_by_test_id("secret-message")).to_contain_text("A new secret signs")
    rule.refresh_from_db()
    assert rule.webhook_secret != old
    expect(value).to_have_value(rule.webhook_secret)
    assert "stops working at once" in messages[0]
    panel.get_by_test_id("secret-copy").click()
    expect(panel.get_by_test_id("secret-message")).to_have_text("Secret copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == rule.webhook_secret
    assert InboundRule.objects.filter(webhook_secret=old).count() == 0


def test_a_tenant_admin_edits_the_replies_on_the_settings_page(world: World, page: Page) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/")
    page.locator("#content-main").get_by_role("link", name="Settings").first.click()
    expect(page).to_have_url(re.compile(r"/tenant/settings/$"))
    assert fits_the_width(page)

    page.fill("#id_timezone", "Mars/Olympus")
    page.fill("#id_start_reply", "Welcome back to Acme texts.")
    page.get_by_test_id("settings-save").click()
    expect(page.locator(".errorlist")).to_contain_text("not a known time zone")
    assert Tenant.objects.get(pk=world.tenant_a.pk).start_reply != "Welcome back to Acme texts."

    page.fill("#id_timezone", "America/Toronto")
    page.fill("#id_help_reply", "Acme: call 555-0100. Reply STOP to opt out.")
    page.get_by_test_id("settings-save").click()
    expect(page.locator(".messagelist")).to_contain_text("The settings were saved.")
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    assert tenant.start_reply == "Welcome back to Acme texts."
    assert tenant.help_reply == "Acme: call 555-0100. Reply STOP to opt out."
    assert tenant.timezone == "America/Toronto"

    panel = page.get_by_test_id("signing-secret")
    panel.get_by_test_id("secret-reveal").click()
    expect(panel.get_by_test_id("secret-value")).not_to_have_value("")
    tenant.refresh_from_db()
    expect(panel.get_by_test_id("secret-value")).to_have_value(tenant.callback_secret)
