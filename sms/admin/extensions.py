"""Extensions with the numbers they may send SMS from, in the tenant site."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from core.admin import TenantScopedAdmin, TenantScopedInline
from core.errors import ApplicationError
from sms.models import SmsCallerId
from sms.outbound.rules import sms_caller_id_save
from trunks.models import Trunk


class SmsCallerIdInline(TenantScopedInline):
    """The DIDs an extension may send SMS from."""

    model = SmsCallerId
    fields = ["trunk", "did", "description"]
    extra = 0
    verbose_name = "SMS caller ID"
    verbose_name_plural = "SMS caller IDs (numbers this extension may send from)"

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        return {"trunk": Trunk.objects.available_to(request.tenant)}


class ExtensionAdmin(TenantScopedAdmin):
    inlines = [SmsCallerIdInline]
    list_display = ["number", "display_name", "user", "email", "sms_permission"]
    list_filter = ["sms_permission"]
    list_select_related = ["user"]
    search_fields = ["number", "display_name", "email"]
    list_per_page = 15

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline in formset.forms:
            data = getattr(inline, "cleaned_data", None)
            if not data:
                continue
            if data.get("DELETE"):
                if inline.instance.pk:
                    inline.instance.delete()
                continue
            if not data.get("did") or not data.get("trunk"):
                continue
            try:
                sms_caller_id_save(
                    tenant=request.tenant,
                    extension=form.instance,
                    trunk=data["trunk"],
                    did=data["did"],
                    description=data.get("description", ""),
                    caller_id=inline.instance if inline.instance.pk else None,
                )
            except ApplicationError as error:
                messages.error(request, error.message)
