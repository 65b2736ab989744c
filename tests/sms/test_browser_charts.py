"""The 14-day charts and the operators' logs in Chromium: axis labels never overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from sms.models import Direction, Message, MessageStatus, OptOut, SmsConfiguration, WebhookDelivery
from tenants.models import Tenant
from tenants.services import audit_record, tenant_create
from tests.browser import login
from tests.factories import World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse 42"

# Every axis label's box, per chart: [[{x, y, w, h, text}, ...], ...].
LABEL_BOXES = """() => [...document.querySelectorAll('figure.chart > svg')].map(svg =>
  [...svg.querySelectorAll('.x-label, .y-label')].map(t => {
    const r = t.getBoundingClientRect();
    return {x: r.left, y: r.top, w: r.width, h: r.height, text: t.textContent,
            axis: t.classList.contains('x-label') ? 'x' : 'y'};
  }))"""


def _two_weeks(tenant: Tenant, configuration: SmsConfiguration | None, per_day: int) -> None:
    now = timezone.now()
    for day in range(14):
        for n in range(per_day + day):
            row = Message.objects.create(
                tenant=tenant,
                configuration=configuration,
                direction=Direction.IN if n % 3 else Direction.OUT,
                status=MessageStatus.FAILED if n % 7 == 6 else MessageStatus.ROUTED,
                did="+12125550100",
                remote=f"+1312555{n:04d}",
                body=f"message {n} of day {day}",
            )
            Message.objects.filter(pk=row.pk).update(created_at=now - timedelta(days=day))


# The change list scrolls sideways inside its own box rather than the page's.
LIST_FITS = (
    "(() => { const r = document.querySelector('.results'); "
    "return r.scrollWidth <= r.clientWidth; })()"
)


def _assert_labels_apart(page: Page, charts: int) -> None:
    boxes = page.evaluate(LABEL_BOXES)
    assert len(boxes) == charts
    for labels in boxes:
        days = [b for b in labels if b["axis"] == "x"]
        assert len(days) >= 4, labels
        assert all(b["w"] > 0 and b["h"] > 0 for b in labels)
        for i, one in enumerate(labels):
            for other in labels[i + 1 :]:
                apart = (
                    one["x"] + one["w"] <= other["x"]
                    or other["x"] + other["w"] <= one["x"]
                    or one["y"] + one["h"] <= other["y"]
                    or other["y"] + other["h"] <= one["y"]
                )
                assert apart, f"{one['text']!r} overlaps {other['text']!r}"


def test_a_configurations_details_page_draws_14_days_with_labels_apart(
    world: World, page: Page
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    _two_weeks(world.tenant_a, configuration, per_day=3)
    OptOut.objects.create(tenant=world.tenant_a, did="+12125550100", remote="+13125550000")

    login(page, world.admin_a.username, PASSWORD)
    page.goto(f"/tenant/sms/smsconfiguration/{configuration.pk}/details/")
    chart = page.locator("#volume svg.chart-plot")
    expect(chart).to_be_visible()
    assert chart.get_attribute("role") == "img"
    assert "last 14 days" in chart.get_attribute("aria-label")
    assert page.locator("#volume table.chart-figures tbody tr").count() == 14
    assert page.locator("#volume svg rect title").count() >= 14
    _assert_labels_apart(page, charts=1)

    # A narrow window shrinks the picture as a whole: the labels stay apart.
    page.set_viewport_size({"width": 700, "height": 800})
    _assert_labels_apart(page, charts=1)


def test_the_system_home_draws_each_tenants_volume_with_labels_apart(
    world: World, page: Page
) -> None:
    _two_weeks(world.tenant_a, world.objects_a[SmsConfiguration], per_day=2)
    _two_weeks(world.tenant_b, world.objects_b[SmsConfiguration], per_day=1)
    for n in range(8):
        _two_weeks(tenant_create(name=f"Tenant {n}", slug=f"t{n}.example"), None, per_day=0)

    login(page, world.sysadmin.username, PASSWORD)
    page.goto("/admin/")
    panel = page.locator("#tenant-volume")
    expect(panel.locator("svg.chart-plot")).to_be_visible()
    expect(panel.locator("figcaption")).to_contain_text("Tenant A")
    expect(panel.locator("figcaption")).to_contain_text("other tenants")
    _assert_labels_apart(page, charts=2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_the_operators_logs_render_in_the_browser(world: World, page: Page) -> None:
    Message.objects.create(
        tenant=world.tenant_b,
        direction=Direction.IN,
        status=MessageStatus.ROUTED,
        did="+12125550100",
        remote="+13125550199",
        body="a long text " * 40,
    )
    WebhookDelivery.objects.create(
        tenant=world.tenant_b,
        configuration=world.objects_b[SmsConfiguration],
        method="POST",
        reason="a long reason " * 30,
    )
    audit_record(
        actor=None,
        actor_name="alice-admin",
        action="configuration_changed",
        tenant=world.tenant_a,
        detail={"fields": ["name", "trunk", "daily_send_limit", "poll_enabled"] * 5},
        address="198.51.100.7",
    )

    login(page, world.sysadmin.username, PASSWORD)
    for url in ("/admin/sms/message/", "/admin/sms/webhookdelivery/"):
        page.goto(url)
        expect(page.locator("#result_list th.column-tenant")).to_be_visible()
        expect(page.locator("#changelist-filter")).to_contain_text("Tenant B")
        assert page.evaluate(LIST_FITS), url
        page.locator("#result_list tbody tr").first.locator("a").first.click()
        expect(page.locator("#content h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, url

    page.context.clear_cookies()
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/")
    page.get_by_role("link", name="Audit events").first.click()
    expect(page.locator("#result_list")).to_contain_text("198.51.100.7")
    expect(page.locator("#changelist-filter")).to_contain_text("configuration_changed")
    assert page.evaluate(LIST_FITS)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.locator("#result_list tbody tr").first.locator("a").first.click()
    expect(page.locator("#content")).to_contain_text("alice-admin")
