"""Contacts CSV import clicked through in Chromium: upload, preview, import, see the names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from sms.contacts import contact_save
from sms.models import Contact
from tests.browser import browser, login, page  # noqa: F401
from tests.factories import World

PASSWORD = "correct horse 42"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_tenant_admin_previews_and_imports_a_contacts_file(
    page: Page,  # noqa: F811
    world: World,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    contact_save(tenant=world.tenant_a, actor=None, name="Dana O.", number="3125550142")
    contact_save(tenant=world.tenant_b, actor=None, name="Not yours", number="3125550143")
    file = tmp_path / "contacts.csv"
    file.write_text(
        "name,number,notes\n"
        "Dana Ortiz,(312) 555-0142,Plumber\n"
        "Lee Park,212.555.0188,\n"
        "A very long name that the table must cut rather than widen the page " * 1 + ",call me,\n"
    )
    login(page, world.admin_a.username, PASSWORD)
    page.goto("/tenant/sms/contact/")
    page.get_by_test_id("import-csv").click()
    page.set_input_files("#id_file", str(file))
    with page.expect_navigation():
        page.get_by_test_id("preview-import").click()
    expect(page.get_by_role("heading", name="Preview: nothing is saved yet")).to_be_visible()
    expect(page.get_by_test_id("count-created")).to_have_text("1 contact to create")
    expect(page.get_by_test_id("count-updated")).to_have_text("1 contact to update")
    expect(page.get_by_test_id("count-rejected")).to_have_text("1 row rejected")
    expect(page.locator("tr[data-line='4']")).to_contain_text(
        "“call me” is not a US or Canadian number or a short code."
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert Contact.objects.for_tenant(world.tenant_a).count() == 1

    with page.expect_navigation():
        page.get_by_test_id("confirm-import").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "1 created, 1 updated, 0 unchanged, 1 rejected"
    )
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    page.get_by_role("link", name="Back to the contacts").click()
    expect(page.locator("#result_list")).to_contain_text("Dana Ortiz")
    expect(page.locator("#result_list")).to_contain_text("Lee Park")
    expect(page.locator("#result_list")).not_to_contain_text("Not yours")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    exported = Path(download.value.path()).read_text()
    assert exported.splitlines() == [
        "name,number,notes",
        "Dana Ortiz,+13125550142,Plumber",
        "Lee Park,+12125550188,",
    ]
