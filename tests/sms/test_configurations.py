"""SMS/MMS configurations: the tenant-site workflow, the API, verification and secrecy."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from sms.models import SmsConfiguration, VerificationStatus
from sms.tasks import verify_configuration
from tenants.models import AuditEvent
from tests.factories import World, shared_trunk
from tests.sms.helpers import API_PASSWORD, make_configuration
from tests.test_isolation_matrix import _all_urls
from trunks.models import Trunk
from trunks.voipms.sandbox.services import sandbox_account_ensure, sandbox_did_configure

ADD_URL = "/tenant/sms/smsconfiguration/add/"
LIST_URL = "/tenant/sms/smsconfiguration/"


def _form(trunk: Trunk, **changes: Any) -> dict[str, Any]:
    data = {
        "name": "Main numbers",
        "trunk": trunk.pk,
        "enabled": "on",
        "username": "owner@example.com",
        "api_password": API_PASSWORD,
        "number_format": "nanpa",
        "channel": "sms",
        "long_message_policy": "split",
        "daily_send_limit": "100",
        "poll_enabled": "on",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_adding_a_configuration_redirects_to_the_list_with_the_webhook_url(
    world: World, client_for: Any
) -> None:
    client = client_for(world.admin_a)
    response = client.post(ADD_URL, _form(shared_trunk()), follow=True)
    assert response.redirect_chain[-1][0] == LIST_URL
    configuration = SmsConfiguration.objects.get(tenant=world.tenant_a, name="Main numbers")
    page = response.content.decode()
    assert configuration.webhook_url in page
    assert "SMS/MMS Webhook URL" in page
    assert API_PASSWORD not in page
    assert "Never received" in page


@pytest.mark.django_db
def test_the_api_password_and_token_are_encrypted_at_rest(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_password, webhook_token, webhook_token_digest FROM sms_smsconfiguration "
            "WHERE id = %s",
            [configuration.pk],
        )
        stored_password, stored_token, digest = cursor.fetchone()
    assert API_PASSWORD not in stored_password
    assert configuration.webhook_token not in stored_token
    assert len(configuration.webhook_token) >= 43  # 256 bits, URL-safe base64
    assert digest == configuration.webhook_token_digest
    configuration.refresh_from_db()
    assert configuration.api_password == API_PASSWORD


@pytest.mark.django_db
def test_two_configurations_never_share_a_url(world: World) -> None:
    urls = {make_configuration(world.tenant_a, name=f"C{i}").webhook_url for i in range(5)}
    assert len(urls) == 5


@pytest.mark.django_db
def test_editing_without_a_password_keeps_it_and_the_audit_names_fields_only(
    world: World, client_for: Any
) -> None:
    configuration = make_configuration(world.tenant_a)
    client = client_for(world.admin_a)
    url = f"/tenant/sms/smsconfiguration/{configuration.pk}/change/"
    page = client.get(url).content.decode()
    assert API_PASSWORD not in page
    assert "Leave blank to keep the stored password" in page
    response = client.post(url, _form(shared_trunk(), api_password="", name="Renamed"))
    assert response.status_code == 302
    configuration.refresh_from_db()
    assert (configuration.name, configuration.api_password) == ("Renamed", API_PASSWORD)
    client.post(url, _form(shared_trunk(), api_password="a-new-secret-9981", name="Renamed"))
    configuration.refresh_from_db()
    assert configuration.api_password == "a-new-secret-9981"
    events = list(AuditEvent.objects.filter(object_id=str(configuration.pk), action="changed"))
    assert events[0].detail["fields"] == ["api_password"]  # newest first
    assert all("a-new-secret-9981" not in str(e.detail) for e in events)


@pytest.mark.django_db
def test_a_tenant_cannot_pick_a_trunk_not_assigned_to_it(world: World, client_for: Any) -> None:
    other_trunk = world.objects_a[Trunk]  # assigned to tenant A only
    response = client_for(world.admin_b).post(ADD_URL, _form(other_trunk))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not SmsConfiguration.objects.filter(name="Main numbers").exists()


@pytest.mark.django_db
def test_the_enable_toggle_saves_without_leaving_the_page(world: World, client_for: Any) -> None:
    configuration = make_configuration(world.tenant_a)
    url = reverse("tenant:sms_smsconfiguration_toggle", args=[configuration.pk])
    response = client_for(world.admin_a).post(url, {"enabled": "false"})
    assert response.json() == {"id": configuration.pk, "enabled": False}
    configuration.refresh_from_db()
    assert configuration.enabled is False


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["details", "toggle", "rotate", "verify", "verification"])
def test_tenant_b_gets_404_for_every_action_on_tenant_a_configuration(
    world: World, client_for: Any, name: str
) -> None:
    configuration = make_configuration(world.tenant_a)
    url = reverse(f"tenant:sms_smsconfiguration_{name}", args=[configuration.pk])
    client = client_for(world.admin_b)
    response = client.post(url) if name in {"toggle", "rotate", "verify"} else client.get(url)
    assert response.status_code == 404
    configuration.refresh_from_db()
    assert configuration.enabled and not configuration.verification_status


@pytest.mark.django_db
def test_the_details_page_shows_the_url_steps_and_history_but_never_the_password(
    world: World, client_for: Any
) -> None:
    configuration = make_configuration(world.tenant_a)
    client = client_for(world.admin_a)
    client.post(reverse("tenant:sms_smsconfiguration_rotate", args=[configuration.pk]))
    configuration.refresh_from_db()
    page = client.get(reverse("tenant:sms_smsconfiguration_details", args=[configuration.pk]))
    text = page.content.decode()
    assert configuration.webhook_url in text
    assert "Message Service (SMS/MMS)" in text
    assert "webhook_rotated" in text
    assert API_PASSWORD not in text


@pytest.mark.django_db
def test_message_channels_off_hides_the_menu_and_refuses_the_pages(
    world: World, client_for: Any
) -> None:
    configuration = make_configuration(world.tenant_a)
    type(world.tenant_a).objects.filter(pk=world.tenant_a.pk).update(message_channels_enabled=False)
    client = client_for(world.admin_a)
    assert "smsconfiguration" not in client.get("/tenant/").content.decode()
    assert client.get(LIST_URL).status_code == 403
    details = reverse("tenant:sms_smsconfiguration_details", args=[configuration.pk])
    assert client.get(details).status_code == 404


# --- API -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_creates_lists_changes_and_deletes_configurations(
    world: World, client_for: Any
) -> None:
    client = client_for(world.admin_a)
    created = client.post(
        "/api/v1/sms-configurations/",
        {
            "name": "API",
            "trunk": shared_trunk().pk,
            "username": "api@example.com",
            "password": API_PASSWORD,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert "password" not in body and body["password_set"] is True
    assert body["webhook_url"].startswith("http://127.0.0.1:8000/hooks/voipms/")
    listed = client.get("/api/v1/sms-configurations/").json()
    ids = [row["id"] for row in listed["results"]]
    assert listed["count"] == len(ids) and body["id"] in ids
    assert set(ids) == set(
        SmsConfiguration.objects.filter(tenant=world.tenant_a).values_list("id", flat=True)
    )
    url = f"/api/v1/sms-configurations/{body['id']}/"
    patched = client.patch(
        url, {"enabled": False, "webhook_url": "http://evil/"}, content_type="application/json"
    )
    assert patched.json()["enabled"] is False
    assert patched.json()["webhook_url"] == body["webhook_url"]
    assert SmsConfiguration.objects.get(pk=body["id"]).api_password == API_PASSWORD
    rotated = client.post(f"{url}rotate-webhook/").json()["webhook_url"]
    assert rotated != body["webhook_url"]
    assert client.delete(url).status_code == 204
    assert not SmsConfiguration.objects.filter(pk=body["id"]).exists()


@pytest.mark.django_db
def test_the_api_refuses_a_trunk_of_another_tenant(world: World, client_for: Any) -> None:
    response = client_for(world.admin_b).post(
        "/api/v1/sms-configurations/",
        {
            "name": "X",
            "trunk": world.objects_a[Trunk].pk,
            "username": "x@example.com",
            "password": "p",
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "trunk" in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("delete", ""), ("post", "rotate-webhook/"), ("post", "verify/")],
)
def test_the_api_gives_tenant_b_404_for_tenant_a_configurations(
    world: World, client_for: Any, method: str, suffix: str
) -> None:
    configuration = make_configuration(world.tenant_a)
    url = f"/api/v1/sms-configurations/{configuration.pk}/{suffix}"
    response = getattr(client_for(world.admin_b), method)(url, content_type="application/json")
    assert response.status_code == 404
    assert SmsConfiguration.objects.filter(pk=configuration.pk).exists()


@pytest.mark.django_db
def test_the_api_refuses_changes_with_a_clear_message_when_message_channels_are_off(
    world: World, client_for: Any
) -> None:
    type(world.tenant_a).objects.filter(pk=world.tenant_a.pk).update(message_channels_enabled=False)
    client = client_for(world.admin_a)
    assert client.get("/api/v1/sms-configurations/").status_code == 200
    configuration = world.objects_a[SmsConfiguration]
    response = client.patch(
        f"/api/v1/sms-configurations/{configuration.pk}/",
        {"enabled": False},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "message_channels_disabled"
    assert "Message Channels" in response.json()["detail"]


@pytest.mark.django_db
def test_extension_users_cannot_use_the_configuration_api(world: World, client_for: Any) -> None:
    assert client_for(world.user_a).get("/api/v1/sms-configurations/").status_code == 403


# --- verification against the sandbox ----------------------------------------------------------


@pytest.fixture
def sandboxed(world: World, live_server: Any, settings: Any) -> Any:
    settings.VOIPMS_API_URL = f"{live_server.url}/sandbox/voipms/api/v1/rest.php"
    configuration = make_configuration(world.tenant_a, username="owner@example.com")
    dids = [str(n) for n in range(2125550100, 2125550110)]
    sandbox_account_ensure(username="owner@example.com", api_password=API_PASSWORD, dids=dids)
    for did in dids:
        sandbox_did_configure(did=did, webhook_url=configuration.webhook_url)
    return configuration


def _verify(configuration: SmsConfiguration) -> SmsConfiguration:
    verify_configuration(configuration.pk)
    configuration.refresh_from_db()
    return configuration


@pytest.mark.django_db(transaction=True)
def test_verify_reports_ok_with_the_dids_found(sandboxed: SmsConfiguration) -> None:
    result = _verify(sandboxed)
    assert result.verification_status == VerificationStatus.OK
    assert len(result.verification_result["dids"]) == 10
    assert result.verification_result["ip"] == "127.0.0.1"


@pytest.mark.django_db(transaction=True)
def test_verify_reports_wrong_credentials(sandboxed: SmsConfiguration) -> None:
    SmsConfiguration.objects.filter(pk=sandboxed.pk).update(api_password="wrong")
    result = _verify(sandboxed)
    assert result.verification_status == VerificationStatus.FAILED
    assert "rejected the username or API password" in result.verification_result["problems"][0]


@pytest.mark.django_db(transaction=True)
def test_verify_reports_the_api_switched_off(sandboxed: SmsConfiguration) -> None:
    sandbox_account_ensure(username="owner@example.com", api_password=None, api_enabled=False)
    result = _verify(sandboxed)
    assert result.verification_status == VerificationStatus.FAILED
    assert "API is switched off" in result.verification_result["problems"][0]


@pytest.mark.django_db(transaction=True)
def test_verify_names_the_ip_to_allow_list(sandboxed: SmsConfiguration) -> None:
    sandbox_account_ensure(username="owner@example.com", api_password=None, ip_allowlist="10.9.8.7")
    result = _verify(sandboxed)
    assert result.verification_status == VerificationStatus.FAILED
    assert "127.0.0.1" in result.verification_result["problems"][0]
    assert "allowed IP addresses" in result.verification_result["problems"][0]


@pytest.mark.django_db(transaction=True)
def test_verify_flags_dids_without_sms_other_webhooks_and_missing_numbers(
    sandboxed: SmsConfiguration,
) -> None:
    sandbox_did_configure(did="2125550101", sms_enabled=False)
    sandbox_did_configure(did="2125550102", webhook_url="https://elsewhere.example/hook")
    result = _verify(sandboxed)
    warnings = " ".join(result.verification_result["warnings"])
    assert result.verification_status == VerificationStatus.WARNING
    assert "SMS is not enabled at VoIP.ms on +12125550101" in warnings
    assert "not this configuration's URL on +12125550102" in warnings


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("voipms_dids")
def test_no_page_or_api_response_or_log_shows_a_secret(
    world: World, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configuration = make_configuration(world.tenant_a)
    sip_password = "sip-Secret-Zebra-9431"  # tests/factories.py gives the shared trunk this one
    admin = client_for(world.admin_a)
    system = client_for(world.sysadmin)
    session = system.session
    session["managed_tenant_id"] = world.tenant_a.pk
    session.save()
    checked = 0
    for route, url, _kind in _all_urls(world):
        for client in (admin, system):
            response = client.get(url)
            text = response.content.decode(errors="replace") if hasattr(response, "content") else ""
            assert API_PASSWORD not in text, f"{route.name} {url} shows the API password"
            assert sip_password not in text, f"{route.name} {url} shows the SIP password"
            checked += 1
    for url in (
        "/api/v1/sms-configurations/",
        f"/api/v1/sms-configurations/{configuration.pk}/",
        "/api/v1/trunks/",
        "/api/v1/admin/trunks/",
        reverse("tenant:sms_smsconfiguration_details", args=[configuration.pk]),
    ):
        for client in (admin, system):
            text = client.get(url, HTTP_X_TENANT=world.tenant_a.slug).content.decode()
            assert API_PASSWORD not in text and sip_password not in text, url
    assert checked > 20
    assert API_PASSWORD not in caplog.text and sip_password not in caplog.text
