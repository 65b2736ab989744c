"""Bad filters, searches and dates in any admin change list are a message on the page, never a
500: NUL, dates at the calendar's ends, words for numbers, numbers too large for a column."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin import SimpleListFilter
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from core.admin import CheckedChangeListMixin
from portal.admin_sites import tenant_site
from tenants.models import User
from tests.factories import World, make_messaging_objects

ClientFor = Callable[[User | None], Client]
MESSAGES = "/tenant/sms/message/"
DELIVERIES = "/tenant/sms/webhookdelivery/"
HUGE = "9" * 30


def _registered() -> list[tuple[Any, type, Any]]:
    return [
        (site, model, model_admin)
        for site in (admin.site, tenant_site)
        for model, model_admin in site._registry.items()
    ]


def _filter_parameters(model_admin: Any) -> list[str]:
    names = []
    for entry in model_admin.list_filter:
        if isinstance(entry, type) and issubclass(entry, SimpleListFilter):
            names.append(entry.parameter_name)
            continue
        name = entry[0] if isinstance(entry, tuple) else entry
        field = model_admin.model._meta.get_field(name)
        names.append(f"{name}__id__exact" if field.is_relation else f"{name}__exact")
    return names


def _hostile_queries(model_admin: Any) -> list[dict[str, str]]:
    queries: list[dict[str, str]] = [{"q": "\x00"}, {"q": "a\x00b", "p": "2"}, {"p": HUGE}]
    for name in _filter_parameters(model_admin):
        queries += [{name: "\x00"}, {name: HUGE}, {name: "-" + HUGE}, {name: "bogus"}]
    field = model_admin.date_hierarchy
    if field:
        for year, month, day in [
            ("9999", "12", "31"),
            ("9999", "", ""),
            ("1", "1", "1"),
            ("2026", "2", "30"),
            ("2026", "13", ""),
            ("abc", "", ""),
            (HUGE, "1", "1"),
            ("", "", "5"),
            ("", "abc", ""),
            ("2026", "abc", ""),
        ]:
            parts = {"year": year, "month": month, "day": day}
            queries.append({f"{field}__{part}": value for part, value in parts.items() if value})
    return queries


def test_every_admin_change_list_checks_its_query() -> None:
    unchecked = [
        f"{site.name}: {type(model_admin).__name__}"
        for site, _, model_admin in _registered()
        if not isinstance(model_admin, CheckedChangeListMixin)
    ]

    assert len(_registered()) >= 18
    assert unchecked == []


@pytest.mark.django_db
def test_no_bad_query_of_any_admin_change_list_reaches_a_500(
    world: World, client_for: ClientFor
) -> None:
    make_messaging_objects(world.tenant_a, world.objects_a)
    clients = {"admin": client_for(world.sysadmin), "tenant": client_for(world.admin_a)}
    tried = 0
    for site, model, model_admin in _registered():
        url = reverse(f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")
        client = clients[site.name]
        assert client.get(url).status_code == 200, url
        for query in _hostile_queries(model_admin):
            # The test client raises any exception a view lets through (a 500 in production).
            response = client.get(f"{url}?{urlencode(query)}")
            tried += 1
            assert response.status_code in (200, 302), (url, query, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith(url), (url, query)
                assert "e=1" not in response["Location"], (url, query)
                assert [str(m) for m in get_messages(response.wsgi_request)], (url, query)
                assert client.get(response["Location"]).status_code == 200, (url, query)
    assert tried > 150


def _follow(client: Client, url: str) -> tuple[Any, str]:
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    page = client.get(response["Location"])
    assert page.status_code == 200
    return response, page.content.decode()


@pytest.mark.django_db
def test_a_nul_in_a_message_log_filter_is_cleared_with_a_message(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    response, page = _follow(client, f"{MESSAGES}?did=%00&direction__exact=in")

    assert response["Location"] == f"{MESSAGES}?direction__exact=in"
    assert "null characters are not allowed" in page


@pytest.mark.django_db
def test_a_nul_in_the_search_is_cleared_with_a_message(world: World, client_for: ClientFor) -> None:
    response, page = _follow(client_for(world.sysadmin), "/admin/tenants/tenant/?q=a%00")

    assert response["Location"] == "/admin/tenants/tenant/"
    assert "null characters are not allowed" in page


@pytest.mark.django_db
@pytest.mark.parametrize("url", [MESSAGES, DELIVERIES])
def test_a_date_hierarchy_day_at_the_end_of_the_calendar_is_a_message(
    world: World, client_for: ClientFor, url: str
) -> None:
    field = "created_at" if url == MESSAGES else "received_at"
    query = f"{field}__year=9999&{field}__month=12&{field}__day=31&status__exact=failed"

    response, page = _follow(client_for(world.admin_a), f"{url}?{query}")

    assert response["Location"] == f"{url}?status__exact=failed"
    assert "does not exist or is out of range" in page


@pytest.mark.django_db
def test_a_valid_date_hierarchy_day_still_filters(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    for query in [
        "created_at__year=2026&created_at__month=2&created_at__day=28",
        "created_at__year=2026",
        "created_at__month=2",
    ]:
        response = client.get(f"{MESSAGES}?{query}")
        assert response.status_code == 200, query
        assert not list(get_messages(response.wsgi_request)), query


@pytest.mark.django_db
def test_a_word_for_a_number_is_a_message_not_the_database_error_page(
    world: World, client_for: ClientFor
) -> None:
    response, page = _follow(client_for(world.admin_a), "/tenant/tenants/officehours/?weekday=abc")

    assert response["Location"] == "/tenant/tenants/officehours/"
    assert "could not be applied" in page


@pytest.mark.django_db
def test_the_message_export_with_a_bad_date_goes_back_to_the_list(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).get(
        f"{MESSAGES}export/?created_at__year=9999&created_at__month=12&created_at__day=31"
    )

    assert response.status_code == 302
    assert response["Location"] == MESSAGES
