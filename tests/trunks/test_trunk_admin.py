"""Trunks in the back office: the system site's trunk pages with the tenants inline, and the
tenant site's read-only list of the tenant's own trunks and pool."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sms.configurations import sms_configuration_delete
from sms.models import SmsConfiguration
from tenants.models import Extension, User
from tests.factories import OWN_POOLS, POOLS, World, shared_trunk
from tests.sms.helpers import make_rule
from trunks.admin import TrunkForm
from trunks.models import PoolRange, Trunk, TrunkAssignment
from trunks.services import trunk_assignment_save, trunk_save

ClientFor = Callable[[User | None], Client]

SIP_PASSWORD = "sip-Secret-Zebra-9431"
SIP_USERNAME = "100000_pbx"
TRUNKS = "/admin/trunks/trunk/"
TENANT_TRUNKS = "/tenant/trunks/trunkassignment/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _change_url(trunk: Trunk) -> str:
    return f"{TRUNKS}{trunk.pk}/change/"


def _trunk_fields(trunk: Trunk | None = None, **overrides: object) -> dict[str, object]:
    """Return the trunk part of the admin form as the browser posts it."""
    data: dict[str, object] = {
        "name": trunk.name if trunk else "VoIP.ms Montreal",
        "brand": "voipms",
        "enabled": "on",
        "host": trunk.host if trunk else "montreal1.voip.ms",
        "port": 5060,
        "transport": "udp",
        "sip_username": trunk.sip_username if trunk else "200000_pbx",
        "sip_password": "",
        "reregister_interval": 600,
        "max_concurrent_calls": 10,
    }
    data.update(overrides)
    return data


def _inline_rows(rows: list[dict[str, object]], *, trunk: Trunk | None = None) -> dict[str, object]:
    """Return the assignments inline as posted: one dict per row, `id` set for existing rows."""
    initial = sum(1 for row in rows if row.get("id"))
    data: dict[str, object] = {
        "assignments-TOTAL_FORMS": len(rows),
        "assignments-INITIAL_FORMS": initial,
        "assignments-MIN_NUM_FORMS": 0,
        "assignments-MAX_NUM_FORMS": 1000,
    }
    for index, row in enumerate(rows):
        prefix = f"assignments-{index}-"
        data[prefix + "id"] = row.get("id", "")
        data[prefix + "trunk"] = trunk.pk if trunk else ""
        data[prefix + "tenant"] = row.get("tenant", "")
        data[prefix + "did_pool"] = row.get("did_pool", "")
        data[prefix + "max_concurrent_calls"] = row.get("max_concurrent_calls", 10)
        if row.get("DELETE"):
            data[prefix + "DELETE"] = "on"
    return data


def _existing_rows(trunk: Trunk) -> list[dict[str, object]]:
    return [
        {
            "id": a.pk,
            "tenant": a.tenant_id,
            "did_pool": a.did_pool,
            "max_concurrent_calls": a.max_concurrent_calls,
        }
        for a in trunk.assignments.order_by("pk")
    ]


def _post_change(
    client: Client, trunk: Trunk, rows: list[dict[str, object]], **fields: object
) -> Any:
    data = {**_trunk_fields(trunk, **fields), **_inline_rows(rows, trunk=trunk)}
    return client.post(_change_url(trunk), data)


def _inline_errors(response: Any) -> list[dict[str, list[str]]]:
    assert response.status_code == 200, "the form was accepted"
    formset = response.context["inline_admin_formsets"][0].formset
    return [dict(form.errors) for form in formset.forms]


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


# --- add and change ------------------------------------------------------------------------


@pytest.mark.django_db
def test_system_admin_adds_a_trunk_with_a_tenant_pool(world: World, client_for: ClientFor) -> None:
    data = {
        **_trunk_fields(sip_password="Montreal-Pass-5512"),
        **_inline_rows(
            [
                {"tenant": world.tenant_a.pk, "did_pool": "15145550100-15145550104"},
                {"tenant": world.tenant_b.pk, "did_pool": "5145550105", "max_concurrent_calls": 4},
            ]
        ),
    }

    response = client_for(world.sysadmin).post(f"{TRUNKS}add/", data)

    assert response.status_code == 302, _inline_errors(response)
    trunk = Trunk.objects.get(name="VoIP.ms Montreal")
    assert trunk.host == "montreal1.voip.ms"
    assert trunk.sip_password == "Montreal-Pass-5512"
    pools = {a.tenant.slug: (a.did_pool, a.max_concurrent_calls) for a in trunk.assignments.all()}
    assert pools == {
        "a.example": ("15145550100-15145550104", 10),
        "b.example": ("15145550105", 4),
    }
    assert PoolRange.objects.filter(trunk=trunk).count() == 2


@pytest.mark.django_db
def test_add_form_refuses_two_rows_whose_pools_overlap(world: World, client_for: ClientFor) -> None:
    data = {
        **_trunk_fields(),
        **_inline_rows(
            [
                {"tenant": world.tenant_a.pk, "did_pool": "15145550100-15145550109"},
                {"tenant": world.tenant_b.pk, "did_pool": "15145550105-15145550119"},
            ]
        ),
    }

    response = client_for(world.sysadmin).post(f"{TRUNKS}add/", data)

    errors = _inline_errors(response)
    assert errors[1]["did_pool"] == ["The pool overlaps Tenant A's pool: 15145550105-15145550109"]
    assert not Trunk.objects.filter(name="VoIP.ms Montreal").exists()


@pytest.mark.django_db
def test_inline_shows_the_pool_syntax_error_on_the_did_pool_field(
    world: World, client_for: ClientFor
) -> None:
    data = {
        **_trunk_fields(),
        **_inline_rows([{"tenant": world.tenant_a.pk, "did_pool": "+15145550100"}]),
    }

    response = client_for(world.sysadmin).post(f"{TRUNKS}add/", data)

    assert _inline_errors(response)[0]["did_pool"] == [
        'Entry 1 "+15145550100": remove the leading "+"; write 10 digits, '
        "or 11 digits starting with 1"
    ]
    assert not Trunk.objects.filter(name="VoIP.ms Montreal").exists()


@pytest.mark.django_db
def test_overlap_with_another_tenant_is_shown_on_the_inline_field(
    world: World, client_for: ClientFor
) -> None:
    trunk = shared_trunk()
    rows = _existing_rows(trunk)
    row_b = next(row for row in rows if row["tenant"] == world.tenant_b.pk)
    row_b["did_pool"] = "12125550105-12125550119"

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    errors = _inline_errors(response)
    message = (
        "The pool overlaps another tenant's pool on trunk VoIP.ms San Jose: "
        "Tenant A: 12125550105-12125550109"
    )
    assert errors[rows.index(row_b)]["did_pool"] == [message]
    assert message in _text(response)
    assert world.objects_b[TrunkAssignment].did_pool == POOLS["b.example"]
    assert TrunkAssignment.objects.get(pk=row_b["id"]).did_pool == POOLS["b.example"]


@pytest.mark.django_db
def test_system_admin_changes_a_pool_and_adds_a_tenant_on_the_change_page(
    world: World, client_for: ClientFor
) -> None:
    trunk = world.objects_a[Trunk]
    rows = _existing_rows(trunk)
    rows[0]["did_pool"] = "16465550100-16465550103;16465550200"
    rows.append({"tenant": world.tenant_b.pk, "did_pool": "16465550300"})

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    assert response.status_code == 302, _inline_errors(response)
    pools = dict(trunk.assignments.values_list("tenant__slug", "did_pool"))
    assert pools == {"a.example": "16465550100-16465550103;16465550200", "b.example": "16465550300"}
    assert list(
        PoolRange.objects.filter(trunk=trunk, tenant=world.tenant_a).values_list("start", "end")
    ) == [(16465550100, 16465550103), (16465550200, 16465550200)]


@pytest.mark.django_db
def test_shrinking_a_pool_used_by_a_rule_is_shown_on_the_inline_field(
    world: World, client_for: ClientFor
) -> None:
    make_rule(world.tenant_a, did_range="12125550108", extension=world.objects_a[Extension])
    trunk = shared_trunk()
    rows = _existing_rows(trunk)
    row_a = next(row for row in rows if row["tenant"] == world.tenant_a.pk)
    row_a["did_pool"] = "12125550100-12125550104"

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    assert _inline_errors(response)[rows.index(row_a)]["did_pool"] == [
        "Tenant A's pool on VoIP.ms San Jose cannot be shrunk while these use its numbers: "
        "inbound rule 'To reception' (+12125550108)"
    ]
    assert TrunkAssignment.objects.get(pk=row_a["id"]).did_pool == POOLS["a.example"]


@pytest.mark.django_db
def test_removing_a_tenant_whose_numbers_are_used_is_refused_on_the_inline_row(
    world: World, client_for: ClientFor
) -> None:
    trunk = shared_trunk()
    rows = _existing_rows(trunk)
    row_a = next(row for row in rows if row["tenant"] == world.tenant_a.pk)
    row_a["DELETE"] = True

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    assert response.status_code == 200
    assert (
        "Tenant A's pool on VoIP.ms San Jose cannot be removed from the trunk while these use "
        "its numbers: SMS/MMS configuration 'Factory configuration'"
    ) in _text(response)
    assert TrunkAssignment.objects.filter(pk=row_a["id"]).exists()


@pytest.mark.django_db
def test_removing_a_tenant_is_allowed_once_its_configuration_is_gone(
    world: World, client_for: ClientFor
) -> None:
    sms_configuration_delete(configuration=world.objects_a[SmsConfiguration], actor=None)
    trunk = shared_trunk()
    rows = _existing_rows(trunk)
    row_a = next(row for row in rows if row["tenant"] == world.tenant_a.pk)
    row_a["DELETE"] = True

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    assert response.status_code == 302, _inline_errors(response)
    assert not TrunkAssignment.objects.filter(pk=row_a["id"]).exists()
    assert not PoolRange.objects.filter(trunk=trunk, tenant=world.tenant_a).exists()


@pytest.mark.django_db
def test_moving_an_assignment_onto_its_own_numbers_for_another_tenant_is_refused(
    world: World, client_for: ClientFor
) -> None:
    trunk = world.objects_a[Trunk]
    rows = _existing_rows(trunk)
    rows[0]["tenant"] = world.tenant_b.pk

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    assert response.status_code == 200
    assert response.context["errors"]
    assert TrunkAssignment.objects.get(pk=rows[0]["id"]).tenant == world.tenant_a


@pytest.mark.django_db
def test_moving_an_assignment_to_another_tenant_is_refused_with_a_form_error(
    world: World, client_for: ClientFor
) -> None:
    trunk = world.objects_a[Trunk]
    rows = _existing_rows(trunk)
    rows[0]["tenant"] = world.tenant_b.pk
    rows[0]["did_pool"] = "16465550300"

    response = _post_change(client_for(world.sysadmin), trunk, rows)

    assert response.status_code == 200
    assert response.context["errors"]
    assert TrunkAssignment.objects.get(pk=rows[0]["id"]).tenant == world.tenant_a


# --- SIP password: write-only --------------------------------------------------------------


@pytest.mark.django_db
def test_change_page_never_renders_the_sip_password(world: World, client_for: ClientFor) -> None:
    response = client_for(world.sysadmin).get(_change_url(shared_trunk()))

    page = response.content.decode()
    assert response.status_code == 200
    assert SIP_PASSWORD not in page
    assert re.search(r'<input type="password" name="sip_password"(?![^>]*value=)[^>]*>', page)
    assert "Leave blank to keep the stored password" in page


@pytest.mark.django_db
def test_trunk_form_keeps_the_stored_password_when_left_blank(world: World) -> None:
    trunk = shared_trunk()
    form = TrunkForm(instance=trunk, data=_trunk_fields(trunk, sip_password=""))

    assert form.is_valid(), form.errors
    assert form.secret_changes() == {}
    assert form.save(commit=False).sip_password == SIP_PASSWORD
    assert SIP_PASSWORD not in str(form["sip_password"])


@pytest.mark.django_db
def test_trunk_form_hands_a_typed_password_to_the_service(world: World) -> None:
    trunk = shared_trunk()
    form = TrunkForm(instance=trunk, data=_trunk_fields(trunk, sip_password="New-Pass-0042"))

    assert form.is_valid(), form.errors
    assert form.secret_changes() == {"sip_password": "New-Pass-0042"}
    assert SIP_PASSWORD not in str(form["sip_password"])


@pytest.mark.django_db
def test_blank_sip_password_keeps_the_stored_one(world: World, client_for: ClientFor) -> None:
    trunk = shared_trunk()

    response = _post_change(
        client_for(world.sysadmin), trunk, _existing_rows(trunk), host="sanjose3.voip.ms"
    )

    assert response.status_code == 302, _inline_errors(response)
    trunk.refresh_from_db()
    assert trunk.host == "sanjose3.voip.ms"
    assert trunk.sip_password == SIP_PASSWORD


@pytest.mark.django_db
def test_new_sip_password_replaces_the_stored_one(world: World, client_for: ClientFor) -> None:
    trunk = shared_trunk()

    response = _post_change(
        client_for(world.sysadmin), trunk, _existing_rows(trunk), sip_password="New-Pass-0042"
    )

    assert response.status_code == 302, _inline_errors(response)
    trunk.refresh_from_db()
    assert trunk.sip_password == "New-Pass-0042"


@pytest.mark.django_db
def test_typed_sip_password_comes_back_but_never_the_stored_one_when_the_form_has_errors(
    world: World, client_for: ClientFor
) -> None:
    trunk = shared_trunk()
    rows = _existing_rows(trunk)
    rows[0]["did_pool"] = "not-a-pool"

    response = _post_change(client_for(world.sysadmin), trunk, rows, sip_password="Typed-Pass-7781")

    assert response.status_code == 200
    # What was just typed is shown again, so fixing the pool does not lose it (core.forms).
    assert 'value="Typed-Pass-7781"' in response.content.decode()
    assert SIP_PASSWORD not in response.content.decode()
    trunk.refresh_from_db()
    assert trunk.sip_password == SIP_PASSWORD


# --- list and search -----------------------------------------------------------------------


def _column_headers(response: Any) -> list[str]:
    head = response.content.decode().split("<thead>")[1].split("</thead>")[0]
    cells = re.findall(r'<div class="text">(?:<a [^>]*>|<span>)([^<]*)<', head)
    return [html.unescape(cell).strip() for cell in cells if cell.strip()]


def _row_names(response: Any) -> list[str]:
    return re.findall(r'<th class="field-name"><a [^>]*>([^<]*)</a>', response.content.decode())


@pytest.mark.django_db
def test_trunk_list_shows_name_host_enabled_and_tenants(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.sysadmin).get(TRUNKS)

    assert response.status_code == 200
    headers = [header.lower() for header in _column_headers(response)]
    assert headers[:4] == ["trunk name", "hostname or ip address", "enabled", "tenants"]
    assert _row_names(response) == ["Trunk of a.example", "Trunk of b.example", "VoIP.ms San Jose"]
    page = _text(response)
    assert '<td class="field-host">sanjose2.voip.ms</td>' in page
    assert '<td class="field-tenant_names">Tenant A, Tenant B</td>' in page
    assert SIP_PASSWORD not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("San Jose", ["VoIP.ms San Jose"]),
        ("chicago1", ["Trunk of a.example", "Trunk of b.example"]),
        ("Tenant B", ["Trunk of b.example", "VoIP.ms San Jose"]),
        ("Tenant", ["Trunk of a.example", "Trunk of b.example", "VoIP.ms San Jose"]),
        ("nowhere", []),
    ],
)
def test_trunk_list_searches_name_host_and_tenant(
    world: World, client_for: ClientFor, query: str, names: list[str]
) -> None:
    response = client_for(world.sysadmin).get(TRUNKS, {"q": query})

    assert response.status_code == 200
    assert _row_names(response) == names


@pytest.mark.django_db
def test_trunk_list_costs_a_constant_number_of_queries(
    world: World, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    client = client_for(world.sysadmin)
    with CaptureQueriesContext(connection) as few:
        assert client.get(TRUNKS, {"all": ""}).status_code == 200
    for n in range(30):
        trunk = trunk_save(name=f"Bulk trunk {n:02}", host=f"host{n}.voip.ms")
        for tenant, base in ((world.tenant_a, 14155550000), (world.tenant_b, 14155560000)):
            trunk_assignment_save(trunk=trunk, tenant=tenant, did_pool=str(base + n))

    with django_assert_max_num_queries(len(few)):
        response = client.get(TRUNKS, {"all": ""})

    assert len(_row_names(response)) == 33
    assert len(few) <= 12


# --- delete --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deleting_a_trunk_in_use_is_refused_with_a_message(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    trunk = shared_trunk()

    for response in (
        client.get(f"{TRUNKS}{trunk.pk}/delete/", follow=True),
        client.post(f"{TRUNKS}{trunk.pk}/delete/", {"post": "yes"}, follow=True),
    ):
        assert response.redirect_chain == [(_change_url(trunk), 302)]
        shown = [str(message) for message in response.context["messages"]]
        assert shown == [
            "Trunk VoIP.ms San Jose cannot be deleted while these use it: "
            "SMS/MMS configuration 'Factory configuration'"
        ]

    assert Trunk.objects.filter(pk=trunk.pk).exists()


@pytest.mark.django_db
def test_deleting_a_trunk_that_nothing_uses_removes_it(world: World, client_for: ClientFor) -> None:
    trunk = world.objects_a[Trunk]

    response = client_for(world.sysadmin).post(f"{TRUNKS}{trunk.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert response["Location"] == TRUNKS
    assert not Trunk.objects.filter(pk=trunk.pk).exists()
    assert not PoolRange.objects.filter(trunk_id=trunk.pk).exists()


@pytest.mark.django_db
def test_tenant_admin_cannot_open_the_system_trunk_pages(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    for url in (TRUNKS, _change_url(shared_trunk()), f"{TRUNKS}add/"):
        response = client.get(url, follow=True)
        assert response.status_code == 403, url
        assert SIP_PASSWORD not in response.content.decode()


# --- tenant site ---------------------------------------------------------------------------


def _other_tenants_secrets(world: World) -> list[str]:
    b_shared = world.objects_b[TrunkAssignment]
    return [
        POOLS["b.example"],
        OWN_POOLS["b.example"],
        "12125550110",
        "12125550119",
        "16465550105",
        b_shared.did_pool,
        "Trunk of b.example",
        SIP_PASSWORD,
        SIP_USERNAME,
    ]


@pytest.mark.django_db
def test_tenant_trunk_list_shows_host_and_own_pool_only(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).get(TENANT_TRUNKS)

    assert response.status_code == 200
    page = _text(response)
    for shown in (
        "VoIP.ms San Jose",
        "sanjose2.voip.ms",
        POOLS["a.example"],
        "Trunk of a.example",
        "chicago1.voip.ms",
        OWN_POOLS["a.example"],
    ):
        assert shown in page, shown
    for hidden in _other_tenants_secrets(world):
        assert hidden not in page, hidden


@pytest.mark.django_db
def test_tenant_trunk_detail_shows_host_and_own_pool_only(
    world: World, client_for: ClientFor
) -> None:
    assignment = world.objects_a[TrunkAssignment]

    response = client_for(world.admin_a).get(f"{TENANT_TRUNKS}{assignment.pk}/change/")

    assert response.status_code == 200
    page = _text(response)
    for shown in ("VoIP.ms San Jose", "sanjose2.voip.ms", POOLS["a.example"]):
        assert shown in page, shown
    for hidden in _other_tenants_secrets(world):
        assert hidden not in page, hidden
    assert 'name="did_pool"' not in page


@pytest.mark.django_db
def test_tenant_trunk_search_never_finds_another_tenants_pool(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    found = client.get(TENANT_TRUNKS, {"q": "12125550110"})
    own = client.get(TENANT_TRUNKS, {"q": "San Jose"})

    assert "0 trunk assignments" in _text(found) or "0 results" in _text(found)
    assert POOLS["b.example"] not in _text(found)
    assert POOLS["a.example"] in _text(own)


@pytest.mark.django_db
def test_system_admin_managing_a_tenant_sees_that_tenants_pool_only(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    assert client.post(f"/admin/tenants/tenant/{world.tenant_a.pk}/manage/").status_code == 302

    page = _text(client.get(TENANT_TRUNKS))

    assert POOLS["a.example"] in page
    for hidden in _other_tenants_secrets(world):
        assert hidden not in page, hidden


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["change/", "delete/", "history/", ""])
def test_tenant_b_gets_404_on_tenant_as_assignment_pages(
    world: World, client_for: ClientFor, suffix: str
) -> None:
    assignment = world.objects_a[TrunkAssignment]
    client = client_for(world.admin_b)

    response = client.get(f"{TENANT_TRUNKS}{assignment.pk}/{suffix}", follow=True)

    assert response.status_code == 404
    assert POOLS["a.example"] not in _text(response)


@pytest.mark.django_db
def test_tenant_site_offers_no_add_change_or_delete_of_trunks(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    assignment = world.objects_a[TrunkAssignment]

    assert client.get(f"{TENANT_TRUNKS}add/").status_code == 403
    response = client.post(
        f"{TENANT_TRUNKS}{assignment.pk}/change/",
        {"did_pool": "12125550100-12125550119", "max_concurrent_calls": 99},
    )
    assert response.status_code == 403
    assert (
        client.post(f"{TENANT_TRUNKS}{assignment.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assignment.refresh_from_db()
    assert assignment.did_pool == POOLS["a.example"]


@pytest.mark.django_db
def test_tenant_trunk_list_costs_a_constant_number_of_queries(
    world: World, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    client = client_for(world.admin_a)
    with CaptureQueriesContext(connection) as few:
        assert client.get(TENANT_TRUNKS).status_code == 200
    for n in range(12):
        trunk = trunk_save(name=f"Bulk trunk {n:02}", host=f"host{n}.voip.ms")
        trunk_assignment_save(trunk=trunk, tenant=world.tenant_a, did_pool=str(14155550000 + n))

    with django_assert_max_num_queries(len(few)):
        response = client.get(TENANT_TRUNKS)

    assert "Bulk trunk 11" in _text(response)
