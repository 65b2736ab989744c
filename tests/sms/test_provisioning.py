"""VoIP.ms provisioning of a configuration: list the account's DIDs, add them to the tenant's
pool, point them at the configuration's webhook with setSMS, and verify their number format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core import limits as portal_limits
from core.errors import ApplicationError
from sms.models import DidPointing, SmsConfiguration, VerificationStatus
from sms.provisioning import did_pointing_start, did_pool_add
from sms.sweep import pointings_sweep
from sms.tasks import point_dids, verify_configuration
from tests.factories import World
from tests.sms.helpers import API_PASSWORD, make_configuration
from tests.tasks import TaskRecorder
from trunks.models import TrunkAssignment
from trunks.voipms.sandbox.models import NumberFormat, SandboxDid
from trunks.voipms.sandbox.services import (
    sandbox_account_ensure,
    sandbox_did_configure,
    sandbox_message_send,
)

USERNAME = "owner@example.com"
# Tenant A's pool on the shared trunk is +12125550100 to +12125550109, tenant B's ...110 to ...119.
ACCOUNT_DIDS = ["2125550100", "2125550101", "2125550102", "2125550103", "2125550110", "2125550120"]


@pytest.fixture(autouse=True)
def _free_set_sms_slots() -> None:
    """Start each test with every DID's setSMS minute free."""
    store = portal_limits.limits()
    if isinstance(store, portal_limits.RedisLimits):
        keys = list(store.client.scan_iter("limits:interval:*", count=1000))
        if keys:
            store.client.delete(*keys)
    else:
        store.intervals.clear()


@pytest.fixture
def sandboxed(world: World, live_server: Any, settings: Any) -> SmsConfiguration:
    settings.VOIPMS_API_URL = f"{live_server.url}/sandbox/voipms/api/v1/rest.php"
    configuration = make_configuration(world.tenant_a, username=USERNAME)
    sandbox_account_ensure(username=USERNAME, api_password=API_PASSWORD, dids=ACCOUNT_DIDS)
    sandbox_did_configure(did="2125550100", webhook_url=configuration.webhook_url)
    sandbox_did_configure(
        did="2125550101",
        webhook_url="https://old.example.com/hook",
        webhook_enabled=False,
        sms_enabled=False,
        email_address="desk@example.com",
        email_enabled=True,
        forward_to="3125550100",
        forward_enabled=True,
        callback_url="https://old.example.com/cb?from={FROM}",
        callback_enabled=True,
        callback_retry=True,
    )
    sandbox_did_configure(did="2125550103", sms_available=False, sms_enabled=False)
    return configuration


def _url(configuration: SmsConfiguration, tail: str) -> str:
    return f"/api/v1/sms-configurations/{configuration.pk}/{tail}"


def _point(client: Client, configuration: SmsConfiguration, dids: Any) -> HttpResponse:
    return client.post(
        _url(configuration, "point-dids/"), {"dids": dids}, content_type="application/json"
    )


# --- listing -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_api_lists_the_accounts_dids_with_flags_pool_and_webhook(
    sandboxed: SmsConfiguration, world: World, client_for: Any
) -> None:
    response = client_for(world.admin_a).get(_url(sandboxed, "dids/"))

    assert response.status_code == 200
    rows = {row["did"]: row for row in response.json()["results"]}
    assert response.json()["count"] == len(ACCOUNT_DIDS)
    assert sorted(rows) == sorted(f"+1{did}" for did in ACCOUNT_DIDS)
    assert rows["+12125550100"]["points_here"] is True
    assert rows["+12125550100"]["webhook"] == sandboxed.webhook_url
    assert rows["+12125550101"] | {"description": ""} == {
        "did": "+12125550101",
        "description": "",
        "sms_available": True,
        "sms_enabled": False,
        "mms_available": True,
        "webhook": "https://old.example.com/hook",
        "webhook_enabled": False,
        "points_here": False,
        "in_pool": True,
    }
    assert rows["+12125550110"]["in_pool"] is False  # tenant B's number
    assert rows["+12125550120"]["in_pool"] is False  # in nobody's pool
    assert rows["+12125550103"]["sms_available"] is False


@pytest.mark.django_db(transaction=True)
def test_listing_reports_a_voipms_refusal_in_plain_words(
    sandboxed: SmsConfiguration, world: World, client_for: Any
) -> None:
    SmsConfiguration.objects.filter(pk=sandboxed.pk).update(api_password="wrong")
    response = client_for(world.admin_a).get(_url(sandboxed, "dids/"))
    assert response.status_code == 502
    assert response.json()["code"] == "invalid_credentials"
    assert "API password" in response.json()["detail"]
    assert "wrong" not in response.content.decode()


