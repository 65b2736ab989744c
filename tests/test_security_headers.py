"""Security headers: a strict Content-Security-Policy on pages, the usual headers everywhere,
and templates that keep no inline script, handler or style the policy would refuse."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tenants.models import User
from tenants.services import api_token_create
from tests.factories import World

ClientFor = Callable[[User | None], Client]

REPO = Path(__file__).resolve().parent.parent
APPS = ("portal", "tenants", "trunks", "sms", "core")
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def _policy(response: object) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(
        ([*part.strip().split(" ", 1), ""])[:2] for part in header.split(";") if part.strip()
    )


def _assert_common_headers(response: object) -> None:
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    features = response["Permissions-Policy"].split(", ")
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in features


def _assert_strict_page(response: object) -> None:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    _assert_common_headers(response)
    policy = _policy(response)
    for directive, sources in STRICT.items():
        assert policy[directive] == sources, (directive, policy)
    assert "unsafe" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_system_admin_page_sends_a_strict_policy_and_the_security_headers(
    world: World, client_for: ClientFor
) -> None:
    _assert_strict_page(client_for(world.sysadmin).get("/admin/tenants/tenant/"))


@pytest.mark.django_db
def test_tenant_admin_and_portal_pages_send_a_strict_policy(
    world: World, client_for: ClientFor
) -> None:
    _assert_strict_page(client_for(world.admin_a).get("/tenant/sms/smsconfiguration/"))
    _assert_strict_page(client_for(world.user_a).get("/inbox/"))
    _assert_strict_page(client_for(world.user_a).get("/account/api-tokens/"))


@pytest.mark.django_db
def test_sign_in_page_sends_a_strict_policy(client_for: ClientFor) -> None:
    _assert_strict_page(client_for(None).get("/login/"))


@pytest.mark.django_db
def test_api_response_sends_the_security_headers(world: World) -> None:
    _, key = api_token_create(user=world.admin_a, name="headers")
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")

    response = client.get("/api/v1/trunks/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    _assert_common_headers(response)
    assert _policy(response)["default-src"] == "'self'"


@pytest.mark.django_db
def test_browsable_api_may_use_inline_styles_but_never_inline_scripts(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).get("/api/v1/trunks/", HTTP_ACCEPT="text/html")

    assert response["Content-Type"].startswith("text/html")
    policy = _policy(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self' 'unsafe-inline'"


@pytest.mark.django_db
def test_api_docs_page_loads_its_start_up_script_as_a_file(client_for: ClientFor) -> None:
    client = client_for(None)
    page = client.get("/api/docs/")

    _assert_strict_page(page)
    html = page.content.decode()
    assert not re.search(r"<script>|<style>", html)
    script_url = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_favicon_is_served_for_browsers_that_ask_for_favicon_ico(client_for: ClientFor) -> None:
    response = client_for(None).get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"].endswith("portal/favicon.svg")
    assert (REPO / "static" / "portal" / "favicon.svg").read_text().startswith("<svg")


def _template_files() -> list[Path]:
    folders = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    folders += [
        folder for app in APPS for folder in (REPO / app).rglob("templates") if folder.is_dir()
    ]
    return sorted({path for folder in folders for path in folder.rglob("*.html")})


def test_templates_hold_no_inline_script_handler_or_style() -> None:
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>"
        r"|\son[a-z]+\s*="
        r"|javascript:"
        r"|<style\b"
        r"|\sstyle\s*=",
        re.IGNORECASE,
    )
    templates = _template_files()
    assert any(path.name == "phone.html" for path in templates)
    found = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in templates
        for match in inline.finditer(path.read_text())
    ]
    assert found == []


def test_html_built_in_python_holds_no_inline_handler_or_style() -> None:
    inline = re.compile(r"\son[a-z]+\s*=|javascript:|\sstyle\s*=|<script|<style", re.IGNORECASE)
    modules = [
        path
        for app in APPS
        for path in (REPO / app).rglob("*.py")
        if "format_html" in path.read_text() or "mark_safe" in path.read_text()
    ]
    assert REPO / "core" / "charts.py" in modules
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in modules
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "<" in line and inline.search(line)
    ]
    assert found == []
