"""Contacts in the tenant site: names and notes for outside numbers, CSV import and export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ApplicationError
from sms.admin.common import ServiceSavedAdmin
from sms.admin.messages import _Echo, csv_cell
from sms.contacts import (
    CONTACT_FIELDS,
    IMPORT_MAX_BYTES,
    ImportResult,
    contact_delete,
    contact_save,
    contacts_csv_parse,
    contacts_csv_rows,
    contacts_import,
)


class ContactImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "A header line naming the columns name, number and (optional) notes; numbers in any "
            "usual US or Canadian form, or short codes. A number you have updates that contact."
        ),
    )


class ContactAdmin(ServiceSavedAdmin):
    service_fields = CONTACT_FIELDS
    fields = ["name", "number", "notes"]
    list_display = ["name", "number", "updated_at"]
    search_fields = ["name", "number", "notes"]
    list_per_page = 50
    change_list_template = "admin/sms/contact/change_list.html"

    def service_save(self, request: HttpRequest, obj: Any, fields: dict[str, Any]) -> Any:
        return contact_save(tenant=request.tenant, actor=request.user, contact=obj, **fields)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        contact_delete(contact=obj, actor=request.user)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="sms_contact_import",
            ),
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="sms_contact_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Download the tenant's contacts as CSV (name, number, notes)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            for row in contacts_csv_rows(tenant=request.tenant):
                yield writer.writerow([csv_cell(value) for value in row])

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="contacts-{stamp}.csv"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV file, see what it would do, then import it."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = ContactImportForm()
        result: ImportResult | None = None
        content = ""
        if request.method == "POST" and "confirm" in request.POST:
            content = request.POST.get("content", "")
            try:
                rows = contacts_csv_parse(content.encode("utf-8"))
            except ApplicationError as error:
                messages.error(request, error.message)
                return redirect(reverse("tenant:sms_contact_import"))
            result = contacts_import(tenant=request.tenant, actor=request.user, rows=rows)
            messages.success(
                request,
                _(
                    "Contacts imported: %(created)d created, %(updated)d updated, "
                    "%(unchanged)d unchanged, %(rejected)d rejected."
                )
                % {
                    "created": len(result.created),
                    "updated": len(result.updated),
                    "unchanged": len(result.unchanged),
                    "rejected": len(result.rejected),
                },
            )
            context = self._context(request, form=form, result=result, done=True)
            return TemplateResponse(request, "admin/sms/contact/import.html", context)
        if request.method == "POST":
            form = ContactImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                data = upload.read(IMPORT_MAX_BYTES + 1)
                try:
                    rows = contacts_csv_parse(data)
                except ApplicationError as error:
                    form.add_error("file", error.message)
                else:
                    if not rows:
                        form.add_error("file", _("The file holds no contacts."))
                    else:
                        result = contacts_import(
                            tenant=request.tenant, actor=request.user, rows=rows, dry_run=True
                        )
                        content = data.decode("utf-8-sig")
        context = self._context(request, form=form, result=result, content=content, done=False)
        return TemplateResponse(request, "admin/sms/contact/import.html", context)

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import contacts"),
            **extra,
        }
