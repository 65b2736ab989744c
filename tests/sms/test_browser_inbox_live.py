"""The inbox in Chromium: the portal's look in dark mode (the phone simulator's too), search, the
live list, notifications and pictures attached to an MMS."""

# ruff: noqa: F811  (fixtures imported from the inbox tests)

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sms.configurations import sms_configuration_update
from sms.models import Contact, Direction, Kind, Message, SmsConfiguration
from tests.browser import browser, login, page  # noqa: F401
from tests.factories import World
from tests.sms.test_inbox import GROUP, OTHER, OWN, Inbox, inbox, no_tasks, receive  # noqa: F401
from tests.sms.test_inbox_search_live import PNG
from tests.tasks import TaskRecorder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse 42"
# Records every notification the page shows, instead of showing it.
FAKE_NOTIFICATION = """
window.__notifications = [];
class FakeNotification {
  constructor(title, options) {
    window.__notifications.push({ title, body: (options || {}).body || "" });
    const mark = document.createElement("span");
    mark.className = "test-notification";
    mark.hidden = true;
    document.body.appendChild(mark);
  }
  addEventListener() {}
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
}
window.Notification = FakeNotification;
"""


def background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_the_inbox_wears_the_portals_frame_in_light_and_dark(
    world: World, inbox: Inbox, page: Page
) -> None:
    login(page, world.user_a.username, PASSWORD)
    page.emulate_media(color_scheme="light")
    page.goto("/inbox/")
    expect(page.locator("#header #site-name")).to_contain_text("Seed SMS Portal")
    expect(page.locator(".breadcrumbs")).to_contain_text("Inbox")
    expect(page.locator("#user-tools .theme-toggle")).to_be_visible()
    assert background(page) == "rgb(255, 255, 255)"

    page.emulate_media(color_scheme="dark")
    for url in (
        "/inbox/",
        f"/inbox/c/{inbox.own.pk}/",
        "/inbox/compose/",
        "/sandbox/voipms/phone/",
    ):
        page.goto(url)
        assert background(page) == "rgb(18, 18, 18)", url
        bubble = page.locator(".bubble-in").first
        if url != "/inbox/compose/" and "/c/" in url:
            color = bubble.evaluate("node => getComputedStyle(node).backgroundColor")
            assert color == "rgb(33, 33, 33)"  # the admin's --darkened-bg in dark mode
    # No sideways scrolling at 1280 pixels.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/inbox/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # The theme toggle of the admin works here too: dark chosen, the page stays dark in light.
    page.emulate_media(color_scheme="light")
    page.goto("/inbox/")
    page.locator("#user-tools .theme-toggle").click()  # auto → dark
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == "rgb(18, 18, 18)"


def test_search_shows_the_matching_conversation_with_the_text_highlighted(
    world: World, inbox: Inbox, page: Page
) -> None:
    receive(
        inbox.configuration, did="+12125550103", remote=GROUP, text="Is the blue sofa in stock?"
    )
    receive(inbox.configuration, did="+12125550103", remote=GROUP, text="Thanks!")
    Contact.objects.create(tenant=world.tenant_a, name="Annie Caron", number=GROUP)
    login(page, world.user_a.username, PASSWORD)
    page.goto("/inbox/")

    page.get_by_role("searchbox", name="Search conversations").fill("blue sofa")
    page.get_by_role("button", name="Search").click()

    rows = page.locator(".conversation-row")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".contact-name")).to_have_text("Annie Caron")
    expect(rows.first.locator(".contact-number")).to_have_text(GROUP)
    expect(rows.first.locator("mark")).to_have_text("blue sofa")
    expect(page.get_by_test_id("search-summary")).to_contain_text("1 conversation matches")

    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(2)


