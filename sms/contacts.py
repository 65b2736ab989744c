"""Contacts: the tenant's names and notes for outside numbers, one contact per number."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.models import Contact
from sms.retention import remote_number_normalize
from tenants.models import Tenant, User
from tenants.services import audit_record

CONTACT_FIELDS = ("name", "number", "notes")


@transaction.atomic
def contact_save(
    *, tenant: Tenant, actor: User | None, contact: Contact | None = None, **fields: Any
) -> Contact:
    """Create or change a contact of the tenant; its number is unique in the tenant."""
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = contact is None
    contact = contact or Contact(tenant=tenant)
    if "number" in fields:
        fields["number"] = remote_number_normalize(fields["number"], field="number")
    for name, value in fields.items():
        setattr(contact, name, value.strip() if isinstance(value, str) else value)
    if not contact.name:
        raise ApplicationError(_("Give the contact a name."), field="name")
    clash = Contact.objects.for_tenant(tenant).filter(number=contact.number)
    if clash.exclude(pk=contact.pk).exists():
        raise ApplicationError(
            _("%(number)s is a contact already (%(name)s).")
            % {"number": contact.number, "name": clash.get().name},
            field="number",
        )
    contact.save()
    audit_record(
        actor=actor,
        action="created" if created else "changed",
        tenant=tenant,
        obj=contact,
        detail={"fields": sorted(fields)},
    )
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, actor: User | None) -> None:
    """Delete a contact (its messages stay)."""
    audit_record(actor=actor, action="deleted", tenant=contact.tenant, obj=contact)
    contact.delete()


def contact_name_of(number_field: str = "remote") -> Subquery:
    """Return an annotation: the name of the row's tenant's contact for the number in the field."""
    return Subquery(
        Contact.objects.filter(tenant_id=OuterRef("tenant_id"), number=OuterRef(number_field))
        .order_by()
        .values("name")[:1]
    )


def contact_numbers_named(*, tenant: Tenant, text: str) -> Any:
    """Return the numbers of the tenant's contacts whose name contains the text (a subquery)."""
    return Contact.objects.for_tenant(tenant).filter(name__icontains=text).values("number")


# CSV import ------------------------------------------------------------------------------------

IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_MAX_ROWS = 10_000
_HEADER_ALIASES = {
    "name": "name",
    "full name": "name",
    "number": "number",
    "phone": "number",
    "phone number": "number",
    "mobile": "number",
    "notes": "notes",
    "note": "notes",
}
# A leading apostrophe is how an export keeps a spreadsheet from running a cell as a formula.
_DEFUSED = re.compile(r"^'(?=[=+\-@\t\r])")


@dataclass
class ImportRow:
    """One data row of an import file, and what the import does or did with it."""

    line: int
    name: str
    number: str
    notes: str | None
    outcome: str = ""  # "created", "updated", "unchanged" or "rejected"
    reason: str = ""


@dataclass
class ImportResult:
    """What an import did (or would do): every row with its outcome."""

    rows: list[ImportRow] = field(default_factory=list)

    def _with(self, outcome: str) -> list[ImportRow]:
        return [row for row in self.rows if row.outcome == outcome]

    @property
    def created(self) -> list[ImportRow]:
        return self._with("created")

    @property
    def updated(self) -> list[ImportRow]:
        return self._with("updated")

    @property
    def unchanged(self) -> list[ImportRow]:
        return self._with("unchanged")

    @property
    def rejected(self) -> list[ImportRow]:
        return self._with("rejected")


