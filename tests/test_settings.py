"""Settings from the environment: production passes `check --deploy` and refuses weak secrets.

Each test starts `manage.py` in a subprocess with an environment built from scratch, so that
nothing from the test session (DEBUG, VAR_DIR, demo secrets) leaks into it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.worker import session_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_SECRETS = ("secret_key", "field_encryption_keys")


def _random_secret_key() -> str:
    return secrets.token_urlsafe(45)[:60]


def _production_env(var_dir: Path, **overrides: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(var_dir),
        "LANG": "C.UTF-8",
        "DEBUG": "false",
        "SECRET_KEY": _random_secret_key(),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_BASE_URL": "https://sms.example.com",
        "ALLOWED_HOSTS": "sms.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "VOIPMS_SANDBOX": "false",
        # A fresh var/ shows whether production ever falls back to the demo's generated secrets.
        "VAR_DIR": str(var_dir),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _manage(env, "check", "--deploy", "--fail-level", "WARNING")


def _python_json(env: dict[str, str], code: str) -> Any:
    """Run Python code under the portal's settings and return the JSON it printed last."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _settings_seen(env: dict[str, str], *names: str) -> dict[str, object]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    return _python_json(env, code)


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    result = _deploy_check(_production_env(tmp_path))

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    assert "ERRORS" not in output
    assert "no issues" in result.stdout
    for name in DEMO_SECRETS:
        assert not (tmp_path / name).exists(), f"production generated a demo {name}"


def test_deploy_check_catches_a_weakened_production_setting(tmp_path: Path) -> None:
    result = _deploy_check(_production_env(tmp_path, SECURE_SSL_REDIRECT="false"))

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "PUBLIC_BASE_URL"])
def test_production_refuses_to_start_without_a_required_setting(
    tmp_path: Path, missing: str
) -> None:
    result = _deploy_check(_production_env(tmp_path, **{missing: None}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "missing" in result.stderr
    assert missing in result.stderr
    for name in DEMO_SECRETS:
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    "weak_key",
    [
        "django-insecure-" + secrets.token_urlsafe(45),
        secrets.token_urlsafe(20),
    ],
    ids=["django-insecure", "short"],
)
def test_production_refuses_a_weak_secret_key(tmp_path: Path, weak_key: str) -> None:
    result = _deploy_check(_production_env(tmp_path, SECRET_KEY=weak_key))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr
    assert weak_key not in result.stderr


def test_production_reads_secrets_from_files(tmp_path: Path) -> None:
    secret_key = tmp_path / "secret_key.txt"
    secret_key.write_text(_random_secret_key() + "\n")
    field_keys = tmp_path / "field_keys.txt"
    field_keys.write_text(Fernet.generate_key().decode() + "\n")
    env = _production_env(
        tmp_path / "var",
        SECRET_KEY=None,
        FIELD_ENCRYPTION_KEYS=None,
        SECRET_KEY_FILE=str(secret_key),
        FIELD_ENCRYPTION_KEYS_FILE=str(field_keys),
    )

    result = _manage(env, "check")

    assert result.returncode == 0, result.stdout + result.stderr
    seen = _settings_seen(env, "SECRET_KEY", "FIELD_ENCRYPTION_KEYS")
    assert seen["SECRET_KEY"] == secret_key.read_text().strip()
    assert seen["FIELD_ENCRYPTION_KEYS"] == [field_keys.read_text().strip()]


def test_production_talks_to_the_real_voipms_and_mounts_no_sandbox(tmp_path: Path) -> None:
    env = _production_env(tmp_path, VOIPMS_SANDBOX=None)

    seen = _settings_seen(env, "VOIPMS_SANDBOX", "VOIPMS_API_URL", "INSTALLED_APPS", "DEBUG")

    assert seen["DEBUG"] is False
    assert seen["VOIPMS_SANDBOX"] is False
    assert seen["VOIPMS_API_URL"] == "https://voip.ms/api/v1/rest.php"
    assert "trunks.voipms.sandbox" not in seen["INSTALLED_APPS"]


def test_demo_generates_its_secrets_once_under_var(tmp_path: Path) -> None:
    env = _production_env(
        tmp_path,
        DEBUG=None,
        SECRET_KEY=None,
        FIELD_ENCRYPTION_KEYS=None,
        PUBLIC_BASE_URL=None,
        ALLOWED_HOSTS=None,
        VOIPMS_SANDBOX="false",
    )

    first = _settings_seen(env, "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DEBUG")
    second = _settings_seen(env, "SECRET_KEY", "FIELD_ENCRYPTION_KEYS")

    assert first["DEBUG"] is True
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["FIELD_ENCRYPTION_KEYS"] == second["FIELD_ENCRYPTION_KEYS"]
    assert len(str(first["SECRET_KEY"])) >= 50
    for name in DEMO_SECRETS:
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_production_locks_sign_ins_after_five_failures_by_default(tmp_path: Path) -> None:
    seen = _settings_seen(
        _production_env(tmp_path), "AXES_FAILURE_LIMIT", "AXES_LOCKOUT_PARAMETERS"
    )

    assert seen["AXES_FAILURE_LIMIT"] == 5
    assert seen["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"VOIPMS_SANDBOX": "true"}, ["127.0.0.0/8", "::1/128"]),
        ({"OUTBOUND_HTTP_ALLOWED_NETWORKS": "10.8.0.0/16, fd00::/8"}, ["10.8.0.0/16", "fd00::/8"]),
    ],
)
def test_outbound_http_reaches_internal_networks_only_if_listed_or_for_the_sandbox(
    tmp_path: Path, overrides: dict[str, str], expected: list[str]
) -> None:
    env = _production_env(tmp_path, **overrides)

    seen = _settings_seen(env, "OUTBOUND_HTTP_ALLOWED_NETWORKS")

    assert seen["OUTBOUND_HTTP_ALLOWED_NETWORKS"] == expected


