"""From on the compose page for big pools: the sender search endpoint and the search box."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sms.configurations import sms_configuration_update
from sms.models import LongMessagePolicy, Message, SmsConfiguration
from sms.outbound.rules import sms_caller_id_save
from sms.outbound.send import sender_did_count_for_user, sender_dids_matching
from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import Extension, SmsPermission, User
from tests.factories import POOLS, World, shared_trunk
from tests.tasks import TaskRecorder
from trunks.models import PoolRange
from trunks.selectors import tenant_pool_numbers_containing
from trunks.services import trunk_assignment_save

ClientFor = Callable[[User | None], Client]

COMPOSE = "/inbox/compose/"
SENDERS = "/inbox/compose/senders/"
CONTACT = "+15145550123"
POOL_A = [f"+1212555010{n}" for n in range(10)]
# Two more ranges of tenant A on the shared trunk: the first crosses 0999 -> 1000, so a prefix
# such as 1312555100 starts inside it; the second is far away and alone.
EXTRA = "13125550998-13125551001;13125552000-13125552000"
OPTION = re.compile(r'<option value="(\+\d+)"')
EXTRA_LAST = "+13125552000"
AREAS = [201, 202, 203, 205, 206, 207, 208, 209, 210, 213]
AREAS += [214, 215, 216, 217, 218, 219, 224, 225, 228, 229]


@pytest.fixture
def no_tasks() -> Iterator[TaskRecorder]:
    with mock.patch("core.tasks.publish", TaskRecorder("sms.deliver_message")) as delay:
        yield delay


def pool_a(world: World, extra: str) -> None:
    """Give tenant A its usual ten numbers plus `extra` on the shared, configured trunk."""
    trunk_assignment_save(
        trunk=shared_trunk(), tenant=world.tenant_a, did_pool=f"{POOLS['a.example']};{extra}"
    )


def search(client: Client, q: str | None) -> dict[str, Any]:
    response = client.get(SENDERS, {} if q is None else {"q": q})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def dids(client: Client, q: str | None) -> list[str]:
    return [sender["did"] for sender in search(client, q)["senders"]]


def brute_force(world: World, digits: str, limit: int) -> list[str]:
    """Return what the search must find, by expanding every configured range of tenant A."""
    numbers = []
    trunk_ids = SmsConfiguration.objects.for_tenant(world.tenant_a).values_list("trunk_id")
    for start, end in (
        PoolRange.objects.for_tenant(world.tenant_a)
        .filter(trunk_id__in=trunk_ids)
        .values_list("start", "end")
    ):
        numbers.extend(str(n) for n in range(start, end + 1))
    return [f"+{n}" for n in sorted(set(numbers)) if digits in n][:limit]


# --- matching ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # A prefix of the national number and of E.164, across the end of one range into the
        # next, in ascending order.
        ("312555", ["+13125550998", "+13125550999", "+13125551000", "+13125551001", EXTRA_LAST]),
        ("1312555100", ["+13125551000", "+13125551001"]),
        ("31255509", ["+13125550998", "+13125550999"]),
        # Digits anywhere: the last four, or the middle.
        ("0999", ["+13125550999"]),
        ("5552", ["+13125552000"]),
        ("2000", ["+13125552000"]),
        # Formatting is ignored.
        ("+1 (312) 555-1000", ["+13125551000"]),
        ("312.555.0998", ["+13125550998"]),
        ("  312 555 2000 ", ["+13125552000"]),
        # Nothing pooled holds these digits; letters and over-long numbers match nothing.
        ("3125553", []),
        ("312555abc", []),
        ("x", []),
        ("131255510001", []),
    ],
)
def test_the_search_finds_the_numbers_holding_the_typed_digits(
    world: World, client_for: ClientFor, q: str, expected: list[str]
) -> None:
    pool_a(world, EXTRA)

    assert dids(client_for(world.admin_a), q) == expected


@pytest.mark.django_db
def test_the_search_agrees_with_expanding_every_range(world: World) -> None:
    pool_a(world, f"{EXTRA};16175550000-16175551234;19025550995-19025551010")
    queries = ["", "0", "1", "9", "00", "55", "555", "100", "0100", "6175550", "90255510", "2"]
    queries += ["12125550105", "2125550105", "1617555", "0999", "175551", "5550", "12", "99"]

    for digits in queries:
        for limit in (1, 20, 2000):
            assert tenant_pool_numbers_containing(
                tenant=world.tenant_a,
                trunk_ids=[shared_trunk().pk],
                digits=digits,
                limit=limit,
            ) == brute_force(world, digits, limit), (digits, limit)


@pytest.mark.django_db
def test_an_empty_query_lists_the_first_twenty_numbers_and_says_there_are_more(
    world: World, client_for: ClientFor
) -> None:
    pool_a(world, "13125550000-13125550099")
    client = client_for(world.admin_a)

    for q in (None, "", " ", "+"):
        data = search(client, q)
        assert [sender["did"] for sender in data["senders"]] == (
            POOL_A + [f"+131255500{n:02}" for n in range(10)]
        )
        assert data["more"] is True


@pytest.mark.django_db
def test_at_most_twenty_suggestions_and_more_only_when_there_are(
    world: World, client_for: ClientFor
) -> None:
    pool_a(world, "13125550000-13125550099;13125551000-13125551019")
    client = client_for(world.admin_a)

    hundred = search(client, "3125550")
    twenty = search(client, "3125551")
    ten = search(client, "1312555001")

    assert hundred["senders"][-1]["did"] == "+13125550019"
    assert (len(hundred["senders"]), hundred["more"]) == (20, True)
    assert (len(twenty["senders"]), twenty["more"]) == (20, False)
    assert (len(ten["senders"]), ten["more"]) == (10, False)


@pytest.mark.django_db
def test_each_suggestion_carries_its_configurations_channel_and_policy(
    world: World, client_for: ClientFor
) -> None:
    sms_configuration_update(
        configuration=world.objects_a[SmsConfiguration],
        actor=None,
        channel="mms",
        long_message_policy=LongMessagePolicy.MMS,
    )

    senders = search(client_for(world.admin_a), "2125550107")["senders"]

    assert senders == [
        {"did": "+12125550107", "channel": "mms", "long_message_policy": LongMessagePolicy.MMS}
    ]


@pytest.mark.django_db
def test_the_search_costs_the_same_queries_whatever_the_size_of_the_pool(
    world: World, client_for: ClientFor, django_assert_num_queries: Any
) -> None:
    client = client_for(world.admin_a)
    with CaptureQueriesContext(connection) as small:
        assert len(dids(client, "5")) == 10
    # Twenty ranges of 10,000 numbers each: 200,000 numbers, none of them expanded.
    pool_a(world, ";".join(f"1{area}5550000-1{area}5559999" for area in AREAS))

    with django_assert_num_queries(len(small.captured_queries)):
        found = dids(client, "9999")
    assert found == [f"+1{area}5559999" for area in AREAS]


# --- who finds what ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_extension_user_finds_only_his_caller_ids(world: World, client_for: ClientFor) -> None:
    pool_a(world, EXTRA)
    Extension.objects.filter(user=world.user_a).update(
        sms_permission=SmsPermission.ALLOW_WITH_SENDER_ID
    )
    for did in ("12125550105", "13125551000"):
        sms_caller_id_save(
            tenant=world.tenant_a, extension=world.user_a.extension, trunk=shared_trunk(), did=did
        )
    client = client_for(world.user_a)

    assert dids(client, "") == ["+12125550105", "+13125551000"]
    assert dids(client, "212 555 01") == ["+12125550105"]
    assert dids(client, "1000") == ["+13125551000"]
    assert dids(client, "0998") == []
    assert len(dids(client_for(world.admin_a), "212 555 01")) == 10


@pytest.mark.django_db
def test_an_extension_without_permission_finds_nothing(world: World, client_for: ClientFor) -> None:
    sms_caller_id_save(
        tenant=world.tenant_a,
        extension=world.user_a.extension,
        trunk=shared_trunk(),
        did="12125550105",
    )
    Extension.objects.filter(user=world.user_a).update(sms_permission=SmsPermission.DISABLE)

    assert dids(client_for(world.user_a), "") == []


@pytest.mark.django_db
def test_tenant_b_admin_never_finds_tenant_a_numbers(world: World, client_for: ClientFor) -> None:
    pool_a(world, EXTRA)
    client = client_for(world.admin_b)
    pool_b = [f"+1212555011{n}" for n in range(10)]

    for q in ("2125550105", "+12125550105", "212555010", "312555", "0998", "1000"):
        assert dids(client, q) == [], q
    assert dids(client, "") == pool_b
    assert dids(client, "21255501") == pool_b
    assert all(number in pool_b for number in dids(client, "0"))


@pytest.mark.django_db
def test_numbers_on_a_trunk_without_an_enabled_configuration_are_not_found(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    # Tenant A's own trunk holds 16465550100-104 and has no configuration.
    assert dids(client, "646555") == []
    SmsConfiguration.objects.filter(pk=world.objects_a[SmsConfiguration].pk).update(enabled=False)

    assert dids(client, "") == []


@pytest.mark.django_db
def test_a_system_admin_finds_the_numbers_of_the_tenant_he_manages_only(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    assert search(client, "") == {"senders": [], "more": False}
    session = client.session
    session[MANAGED_TENANT_SESSION_KEY] = world.tenant_a.pk
    session.save()

    assert dids(client, "") == POOL_A


@pytest.mark.django_db
def test_anonymous_is_sent_to_the_login_page(client_for: ClientFor) -> None:
    response = client_for(None).get(SENDERS, {"q": "212"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_search_answers_only_get(world: World, client_for: ClientFor) -> None:
    assert client_for(world.admin_a).post(SENDERS, {"q": "212"}).status_code == 405


# --- a list or a search box ----------------------------------------------------------------------


@pytest.mark.django_db
def test_two_hundred_numbers_are_still_a_list(world: World, client_for: ClientFor) -> None:
    pool_a(world, "13125550000-13125550189")

    html = client_for(world.admin_a).get(COMPOSE).content.decode()

    assert len(OPTION.findall(html)) == 200
    assert '<select name="from"' in html
    assert 'role="combobox"' not in html
    assert sender_did_count_for_user(user=world.admin_a, tenant=world.tenant_a) == 200


@pytest.mark.django_db
def test_more_than_two_hundred_numbers_make_from_a_search_box(
    world: World, client_for: ClientFor
) -> None:
    pool_a(world, "13125550000-13125550190")

    with mock.patch("trunks.selectors.tenant_pool_numbers") as expand:
        html = client_for(world.admin_a).get(COMPOSE).content.decode()

    expand.assert_not_called()
    assert sender_did_count_for_user(user=world.admin_a, tenant=world.tenant_a) == 201
    assert "<select" not in html
    assert OPTION.findall(html) == []
    field = re.search(r'<input type="text" name="from" id="compose-from"[^>]*>', html)
    assert field is not None
    for attribute in (
        'value=""',
        "required",
        'role="combobox"',
        'aria-autocomplete="list"',
        'aria-expanded="false"',
        'aria-controls="compose-from-list"',
        'aria-describedby="compose-from-hint"',
        f'data-search-url="{SENDERS}"',
        'data-media="compose-media"',
    ):
        assert attribute in field.group(0)
    assert 'id="compose-from-list" class="sender-suggestions" role="listbox"' in html
    assert '<label for="compose-from">From</label>' in html
    assert "Search your 201 numbers: type digits found anywhere in the number" in html
    assert 'data-sender="compose-from"' in html


@pytest.mark.django_db
def test_an_extension_user_with_few_caller_ids_keeps_the_list(
    world: World, client_for: ClientFor
) -> None:
    pool_a(world, "13125550000-13125550999")
    sms_caller_id_save(
        tenant=world.tenant_a,
        extension=world.user_a.extension,
        trunk=shared_trunk(),
        did="13125550500",
    )

    html = client_for(world.user_a).get(COMPOSE).content.decode()

    assert OPTION.findall(html) == ["+13125550500"]
    assert 'role="combobox"' not in html


@pytest.mark.django_db
def test_the_search_box_keeps_a_refused_number_as_typed(
    world: World, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    pool_a(world, "13125550000-13125550999")

    response = client_for(world.admin_a).post(
        COMPOSE, {"from": "312 555", "to": CONTACT, "body": "Hi"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'name="from" id="compose-from" value="312 555"' in html
    assert 'aria-describedby="compose-from-hint error-from"' in html
    assert 'id="error-from">' in html
    assert "data-chosen" not in html
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_the_search_box_keeps_the_chosen_numbers_settings_after_another_error(
    world: World, client_for: ClientFor
) -> None:
    pool_a(world, "13125550000-13125550999")
    sms_configuration_update(
        configuration=world.objects_a[SmsConfiguration], actor=None, channel="mms"
    )

    response = client_for(world.admin_a).post(
        COMPOSE, {"from": "+13125550777", "to": "not a number", "body": "Hi"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-chosen="+13125550777" data-channel="mms" data-long-message-policy="split"' in html
    assert 'data-testid="media-fields">' in html  # shown, not hidden: the number sends MMS


@pytest.mark.django_db
def test_an_admin_sends_from_a_number_beyond_the_first_two_hundred(
    world: World, client_for: ClientFor, no_tasks: TaskRecorder
) -> None:
    pool_a(world, "13125550000-13125550999")

    response = client_for(world.admin_a).post(
        COMPOSE, {"from": "(312) 555-0777", "to": CONTACT, "body": "Hi"}
    )

    message = Message.objects.get()
    assert response.status_code == 302
    assert (message.tenant, message.did, message.remote) == (
        world.tenant_a,
        "+13125550777",
        CONTACT,
    )


@pytest.mark.django_db
def test_the_service_matches_what_the_endpoint_serves(world: World) -> None:
    pool_a(world, EXTRA)

    assert sender_dids_matching(
        user=world.admin_a, tenant=world.tenant_a, query="(312) 555", limit=3
    ) == ["+13125550998", "+13125550999", "+13125551000"]