def contacts_csv_parse(data: bytes) -> list[ImportRow]:
    """Return the rows of a contacts CSV file: a header naming the name and number columns."""
    if len(data) > IMPORT_MAX_BYTES:
        raise ApplicationError(
            _("The file is over %(size)d MiB; split it.") % {"size": IMPORT_MAX_BYTES // 2**20},
            field="file",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError(
            _("The file is not UTF-8 text: save it as “CSV UTF-8” and try again."), field="file"
        ) from None
    if "\x00" in text:
        raise ApplicationError(_("The file is not a CSV text file."), field="file")
    # Spreadsheets in some locales separate with ";" (or export tabs): the header line tells.
    first_line = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", ";", "\t") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise ApplicationError(_("The file is empty."), field="file")
        columns = {
            _HEADER_ALIASES[cell.strip().lower()]: index
            for index, cell in reversed(list(enumerate(header)))
            if cell.strip().lower() in _HEADER_ALIASES
        }
        if "name" not in columns or "number" not in columns:
            raise ApplicationError(
                _("The first line must name the columns: name, number and, if you like, notes."),
                field="file",
            )
        rows: list[ImportRow] = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            if len(rows) == IMPORT_MAX_ROWS:
                raise ApplicationError(
                    _("The file has over %(rows)d contacts; split it.") % {"rows": IMPORT_MAX_ROWS},
                    field="file",
                )

            def cell(name: str, values: list[str] = values) -> str | None:
                index = columns.get(name)
                if index is None:
                    return None
                value = values[index].strip() if index < len(values) else ""
                return _DEFUSED.sub("", value)

            rows.append(
                ImportRow(
                    line=reader.line_num,
                    name=cell("name") or "",
                    number=cell("number") or "",
                    notes=cell("notes"),
                )
            )
    except csv.Error as error:
        raise ApplicationError(
            _("Line %(line)d cannot be read as CSV: %(error)s")
            % {"line": reader.line_num, "error": error},
            field="file",
        ) from None
    return rows


def contacts_import(
    *, tenant: Tenant, actor: User | None, rows: list[ImportRow], dry_run: bool = False
) -> ImportResult:
    """Create the tenant's new contacts and update those whose number it has, row by row.

    A row is rejected, with its reason, for a missing name, a number that is neither a US or
    Canadian number nor a short code, a name or notes too long, or a number an earlier row
    already had. A dry run tells what would happen and changes nothing.
    """
    name_max = Contact._meta.get_field("name").max_length
    notes_max = Contact._meta.get_field("notes").max_length
    result = ImportResult()
    seen: dict[str, int] = {}
    for row in rows:
        result.rows.append(row)
        if not row.name:
            row.outcome, row.reason = "rejected", str(_("The name is missing."))
            continue
        if len(row.name) > name_max:
            row.outcome = "rejected"
            row.reason = str(_("The name is over %(max)d characters.") % {"max": name_max})
            continue
        if row.notes is not None and len(row.notes) > notes_max:
            row.outcome = "rejected"
            row.reason = str(_("The notes are over %(max)d characters.") % {"max": notes_max})
            continue
        try:
            number = remote_number_normalize(row.number, field="number")
        except ApplicationError:
            row.outcome = "rejected"
            row.reason = str(
                _("“%(number)s” is not a US or Canadian number or a short code.")
                % {"number": row.number[:40]}
            )
            continue
        if number in seen:
            row.outcome = "rejected"
            row.reason = str(
                _("%(number)s is on line %(line)d already.")
                % {"number": number, "line": seen[number]}
            )
            continue
        seen[number] = row.line
        row.number = number
    existing = {
        contact.number: contact
        for contact in Contact.objects.for_tenant(tenant).filter(number__in=list(seen))
    }
    with transaction.atomic():
        for row in result.rows:
            if row.outcome:
                continue
            contact = existing.get(row.number)
            if contact is None:
                row.outcome = "created"
                if not dry_run:
                    Contact.objects.create(
                        tenant=tenant, name=row.name, number=row.number, notes=row.notes or ""
                    )
                continue
            notes = contact.notes if row.notes is None else row.notes
            if (contact.name, contact.notes) == (row.name, notes):
                row.outcome = "unchanged"
                continue
            row.outcome = "updated"
            if not dry_run:
                contact.name, contact.notes = row.name, notes
                contact.save(update_fields=["name", "notes", "updated_at"])
        if not dry_run and (result.created or result.updated):
            audit_record(
                actor=actor,
                action="contacts imported",
                tenant=tenant,
                detail={
                    "created": len(result.created),
                    "updated": len(result.updated),
                    "unchanged": len(result.unchanged),
                    "rejected": len(result.rejected),
                },
            )
    return result


def contacts_csv_rows(*, tenant: Tenant) -> Iterator[list[str]]:
    """Return the tenant's contacts as CSV rows, the header first (import reads them back)."""
    yield ["name", "number", "notes"]
    for contact in Contact.objects.for_tenant(tenant).order_by("name", "id").iterator(2000):
        yield [contact.name, contact.number, contact.notes]
