"""What the every-screen tests share: the screens of each admin site, HTML form reading and
generated form values.

Everything here is derived from the admin sites' registries, each model admin's `get_urls()`
and the URL resolver, so a model or view added later is visited without editing the tests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, time
from html.parser import HTMLParser
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.db import models
from django.http import HttpRequest
from django.test import RequestFactory
from django.urls import URLPattern, reverse

from portal.admin_sites import tenant_site
from tenants.models import RingGroup, Tenant, User
from tenants.services_groups import ring_group_member_save
from tests.factories import World, make_messaging_objects, make_system_objects, shared_trunk
from trunks.models import Trunk

SITES: dict[str, AdminSite] = {"admin": admin.site, "tenant": tenant_site}
# The views every ModelAdmin has; anything else its get_urls() names is a custom view.
STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")


def prepare_world(world: World) -> World:
    """Give both tenants one object of every model, and each extension user a conversation."""
    world.objects_a.update(make_messaging_objects(world.tenant_a, world.objects_a))
    world.objects_b.update(make_messaging_objects(world.tenant_b, world.objects_b))
    for objects, user in ((world.objects_a, world.user_a), (world.objects_b, world.user_b)):
        # The factory's conversation goes to this ring group: the user may read it.
        ring_group_member_save(group=objects[RingGroup], extension=user.extension)
    world.tenant_a.refresh_from_db()
    world.tenant_b.refresh_from_db()
    make_system_objects(world)
    return world


def own_object(site: AdminSite, model: type[models.Model], world: World) -> Any:
    """Return the object of the model whose pages the roles of Tenant A open."""
    if site is SITES["admin"]:
        known: dict[Any, Any] = {Tenant: world.tenant_a, User: world.admin_a}
        if model is Trunk:
            return shared_trunk()
        if model in known:
            return known[model]
        return model._default_manager.first()
    if model in world.objects_a:
        return world.objects_a[model]
    return model.objects.for_tenant(world.tenant_a).first()


def tenant_zone(tenant: Tenant | None) -> Any:
    """The zone the tenant site shows times in (UTC on the system site)."""
    return tenant.zone if tenant is not None else UTC


def permission_request(user: User, tenant: Tenant | None) -> HttpRequest:
    """Return a request as the tenant middleware would hand it to a model admin."""
    request = RequestFactory().get("/")
    request.user = user
    request.tenant = tenant
    request.session = {}
    return request


def url_name(site: AdminSite, model: type[models.Model], view: str) -> str:
    return f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_{view}"


@dataclass
class CustomView:
    """A view a model admin adds with get_urls(); params are filled with an object's pk."""

    name: str
    params: tuple[str, ...]

    def url(self, pk: Any) -> str:
        return reverse(self.name, kwargs=dict.fromkeys(self.params, pk))


def custom_views(site: AdminSite, model_admin: admin.ModelAdmin) -> list[CustomView]:
    model = model_admin.model
    standard = {url_name(site, model, view).partition(":")[2] for view in STANDARD_VIEWS}
    found = []
    for pattern in model_admin.get_urls():
        if not isinstance(pattern, URLPattern) or not pattern.name or pattern.name in standard:
            continue
        params = tuple(pattern.pattern.regex.groupindex)
        found.append(CustomView(name=f"{site.name}:{pattern.name}", params=params))
    return found


# --- reading a rendered form ------------------------------------------------------------------


