"""Usage of a month: the selector, the API, the admin pages with chart and CSV, and the quota."""

from __future__ import annotations

import contextlib
import csv
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import NotAllowed
from sms import usage as usage_module
from sms.models import (
    Direction,
    Kind,
    Message,
    MessageStatus,
    OptOut,
    SmsConfiguration,
    Source,
)
from sms.outbound.send import message_send
from sms.usage import Month, month_parse, quota_check, usage_rows
from tenants.models import Tenant, User
from tenants.services import tenant_update
from tests.factories import World

ClientFor = Callable[[User | None], Client]

DID_A = "+12125550100"
DID_A2 = "+12125550101"
DID_B = "+12125550110"
CONTACT = "+13125550199"
# Tenant A and B keep their default zone, America/New_York (UTC-5 in winter).
FEBRUARY = Month(2026, 2)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def message(
    tenant: Tenant,
    *,
    direction: str,
    did: str,
    created: datetime,
    configuration: SmsConfiguration | None = None,
    **fields: Any,
) -> Message:
    fields.setdefault(
        "status", MessageStatus.ROUTED if direction == Direction.IN else MessageStatus.SENT
    )
    row = Message.objects.create(
        tenant=tenant,
        configuration=configuration,
        direction=direction,
        source=Source.WEBHOOK if direction == Direction.IN else Source.API,
        did=did,
        remote=CONTACT,
        body="x",
        **fields,
    )
    Message.objects.filter(pk=row.pk).update(created_at=created)
    return row


def opt_out(tenant: Tenant, *, did: str, remote: str, created: datetime) -> None:
    row = OptOut.objects.create(tenant=tenant, did=did, remote=remote, keyword="STOP")
    OptOut.objects.filter(pk=row.pk).update(created_at=created)


@pytest.fixture
def traffic(world: World) -> World:
    """Give tenant A a February of traffic on two DIDs, and tenant B some of its own."""
    config_a = world.objects_a[SmsConfiguration]
    config_b = world.objects_b[SmsConfiguration]
    a = world.tenant_a
    mid = at("2026-02-10T15:00:00")
    # In: two messages on DID_A, one of them two segments long.
    message(a, direction=Direction.IN, did=DID_A, created=mid, configuration=config_a)
    message(a, direction=Direction.IN, did=DID_A, created=mid, configuration=config_a, segments=2)
    # Out: a text split in three parts, and an MMS that failed.
    for index in range(3):
        message(
            a,
            direction=Direction.OUT,
            did=DID_A,
            created=mid,
            configuration=config_a,
            segments=3,
            part_index=index,
        )
    message(
        a,
        direction=Direction.OUT,
        did=DID_A2,
        created=mid,
        configuration=config_a,
        kind=Kind.MMS,
        status=MessageStatus.FAILED,
    )
    # 1 March 03:00 UTC is still 28 February in New York; 1 February 04:00 UTC is January there.
    message(
        a, direction=Direction.IN, did=DID_A, created=at("2026-03-01T03:00"), configuration=config_a
    )
    message(
        a, direction=Direction.IN, did=DID_A, created=at("2026-02-01T04:00"), configuration=config_a
    )
    opt_out(a, did=DID_A, remote=CONTACT, created=mid)
    opt_out(a, did=DID_A, remote="+13125550100", created=at("2026-01-15T12:00"))
    # Tenant B: traffic in the same month, never counted for A.
    for _ in range(5):
        message(
            world.tenant_b, direction=Direction.OUT, did=DID_B, created=mid, configuration=config_b
        )
    return world


def _by_did(rows: list[Any]) -> dict[str, dict[str, Any]]:
    return {row["did"]: row for row in rows}


# --- the selector --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_usage_counts_a_months_messages_and_segments_per_configuration_and_did(
    traffic: World,
) -> None:
    rows = {row.did: row for row in usage_rows(tenant=traffic.tenant_a, month=FEBRUARY)}

    assert set(rows) == {DID_A, DID_A2}
    first = rows[DID_A]
    assert first.configuration == "Factory configuration"
    assert first.tenant == "a.example"
    # The message of 1 March 03:00 UTC is February's in New York; that of 1 February 04:00 UTC
    # is January's.
    assert (first.messages_in, first.segments_in) == (3, 4)
    assert (first.messages_out, first.segments_out) == (1, 3)
    assert (first.failed, first.opt_outs) == (0, 1)
    second = rows[DID_A2]
    assert (second.messages_out, second.segments_out, second.failed) == (1, 1, 1)
    assert (second.messages_in, second.opt_outs) == (0, 0)


