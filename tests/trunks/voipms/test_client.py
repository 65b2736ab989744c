"""Tests of the VoIP.ms REST client against mocked and real-socket answers."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import logging
import pickle
import socket
import threading
from collections.abc import Callable, Iterator
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from trunks.voipms.client import (
    DEFAULT_API_URL,
    USER_AGENT,
    DidInfo,
    SmsRecord,
    VoipmsClient,
)
from trunks.voipms.errors import (
    VoipmsError,
    VoipmsOutcomeUnknown,
    VoipmsTransientError,
    error_for_status,
)

USERNAME = "owner@example.com"
PASSWORD = "Api-Pa55w0rd-Top-Secret"
UTC = dt.UTC

# DOMAIN.md §2 status table: code, permanent, route level, retry after.
STATUS_TABLE = [
    ("invalid_credentials", True, True, None),
    ("missing_credentials", True, True, None),
    ("api_not_enabled", True, True, None),
    ("ip_not_enabled", True, True, None),
    ("missing_method", True, False, None),
    ("invalid_method", True, False, None),
    ("missing_params", True, False, None),
    ("method_maintenance", False, False, None),
    ("unavailable_info", False, False, None),
    ("tls_error", False, False, None),
    ("api_limit_exceeded", False, False, 60.0),
    ("missing_did", True, True, None),
    ("invalid_did", True, True, None),
    ("invalid_dst", True, False, None),
    ("message_empty", True, False, None),
    ("sms_toolong", True, False, None),
    ("sms_failed", True, True, None),
    ("limit_reached", True, True, None),
    ("invalid_media", True, True, None),
    ("invalid_date", True, False, None),
    ("invalid_daterange", True, False, None),
    ("invalid_date_from", True, False, None),
    ("sms_wait_message", False, False, 60.0),
]

CLOUDFLARE_403 = """<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<style>body { margin: 0; padding: 0 } #cf-wrapper { display: block }</style>
<script>(function(){ window._cf_chl_opt = {cvId: '3'}; })();</script>
</head>
<body>
  <div id="cf-wrapper">
    <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
    <h2 class="cf-subheadline">You are unable to access voip.ms</h2>
    <p>Cloudflare Ray ID: <strong>8a1b2c3d4e5f6789</strong></p>
  </div>
</body>
</html>
"""

CLOUDFLARE_5XX = """<!DOCTYPE html>
<html lang="en-US">
<head><title>voip.ms | {code}: {title}</title>
<style>#cf-error-details {{ font-size: 15px }}</style></head>
<body><div id="cf-error-details"><h1>{title}</h1>
<span>Error code {code}</span></div></body></html>
"""

SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <SOAP-ENV:Fault>
      <faultcode>SOAP-ENV:Client</faultcode>
      <faultstring>Bad Request</faultstring>
    </SOAP-ENV:Fault>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[VoipmsClient]:
    with VoipmsClient(USERNAME, PASSWORD) as voipms:
        yield voipms


def answer_json(
    mocked: responses.RequestsMock, payload: Any, *, status: int = 200
) -> responses.BaseResponse:
    """Register one JSON answer of the VoIP.ms endpoint."""
    return mocked.post(DEFAULT_API_URL, json=payload, status=status)


def form_fields(request: requests.PreparedRequest) -> list[tuple[str, str]]:
    """Return the (name, value) pairs of a multipart/form-data request body."""
    assert isinstance(request.body, bytes)
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    assert message.is_multipart()
    return [
        # The parts carry no charset, so decode the bytes as the UTF-8 that requests wrote.
        (
            part.get_param("name", header="content-disposition"),
            part.get_payload(decode=True).decode("utf-8"),
        )
        for part in message.iter_parts()
    ]


def only_request(mocked: responses.RequestsMock) -> requests.PreparedRequest:
    """Return the single request the client made."""
    assert len(mocked.calls) == 1
    return mocked.calls[0].request


def sent_params(mocked: responses.RequestsMock) -> dict[str, str]:
    """Return the method's own form fields of the single request, without the credentials."""
    fields = dict(form_fields(only_request(mocked)))
    for name in ("api_username", "api_password", "method"):
        fields.pop(name)
    return fields


