"""Call the VoIP.ms REST API: send SMS and MMS, read message history and DID settings."""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Self

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from trunks.voipms.errors import (
    VoipmsError,
    VoipmsOutcomeUnknown,
    VoipmsTransientError,
    collapse_whitespace,
    error_for_status,
)
from trunks.voipms.formats import VOIPMS_TIMEZONE

__version__ = "0.1.0"

DEFAULT_API_URL = "https://voip.ms/api/v1/rest.php"
USER_AGENT = f"SeedSMSPortal/{__version__} (+https://github.com/seed-sms-portal)"
MAX_MMS_MEDIA = 3


logger = logging.getLogger("trunks.voipms")

_EMPTY_RESULT_STATUSES = frozenset({"no_sms", "no_did"})
_TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on", "enabled"})
_CLOUDFLARE_ORIGIN_TIMEOUT = 524

# Failures that prove the request never left this machine, so nothing can have been sent.
_NOT_SENT_CAUSES = (
    NewConnectionError,
    ConnectTimeoutError,
    socket.gaierror,
    ConnectionRefusedError,
)

_HTML_NOISE = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]*>")
# Split a comma-separated media list only before a URL scheme, so data: URLs stay whole.
_MEDIA_SEPARATOR = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*:)")


@dataclass(frozen=True)
class SmsRecord:
    """Hold one row of VoIP.ms message history."""

    id: int
    kind: str
    date: dt.datetime
    type: int
    did: str
    contact: str
    message: str
    carrier_status: str = ""
    media: tuple[str, ...] = ()

    @property
    def carrier_state(self) -> str:
        """Return what the carrier status says of a sent message: delivered, failed or sent."""
        return carrier_state(self.carrier_status)


# Words in getSMS/getMMS's free-text `carrier_status` of a sent row. The one text DOMAIN.md has
# seen is "Message delivered to handset."; the failure words cover the carriers' usual wording
# ("Message failed", "undeliverable", "rejected by carrier", "expired"). Anything else (empty,
# "sent", "queued", "accepted") means the carrier has not settled it yet.
_DELIVERED_WORDS = ("delivered",)
_FAILED_WORDS = ("fail", "undeliver", "not delivered", "reject", "expired", "blocked", "error")


def carrier_state(text: str) -> str:
    """Map a VoIP.ms carrier status text to "delivered", "failed" or "sent" (not settled)."""
    lowered = text.lower()
    if any(word in lowered for word in _FAILED_WORDS):
        return "failed"
    if any(word in lowered for word in _DELIVERED_WORDS):
        return "delivered"
    return "sent"


@dataclass(frozen=True)
class SmsSettings:
    """Hold every setting setSMS writes for one DID; each one must be sent on every write."""

    sms_enabled: bool
    email_enabled: bool
    email_address: str
    forward_enabled: bool
    forward_to: str
    url_callback_enabled: bool
    url_callback: str
    url_callback_retry: bool
    webhook_enabled: bool
    webhook: str


@dataclass(frozen=True)
class DidInfo:
    """Hold the messaging settings of one DID as VoIP.ms reports them."""

    did: str
    sms_available: bool
    sms_enabled: bool
    mms_available: bool
    webhook: str
    webhook_enabled: bool
    description: str = ""
    email_enabled: bool = False
    email_address: str = ""
    forward_enabled: bool = False
    forward_to: str = ""
    url_callback_enabled: bool = False
    url_callback: str = ""
    url_callback_retry: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def sms_settings(self) -> SmsSettings:
        """Return the DID's current settings as setSMS takes them."""
        return SmsSettings(
            sms_enabled=self.sms_enabled,
            email_enabled=self.email_enabled,
            email_address=self.email_address,
            forward_enabled=self.forward_enabled,
            forward_to=self.forward_to,
            url_callback_enabled=self.url_callback_enabled,
            url_callback=self.url_callback,
            url_callback_retry=self.url_callback_retry,
            webhook_enabled=self.webhook_enabled,
            webhook=self.webhook,
        )


# setSMS's number formats (DOMAIN.md §2): its `dialmode` parameter.
DIALMODES = {"nanpa": "1", "e164": "2"}


