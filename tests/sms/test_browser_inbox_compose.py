"""Composing a new message in Chromium: the live counter, the attachment fields, and sending."""

from __future__ import annotations

import re
from collections.abc import Iterator
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from core.errors import ApplicationError
from sms.configurations import sms_configuration_update
from sms.models import Kind, LongMessagePolicy, Message, MessageStatus, SmsConfiguration
from sms.outbound.rules import sms_caller_id_save
from sms.outbound.send import message_build_parts
from sms.outbound.splitting import split_sms, utf8_len
from tests.browser import login
from tests.factories import POOLS, World, shared_trunk
from tests.sms.helpers import make_configuration
from tests.tasks import TaskRecorder
from trunks.models import Trunk
from trunks.services import trunk_assignment_save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse 42"
DID = "+12125550105"
CONTACT = "+15145550123"
# 200 characters, one of them an emoji of 4 bytes: 203 bytes, two parts broken after a space.
TEXT = (
    "Thanks for your order 🎉 "
    + "Your table is ready; please come to the front desk and show this message. " * 3
)[:200]


@pytest.fixture
def no_tasks() -> Iterator[mock.MagicMock]:
    # Keep the messages queued: no worker delivers them in these tests.
    with mock.patch("core.tasks.publish", TaskRecorder("sms.deliver_message")) as delay:
        yield delay


@pytest.fixture
def caller_id(world: World) -> str:
    sms_caller_id_save(
        tenant=world.tenant_a,
        extension=world.user_a.extension,
        trunk=shared_trunk(),
        did=DID.removeprefix("+"),
    )
    return DID


def expected(text: str) -> str:
    """Return what the counter must say, from the parts the server will queue."""
    try:
        parts = len(message_build_parts(configuration=SmsConfiguration(), body=text))
    except ApplicationError:  # an empty text: nothing to send
        parts = 0
    return f"{utf8_len(text)} bytes · {parts} SMS part{'' if parts == 1 else 's'}"


def test_an_extension_user_composes_a_long_text_and_lands_on_the_conversation(
    world: World, caller_id: str, page: Page, no_tasks: TaskRecorder
) -> None:
    assert (len(TEXT), utf8_len(TEXT), len(split_sms(TEXT))) == (200, 203, 2)
    login(page, world.user_a.username, PASSWORD)

    page.goto("/inbox/")
    page.get_by_role("link", name="New message").click()
    expect(page).to_have_url(re.compile(r"/inbox/compose/$"))
    expect(page.locator("#compose-from")).to_have_value(caller_id)
    page.fill("#compose-to", "514 555 0123")
    page.fill("#compose-body", TEXT)
    expect(page.get_by_test_id("counter")).to_have_text("203 bytes · 2 SMS parts")
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()

    conversation_id = Message.objects.filter(remote=CONTACT).values("conversation_id")[0]
    expect(page).to_have_url(re.compile(rf"/inbox/c/{conversation_id['conversation_id']}/$"))
    expect(page.locator(".messagelist")).to_contain_text(f"Message to {CONTACT} queued")
    bubbles = page.locator(".bubble-out")
    expect(bubbles).to_have_count(2)
    expect(bubbles.first.locator(".bubble-body")).to_have_text(split_sms(TEXT)[0])
    expect(bubbles.last.locator(".status")).to_have_text("Queued")
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.QUEUED}

    page.fill("#reply-body", "é" * 81)
    expect(page.locator("#reply-counter")).to_have_text("162 bytes · 2 SMS parts")


def test_the_counter_splits_as_the_server_does(world: World, caller_id: str, page: Page) -> None:
    texts = [
        "",
        "Hi",
        "a" * 160,
        "a" * 161,
        "é" * 80,
        "é" * 81,
        "a" * 100 + " " + "b" * 100 + " " + "c" * 100,  # word breaks make it three parts
        "a" * 15 + "👨‍👩‍👧‍👦" * 12,  # whole graphemes make it three parts
        "e\u0301" * 60,
        "Line one\nline two " * 12,
        "a " + "b" * 157 + "\U0001f600" + "c",  # the word carried over is cut again
        "x" * 160 + "\n",  # a part of only white space is left out
        " \n ",
    ]
    login(page, world.user_a.username, PASSWORD)
    page.goto("/inbox/compose/")
    counter = page.get_by_test_id("counter")

    for text in texts:
        page.fill("#compose-body", text)
        expect(counter).to_have_text(expected(text))
    expect(counter).not_to_have_class(re.compile("warning"))

    page.fill("#compose-body", "word " * 420)
    expect(counter).to_contain_text("2100 characters: over 2048")
    expect(counter).to_have_class(re.compile("warning"))


def test_attachments_and_long_texts_follow_the_chosen_dids_configuration(
    world: World, page: Page
) -> None:
    shared = world.objects_a[SmsConfiguration]
    sms_configuration_update(
        configuration=shared,
        actor=None,
        channel="mms",
        long_message_policy=LongMessagePolicy.MMS,
    )
    make_configuration(
        world.tenant_a, name="Own trunk", trunk=world.objects_a[Trunk], username="own@a.example"
    )
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/inbox/compose/")
    media = page.get_by_test_id("media-fields")
    counter = page.get_by_test_id("counter")
    long_text = "x" * 170

    expect(media).to_be_hidden()
    page.select_option("#compose-from", "+16465550100")
    page.fill("#compose-body", long_text)
    expect(media).to_be_hidden()
    expect(counter).to_have_text("170 bytes · 2 SMS parts")

    page.select_option("#compose-from", "+12125550100")
    expect(media).to_be_visible()
    expect(counter).to_have_text("170 bytes · sent as 1 MMS")
    page.fill("#compose-body", "Menu")
    expect(counter).to_have_text("4 bytes · 1 SMS part")
    media.get_by_text("Or links VoIP.ms can fetch").click()
    media.locator("input[type=url]").first.fill("https://example.com/menu.png")
    expect(counter).to_have_text("4 bytes · sent as 1 MMS")


