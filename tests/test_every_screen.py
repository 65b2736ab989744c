"""Every screen of the portal, as every role: pages render or refuse as they must, forms save.

For the system administrator, the system administrator managing Tenant A, Tenant A's
administrator and one of its extension users, each admin site's registry gives every model
admin; for each: the list (with every filter choice and a search), the add page, an object's
change, delete and history pages, and every view its get_urls() adds. Each answers 200, or the
403/404 that the role must get (decided from the model admin's has_*_permission). Tenant B's
objects never appear in a list and their pages are 404 for tenant roles.

Every add form saves an object built from the form's own fields (inline formsets included),
an empty POST shows field errors, and re-posting an object's change form unchanged saves it.
The inbox and the phone simulator are visited from the URL resolver. A model, model admin or
view added later is covered without editing this file.

Each test adds its role's count of visited screens to var/.../every_screen.json.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin import AdminSite, ModelAdmin
from django.contrib.messages import get_messages
from django.db import models, transaction
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, reverse
from django.utils import timezone

from tenants.models import Tenant, User
from tests import screens
from tests.factories import POOLS, World, shared_trunk
from tests.test_isolation_matrix import PUBLIC, VIEW_OBJECTS, iter_routes

# The pages that list a configuration's DIDs at VoIP.ms get a mocked answer.
pytestmark = pytest.mark.usefixtures("voipms_dids")

REFUSED = (302, 403)  # a site the role may not use: sent to log in, or refused


@pytest.fixture
def world(world: World) -> World:
    """Both tenants with one object of every model, and a conversation the user may read."""
    return screens.prepare_world(world)


@dataclass
class Visitor:
    """A signed-in client that records every screen it opens and every failure it meets."""

    role: str
    client: Client
    user: User
    tenant: Tenant | None
    failures: list[str] = field(default_factory=list)
    screens: int = 0
    post_only: list[tuple[str, str]] = field(default_factory=list)  # (url, "own"|"other")
    actions: list[tuple[str, str, Any, str]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # "site:Model" saved from its add form
    resaved: list[str] = field(default_factory=list)  # "site:Model" re-saved unchanged
    # Where this role may not go: a page that links there sends the user to a refusal.
    refused_prefixes: tuple[str, ...] = ()
    # The language the user chose in his profile: every page must speak it.
    language: str = "en"

    def fail(self, text: str) -> None:
        self.failures.append(f"[{self.role}] {text}")

    def call(self, method: str, url: str, expected: Collection[int], data: Any = None) -> Any:
        """Open a URL; a server error or an unexpected status is recorded, not raised."""
        self.screens += 1
        try:
            # A savepoint per request: a database error must not break the next request.
            with transaction.atomic():
                if method == "GET":
                    response = self.client.get(url)
                else:
                    response = self.client.post(url, data or {})
                if response.streaming:
                    b"".join(response.streaming_content)
        except Exception as error:
            where = traceback.extract_tb(error.__traceback__)[-1]
            self.fail(f"{method} {url} raised {error!r} at {where.filename}:{where.lineno}")
            return None
        finally:
            if method == "POST":
                # Saving the profile page as the test does may change the user's language: the
                # rest of the visit stays in the language under test.
                type(self.user).objects.filter(pk=self.user.pk).exclude(
                    language=self.language
                ).update(language=self.language)
        if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
            html = response.content.decode()
            if "<html" in html and f'<html lang="{self.language}"' not in html:
                self.fail(f"{method} {url} is not in the user's language {self.language}")
            menu = 'id="logout-form"' in html
            if self.language == "fr-ca" and menu and "Déconnexion" not in html:
                self.fail(f"{method} {url} shows its menu in English to a French-speaking user")
            for prefix in self.refused_prefixes:
                if f'href="{prefix}' in html:
                    self.fail(f"{method} {url} links into {prefix}, which this role may not open")
        if response.status_code not in expected:
            self.fail(
                f"{method} {url} answered {response.status_code}, expected {sorted(expected)}"
                + (f": {response['Location']}" if response.has_header("Location") else "")
            )
        return response

    def get(self, url: str, expected: Collection[int]) -> Any:
        return self.call("GET", url, expected)

    def post(self, url: str, data: Any, expected: Collection[int]) -> Any:
        return self.call("POST", url, expected, data)


def _sign_in(client_for: Any, world: World, role: str, language: str = "en") -> Visitor:
    users = {
        "system administrator": world.sysadmin,
        "system administrator managing Tenant A": world.sysadmin,
        "tenant administrator": world.admin_a,
        "extension user": world.user_a,
    }
    user = users[role]
    user.language = language
    user.save(update_fields=["language"])
    client = client_for(user)
    tenant = None if user.is_system_admin else world.tenant_a
    if role == "system administrator managing Tenant A":
        response = client.post(reverse("admin:tenants_tenant_manage", args=[world.tenant_a.pk]))
        assert response.status_code == 302 and response["Location"] == reverse("tenant:index")
        tenant = world.tenant_a
    request = screens.permission_request(user, tenant)
    refused = tuple(
        reverse(f"{site.name}:index")
        for site in screens.SITES.values()
        if not site.has_permission(request)
    )
    return Visitor(
        role=role,
        client=client,
        user=user,
        tenant=tenant,
        refused_prefixes=refused,
        language=language,
    )


def _other_object(model: type[models.Model], world: World) -> Any:
    if model in world.objects_b:
        return world.objects_b[model]
    return model.objects.for_tenant(world.tenant_b).first()


def _ok(allowed: bool, yes: Collection[int] = (200,)) -> Collection[int]:
    return yes if allowed else (403,)


def visit_model_admin(
    visitor: Visitor, site: AdminSite, model_admin: ModelAdmin, world: World
) -> None:
    """Open every screen of one model admin and check what the role must see."""
    model = model_admin.model
    request = screens.permission_request(visitor.user, visitor.tenant)
    site_allowed = site.has_permission(request)
    tenant_site = site is screens.SITES["tenant"]
    own = screens.own_object(site, model, world)
    other = _other_object(model, world) if tenant_site else None
    if own is None or (tenant_site and other is None):
        where = "in each tenant" if tenant_site else "on the system site"
        visitor.fail(f"No {model.__name__} {where}: create one in tests/factories.py")
        return

    def url(view: str, obj: Any = None) -> str:
        args = [obj.pk] if obj is not None else []
        return reverse(screens.url_name(site, model, view), args=args)

    if not site_allowed:
        for view, obj in [("changelist", None), ("add", None), ("change", own), ("delete", own)]:
            visitor.get(url(view, obj), REFUSED)
            visitor.post(url(view, obj), {}, REFUSED)
        visitor.get(url("history", own), REFUSED)
        for custom in screens.custom_views(site, model_admin):
            visitor.get(custom.url(own.pk), (*REFUSED, 405))
        return

    may_view = model_admin.has_view_or_change_permission(request)
    may_view_own = model_admin.has_view_or_change_permission(request, own)
    may_delete_own = model_admin.has_delete_permission(request, own)

    # The list, each filter choice, a search; never another tenant's object.
    changelist = visitor.get(url("changelist"), _ok(may_view))
    if changelist is not None and changelist.status_code == 200:
        lists = [(url("changelist"), changelist)]
        cl = changelist.context["cl"]
        query_strings = {
            choice["query_string"] for spec in cl.filter_specs for choice in spec.choices(cl)
        }
        for query in sorted(query_strings):
            response = visitor.get(url("changelist") + query, (200, 302))
            lists.append((url("changelist") + query, response))
        if model_admin.date_hierarchy:
            # The date drill-down, down to the day of the newest row.
            field_name = model_admin.date_hierarchy
            newest = cl.queryset.order_by(f"-{field_name}").first()
            if newest is not None:
                with timezone.override(screens.tenant_zone(visitor.tenant)):
                    day = getattr(newest, field_name)
                    if isinstance(day, datetime):
                        day = timezone.localtime(day)
                parts = [("year", day.year), ("month", day.month), ("day", day.day)]
                for depth in range(1, 4):
                    query = "?" + "&".join(f"{field_name}__{k}={v}" for k, v in parts[:depth])
                    response = visitor.get(url("changelist") + query, (200,))
                    lists.append((url("changelist") + query, response))
                    if response is not None and newest.pk not in {
                        o.pk for o in response.context["cl"].result_list
                    }:
                        visitor.fail(f"{url('changelist')}{query} does not list {newest}")
            # A hand-edited address: an impossible date is refused, never a server error.
            query = f"?{field_name}__year=20x6&{field_name}__month=13"
            visitor.get(url("changelist") + query, (200, 302, 400))
        # A hand-edited filter value and an unknown parameter.
        for spec in cl.filter_specs:
            for parameter in getattr(spec, "expected_parameters", lambda: [])():
                visitor.get(url("changelist") + f"?{parameter}=%3Cx%3E", (200, 302, 400))
        visitor.get(url("changelist") + "?no_such_field=1", (200, 302, 400))
        if model_admin.get_search_fields(request):
            for term in ("Factory", "1212555", "+1", "%' OR 1=1 --", "\\"):
                query = f"?q={term.replace('+', '%2B')}"
                lists.append(
                    (url("changelist") + query, visitor.get(url("changelist") + query, (200,)))
                )
        if tenant_site:
            leak = url("change", other)
            for list_url, response in lists:
                if response is None or response.status_code != 200:
                    continue
                if leak in response.content.decode():
                    visitor.fail(f"{list_url} links to tenant B's {model.__name__} ({leak})")
                strangers = [
                    row
                    for row in response.context["cl"].result_list
                    if getattr(row, "tenant_id", visitor.tenant.pk) != visitor.tenant.pk
                ]
                if strangers:
                    visitor.fail(f"{list_url} lists another tenant's rows: {strangers}")

    visitor.get(url("add"), _ok(model_admin.has_add_permission(request)))
    visitor.get(url("change", own), _ok(may_view_own))
    visitor.get(url("history", own), _ok(may_view_own))
    # A delete that a service refuses (an object still in use) answers with a redirect.
    visitor.get(url("delete", own), _ok(may_delete_own, (200, 302)))
    if tenant_site:
        hidden = (404,) if may_view else (403, 404)
        for view in ("change", "history", "delete"):
            visitor.get(url(view, other), hidden)
            visitor.post(url(view, other), {}, hidden)

    # Each list action on the own object and on another tenant's (which must be ignored).
    if may_view:
        for action in model_admin.get_actions(request):
            for obj, whose in ((own, "own"), (other, "other")):
                if obj is not None:
                    visitor.actions.append((url("changelist"), action, obj, whose))

    for custom in screens.custom_views(site, model_admin):
        pk = own.pk if custom.params else None
        target = custom.url(pk) if custom.params else reverse(custom.name)
        response = visitor.get(target, (200, 302, 403, 405))
        if response is not None and response.status_code == 405:
            visitor.post_only.append((target, "own"))
        if tenant_site and custom.params:
            target = custom.url(other.pk)
            response = visitor.get(target, (404, 405) if may_view else (403, 404, 405))
            if response is not None and response.status_code == 405:
                visitor.post_only.append((target, "other"))


def check_forms(
    visitor: Visitor, site: AdminSite, model_admin: ModelAdmin, world: World, tenant: Tenant
) -> None:
    """Add an object from the add form, refuse an empty one, re-save an object unchanged."""
    model = model_admin.model
    request = screens.permission_request(visitor.user, visitor.tenant)
    hints = screens.Hints(did=POOLS[tenant.slug].split("-")[0], trunk=shared_trunk().pk)
    name = model.__name__

    def url(view: str, obj: Any = None) -> str:
        args = [obj.pk] if obj is not None else []
        return reverse(screens.url_name(site, model, view), args=args)

    if model_admin.has_add_permission(request):
        page = visitor.get(url("add"), (200,))
        if page is not None and page.status_code == 200:
            values = screens.read_form(page.content.decode()).values
            form = page.context["adminform"].form
            values = screens.fill(values, form, hints, inline=False)
            values, rows = screens.blank_inline_rows(page.context, values)
            for row in rows:
                values = screens.fill(values, row, hints, inline=True)
            before = model._default_manager.count()
            inline_models = {row._meta.model for row in rows}
            rows_before = {m: m._default_manager.count() for m in inline_models}
            data = {**screens.as_post(values), "_save": "Save"}
            response = visitor.post(url("add"), data, (200, 302))
            for _attempt in range(3):
                if response is None or response.status_code != 200:
                    break
                more = screens.refill(values, response.context, hints)
                if more is None:
                    break
                values = more
                response = visitor.post(
                    url("add"), {**screens.as_post(values), "_save": "Save"}, (200, 302)
                )
            if response is not None and response.status_code == 200:
                visitor.fail(
                    f"{name} add form refused {values}: {screens.form_errors(response.context)}"
                )
            elif response is not None and model._default_manager.count() == before + 1:
                visitor.added.append(f"{site.name}:{name}")
                for inline_model, count in rows_before.items():
                    if inline_model._default_manager.count() <= count:
                        visitor.fail(f"{name} add form saved no {inline_model.__name__} row")
            elif response is not None:
                said = [str(m) for m in get_messages(response.wsgi_request)]
                visitor.fail(f"{name} add form answered 302 but saved no object: {said}")
            for text in screens.HOSTILE:
                # A form error or a saved object, never a server error.
                odd = screens.hostile(values, [form, *rows], text)
                visitor.post(url("add"), {**screens.as_post(odd), "_save": "Save"}, (200, 302))
            required = any(f.required for f in form.fields.values())
            empty = visitor.post(url("add"), {}, (200,) if required else (200, 302))
            if (
                empty is not None
                and empty.status_code == 200
                and "errorlist" not in empty.content.decode()
            ):
                visitor.fail(f"{name} add form: an empty POST shows no field error")
    else:
        visitor.post(url("add"), {}, (403,))

    own = screens.own_object(site, model, world)
    if model_admin.has_change_permission(request, own):
        page = visitor.get(url("change", own), (200,))
        if page is not None and page.status_code == 200:
            values = screens.read_form(page.content.decode()).values
            response = visitor.post(
                url("change", own), {**screens.as_post(values), "_save": "Save"}, (302,)
            )
            if response is not None and response.status_code == 302:
                visitor.resaved.append(f"{site.name}:{name}")
            form = page.context["adminform"].form
            inline_forms = [
                f for inline in page.context["inline_admin_formsets"] for f in inline.formset.forms
            ]
            for text in screens.HOSTILE:
                odd = screens.hostile(values, [form, *inline_forms], text)
                visitor.post(
                    url("change", own), {**screens.as_post(odd), "_save": "Save"}, (200, 302)
                )
            required = any(f.required for f in form.fields.values())
            empty = visitor.post(url("change", own), {}, (200,) if required else (200, 302))
            if (
                empty is not None
                and empty.status_code == 200
                and "errorlist" not in empty.content.decode()
            ):
                visitor.fail(f"{name} change form: an empty POST shows no field error")
            if not model._default_manager.filter(pk=own.pk).exists():
                visitor.fail(f"{name}: an empty POST to the change form deleted the object")
            if response is not None and response.status_code == 200:
                visitor.fail(
                    f"{name} change form refused its own values: "
                    f"{screens.form_errors(response.context)}"
                )
    elif model_admin.has_view_or_change_permission(request, own):
        visitor.post(url("change", own), {}, (403,))


def visit_pages(visitor: Visitor, world: World) -> None:
    """Open every page outside the admin sites and the API: home, inbox, phone simulator."""
    for route in iter_routes():
        if not route.name or route.name in PUBLIC or ":" in route.name:
            continue
        try:  # the API has its own tests (tests/test_isolation_matrix.py and the API tests)
            sample = reverse(
                route.name, kwargs={p: "json" if p == "format" else 1 for p in route.params}
            )
        except NoReverseMatch:
            sample = ""
        if sample.startswith("/api/"):
            continue
        if route.params and route.name not in VIEW_OBJECTS:
            visitor.fail(f"{route.name} takes {route.params}: add it to VIEW_OBJECTS")
            continue
        if not route.params:
            # 400/404: a JSON endpoint of a page, asked without the query its page adds.
            response = visitor.get(sample, (200, 302, 400, 403, 404, 405))
            if response is not None and response.status_code in (200, 405):
                # Pages that take a form: an empty one is refused with a reason.
                visitor.post(sample, {}, (200, 302, 400, 403, 405))
            continue
        param, model = VIEW_OBJECTS[route.name]
        mine = reverse(route.name, kwargs={param: world.objects_a[model].pk})
        theirs = reverse(route.name, kwargs={param: world.objects_b[model].pk})
        reads_tenant = visitor.tenant is not None
        response = visitor.get(mine, (200, 302, 400, 403, 405) if reads_tenant else (302, 403, 404))
        if response is not None and response.status_code == 405:
            visitor.post(mine, {}, (200, 302, 400, 403) if reads_tenant else (302, 403, 404))
        response = visitor.get(theirs, (404, 405) if reads_tenant else (302, 403, 404))
        if response is not None and response.status_code == 405:
            visitor.post(theirs, {}, (404,) if reads_tenant else (302, 403, 404))


ROLES = [
    "system administrator",
    "system administrator managing Tenant A",
    "tenant administrator",
    "extension user",
]
# Every screen once in English and once more in French (Canada), as the users' profile language.
LANGUAGES = ["en", "fr-ca"]


def role_label(role: str, language: str) -> str:
    """Name a run in every_screen.json: the role, and the language when it is not English."""
    return role if language == "en" else f"{role} ({language})"


def report(role: str, count: int, **details: Any) -> None:
    """Note how many screens the role visited (and what it saved) in every_screen.json."""
    path = Path(settings.VAR_DIR) / "every_screen.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = json.loads(path.read_text()) if path.exists() else {}
    counts[role] = {"screens": count, **details}
    path.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
    print(f"every screen: {role}: {count} screens {details}")


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", ROLES)
def test_every_screen(role: str, language: str, world: World, client_for: Any) -> None:
    visitor = _sign_in(client_for, world, role, language)
    sites = dict(screens.SITES)
    if role == "system administrator managing Tenant A":
        sites.pop("admin")  # the same pages as the system administrator's
    for site in sites.values():
        for model_admin in site._registry.values():
            visit_model_admin(visitor, site, model_admin, world)
    visit_pages(visitor, world)
    for site in sites.values():
        request = screens.permission_request(visitor.user, visitor.tenant)
        if not site.has_permission(request):
            continue
        for pattern in site.get_urls():
            # The site's own pages (password change, the autocomplete endpoint…), by GET only:
            # a POST would sign out or leave the managed tenant.
            if (
                isinstance(pattern, URLPattern)
                and pattern.name not in {None, "logout"}
                and not pattern.pattern.regex.groupindex
            ):
                visitor.get(reverse(f"{site.name}:{pattern.name}"), (200, 302, 403, 405))
        for label in {m._meta.app_label for m in site._registry}:
            visitor.get(reverse(f"{site.name}:app_list", args=[label]), (200,))
        for model_admin in site._registry.values():
            check_forms(visitor, site, model_admin, world, world.tenant_a)
    for changelist, action, obj, whose in visitor.actions:
        data = {"action": action, "_selected_action": [str(obj.pk)], "index": "0"}
        response = visitor.post(changelist, data, (200, 302))
        if whose == "other" and type(obj)._default_manager.filter(pk=obj.pk).exists():
            if response is not None and response.status_code == 200:
                text = response.content.decode()
                change = reverse(
                    screens.url_name(screens.SITES["tenant"], type(obj), "change"), args=[obj.pk]
                )
                if change in text:
                    visitor.fail(f"action {action} on {changelist} shows tenant B's {obj!r}")
        elif whose == "other":
            visitor.fail(f"action {action} on {changelist} deleted tenant B's {obj!r}")
    for target, whose in visitor.post_only:
        visitor.post(target, {}, (404,) if whose == "other" else (200, 302, 400, 403))
    for site in sites.values():  # the home pages again, now with recent actions
        if site.has_permission(screens.permission_request(visitor.user, visitor.tenant)):
            visitor.get(reverse(f"{site.name}:index"), (200,))
    # Last, delete each own object through its confirmation page: a refusal (an object in use)
    # is a message or Django's "cannot delete" page, never a server error.
    for site in sites.values():
        request = screens.permission_request(visitor.user, visitor.tenant)
        if not site.has_permission(request):
            continue
        for model, model_admin in site._registry.items():
            own = screens.own_object(site, model, world)
            if own is None or not model._default_manager.filter(pk=own.pk).exists():
                continue
            if model_admin.has_delete_permission(request, own):
                target = reverse(screens.url_name(site, model, "delete"), args=[own.pk])
                page = visitor.get(target, (200, 302))
                if page is None or page.status_code != 200:
                    continue
                # Django's page offers no Delete button when the object takes rows the user
                # may not delete (or protected ones) with it; a POST is refused (403 or the page).
                refused = page.context.get("perms_lacking") or page.context.get("protected")
                visitor.post(target, {"post": "yes"}, (200, 403) if refused else (302,))
                lacking = page.context.get("perms_lacking")
                if lacking and site is screens.SITES["tenant"]:
                    visitor.fail(f"{target}: deleting needs rights the tenant lacks: {lacking}")
    report(
        role_label(role, language),
        visitor.screens,
        added=sorted(visitor.added),
        saved_unchanged=sorted(visitor.resaved),
    )
    if visitor.failures:
        pytest.fail(
            f"{len(visitor.failures)} failures:\n" + "\n".join(visitor.failures), pytrace=False
        )