@pytest.mark.django_db
def test_the_month_is_read_in_the_tenants_time_zone(traffic: World) -> None:
    tenant_update(tenant=traffic.tenant_a, timezone="UTC")

    rows = {row.did: row for row in usage_rows(tenant=traffic.tenant_a, month=FEBRUARY)}

    # In UTC, 1 March 03:00 is March's and 1 February 04:00 is February's.
    assert rows[DID_A].messages_in == 3
    march = usage_rows(tenant=traffic.tenant_a, month=Month(2026, 3))
    assert [(row.did, row.messages_in) for row in march] == [(DID_A, 1)]


@pytest.mark.django_db
def test_an_opt_out_on_a_did_without_messages_has_its_own_row(world: World) -> None:
    opt_out(world.tenant_a, did=DID_A2, remote=CONTACT, created=at("2026-02-10T12:00"))

    rows = usage_rows(tenant=world.tenant_a, month=FEBRUARY)

    assert [(row.did, row.configuration, row.opt_outs) for row in rows] == [(DID_A2, "", 1)]


@pytest.mark.parametrize("value", ["2026-13", "2026-1", "26-01", "january", "2026-00", "1999-12"])
def test_a_malformed_month_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(Exception) as raised:
        month_parse(value)

    assert getattr(raised.value, "field", None) == "month"
    assert raised.value.code == "invalid_month"


def test_months_step_over_the_year() -> None:
    assert str(Month(2026, 12).next) == "2027-01"
    assert str(Month(2026, 1).previous) == "2025-12"
    assert Month(2028, 2).days == 29


# --- the API -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_reads_his_tenants_usage(traffic: World, client_for: ClientFor) -> None:
    response = client_for(traffic.admin_a).get("/api/v1/usage/?month=2026-02")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["month"] == "2026-02"
    assert body["tenant"] == "a.example"
    assert body["quota"] is None
    rows = _by_did(body["results"])
    assert set(rows) == {DID_A, DID_A2}
    assert rows[DID_A]["segments_out"] == 3
    assert body["totals"]["segments_out"] == 4
    assert body["totals"]["failed"] == 1


@pytest.mark.django_db
def test_tenant_b_never_sees_tenant_a_usage(traffic: World, client_for: ClientFor) -> None:
    client = client_for(traffic.admin_b)

    own = client.get("/api/v1/usage/?month=2026-02")
    other = client.get("/api/v1/usage/?month=2026-02", headers={"X-Tenant": "a.example"})

    assert set(_by_did(own.json()["results"])) == {DID_B}
    assert other.status_code == 404


@pytest.mark.django_db
def test_an_extension_user_may_not_read_usage(traffic: World, client_for: ClientFor) -> None:
    response = client_for(traffic.user_a).get("/api/v1/usage/?month=2026-02")

    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("month", ["2026-13", "yesterday", "2026-02-01"])
def test_a_bad_month_is_a_400_naming_month(
    traffic: World, client_for: ClientFor, month: str
) -> None:
    response = client_for(traffic.admin_a).get("/api/v1/usage/", {"month": month})

    assert response.status_code == 400
    assert response.json()["field"] == "month"
    assert response.json()["code"] == "invalid_month"


@pytest.mark.django_db
def test_a_system_admin_gets_every_tenant_or_the_one_he_names(
    traffic: World, client_for: ClientFor
) -> None:
    client = client_for(traffic.sysadmin)

    every = client.get("/api/v1/usage/?month=2026-02").json()
    one = client.get("/api/v1/usage/?month=2026-02", headers={"X-Tenant": "b.example"}).json()

    assert every["tenant"] is None
    assert {(row["tenant"], row["did"]) for row in every["results"]} == {
        ("a.example", DID_A),
        ("a.example", DID_A2),
        ("b.example", DID_B),
    }
    assert every["totals"]["segments_out"] == 9
    assert one["tenant"] == "b.example"
    assert [(row["did"], row["segments_out"]) for row in one["results"]] == [(DID_B, 5)]