def test_send_sms_posts_a_multipart_form_with_credentials_method_and_params(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "sms": 112275629})

    client.send_sms(did="8455577768", dst="8457231213", message="Héllo 👋")

    request = only_request(mocked)
    assert request.method == "POST"
    assert request.url == "https://voip.ms/api/v1/rest.php"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["User-Agent"].startswith("SeedSMSPortal/0.1.0 ")
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert form_fields(request) == [
        ("api_username", USERNAME),
        ("api_password", PASSWORD),
        ("method", "sendSMS"),
        ("did", "8455577768"),
        ("dst", "8457231213"),
        ("message", "Héllo 👋"),
    ]
    assert b'name="method"\r\n\r\nsendSMS\r\n' in request.body
    assert b"filename=" not in request.body
    assert b"api_password=" not in request.body
    assert "?" not in request.url


def test_every_call_uses_the_configured_timeouts(mocked: responses.RequestsMock) -> None:
    answer_json(mocked, {"status": "success", "ip": "203.0.113.7"})

    with VoipmsClient(USERNAME, PASSWORD, connect_timeout=3.0, read_timeout=30.0) as voipms:
        voipms.get_ip()

    assert only_request(mocked).req_kwargs["timeout"] == (3.0, 30.0)


def test_the_default_timeouts_are_generous_for_slow_voipms_calls(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "ip": "203.0.113.7"})

    client.get_ip()

    assert only_request(mocked).req_kwargs["timeout"] == (10.0, 45.0)


def test_a_custom_base_url_receives_the_calls(mocked: responses.RequestsMock) -> None:
    sandbox = "http://localhost:8000/sandbox/voipms/api/v1/rest.php"
    mocked.post(sandbox, json={"status": "success", "ip": "127.0.0.1"})

    with VoipmsClient(USERNAME, PASSWORD, sandbox) as voipms:
        assert voipms.get_ip() == "127.0.0.1"


@pytest.mark.parametrize("sms_id", ["112275629", 112275629, " 112275629 "])
def test_send_sms_returns_the_id_whether_voipms_sends_a_string_or_a_number(
    mocked: responses.RequestsMock, client: VoipmsClient, sms_id: str | int
) -> None:
    answer_json(mocked, {"status": "success", "sms": sms_id})

    assert client.send_sms(did="8455577768", dst="8457231213", message="hi") == 112275629


@pytest.mark.parametrize("mms_id", ["10456720", 10456720])
def test_send_mms_sends_up_to_three_media_fields_and_returns_the_mms_id(
    mocked: responses.RequestsMock, client: VoipmsClient, mms_id: str | int
) -> None:
    answer_json(mocked, {"status": "success", "mms": mms_id})
    media = [
        "https://example.com/a.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "https://example.com/c.mp4",
    ]

    result = client.send_mms(did="8455577768", dst="8457231213", message="pics", media=media)

    assert result == 10456720
    assert dict(form_fields(only_request(mocked)))["method"] == "sendMMS"
    assert sent_params(mocked) == {
        "did": "8455577768",
        "dst": "8457231213",
        "message": "pics",
        "media1": media[0],
        "media2": media[1],
        "media3": media[2],
    }


def test_send_mms_without_media_sends_no_media_fields(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "mms": 1})

    client.send_mms(did="8455577768", dst="8457231213", message="text only")

    assert sent_params(mocked) == {"did": "8455577768", "dst": "8457231213", "message": "text only"}


