"""Cut secrets out of text bound for logs: webhook tokens, credentials, session ids.

A webhook URL keeps the first characters of its token, enough to tell two configurations apart
in a log, and loses the rest: `/hooks/voipms/abc123***/`. Credentials after `Token`, `Bearer` or
`Basic`, and the values of fields named like secrets (`api_password=...`, `'sip_password': '...'`,
`sessionid=...`) become `***`. Imported by gunicorn before Django starts: no Django imports here.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# How much of a webhook token stays readable in logs.
WEBHOOK_TOKEN_SHOWN = 6

# Field, parameter, header and cookie names whose values are secrets.
_HIDDEN_FIELD = (
    r"[\w-]*(?:password|passwd|secret|token|api_?key|session_?id|session_?key|csrf|"
    r"authorization|cookie)[\w-]*"
)
# Quotes as they appear in Python reprs, JSON and escaped HTML.
_QUOTE = r"(?:'|\"|&\#x27;|&\#39;|&quot;)"

_WEBHOOK_PATH = re.compile(
    rf"(hooks(?:/|%2F)voipms(?:/|%2F))([A-Za-z0-9_-]{{1,{WEBHOOK_TOKEN_SHOWN}}})[A-Za-z0-9_*-]*",
    re.IGNORECASE,
)
# A credential after an authorization scheme; it holds a digit, which spares ordinary prose
# such as "Token authentication failed".
_CREDENTIAL = re.compile(
    r"\b(token|bearer|basic)(\s+)(?=[\w.~+/=-]*\d)[\w.~+/=-]{16,}", re.IGNORECASE
)
# 'api_password': 'value', "token": ["value"], password = 'value'
_QUOTED_VALUE = re.compile(
    rf"(?P<kq>{_QUOTE})?\b(?P<name>{_HIDDEN_FIELD})(?(kq)(?P=kq))"
    rf"(?P<sep>\s*[:=]\s*\[?\s*)(?P<vq>{_QUOTE})(?P<value>.*?)(?P=vq)",
    re.IGNORECASE,
)
# api_password=value in query strings, form bodies and cookie headers.
_BARE_VALUE = re.compile(rf"\b({_HIDDEN_FIELD})=(?!{_QUOTE})[^&\s;,'\"<>)\]]+", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Return the text with webhook tokens cut short and credentials masked."""
    if not text:
        return text
    text = _WEBHOOK_PATH.sub(rf"\g<1>\g<2>{MASK}", text)
    text = _CREDENTIAL.sub(rf"\g<1>\g<2>{MASK}", text)
    text = _QUOTED_VALUE.sub(
        lambda m: m.group(0)[: m.start("value") - m.start(0)] + MASK + m.group("vq"), text
    )
    return _BARE_VALUE.sub(rf"\g<1>={MASK}", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrite each record's message, traceback and stack without secrets (drops nothing).

    Set on every handler: a filter on a logger would miss the records its children propagate.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A broken format: leave the record to logging, which reports it.
            return True
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True
