"""Every list, add and change page, the inbox and the phone simulator, loaded once per role in
Chromium: no console error and no uncaught script error on any of them.

The pages come from the admin sites' registries (see tests/screens.py), so a model admin added
later is loaded without editing this file. The count per role is added to every_screen.json.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import ConsoleMessage, Page, Response

from sms.models import Conversation
from tests import screens
from tests.browser import login
from tests.factories import World
from tests.test_every_screen import LANGUAGES, ROLES, report, role_label

PASSWORD = "correct horse 42"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(world: World) -> World:
    return screens.prepare_world(world)


def _sign_in(page: Page, world: World, role: str, language: str) -> tuple[Any, Any]:
    """Sign in as the role, speaking the language, through the login form; return (user, acting
    tenant)."""
    user = {
        "system administrator": world.sysadmin,
        "system administrator managing Tenant A": world.sysadmin,
        "tenant administrator": world.admin_a,
        "extension user": world.user_a,
    }[role]
    user.language = language
    user.save(update_fields=["language"])
    login(page, user.username, PASSWORD)
    if role == "system administrator managing Tenant A":
        page.goto(reverse("admin:tenants_tenant_changelist"))
        with page.expect_navigation():
            page.locator(f'button.manage-tenant[data-tenant="{world.tenant_a.slug}"]').click()
        return user, world.tenant_a
    return user, (None if user.is_system_admin else world.tenant_a)


def pages_for(world: World, role: str, user: Any, tenant: Any) -> list[str]:
    """Return the pages the role may open: each site's home, lists, add and change pages,
    the inbox pages and the phone simulator."""
    request = screens.permission_request(user, tenant)
    urls: list[str] = []
    for name, site in screens.SITES.items():
        if role == "system administrator managing Tenant A" and name == "admin":
            continue  # the system administrator's pages
        if not site.has_permission(request):
            continue
        urls.append(reverse(f"{site.name}:index"))
        for model, model_admin in site._registry.items():
            if not model_admin.has_view_or_change_permission(request):
                continue
            urls.append(reverse(screens.url_name(site, model, "changelist")))
            if model_admin.has_add_permission(request):
                urls.append(reverse(screens.url_name(site, model, "add")))
            own = screens.own_object(site, model, world)
            if own is not None:
                urls.append(reverse(screens.url_name(site, model, "change"), args=[own.pk]))
                # Its own pages (a configuration's details…).
                urls += [
                    view.url(own.pk)
                    for view in screens.custom_views(site, model_admin)
                    if view.params
                ]
    if tenant is not None:
        conversation = world.objects_a[Conversation]
        urls += [reverse("inbox"), reverse("inbox_compose")]
        urls.append(reverse("inbox_conversation", args=[conversation.pk]))
    with contextlib.suppress(NoReverseMatch):  # the sandbox may not be installed
        urls.append(reverse("sandbox_phone"))
    return urls


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", ROLES)
def test_every_page_loads_without_a_browser_error(
    page: Page, world: World, role: str, language: str, live_server: Any
) -> None:
    user, tenant = _sign_in(page, world, role, language)
    errors: list[str] = []
    current = {"url": ""}

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{current['url']}: console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"{current['url']}: script: {error}"))

    # Every request a page makes (styles, scripts, images, the icon) must succeed too.
    def on_response(response: Response) -> None:
        if response.status >= 400 and not response.request.is_navigation_request():
            errors.append(f"{current['url']}: {response.status} for {response.url}")

    page.on("response", on_response)
    urls = pages_for(world, role, user, tenant)
    visited = 0
    for url in urls:
        current["url"] = url
        if page.request.get(url, max_redirects=0).status == 405:
            continue  # a POST-only view: a browser never opens it
        response = page.goto(url, wait_until="load")
        visited += 1
        assert response is not None
        if response.status >= 400:
            errors.append(f"{url}: answered {response.status}")
        elif (
            response.headers.get("content-type", "").startswith("text/html")
            and page.evaluate("document.documentElement.lang") != language
        ):
            errors.append(f"{url}: the page is not in the user's language {language}")
    report(f"{role_label(role, language)} (Chromium)", visited)
    assert not errors, "\n".join(errors)
