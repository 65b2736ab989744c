"""Every URL pattern of the portal, visited as every role.

Routes are enumerated with Django's URL resolver, so a route added later is covered without
editing this file; a route whose parameters this file cannot fill, and that is not listed as
public or explained below, fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from sms.models import (
    Contact,
    Conversation,
    DidPointing,
    InboundRule,
    Message,
    MessageMedia,
    OutboundRule,
    ReplyTemplate,
    SmsConfiguration,
    WebhookDelivery,
)
from tenants.models import ApiToken, Extension, Holiday, OfficeHours, RingGroup, User
from tenants.services import api_token_create
from tests.factories import World, make_messaging_objects
from trunks.models import Trunk
from trunks.voipms.sandbox.models import SandboxDid
from trunks.voipms.sandbox.services import sandbox_account_ensure

# The pages and routes that list a configuration's DIDs at VoIP.ms get a mocked answer.
pytestmark = pytest.mark.usefixtures("voipms_dids")

# Routes anyone may open.
PUBLIC = {
    "login",
    "logout",
    "healthz",
    "admin:logout",
    "tenant:logout",
    "api-schema",
    "api-docs",
    "favicon",
    "javascript-catalog",
    # Reached by VoIP.ms (and the sandbox standing in for it); secured by the URL's token or the
    # VoIP.ms credentials, and tested in tests/sms/test_webhook_receiver.py and the sandbox tests.
    "voipms_webhook",
    "sandbox_api",
    "sandbox_media",
}

# Routes that take no tenant object and are checked elsewhere, with the reason.
NOT_ENUMERABLE = {
    "admin:view_on_site": "redirect helper of Django's admin, takes a content type",
    "tenant:view_on_site": "redirect helper of Django's admin, takes a content type",
    "admin:app_list": "enumerated separately per app label",
    "tenant:app_list": "enumerated separately per app label",
}

# API routes with a {pk}: the model whose tenant-A row fills it (None: a system-admin route).
API_MODELS: dict[str, Any] = {
    "admin-tenant-detail": None,
    "admin-trunk-detail": None,
    "admin-trunk-assignment-list": None,
    "admin-trunk-assignment-detail": None,
    "trunk-detail": Trunk,
    "sms-configuration-detail": SmsConfiguration,
    "sms-configuration-rotate-webhook": SmsConfiguration,
    "sms-configuration-verify": SmsConfiguration,
    "sms-configuration-dids": SmsConfiguration,
    "sms-configuration-point-dids": SmsConfiguration,
    "sms-configuration-point-dids-result": SmsConfiguration,
    "inbound-rule-detail": InboundRule,
    "conversation-detail": Conversation,
    "message-detail": Message,
    "message-cancel": Message,
    "reply-template-detail": ReplyTemplate,
    "contact-detail": Contact,
    "outbound-rule-detail": OutboundRule,
    "api-token-detail": ApiToken,
    "inbound-rule-rotate-secret": InboundRule,
    "extension-detail": Extension,
    "user-detail": User,
    "ring-group-detail": RingGroup,
    "office-hours-detail": OfficeHours,
    "holiday-detail": Holiday,
    "webhook-delivery-detail": WebhookDelivery,
    "webhook-delivery-reprocess": WebhookDelivery,
}

# Other routes with an id: url name -> (parameter, model whose tenant-A row fills it).
VIEW_OBJECTS: dict[str, tuple[str, type]] = {
    "inbox_conversation": ("pk", Conversation),
    "inbox_messages_json": ("pk", Conversation),
    "inbox_reply": ("pk", Conversation),
    "inbox_transfer": ("pk", Conversation),
    "inbox_contact": ("pk", Conversation),
    "inbox_retry": ("pk", Message),
    "inbox_media": ("pk", MessageMedia),
    "tenant:sandbox_did": ("pk", SandboxDid),
    "tenant:sandbox_did_delete": ("pk", SandboxDid),
}


@dataclass
class Route:
    name: str
    params: tuple[str, ...]
    unnamed: str = ""


def _params(pattern: URLPattern | URLResolver) -> tuple[str, ...]:
    return tuple(pattern.pattern.regex.groupindex)


def iter_routes(
    resolver: URLResolver | None = None, ns: str = "", inherited: tuple = ()
) -> Iterator[Route]:
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        params = inherited + _params(entry)
        if isinstance(entry, URLResolver):
            child_ns = f"{ns}{entry.namespace}:" if entry.namespace else ns
            yield from iter_routes(entry, child_ns, params)
        elif entry.name:
            yield Route(name=f"{ns}{entry.name}", params=params)
        else:
            yield Route(name="", params=params, unnamed=str(entry.pattern))


def _admin_model(name: str) -> tuple[str, type | None, str]:
    """Split `site:app_model_action` into the site, the model and the action."""
    site, _, rest = name.partition(":")
    if rest == "auth_user_password_change":  # named by Django's UserAdmin, not by the model
        return site, apps.get_model(settings.AUTH_USER_MODEL), "password_change"
    for model in apps.get_models():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if rest.startswith(prefix):
            return site, model, rest[len(prefix) :]
    return site, None, rest


def urls_for(route: Route, world: World) -> list[tuple[str, str]]:
    """Return (url, kind) pairs for a route; kind says which tenant's object the URL names."""
    if route.name in NOT_ENUMERABLE:
        return []
    if not route.params or route.params == ("format",):
        if "format" in route.params:
            return [(reverse(route.name, kwargs={"format": "json"}), "none")]
        return [(reverse(route.name), "none")]
    site, model, _action = _admin_model(route.name)
    if route.name.endswith("tenants_tenant_manage"):
        return [(reverse(route.name, args=[world.tenant_a.pk]), "system")]
    if site in {"admin", "tenant"} and model is not None:
        kwargs: dict[str, Any] = {}
        for param in route.params:
            if param in {"object_id", "id", "pk"}:
                obj = _object_of(model, world)
                kwargs[param] = obj.pk
        return [(reverse(route.name, kwargs=kwargs), "a" if site == "tenant" else "system")]
    if route.name in VIEW_OBJECTS:
        param, view_model = VIEW_OBJECTS[route.name]
        return [(reverse(route.name, kwargs={param: _object_of(view_model, world).pk}), "a")]
    if route.name in API_MODELS:
        model = API_MODELS[route.name]
        kwargs = {}
        if "format" in route.params:
            kwargs["format"] = "json"
        if "trunk_pk" in route.params:
            kwargs["trunk_pk"] = world.objects_a[Trunk].pk
        if "pointing_id" in route.params:
            kwargs["pointing_id"] = _object_of(DidPointing, world).pk
        if "pk" in route.params:
            if route.name == "admin-trunk-assignment-detail":
                kwargs["pk"] = world.objects_a[Trunk].assignments.get().pk
            elif route.name == "admin-trunk-detail":
                kwargs["pk"] = world.objects_a[Trunk].pk
            elif model is None:
                kwargs["pk"] = world.tenant_a.pk
            else:
                kwargs["pk"] = _object_of(model, world).pk
        return [(reverse(route.name, kwargs=kwargs), "system" if model is None else "a")]
    raise AssertionError(
        f"The isolation matrix cannot build a URL for {route.name or route.unnamed!r} "
        f"with parameters {route.params}: teach tests/test_isolation_matrix.py how, or list it."
    )