def test_new_conversations_and_unread_counts_appear_in_the_list_without_reloading(
    world: World, inbox: Inbox, page: Page
) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/inbox/")
    rows = page.locator(".conversation-row")
    expect(rows).to_have_count(3)
    page.evaluate("window.__sameDocument = true")

    receive(inbox.configuration, did="+12125550102", remote="+13125550099", text="First time here")
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="Still waiting")
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="Hello?")

    expect(rows).to_have_count(4, timeout=12_000)
    expect(rows.first).to_have_attribute("data-conversation", str(inbox.own.pk))
    expect(rows.first.get_by_test_id("unread")).to_have_text("3")
    expect(rows.first.locator(".last-text")).to_have_text("Hello?")
    expect(rows.nth(1).locator(".contact-name")).to_have_text("+13125550099")
    assert page.evaluate("window.__sameDocument") is True


def test_an_opted_in_user_is_notified_of_a_message_in_another_conversation(
    world: World, inbox: Inbox, page: Page
) -> None:
    page.context.grant_permissions(["notifications"])
    page.add_init_script(FAKE_NOTIFICATION)
    Contact.objects.create(tenant=world.tenant_a, name="Léa Martin", number=GROUP)
    login(page, world.user_a.username, PASSWORD)
    page.goto(f"/inbox/c/{inbox.own.pk}/")
    toggle = page.get_by_test_id("notify-toggle")
    expect(toggle).to_have_text("Notify me")

    toggle.click()

    expect(toggle).to_have_text("Notifications on")
    assert page.evaluate("localStorage.getItem('seed-sms-inbox-notify')") == "on"
    receive(inbox.configuration, did="+12125550101", remote=OWN, text="In this one: no notice")
    receive(inbox.configuration, did="+12125550103", remote=GROUP, text="y" * 140)
    receive(inbox.configuration, did="+12125550102", remote=OTHER, text="Not hers to see")

    expect(page.locator(".test-notification")).to_have_count(1, timeout=12_000)
    expect(page.locator(".bubble-in").last).to_have_text(re.compile("no notice"), timeout=12_000)
    page.wait_for_timeout(6_000)  # one more poll: nothing else may come
    notifications = page.evaluate("window.__notifications")
    assert notifications == [{"title": f"Léa Martin ({GROUP})", "body": "y" * 100}]

    # The opt-in is remembered on the next page.
    page.goto("/inbox/")
    expect(page.get_by_test_id("notify-toggle")).to_have_text("Notifications on")


def test_a_picture_attached_in_compose_shows_as_a_thumbnail_and_is_sent_as_mms(
    world: World, page: Page, no_tasks: TaskRecorder, tmp_path: Path
) -> None:
    sms_configuration_update(
        configuration=world.objects_a[SmsConfiguration], actor=None, channel="mms"
    )
    picture = tmp_path / "shop-front.png"
    picture.write_bytes(PNG)
    text_file = tmp_path / "notes.txt"
    text_file.write_bytes(b"not a picture")
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/inbox/compose/")
    page.select_option("#compose-from", "+12125550100")
    page.fill("#compose-to", "514 555 0123")
    page.fill("#compose-body", "Our new shop front")
    attach = page.locator("#compose-attachments")

    attach.set_input_files(str(text_file))
    expect(page.get_by_test_id("attach-error")).to_contain_text("not a JPEG, PNG or GIF picture")
    attach.set_input_files(str(picture))
    expect(page.get_by_test_id("attach-error")).to_be_hidden()
    preview = page.get_by_test_id("attach-previews").locator("img")
    expect(preview).to_have_count(1)
    expect(preview).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    expect(page.get_by_test_id("counter")).to_have_text("18 bytes · sent as 1 MMS")

    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()

    message = Message.objects.get(direction=Direction.OUT)
    assert message.kind == Kind.MMS
    thumbnail = page.locator(".bubble-out .bubble-media img")
    expect(thumbnail).to_have_count(1)
    media = message.media.get()
    expect(thumbnail).to_have_attribute("src", f"/inbox/media/{media.pk}/")
    for _ in range(100):
        if thumbnail.evaluate("img => img.complete && img.naturalWidth > 0"):
            break
        page.wait_for_timeout(100)
    assert thumbnail.evaluate("img => img.naturalWidth") == 1
