"""Every add form of both admin sites, refused for one bad field, shows again all that was typed
(inline rows included) with the error next to that field; secrets are write-only.

Generated from the admin registries, like the every-screen test: a model admin added later is
covered without editing this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django import forms
from django.contrib.admin import AdminSite, ModelAdmin
from django.urls import reverse

from sms.models import SmsConfiguration
from tests import screens
from tests.factories import POOLS, World, shared_trunk
from tests.sms.helpers import API_PASSWORD, make_configuration
from trunks.models import Trunk

pytestmark = pytest.mark.usefixtures("voipms_dids")

# Django's own account-password fields never echo what was typed (its convention for sign-in
# passwords); every other field, secrets of integrations included, must come back.
NOT_ECHOED = {"password1", "password2"}


@pytest.fixture
def world(world: World) -> World:
    return screens.prepare_world(world)


def _add_forms() -> list[tuple[str, type]]:
    return [
        (site_name, model) for site_name, site in screens.SITES.items() for model in site._registry
    ]


def _spoil(field: forms.Field) -> str | None:
    """Return a value the field refuses, or None when it accepts anything typed."""
    if isinstance(field, forms.ModelChoiceField | forms.ModelMultipleChoiceField):
        return None
    if isinstance(field, forms.IntegerField | forms.DecimalField | forms.FloatField):
        return "twelve"
    if isinstance(field, forms.EmailField):
        return "not an address"
    if isinstance(field, forms.URLField):
        return "not a url"
    if isinstance(field, forms.DateField | forms.TimeField | forms.DateTimeField):
        return "bogus time"
    if isinstance(field, forms.ChoiceField | forms.BooleanField):
        return None
    if isinstance(field, forms.CharField) and field.max_length:
        return "x" * (field.max_length + 1)
    return None


def _bad_field(form: forms.BaseForm) -> tuple[str, str] | None:
    # The last field that can be made invalid: a field early in the form (the name) is the one
    # most often checked; the others are where typed input was lost.
    for name in reversed(list(form.fields)):
        field = form.fields[name]
        if field.disabled or isinstance(field.widget, forms.HiddenInput):
            continue
        value = _spoil(field)
        if value is not None:
            return name, value
    return None


def _role(site_name: str, world: World, client_for: Any) -> tuple[Any, Any, Any]:
    if site_name == "admin":
        return client_for(world.sysadmin), world.sysadmin, None
    return client_for(world.admin_a), world.admin_a, world.tenant_a


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["form", "inline"])
@pytest.mark.parametrize(
    ("site_name", "model"), _add_forms(), ids=lambda v: getattr(v, "__name__", v)
)
def test_a_refused_add_form_shows_everything_typed_and_the_error_at_its_field(
    site_name: str, model: type, where: str, world: World, client_for: Any
) -> None:
    site: AdminSite = screens.SITES[site_name]
    model_admin: ModelAdmin = site._registry[model]
    client, user, tenant = _role(site_name, world, client_for)
    if not model_admin.has_add_permission(screens.permission_request(user, tenant)):
        return
    url = reverse(screens.url_name(site, model, "add"))
    page = client.get(url)
    assert page.status_code == 200
    hints = screens.Hints(did=POOLS[world.tenant_a.slug].split("-")[0], trunk=shared_trunk().pk)
    form = page.context["adminform"].form
    values = screens.fill(
        screens.read_form(page.content.decode()).values, form, hints, inline=False
    )
    values, rows = screens.blank_inline_rows(page.context, values)
    for row in rows:
        values = screens.fill(values, row, hints, inline=True)
    # Every free-text field gets a distinctive value, so that a lost one cannot go unnoticed.
    texts = {
        f.add_prefix(name)
        for f in [form, *rows]
        for name, field in f.fields.items()
        if type(field) is forms.CharField
        and not field.disabled
        and not isinstance(field.widget, forms.HiddenInput | forms.Textarea)
        and (field.max_length or 99) >= 12
        and name not in hints.known
    }
    values = [
        (n, f"Typed {i} {n[-6:]}"[:99] if n in texts and v else v)
        for i, (n, v) in enumerate(values)
    ]
    if where == "inline" and not rows:
        return
    target = form if where == "form" else rows[0]
    bad = _bad_field(target)
    if bad is None:
        pytest.fail(f"{model.__name__}: no field of the {where} can be made invalid")
    bad_name, bad_value = bad
    bad_key = target.add_prefix(bad_name)
    values = [(n, v) for n, v in values if n != bad_key] + [(bad_key, bad_value)]

    response = client.post(url, {**screens.as_post(values), "_save": "Save"})

    assert response.status_code == 200, f"{model.__name__} saved {values}"
    html = response.content.decode()
    if where == "form":
        shown = response.context["adminform"].form
        # The error is rendered in the field's own row, before the next row begins.
        pattern = (
            rf'<div class="form-row[^"]*field-{bad_name}\b.*?(?=<div class="form-row|</fieldset>)'
        )
    else:
        formset = response.context["inline_admin_formsets"][0].formset
        shown = next(f for f in formset.forms if f.prefix == target.prefix)
        # A tabular inline shows a row's field errors in the cell of that field.
        pattern = rf'<td class="field-{bad_name}\b[^"]*">.*?</td>'
    assert bad_name in shown.errors, screens.form_errors(response.context)
    cells = [m.group(0) for m in re.finditer(pattern, html, re.S)]
    assert any("errorlist" in cell for cell in cells), f"no error next to {bad_key}"
    again = screens.as_post(screens.read_form(html).values)
    sent = screens.as_post(values)
    lost = {
        name: (typed, again.get(name))
        for name, typed in sent.items()
        if name not in NOT_ECHOED
        and name != "csrfmiddlewaretoken"
        and [v for v in typed if v] != [v for v in again.get(name, []) if v]
    }
    assert lost == {}, f"{model.__name__}: typed values not shown again: {lost}"


# --- secrets ---------------------------------------------------------------------------------


SIP_PASSWORD = "Sip-Typed-Secret-8812"


def _trunk_values(client: Any, url: str) -> list[tuple[str, str]]:
    return screens.read_form(client.get(url).content.decode()).values


@pytest.mark.django_db
def test_a_refused_trunk_form_keeps_the_sip_password_typed_when_an_assignment_is_wrong(
    world: World, client_for: Any
) -> None:
    client = client_for(world.sysadmin)
    url = reverse("admin:trunks_trunk_add")
    values = dict(screens.as_post(_trunk_values(client, url)))
    values.update(
        {
            "name": ["Typed trunk"],
            "host": ["montreal1.voip.ms"],
            "sip_password": [SIP_PASSWORD],
            "assignments-0-tenant": [str(world.tenant_a.pk)],
            "assignments-0-did_pool": ["+not a pool"],
            "_save": ["Save"],
        }
    )
    response = client.post(url, values)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'value="{SIP_PASSWORD}"' in html
    assert "+not a pool" in html
    assert not Trunk.objects.filter(name="Typed trunk").exists()


@pytest.mark.django_db
def test_a_configuration_left_blank_keeps_the_stored_password_and_never_shows_it(
    world: World, client_for: Any
) -> None:
    configuration = make_configuration(world.tenant_a)
    client = client_for(world.admin_a)
    url = reverse("tenant:sms_smsconfiguration_change", args=[configuration.pk])
    page = client.get(url)
    html = page.content.decode()
    assert API_PASSWORD not in html
    assert "Leave blank to keep the stored password" in html
    assert 'data-secret-stored="true"' in html
    values = screens.as_post(screens.read_form(html).values)
    assert values["api_password"] == [""]

    # A refusal elsewhere: the blank password stays blank, the stored one is never shown.
    refused = client.post(url, {**values, "daily_send_limit": ["0"], "_save": ["Save"]})
    assert refused.status_code == 200
    assert API_PASSWORD not in refused.content.decode()

    saved = client.post(url, {**values, "name": ["Renamed"], "_save": ["Save"]})
    assert saved.status_code == 302
    configuration.refresh_from_db()
    assert configuration.name == "Renamed"
    assert configuration.api_password == API_PASSWORD


@pytest.mark.django_db
def test_a_new_password_typed_on_a_refused_configuration_form_comes_back_and_then_saves(
    world: World, client_for: Any
) -> None:
    configuration = make_configuration(world.tenant_a)
    client = client_for(world.admin_a)
    url = reverse("tenant:sms_smsconfiguration_change", args=[configuration.pk])
    values = screens.as_post(screens.read_form(client.get(url).content.decode()).values)
    values["api_password"] = ["Brand-New-Secret-3390"]
    refused = client.post(url, {**values, "username": ["not an address"], "_save": ["Save"]})
    assert refused.status_code == 200
    again = screens.as_post(screens.read_form(refused.content.decode()).values)
    assert again["api_password"] == ["Brand-New-Secret-3390"]
    assert API_PASSWORD not in refused.content.decode()
    saved = client.post(url, {**again, "username": ["owner@example.com"], "_save": ["Save"]})
    assert saved.status_code == 302
    assert SmsConfiguration.objects.get(pk=configuration.pk).api_password == (
        "Brand-New-Secret-3390"
    )


# --- help texts say what validation does ---------------------------------------------------------


@pytest.mark.django_db
def test_the_outbound_rule_conditions_help_says_what_validation_refuses(
    world: World, client_for: Any
) -> None:
    client = client_for(world.admin_a)
    url = reverse("tenant:sms_outboundrule_add")
    page = client.get(url)
    form = page.context["adminform"].form
    for name in ("prefixes", "lengths", "from_extensions"):
        assert "at least one" in str(form.fields[name].help_text)
        assert "empty: any." not in str(form.fields[name].help_text)
    values = screens.as_post(screens.read_form(page.content.decode()).values)
    values.update({"name": ["No condition"], "prefixes": [""], "lengths": [""]})
    values["from_extensions"] = [""]
    refused = client.post(url, {**values, "_save": ["Save"]})
    assert refused.status_code == 200
    assert "at least one" in refused.content.decode()
    assert 'value="No condition"' in refused.content.decode()
