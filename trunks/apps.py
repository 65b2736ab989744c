from __future__ import annotations

from django.apps import AppConfig


class TrunksConfig(AppConfig):
    name = "trunks"
    verbose_name = "Trunks"
