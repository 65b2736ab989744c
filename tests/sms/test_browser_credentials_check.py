"""Wrong VoIP.ms credentials, saved in Chromium, turn the details page's banner red."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from sms.models import SmsConfiguration
from sms.tasks import check_credentials
from tests.browser import login
from tests.factories import World
from trunks.voipms.sandbox.services import sandbox_account_ensure

PASSWORD = "correct horse 42"
GOOD_API_PASSWORD = "Sandbox-Account-API-Secret-7731"
TYPED_API_PASSWORD = "Mistyped-API-Secret-0042"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class BackgroundChecks:
    """Stand in for the broker: run each published credentials check in a thread when released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], countdown: float | None
    ) -> None:
        if name != "sms.check_credentials":
            return
        thread = threading.Thread(target=self._run, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run(self, configuration_id: int) -> None:
        self.release.wait(timeout=60)
        try:
            check_credentials(configuration_id)
        finally:
            connection.close()


@pytest.fixture
def background_checks(
    live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BackgroundChecks]:
    settings.PUBLIC_BASE_URL = live_server.url
    settings.VOIPMS_API_URL = f"{live_server.url}/sandbox/voipms/api/v1/rest.php"
    checks = BackgroundChecks()
    monkeypatch.setattr("core.tasks.publish", checks)
    yield checks
    checks.release.set()
    for thread in checks.threads:
        thread.join(timeout=60)


def test_wrong_credentials_turn_the_details_banner_red_without_a_reload(
    page: Page, world: World, background_checks: BackgroundChecks
) -> None:
    sandbox_account_ensure(username="owner@example.com", api_password=GOOD_API_PASSWORD)
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/sms/smsconfiguration/add/")
    page.fill("#id_name", "Mistyped")
    page.select_option("#id_trunk", label="VoIP.ms San Jose")
    page.fill("#id_username", "owner@example.com")
    page.fill("#id_api_password", TYPED_API_PASSWORD)
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("Saved Mistyped")

    configuration = SmsConfiguration.objects.get(tenant=world.tenant_a, name="Mistyped")
    page.goto(f"/tenant/sms/smsconfiguration/{configuration.pk}/details/")
    banner = page.locator("#credentials-check")
    expect(banner).to_contain_text("Checking the VoIP.ms credentials")
    page.evaluate("window.__notReloaded = true")

    background_checks.release.set()
    expect(banner).to_have_class("credentials-banner credentials-failed", timeout=15_000)
    expect(banner).to_contain_text("VoIP.ms rejected the credentials.")
    expect(banner).to_contain_text("invalid_credentials")
    assert page.evaluate("window.__notReloaded") is True
    assert TYPED_API_PASSWORD not in page.content()
