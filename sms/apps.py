from __future__ import annotations

from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "sms"
    verbose_name = "SMS/MMS"

    def ready(self) -> None:
        from sms import pool_usage  # noqa: F401 - registers what uses DID pools
