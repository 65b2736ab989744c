"""The VoIP.ms client's getDIDsInfo settings and setSMS, which must resend every setting."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import responses

from tests.trunks.voipms.test_client import PASSWORD, USERNAME, answer_json, sent_params
from trunks.voipms.client import DidInfo, SmsSettings, VoipmsClient
from trunks.voipms.errors import VoipmsError, VoipmsTransientError

FULL_ROW = {
    "did": "8455577768",
    "description": "Front desk",
    "sms_available": "1",
    "sms_enabled": 1,
    "mms_available": "0",
    "sms_email": "desk@example.com",
    "sms_email_enabled": "1",
    "sms_forward": "2125550143",
    "sms_forward_enabled": "0",
    "sms_url_callback": "https://old.example.com/cb?from={FROM}",
    "sms_url_callback_enabled": 1,
    "sms_url_callback_retry": "1",
    "webhook": "https://old.example.com/hook",
    "webhook_enabled": "0",
}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[VoipmsClient]:
    with VoipmsClient(USERNAME, PASSWORD) as voipms:
        yield voipms


def test_get_dids_info_reads_every_setting_set_sms_writes(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "dids": [FULL_ROW]})

    [info] = client.get_dids_info()

    assert info.description == "Front desk"
    assert info.sms_settings == SmsSettings(
        sms_enabled=True,
        email_enabled=True,
        email_address="desk@example.com",
        forward_enabled=False,
        forward_to="2125550143",
        url_callback_enabled=True,
        url_callback="https://old.example.com/cb?from={FROM}",
        url_callback_retry=True,
        webhook_enabled=False,
        webhook="https://old.example.com/hook",
    )
    assert info.mms_available is False


def test_a_row_without_the_optional_settings_reads_them_as_off_and_empty(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "dids": [{"did": 8455577768, "sms_enabled": "1"}]})

    [info] = client.get_dids_info()

    assert info == DidInfo(
        did="8455577768",
        sms_available=False,
        sms_enabled=True,
        mms_available=False,
        webhook="",
        webhook_enabled=False,
    )


def test_set_sms_resends_every_setting_with_the_working_flag_names(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "dids": [FULL_ROW]})
    [info] = client.get_dids_info()
    mocked.reset()
    answer_json(mocked, {"status": "success"})
    hook = "https://portal.example.com/hooks/voipms/t/"
    wanted = dataclasses.replace(info.sms_settings, webhook=hook, webhook_enabled=True)

    client.set_sms(did=info.did, settings=wanted, number_format="e164")

    assert sent_params(mocked) == {
        "did": "8455577768",
        "enable": "1",
        "email_enabled": "1",
        "email_address": "desk@example.com",
        "sms_forward_enable": "0",
        "sms_forward": "2125550143",
        "url_callback_enable": "1",
        "url_callback": "https://old.example.com/cb?from={FROM}",
        "url_callback_retry": "1",
        "webhook_enable": "1",
        "webhook": "https://portal.example.com/hooks/voipms/t/",
        "dialmode": "2",
    }


def test_set_sms_without_a_number_format_leaves_dialmode_out(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success"})
    settings = SmsSettings(
        sms_enabled=False,
        email_enabled=False,
        email_address="",
        forward_enabled=False,
        forward_to="",
        url_callback_enabled=False,
        url_callback="",
        url_callback_retry=False,
        webhook_enabled=False,
        webhook="",
    )

    client.set_sms(did="8455577768", settings=settings)

    params = sent_params(mocked)
    assert "dialmode" not in params
    assert "webhook_enabled" not in params
    assert params["enable"] == "0"
    assert params["webhook_enable"] == "0"


def test_set_sms_refuses_an_unknown_number_format(client: VoipmsClient) -> None:
    settings = DidInfo("8455577768", True, True, True, "", False).sms_settings
    with pytest.raises(ValueError, match="number format"):
        client.set_sms(did="8455577768", settings=settings, number_format="international")


def test_a_second_write_within_a_minute_is_a_transient_error_to_retry_after_a_minute(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "sms_wait_message", "message": "Please wait"})
    settings = DidInfo("8455577768", True, True, True, "", False).sms_settings

    with pytest.raises(VoipmsTransientError) as caught:
        client.set_sms(did="8455577768", settings=settings)

    assert caught.value.code == "sms_wait_message"
    assert caught.value.retry_after == 60.0
    assert caught.value.nothing_sent is True


def test_a_did_not_on_the_account_is_a_permanent_error(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "invalid_did", "message": "Invalid DID"})
    settings = DidInfo("8455577768", True, True, True, "", False).sms_settings

    with pytest.raises(VoipmsError) as caught:
        client.set_sms(did="8455577768", settings=settings)

    assert caught.value.permanent is True
