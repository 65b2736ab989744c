"""Extensions with the numbers they may send SMS from, in the tenant site."""

from __future__ import annotations

from typing import Any

from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import TenantScopedAdmin, TenantScopedInline
from core.errors import ApplicationError
from sms.models import SmsCallerId
from sms.outbound.rules import sms_caller_id_check, sms_caller_id_save
from trunks.models import Trunk


class SmsCallerIdFormSet(BaseInlineFormSet):
    """Check every number with the service before anything is saved, so a refusal is shown on
    its row instead of after the extension was saved."""

    request_tenant: Any = None

    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("trunk") or not data.get("did"):
                continue
            try:
                e164 = sms_caller_id_check(
                    tenant=self.request_tenant, trunk=data["trunk"], did=data["did"]
                )
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
                continue
            if e164 in seen:
                form.add_error("did", _("%(e164)s is listed twice.") % {"e164": e164})
            seen.add(e164)


class SmsCallerIdInline(TenantScopedInline):
    """The DIDs an extension may send SMS from."""

    model = SmsCallerId
    formset = SmsCallerIdFormSet
    fields = ["trunk", "did", "description"]
    extra = 0
    verbose_name = _("SMS caller ID")
    verbose_name_plural = _("SMS caller IDs (numbers this extension may send from)")

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        return {"trunk": Trunk.objects.available_to(request.tenant)}

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"request_tenant": request.tenant})


class ExtensionAdmin(TenantScopedAdmin):
    inlines = [SmsCallerIdInline]
    list_display = ["number", "display_name", "user", "email", "sms_permission"]
    list_filter = ["sms_permission"]
    list_select_related = ["user"]
    search_fields = ["number", "display_name", "email"]
    list_per_page = 15

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Saved through the service; the admin's history message reads these lists.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline in formset.forms:
            data = getattr(inline, "cleaned_data", None)
            if not data:
                continue
            existing = inline.instance if inline.instance.pk else None
            if data.get("DELETE"):
                if existing is not None:
                    existing.delete()
                    formset.deleted_objects.append(existing)
                continue
            if not data.get("did") or not data.get("trunk"):
                continue
            if existing is not None and not inline.has_changed():
                continue
            saved = sms_caller_id_save(
                tenant=request.tenant,
                extension=form.instance,
                trunk=data["trunk"],
                did=data["did"],
                description=data.get("description", ""),
                caller_id=existing,
            )
            if existing is None:
                formset.new_objects.append(saved)
            else:
                formset.changed_objects.append((saved, inline.changed_data))