@pytest.fixture
def big_pool(world: World) -> None:
    """Give tenant A 1,010 numbers on its configured trunk, which sends MMS for long texts."""
    trunk_assignment_save(
        trunk=shared_trunk(),
        tenant=world.tenant_a,
        did_pool=f"{POOLS['a.example']};13125551000-13125551999",
    )
    sms_configuration_update(
        configuration=world.objects_a[SmsConfiguration],
        actor=None,
        channel="mms",
        long_message_policy=LongMessagePolicy.MMS,
    )


def test_an_admin_picks_a_number_beyond_the_first_200_from_the_search_with_the_keyboard(
    world: World, big_pool: None, page: Page, no_tasks: TaskRecorder
) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/inbox/compose/")
    sender = page.get_by_role("combobox", name="From")
    options = page.get_by_role("option")
    media = page.get_by_test_id("media-fields")
    counter = page.get_by_test_id("counter")
    expect(page.locator("select")).to_have_count(0)
    page.fill("#compose-body", "x" * 170)
    expect(counter).to_have_text("170 bytes · 2 SMS parts")
    expect(media).to_be_hidden()

    # The first 200 of the sorted numbers end at +13125551189.
    sender.press_sequentially("555-178")
    expect(options).to_have_count(10)
    expect(options.first).to_have_text("+13125551780")
    expect(options.last).to_have_text("+13125551789")
    expect(page.get_by_test_id("sender-status")).to_have_text("10 numbers match.")
    expect(sender).to_have_attribute("aria-expanded", "true")
    for _ in range(3):
        sender.press("ArrowDown")
    expect(sender).to_have_attribute("aria-activedescendant", "compose-from-list-2")
    expect(options.nth(2)).to_have_attribute("aria-selected", "true")
    sender.press("Enter")

    expect(sender).to_have_value("+13125551782")
    expect(sender).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(sender).to_be_focused()  # Enter picked the number and did not send the form
    expect(counter).to_have_text("170 bytes · sent as 1 MMS")
    expect(media).to_be_visible()
    assert not Message.objects.exists()
    page.fill("#compose-to", "514 555 0123")
    page.fill("#compose-body", "Your table is ready")
    expect(counter).to_have_text("19 bytes · 1 SMS part")
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()

    message = Message.objects.get()
    assert (message.tenant, message.did, message.remote, message.body) == (
        world.tenant_a,
        "+13125551782",
        CONTACT,
        "Your table is ready",
    )
    assert (message.status, message.kind) == (MessageStatus.QUEUED, Kind.SMS)
    expect(page).to_have_url(re.compile(rf"/inbox/c/{message.conversation_id}/$"))
    expect(page.locator(".messagelist")).to_contain_text(f"Message to {CONTACT} queued")
    no_tasks.assert_called_once_with(message.pk)


def test_the_from_search_says_when_nothing_matches_and_takes_a_number_typed_out(
    world: World, big_pool: None, page: Page
) -> None:
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/inbox/compose/")
    sender = page.get_by_role("combobox", name="From")
    status = page.get_by_test_id("sender-status")
    media = page.get_by_test_id("media-fields")

    sender.fill("4444")
    expect(status).to_have_text("None of your numbers contains these digits.")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(sender).to_have_attribute("aria-expanded", "false")

    sender.fill("")
    sender.press("ArrowDown")  # an empty box lists the first numbers
    expect(status).to_have_text("The first 20 matches: type more digits to narrow them.")
    expect(page.get_by_role("option")).to_have_count(20)
    sender.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(media).to_be_hidden()

    sender.fill("(312) 555-1999")
    expect(status).to_have_text("1 number matches.")
    expect(media).to_be_visible()  # the whole number is taken without a pick
    page.fill("#compose-body", "x" * 170)
    expect(page.get_by_test_id("counter")).to_have_text("170 bytes · sent as 1 MMS")
    sender.press("End")
    sender.press("Backspace")
    expect(sender).to_have_value("(312) 555-199")
    expect(media).to_be_hidden()
    expect(page.get_by_test_id("counter")).to_have_text("170 bytes · 2 SMS parts")


def test_a_saved_reply_chosen_in_the_compose_box_fills_the_text(
    world: World, caller_id: str, page: Page, no_tasks: TaskRecorder
) -> None:
    from sms.templates_service import reply_template_save

    reply_template_save(
        tenant=world.tenant_a, actor=None, name="Opening hours", body="We are open 9 to 5 today."
    )
    login(page, world.user_a.username, PASSWORD)

    page.goto("/inbox/compose/")
    page.get_by_test_id("reply-templates").select_option(label="Opening hours")

    expect(page.locator("#compose-body")).to_have_value("We are open 9 to 5 today.")
    expect(page.get_by_test_id("counter")).to_have_text(expected("We are open 9 to 5 today."))
