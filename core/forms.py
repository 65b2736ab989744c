"""Form helpers shared by the admin sites."""

from __future__ import annotations

from typing import Any

from django import forms

STORED_HELP = "Set — leave blank to keep it."
NOT_STORED_HELP = "Not set."


class WriteOnlySecretsMixin:
    """Render secret fields empty and keep the stored value when they are left blank.

    Name the model fields in `secret_fields`; the form never renders a stored secret.
    """

    secret_fields: tuple[str, ...] = ()
    secret_required_on_create: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        creating = self.instance is None or self.instance.pk is None
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            field = self.fields[name]
            field.widget = forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password"}
            )
            field.required = creating and name in self.secret_required_on_create
            is_set = not creating and bool(getattr(self.instance, name, ""))
            field.help_text = STORED_HELP if is_set else (NOT_STORED_HELP if not creating else "")
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
