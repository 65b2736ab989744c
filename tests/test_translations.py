"""The portal speaks English and French (Canada): every message is translated, the compiled
catalogues match their sources, and each user gets his language (or his browser's)."""

from __future__ import annotations

import gettext
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tenants.models import User
from tenants.services import api_token_create

ROOT = Path(settings.BASE_DIR)
CATALOGUES = ROOT / "locale" / "fr_CA" / "LC_MESSAGES"
DOMAINS = ("django", "djangojs")
# Not part of the portal's source: the virtualenv, run-time files, the version control.
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", "var", ".git", "__pycache__", "staticfiles", "media", "*.mo", ".*_cache"
)


def _entries(po_text: str) -> list[str]:
    """Return the msgid of each entry of a .po file (the header excluded)."""
    ids: list[str] = []
    current: list[str] | None = None
    for line in po_text.splitlines():
        if line.startswith("msgid "):
            current = [line[len("msgid ") :].strip().strip('"')]
        elif current is not None and line.startswith('"'):
            current.append(line.strip('"'))
        else:
            if current is not None and "".join(current):
                ids.append("".join(current))
            current = None
    return ids


def test_every_message_of_the_portal_has_a_french_translation(tmp_path: Path) -> None:
    # Extract the messages from a copy of the sources with the script developers run, so the
    # committed catalogues are not touched; new strings then show up untranslated.
    copy = tmp_path / "portal"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCE)
    subprocess.run(
        ["bash", "bin/messages"],
        cwd=copy,
        env={**os.environ, "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    missing: list[str] = []
    for domain in DOMAINS:
        po = copy / "locale" / "fr_CA" / "LC_MESSAGES" / f"{domain}.po"
        for option, problem in (("--untranslated", "untranslated"), ("--only-fuzzy", "fuzzy")):
            found = subprocess.run(
                ["msgattrib", option, "--no-obsolete", str(po)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            missing += [f"{domain}.po: {problem}: {text}" for text in _entries(found)]
    assert not missing, (
        "Translate these messages in locale/fr_CA/LC_MESSAGES (run bin/messages first):\n"
        + "\n".join(missing)
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_compiled_catalogues_match_their_sources(domain: str, tmp_path: Path) -> None:
    po = CATALOGUES / f"{domain}.po"
    compiled = tmp_path / f"{domain}.mo"
    # --check also refuses a translation whose placeholders differ from the English.
    subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(po)], check=True)
    with compiled.open("rb") as fresh, (CATALOGUES / f"{domain}.mo").open("rb") as committed:
        expected = gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
        actual = gettext.GNUTranslations(committed)._catalog  # type: ignore[attr-defined]
    assert actual == expected, "The .mo is out of date: run bin/messages and commit it"


def _home(client: Any, **headers: str) -> Any:
    response = client.get(reverse("tenant:index"), headers=headers)
    assert response.status_code == 200
    return response


@pytest.mark.django_db
def test_a_user_who_chose_french_gets_the_portal_in_french(admin_a: User, client_for: Any) -> None:
    admin_a.language = "fr-ca"
    admin_a.save(update_fields=["language"])
    response = _home(client_for(admin_a), accept_language="en")
    html = response.content.decode()
    assert '<html lang="fr-ca"' in html
    assert response["Content-Language"] == "fr-ca"
    assert "Déconnexion" in html and "Jetons d'API" in html
    assert "Log out" not in html


@pytest.mark.django_db
def test_a_user_without_a_language_gets_his_browsers(admin_a: User, client_for: Any) -> None:
    assert admin_a.language == ""
    client = client_for(admin_a)
    french = _home(client, accept_language="fr-CA,fr;q=0.9,en;q=0.5")
    assert response_language(french) == "fr-ca" and "Jetons d'API" in french.content.decode()
    english = _home(client, accept_language="en-US,en;q=0.9")
    assert response_language(english) == "en" and "API tokens" in english.content.decode()


@pytest.mark.django_db
def test_a_user_who_chose_english_gets_english_whatever_his_browser(
    admin_a: User, client_for: Any
) -> None:
    admin_a.language = "en"
    admin_a.save(update_fields=["language"])
    response = _home(client_for(admin_a), accept_language="fr-CA")
    assert response_language(response) == "en"
    html = response.content.decode()
    assert "API tokens" in html and "Jetons d'API" not in html


@pytest.mark.django_db
def test_the_javascript_catalogue_is_served_in_the_users_language(
    admin_a: User, client_for: Any
) -> None:
    admin_a.language = "fr-ca"
    admin_a.save(update_fields=["language"])
    response = client_for(admin_a).get(reverse("javascript-catalog"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    # The catalogue is JSON inside the script: non-ASCII letters are escaped.
    assert json.dumps({"Copied.": "Copié."})[1:-1] in response.content.decode()


def test_api_error_codes_stay_english_while_messages_are_french(client: Any) -> None:
    response = client.get("/api/v1/messages/", headers={"accept-language": "fr-CA"})
    assert response.status_code in (401, 403)
    body = response.json()
    assert body["code"] in {"not_authenticated", "authentication_failed"}
    assert "authentification" in str(body).lower()


def response_language(response: Any) -> str:
    """Return the language the page says it is in (<html lang>) after checking the header."""
    html = response.content.decode()
    lang = html.split('<html lang="', 1)[1].split('"', 1)[0]
    assert response["Content-Language"] == lang
    return lang


@pytest.mark.django_db
def test_an_api_token_answers_in_its_users_language_with_english_codes(admin_a: User) -> None:
    admin_a.language = "fr-ca"
    admin_a.save(update_fields=["language"])
    _, key = api_token_create(user=admin_a, name="script")
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post(
        "/api/v1/api-tokens/",
        {"name": "x" * 101},
        content_type="application/json",
        headers={"accept-language": "en"},
    )
    assert response.status_code == 400
    assert response["Content-Language"] == "fr-ca"
    body = response.json()
    assert body["code"] == "invalid"
    assert "caractères" in str(body["errors"]["name"])