# --- pointing, end to end against the sandbox ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pointing_resends_every_setting_and_reports_what_changed(
    sandboxed: SmsConfiguration, world: World, client_for: Any, published: TaskRecorder
) -> None:
    client = client_for(world.admin_a)
    response = _point(client, sandboxed, ["+12125550101", "2125550100", "2125550103"])

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert [row["ok"] for row in body["results"]] == [None, None, None]
    assert response["Location"].endswith(f"point-dids/{body['id']}/")
    assert published.ids("sms.point_dids") == [body["id"]]

    point_dids(body["id"])

    done = client.get(_url(sandboxed, f"point-dids/{body['id']}/")).json()
    assert done["status"] == "done"
    results = {row["did"]: row for row in done["results"]}
    assert results["+12125550101"]["ok"] is True
    assert results["+12125550101"]["code"] == "pointed"
    assert (
        "SMS/MMS webhook URL: https://old.example.com/hook → "
        in (results["+12125550101"]["detail"])
    )
    changed = {change["setting"] for change in results["+12125550101"]["changes"]}
    assert changed == {"sms_enabled", "webhook_enabled", "webhook"}
    assert results["+12125550100"]["ok"] is True
    assert results["+12125550100"]["code"] == "unchanged"
    assert results["+12125550103"]["ok"] is False
    assert results["+12125550103"]["code"] == "sms_not_available"

    did = SandboxDid.objects.get(did="2125550101")
    assert did.webhook_url == sandboxed.webhook_url
    assert (did.webhook_enabled, did.sms_enabled) == (True, True)
    # The flags setSMS would have switched off were sent again.
    assert (did.email_enabled, did.forward_enabled) == (True, True)
    assert (did.callback_enabled, did.callback_retry) == (True, True)
    assert did.callback_url == "https://old.example.com/cb?from={FROM}"
    assert did.number_format == NumberFormat.NANPA

    listed = client.get(_url(sandboxed, "dids/")).json()["results"]
    assert {row["did"] for row in listed if row["points_here"]} == {
        "+12125550100",
        "+12125550101",
    }


@pytest.mark.django_db(transaction=True)
def test_a_did_written_less_than_a_minute_ago_waits_for_its_slot(
    sandboxed: SmsConfiguration, world: World, published: TaskRecorder
) -> None:
    first = did_pointing_start(configuration=sandboxed, dids=["2125550102"], actor=world.admin_a)
    point_dids(first.pk)
    second = did_pointing_start(
        configuration=sandboxed, dids=["2125550102", "2125550101"], actor=world.admin_a
    )
    published.reset_mock()

    point_dids(second.pk)

    second.refresh_from_db()
    assert second.status == "waiting"
    results = {r.did: r for r in second.results.all()}
    assert results["+12125550102"].ok is None  # waits: written a moment ago
    assert results["+12125550101"].ok is True  # its own minute was free
    [(name, args, _kwargs, countdown)] = published.calls
    assert (name, args) == ("sms.point_dids", (second.pk,))
    assert countdown is not None and 50 < countdown <= 61
    # Running it again before the slot is free changes nothing and waits again.
    point_dids(second.pk)
    assert DidPointing.objects.get(pk=second.pk).runs == 2
    assert second.results.get(did="+12125550102").ok is None


@pytest.mark.django_db(transaction=True)
def test_a_did_voipms_still_refuses_after_ten_runs_is_given_up(
    sandboxed: SmsConfiguration, world: World, published: TaskRecorder
) -> None:
    sandbox_did_configure(did="2125550102", webhook_url="https://x.example/")
    SandboxDid.objects.filter(did="2125550102").update(
        sms_settings_changed_at=timezone.now() + dt.timedelta(hours=1)
    )
    pointing = did_pointing_start(configuration=sandboxed, dids=["2125550102"], actor=None)
    DidPointing.objects.filter(pk=pointing.pk).update(runs=9)

    point_dids(pointing.pk)

    result = pointing.results.get()
    assert (result.ok, result.code) == (False, "sms_wait_message")
    assert DidPointing.objects.get(pk=pointing.pk).status == "done"


# --- the re-read catches what "success" hid ------------------------------------------------------


