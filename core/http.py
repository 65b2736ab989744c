"""Outbound HTTP to addresses outsiders choose, and the retry delay every background call shares."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from core.netguard import AddressRefused, HostUnresolved, url_address_resolve

USER_AGENT = "SeedSMSPortal/0.1.0 (+https://github.com/seed-sms-portal)"

SIGNATURE_HEADER = "X-Seed-Signature"
TIMESTAMP_HEADER = "X-Seed-Timestamp"


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Seed-Signature value: "sha256=" + HMAC-SHA256 of "<timestamp>.<body>"."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class HttpError(Exception):
    """Report an HTTP call that got no answer, with a stable code and a human message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class _PinnedAdapter(HTTPAdapter):
    """Connect to one checked address, whatever the host name resolves to by the time we do."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            # TLS still speaks to the name: SNI and the certificate check use it, not the address.
            pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = self._address
        return host_params, pool_kwargs

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        # The connection's host is the address now; the server is still asked for the name.
        request.headers["Host"] = urlsplit(request.url).netloc.rpartition("@")[2]
        return super().send(request, *args, **kwargs)


def guarded_session(url: str) -> requests.Session:
    """Return a session for one request to the URL, pinned to its host's checked address."""
    # Pinning leaves a DNS answer no time to change (rebinding) between check and connection.
    address = url_address_resolve(url=url)
    session = requests.Session()
    adapter = _PinnedAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float | tuple[float, float],
) -> int:
    """POST a JSON body without following redirects and return the HTTP status code."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise HttpError("invalid_url", "the address is not an http(s) URL")
    sent_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        # A redirected POST turns into a GET in most clients; report the 3xx rather than follow.
        with (
            guarded_session(url) as session,
            session.post(
                url,
                data=body,
                headers=sent_headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            ) as response,
        ):
            # The answer's body is never read: a receiver gets no say in how much we download.
            return response.status_code
    except (AddressRefused, HostUnresolved) as error:
        raise HttpError(error.code, error.message) from None
    except requests.Timeout:
        raise HttpError("timeout", "the endpoint did not answer in time") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema):
        raise HttpError("invalid_url", "the address is not a usable URL") from None
    except requests.RequestException as exc:
        raise HttpError(
            "connection_error", f"could not reach the endpoint ({type(exc).__name__})"
        ) from None


def backoff_delay(*, attempt: int, base: float, cap: float) -> float:
    """Return the jittered exponential delay in seconds to wait after failed try `attempt`."""
    ceiling = min(base * 2 ** max(attempt - 1, 0), cap)
    # "Equal jitter": never less than half the step, so retries stay spread but not immediate.
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security
