"""Answer VoIP.ms REST API calls as the live service does (DOMAIN.md §2)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import logging
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.exceptions import RequestDataTooBig
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone

from trunks.voipms.sandbox.models import (
    FaultMode,
    MessageKind,
    SandboxAccount,
    SandboxDid,
    SandboxMessage,
)
from trunks.voipms.sandbox.services import (
    ANY_ADDRESS,
    EASTERN,
    MAX_MEDIA,
    MAX_MMS_CHARS,
    SandboxLimitReached,
    nanp_digits,
    sandbox_message_send,
)

logger = logging.getLogger("trunks.voipms.sandbox")

MAX_SMS_BYTES = 160
MAX_DATE_RANGE_DAYS = 92
DEFAULT_HISTORY_LIMIT = 50
# About 1.2 MB per file is the observed ceiling (DOMAIN.md §2, sendMMS; a guess).
MAX_MEDIA_BYTES = 1_200_000
SEND_METHODS = frozenset({"sendSMS", "sendMMS"})
MEDIA_TYPE_PREFIXES = ("image/", "audio/", "video/")

# A sandbox account with a latency keeps hundreds of requests waiting at once; after the wait
# at most this many per process use the database together, so they do not all open a connection.
LATENCY_DATABASE_TURNS = threading.BoundedSemaphore(8)

_DATA_URL = re.compile(r"data:([a-z]+/[a-z0-9.+-]+);base64,(.*)", re.DOTALL | re.IGNORECASE)
_API_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ALLOWLIST_SEPARATOR = re.compile(r"[\s,;]+")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")

SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">\
<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode>\
<faultstring>Bad Request</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>
"""

CLOUDFLARE_BLOCK = """<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" /><meta name="robots" content="noindex, nofollow" />
<style>body{{font-family:sans-serif}}</style></head>
<body><div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<h1 data-translate="block_headline">Sorry, you have been blocked</h1>
<h2 class="cf-subheadline">You are unable to access voip.ms</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
<div class="cf-footer">Cloudflare Ray ID: <strong>{ray}</strong> &bull; Your IP: {ip}</div>
</div></div></body></html>
"""

CLOUDFLARE_521 = """<!DOCTYPE html>
<html lang="en-US"><head><title>voip.ms | 521: Web server is down</title>
<meta charset="UTF-8" /></head>
<body><div id="cf-wrapper"><h1><span class="inline-block">Web server is down</span>
<span class="code-label">Error code 521</span></h1>
<p>The web server is not returning a connection. As a result, the web page is not displaying.</p>
<div class="cf-footer">Cloudflare Ray ID: <strong>{ray}</strong></div></div></body></html>
"""


class ApiError(Exception):
    """Stop an API call with a VoIP.ms status code and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ApiCall:
    """One authenticated API call: the account, its parameters and the request."""

    account: SandboxAccount
    params: Mapping[str, str]
    request: HttpRequest

    def param(self, name: str) -> str:
        """Return a parameter, or "" when it is absent."""
        return self.params.get(name, "")


# Allow-list -------------------------------------------------------------------------------


def ip_allowed(allowlist: str, address: str) -> bool:
    """Tell whether an allow-list (IPs, CIDR, * wildcards, host names, 0.0.0.0) admits an IP."""
    try:
        client = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    entries = (entry for entry in _ALLOWLIST_SEPARATOR.split(allowlist) if entry)
    return any(_entry_allows(entry, client) for entry in entries)


def _entry_allows(entry: str, client: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Tell whether one allow-list entry admits the client address."""
    if entry == ANY_ADDRESS:
        return True
    if "/" in entry:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
        return client.version == network.version and client in network
    if "*" in entry:
        # Each * stands for one whole octet: 192.168.*.*
        pattern = re.escape(entry).replace(r"\*", "[0-9]{1,3}")
        return re.fullmatch(pattern, str(client)) is not None
    try:
        return ipaddress.ip_address(entry) == client
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(entry):
        return False
    try:
        resolved = socket.gethostbyname(entry)
    except (OSError, UnicodeError):
        return False
    return resolved == str(client)


# Parameters -------------------------------------------------------------------------------


def _own_did(call: ApiCall) -> SandboxDid:
    """Return the DID named by the did parameter, which must be on the caller's account."""
    raw = call.param("did").strip()
    if not raw:
        raise ApiError("missing_did", "Missing DID parameter")
    digits = nanp_digits(raw)
    # A unique key: no ORDER BY (every send looks its DID up).
    found = call.account.dids.filter(did=digits).order_by()[:1] if digits else ()
    sandbox_did = next(iter(found), None)
    if sandbox_did is None:
        raise ApiError("invalid_did", "This DID is not valid or not on this account")
    return sandbox_did


