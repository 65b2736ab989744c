"""Form helpers shared by the admin sites."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

STORED_HELP = _("Stored. Leave blank to keep the stored password; type a new one to replace it.")
NOT_STORED_HELP = _("Not set.")


class WriteOnlySecretsMixin:
    """Render secret fields empty and keep the stored value when they are left blank.

    Name the model fields in `secret_fields`; the form never renders a stored secret. A bound
    form is only rendered again when something failed (this form, or an inline of the same
    page), so a bound form renders what was typed into the secret in this very request: fixing
    another field never means typing the password again. That is what the same user just sent,
    on an admin page that is never cached; a secret left blank stays blank and the stored one is
    kept.
    """

    secret_fields: tuple[str, ...] = ()
    secret_required_on_create: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        creating = self.instance is None or self.instance.pk is None
        self.stored_secrets: set[str] = set()
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            field = self.fields[name]
            field.widget = forms.PasswordInput(
                render_value=self.is_bound, attrs={"autocomplete": "new-password"}
            )
            field.required = creating and name in self.secret_required_on_create
            is_set = not creating and bool(getattr(self.instance, name, ""))
            if is_set:
                self.stored_secrets.add(name)
            model_help = field.help_text
            if creating:
                field.help_text = model_help
            else:
                status = STORED_HELP if is_set else NOT_STORED_HELP
                field.help_text = format_lazy("{} {}", status, model_help) if model_help else status
            field.widget.attrs["data-secret-stored"] = "true" if is_set else "false"
            self.initial[name] = ""

    def secret_changes(self) -> dict[str, str]:
        """Return the secrets typed into the form (blank ones are left out)."""
        return {
            name: self.cleaned_data[name]
            for name in self.secret_fields
            if self.cleaned_data.get(name)
        }

    def _post_clean(self) -> None:
        # A blank secret keeps the stored value: construct_instance skips fields that are not
        # in cleaned_data, so the instance keeps what it loaded.
        for name in self.secret_fields:
            if name in self.cleaned_data and not self.cleaned_data[name]:
                del self.cleaned_data[name]
        super()._post_clean()