def _row(**changes: Any) -> dict[str, Any]:
    row = {
        "did": "2125550104",
        "sms_available": "1",
        "sms_enabled": "1",
        "mms_available": "1",
        "sms_email": "desk@example.com",
        "sms_email_enabled": "1",
        "sms_forward": "",
        "sms_forward_enabled": "0",
        "sms_url_callback": "",
        "sms_url_callback_enabled": "0",
        "sms_url_callback_retry": "0",
        "webhook": "https://old.example.com/hook",
        "webhook_enabled": "1",
    }
    row.update(changes)
    return row


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("after", "code", "words"),
    [
        ({"sms_email_enabled": "0"}, "settings_lost", "SMS to e-mail: on → off"),
        ({"webhook_enabled": "0"}, "not_applied", "SMS/MMS webhook: on → off"),
        ({"webhook": "https://old.example.com/hook"}, "not_applied", "webhook URL"),
    ],
)
def test_a_success_that_did_not_stick_is_reported_per_did(
    world: World,
    published: TaskRecorder,
    mocked: responses.RequestsMock,
    after: dict[str, str],
    code: str,
    words: str,
) -> None:
    configuration = make_configuration(world.tenant_a, username=USERNAME)
    url = django_settings.VOIPMS_API_URL
    mocked.post(url, json={"status": "success", "dids": [_row()]})
    mocked.post(url, json={"status": "success"})
    pointed = {"webhook": configuration.webhook_url, **after}
    mocked.post(url, json={"status": "success", "dids": [_row(**pointed)]})
    pointing = did_pointing_start(configuration=configuration, dids=["2125550104"], actor=None)

    point_dids(pointing.pk)

    result = pointing.results.get()
    assert (result.ok, result.code) == (False, code)
    assert words in result.detail
    assert len(mocked.calls) == 3


@pytest.mark.django_db
def test_a_write_whose_answer_was_lost_is_judged_by_reading_the_did_back(
    world: World, published: TaskRecorder, mocked: responses.RequestsMock
) -> None:
    configuration = make_configuration(world.tenant_a, username=USERNAME)
    url = django_settings.VOIPMS_API_URL
    mocked.post(url, json={"status": "success", "dids": [_row()]})
    mocked.post(url, body=requests.ReadTimeout("the answer was lost"))
    mocked.post(url, json={"status": "success", "dids": [_row(webhook=configuration.webhook_url)]})
    pointing = did_pointing_start(configuration=configuration, dids=["2125550104"], actor=None)

    point_dids(pointing.pk)

    result = pointing.results.get()
    assert (result.ok, result.code) == (True, "pointed")
    assert [c["setting"] for c in result.changes] == ["webhook"]


