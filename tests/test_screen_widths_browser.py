"""Every page fits the screen: at 1280 by 800 pixels no page, and no list or table inside it,
scrolls sideways, with long data (100-character names, 1,600-character messages, long URLs, many
routes and extensions); the inbox pages fit a 390-pixel phone too.

The pages come from the admin sites' registries and the URL resolver (see tests/screens.py and
tests/test_every_screen_browser.py), so a page added later is measured without editing this
file.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import URLPattern, reverse
from playwright.sync_api import Page

from sms.models import Conversation
from tests import screens
from tests.browser import browser, page  # noqa: F401
from tests.factories import World, make_long_objects
from tests.test_every_screen import ROLES
from tests.test_every_screen_browser import _sign_in, pages_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 800}

# Return what scrolls sideways on the page: the page itself, any element that scrolls
# horizontally, and any table wider than the box it sits in.
MEASURE = """
() => {
  const name = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    if (el.classList.length) text += "." + [...el.classList].join(".");
    const parent = el.parentElement;
    if (parent && parent !== document.body) text = name(parent) + " > " + text;
    return text.length > 160 ? "…" + text.slice(-160) : text;
  };
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    found.push(`the page is ${root.scrollWidth}px wide`);
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (!el.getClientRects().length) continue;  // not shown
    const overflow = getComputedStyle(el).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name(el)} scrolls: ${el.scrollWidth}px in ${el.clientWidth}px`);
    }
    const box = el.parentElement;
    if (el.tagName === "TABLE" && box && el.offsetWidth > box.clientWidth + 1) {
      found.push(`${name(el)} is ${el.offsetWidth}px wide in ${box.clientWidth}px`);
    }
  }
  return found;
}
"""


@pytest.fixture
def world(world: World) -> World:
    screens.prepare_world(world)
    make_long_objects(world)
    return world


def too_wide(tab: Page, urls: list[str]) -> list[str]:
    """Open each tab; return what scrolls sideways on each."""
    problems: list[str] = []
    for url in dict.fromkeys(urls):
        head = tab.request.get(url, max_redirects=0)
        if head.status == 405 or not head.headers.get("content-type", "").startswith("text/html"):
            continue  # a POST-only view or a download: no tab to measure
        response = tab.goto(url, wait_until="load")
        assert response is not None
        assert response.status < 400, f"{url} answered {response.status}"
        problems += [f"{url}: {problem}" for problem in tab.evaluate(MEASURE)]
    return problems


def account_pages() -> list[str]:
    return [reverse("api_tokens"), reverse("account_security")]


def site_pages(role: str, user: Any, tenant: Any) -> list[str]:
    """Return the pages without parameters that each site and its model admins add (usage,
    dashboards, tools), beyond the lists, forms and object pages of `pages_for`."""
    request = screens.permission_request(user, tenant)
    urls = []
    for name, site in screens.SITES.items():
        if role == "system administrator managing Tenant A" and name == "admin":
            continue
        if not site.has_permission(request):
            continue
        for pattern in site.get_urls():
            named = isinstance(pattern, URLPattern) and pattern.name
            if named and not pattern.pattern.regex.groupindex and pattern.name not in SKIPPED:
                urls.append(reverse(f"{site.name}:{pattern.name}"))
        for model_admin in site._registry.values():
            if model_admin.has_view_or_change_permission(request):
                views = screens.custom_views(site, model_admin)
                urls += [view.url(None) for view in views if not view.params]
    return urls


# Not pages: signing in and out, and the JSON search behind relation fields.
SKIPPED = {"logout", "login", "autocomplete"}


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_every_page_fits_1280_pixels_with_long_data(
    page: Page,  # noqa: F811
    world: World,
    role: str,
    live_server: Any,
) -> None:
    page.set_viewport_size(DESKTOP)
    user, tenant = _sign_in(page, world, role, "en")
    urls = pages_for(world, role, user, tenant) + site_pages(role, user, tenant) + account_pages()
    problems = too_wide(page, urls)
    assert not problems, "\n".join(problems)


def test_the_inbox_fits_a_phone(
    page: Page,  # noqa: F811
    world: World,
    live_server: Any,
) -> None:
    page.set_viewport_size(PHONE)
    _sign_in(page, world, "extension user", "en")
    conversation = world.objects_a[Conversation]
    assert max(len(body) for body in conversation.messages.values_list("body", flat=True)) == 1600
    urls = [
        reverse("inbox"),
        reverse("inbox_conversation", args=[conversation.pk]),
        reverse("inbox_compose"),
        *account_pages(),
    ]
    problems = too_wide(page, urls)
    assert not problems, "\n".join(problems)
