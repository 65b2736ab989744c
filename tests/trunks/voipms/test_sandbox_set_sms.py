"""The sandbox's setSMS behaves as VoIP.ms does: omitted flags are switched off, the flag names
that work are webhook_enable and url_callback_enable, and one write per DID per minute."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from freezegun import freeze_time

from tests.trunks.voipms.test_sandbox import DID, DID_2, FOREIGN_DID, PASSWORD, USERNAME, call
from trunks.voipms.sandbox.models import NumberFormat, SandboxAccount, SandboxDid
from trunks.voipms.sandbox.services import sandbox_account_ensure, sandbox_did_configure

START = dt.datetime(2026, 9, 7, 14, 0, tzinfo=dt.UTC)


@pytest.fixture
def account(db: None) -> SandboxAccount:
    return sandbox_account_ensure(username=USERNAME, api_password=PASSWORD, dids=[DID, DID_2])


@pytest.fixture
def other_account(db: None) -> SandboxAccount:
    return sandbox_account_ensure(
        username="other@example.com", api_password="other-secret", dids=[FOREIGN_DID]
    )


@pytest.fixture
def api_client() -> Client:
    return Client(HTTP_HOST="127.0.0.1")


def _configured() -> SandboxDid:
    return sandbox_did_configure(
        did=DID,
        webhook_url="https://old.example.com/hook",
        webhook_enabled=True,
        callback_url="https://old.example.com/cb?from={FROM}",
        callback_enabled=True,
        callback_retry=True,
        email_address="desk@example.com",
        email_enabled=True,
        forward_to="2125550143",
        forward_enabled=True,
    )


def test_get_dids_info_lists_every_sms_setting(account: SandboxAccount, api_client: Client) -> None:
    _configured()
    [row] = call(api_client, "getDIDsInfo", did=DID)["dids"]
    assert row == {
        "did": DID,
        "description": "",
        "sms_available": "1",
        "sms_enabled": "1",
        "mms_available": "1",
        "sms_email": "desk@example.com",
        "sms_email_enabled": "1",
        "sms_forward": "2125550143",
        "sms_forward_enabled": "1",
        "sms_url_callback": "https://old.example.com/cb?from={FROM}",
        "sms_url_callback_enabled": "1",
        "sms_url_callback_retry": "1",
        "webhook": "https://old.example.com/hook",
        "webhook_enabled": "1",
    }


def test_set_sms_with_the_webhook_alone_switches_every_flag_off(
    account: SandboxAccount, api_client: Client
) -> None:
    _configured()
    answer = call(api_client, "setSMS", did=DID, enable="1", webhook="https://new.example.com/h")
    assert answer == {"status": "success"}
    did = SandboxDid.objects.get(did=DID)
    assert did.webhook_url == "https://new.example.com/h"
    assert did.sms_enabled is True
    assert (did.webhook_enabled, did.callback_enabled, did.callback_retry) == (False,) * 3
    assert (did.email_enabled, did.forward_enabled) == (False, False)
    # Texts that were not sent are kept: DOMAIN.md documents the flags only.
    assert did.email_address == "desk@example.com"


def test_webhook_enabled_is_not_a_setsms_parameter_and_does_nothing(
    account: SandboxAccount, api_client: Client
) -> None:
    call(
        api_client, "setSMS", did=DID, enable="1", webhook="https://h.example/", webhook_enabled="1"
    )
    assert SandboxDid.objects.get(did=DID).webhook_enabled is False


def test_set_sms_with_every_setting_keeps_them_and_sets_the_number_format(
    account: SandboxAccount, api_client: Client
) -> None:
    _configured()
    answer = call(
        api_client,
        "setSMS",
        did=DID,
        enable="1",
        email_enabled="1",
        email_address="desk@example.com",
        sms_forward_enable="1",
        sms_forward="2125550143",
        url_callback_enable="1",
        url_callback="https://old.example.com/cb?from={FROM}",
        url_callback_retry="1",
        webhook_enable="1",
        webhook="https://new.example.com/h",
        dialmode="2",
    )
    assert answer["status"] == "success"
    did = SandboxDid.objects.get(did=DID)
    assert did.webhook_url == "https://new.example.com/h"
    assert did.number_format == NumberFormat.E164
    assert all([did.webhook_enabled, did.callback_enabled, did.callback_retry, did.email_enabled])
    assert did.forward_enabled is True


def test_a_second_write_within_a_minute_is_refused_and_allowed_after_it(
    account: SandboxAccount, api_client: Client
) -> None:
    with freeze_time(START) as clock:
        assert call(api_client, "setSMS", did=DID, enable="1")["status"] == "success"
        clock.tick(dt.timedelta(seconds=59))
        assert call(api_client, "setSMS", did=DID, enable="0")["status"] == "sms_wait_message"
        # Another DID has its own minute.
        assert call(api_client, "setSMS", did=DID_2, enable="1")["status"] == "success"
        clock.tick(dt.timedelta(seconds=2))
        assert call(api_client, "setSMS", did=DID, enable="0")["status"] == "success"
    assert SandboxDid.objects.get(did=DID).sms_enabled is False


def test_set_sms_needs_enable_and_a_did_of_the_account(
    account: SandboxAccount, other_account: SandboxAccount, api_client: Client
) -> None:
    assert call(api_client, "setSMS", did=DID)["status"] == "missing_params"
    assert call(api_client, "setSMS", enable="1")["status"] == "missing_did"
    assert call(api_client, "setSMS", did=FOREIGN_DID, enable="1")["status"] == "invalid_did"
    assert SandboxDid.objects.get(did=FOREIGN_DID).sms_settings_changed_at is None


def test_a_did_without_sms_stays_off(account: SandboxAccount, api_client: Client) -> None:
    sandbox_did_configure(did=DID, sms_available=False, sms_enabled=False)
    assert call(api_client, "setSMS", did=DID, enable="1")["status"] == "success"
    assert SandboxDid.objects.get(did=DID).sms_enabled is False
