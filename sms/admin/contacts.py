"""Contacts in the tenant site: names and notes for outside numbers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from sms.admin.common import ServiceSavedAdmin
from sms.contacts import CONTACT_FIELDS, contact_delete, contact_save


class ContactAdmin(ServiceSavedAdmin):
    service_fields = CONTACT_FIELDS
    fields = ["name", "number", "notes"]
    list_display = ["name", "number", "updated_at"]
    search_fields = ["name", "number", "notes"]
    list_per_page = 50

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return contact_save(tenant=request.tenant, actor=request.user, contact=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        contact_delete(contact=obj, actor=request.user)
