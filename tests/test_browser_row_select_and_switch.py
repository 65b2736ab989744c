"""Lists with actions select a row clicked anywhere outside its links and fields; Switch to
Administrator asks before it leaves the managed tenant. Clicked through in Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Dialog, Page, expect

from sms.models import SmsConfiguration
from tests.browser import browser, login, page  # noqa: F401
from tests.factories import World

PASSWORD = "correct horse 42"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_clicking_a_row_selects_it_for_copy_webhook(
    page: Page,  # noqa: F811
    world: World,
    live_server: Any,
    settings: Any,
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    login(page, world.admin_a.username, PASSWORD)
    page.goto(reverse("tenant:sms_smsconfiguration_changelist"))
    row = page.locator("#result_list tbody tr").first
    box = row.locator("input.action-select")

    row.locator("td.field-trunk_host").click()
    expect(box).to_be_checked()
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    page.locator("#toolbar-copy-webhook").click()
    expect(page.locator("#toolbar-message")).to_have_text("Webhook URL copied to the clipboard.")
    configuration = SmsConfiguration.objects.get(tenant=world.tenant_a)
    assert page.evaluate("navigator.clipboard.readText()") == configuration.webhook_url

    # A second click clears it; the toggle and the name link keep their own meaning.
    row.locator("td.field-trunk_host").click()
    expect(box).not_to_be_checked()
    expect(page.locator(".action-counter")).to_contain_text("0 of 1 selected")
    page.locator("#toolbar-copy-webhook").click()
    expect(page.locator("#toolbar-message")).to_contain_text("Select one configuration")
    row.locator("label.switch").click()
    expect(box).not_to_be_checked()


def test_clicking_a_row_selects_it_in_every_list_with_actions(
    page: Page,  # noqa: F811
    world: World,
    live_server: Any,
) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto(reverse("tenant:tenants_user_changelist"))
    rows = page.locator("#result_list tbody tr")
    count = rows.count()
    assert count >= 2
    rows.nth(1).locator("td").last.click()
    expect(rows.nth(1).locator("input.action-select")).to_be_checked()
    expect(rows.nth(0).locator("input.action-select")).not_to_be_checked()
    expect(page.locator(".action-counter")).to_contain_text(f"1 of {count} selected")


def _manage_tenant_a(tab: Page, world: World) -> None:
    login(tab, world.sysadmin.username, PASSWORD)
    tab.goto(reverse("admin:tenants_tenant_changelist"))
    with tab.expect_navigation():
        tab.locator(f'button.manage-tenant[data-tenant="{world.tenant_a.slug}"]').click()
    expect(tab.get_by_test_id("acting-as")).to_contain_text(world.tenant_a.name)


def test_switch_to_administrator_asks_first_and_cancel_stays(
    page: Page,  # noqa: F811
    world: World,
    live_server: Any,
) -> None:
    _manage_tenant_a(page, world)
    asked: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Switch to Administrator").click()
    assert asked == [
        f"Stop managing {world.tenant_a.name} and return to the system administration?"
    ]
    expect(page).to_have_url(re.compile(r"/tenant/$"))
    page.reload()
    expect(page.get_by_test_id("acting-as")).to_contain_text(world.tenant_a.name)

    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    with page.expect_navigation():
        page.get_by_role("button", name="Switch to Administrator").click()
    assert len(asked) == 2
    expect(page).to_have_url(re.compile(r"/admin/tenants/tenant/$"))
    expect(page.get_by_test_id("acting-as")).to_have_count(0)