@pytest.mark.django_db
def test_a_busy_voipms_makes_the_request_wait_instead_of_failing(
    world: World,
    published: TaskRecorder,
    mocked: responses.RequestsMock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    configuration = make_configuration(world.tenant_a, username=USERNAME)
    mocked.post(django_settings.VOIPMS_API_URL, json={"status": "api_limit_exceeded"})
    pointing = did_pointing_start(configuration=configuration, dids=["2125550104"], actor=None)

    with django_capture_on_commit_callbacks(execute=True):
        point_dids(pointing.pk)

    pointing.refresh_from_db()
    assert pointing.status == "waiting"
    assert pointing.results.get().ok is None
    [(_name, args, _kwargs, countdown)] = published.calls
    assert (args, countdown) == ((pointing.pk,), 61.0)


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("dids", "code"),
    [
        (["+12125550110"], "not_in_pool"),  # tenant B's number
        (["2125550120"], "not_in_pool"),
        (["not a number"], "invalid"),
        ([], "invalid"),
        ("2125550100", "invalid"),
        ([["2125550100"]], "invalid"),
    ],
)
def test_pointing_refuses_numbers_outside_the_pool_and_bad_input(
    world: World, client_for: Any, published: TaskRecorder, dids: Any, code: str
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    response = _point(client_for(world.admin_a), configuration, dids)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not DidPointing.objects.exists()
    published.assert_not_called()


@pytest.mark.django_db
def test_tenant_b_cannot_list_point_or_read_tenant_a_dids(
    world: World, client_for: Any, published: TaskRecorder
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    pointing = did_pointing_start(configuration=configuration, dids=["2125550100"], actor=None)
    intruder = client_for(world.admin_b)
    assert intruder.get(_url(configuration, "dids/")).status_code == 404
    response = _point(intruder, configuration, ["2125550110"])
    assert response.status_code == 404
    assert intruder.get(_url(configuration, f"point-dids/{pointing.pk}/")).status_code == 404
    # Nor through its own configuration.
    own = world.objects_b[SmsConfiguration]
    assert intruder.get(_url(own, f"point-dids/{pointing.pk}/")).status_code == 404
    assert DidPointing.objects.count() == 1


@pytest.mark.django_db
def test_extension_users_cannot_list_or_point_dids(world: World, client_for: Any) -> None:
    configuration = world.objects_a[SmsConfiguration]
    user = client_for(world.user_a)
    assert user.get(_url(configuration, "dids/")).status_code == 403
    response = _point(user, configuration, ["2125550100"])
    assert response.status_code == 403
    assert not DidPointing.objects.exists()


@pytest.mark.django_db
def test_pointing_is_refused_when_message_channels_are_off(world: World, client_for: Any) -> None:
    world.tenant_a.message_channels_enabled = False
    world.tenant_a.save(update_fields=["message_channels_enabled"])
    configuration = world.objects_a[SmsConfiguration]
    response = _point(client_for(world.admin_a), configuration, ["2125550100"])
    assert response.status_code == 403
    assert not DidPointing.objects.exists()


# --- adding listed DIDs to the tenant's pool -----------------------------------------------------


@pytest.mark.django_db
def test_listed_dids_join_the_tenants_pool_but_never_another_tenants_numbers(
    world: World,
) -> None:
    configuration = world.objects_a[SmsConfiguration]

    assignment = did_pool_add(
        configuration=configuration, dids=["2125550120", "+12125550121"], actor=world.sysadmin
    )

    assert assignment.did_pool == "12125550100-12125550109;12125550120-12125550121"
    with pytest.raises(ApplicationError) as caught:
        did_pool_add(configuration=configuration, dids=["2125550115"], actor=world.sysadmin)
    assert caught.value.code == "did_pool_overlap"
    assert TrunkAssignment.objects.get(pk=assignment.pk).did_pool.endswith("12125550121")


# --- verify compares number formats --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_verify_reports_a_did_whose_number_format_differs(sandboxed: SmsConfiguration) -> None:
    sandbox_did_configure(did="2125550100", number_format=NumberFormat.E164)
    account = SandboxDid.objects.get(did="2125550100").account
    for did in ("2125550100", "2125550102"):
        sandbox_message_send(
            account=account, kind="sms", did=did, contact="3125550100", message="hi", media=[]
        )

    verify_configuration(sandboxed.pk)

    sandboxed.refresh_from_db()
    assert sandboxed.verification_status == VerificationStatus.WARNING
    formats = {d["did"]: d["number_format"] for d in sandboxed.verification_result["dids"]}
    assert formats["+12125550100"] == "e164"
    assert formats["+12125550102"] == "nanpa"
    assert formats["+12125550101"] is None  # no history: unknown, not reported
    [warning] = [w for w in sandboxed.verification_result["warnings"] if "format" in w]
    assert "+12125550100" in warning
    assert "+12125550102" not in warning


@pytest.mark.django_db(transaction=True)
def test_pointing_sets_the_configurations_number_format(
    sandboxed: SmsConfiguration, world: World, published: TaskRecorder
) -> None:
    sandbox_did_configure(did="2125550102", number_format=NumberFormat.E164)
    pointing = did_pointing_start(configuration=sandboxed, dids=["2125550102"], actor=None)
    point_dids(pointing.pk)
    assert SandboxDid.objects.get(did="2125550102").number_format == NumberFormat.NANPA


# --- pages ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_tenant_page_lists_the_dids_and_its_form_points_them(
    sandboxed: SmsConfiguration, world: World, client_for: Any, published: TaskRecorder
) -> None:
    client = client_for(world.admin_a)
    page_url = reverse("tenant:sms_smsconfiguration_dids", args=[sandboxed.pk])
    details = client.get(reverse("tenant:sms_smsconfiguration_details", args=[sandboxed.pk]))
    assert page_url in details.content.decode()

    page = client.get(page_url)

    assert page.status_code == 200
    text = page.content.decode()
    assert 'value="+12125550101"' in text  # in the pool, with SMS: can be pointed
    assert 'value="+12125550110"' not in text  # tenant B's number
    assert 'value="+12125550103"' not in text  # no SMS at VoIP.ms
    assert "this configuration" in text  # +12125550100 points here
    assert "<script>" not in text and "style=" not in text
    assert API_PASSWORD not in text

    response = client.post(
        reverse("tenant:sms_smsconfiguration_point_dids", args=[sandboxed.pk]),
        {"dids": ["+12125550101"]},
    )
    assert response.status_code == 302
    pointing = DidPointing.objects.get()
    point_dids(pointing.pk)

    text = client.get(page_url).content.decode()
    assert 'data-testid="pointing-results"' in text
    assert "SMS/MMS webhook URL: https://old.example.com/hook →" in text
    assert SandboxDid.objects.get(did="2125550101").webhook_url == sandboxed.webhook_url


@pytest.mark.django_db
def test_the_tenant_page_refuses_bad_choices_with_a_message(
    world: World, client_for: Any, published: TaskRecorder
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    response = client_for(world.admin_a).post(
        reverse("tenant:sms_smsconfiguration_point_dids", args=[configuration.pk]),
        {"dids": ["+12125550110"]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Not in this tenant&#x27;s DID pool" in response.content.decode()
    assert not DidPointing.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("voipms_dids")
def test_tenant_b_and_extension_users_cannot_open_or_post_tenant_a_did_pages(
    world: World, client_for: Any
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    page = reverse("tenant:sms_smsconfiguration_dids", args=[configuration.pk])
    post = reverse("tenant:sms_smsconfiguration_point_dids", args=[configuration.pk])
    intruder = client_for(world.admin_b)
    assert intruder.get(page).status_code == 404
    assert intruder.post(post, {"dids": ["2125550100"]}).status_code == 404
    user = client_for(world.user_a)
    assert user.get(page).status_code in (302, 403)
    assert user.post(post, {"dids": ["2125550100"]}).status_code in (302, 403)
    assert not DidPointing.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_system_page_adds_listed_dids_to_the_tenants_pool(
    sandboxed: SmsConfiguration, world: World, client_for: Any
) -> None:
    client = client_for(world.sysadmin)
    url = reverse("admin:voipms_dids")

    page = client.get(url, {"configuration": sandboxed.pk})

    text = page.content.decode()
    assert page.status_code == 200
    assert 'value="+12125550120"' in text  # in nobody's pool
    assert 'value="+12125550110"' not in text  # tenant B's already
    assert "<td>Tenant B</td>" in text  # who holds +12125550110
    response = client.post(url, {"configuration": sandboxed.pk, "dids": ["+12125550120"]})
    assert response.status_code == 302
    assignment = TrunkAssignment.objects.get(tenant=world.tenant_a, trunk=sandboxed.trunk)
    assert assignment.did_pool == "12125550100-12125550109;12125550120"

    refused = client.post(
        url, {"configuration": sandboxed.pk, "dids": ["+12125550110"]}, follow=True
    )
    assert "overlaps another tenant" in refused.content.decode()
    assignment.refresh_from_db()
    assert assignment.did_pool == "12125550100-12125550109;12125550120"


@pytest.mark.django_db
def test_tenant_admins_cannot_open_the_system_dids_page(world: World, client_for: Any) -> None:
    configuration = world.objects_a[SmsConfiguration]
    url = reverse("admin:voipms_dids")
    client = client_for(world.admin_a)
    assert client.get(url, {"configuration": configuration.pk}).status_code in (302, 403)
    response = client.post(url, {"configuration": configuration.pk, "dids": ["2125550120"]})
    assert response.status_code in (302, 403)
    assignment = TrunkAssignment.objects.get(tenant=world.tenant_a, trunk=configuration.trunk)
    assert assignment.did_pool == "12125550100-12125550109"


@pytest.mark.django_db
def test_the_sweeper_publishes_again_a_pointing_whose_task_was_lost(
    world: World, published: TaskRecorder
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    lost = did_pointing_start(configuration=configuration, dids=["2125550100"], actor=None)
    did_pointing_start(configuration=configuration, dids=["2125550101"], actor=None)
    done = did_pointing_start(configuration=configuration, dids=["2125550102"], actor=None)
    long_ago = timezone.now() - dt.timedelta(minutes=11)
    DidPointing.objects.filter(pk__in=[lost.pk, done.pk]).update(next_run_at=long_ago)
    DidPointing.objects.filter(pk=done.pk).update(status="done")

    assert pointings_sweep() == 1

    assert published.ids("sms.point_dids") == [lost.pk]


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_run_again_by_the_sweeper(
    world: World, published: TaskRecorder
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    dead = did_pointing_start(configuration=configuration, dids=["2125550100"], actor=None)
    busy = did_pointing_start(configuration=configuration, dids=["2125550101"], actor=None)
    DidPointing.objects.filter(pk=dead.pk).update(
        status="running", next_run_at=timezone.now() - dt.timedelta(minutes=31)
    )
    DidPointing.objects.filter(pk=busy.pk).update(
        status="running", next_run_at=timezone.now() - dt.timedelta(minutes=5)
    )

    assert pointings_sweep() == 1

    assert published.ids("sms.point_dids") == [dead.pk]
    dead.refresh_from_db()
    busy.refresh_from_db()
    assert (dead.status, busy.status) == ("waiting", "running")
