"""Saving an SMS configuration checks its VoIP.ms credentials in the background."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from django.conf import settings as django_settings
from django.urls import reverse

from sms.configurations import sms_configuration_update
from sms.models import CredentialsStatus, SmsConfiguration
from sms.sweep import credentials_checks_sweep
from sms.tasks import check_credentials
from tests.factories import World, shared_trunk
from tests.sms.helpers import API_PASSWORD, make_configuration
from tests.sms.test_configurations import _form as configuration_form
from tests.tasks import TaskRecorder
from trunks.voipms import client as voipms_client

ADD_URL = "/tenant/sms/smsconfiguration/add/"


def _form(**changes: Any) -> dict[str, Any]:
    return configuration_form(shared_trunk(), **{"name": "Checked numbers", **changes})


def _check(configuration: SmsConfiguration, **answer: Any) -> SmsConfiguration:
    with responses.RequestsMock() as mock:
        mock.post(django_settings.VOIPMS_API_URL, **answer)
        check_credentials(configuration.pk)
        sent = [call.request for call in mock.calls]
    configuration.refresh_from_db()
    configuration.sent = sent  # type: ignore[attr-defined]
    return configuration


@pytest.mark.django_db
def test_good_credentials_are_recorded_as_verified(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    assert configuration.credentials_status == CredentialsStatus.CHECKING
    checked = _check(configuration, json={"status": "success", "dids": [{"did": "2125550100"}]})
    assert checked.credentials_status == CredentialsStatus.OK
    assert checked.credentials_error == ""
    assert checked.credentials_checked_at is not None
    body = checked.sent[0].body  # type: ignore[attr-defined]
    assert b"getDIDsInfo" in body and API_PASSWORD.encode() in body


@pytest.mark.django_db
def test_wrong_credentials_are_recorded_with_voipms_reason(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    checked = _check(
        configuration,
        json={"status": "invalid_credentials", "message": "Username or password is incorrect"},
    )
    assert checked.credentials_status == CredentialsStatus.FAILED
    assert "invalid_credentials" in checked.credentials_error
    assert "Username or password is incorrect" in checked.credentials_error
    assert API_PASSWORD not in checked.credentials_error


@pytest.mark.django_db
def test_an_unreachable_voipms_leaves_the_credentials_unknown(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    checked = _check(configuration, body=requests.ConnectionError("connection refused"))
    assert checked.credentials_status == CredentialsStatus.UNREACHABLE
    assert "could not be reached" in checked.credentials_error


@pytest.mark.django_db
def test_an_ip_not_allow_listed_names_the_portal_address(world: World) -> None:
    configuration = make_configuration(world.tenant_a)
    with responses.RequestsMock() as mock:
        mock.post(
            django_settings.VOIPMS_API_URL,
            json={"status": "ip_not_enabled", "message": "IP not enabled"},
        )
        mock.post(django_settings.VOIPMS_API_URL, json={"status": "success", "ip": "203.0.113.9"})
        check_credentials(configuration.pk)
    configuration.refresh_from_db()
    assert configuration.credentials_status == CredentialsStatus.FAILED
    assert "203.0.113.9" in configuration.credentials_error


@pytest.mark.django_db
def test_an_answer_for_credentials_changed_meanwhile_is_not_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    configuration = make_configuration(world.tenant_a)
    real = voipms_client.VoipmsClient.get_dids_info

    def change_then_answer(self: Any, **kwargs: Any) -> Any:
        SmsConfiguration.objects.filter(pk=configuration.pk).update(username="new@example.com")
        return real(self, **kwargs)

    monkeypatch.setattr(voipms_client.VoipmsClient, "get_dids_info", change_then_answer)
    checked = _check(configuration, json={"status": "success", "dids": []})
    assert checked.credentials_status == CredentialsStatus.CHECKING


@pytest.mark.django_db
def test_saving_in_the_admin_enqueues_the_check_with_the_id_only(
    world: World, client_for: Any, django_capture_on_commit_callbacks: Any, published: TaskRecorder
) -> None:
    client = client_for(world.admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ADD_URL, _form())
    assert response.status_code == 302
    configuration = SmsConfiguration.objects.get(tenant=world.tenant_a, name="Checked numbers")
    assert configuration.credentials_status == CredentialsStatus.CHECKING
    assert published.args("sms.check_credentials") == [(configuration.pk,)]
    assert all(API_PASSWORD not in repr(call) for call in published.calls)


@pytest.mark.django_db
def test_editing_without_new_credentials_after_a_pass_does_not_check_again(
    world: World, django_capture_on_commit_callbacks: Any, published: TaskRecorder
) -> None:
    configuration = make_configuration(world.tenant_a)
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        credentials_status=CredentialsStatus.OK
    )
    with django_capture_on_commit_callbacks(execute=True):
        sms_configuration_update(configuration=configuration, actor=None, daily_send_limit=50)
    assert published.args("sms.check_credentials") == []
    with django_capture_on_commit_callbacks(execute=True):
        sms_configuration_update(configuration=configuration, actor=None, api_password="new-one")
    assert published.args("sms.check_credentials") == [(configuration.pk,)]
    configuration.refresh_from_db()
    assert configuration.credentials_status == CredentialsStatus.CHECKING


@pytest.mark.django_db
def test_the_api_save_enqueues_the_check(
    world: World, client_for: Any, django_capture_on_commit_callbacks: Any, published: TaskRecorder
) -> None:
    client = client_for(world.admin_a)
    payload = {
        "name": "From the API",
        "trunk": shared_trunk().pk,
        "username": "owner@example.com",
        "password": API_PASSWORD,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/sms-configurations/", payload, content_type="application/json"
        )
    assert response.status_code == 201, response.content
    assert response.json()["credentials_status"] == "checking"
    assert published.args("sms.check_credentials") == [(response.json()["id"],)]


@pytest.mark.django_db
def test_the_sweeper_publishes_a_check_whose_task_was_lost(
    world: World, published: TaskRecorder
) -> None:
    configuration = make_configuration(world.tenant_a)
    assert credentials_checks_sweep() == 0
    SmsConfiguration.objects.filter(pk=configuration.pk).update(updated_at="2000-01-01T00:00:00Z")
    assert credentials_checks_sweep() == 1
    assert published.args("sms.check_credentials") == [(configuration.pk,)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "error", "shown"),
    [
        ("checking", "", "Checking the VoIP.ms credentials"),
        ("ok", "", "VoIP.ms credentials verified."),
        (
            "failed",
            "VoIP.ms answered invalid_credentials: nope",
            "VoIP.ms rejected the credentials.",
        ),
    ],
)
def test_the_details_page_shows_the_check(
    world: World, client_for: Any, status: str, error: str, shown: str
) -> None:
    configuration = make_configuration(world.tenant_a)
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        credentials_status=status, credentials_error=error
    )
    client = client_for(world.admin_a)
    page = client.get(reverse("tenant:sms_smsconfiguration_details", args=[configuration.pk]))
    text = page.content.decode()
    assert f'<strong class="credentials-title">{shown}' in text
    assert f'class="credentials-banner credentials-{status}"' in text
    assert error in text
    assert API_PASSWORD not in text


@pytest.mark.django_db
def test_the_check_state_answers_json_for_polling(world: World, client_for: Any) -> None:
    configuration = make_configuration(world.tenant_a)
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        credentials_status="failed", credentials_error="VoIP.ms answered invalid_credentials"
    )
    url = reverse("tenant:sms_smsconfiguration_credentials", args=[configuration.pk])
    data = client_for(world.admin_a).get(url).json()
    assert data["status"] == "failed"
    assert data["error"] == "VoIP.ms answered invalid_credentials"
    assert API_PASSWORD not in repr(data)


@pytest.mark.django_db
def test_tenant_b_cannot_read_tenant_a_check_state(world: World, client_for: Any) -> None:
    configuration = make_configuration(world.tenant_a)
    url = reverse("tenant:sms_smsconfiguration_credentials", args=[configuration.pk])
    assert client_for(world.admin_b).get(url).status_code == 404
    assert client_for(world.user_a).get(url).status_code in (302, 403, 404)


@pytest.mark.django_db
def test_the_list_says_when_voipms_rejected_the_credentials(world: World, client_for: Any) -> None:
    configuration = make_configuration(world.tenant_a)
    SmsConfiguration.objects.filter(pk=configuration.pk).update(credentials_status="failed")
    page = client_for(world.admin_a).get("/tenant/sms/smsconfiguration/").content.decode()
    assert "VoIP.ms rejected the credentials" in page


@pytest.mark.django_db
def test_good_credentials_on_an_unverified_configuration_verify_it(world: World) -> None:
    """The check goes on to verify the account, so its DIDs are known without a manual Verify."""
    configuration = make_configuration(world.tenant_a)
    assert configuration.verification_status == ""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        if b"getIP" in body:
            return 200, {}, '{"status": "success", "ip": "203.0.113.7"}'
        if b"getSMS" in body:
            return 200, {}, '{"status": "no_sms"}'
        return 200, {}, '{"status": "success", "dids": [{"did": "2125550100"}]}'

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, django_settings.VOIPMS_API_URL, callback=answer)
        check_credentials(configuration.pk)
    configuration.refresh_from_db()
    assert configuration.credentials_status == CredentialsStatus.OK
    assert configuration.verification_status != ""
    assert configuration.verification_result["ip"] == "203.0.113.7"
    assert configuration.verification_result["account_did_count"] == 1
