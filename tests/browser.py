"""Playwright fixtures for browser tests: Chromium, a fresh page per test, and signing in.

Import the fixtures explicitly in a browser test module:

    from tests.browser import browser, login, page  # noqa: F401

Playwright's sync API keeps an asyncio loop marked as running in the main thread for as long as
it lives, and Django then refuses ORM calls from that thread (SynchronousOnlyOperation). The
browser is therefore module-scoped: Django's async-safety check is switched off only while a
browser module runs, and the loop is gone again before the next module's tests.

A test fails when a page it visited broke the Content-Security-Policy, logged a console error
(a failed request included, favicon too) or threw an uncaught exception. A test that provokes
such an error on purpose names it with `@pytest.mark.console_errors(r"regex", ...)`. A test can
run the browser in another time zone with `@pytest.mark.browser_timezone("Asia/Tokyo")`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# How long a page may take to answer one action before the test fails.
ACTION_TIMEOUT_MS = 15_000
# Reports every Content-Security-Policy violation of every page and frame to the test.
WATCH_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline code"} on ` +
      `${event.documentURI} (${event.sourceFile || "page"}:${event.lineNumber})`
  );
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Return a headless Chromium shared by the tests of one module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                yield chromium
            finally:
                chromium.close()


def _screenshot_path(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return Path(settings.VAR_DIR) / "screenshots" / f"{name}.png"


@pytest.fixture
def page(browser: Browser, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Return a page in a fresh browser context pointed at the live server.

    When the test fails, a screenshot of the page is saved to var/test/screenshots/<test>.png.
    """
    # A test that must not depend on the browser's clock names a zone for it, e.g.
    # @pytest.mark.browser_timezone("Asia/Tokyo").
    zone = next((m.args[0] for m in request.node.iter_markers("browser_timezone")), None)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
        **({"timezone_id": zone} if zone else {}),
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    problems = watch_for_page_errors(context)
    new_page = context.new_page()
    failed_before = request.session.testsfailed
    try:
        yield new_page
    finally:
        # The call phase has been reported by now: a higher count means this test failed.
        if request.session.testsfailed > failed_before:
            path = _screenshot_path(request)
            path.parent.mkdir(parents=True, exist_ok=True)
            new_page.screenshot(path=str(path), full_page=True)
        context.close()
    expected = [
        re.compile(pattern)
        for marker in request.node.iter_markers("console_errors")
        for pattern in marker.args
    ]
    unexpected = [p for p in problems if not any(e.search(p) for e in expected)]
    if unexpected:
        pytest.fail("The pages reported errors:\n" + "\n".join(unexpected), pytrace=False)


def watch_for_page_errors(context: BrowserContext) -> list[str]:
    """Return a list that fills with the CSP violations, console and page errors of the context."""
    problems: list[str] = []
    context.expose_function("__reportCspViolation", lambda text: problems.append(f"CSP: {text}"))
    context.add_init_script(WATCH_CSP_VIOLATIONS)
    context.on("console", lambda message: _console_error(message, problems))
    context.on("weberror", lambda error: problems.append(f"page error: {error.error}"))
    return problems


def _console_error(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        where = message.location.get("url", "")
        problems.append(f"console: {message.text} ({where})")


def login(page: Page, username: str, password: str) -> None:
    """Sign in through the portal's /login/ form and wait for the next page."""
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click(".login-box form button[type=submit]")