def test_send_mms_with_more_than_three_media_raises_value_error_before_calling(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    media = [f"https://example.com/{number}.png" for number in range(4)]

    with pytest.raises(ValueError, match="at most 3"):
        client.send_mms(did="8455577768", dst="8457231213", message="x", media=media)

    assert len(mocked.calls) == 0


def test_send_mms_refuses_a_single_string_as_media(client: VoipmsClient) -> None:
    with pytest.raises(TypeError, match="sequence of URLs"):
        client.send_mms(
            did="8455577768", dst="8457231213", message="x", media="https://example.com/a.png"
        )


@pytest.mark.parametrize("payload", [{"status": "success"}, {"status": "success", "sms": "abc"}])
def test_a_successful_send_without_a_usable_id_is_an_unknown_outcome_not_a_retry(
    mocked: responses.RequestsMock, client: VoipmsClient, payload: dict[str, str]
) -> None:
    answer_json(mocked, payload)

    with pytest.raises(VoipmsOutcomeUnknown) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "outcome_unknown"
    assert caught.value.permanent is False


@pytest.mark.parametrize(("code", "permanent", "route_level", "retry_after"), STATUS_TABLE)
def test_each_documented_status_becomes_an_error_with_the_right_retry_policy(
    mocked: responses.RequestsMock,
    client: VoipmsClient,
    code: str,
    permanent: bool,
    route_level: bool,
    retry_after: float | None,
) -> None:
    answer_json(mocked, {"status": code, "message": "Something happened"})

    with pytest.raises(VoipmsError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    error = caught.value
    assert error.code == code
    assert error.permanent is permanent
    assert error.route_level is route_level
    assert error.retry_after == retry_after
    assert isinstance(error, VoipmsTransientError) is not permanent
    assert not isinstance(error, VoipmsOutcomeUnknown)
    assert str(error) == f"{code}: {error.message}"
    assert error.message


@pytest.mark.parametrize(("code", "permanent", "route_level", "retry_after"), STATUS_TABLE)
def test_error_for_status_follows_the_documented_table(
    code: str, permanent: bool, route_level: bool, retry_after: float | None
) -> None:
    error = error_for_status(code, "")

    assert (error.code, error.permanent, error.route_level, error.retry_after) == (
        code,
        permanent,
        route_level,
        retry_after,
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "sms_failed",
            "VoIP.ms did not send it; check that SMS is enabled on this DID in the VoIP.ms portal",
        ),
        ("invalid_credentials", "VoIP.ms rejected the username or API password"),
        ("api_not_enabled", "The API is not enabled in the VoIP.ms portal"),
        ("ip_not_enabled", "This server's IP address is not on the VoIP.ms API allow-list"),
        ("limit_reached", "The VoIP.ms account reached its daily sending limit"),
    ],
)
def test_important_statuses_explain_themselves_in_plain_words(code: str, expected: str) -> None:
    assert error_for_status(code, "").message == expected


def test_voipms_own_message_is_kept_as_a_suffix_when_it_adds_something() -> None:
    error = error_for_status("ip_not_enabled", "IP 203.0.113.7 is not enabled for API use")

    assert error.message == (
        "This server's IP address is not on the VoIP.ms API allow-list "
        "(VoIP.ms: IP 203.0.113.7 is not enabled for API use)"
    )


@pytest.mark.parametrize("vendor_message", ["", "  ", "sms_failed", "SMS failed."])
def test_voipms_own_message_is_dropped_when_it_only_repeats_the_code(vendor_message: str) -> None:
    error = error_for_status("sms_failed", vendor_message)

    assert "(VoIP.ms:" not in error.message