def _object_of(model: type, world: World) -> Any:
    if model in world.objects_a:
        return world.objects_a[model]
    if model._meta.label == "tenants.Tenant":
        return world.tenant_a
    row = model.objects.first()
    if row is None:
        # A system-site model without rows: the refusal checks need no real row.
        return SimpleNamespace(pk=999999)
    return row


@pytest.fixture
def world(world: World) -> World:
    """Return the shared world plus one object of every messaging model in each tenant."""
    world.objects_a.update(make_messaging_objects(world.tenant_a, world.objects_a))
    world.objects_b.update(make_messaging_objects(world.tenant_b, world.objects_b))
    for tenant_objects in (world.objects_a, world.objects_b):
        configuration = tenant_objects[SmsConfiguration]
        tenant_objects[DidPointing] = DidPointing.objects.create(
            tenant=configuration.tenant, configuration=configuration
        )
    for tenant, tenant_objects, did in (
        (world.tenant_a, world.objects_a, "3322496216"),
        (world.tenant_b, world.objects_b, "3322496217"),
    ):
        sandbox_account_ensure(
            username=f"sandbox@{tenant.slug}", api_password="x", dids=[did], tenant=tenant
        )
        tenant_objects[SandboxDid] = SandboxDid.objects.get(did=did)
    world.objects_a[ApiToken], _ = api_token_create(user=world.admin_a, name="matrix")
    world.objects_b[ApiToken], _ = api_token_create(user=world.admin_b, name="matrix")
    return world


