"""Saved reply templates in the tenant site."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import cut
from sms.admin.common import ChannelsRequiredMixin, ServiceSavedAdmin
from sms.models import ReplyTemplate
from sms.templates_service import (
    REPLY_TEMPLATE_FIELDS,
    reply_template_delete,
    reply_template_save,
)


class ReplyTemplateAdmin(ChannelsRequiredMixin, ServiceSavedAdmin):
    service_fields = REPLY_TEMPLATE_FIELDS
    fields = ["name", "body"]
    list_display = ["name", "excerpt"]
    search_fields = ["name", "body"]
    list_per_page = 50

    @admin.display(description=_("Text"))
    def excerpt(self, obj: ReplyTemplate) -> str:
        return cut(obj.body, 80)

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return reply_template_save(
            tenant=request.tenant, actor=request.user, template=obj, **fields
        )

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        reply_template_delete(template=obj, actor=request.user)
