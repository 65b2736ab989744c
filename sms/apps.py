from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmsConfig(AppConfig):
    name = "sms"
    verbose_name = _("SMS/MMS")

    def ready(self) -> None:
        # Models are loaded only now, so the module that reads them is imported here.
        from sms import pool_usage

        pool_usage.register()
