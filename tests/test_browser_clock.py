"""One clock in Chromium: a browser in Tokyo still reads the tenant's times, and the profile page
sets the user's own zone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from sms.models import Conversation, Message
from tests.browser import login
from tests.factories import World
from tests.test_clock import SUMMER, receive_at, toronto_message

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser_timezone("Asia/Tokyo"),
]

PASSWORD = "correct horse 42"


@pytest.fixture
def message(world: World) -> Message:
    return toronto_message(world)


def test_the_inbox_shows_the_tenants_time_in_a_browser_in_another_zone(
    world: World, message: Message, page: Page
) -> None:
    login(page, world.user_a.username, PASSWORD)
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"

    page.goto("/inbox/")
    expect(page.get_by_test_id("time-zone")).to_have_text(
        re.compile(r"Times in America/Toronto \((EST|EDT)\)")
    )
    row = page.locator(f'tr[data-conversation="{message.conversation_id}"]')
    expect(row.locator("time")).to_have_text("Jan. 15, 2026, 9:05 a.m. EST")

    row.get_by_role("link").click()
    bubble = page.locator(f'.bubble[data-id="{message.pk}"] time')
    expect(bubble).to_have_text("Jan. 15, 2026, 9:05 a.m. EST")

    # A message arriving while the page is open is drawn by the page's script: same clock.
    later = receive_at(message.configuration, at=SUMMER, text="And now?")
    Conversation.objects.filter(pk=later.conversation_id).update(last_message_at=SUMMER)
    assert later.conversation_id == message.conversation_id
    expect(page.locator(f'.bubble[data-id="{later.pk}"] time')).to_have_text(
        "July 15, 2026, 10:05 a.m. EDT"
    )
    expect(page.locator(f'.bubble[data-id="{later.pk}"] time')).to_have_attribute(
        "datetime", "2026-07-15T10:05:07-04:00"
    )


def test_a_system_admin_sets_his_zone_on_the_profile_page(world: World, page: Page) -> None:
    login(page, world.sysadmin.username, PASSWORD)
    page.goto("/admin/")
    expect(page.get_by_test_id("time-zone")).to_have_text("Times in UTC")

    page.get_by_role("link", name="Profile").click()
    expect(page).to_have_url(re.compile(r"/account/profile/$"))
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_label("Language").select_option("en")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()

    expect(page.locator(".messagelist")).to_contain_text("Your profile was saved.")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    expect(page.get_by_test_id("time-zone")).to_have_text(
        re.compile(r"Times in Europe/Paris \((CET|CEST)\)")
    )
    world.sysadmin.refresh_from_db()
    assert (world.sysadmin.time_zone, world.sysadmin.language) == ("Europe/Paris", "en")

    # The system site now shows his zone: the audit log records the change in Paris time.
    page.goto("/admin/tenants/auditevent/?action=profile_changed")
    expect(page.locator("#result_list .field-at").first).to_have_text(re.compile(r" (CET|CEST)$"))