@pytest.mark.django_db
def test_the_schema_documents_usage_and_erasure(client_for: ClientFor) -> None:
    schema = client_for(None).get("/api/schema/?format=json").json()

    usage = schema["paths"]["/api/v1/usage/"]["get"]
    assert {p["name"] for p in usage["parameters"]} >= {"month", "X-Tenant"}
    assert {"200", "400", "403"} <= set(usage["responses"])
    erase = schema["paths"]["/api/v1/erase-remote/"]["post"]
    assert {"200", "400", "403"} <= set(erase["responses"])


# --- the admin pages -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_tenant_usage_page_shows_a_chart_and_a_table(
    traffic: World, client_for: ClientFor
) -> None:
    response = client_for(traffic.admin_a).get("/tenant/usage/?month=2026-02")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html
    assert "<rect" in html  # bars: February has traffic
    assert DID_A in html and DID_A2 in html
    assert DID_B not in html
    assert 'href="/tenant/usage/csv/?month=2026-02"' in html


@pytest.mark.django_db
def test_a_bad_month_on_the_page_shows_why_and_the_current_month(
    traffic: World, client_for: ClientFor
) -> None:
    response = client_for(traffic.admin_a).get("/tenant/usage/?month=2026-99")

    assert response.status_code == 200
    assert "month must be written YYYY-MM" in response.content.decode()


@pytest.mark.django_db
def test_the_csv_holds_one_line_per_did(traffic: World, client_for: ClientFor) -> None:
    response = client_for(traffic.admin_a).get("/tenant/usage/csv/?month=2026-02")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "usage-a.example-2026-02.csv" in response["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {line["did"]: line["segments_out"] for line in lines} == {DID_A: "3", DID_A2: "1"}
    assert {line["tenant"] for line in lines} == {"a.example"}


@pytest.mark.django_db
def test_tenant_b_admin_sees_only_his_own_usage_on_the_tenant_site(
    traffic: World, client_for: ClientFor
) -> None:
    client = client_for(traffic.admin_b)

    page = client.get("/tenant/usage/?month=2026-02").content.decode()
    export = client.get("/tenant/usage/csv/?month=2026-02").content.decode()

    assert DID_B in page and DID_B in export
    assert DID_A not in page and DID_A not in export


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/tenant/usage/", "/tenant/usage/csv/", "/admin/usage/", "/admin/usage/csv/"]
)
def test_an_extension_user_is_refused_the_usage_pages(
    world: World, client_for: ClientFor, url: str
) -> None:
    # The admin sends him to its login page, which refuses a signed-in user.
    assert client_for(world.user_a).get(url, follow=True).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/usage/", "/admin/usage/csv/"])
def test_a_tenant_admin_is_refused_the_system_usage_pages(
    world: World, client_for: ClientFor, url: str
) -> None:
    assert client_for(world.admin_a).get(url, follow=True).status_code == 403


@pytest.mark.django_db
def test_the_system_site_shows_every_tenant_with_a_tenant_column(
    traffic: World, client_for: ClientFor
) -> None:
    client = client_for(traffic.sysadmin)

    html = client.get("/admin/usage/?month=2026-02").content.decode()
    lines = list(
        csv.DictReader(io.StringIO(client.get("/admin/usage/csv/?month=2026-02").content.decode()))
    )

    assert "Tenant A" in html and "Tenant B" in html
    assert DID_A in html and DID_B in html
    assert {(line["tenant"], line["did"]) for line in lines} == {
        ("a.example", DID_A),
        ("a.example", DID_A2),
        ("b.example", DID_B),
    }


@pytest.mark.django_db
def test_the_index_pages_link_to_usage(world: World, client_for: ClientFor) -> None:
    tenant_index = client_for(world.admin_a).get("/tenant/").content.decode()
    system_index = client_for(world.sysadmin).get("/admin/").content.decode()

    assert 'href="/tenant/usage/"' in tenant_index
    assert 'href="/tenant/erase-remote/"' in tenant_index
    assert 'href="/admin/usage/"' in system_index