class VoipmsClient:
    """Talk to the VoIP.ms REST API on behalf of one VoIP.ms account."""

    def __init__(
        self,
        username: str,
        password: str,
        base_url: str = DEFAULT_API_URL,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 45.0,
        session: requests.Session | None = None,
    ) -> None:
        self.username = username
        self._password = password
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"<VoipmsClient {self.username}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def send_sms(self, *, did: str, dst: str, message: str) -> int:
        """Send a text from `did` to `dst` and return the VoIP.ms SMS id."""
        data = self._call(
            "sendSMS", {"did": did, "dst": dst, "message": message}, has_side_effect=True
        )
        return self._sent_id(data, "sms", "sendSMS")

    def send_mms(self, *, did: str, dst: str, message: str, media: Sequence[str] = ()) -> int:
        """Send an MMS with up to three media URLs and return the VoIP.ms MMS id."""
        if isinstance(media, str | bytes):
            raise TypeError("media must be a sequence of URLs, not a single string")
        if len(media) > MAX_MMS_MEDIA:
            raise ValueError(
                f"VoIP.ms takes at most {MAX_MMS_MEDIA} media per MMS, got {len(media)}"
            )
        params = {"did": did, "dst": dst, "message": message}
        params.update({f"media{number}": url for number, url in enumerate(media, start=1)})
        data = self._call("sendMMS", params, has_side_effect=True)
        return self._sent_id(data, "mms", "sendMMS")

    def get_sms(self, *, sms_id: int | None = None, **filters: Any) -> list[SmsRecord]:
        """Return the SMS history rows that match the filters (see get_messages)."""
        return self.get_messages("sms", message_id=sms_id, **filters)

    def get_mms(self, *, mms_id: int | None = None, **filters: Any) -> list[SmsRecord]:
        """Return the MMS history rows that match the filters (see get_messages)."""
        return self.get_messages("mms", message_id=mms_id, **filters)

    def get_dids_info(self, *, did: str | None = None) -> list[DidInfo]:
        """Return the messaging settings of one DID, or of every DID on the account."""
        data = self._call("getDIDsInfo", {} if did is None else {"did": did}, has_side_effect=False)
        return [
            _did_info(row)
            for row in self._rows(data, "dids", "getDIDsInfo")
            if row.get("did") not in (None, "")
        ]

    def set_sms(self, *, did: str, settings: SmsSettings, number_format: str | None = None) -> None:
        """Write every SMS setting of one DID (and its number format when given) with setSMS."""
        # setSMS is a checkbox form: every flag it is not sent is switched off, so a write resends
        # every setting read from getDIDsInfo; the working flag names are `webhook_enable` and
        # `url_callback_enable`, not getDIDsInfo's `..._enabled` (DOMAIN.md §2).
        params = {
            "did": did,
            "enable": _flag(settings.sms_enabled),
            "email_enabled": _flag(settings.email_enabled),
            "email_address": settings.email_address,
            "sms_forward_enable": _flag(settings.forward_enabled),
            "sms_forward": settings.forward_to,
            "url_callback_enable": _flag(settings.url_callback_enabled),
            "url_callback": settings.url_callback,
            "url_callback_retry": _flag(settings.url_callback_retry),
            "webhook_enable": _flag(settings.webhook_enabled),
            "webhook": settings.webhook,
        }
        if number_format is not None:
            if number_format not in DIALMODES:
                raise ValueError(f'number format must be "nanpa" or "e164", not "{number_format}"')
            params["dialmode"] = DIALMODES[number_format]
        # "success" is not proof of the write (DOMAIN.md §2): the caller reads getDIDsInfo again.
        self._call("setSMS", params, has_side_effect=True)

    def get_ip(self) -> str:
        """Return the IP address VoIP.ms sees this server calling from."""
        data = self._call("getIP", {}, has_side_effect=False)
        ip = data.get("ip")
        if not isinstance(ip, str) or not ip.strip():
            raise VoipmsTransientError("bad_response", "VoIP.ms answered getIP without an IP")
        return ip.strip()

    def get_messages(
        self,
        kind: str,
        *,
        date_from: dt.date,
        date_to: dt.date,
        type: int | None = None,
        did: str | None = None,
        contact: str | None = None,
        limit: int | None = None,
        message_id: int | None = None,
    ) -> list[SmsRecord]:
        """Return the history rows of one kind ("sms": getSMS, "mms": getMMS) that match."""
        if kind not in ("sms", "mms"):
            raise ValueError(f"kind must be 'sms' or 'mms', got {kind!r}")
        if type not in (None, 0, 1):
            raise ValueError(f"type must be 1 (received) or 0 (sent), got {type!r}")
        method = "getSMS" if kind == "sms" else "getMMS"
        params = {"from": _api_date(date_from), "to": _api_date(date_to)}
        optional = {"type": type, "did": did, "contact": contact, "limit": limit, kind: message_id}
        params.update({name: str(value) for name, value in optional.items() if value is not None})
        data = self._call(method, params, has_side_effect=False)
        # getMMS lists its rows under "sms" too (DOMAIN.md §2).
        records = (_sms_record(row, kind) for row in self._rows(data, "sms", method))
        return [record for record in records if record is not None]

    def _call(
        self, method: str, params: Mapping[str, str], *, has_side_effect: bool
    ) -> dict[str, Any]:
        """POST one API method and return its decoded answer, or raise a VoipmsError."""
        started = time.monotonic()
        try:
            response = self._session.post(
                self.base_url,
                files=self._form(method, params),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=(self.connect_timeout, self.read_timeout),
                # VoIP.ms redirects drop the POST body (DOMAIN.md §2); a redirect means a wrong URL.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            error = self._transport_error(exc, has_side_effect=has_side_effect)
            _log_failure(method, error, None, started)
            raise error from exc
        try:
            data = self._decode(response, has_side_effect=has_side_effect)
        except VoipmsError as error:
            _log_failure(method, error, response.status_code, started)
            raise
        logger.info(
            "VoIP.ms %s answered %s (HTTP %s) in %d ms",
            method,
            data["status"],
            response.status_code,
            _elapsed_ms(started),
            extra={"voipms_method": method, "voipms_status": data["status"]},
        )
        return data

    def _form(self, method: str, params: Mapping[str, str]) -> list[tuple[str, tuple[None, str]]]:
        """Return the multipart form fields of one API call."""
        # requests builds multipart/form-data only when given files, and (None, value) makes a plain
        # field; VoIP.ms has answered url-encoded POSTs with a SOAP fault (DOMAIN.md §2).
        fields = {
            "api_username": self.username,
            "api_password": self._password,
            "method": method,
            **params,
        }
        return [(name, (None, value)) for name, value in fields.items()]

    def _transport_error(
        self, exc: requests.RequestException, *, has_side_effect: bool
    ) -> VoipmsError:
        """Return the error for a request that got no HTTP answer."""
        if isinstance(exc, ValueError):
            # requests raises MissingSchema, InvalidURL and friends before connecting.
            return VoipmsError(
                "invalid_api_url",
                f"The VoIP.ms API address {self.base_url!r} is not usable",
                permanent=True,
            )
        if _failed_before_sending(exc):
            return VoipmsTransientError(
                "connection_error",
                "Could not connect to VoIP.ms; nothing was sent",
                nothing_sent=True,
            )
        timed_out = isinstance(exc, requests.Timeout)
        if has_side_effect:
            # VoIP.ms has no idempotency key: a send whose answer was lost must not be repeated.
            if timed_out:
                return VoipmsOutcomeUnknown(
                    f"VoIP.ms did not answer within {self.read_timeout:g} s; "
                    "it may have sent the message"
                )
            return VoipmsOutcomeUnknown(
                "The connection to VoIP.ms broke before it answered; it may have sent the message"
            )
        if timed_out:
            return VoipmsTransientError(
                "read_timeout", f"VoIP.ms did not answer within {self.read_timeout:g} s"
            )
        return VoipmsTransientError(
            "connection_lost", "The connection to VoIP.ms broke before it answered"
        )

    def _decode(self, response: requests.Response, *, has_side_effect: bool) -> dict[str, Any]:
        """Return the data of a success answer, or raise the error the answer describes."""
        http_status = response.status_code
        if 300 <= http_status < 400:
            location = self._redact(response.headers.get("Location", "nowhere"))
            raise VoipmsError(
                "unexpected_redirect",
                f"VoIP.ms redirected the API call (HTTP {http_status} to {location}); "
                "the API address is wrong",
                permanent=True,
            )
        payload = _json_object(response.content)
        status = payload.get("status") if payload is not None else None
        if payload is not None and isinstance(status, str):
            status = status.strip()
            if status == "success":
                return payload
            if status in _EMPTY_RESULT_STATUSES and not has_side_effect:
                return {"status": status}
            message = self._redact(str(payload.get("message") or ""))
            if http_status >= 500:
                # VoIP.ms reports its errors with HTTP 200; a 5xx is a server failure, whatever the
                # body says, and worth another try.
                raise VoipmsTransientError(
                    "http_error",
                    f"VoIP.ms failed with HTTP {http_status} ({status}: {message})",
                    http_status=http_status,
                )
            raise error_for_status(status, message)
        excerpt = self._redact(_excerpt(response.content))
        if has_side_effect and http_status == _CLOUDFLARE_ORIGIN_TIMEOUT:
            # Cloudflare's 524 means VoIP.ms accepted the request but did not answer in time.
            raise VoipmsOutcomeUnknown(
                f"VoIP.ms timed out behind Cloudflare (HTTP {http_status}); "
                "it may have sent the message",
                http_status=http_status,
            )
        raise VoipmsTransientError(
            "bad_response",
            f"VoIP.ms answered HTTP {http_status} without its JSON status, probably an outage or "
            f"a Cloudflare block: {collapse_whitespace(excerpt, 100) or '(empty body)'}",
            excerpt=excerpt,
            http_status=http_status,
        )

    def _rows(self, data: Mapping[str, Any], key: str, method: str) -> list[Mapping[str, Any]]:
        """Return the list of row objects under `key` in a success answer."""
        rows = data.get(key, [])
        if isinstance(rows, Mapping):
            rows = [rows]
        if not isinstance(rows, list):
            raise VoipmsTransientError("bad_response", f"VoIP.ms answered {method} without a list")
        return [row for row in rows if isinstance(row, Mapping)]

    def _sent_id(self, data: Mapping[str, Any], key: str, method: str) -> int:
        """Return the message id of a successful send."""
        try:
            return _as_int(data.get(key))
        except (TypeError, ValueError):
            # "success" means VoIP.ms sent it; only the id is missing, so sending again would
            # duplicate the message.
            logger.warning("VoIP.ms %s succeeded without a usable %s id", method, key)
            raise VoipmsOutcomeUnknown(
                f"VoIP.ms accepted {method} but returned no usable id"
            ) from None

    def _redact(self, text: str) -> str:
        """Return the text with the API password masked."""
        # The API password controls the whole VoIP.ms account (DOMAIN.md §2); mask it in anything
        # echoed back to us before it can reach an error message or a log line.
        if self._password:
            text = text.replace(self._password, "********")
        return text


def _failed_before_sending(exc: requests.RequestException) -> bool:
    """Tell whether a requests failure proves that the request was never sent."""
    if isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    # requests also raises ConnectionError when the socket dies after the request went out
    # (RemoteDisconnected, ProtocolError), so look for a connect-phase cause.
    return any(isinstance(cause, _NOT_SENT_CAUSES) for cause in _exception_chain(exc))


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield an exception and every exception it wraps, however it wraps them."""
    pending = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, current.__cause__, current.__context__]
        linked.append(getattr(current, "reason", None))
        pending.extend(item for item in linked if isinstance(item, BaseException))


def _log_failure(method: str, error: VoipmsError, http_status: int | None, started: float) -> None:
    """Log a failed call without anything that could hold a secret."""
    logger.warning(
        "VoIP.ms %s failed with %s (HTTP %s, %s) in %d ms",
        method,
        error.code,
        http_status if http_status is not None else "none",
        "permanent" if error.permanent else "temporary",
        _elapsed_ms(started),
        extra={"voipms_method": method, "voipms_status": error.code},
    )


def _elapsed_ms(started: float) -> int:
    """Return the milliseconds since `started` on the monotonic clock."""
    return round((time.monotonic() - started) * 1000)


def _json_object(content: bytes) -> dict[str, Any] | None:
    """Return the body as a JSON object, or None when it is anything else."""
    try:
        payload = json.loads(content.decode("utf-8-sig"))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _excerpt(content: bytes) -> str:
    """Return the readable text at the start of a non-JSON body."""
    text = content[:65536].decode("utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        # Cloudflare pages and SOAP faults are markup; their words are what help an operator.
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_NOISE.sub(" ", text)))
    return collapse_whitespace(text)


def _api_date(value: dt.date) -> str:
    """Return a date filter as VoIP.ms expects it, in US Eastern time."""
    if isinstance(value, dt.datetime):
        value = (value.astimezone(VOIPMS_TIMEZONE) if value.tzinfo else value).date()
    return value.isoformat()


def _sms_record(row: Mapping[str, Any], kind: str) -> SmsRecord | None:
    """Return a history row as a record, or None when it lacks an id, a date or a type."""
    try:
        record_id = _as_int(row.get("id"))
        sent_at = _eastern_datetime(row.get("date"))
        direction = _as_int(row.get("type"))
    except (TypeError, ValueError):
        # One odd row must not block the whole history sweep.
        logger.warning("Skipped a VoIP.ms %s history row without a usable id, date or type", kind)
        return None
    return SmsRecord(
        id=record_id,
        kind=kind,
        date=sent_at,
        type=direction,
        did=_text(row.get("did")),
        contact=_text(row.get("contact")),
        message=str(row.get("message") or ""),
        carrier_status=_text(row.get("carrier_status")),
        media=_media(row),
    )


def _eastern_datetime(value: object) -> dt.datetime:
    """Return a VoIP.ms "YYYY-MM-DD HH:MM:SS" wall-clock time as an aware datetime."""
    if not isinstance(value, str):
        raise TypeError(f"expected a date string, got {type(value).__name__}")
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is not None:
        return parsed.astimezone(VOIPMS_TIMEZONE)
    # In the hour repeated when DST ends, fold=0 picks the first (EDT) reading; the row carries
    # nothing better.
    return parsed.replace(tzinfo=VOIPMS_TIMEZONE)


def _media(row: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the distinct media URLs of a history row in their order."""
    candidates: list[object] = [row.get(f"col_media{number}") for number in range(1, 4)]
    media = row.get("media")
    if isinstance(media, str):
        candidates.extend(part.strip(" ,") for part in _MEDIA_SEPARATOR.split(media))
    elif isinstance(media, list | tuple):
        candidates.extend(item.get("url") if isinstance(item, Mapping) else item for item in media)
    urls: list[str] = []
    for candidate in candidates:
        if isinstance(candidate, str) and (url := candidate.strip()) and url not in urls:
            urls.append(url)
    return tuple(urls)


def _as_int(value: object) -> int:
    """Return an id or a number that VoIP.ms sent as an integer or a string."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _as_bool(value: object) -> bool:
    """Return a VoIP.ms flag sent as 1/0, "1"/"0", true/false or yes/no."""
    if isinstance(value, str):
        return value.strip().casefold() in _TRUE_WORDS
    if isinstance(value, bool | int | float):
        return bool(value)
    return False


def _flag(value: bool) -> str:
    """Return a flag as setSMS takes it."""
    return "1" if value else "0"


def _did_info(row: Mapping[str, Any]) -> DidInfo:
    """Return one getDIDsInfo row as typed settings; flags may be numbers or strings."""
    return DidInfo(
        did=_text(row.get("did")),
        sms_available=_as_bool(row.get("sms_available")),
        sms_enabled=_as_bool(row.get("sms_enabled")),
        mms_available=_as_bool(row.get("mms_available")),
        webhook=_text(row.get("webhook")),
        webhook_enabled=_as_bool(row.get("webhook_enabled")),
        description=_text(row.get("description")),
        email_enabled=_as_bool(row.get("sms_email_enabled")),
        email_address=_text(row.get("sms_email")),
        forward_enabled=_as_bool(row.get("sms_forward_enabled")),
        forward_to=_text(row.get("sms_forward")),
        url_callback_enabled=_as_bool(row.get("sms_url_callback_enabled")),
        url_callback=_text(row.get("sms_url_callback")),
        url_callback_retry=_as_bool(row.get("sms_url_callback_retry")),
        raw=MappingProxyType(dict(row)),
    )


def _text(value: object) -> str:
    """Return a field that may be missing, null, a number or a string as stripped text."""
    return "" if value is None else str(value).strip()
