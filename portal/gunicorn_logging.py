"""Gunicorn's logger for the portal: access and error lines without secrets.

Run gunicorn with `--logger-class portal.gunicorn_logging.RedactingLogger`. Webhook URLs keep the
first six characters of their token; credentials and cookies never reach the log, even when an
access-log format names their headers.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from core.redaction import RedactSecretsFilter, redact_text

# Access-log atoms of request headers, response headers and environ variables never written.
HIDDEN_ATOMS = frozenset(
    {
        "{authorization}i",
        "{proxy-authorization}i",
        "{cookie}i",
        "{x-csrftoken}i",
        "{set-cookie}o",
        "{http_authorization}e",
        "{http_proxy_authorization}e",
        "{http_cookie}e",
        "{http_x_csrftoken}e",
    }
)


class RedactingLogger(Logger):
    """Write gunicorn's access and error logs through the portal's secret redaction."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # Records logged on these two loggers, whatever handlers gunicorn gave them.
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactSecretsFilter) for f in log.filters):
                log.addFilter(RedactSecretsFilter())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: "-"
            if name in HIDDEN_ATOMS
            else redact_text(value)
            if isinstance(value, str)
            else value
            for name, value in atoms.items()
        }
