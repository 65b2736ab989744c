"""Encryption at rest for secrets (VoIP.ms API passwords, SIP passwords, webhook tokens)."""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds a malformed key") from error


def fernet() -> MultiFernet:
    """Return the MultiFernet of the configured keys, newest first."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    """Encrypt a text under the newest key."""
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a text encrypted under any configured key."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS "
            "(was a key removed before `manage.py reencrypt_fields` ran?)"
        ) from error


def rotate(token: str) -> str:
    """Re-encrypt a stored token under the newest key."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text stored encrypted with FIELD_ENCRYPTION_KEYS; the empty string stays empty."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

    def deconstruct(self) -> Any:
        return super().deconstruct()


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    """Return every (model, field) pair that stores an encrypted value."""
    return [
        (model, field)
        for model in apps.get_models()
        if not model._meta.proxy  # a proxy shares its table with the concrete model
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
