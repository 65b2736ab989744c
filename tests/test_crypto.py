"""Secrets at rest: encrypted columns, key rotation with `reencrypt_fields`, removed keys, and
production start-up without FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from core import crypto
from core.crypto import EncryptedTextField, encrypted_fields
from sms.models import SmsConfiguration
from tenants.models import Tenant
from tests.sms.helpers import API_PASSWORD, make_configuration
from trunks.models import Trunk
from trunks.services import trunk_assignment_save, trunk_save

REPO_ROOT = Path(__file__).resolve().parent.parent
SIP_PASSWORD = "Plain-SIP-Secret-5150"


@pytest.fixture
def old_key(settings: Any) -> str:
    """Configure one fresh key, as a deployment that has never rotated."""
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [key]
    return key


@pytest.fixture
def new_key() -> str:
    return Fernet.generate_key().decode()


def _raw(model: type[Any], field: str, pk: int) -> str:
    """Return the stored column value, read with SQL and not through the model field."""
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def _decrypts_with(key: str, token: str) -> str:
    return Fernet(key.encode()).decrypt(token.encode()).decode()


# --- the field -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_encrypted_field_stores_ciphertext_and_reads_back_plaintext(old_key: str) -> None:
    trunk = trunk_save(name="VoIP.ms Crypto", host="crypto.voip.ms", sip_password=SIP_PASSWORD)

    stored = _raw(Trunk, "sip_password", trunk.pk)

    assert SIP_PASSWORD not in stored
    assert stored.startswith("gAAAAA")
    assert _decrypts_with(old_key, stored) == SIP_PASSWORD
    assert Trunk.objects.get(pk=trunk.pk).sip_password == SIP_PASSWORD


@pytest.mark.django_db
def test_the_same_secret_is_stored_differently_each_time(old_key: str) -> None:
    first = trunk_save(name="One", host="one.voip.ms", sip_password=SIP_PASSWORD)
    second = trunk_save(name="Two", host="two.voip.ms", sip_password=SIP_PASSWORD)

    assert _raw(Trunk, "sip_password", first.pk) != _raw(Trunk, "sip_password", second.pk)


@pytest.mark.django_db
def test_an_empty_secret_stays_empty(old_key: str) -> None:
    trunk = trunk_save(name="No password", host="none.voip.ms")

    assert _raw(Trunk, "sip_password", trunk.pk) == ""
    assert Trunk.objects.get(pk=trunk.pk).sip_password == ""


@pytest.mark.django_db
def test_every_secret_of_a_configuration_is_encrypted(old_key: str, tenant_a: Tenant) -> None:
    trunk_save(name="VoIP.ms San Jose", host="sanjose2.voip.ms")
    trunk_assignment_save(
        trunk=Trunk.objects.get(name="VoIP.ms San Jose"),
        tenant=tenant_a,
        did_pool="12125550100",
    )
    configuration = make_configuration(tenant_a)

    api_password = _raw(SmsConfiguration, "api_password", configuration.pk)
    webhook_token = _raw(SmsConfiguration, "webhook_token", configuration.pk)

    assert _decrypts_with(old_key, api_password) == API_PASSWORD
    assert _decrypts_with(old_key, webhook_token) == configuration.webhook_token
    assert configuration.webhook_token not in webhook_token


def test_encrypted_fields_lists_every_secret_column() -> None:
    found = {f"{model._meta.label}.{field.name}" for model, field in encrypted_fields()}

    assert {
        "trunks.Trunk.sip_password",
        "sms.SmsConfiguration.api_password",
        "sms.SmsConfiguration.webhook_token",
        "tenants.Tenant.callback_secret",
    } <= found
    assert all(isinstance(field, EncryptedTextField) for _, field in encrypted_fields())


# --- rotation ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_old_values_still_decrypt_after_a_new_key_is_put_first(
    old_key: str, new_key: str, settings: Any
) -> None:
    trunk = trunk_save(name="VoIP.ms Crypto", host="crypto.voip.ms", sip_password=SIP_PASSWORD)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    assert Trunk.objects.get(pk=trunk.pk).sip_password == SIP_PASSWORD
    fresh = trunk_save(name="Fresh", host="fresh.voip.ms", sip_password="Fresh-Secret-11")
    assert _decrypts_with(new_key, _raw(Trunk, "sip_password", fresh.pk)) == "Fresh-Secret-11"


@pytest.mark.django_db
def test_reencrypt_fields_moves_every_value_to_the_new_key_and_prints_counts(
    old_key: str, new_key: str, settings: Any, tenant_a: Tenant
) -> None:
    shared = trunk_save(name="VoIP.ms San Jose", host="sanjose2.voip.ms", sip_password=SIP_PASSWORD)
    bare = trunk_save(name="No password", host="none.voip.ms")
    trunk_assignment_save(trunk=shared, tenant=tenant_a, did_pool="12125550100")
    configuration = make_configuration(tenant_a)
    token = configuration.webhook_token
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out = StringIO()

    call_command("reencrypt_fields", stdout=out)

    lines = out.getvalue().splitlines()
    assert "trunks.Trunk.sip_password: 1 re-encrypted" in lines
    assert "sms.SmsConfiguration.api_password: 1 re-encrypted" in lines
    assert "sms.SmsConfiguration.webhook_token: 1 re-encrypted" in lines
    assert lines[-1] == "total: 3 re-encrypted"
    assert len(lines) == len(encrypted_fields()) + 1
    stored = {
        "sip": _raw(Trunk, "sip_password", shared.pk),
        "api": _raw(SmsConfiguration, "api_password", configuration.pk),
        "token": _raw(SmsConfiguration, "webhook_token", configuration.pk),
    }
    assert _decrypts_with(new_key, stored["sip"]) == SIP_PASSWORD
    assert _decrypts_with(new_key, stored["api"]) == API_PASSWORD
    assert _decrypts_with(new_key, stored["token"]) == token
    for value in stored.values():
        with pytest.raises(InvalidToken):
            _decrypts_with(old_key, value)
    assert _raw(Trunk, "sip_password", bare.pk) == ""

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert Trunk.objects.get(pk=shared.pk).sip_password == SIP_PASSWORD
    assert SmsConfiguration.objects.get(pk=configuration.pk).api_password == API_PASSWORD


@pytest.mark.django_db
def test_reencrypt_fields_twice_is_harmless(old_key: str, new_key: str, settings: Any) -> None:
    trunk = trunk_save(name="VoIP.ms Crypto", host="crypto.voip.ms", sip_password=SIP_PASSWORD)
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("reencrypt_fields", stdout=StringIO())
    call_command("reencrypt_fields", stdout=StringIO())

    assert _decrypts_with(new_key, _raw(Trunk, "sip_password", trunk.pk)) == SIP_PASSWORD


@pytest.mark.django_db
def test_a_value_under_a_removed_key_raises_a_clear_error(
    old_key: str, new_key: str, settings: Any
) -> None:
    trunk = trunk_save(name="VoIP.ms Crypto", host="crypto.voip.ms", sip_password=SIP_PASSWORD)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]

    with pytest.raises(ImproperlyConfigured) as caught:
        Trunk.objects.get(pk=trunk.pk)

    message = str(caught.value)
    assert "cannot be decrypted with FIELD_ENCRYPTION_KEYS" in message
    assert "reencrypt_fields" in message
    assert SIP_PASSWORD not in message
    assert old_key not in message and new_key not in message


@pytest.mark.django_db
def test_reencrypt_fields_names_the_row_a_removed_key_left_behind(
    old_key: str, new_key: str, settings: Any
) -> None:
    trunk_save(name="VoIP.ms Crypto", host="crypto.voip.ms", sip_password=SIP_PASSWORD)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]

    with pytest.raises((CommandError, ImproperlyConfigured)) as caught:
        call_command("reencrypt_fields", stdout=StringIO())

    assert "trunks.Trunk.sip_password" in str(caught.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "FIELD_ENCRYPTION_KEYS is empty"),
        (["not-a-fernet-key"], "FIELD_ENCRYPTION_KEYS holds a malformed key"),
    ],
)
def test_unusable_keys_raise_improperly_configured(
    settings: Any, keys: list[str], message: str
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = keys

    with pytest.raises(ImproperlyConfigured, match=message):
        crypto.encrypt("anything")


# --- production start-up -------------------------------------------------------------------


def _start_django(tmp_path: Path, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    """Import the settings and set Django up in a fresh process with a production env."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(45)[:60],
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_BASE_URL": "https://sms.example.com",
        "ALLOWED_HOSTS": "sms.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "VOIPMS_SANDBOX": "false",
        "VAR_DIR": str(tmp_path / "var"),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from django.conf import settings; print(len(settings.FIELD_ENCRYPTION_KEYS))",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_starts_with_field_encryption_keys(tmp_path: Path) -> None:
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"

    result = _start_django(tmp_path, FIELD_ENCRYPTION_KEYS=keys)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_production_start_up_without_field_encryption_keys_fails(tmp_path: Path) -> None:
    result = _start_django(tmp_path, FIELD_ENCRYPTION_KEYS=None)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr
    assert not (tmp_path / "var" / "field_encryption_keys").exists()


def test_production_start_up_with_blank_field_encryption_keys_fails(tmp_path: Path) -> None:
    result = _start_django(tmp_path, FIELD_ENCRYPTION_KEYS="")

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_production_reads_field_encryption_keys_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(Fernet.generate_key().decode() + "\n")

    result = _start_django(
        tmp_path, FIELD_ENCRYPTION_KEYS=None, FIELD_ENCRYPTION_KEYS_FILE=str(key_file)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


@pytest.mark.parametrize("keys", [",", " , ", "not-a-fernet-key"])
def test_production_start_up_with_no_usable_key_fails(tmp_path: Path, keys: str) -> None:
    result = _start_django(tmp_path, FIELD_ENCRYPTION_KEYS=keys)

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr
