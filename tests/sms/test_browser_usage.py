"""The usage page in Chromium: reached from the home page's menu, a month picked, bars drawn."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from sms.models import Direction, Message, MessageStatus, SmsConfiguration, Source
from tests.browser import login
from tests.factories import World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse 42"


def test_a_tenant_admin_opens_usage_from_the_menu_and_picks_a_month(
    world: World, page: Page
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    for day in (3, 3, 9, 20):
        row = Message.objects.create(
            tenant=world.tenant_a,
            configuration=configuration,
            direction=Direction.IN,
            status=MessageStatus.ROUTED,
            source=Source.WEBHOOK,
            did="+12125550100",
            remote="+13125550199",
            body="hi",
        )
        Message.objects.filter(pk=row.pk).update(created_at=datetime(2025, 6, day, 15, tzinfo=UTC))

    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/")
    page.get_by_role("link", name="Usage", exact=True).first.click()
    expect(page.get_by_role("heading", name="Usage")).to_be_visible()
    page.fill("#usage-month", "2025-06")
    page.get_by_role("button", name="Show").click()

    expect(page).to_have_url("/tenant/usage/?month=2025-06")
    table = page.get_by_test_id("usage-table")
    expect(table).to_contain_text("+12125550100")
    expect(table.locator("tbody tr").first).to_contain_text("4")
    assert page.locator("figure.chart svg rect").count() == 3  # three days with traffic
    assert page.get_by_test_id("usage-csv").get_attribute("href") == (
        "/tenant/usage/csv/?month=2025-06"
    )
