"""Gunicorn settings of the web process: `gunicorn -c python:portal.gunicorn_conf portal.wsgi`."""

from __future__ import annotations

# Access and error lines go through the portal's secret redaction (webhook tokens cut short).
logger_class = "portal.gunicorn_logging.RedactingLogger"
# The path without its query string: VoIP.ms callbacks carry numbers and message text there.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
)