def test_the_demo_may_reach_its_own_sandbox_on_loopback(tmp_path: Path) -> None:
    env = _production_env(
        tmp_path, DEBUG=None, SECRET_KEY=None, FIELD_ENCRYPTION_KEYS=None, VOIPMS_SANDBOX=None
    )

    seen = _settings_seen(env, "OUTBOUND_HTTP_ALLOWED_NETWORKS", "DEBUG")

    assert seen["DEBUG"] is True
    assert seen["OUTBOUND_HTTP_ALLOWED_NETWORKS"] == ["127.0.0.0/8", "::1/128"]


def test_production_refuses_to_start_with_an_allowed_network_that_is_not_one(
    tmp_path: Path,
) -> None:
    env = _production_env(tmp_path, OUTBOUND_HTTP_ALLOWED_NETWORKS="10.0.0.0/8,intranet")

    result = _manage(env, "check")

    assert result.returncode != 0
    assert "OUTBOUND_HTTP_ALLOWED_NETWORKS: 'intranet' is not a network" in result.stderr


POOL_PROBE = """
import json, threading, django
django.setup()
from django.db import connection
pids = []
def work():
    for _ in range(5):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), pg_sleep(0.01)")
            pids.append(cursor.fetchone()[0])
        connection.close()  # what Django does at the end of each request
threads = [threading.Thread(target=work) for _ in range(24)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"queries": len(pids), "backends": len(set(pids))}))
"""


@pytest.mark.django_db
@pytest.mark.parametrize(("pool_size", "most_backends"), [("3", 3), ("0", None)])
def test_threads_share_a_pool_of_connections_when_one_is_set(
    tmp_path: Path, pool_size: str, most_backends: int | None
) -> None:
    env = _production_env(
        tmp_path,
        DATABASE_URL=session_database_url(),
        DATABASE_POOL_MAX_SIZE=pool_size,
        CONN_MAX_AGE="0",
    )
    seen = _python_json(env, POOL_PROBE)
    assert seen["queries"] == 120
    if most_backends is None:
        # Without a pool, every request after a close opens a connection of its own.
        assert seen["backends"] > 24
    else:
        assert 1 <= seen["backends"] <= most_backends


@pytest.mark.parametrize(("value", "checked"), [(None, True), ("false", False), ("true", True)])
def test_connection_health_checks_are_on_unless_switched_off(
    tmp_path: Path, value: str | None, checked: bool
) -> None:
    extra = {} if value is None else {"CONN_HEALTH_CHECKS": value}
    seen = _production_setting(tmp_path, "DATABASES['default']['CONN_HEALTH_CHECKS']", **extra)
    assert seen is checked


def _production_setting(tmp_path: Path, expression: str, **variables: str) -> Any:
    """Return `settings.<expression>` as a production process with these variables sees it."""
    env = _production_env(tmp_path, DATABASE_URL=session_database_url(), **variables)
    return _python_json(
        env,
        "import json, django\ndjango.setup()\nfrom django.conf import settings\n"
        f"print(json.dumps(settings.{expression}))",
    )


@pytest.mark.parametrize(
    ("variables", "prepared"),
    [
        ({}, True),
        ({"DATABASE_PREPARED_STATEMENTS": "false"}, False),
        ({"WEBHOOK_PREPARED_STATEMENT": "false"}, False),  # the earlier name is still read
        ({"WEBHOOK_PREPARED_STATEMENT": "false", "DATABASE_PREPARED_STATEMENTS": "true"}, True),
    ],
)
def test_prepared_statements_are_on_unless_switched_off(
    tmp_path: Path, variables: dict[str, str], prepared: bool
) -> None:
    assert _production_setting(tmp_path, "DATABASE_PREPARED_STATEMENTS", **variables) is prepared
