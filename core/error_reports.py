"""Error reports (the admins' e-mail, the debug page) that never show a secret."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, QueryDict
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from core.redaction import redact_text

# Settings, headers, cookies, POST fields and local variables whose values are hidden.
HIDDEN_NAMES = re.compile(
    r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|SESSION|CSRF|DATABASE_URL|REDIS_URL|"
    r"BROKER_URL|EMAIL_URL|^LOCATION$",
    re.IGNORECASE,
)


def _redacted(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else value


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hide secrets by name everywhere in a report, and cut webhook tokens out of paths."""

    hidden_settings = HIDDEN_NAMES

    def is_active(self, request: HttpRequest | None) -> bool:
        # Django shows everything when DEBUG is on; a demo's debug page must not either.
        return True

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        return {k: _redacted(v) for k, v in super().get_safe_request_meta(request).items()}

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        if request is None:
            return {}
        cleansed = QueryDict(mutable=True)
        for name, values in super().get_post_parameters(request).lists():
            if self.hidden_settings.search(name):
                cleansed.setlist(name, [self.cleansed_substitute])
            else:
                cleansed.setlist(name, [_redacted(value) for value in values])
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        return [
            (name, _redacted(self.cleanse_setting(name, value)))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class SecretSafeExceptionReporter(ExceptionReporter):
    """Render reports through the filter above, then cut what is left of any secret."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = [
                (name, _redacted(self.filter.cleanse_setting(name, value)))
                for name, value in self.request.GET.items()
            ]
        return data

    def get_traceback_html(self) -> str:
        return redact_text(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return redact_text(super().get_traceback_text())