# --- the monthly quota ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_limits(fresh_limits: None) -> None:
    """Every test starts with no send counted and no request slot taken."""


def _sent_this_month(world: World, count: int) -> None:
    for _ in range(count):
        message(
            world.tenant_a,
            direction=Direction.OUT,
            did=DID_A,
            created=timezone.now(),
            configuration=world.objects_a[SmsConfiguration],
        )


def _send(client: Client, body: str = "Your order is ready") -> Any:
    return client.post(
        "/api/v1/messages/",
        {"from": "2125550100", "to": "(312) 555-0199", "body": body},
        content_type="application/json",
    )


@pytest.mark.django_db
def test_a_hard_quota_refuses_a_send_beyond_it_with_a_clear_reason(
    world: World, client_for: ClientFor
) -> None:
    tenant_update(tenant=world.tenant_a, monthly_quota=10, quota_hard=True)
    _sent_this_month(world, 9)
    client = client_for(world.admin_a)

    two_parts = _send(client, "word " * 40)
    one_part = _send(client)
    refused = _send(client)

    assert two_parts.status_code == 403
    assert two_parts.json()["code"] == "quota_exceeded"
    assert "monthly quota of 10" in two_parts.json()["detail"]
    assert one_part.status_code == 202, one_part.content
    assert refused.status_code == 403
    assert Message.objects.for_tenant(world.tenant_a).filter(direction=Direction.OUT).count() == 10


@pytest.mark.django_db
def test_last_months_sends_and_another_tenants_do_not_count(
    world: World, client_for: ClientFor
) -> None:
    tenant_update(tenant=world.tenant_a, monthly_quota=2, quota_hard=True)
    for _ in range(3):
        message(
            world.tenant_a,
            direction=Direction.OUT,
            did=DID_A,
            created=at("2020-01-10T12:00"),
            configuration=world.objects_a[SmsConfiguration],
        )
        message(
            world.tenant_b,
            direction=Direction.OUT,
            did=DID_B,
            created=timezone.now(),
            configuration=world.objects_b[SmsConfiguration],
        )

    assert _send(client_for(world.admin_a)).status_code == 202


@pytest.mark.django_db
def test_a_soft_quota_only_warns(world: World, client_for: ClientFor) -> None:
    tenant_update(tenant=world.tenant_a, monthly_quota=10, quota_hard=False)
    _sent_this_month(world, 12)

    quota_check(tenant=world.tenant_a, segments=1)
    assert _send(client_for(world.admin_a)).status_code == 202
    index = client_for(world.admin_a).get("/tenant/").content.decode()
    assert 'data-testid="quota-warning"' in index
    assert "The monthly quota is used up" in index


@pytest.mark.django_db
def test_the_warning_appears_at_80_percent(world: World, client_for: ClientFor) -> None:
    tenant_update(tenant=world.tenant_a, monthly_quota=10)
    _sent_this_month(world, 7)
    client = client_for(world.admin_a)

    assert 'data-testid="quota-warning"' not in client.get("/tenant/").content.decode()
    _sent_this_month(world, 1)
    index = client.get("/tenant/").content.decode()
    usage = client.get("/tenant/usage/").content.decode()
    assert "The monthly quota is nearly used" in index
    assert "<strong>8</strong> of 10" in index
    assert "Monthly quota nearly used" in usage
    api = client.get("/api/v1/usage/").json()["quota"]
    assert api == {
        "quota": 10,
        "used": 8,
        "percent": 80,
        "hard": False,
        "warning": True,
        "exceeded": False,
    }


@pytest.mark.django_db
def test_the_compose_page_shows_the_quota_refusal(world: World, client_for: ClientFor) -> None:
    tenant_update(tenant=world.tenant_a, monthly_quota=1, quota_hard=True)
    _sent_this_month(world, 1)

    response = client_for(world.admin_a).post(
        "/inbox/compose/", {"from": DID_A, "to": CONTACT, "body": "Hi"}
    )

    assert response.status_code == 400
    assert "monthly quota of 1 SMS segments is used up" in response.content.decode()


