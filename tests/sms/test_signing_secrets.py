"""Signing secrets on the tenant site (inbound rules, status callbacks), the tenant Settings page
and what the rule forms and the tenant home say when no office hours are defined."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import time
from typing import Any

import pytest
from django.test import Client

from core.http import signature
from sms.inbound.destinations import webhook_signature
from sms.models import Action, InboundRule
from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import AuditEvent, Extension, OfficeHours, Tenant, User
from tests.factories import World
from tests.sms.helpers import make_rule

ClientFor = Callable[[User | None], Client]

RULES = "/tenant/sms/inboundrule/"
SETTINGS = "/tenant/settings/"
CALLBACK_REVEAL = "/tenant/settings/callback-secret/"
CALLBACK_ROTATE = "/tenant/settings/callback-secret/rotate/"
HOOK = "https://hooks.example.com/sms"


def reveal_url(rule: InboundRule) -> str:
    return f"{RULES}{rule.pk}/signing-secret/"


def rotate_url(rule: InboundRule) -> str:
    return f"{RULES}{rule.pk}/signing-secret/rotate/"


@pytest.fixture
def http_rule(world: World) -> InboundRule:
    """Return a rule of tenant A that POSTs office-hours messages to a URL."""
    return make_rule(
        world.tenant_a,
        did_range="12125550107",
        extension=Extension.objects.get(user=world.user_a),
        name="To the CRM",
        office_action=Action.HTTP,
        office_extension=None,
        office_target=HOOK,
    )


def managing(client: Client, tenant: Tenant) -> Client:
    session = client.session
    session[MANAGED_TENANT_SESSION_KEY] = tenant.pk
    session.save()
    return client


# --- the rule's signing secret ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_reveals_the_rule_secret_and_it_is_audited(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).post(reveal_url(http_rule))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    http_rule.refresh_from_db()
    assert http_rule.webhook_secret
    assert response.json() == {"secret": http_rule.webhook_secret}
    event = AuditEvent.objects.get(action="secret_revealed", object_id=str(http_rule.pk))
    assert event.actor == world.admin_a
    assert event.detail == {"field": "webhook_secret"}
    assert http_rule.webhook_secret not in str(event.detail)


@pytest.mark.django_db
def test_revealing_takes_a_post(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    assert client_for(world.admin_a).get(reveal_url(http_rule)).status_code == 405


@pytest.mark.django_db
def test_rotating_replaces_the_secret_at_once(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    old = client.post(reveal_url(http_rule)).json()["secret"]

    response = client.post(rotate_url(http_rule))

    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old
    http_rule.refresh_from_db()
    assert http_rule.webhook_secret == new
    assert AuditEvent.objects.filter(
        action="secret_changed", object_id=str(http_rule.pk), actor=world.admin_a
    ).exists()
    # The next delivery signs with the new secret: a receiver holding the old one refuses it.
    body = b'{"id":1}'
    sent = webhook_signature(secret=http_rule.webhook_secret, timestamp=1, body=body)
    assert sent != signature(secret=old, timestamp=1, body=body)
    assert sent == signature(secret=new, timestamp=1, body=body)


@pytest.mark.django_db
def test_another_tenant_cannot_reveal_or_rotate_the_rule_secret(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    secret = client_for(world.admin_a).post(reveal_url(http_rule)).json()["secret"]
    admin_b = client_for(world.admin_b)

    assert admin_b.post(reveal_url(http_rule)).status_code == 404
    assert admin_b.post(rotate_url(http_rule)).status_code == 404
    http_rule.refresh_from_db()
    assert http_rule.webhook_secret == secret
    assert not AuditEvent.objects.filter(actor=world.admin_b, action="secret_revealed").exists()


@pytest.mark.django_db
def test_an_extension_user_cannot_reveal_the_rule_secret(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    response = client_for(world.user_a).post(reveal_url(http_rule))

    assert response.status_code in (302, 403)
    assert not AuditEvent.objects.filter(action="secret_revealed").exists()


@pytest.mark.django_db
def test_a_system_admin_managing_the_tenant_reveals_the_secret(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    client = managing(client_for(world.sysadmin), world.tenant_a)

    assert client.post(reveal_url(http_rule)).status_code == 200
    assert managing(client_for(world.sysadmin), world.tenant_b).post(
        reveal_url(http_rule)
    ).status_code == (404)


@pytest.mark.django_db
def test_the_panel_shows_only_on_rules_with_an_http_destination_and_hides_the_value(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    secret = client.post(reveal_url(http_rule)).json()["secret"]

    page = client.get(f"{RULES}{http_rule.pk}/change/").content.decode()
    assert 'data-testid="signing-secret"' in page
    assert reveal_url(http_rule) in page
    assert secret not in page

    plain = make_rule(
        world.tenant_a,
        did_range="12125550108",
        extension=Extension.objects.get(user=world.user_a),
        name="To the desk",
    )
    assert (
        'data-testid="signing-secret"'
        not in client.get(f"{RULES}{plain.pk}/change/").content.decode()
    )
    refused = client.post(reveal_url(plain))
    assert refused.status_code == 400
    assert "no HTTP POST destination" in refused.json()["detail"]


@pytest.mark.django_db
def test_the_python_example_verifies_a_real_signature(
    world: World, http_rule: InboundRule, client_for: ClientFor
) -> None:
    page = client_for(world.admin_a).get(f"{RULES}{http_rule.pk}/change/").content.decode()
    example = html.unescape(re.search(r'<pre class="code-example">(.*?)</pre>', page, re.S)[1])
    namespace: dict[str, Any] = {}
    exec(example, namespace)  # noqa: S102 - the page's own example, run as a receiver would
    check = namespace["signature_ok"]
    body = '{"did":"+12125550107","body":"héllo"}'.encode()
    import time as clock

    now = int(clock.time())
    headers = {
        "X-Seed-Timestamp": str(now),
        "X-Seed-Signature": webhook_signature(secret="s3cret", timestamp=now, body=body),
    }

    assert check("s3cret", headers, body)
    assert not check("other", headers, body)
    assert not check("s3cret", headers, body + b" ")
    stale = {**headers, "X-Seed-Timestamp": str(now - 3600)}
    stale["X-Seed-Signature"] = webhook_signature(secret="s3cret", timestamp=now - 3600, body=body)
    assert not check("s3cret", stale, body)


# --- no office hours ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_rule_forms_and_the_home_say_what_happens_without_office_hours(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    OfficeHours.objects.filter(tenant=world.tenant_a).delete()

    inbound = client.get(f"{RULES}add/").content.decode()
    outbound = client.get("/tenant/sms/outboundrule/add/").content.decode()
    home = client.get("/tenant/").content.decode()

    assert "No office hours are defined" in inbound
    assert "Outside office hours destination is never used" in inbound
    assert '"Outside office hours" applies on holidays only' in html.unescape(outbound)
    assert 'data-testid="office-hours-warning"' in home
    assert "/tenant/tenants/officehours/add/" in home

    OfficeHours.objects.create(tenant=world.tenant_a, weekday=0, start=time(9), end=time(17))
    assert "No office hours are defined" not in client.get(f"{RULES}add/").content.decode()
    assert 'data-testid="office-hours-warning"' not in client.get("/tenant/").content.decode()


# --- the Settings page -------------------------------------------------------------------------


def settings_form(tenant: Tenant, **changes: str) -> dict[str, str]:
    data = {
        "timezone": tenant.timezone,
        "stop_reply": tenant.stop_reply,
        "help_reply": tenant.help_reply,
        "start_reply": tenant.start_reply,
        "retention_days": "" if tenant.retention_days is None else str(tenant.retention_days),
        "status_callback_url": tenant.status_callback_url,
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_a_tenant_admin_edits_the_stop_help_and_start_replies(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    assert 'href="/tenant/settings/"' in client.get("/tenant/").content.decode()
    assert client.get(SETTINGS).status_code == 200

    response = client.post(
        SETTINGS,
        settings_form(
            world.tenant_a,
            stop_reply="You will get no more texts. Reply START to come back.",
            help_reply="Acme support: 555-0100. Reply STOP to opt out.",
            start_reply="Welcome back!",
            status_callback_url="https://status.example.com/hook",
        ),
    )

    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    assert tenant.stop_reply == "You will get no more texts. Reply START to come back."
    assert tenant.help_reply == "Acme support: 555-0100. Reply STOP to opt out."
    assert tenant.start_reply == "Welcome back!"
    assert tenant.status_callback_url == "https://status.example.com/hook"
    event = AuditEvent.objects.get(action="settings_changed", tenant=world.tenant_a)
    assert event.detail["fields"] == [
        "help_reply",
        "start_reply",
        "status_callback_url",
        "stop_reply",
    ]
    assert Tenant.objects.get(pk=world.tenant_b.pk).start_reply != "Welcome back!"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("stop_reply", "x" * 161, "at most 160 characters"),
        ("timezone", "Mars/Olympus", "not a known time zone"),
        ("status_callback_url", "http://10.0.0.5/hook", "refused"),
        ("retention_days", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(
    world: World, client_for: ClientFor, field: str, value: str, error: str
) -> None:
    before = Tenant.objects.get(pk=world.tenant_a.pk)

    response = client_for(world.admin_a).post(SETTINGS, settings_form(before, **{field: value}))

    assert response.status_code == 200
    assert error in html.unescape(response.content.decode())
    assert getattr(Tenant.objects.get(pk=world.tenant_a.pk), field) == getattr(before, field)
    assert not AuditEvent.objects.filter(action="settings_changed").exists()


@pytest.mark.django_db
def test_the_help_reply_without_stop_is_pointed_out(world: World, client_for: ClientFor) -> None:
    Tenant.objects.filter(pk=world.tenant_a.pk).update(help_reply="Call us at 555-0100.")

    page = client_for(world.admin_a).get(SETTINGS).content.decode()

    assert "does not say how to stop messages" in page


@pytest.mark.django_db
def test_settings_are_for_tenant_admins_and_each_tenant_its_own(
    world: World, client_for: ClientFor
) -> None:
    assert client_for(world.user_a).get(SETTINGS).status_code in (302, 403)
    assert client_for(world.user_a).post(CALLBACK_REVEAL).status_code in (302, 403)

    secret_a = client_for(world.admin_a).post(CALLBACK_REVEAL).json()["secret"]
    secret_b = client_for(world.admin_b).post(CALLBACK_REVEAL).json()["secret"]
    managed = managing(client_for(world.sysadmin), world.tenant_a).post(CALLBACK_REVEAL)

    assert secret_a != secret_b
    assert managed.json()["secret"] == secret_a
    assert Tenant.objects.get(pk=world.tenant_a.pk).callback_secret == secret_a
    assert AuditEvent.objects.filter(
        action="secret_revealed", tenant=world.tenant_b, actor=world.admin_b
    ).exists()
    # Tenant B's page and actions never touch tenant A.
    client_for(world.admin_b).post(CALLBACK_ROTATE)
    assert Tenant.objects.get(pk=world.tenant_a.pk).callback_secret == secret_a
    b_page = client_for(world.admin_b).post(
        SETTINGS, settings_form(world.tenant_b, start_reply="B only")
    )
    assert b_page.status_code == 302
    assert Tenant.objects.get(pk=world.tenant_a.pk).start_reply != "B only"


@pytest.mark.django_db
def test_rotating_the_callback_secret_signs_callbacks_with_the_new_one(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    old = client.post(CALLBACK_REVEAL).json()["secret"]

    new = client.post(CALLBACK_ROTATE).json()["secret"]

    assert new != old
    assert Tenant.objects.get(pk=world.tenant_a.pk).callback_secret == new
    assert client.get(CALLBACK_ROTATE).status_code == 405