def _refused(response: HttpResponse) -> bool:
    if response.status_code in (401, 403, 404, 405):
        return True
    return response.status_code == 302 and "login" in response["Location"]


def _all_urls(world: World) -> list[tuple[Route, str, str]]:
    urls = []
    for route in iter_routes():
        if not route.name:
            if "(?P<url>" in route.unnamed or route.unnamed == "<path:object_id>/":
                # The admin's catch-all (login redirect or 404) and its redirect from an
                # object's bare URL to the named change view, which is checked.
                continue
            raise AssertionError(f"Unnamed route {route.unnamed!r}: name it")
        if route.name in PUBLIC:
            continue
        for url, kind in urls_for(route, world):
            urls.append((route, url, kind))
    for site in ("admin", "tenant"):
        for label in {m._meta.app_label for m in apps.get_models()}:
            try:
                urls.append(
                    (
                        Route(f"{site}:app_list", ("app_label",)),
                        reverse(f"{site}:app_list", kwargs={"app_label": label}),
                        "none",
                    )
                )
            except Exception:  # noqa: S112 - an app without models on that site has no index
                continue
    return urls


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_or_refused_everywhere(world: World, client_for: Any) -> None:
    client = client_for(None)
    for route, url, _kind in _all_urls(world):
        response = client.get(url)
        assert _refused(response), (
            f"{route.name} {url} answered {response.status_code} to anonymous"
        )


@pytest.mark.django_db
def test_tenant_b_admin_gets_404_for_every_tenant_a_object(world: World, client_for: Any) -> None:
    owner, intruder = client_for(world.admin_a), client_for(world.admin_b)
    checked = 0
    for route, url, kind in _all_urls(world):
        if kind != "a":
            continue
        # 403: a read-only page refuses the owner the delete view, but it exists for him;
        # 405: a POST-only action, which the intruder then tries with POST.
        assert owner.get(url).status_code in (200, 302, 403, 405), f"{url} fails for its owner"
        response = intruder.get(url)
        if response.status_code == 405:
            response = intruder.post(url)
        assert response.status_code == 404, (
            f"{route.name} {url}: {response.status_code} for tenant B"
        )
        checked += 1
    assert checked >= 3


@pytest.mark.django_db
def test_tenant_admin_is_refused_every_system_route(world: World, client_for: Any) -> None:
    client = client_for(world.admin_a)
    for route, url, _kind in _all_urls(world):
        if not (url.startswith("/admin/") or url.startswith("/api/v1/admin/")):
            continue
        response = client.get(url)
        assert _refused(response), (
            f"{route.name} {url} answered {response.status_code} to a tenant admin"
        )


@pytest.mark.django_db
def test_extension_user_is_refused_the_tenant_site(world: World, client_for: Any) -> None:
    client = client_for(world.user_a)
    checked = 0
    for route, url, _kind in _all_urls(world):
        if url.startswith("/tenant/") or url.startswith("/admin/"):
            response = client.get(url)
            assert _refused(response), f"{route.name} {url}: {response.status_code} for a user"
            checked += 1
    assert checked > 10


@pytest.mark.django_db
def test_system_admin_opens_every_system_route(world: World, client_for: Any) -> None:
    client = client_for(world.sysadmin)
    # Rows no one deletes (API tokens are revoked, never deleted) refuse their delete page.
    undeletable = {
        f"{model._meta.app_label}_{model._meta.model_name}_delete"
        for model, model_admin in admin.site._registry.items()
        if not model_admin.has_delete_permission(_request_as(world.sysadmin))
    }
    for route, url, kind in _all_urls(world):
        if kind == "system" and "manage" not in route.name:
            response = client.get(url)
            allowed = (403,) if route.name.split(":")[-1] in undeletable else (200, 302)
            assert response.status_code in allowed, f"{route.name} {url}: {response.status_code}"


@pytest.mark.django_db
def test_a_tenant_admin_opens_every_tenant_page_without_an_error(
    world: World, client_for: Any
) -> None:
    client = client_for(world.admin_a)
    checked = 0
    for route, url, _kind in _all_urls(world):
        if not url.startswith(("/tenant/", "/inbox/", "/api/v1/")) or "/admin/" in url:
            continue
        response = client.get(url)
        assert response.status_code < 500, f"{route.name} {url}: {response.status_code}"
        checked += 1
    assert checked > 50


def _request_as(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    request.tenant = None
    request.session = {}
    return request
