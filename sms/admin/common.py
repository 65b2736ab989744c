"""Behaviour shared by the SMS pages of the tenant site."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from core.admin import (
    ServiceWritesMixin,
    TenantScopedAdmin,
)
from core.errors import ApplicationError
from tenants.access import messaging_refusal


class ChannelsRequiredMixin:
    """Hide and refuse the page while the tenant's Message Channels are off."""

    def _allowed(self, request: HttpRequest) -> bool:
        tenant = getattr(request, "tenant", None)
        return super()._allowed(request) and tenant is not None and not messaging_refusal(tenant)


class ServiceSavedAdmin(ServiceWritesMixin, TenantScopedAdmin):
    """Save and delete through services; a refused save shows its message on the form's field.

    The form asks the service in a savepoint that is rolled back, so every business rule the
    service checks (pools, masks, names) appears as a form error instead of a crash after the
    form was declared valid; save_model then calls the service for real.
    """

    service_fields: tuple[str, ...] = ()

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        raise NotImplementedError

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def _fields(self, form: Any) -> dict[str, Any]:
        return {
            name: form.cleaned_data[name] for name in self.service_fields if name in form.fields
        }

    def _refusal(self, request: HttpRequest, form: Any) -> ApplicationError | None:
        existing = None
        if form.instance.pk is not None:
            existing = self.get_queryset(request).get(pk=form.instance.pk)
        try:
            with transaction.atomic():
                self.service_save(request, existing, self._fields(form))
                transaction.set_rollback(True)
        except ApplicationError as error:
            return error
        return None

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceForm(base):
            service_refused = False

            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if not self.errors:
                    error = model_admin._refusal(request, self)
                    if error is not None:
                        self.service_refused = True
                        self.add_error(
                            error.field if error.field in self.fields else None, error.message
                        )
                return cleaned

            def _post_clean(self) -> None:
                # The service's message says it better than a model constraint would.
                if not self.service_refused:
                    super()._post_clean()

        return ServiceForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = self.service_save(request, obj if change else None, self._fields(form))
        obj.pk, obj.tenant_id = saved.pk, saved.tenant_id
