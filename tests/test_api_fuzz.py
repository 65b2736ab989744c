"""Schema-driven fuzzing of the whole REST API: no 5xx, and every answer matches the schema.

Schemathesis generates valid and invalid requests for every operation of the served OpenAPI
schema and sends them through Django's WSGI handler, once with a tenant administrator's token and
once as a system administrator naming the tenant with X-Tenant. Each request runs in a savepoint
that is rolled back, so every request sees the same fixture data (a DELETE removes nothing for
the next one). Generation is derandomized: every run sends the same requests.

The operation and call counts are printed (run with -s) and written to VAR_DIR/api_fuzz.txt.
API_FUZZ_EXAMPLES raises the examples per operation, caller and mode for a deeper run;
API_FUZZ_ONLY="GET /api/v1/messages/" limits the run to the operations whose label contains it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.wsgi import application
from sms.models import Conversation
from tenants.models import User
from tests.factories import World, make_messaging_objects

# Per operation, caller and mode: 26 requests per operation and caller in all.
EXAMPLES_PER_MODE = int(os.environ.get("API_FUZZ_EXAMPLES", "13"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


class RolledBackApp:
    """Django's WSGI application, each request in a savepoint rolled back after it answered."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # As Django's test client does: the handler must not close the test's connection.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            with transaction.atomic():
                response = application(environ, start_response)
                body = b"".join(response)
                response.close()
                transaction.set_rollback(True)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]


@dataclass
class Tally:
    calls: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, label: str) -> None:
        self.calls[label] = self.calls.get(label, 0) + 1


def _token(user: User) -> str:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    response = client.post("/account/api-tokens/", {"action": "create"})
    match = re.search(r'data-testid="new-token">\s*([^<\s]+)\s*<', response.content.decode())
    assert match, "the new token is not shown on the page"
    return match.group(1)


def _fuzz_operation(
    operation: Any, mode: Any, headers: dict[str, str], tally: Tally, auth: str
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        tally.record(label)
        # The caller's credentials and tenant always win over generated headers.
        case.headers = {**(case.headers or {}), **headers}
        response = case.call()
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as error:
            found = error.exceptions if isinstance(error, FailureGroup) else [error]
            for failure in found:
                message = " ".join(failure.message.split())[:300]
                tally.failures.append(
                    f"[{auth}, {mode.value}] {label}: {failure.title}: {message}\n"
                    f"    {case.as_curl_command(headers=headers)}"
                )

    sent = tally.calls.get(label, 0)
    try:
        run()
    except Unsatisfiable:
        # An operation whose only input is the optional X-Tenant header (GET /api/v1/settings/)
        # has nothing that can be made invalid; its valid requests are still sent.
        if mode != schemathesis.GenerationMode.NEGATIVE or tally.calls.get(label, 0) != sent:
            raise


def _report(name: str, tallies: list[tuple[str, Tally]]) -> str:
    lines = []
    total_calls = 0
    for auth, tally in tallies:
        calls = sum(tally.calls.values())
        total_calls += calls
        lines.append(
            f"{auth}: {len(tally.calls)} operations, {calls} calls, {len(tally.failures)} failures"
        )
    lines.append(f"total: {total_calls} calls")
    text = "\n".join(lines)
    details = [
        f"{auth}: {label}: {calls} calls"
        for auth, tally in tallies
        for label, calls in sorted(tally.calls.items())
    ]
    out = Path(django_settings.VAR_DIR) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n\n" + "\n".join(details) + "\n")
    print(f"\nAPI fuzz ({name}):\n{text}")
    return text


@pytest.mark.django_db
@pytest.mark.usefixtures("voipms_dids")
def test_fuzzing_every_api_operation_finds_no_server_error_and_no_schema_drift(
    world: World,
) -> None:
    make_messaging_objects(world.tenant_a, world.objects_a)
    # A conversation nobody was assigned to: its extension and ring group fields are null.
    Conversation.objects.create(tenant=world.tenant_a, did="+12125550105", remote="+13125550100")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", RolledBackApp())
    tallies = [
        ("tenant token", Tally(), {"Authorization": f"Token {_token(world.admin_a)}"}),
        (
            "system admin, X-Tenant",
            Tally(),
            {
                "Authorization": f"Token {_token(world.sysadmin)}",
                "X-Tenant": world.tenant_a.slug,
            },
        ),
    ]

    only = os.environ.get("API_FUZZ_ONLY", "")
    operations = [result.ok() for result in schema.get_all_operations()]
    for auth, tally, headers in tallies:
        for operation in operations:
            if only in operation.label:
                for mode in MODES:
                    _fuzz_operation(operation, mode, headers, tally, auth)

    _report("api_fuzz", [(auth, tally) for auth, tally, _ in tallies])
    failures = [failure for _, tally, _ in tallies for failure in tally.failures]
    kinds = sorted({failure.split("\n")[0] for failure in failures})
    assert not failures, "\n".join(kinds[:80]) + f"\n({len(failures)} failures)\n" + failures[0]
