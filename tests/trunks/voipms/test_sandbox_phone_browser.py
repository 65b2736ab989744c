"""The phone simulator clicked through in Chromium: text a DID and watch the reply arrive."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenants.models import Role
from tenants.services import user_create
from tests.browser import browser, login, page  # noqa: F401
from trunks.voipms.sandbox.models import MessageType, SandboxMessage
from trunks.voipms.sandbox.services import sandbox_account_ensure, sandbox_message_send

PASSWORD = "correct horse 42"
DID = "8455577768"
HANDSET = "2125550143"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_texts_a_did_and_sees_the_reply_arrive(page: Page, settings: Any) -> None:  # noqa: F811
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user_create(username="root", password=PASSWORD, role=Role.SYSTEM_ADMIN)
    account = sandbox_account_ensure(
        username="owner@example.com", api_password="secret", dids=[DID, "8455577769"]
    )
    login(page, "root", PASSWORD)
    page.goto("/sandbox/voipms/phone/")
    expect(page.locator("#sandbox-did")).to_have_value(DID)
    expect(page.locator("#sandbox-handset")).to_have_value(HANDSET)
    page.fill("#sandbox-text", "Table for two at 7?")
    with page.expect_navigation():
        page.click(".sandbox-phone button[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("SMS 100000 recorded")
    expect(page.locator(".bubble.handset")).to_contain_text("Table for two at 7?")
    # Shown by the page's script in the page's zone (a system admin's own: UTC), not the browser's.
    expect(page.locator(".bubble.handset .meta")).to_have_text(
        re.compile(r"^\w+\.? \d+, \d{4}, .+ UTC · SMS 100000 · ")
    )
    assert SandboxMessage.objects.get().type == MessageType.RECEIVED
    sandbox_message_send(
        account=account, kind="sms", did=DID, contact=HANDSET, message="Yes, see you then!"
    )
    # The page polls the thread every 3 s; the reply shows up without a reload.
    expect(page.locator(".bubble.portal")).to_contain_text("Yes, see you then!", timeout=8000)
    expect(page.locator(".bubble")).to_have_count(2)
    page.select_option("#sandbox-did", "8455577769")
    expect(page.locator("#sandbox-screen")).to_contain_text("No messages yet")