class FormReader(HTMLParser):
    """Collect what a browser would submit from the admin's change form (`<form id=..._form>`)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # >0 while inside the form
        self.values: list[tuple[str, str]] = []
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None
        self._select_values: list[str] = []
        self._select_chosen: list[str] = []
        self._select_multiple = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form") and not self.depth:
            self.depth = 1
            return
        if not self.depth:
            return
        if tag == "form":
            self.depth += 1
        name = a.get("name", "")
        if "disabled" in a and tag in {"input", "select", "textarea"}:
            return
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in {"submit", "button", "reset", "image", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self.values.append((name, a.get("value", "on")))
                self.options.setdefault(name, []).append(a.get("value", "on"))
                return
            self.values.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select, self._select_multiple = name, "multiple" in a
            self._select_values, self._select_chosen = [], []
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select_values.append(value)
            if "selected" in a:
                self._select_chosen.append(value)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        if tag == "form":
            self.depth -= 1
        elif tag == "select" and self._select is not None:
            chosen = self._select_chosen
            if not chosen and not self._select_multiple and self._select_values:
                chosen = self._select_values[:1]  # what a browser submits
            self.values.extend((self._select, value) for value in chosen)
            self.options[self._select] = self._select_values
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.values.append((self._textarea, text.removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def read_form(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    reader.close()
    return reader


def as_post(values: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in values:
        data.setdefault(name, []).append(value)
    return data


# --- generated valid values -------------------------------------------------------------------

_serial = itertools.count(1)


@dataclass
class Hints:
    """Values of fields whose validity depends on the tenant (its DIDs) or on a format."""

    did: str  # a DID in the acting tenant's pool on `trunk`
    trunk: int
    known = frozenset({"number", "did", "did_range", "caller_id", "did_pool", "prefixes"})

    def value(self, name: str, field: forms.Field) -> str | None:
        n = next(_serial)
        by_name = {
            "number": str(700 + n),
            "did": self.did,
            "did_range": self.did,
            "caller_id": self.did,
            "did_pool": f"1718555{n:04d}",
            "host": "newyork1.voip.ms",
            "username": f"screen{n}@example.com",
            "password1": "Screen-Pass-9431-long",
            "password2": "Screen-Pass-9431-long",
            "api_password": "screen-api-password",
            "slug": f"screen{n}.example",
            "prefixes": "8",
            "start": "18:00",  # the factory's office hours end at 17:00
            "end": "20:00",
        }
        if (
            name == "trunk"
            and isinstance(field, forms.ModelChoiceField)
            and field.queryset.filter(pk=self.trunk).exists()
        ):
            return str(self.trunk)
        if name in by_name:
            return by_name[name]
        return generic_value(field, n)


def generic_value(field: forms.Field, n: int) -> str | None:
    """Return a valid value for a form field by its type, or None to leave it empty."""
    if isinstance(field, forms.BooleanField):
        return None
    if isinstance(field, forms.ModelMultipleChoiceField | forms.ModelChoiceField):
        first = field.queryset.first()
        return None if first is None else str(first.pk)
    if isinstance(field, forms.ChoiceField):
        for value, _label in field.choices:
            if value not in ("", None) and not isinstance(_label, list | tuple):
                return str(value)
        return None
    if isinstance(field, forms.EmailField):
        return f"screen{n}@example.com"
    if isinstance(field, forms.URLField):
        return "https://example.com/screen"
    if isinstance(field, forms.DateField):
        return date(2031, 7, 1 + n % 28).isoformat()
    if isinstance(field, forms.TimeField):
        return time(9).strftime("%H:%M")
    if isinstance(field, forms.IntegerField | forms.DecimalField | forms.FloatField):
        low = getattr(field, "min_value", None)
        return str(max(1, int(low or 0)))
    if isinstance(field, forms.SlugField):
        return f"screen-{n}"
    if isinstance(field, forms.CharField):
        limit = field.max_length or 40
        return f"Screen {n}"[:limit]
    return None


def fill(
    values: list[tuple[str, str]], form: forms.BaseForm, hints: Hints, *, inline: bool
) -> list[tuple[str, str]]:
    """Fill the form's empty required fields with generated values.

    In a blank inline form, relations and fields with a known format are filled too, so that
    the row is saved rather than skipped as unchanged.
    """
    present = {name for name, value in values if value != ""}
    filled = list(values)
    for name, field in form.fields.items():
        key = form.add_prefix(name)
        if key in present or field.disabled or name in {"DELETE", "id"}:
            continue
        wanted = field.required or (
            inline and (isinstance(field, forms.ModelChoiceField) or name in hints.known)
        )
        if not wanted:
            continue
        value = hints.value(name, field)
        if value is None:
            continue
        filled = [(n, v) for n, v in filled if n != key] + [(key, value)]
    return filled


def blank_inline_rows(
    context: Any, values: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[forms.BaseForm]]:
    """Return the values with one blank row in every inline that may add one, and those rows.

    An inline's first extra form is used; an inline without extra forms gets a new row the way
    the admin's "Add another" does it: a copy of its `__prefix__` template and one more form in
    TOTAL_FORMS.
    """
    rows = []
    values = list(values)
    for inline in context.get("inline_admin_formsets") or []:
        formset = inline.formset
        extra = formset.forms[formset.initial_form_count() :]
        if extra:
            rows.append(extra[0])
            continue
        total = len(formset.forms)
        if not inline.has_add_permission or total >= (formset.max_num or 1000):
            continue
        template = f"{formset.prefix}-__prefix__-"
        row = f"{formset.prefix}-{total}-"
        values += [(n.replace(template, row), v) for n, v in values if n.startswith(template)]
        key = f"{formset.prefix}-TOTAL_FORMS"
        values = [(n, str(total + 1) if n == key else v) for n, v in values]
        rows.append(formset._construct_form(total))
    return values, rows


def form_errors(context: Any) -> list[str]:
    """Return the errors a rendered add or change page shows, field by field."""
    errors = []
    adminform = context.get("adminform")
    if adminform is not None:
        errors += [f"{k}: {v}" for k, v in adminform.form.errors.items()]
    for inline in context.get("inline_admin_formsets") or []:
        formset = inline.formset
        errors += [f"{formset.prefix}: {e}" for e in formset.non_form_errors()]
        for form in formset.forms:
            errors += [f"{form.prefix}-{k}: {v}" for k, v in form.errors.items()]
    return errors


def refill(
    values: list[tuple[str, str]], context: Any, hints: Hints
) -> list[tuple[str, str]] | None:
    """Fill the empty fields a refused form asks for (a field required only with another
    field's value, such as the extension of an "Extension" destination), or return None."""
    present = {name for name, value in values if value != ""}
    forms_shown: list[forms.BaseForm] = []
    adminform = context.get("adminform")
    if adminform is not None:
        forms_shown.append(adminform.form)
    for inline in context.get("inline_admin_formsets") or []:
        forms_shown += inline.formset.forms
    filled, changed = list(values), False
    for form in forms_shown:
        asked = [name for name in form.errors if name in form.fields]
        if "__all__" in form.errors:
            # A rule across fields: try the relations left empty.
            asked += [
                name
                for name, field in form.fields.items()
                if isinstance(field, forms.ModelChoiceField) and not field.disabled
            ]
        for name in asked:
            key = form.add_prefix(name)
            if name not in form.fields or key in present:
                continue
            value = hints.value(name, form.fields[name])
            if value is not None:
                filled = [(n, v) for n, v in filled if n != key] + [(key, value)]
                changed = True
    return filled if changed else None


# Text a user might paste by mistake or an attacker on purpose: markup, quotes, separators,
# non-ASCII, signs; and the same past every length limit.
HOSTILE = ("<i>x</i>'\";-1 é+", "<script>alert(1)</script>'\"" + "9" * 300)


def hostile(
    values: list[tuple[str, str]], shown: list[forms.BaseForm], text: str
) -> list[tuple[str, str]]:
    """Return the values with every free-text field of the given forms set to `text`."""
    keys = {
        form.add_prefix(name)
        for form in shown
        for name, field in form.fields.items()
        if isinstance(field, forms.CharField) and not field.disabled
    }
    return [(n, text if n in keys else v) for n, v in values]
