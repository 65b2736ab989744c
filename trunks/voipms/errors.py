"""Errors raised by the VoIP.ms client, each saying whether a retry can help."""

from __future__ import annotations

import re
from typing import Any

EXCERPT_LIMIT = 200

# Failures where another outbound route (another trunk, another DID) may still succeed, because
# the problem lies with this DID or this VoIP.ms account rather than with the message itself.
ROUTE_LEVEL_CODES = frozenset(
    {
        "invalid_did",
        "missing_did",
        "sms_failed",
        "invalid_credentials",
        "missing_credentials",
        "api_not_enabled",
        "ip_not_enabled",
        "limit_reached",
        "invalid_media",
    }
)

# Provider-side hiccups that clear by themselves (DOMAIN.md §2); every other status, known or not,
# is permanent.
TRANSIENT_CODES = frozenset(
    {
        "method_maintenance",
        "unavailable_info",
        "tls_error",
        "api_limit_exceeded",
        "sms_wait_message",
    }
)

# The per-minute request limit and the one-write-per-minute rule of setSMS (DOMAIN.md §2) both
# clear after a minute.
RETRY_AFTER_SECONDS = {
    "api_limit_exceeded": 60.0,
    "sms_wait_message": 60.0,
}

HUMAN_MESSAGES = {
    "invalid_credentials": "VoIP.ms rejected the username or API password",
    "missing_credentials": "The VoIP.ms username or API password is missing",
    "api_not_enabled": "The API is not enabled in the VoIP.ms portal",
    "ip_not_enabled": "This server's IP address is not on the VoIP.ms API allow-list",
    "missing_method": "The request to VoIP.ms named no method (a bug in the portal)",
    "invalid_method": "VoIP.ms does not know the requested method (a bug in the portal)",
    "missing_params": "The request to VoIP.ms lacked a required parameter (a bug in the portal)",
    "method_maintenance": "This VoIP.ms API method is down for maintenance; it will be retried",
    "unavailable_info": "VoIP.ms could not provide the information right now; it will be retried",
    "tls_error": "VoIP.ms reported a temporary TLS error; it will be retried",
    "api_limit_exceeded": "Too many requests to the VoIP.ms API this minute; it will be retried",
    "missing_did": "No DID was given to VoIP.ms",
    "invalid_did": "The DID is not on this VoIP.ms account",
    "invalid_dst": "The destination is not a valid US or Canadian 10-digit number",
    "message_empty": "The message text is empty",
    "sms_toolong": "The text is longer than 160 bytes; split it or send it as MMS",
    "sms_failed": (
        "VoIP.ms did not send it; check that SMS is enabled on this DID in the VoIP.ms portal"
    ),
    "limit_reached": "The VoIP.ms account reached its daily sending limit",
    "invalid_media": "VoIP.ms refused the MMS media",
    "invalid_date": "VoIP.ms refused the date filter",
    "invalid_daterange": "The date range asked of VoIP.ms is longer than 92 days",
    "invalid_date_from": "VoIP.ms refused the start date of the date filter",
    "sms_wait_message": "The SMS settings of this DID changed less than a minute ago",
}

_WHITESPACE = re.compile(r"\s+")


def collapse_whitespace(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """Return the text on one line, cut to at most `limit` characters."""
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


class VoipmsError(Exception):
    """Report a failed VoIP.ms call with a stable code and a human message."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        nothing_sent: bool = False,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        # True when VoIP.ms certainly sent nothing: it refused the call with its own status, or
        # the connection was refused before the request went out.
        self.nothing_sent = nothing_sent

    @property
    def route_level(self) -> bool:
        """Tell whether the next outbound route should be tried after this failure."""
        return self.code in ROUTE_LEVEL_CODES

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments defeat Exception's default pickling, and Celery pickles errors.
        return (_rebuild, (type(self), self.__dict__.copy()))


class VoipmsTransientError(VoipmsError):
    """Report a temporary VoIP.ms failure after which sending again is safe."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        excerpt: str = "",
        http_status: int | None = None,
        retry_after: float | None = None,
        nothing_sent: bool = False,
    ) -> None:
        super().__init__(
            code, message, permanent=False, retry_after=retry_after, nothing_sent=nothing_sent
        )
        self.excerpt = collapse_whitespace(excerpt)
        self.http_status = http_status


class VoipmsOutcomeUnknown(VoipmsError):
    """Report a send whose answer was lost after VoIP.ms received it; it may have been delivered."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__("outcome_unknown", message, permanent=False)
        self.http_status = http_status


def _rebuild(cls: type[VoipmsError], state: dict[str, Any]) -> VoipmsError:
    """Recreate a pickled error without calling its constructor."""
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("code"), state.get("message"))
    error.__dict__.update(state)
    return error


def _adds_something(vendor_message: str, code: str, human: str) -> bool:
    """Tell whether VoIP.ms's own text says more than the code and our sentence."""
    vendor = vendor_message.strip().casefold().rstrip(".")
    restates_code = vendor in {code.casefold(), code.replace("_", " ").casefold()}
    return bool(vendor) and not restates_code and vendor not in human.casefold()


def error_for_status(code: str, message: str) -> VoipmsError:
    """Return the error for a non-success VoIP.ms status and its message."""
    code = code.strip() or "unknown_status"
    vendor_message = collapse_whitespace(message or "")
    human = HUMAN_MESSAGES.get(code, f"VoIP.ms answered with status {code}")
    if _adds_something(vendor_message, code, human):
        human = f"{human} (VoIP.ms: {vendor_message})"
    # VoIP.ms answered with its own refusal: whatever the status, nothing was sent.
    if code in TRANSIENT_CODES:
        return VoipmsTransientError(
            code, human, retry_after=RETRY_AFTER_SECONDS.get(code), nothing_sent=True
        )
    # Unknown codes count as permanent too: hammering an API we do not understand helps nobody.
    return VoipmsError(code, human, permanent=True, nothing_sent=True)
