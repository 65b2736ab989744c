"""Outbound HTTP to tenants' own endpoints, and the retry delay every background call shares."""

from __future__ import annotations

import random
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests

USER_AGENT = "SeedSMSPortal/0.1.0 (+https://github.com/seed-sms-portal)"


class HttpError(Exception):
    """Report an HTTP call that got no answer, with a stable code and a human message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


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
        with requests.post(
            url,
            data=body,
            headers=sent_headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            # The answer's body is never read: a receiver gets no say in how much we download.
            return response.status_code
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