def _destination(call: ApiCall) -> str:
    """Return the dst parameter as 10 digits."""
    raw = call.param("dst").strip()
    if not raw:
        raise ApiError("missing_params", "Missing parameter: dst")
    digits = nanp_digits(raw)
    if digits is None:
        raise ApiError("invalid_dst", "The destination is not a valid US or Canadian number")
    return digits


def _check_media(value: str) -> None:
    """Refuse a media item that is neither a public URL nor a base64 data URL of a media type."""
    match = _DATA_URL.fullmatch(value)
    if match is not None:
        if not match[1].lower().startswith(MEDIA_TYPE_PREFIXES):
            raise ApiError("invalid_media", f"Media type {match[1]} is not accepted")
        try:
            content = base64.b64decode(re.sub(r"\s+", "", match[2]), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("invalid_media", "The media is not valid base64") from None
        if not content or len(content) > MAX_MEDIA_BYTES:
            raise ApiError("invalid_media", "The media is empty or too large")
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError("invalid_media", "Media must be a public URL or a base64 data URL")


def _record(
    call: ApiCall,
    *,
    kind: str,
    sandbox_did: SandboxDid,
    contact: str,
    text: str,
    media: list[str],
) -> SandboxMessage:
    """Record an accepted send, turning the daily cap into limit_reached."""
    try:
        return sandbox_message_send(
            account=call.account,
            kind=kind,
            did=sandbox_did.did,
            contact=contact,
            message=text,
            media=media,
        )
    except SandboxLimitReached as error:
        raise ApiError("limit_reached", error.message) from None


def _api_date(value: str, default: dt.date) -> dt.date:
    """Return a YYYY-MM-DD filter, or the default when absent."""
    value = value.strip()
    if not value:
        return default
    if not _API_DATE.fullmatch(value):
        raise ApiError("invalid_date", f"Invalid date {value}; use YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError("invalid_date", f"Invalid date {value}; use YYYY-MM-DD") from None


# Methods ----------------------------------------------------------------------------------


def send_sms(call: ApiCall) -> dict[str, Any]:
    """Send a text of at most 160 UTF-8 bytes."""
    sandbox_did = _own_did(call)
    contact = _destination(call)
    text = call.param("message")
    if not text.strip():
        raise ApiError("message_empty", "The message is empty")
    if len(text.encode("utf-8")) > MAX_SMS_BYTES:
        raise ApiError("sms_toolong", f"The message is longer than {MAX_SMS_BYTES} bytes")
    if not (sandbox_did.sms_available and sandbox_did.sms_enabled):
        raise ApiError("sms_failed", "The SMS could not be sent: SMS is not enabled on this DID")
    message = _record(
        call, kind=MessageKind.SMS, sandbox_did=sandbox_did, contact=contact, text=text, media=[]
    )
    return {"status": "success", "sms": message.provider_id}


def send_mms(call: ApiCall) -> dict[str, Any]:
    """Send an MMS with up to three media, each a public URL or a base64 data URL."""
    sandbox_did = _own_did(call)
    contact = _destination(call)
    text = call.param("message")
    media = [
        value.strip()
        for number in range(1, MAX_MEDIA + 1)
        if (value := call.param(f"media{number}")).strip()
    ]
    if not text.strip() and not media:
        raise ApiError("message_empty", "The message is empty")
    if len(text) > MAX_MMS_CHARS:
        raise ApiError("sms_toolong", f"The message is longer than {MAX_MMS_CHARS} characters")
    for item in media:
        _check_media(item)
    if not (sandbox_did.sms_available and sandbox_did.sms_enabled and sandbox_did.mms_available):
        raise ApiError("sms_failed", "The MMS could not be sent: MMS is not available on this DID")
    message = _record(
        call, kind=MessageKind.MMS, sandbox_did=sandbox_did, contact=contact, text=text, media=media
    )
    return {"status": "success", "mms": message.provider_id}


def _media_links(call: ApiCall, message: SandboxMessage) -> list[str]:
    """Return public links to an MMS's media, serving data URLs from the sandbox."""
    links = []
    for index, item in enumerate(message.media, start=1):
        if item.startswith("data:"):
            query = urlencode({"mms": message.provider_id, "index": index})
            item = call.request.build_absolute_uri(f"{reverse('sandbox_media')}?{query}")
        links.append(item)
    return links


def _history_row(
    call: ApiCall, message: SandboxMessage, dids: Mapping[str, SandboxDid], now: dt.datetime
) -> dict[str, Any]:
    """Return one getSMS/getMMS row: ids and flags as strings, dates as US Eastern wall clock."""
    sandbox_did = dids.get(message.did)
    formatted = sandbox_did.formatted if sandbox_did is not None else str
    row: dict[str, Any] = {
        "id": str(message.provider_id),
        "date": message.created_at.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S"),
        "type": str(message.type),
        "did": formatted(message.did),
        "contact": formatted(message.contact),
        "message": message.message,
    }
    if message.kind == MessageKind.MMS:
        links = _media_links(call, message)
        for number in range(1, MAX_MEDIA + 1):
            row[f"col_media{number}"] = links[number - 1] if number <= len(links) else ""
        row["media"] = links
    row["carrier_status"] = message.carrier_status(
        now=now, delivery_delay_s=call.account.delivery_delay_s
    )
    return row


def _history(call: ApiCall, kind: str) -> dict[str, Any]:
    """Return the account's messages of one kind that match the filters, newest first."""
    now = timezone.now()
    today = now.astimezone(EASTERN).date()
    date_from = _api_date(call.param("from"), today)
    date_to = _api_date(call.param("to"), today)
    if date_from > date_to or (date_to - date_from).days > MAX_DATE_RANGE_DAYS:
        raise ApiError(
            "invalid_daterange", f"The date range must be at most {MAX_DATE_RANGE_DAYS} days"
        )
    start = dt.datetime.combine(date_from, dt.time(), tzinfo=EASTERN)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=EASTERN)
    messages = call.account.messages.filter(
        kind=kind, created_at__gte=start, created_at__lt=end
    ).order_by("-created_at", "-provider_id")
    message_type = call.param("type").strip()
    if message_type in ("0", "1"):
        messages = messages.filter(type=int(message_type))
    if call.param("did").strip():
        messages = messages.filter(did=_own_did(call).did)
    contact = call.param("contact").strip()
    if contact:
        messages = messages.filter(contact=nanp_digits(contact) or contact)
    wanted_id = call.param(kind).strip()
    if wanted_id:
        messages = (
            messages.filter(provider_id=int(wanted_id)) if wanted_id.isdigit() else messages.none()
        )
    limit_text = call.param("limit").strip()
    limit = int(limit_text) if limit_text.isdigit() and int(limit_text) > 0 else None
    rows = list(messages[: limit or DEFAULT_HISTORY_LIMIT])
    if not rows:
        return {"status": "no_sms", "message": f"There are no {kind.upper()} messages"}
    dids = {sandbox_did.did: sandbox_did for sandbox_did in call.account.dids.all()}
    # The list key is "sms" for getMMS too (DOMAIN.md §2).
    return {"status": "success", "sms": [_history_row(call, row, dids, now) for row in rows]}


def get_sms(call: ApiCall) -> dict[str, Any]:
    """Return SMS history."""
    return _history(call, MessageKind.SMS)


def get_mms(call: ApiCall) -> dict[str, Any]:
    """Return MMS history."""
    return _history(call, MessageKind.MMS)


def _flag(value: bool) -> str:
    """Return a flag as VoIP.ms writes it."""
    return "1" if value else "0"


def get_dids_info(call: ApiCall) -> dict[str, Any]:
    """Return the messaging settings of one DID or of all the account's DIDs."""
    dids = list(call.account.dids.all()) if not call.param("did").strip() else [_own_did(call)]
    if not dids:
        return {"status": "no_did", "message": "There are no DIDs on this account"}
    return {
        "status": "success",
        "dids": [
            {
                "did": sandbox_did.did,
                "description": "",
                "sms_available": _flag(sandbox_did.sms_available),
                "sms_enabled": _flag(sandbox_did.sms_enabled),
                "mms_available": _flag(sandbox_did.mms_available),
                "sms_email": sandbox_did.email_address,
                "sms_email_enabled": _flag(sandbox_did.email_enabled),
                "sms_forward": sandbox_did.forward_to,
                "sms_forward_enabled": _flag(sandbox_did.forward_enabled),
                "sms_url_callback": sandbox_did.callback_url,
                "sms_url_callback_enabled": _flag(sandbox_did.callback_enabled),
                "sms_url_callback_retry": _flag(sandbox_did.callback_retry),
                "webhook": sandbox_did.webhook_url,
                "webhook_enabled": _flag(sandbox_did.webhook_enabled),
            }
            for sandbox_did in dids
        ],
    }


# setSMS's flags and the DID fields they write. It is a checkbox form: a flag that is not sent
# is switched off; `webhook_enabled` (getDIDsInfo's name) is not one of them and does nothing.
SET_SMS_FLAGS = {
    "enable": "sms_enabled",
    "email_enabled": "email_enabled",
    "sms_forward_enable": "forward_enabled",
    "url_callback_enable": "callback_enabled",
    "url_callback_retry": "callback_retry",
    "webhook_enable": "webhook_enabled",
}
# Its text settings; what DOMAIN.md does not say (whether an omitted one is cleared) the sandbox
# does not invent: an omitted text is kept.
SET_SMS_TEXTS = {
    "email_address": "email_address",
    "sms_forward": "forward_to",
    "url_callback": "callback_url",
    "webhook": "webhook_url",
}
DIALMODES = {"1": "nanpa", "2": "e164"}
SET_SMS_INTERVAL = dt.timedelta(minutes=1)


def _checked(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "on", "yes"}


def set_sms(call: ApiCall) -> dict[str, Any]:
    """Write one DID's SMS settings, with VoIP.ms's traps (DOMAIN.md §2)."""
    sandbox_did = _own_did(call)
    if "enable" not in call.params:
        raise ApiError("missing_params", "Missing parameter: enable")
    now = timezone.now()
    with transaction.atomic():
        sandbox_did = SandboxDid.objects.select_for_update().get(pk=sandbox_did.pk)
        changed_at = sandbox_did.sms_settings_changed_at
        if changed_at is not None and now - changed_at < SET_SMS_INTERVAL:
            raise ApiError(
                "sms_wait_message", "Please wait one minute before changing these settings again"
            )
        for param, name in SET_SMS_FLAGS.items():
            setattr(sandbox_did, name, _checked(call.param(param)))
        for param, name in SET_SMS_TEXTS.items():
            if param in call.params:
                setattr(sandbox_did, name, call.param(param).strip())
        dialmode = DIALMODES.get(call.param("dialmode").strip())
        if dialmode is not None:
            sandbox_did.number_format = dialmode
        # A DID without SMS keeps SMS off whatever the form says.
        sandbox_did.sms_enabled = sandbox_did.sms_enabled and sandbox_did.sms_available
        sandbox_did.sms_settings_changed_at = now
        sandbox_did.save()
    return {"status": "success"}


def get_ip(call: ApiCall) -> dict[str, Any]:
    """Return the address the call came from."""
    return {"status": "success", "ip": call.request.META.get("REMOTE_ADDR", "")}


METHODS: dict[str, Callable[[ApiCall], dict[str, Any]]] = {
    "sendSMS": send_sms,
    "sendMMS": send_mms,
    "getSMS": get_sms,
    "getMMS": get_mms,
    "getDIDsInfo": get_dids_info,
    "setSMS": set_sms,
    "getIP": get_ip,
}


# Dispatch ---------------------------------------------------------------------------------


def _answer(
    params: Mapping[str, str], account: SandboxAccount | None, request: HttpRequest
) -> dict[str, Any]:
    """Authenticate the call, check the allow-list and run the method."""
    username = params.get("api_username", "").strip()
    password = params.get("api_password", "")
    if not username or not password:
        raise ApiError("missing_credentials", "Username or password is missing")
    if account is None or not secrets.compare_digest(
        password.encode("utf-8"), account.api_password.encode("utf-8")
    ):
        raise ApiError("invalid_credentials", "Username or password is incorrect")
    if not account.api_enabled:
        raise ApiError("api_not_enabled", "The API is not enabled for this account")
    method = params.get("method", "").strip()
    if not method:
        raise ApiError("missing_method", "The method is missing")
    handler = METHODS.get(method)
    if handler is None:
        raise ApiError("invalid_method", "This method is not valid")
    # getIP alone answers from anywhere, so the caller can learn what to allow-list.
    if method != "getIP" and not ip_allowed(
        account.ip_allowlist, request.META.get("REMOTE_ADDR", "")
    ):
        raise ApiError("ip_not_enabled", "This IP address is not enabled for API use")
    return handler(ApiCall(account=account, params=params, request=request))


def _fault_roll(account: SandboxAccount) -> str:
    """Return the fault this call gets, or "" for a normal answer."""
    if not account.fault_mode:
        return ""
    # Choosing which simulated calls fail is not a security decision.
    return account.fault_mode if random.random() < account.fault_rate else ""  # noqa: S311


def fault_response(mode: str, request: HttpRequest) -> HttpResponse:
    """Return what Cloudflare or the SOAP layer answers instead of VoIP.ms's JSON."""
    ray = secrets.token_hex(8)
    if mode == FaultMode.CLOUDFLARE_HTML:
        body = CLOUDFLARE_BLOCK.format(ray=ray, ip=request.META.get("REMOTE_ADDR", ""))
        return HttpResponse(body, status=403, content_type="text/html; charset=UTF-8")
    if mode == FaultMode.HTML_521:
        return HttpResponse(
            CLOUDFLARE_521.format(ray=ray),
            status=521,
            reason="Web Server Is Down",
            content_type="text/html; charset=UTF-8",
        )
    if mode == FaultMode.ERROR_522:
        return HttpResponse(
            "error code: 522",
            status=522,
            reason="Connection Timed Out",
            content_type="text/plain; charset=UTF-8",
        )
    return soap_fault_response()


def soap_fault_response() -> HttpResponse:
    """Return the SOAP fault VoIP.ms answers to a url-encoded POST."""
    return HttpResponse(SOAP_FAULT, status=500, content_type="text/xml; charset=utf-8")


def _params(request: HttpRequest) -> dict[str, str]:
    """Return the call's parameters, POST fields winning over the query string as in PHP."""
    params = request.GET.dict()
    if request.method == "POST":
        params.update(request.POST.dict())
    return params


def respond(request: HttpRequest) -> HttpResponse:
    """Answer one REST API call, applying the account's latency and faults."""
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        # The live service answers url-encoded POSTs with a SOAP fault (DOMAIN.md §2).
        logger.info("Sandbox API refused a url-encoded POST with a SOAP fault")
        return soap_fault_response()
    try:
        params = _params(request)
    except RequestDataTooBig:
        return HttpResponse(
            "<html><body><h1>413 Request Entity Too Large</h1></body></html>",
            status=413,
            content_type="text/html",
        )
    method = params.get("method", "").strip()
    # Log only names we know: the parameter is free text from the caller.
    method_label = method if method in METHODS else "(no known method)"
    username = params.get("api_username", "").strip().lower()
    account = _account(username) if username else None
    turn = _LatencyTurn()
    try:
        return _respond_to_account(request, params, method, method_label, account, turn)
    finally:
        turn.release()


def _account(username: str) -> SandboxAccount | None:
    try:
        return SandboxAccount.objects.get(username=username)
    except SandboxAccount.DoesNotExist:
        return None


class _LatencyTurn:
    """Wait out an account's latency without a database connection, then take a turn.

    VoIP.ms's latency is not ours: a sandbox with hundreds of sends in flight holds no connection
    while they wait, and at most a few per process use the database together afterwards.
    """

    def __init__(self) -> None:
        self.held = False

    def wait(self, seconds: float) -> None:
        if connection.in_atomic_block:  # a test's transaction: keep its connection
            time.sleep(seconds)
            return
        connection.close()
        time.sleep(seconds)
        LATENCY_DATABASE_TURNS.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            connection.close()
            self.held = False
            LATENCY_DATABASE_TURNS.release()


def _respond_to_account(
    request: HttpRequest,
    params: dict[str, str],
    method: str,
    method_label: str,
    account: SandboxAccount | None,
    turn: _LatencyTurn,
) -> HttpResponse:
    fault = ""
    if account is not None:
        if account.latency_ms:
            turn.wait(account.latency_ms / 1000)
        fault = _fault_roll(account)
        if fault and fault != FaultMode.TIMEOUT_AFTER_ACCEPT:
            logger.info("Sandbox API %s answered with fault %s", method_label, fault)
            return fault_response(fault, request)
    try:
        payload = _answer(params, account, request)
    except ApiError as error:
        payload = {"status": error.code, "message": error.message}
    logger.info("Sandbox API %s answered %s", method_label, payload["status"])
    if (
        account is not None
        and fault == FaultMode.TIMEOUT_AFTER_ACCEPT
        and method in SEND_METHODS
        and payload["status"] == "success"
    ):
        # The send is committed; the answer comes too late for the caller's read timeout.
        turn.release()
        time.sleep(account.timeout_sleep_s)
    return JsonResponse(payload)


def media_content(*, mms_id: int, index: int) -> tuple[bytes, str] | None:
    """Return the bytes and type of an MMS's data-URL media, or None."""
    message = SandboxMessage.objects.filter(kind=MessageKind.MMS, provider_id=mms_id).first()
    if message is None or not 1 <= index <= len(message.media):
        return None
    match = _DATA_URL.fullmatch(message.media[index - 1])
    if match is None:
        return None
    try:
        content = base64.b64decode(re.sub(r"\s+", "", match[2]), validate=True)
    except (binascii.Error, ValueError):
        return None
    return content, match[1].lower()