def test_an_unknown_status_is_permanent_and_keeps_its_code_and_message(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "brand_new_code", "message": "Something new went wrong"})

    with pytest.raises(VoipmsError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "brand_new_code"
    assert caught.value.permanent is True
    assert caught.value.route_level is False
    assert "Something new went wrong" in caught.value.message


def test_no_sms_on_get_sms_is_an_empty_list(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_sms", "message": "There are no SMS messages"})

    assert client.get_sms(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 7)) == []


def test_no_sms_on_get_mms_is_an_empty_list(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_sms", "message": "There are no MMS messages"})

    assert client.get_mms(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 7)) == []


def test_no_did_on_get_dids_info_is_an_empty_list(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_did", "message": "There are no DIDs"})

    assert client.get_dids_info() == []


def test_an_empty_result_status_answering_a_send_is_an_error(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_did", "message": "There are no DIDs"})

    with pytest.raises(VoipmsError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "no_did"
    assert caught.value.permanent is True


@pytest.mark.parametrize(
    ("http_status", "body", "expected_text"),
    [
        (403, CLOUDFLARE_403, "Attention Required! | Cloudflare Sorry, you have been blocked"),
        (521, CLOUDFLARE_5XX.format(code=521, title="Web server is down"), "521: Web server"),
        (522, CLOUDFLARE_5XX.format(code=522, title="Connection timed out"), "522: Connection"),
        (522, "error code: 522", "error code: 522"),
        (200, SOAP_FAULT, "SOAP-ENV:Client Bad Request"),
        (500, SOAP_FAULT, "SOAP-ENV:Client Bad Request"),
        (500, "<html><body><h1>Internal Server Error</h1></body></html>", "Internal Server"),
        (502, "", ""),
        (200, "", ""),
        (200, '["success"]', '["success"]'),
        (200, '"success"', '"success"'),
        (200, '{"sms": 1}', '{"sms": 1}'),
        (200, '{"status": 1}', '{"status": 1}'),
        (200, '{"status": "succ', '{"status": "succ'),
    ],
    ids=[
        "cloudflare-403",
        "cloudflare-521",
        "cloudflare-522",
        "plain-522",
        "soap-fault-200",
        "soap-fault-500",
        "html-500",
        "empty-502",
        "empty-200",
        "json-list",
        "json-string",
        "json-without-status",
        "json-non-string-status",
        "truncated-json",
    ],
)
def test_an_answer_without_a_json_status_is_a_transient_error_with_a_short_excerpt(
    mocked: responses.RequestsMock,
    client: VoipmsClient,
    http_status: int,
    body: str,
    expected_text: str,
) -> None:
    mocked.post(DEFAULT_API_URL, body=body, status=http_status, content_type="text/html")

    with pytest.raises(VoipmsTransientError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    error = caught.value
    assert error.code == "bad_response"
    assert error.permanent is False
    assert error.route_level is False
    assert error.retry_after is None
    assert error.http_status == http_status
    assert expected_text in error.excerpt
    assert len(error.excerpt) <= 200
    assert "\n" not in error.excerpt
    assert "  " not in error.excerpt
    assert "<" not in error.excerpt or body.startswith(("[", "{", '"'))
    assert f"HTTP {http_status}" in error.message


def test_the_excerpt_of_a_long_body_is_cut_to_two_hundred_characters(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body="word " * 2000, status=503)

    with pytest.raises(VoipmsTransientError) as caught:
        client.get_ip()

    assert len(caught.value.excerpt) == 200
    assert caught.value.excerpt.endswith("…")


def test_a_cloudflare_excerpt_leaves_out_styles_and_scripts(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body=CLOUDFLARE_403, status=403, content_type="text/html")

    with pytest.raises(VoipmsTransientError) as caught:
        client.get_ip()

    assert "margin" not in caught.value.excerpt
    assert "_cf_chl_opt" not in caught.value.excerpt
    assert "if lt IE" not in caught.value.excerpt


def test_a_json_error_with_http_500_is_transient_whatever_its_status(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "invalid_did", "message": "boom"}, status=500)

    with pytest.raises(VoipmsTransientError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "http_error"
    assert caught.value.http_status == 500
    assert "invalid_did" in caught.value.message


def test_a_json_success_with_http_500_is_still_a_success_so_the_message_is_not_sent_twice(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "sms": 42}, status=500)

    assert client.send_sms(did="8455577768", dst="8457231213", message="hi") == 42


def test_a_cloudflare_524_after_a_send_is_an_unknown_outcome(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body="error code: 524", status=524)

    with pytest.raises(VoipmsOutcomeUnknown) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.http_status == 524


def test_a_cloudflare_524_on_a_read_is_transient(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body="error code: 524", status=524)

    with pytest.raises(VoipmsTransientError):
        client.get_ip()


def test_a_redirect_is_not_followed_and_is_a_permanent_configuration_error(
    mocked: responses.RequestsMock,
) -> None:
    www_url = "https://www.voip.ms/api/v1/rest.php"
    mocked.post(www_url, status=301, headers={"Location": DEFAULT_API_URL})

    with (
        VoipmsClient(USERNAME, PASSWORD, www_url) as voipms,
        pytest.raises(VoipmsError) as caught,
    ):
        voipms.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "unexpected_redirect"
    assert caught.value.permanent is True
    assert len(mocked.calls) == 1


def test_a_connect_timeout_is_transient_because_nothing_was_sent(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(VoipmsTransientError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "connection_error"
    assert caught.value.permanent is False


def test_a_read_timeout_after_a_send_is_an_unknown_outcome(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(VoipmsOutcomeUnknown) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "outcome_unknown"
    assert caught.value.permanent is False
    assert not isinstance(caught.value, VoipmsTransientError)
    assert "may have sent" in caught.value.message


def test_a_read_timeout_on_a_read_is_a_plain_transient_error(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    mocked.post(DEFAULT_API_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(VoipmsTransientError) as caught:
        client.get_sms(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 7))

    assert caught.value.code == "read_timeout"


def _refused() -> requests.ConnectionError:
    """Build the error requests raises when the connection is refused."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, "/api/v1/rest.php", reason))


def _dns_failure() -> requests.ConnectionError:
    """Build the error requests raises when the host name does not resolve."""
    reason = NameResolutionError("voip.ms", None, socket.gaierror(-2, "Name or service not known"))
    return requests.ConnectionError(MaxRetryError(None, "/api/v1/rest.php", reason))


@pytest.mark.parametrize(
    "failure",
    [_refused, _dns_failure, lambda: requests.exceptions.SSLError("handshake failed")],
    ids=["refused", "dns", "tls-handshake"],
)
def test_a_failure_to_connect_is_transient_because_nothing_was_sent(
    mocked: responses.RequestsMock,
    client: VoipmsClient,
    failure: Callable[[], requests.RequestException],
) -> None:
    mocked.post(DEFAULT_API_URL, body=failure())

    with pytest.raises(VoipmsTransientError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "connection_error"


@pytest.mark.parametrize(
    "failure",
    [
        lambda: requests.ConnectionError(
            ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
        ),
        lambda: requests.ConnectionError(
            ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
        ),
        lambda: requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken")),
    ],
    ids=["remote-disconnected", "reset", "chunked-encoding"],
)
def test_a_connection_dropped_after_a_send_is_an_unknown_outcome(
    mocked: responses.RequestsMock,
    client: VoipmsClient,
    failure: Callable[[], requests.RequestException],
) -> None:
    mocked.post(DEFAULT_API_URL, body=failure())

    with pytest.raises(VoipmsOutcomeUnknown):
        client.send_sms(did="8455577768", dst="8457231213", message="hi")


def test_a_malformed_api_url_is_a_permanent_error() -> None:
    with (
        VoipmsClient(USERNAME, PASSWORD, "voip.ms/api/v1/rest.php") as voipms,
        pytest.raises(VoipmsError) as caught,
    ):
        voipms.get_ip()

    assert caught.value.code == "invalid_api_url"
    assert caught.value.permanent is True


@pytest.fixture
def local_server() -> Iterator[Callable[[str], str]]:
    """Serve one connection on localhost that misbehaves in the named way, and join it after."""
    threads: list[threading.Thread] = []
    release = threading.Event()

    def start(behaviour: str) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def serve() -> None:
            with listener, listener.accept()[0] as connection:
                connection.recv(65536)
                if behaviour == "stall":
                    release.wait(5)
                elif behaviour == "truncate":
                    connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"status')

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{port}/api/v1/rest.php"

    yield start
    release.set()
    for thread in threads:
        thread.join(5)


@pytest.mark.parametrize("behaviour", ["close", "stall", "truncate"])
def test_a_real_connection_lost_after_sending_is_an_unknown_outcome(
    local_server: Callable[[str], str], behaviour: str
) -> None:
    url = local_server(behaviour)

    with (
        VoipmsClient(USERNAME, PASSWORD, url, read_timeout=0.2) as voipms,
        pytest.raises(VoipmsOutcomeUnknown),
    ):
        voipms.send_sms(did="8455577768", dst="8457231213", message="hi")


def test_a_real_refused_connection_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/v1/rest.php"

    with (
        VoipmsClient(USERNAME, PASSWORD, url) as voipms,
        pytest.raises(VoipmsTransientError) as caught,
    ):
        voipms.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert caught.value.code == "connection_error"


def test_get_sms_reads_rows_as_new_york_wall_clock_times_across_dst(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(
        mocked,
        {
            "status": "success",
            "sms": [
                {
                    "id": "15601",
                    "date": "2026-09-07 10:20:46",
                    "type": "1",
                    "did": "8455577768",
                    "contact": "8457231213",
                    "message": "hi",
                    "carrier_status": "received",
                },
                {
                    "id": 15602,
                    "date": "2026-01-15 10:20:46",
                    "type": 0,
                    "did": 8455577768,
                    "contact": "8457231213",
                    "message": "winter",
                },
            ],
        },
    )

    summer, winter = client.get_sms(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31))

    assert summer == SmsRecord(
        id=15601,
        kind="sms",
        date=dt.datetime(2026, 9, 7, 14, 20, 46, tzinfo=UTC),
        type=1,
        did="8455577768",
        contact="8457231213",
        message="hi",
        carrier_status="received",
        media=(),
    )
    assert summer.date.utcoffset() == dt.timedelta(hours=-4)
    assert winter.date == dt.datetime(2026, 1, 15, 15, 20, 46, tzinfo=UTC)
    assert winter.date.utcoffset() == dt.timedelta(hours=-5)
    assert (winter.id, winter.type, winter.did, winter.carrier_status) == (
        15602,
        0,
        "8455577768",
        "",
    )


def test_get_sms_sends_dates_and_every_filter_with_voipms_names(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_sms", "message": "There are no SMS messages"})

    client.get_sms(
        date_from=dt.date(2026, 6, 1),
        date_to=dt.date(2026, 8, 31),
        type=1,
        did="8455577768",
        contact="8457231213",
        limit=200,
        sms_id=15601,
    )

    assert dict(form_fields(only_request(mocked)))["method"] == "getSMS"
    assert sent_params(mocked) == {
        "from": "2026-06-01",
        "to": "2026-08-31",
        "type": "1",
        "did": "8455577768",
        "contact": "8457231213",
        "limit": "200",
        "sms": "15601",
    }


def test_get_sms_sends_only_the_dates_when_no_filter_is_given(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_sms"})

    client.get_sms(date_from=dt.date(2026, 6, 1), date_to=dt.date(2026, 6, 2), type=0)

    assert sent_params(mocked) == {"from": "2026-06-01", "to": "2026-06-02", "type": "0"}


def test_get_sms_turns_an_aware_datetime_into_a_new_york_date(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_sms"})

    client.get_sms(
        date_from=dt.datetime(2026, 3, 1, 3, 0, tzinfo=UTC),
        date_to=dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )

    assert sent_params(mocked) == {"from": "2026-02-28", "to": "2026-03-01"}


def test_get_sms_refuses_a_type_other_than_received_or_sent(client: VoipmsClient) -> None:
    with pytest.raises(ValueError, match="type"):
        client.get_sms(date_from=dt.date(2026, 6, 1), date_to=dt.date(2026, 6, 2), type=2)


def test_get_sms_skips_rows_without_a_usable_id_or_date_and_keeps_the_rest(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    good = {"id": "3", "date": "2026-09-07 10:20:46", "type": "1", "did": "1", "contact": "2"}
    answer_json(
        mocked,
        {
            "status": "success",
            "sms": [
                {**good, "id": ""},
                {**good, "date": "0000-00-00 00:00:00"},
                {**good, "type": None},
                "not a row",
                good,
            ],
        },
    )

    records = client.get_sms(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 7))

    assert [record.id for record in records] == [3]
    assert records[0].message == ""


def test_get_mms_reads_media_from_columns_and_the_media_list_without_duplicates(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    first = "https://voip.ms/media/MTc4ODc5/media.png"
    second = "https://voip.ms/media/ZmFrZQ/media.jpg"
    answer_json(
        mocked,
        {
            "status": "success",
            "sms": [
                {
                    "id": "10239205",
                    "date": "2026-09-07 10:22:44",
                    "type": "1",
                    "did": "8455577768",
                    "contact": "8457231213",
                    "message": "",
                    "col_media1": first,
                    "col_media2": second,
                    "col_media3": "",
                    "media": [first, second],
                },
                {
                    "id": "10239206",
                    "date": "2026-09-07 10:23:00",
                    "type": "1",
                    "did": "8455577768",
                    "contact": "8457231213",
                    "message": "two",
                    "media": f"{first}, {second},",
                },
                {
                    "id": "10239207",
                    "date": "2026-09-07 10:24:00",
                    "type": "0",
                    "did": "8455577768",
                    "contact": "8457231213",
                    "message": "none",
                },
            ],
        },
    )

    records = client.get_mms(date_from=dt.date(2026, 9, 7), date_to=dt.date(2026, 9, 7))

    assert [record.kind for record in records] == ["mms", "mms", "mms"]
    assert records[0].media == (first, second)
    assert records[1].media == (first, second)
    assert records[2].media == ()
    assert records[0].date == dt.datetime(2026, 9, 7, 14, 22, 44, tzinfo=UTC)


def test_get_mms_keeps_a_data_url_whole_in_a_comma_separated_media_list(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    data_url = "data:image/png;base64,iVBORw0KGgo="
    row = {"id": "7", "date": "2026-09-07 10:22:44", "type": "0", "did": "1", "contact": "2"}
    answer_json(
        mocked,
        {"status": "success", "sms": [{**row, "media": f"{data_url},https://example.com/b.gif"}]},
    )

    (record,) = client.get_mms(date_from=dt.date(2026, 9, 7), date_to=dt.date(2026, 9, 7))

    assert record.media == (data_url, "https://example.com/b.gif")


def test_get_mms_accepts_media_given_as_url_objects(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    row = {"id": "7", "date": "2026-09-07 10:22:44", "type": "1", "did": "1", "contact": "2"}
    answer_json(
        mocked, {"status": "success", "sms": [{**row, "media": [{"url": "https://x.test/a"}]}]}
    )

    (record,) = client.get_mms(date_from=dt.date(2026, 9, 7), date_to=dt.date(2026, 9, 7))

    assert record.media == ("https://x.test/a",)


def test_get_mms_calls_get_mms_with_the_mms_id_filter(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "no_sms"})

    client.get_mms(date_from=dt.date(2026, 9, 7), date_to=dt.date(2026, 9, 7), mms_id=10239205)

    assert dict(form_fields(only_request(mocked)))["method"] == "getMMS"
    assert sent_params(mocked) == {"from": "2026-09-07", "to": "2026-09-07", "mms": "10239205"}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("1", True),
        (1, True),
        (True, True),
        ("true", True),
        ("yes", True),
        (" Yes ", True),
        ("0", False),
        (0, False),
        (False, False),
        ("false", False),
        ("no", False),
        ("", False),
        (None, False),
    ],
)
def test_get_dids_info_reads_flags_sent_as_strings_numbers_or_words(
    mocked: responses.RequestsMock, client: VoipmsClient, flag: object, expected: bool
) -> None:
    answer_json(
        mocked,
        {
            "status": "success",
            "dids": [
                {
                    "did": "8455577768",
                    "sms_available": flag,
                    "sms_enabled": flag,
                    "mms_available": flag,
                    "webhook_enabled": flag,
                }
            ],
        },
    )

    (info,) = client.get_dids_info()

    assert info.sms_available is expected
    assert info.sms_enabled is expected
    assert info.mms_available is expected
    assert info.webhook_enabled is expected
    assert info.webhook == ""


def test_get_dids_info_returns_each_did_with_its_webhook_and_raw_row(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    row = {
        "did": 8455577768,
        "sms_available": "1",
        "sms_enabled": "1",
        "mms_available": "0",
        "webhook": "https://portal.example.com/emc/VoipMS/4b1c",
        "webhook_enabled": 1,
        "routing": "account:100001_pbx",
    }
    answer_json(mocked, {"status": "success", "dids": [row, {"did": ""}]})

    infos = client.get_dids_info(did="8455577768")

    assert infos == [
        DidInfo(
            did="8455577768",
            sms_available=True,
            sms_enabled=True,
            mms_available=False,
            webhook="https://portal.example.com/emc/VoipMS/4b1c",
            webhook_enabled=True,
        )
    ]
    assert infos[0].raw["routing"] == "account:100001_pbx"
    assert "routing" not in repr(infos[0])
    assert sent_params(mocked) == {"did": "8455577768"}


def test_get_dids_info_without_a_did_asks_for_every_did(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "dids": []})

    assert client.get_dids_info() == []
    assert sent_params(mocked) == {}
    assert dict(form_fields(only_request(mocked)))["method"] == "getDIDsInfo"


def test_get_ip_returns_the_address_voipms_sees(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success", "ip": "203.0.113.7"})

    assert client.get_ip() == "203.0.113.7"
    assert dict(form_fields(only_request(mocked)))["method"] == "getIP"
    assert sent_params(mocked) == {}


def test_get_ip_without_an_ip_in_the_answer_is_transient(
    mocked: responses.RequestsMock, client: VoipmsClient
) -> None:
    answer_json(mocked, {"status": "success"})

    with pytest.raises(VoipmsTransientError):
        client.get_ip()


def test_the_client_repr_names_the_account_but_not_the_password() -> None:
    voipms = VoipmsClient(USERNAME, PASSWORD)
    voipms.close()

    assert repr(voipms) == "<VoipmsClient owner@example.com>"


def test_a_session_passed_in_is_left_open_for_its_owner(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_json(mocked, {"status": "success", "ip": "203.0.113.7"})
    closed: list[bool] = []
    shared = requests.Session()
    monkeypatch.setattr(shared, "close", lambda: closed.append(True))

    with VoipmsClient(USERNAME, PASSWORD, session=shared) as voipms:
        voipms.get_ip()

    assert closed == []


@pytest.mark.parametrize(
    "register",
    [
        lambda mock: mock.post(
            DEFAULT_API_URL,
            json={"status": "invalid_credentials", "message": f"Wrong password {PASSWORD}"},
        ),
        lambda mock: mock.post(
            DEFAULT_API_URL, body=f"<html><p>api_password={PASSWORD}</p></html>", status=403
        ),
        lambda mock: mock.post(DEFAULT_API_URL, body=requests.ConnectTimeout("timed out")),
        lambda mock: mock.post(DEFAULT_API_URL, body=requests.ReadTimeout("timed out")),
        lambda mock: mock.post(
            DEFAULT_API_URL, status=302, headers={"Location": f"https://x.test/?p={PASSWORD}"}
        ),
    ],
    ids=["json-error-echo", "html-echo", "connect-timeout", "read-timeout", "redirect"],
)
def test_the_password_never_appears_in_errors_or_logs_on_failure(
    mocked: responses.RequestsMock,
    client: VoipmsClient,
    caplog: pytest.LogCaptureFixture,
    register: Callable[[responses.RequestsMock], object],
) -> None:
    register(mocked)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(VoipmsError) as caught:
        client.send_sms(did="8455577768", dst="8457231213", message="hi")

    error = caught.value
    shown = [str(error), repr(error), error.message, getattr(error, "excerpt", ""), repr(client)]
    shown += [record.getMessage() for record in caplog.records]
    assert not [text for text in shown if PASSWORD in text]
    assert any(record.levelno == logging.WARNING for record in caplog.records)
    assert "sendSMS" in caplog.text
    assert error.code in caplog.text


def test_the_password_never_appears_in_logs_on_success(
    mocked: responses.RequestsMock, client: VoipmsClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer_json(mocked, {"status": "success", "sms": 112275629})
    caplog.set_level(logging.DEBUG)

    client.send_sms(did="8455577768", dst="8457231213", message="hi")

    assert PASSWORD not in caplog.text
    (record,) = [record for record in caplog.records if record.name == "trunks.voipms"]
    assert record.levelno == logging.INFO
    assert "sendSMS" in record.getMessage()
    assert "success" in record.getMessage()
    assert " ms" in record.getMessage()


@pytest.mark.parametrize(
    "error",
    [
        VoipmsError("sms_failed", "not sent", permanent=True),
        VoipmsTransientError("bad_response", "html", excerpt="error code: 522", http_status=522),
        VoipmsTransientError("api_limit_exceeded", "slow down", retry_after=60.0),
        VoipmsOutcomeUnknown("may have been sent", http_status=524),
    ],
)
def test_errors_survive_pickling_for_celery(error: VoipmsError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301

    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
    assert copy.route_level is error.route_level


def test_get_messages_refuses_a_kind_voipms_has_no_history_for(client: VoipmsClient) -> None:
    with pytest.raises(ValueError, match="kind must be 'sms' or 'mms'"):
        client.get_messages("fax", date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 2))