@pytest.mark.django_db
def test_a_system_admin_sets_the_quota_and_retention_through_the_tenant_api(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)

    response = client.patch(
        f"/api/v1/admin/tenants/{world.tenant_a.pk}/",
        {"monthly_quota": 500, "quota_hard": True, "retention_days": 90},
        content_type="application/json",
    )
    refused = client.patch(
        f"/api/v1/admin/tenants/{world.tenant_a.pk}/",
        {"retention_days": 0},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    world.tenant_a.refresh_from_db()
    assert (world.tenant_a.monthly_quota, world.tenant_a.quota_hard) == (500, True)
    assert world.tenant_a.retention_days == 90
    assert refused.status_code == 400
    assert "retention_days" in refused.json()["errors"]


@pytest.mark.django_db
def test_a_system_admin_edits_the_quota_in_the_tenant_admin(
    world: World, client_for: ClientFor
) -> None:
    page = client_for(world.sysadmin).get(f"/admin/tenants/tenant/{world.tenant_a.pk}/change/")

    html = page.content.decode()
    assert 'name="monthly_quota"' in html
    assert 'name="quota_hard"' in html
    assert 'name="retention_days"' in html


@pytest.mark.django_db
def test_the_usage_route_answers_with_a_format_suffix(
    traffic: World, client_for: ClientFor
) -> None:
    response = client_for(traffic.admin_a).get("/api/v1/usage.json?month=2026-02")

    assert response.status_code == 200
    assert response.json()["totals"]["segments_in"] == 4


@pytest.mark.django_db
def test_the_tenant_page_costs_the_same_queries_whatever_the_number_of_dids(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    configuration = world.objects_a[SmsConfiguration]
    feb = at("2026-02-10T15:00")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/tenant/usage/?month=2026-02").status_code == 200
        return len(captured)

    message(
        world.tenant_a, direction=Direction.IN, did=DID_A, created=feb, configuration=configuration
    )
    few = queries()
    for n in range(2, 10):
        did = f"+1212555010{n}"
        message(
            world.tenant_a,
            direction=Direction.IN,
            did=did,
            created=feb,
            configuration=configuration,
        )
        opt_out(world.tenant_a, did=did, remote=CONTACT, created=feb)
    assert queries() == few


@pytest.mark.django_db
def test_the_schema_documents_the_quota_refusal_of_a_send(client_for: ClientFor) -> None:
    schema = client_for(None).get("/api/schema/?format=json").json()

    send = schema["paths"]["/api/v1/messages/"]["post"]["responses"]
    assert "quota_exceeded" in send["403"]["description"]


@pytest.mark.django_db(transaction=True)
def test_two_sends_at_once_cannot_both_take_the_last_segment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.tasks.publish", lambda *args, **kwargs: None)
    tenant_update(tenant=world.tenant_a, monthly_quota=1, quota_hard=True)
    both_counted = threading.Barrier(2)
    real_count = usage_module.outbound_segments_in_month

    def count_then_wait_for_the_other(**kwargs: Any) -> int:
        used = real_count(**kwargs)
        # Without the tenant's row lock both sends count 0 here and pass the barrier together;
        # with it the second waits for the first to commit, and the barrier gives up.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_counted.wait(timeout=3)
        return used

    monkeypatch.setattr(usage_module, "outbound_segments_in_month", count_then_wait_for_the_other)

    def send(_: int) -> str:
        try:
            message_send(
                user=world.admin_a,
                tenant=Tenant.objects.get(pk=world.tenant_a.pk),
                to="3125550199",
                did="2125550100",
                body="Last one",
                source=Source.API,
            )
        except NotAllowed as error:
            return error.code
        finally:
            connection.close()
        return "sent"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(send, range(2)))

    assert outcomes == ["quota_exceeded", "sent"]
    assert Message.objects.for_tenant(world.tenant_a).count() == 1


@pytest.mark.django_db
def test_the_usage_page_says_how_long_messages_are_kept(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    assert "are kept for ever." in client.get("/tenant/usage/").content.decode()

    tenant_update(tenant=world.tenant_a, retention_days=90)

    assert "are kept for 90 days." in client.get("/tenant/usage/").content.decode()
