"""The tenant site's Sandbox page: ownership, isolation, DIDs and both delivery modes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sms.admin.sandbox import callback_template
from sms.inbound.process import webhook_delivery_process
from sms.models import Direction, Message, WebhookDelivery
from tenants.models import AuditEvent, Extension, User
from tests.factories import World
from tests.sms.helpers import API_PASSWORD, make_configuration, make_rule
from trunks.services import trunk_assignment_save, trunk_save
from trunks.voipms.sandbox.models import SandboxAccount, SandboxDid, SandboxMessage
from trunks.voipms.sandbox.services import sandbox_account_ensure

PAGE = "/tenant/sandbox/"
DID = "8455577768"
DID_B = "8455577769"
HANDSET = "2125550143"


def did_url(sandbox_did: SandboxDid, suffix: str = "") -> str:
    return f"/tenant/sandbox/did/{sandbox_did.pk}/{suffix}"


@pytest.fixture
def accounts(world: World) -> tuple[SandboxAccount, SandboxAccount]:
    """Tenant A owns a@example.com with DID; tenant B owns b@example.com with DID_B."""
    account_a = sandbox_account_ensure(
        username="a@example.com", api_password="pass-a", dids=[DID], tenant=world.tenant_a
    )
    account_b = sandbox_account_ensure(
        username="b@example.com", api_password="pass-b", dids=[DID_B], tenant=world.tenant_b
    )
    return account_a, account_b


def test_a_tenant_admin_sees_only_his_accounts_and_dids(
    world: World, accounts: Any, client_for: Callable
) -> None:
    page_a = client_for(world.admin_a).get(PAGE)
    assert page_a.status_code == 200
    assert [d.did for d in page_a.context["dids"]] == [DID]
    assert [a.username for a in page_a.context["accounts"]] == ["a@example.com"]
    assert b"+18455577769" not in page_a.content and b"b@example.com" not in page_a.content
    page_b = client_for(world.admin_b).get(PAGE)
    assert [d.did for d in page_b.context["dids"]] == [DID_B]
    assert b"a@example.com" not in page_b.content


def test_another_tenants_did_is_a_404_and_stays_as_it_was(
    world: World, accounts: Any, client_for: Callable
) -> None:
    did_a = SandboxDid.objects.get(did=DID)
    client = client_for(world.admin_b)
    for url in (did_url(did_a), did_url(did_a, "delete/")):
        assert client.get(url).status_code == 404
        assert (
            client.post(
                url, {"webhook_url": "https://evil.example/", "number_format": "nanpa"}
            ).status_code
            == 404
        )
    did_a.refresh_from_db()
    assert did_a.webhook_url == ""
    # Adding a DID to A's account is not a choice B has.
    response = client.post(PAGE, {"add_did": "1", "account": accounts[0].pk, "did": "3322496216"})
    assert response.status_code == 200
    assert "account" in response.context["form"].errors
    assert not SandboxDid.objects.filter(did="3322496216").exists()


def test_users_and_signed_out_visitors_cannot_open_it(
    world: World, accounts: Any, client_for: Callable
) -> None:
    did_a = SandboxDid.objects.get(did=DID)
    user = client_for(world.user_a)
    assert user.get(PAGE, follow=True).status_code == 403
    assert user.post(did_url(did_a, "delete/"), follow=True).status_code == 403
    assert client_for(None).get(PAGE).status_code == 302
    assert SandboxDid.objects.filter(pk=did_a.pk).exists()


def test_the_page_is_not_there_without_the_sandbox(
    world: World, accounts: Any, client_for: Callable, settings: Any
) -> None:
    settings.VOIPMS_SANDBOX = False
    client = client_for(world.admin_a)
    assert client.get(PAGE).status_code == 404
    assert client.get(did_url(SandboxDid.objects.get(did=DID))).status_code == 404
    assert b"/tenant/sandbox/" not in client.get("/tenant/").content


def test_a_system_admin_managing_a_tenant_uses_its_sandbox(
    world: World, accounts: Any, client_for: Callable
) -> None:
    client = client_for(world.sysadmin)
    session = client.session
    session["managed_tenant_id"] = world.tenant_b.pk
    session.save()
    assert [d.did for d in client.get(PAGE).context["dids"]] == [DID_B]
    assert client.get(did_url(SandboxDid.objects.get(did=DID))).status_code == 404


def test_adding_and_removing_a_did(
    world: World, accounts: Any, client_for: Callable, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = "https://portal.example.com"
    configuration = make_configuration(world.tenant_a, username="a@example.com")
    client = client_for(world.admin_a)
    page = client.get(PAGE)
    assert b"Add DID" in page.content
    response = client.post(
        PAGE,
        {
            "add_did": "1",
            "account": accounts[0].pk,
            "did": "(332) 249-6216",
            "configuration": configuration.pk,
        },
    )
    assert response.status_code == 302 and response["Location"] == PAGE
    added = SandboxDid.objects.get(did="3322496216")
    assert added.account == accounts[0]
    assert added.webhook_url == configuration.webhook_url
    assert added.webhook_url.startswith("https://portal.example.com/hooks/voipms/")
    assert AuditEvent.objects.filter(tenant=world.tenant_a, action="sandbox DID added").exists()
    # A number already on a sandbox account, even another tenant's, and nonsense are refused.
    for did, problem in (
        (DID_B, "already on a sandbox account"),
        ("12", "is not a US or Canadian"),
    ):
        refused = client.post(PAGE, {"add_did": "1", "account": accounts[0].pk, "did": did})
        assert refused.status_code == 200
        assert problem in " ".join(refused.context["form"].errors["did"])
    assert SandboxDid.objects.get(did=DID_B).account == accounts[1]
    confirm = client.get(did_url(added, "delete/"))
    assert confirm.status_code == 200 and b"Yes, remove it" in confirm.content
    assert client.post(did_url(added, "delete/")).status_code == 302
    assert not SandboxDid.objects.filter(did="3322496216").exists()
    assert AuditEvent.objects.filter(tenant=world.tenant_a, action="sandbox DID removed").exists()


def test_setting_the_webhook_and_the_url_callback(
    world: World, accounts: Any, client_for: Callable
) -> None:
    configuration = make_configuration(world.tenant_a, username="a@example.com")
    did_a = SandboxDid.objects.get(did=DID)
    client = client_for(world.admin_a)
    page = client.get(did_url(did_a))
    # The configuration's URLs are offered as one-click defaults.
    assert configuration.webhook_url in page.content.decode()
    assert callback_template(configuration).replace("&", "&amp;") in page.content.decode()
    response = client.post(
        did_url(did_a),
        {
            "webhook_url": configuration.webhook_url,
            "callback_url": callback_template(configuration),
            "callback_enabled": "on",
            "number_format": "e164",
        },
    )
    assert response.status_code == 302
    did_a.refresh_from_db()
    assert (did_a.webhook_url, did_a.webhook_enabled) == (configuration.webhook_url, False)
    assert did_a.callback_url.endswith(
        "?from={FROM}&to={TO}&message={MESSAGE}&id={ID}&date={TIMESTAMP}&media={MEDIA}"
    )
    assert (did_a.callback_enabled, did_a.number_format) == (True, "e164")
    # Bad input gets a clear error and changes nothing.
    bad = client.post(
        did_url(did_a),
        {
            "webhook_url": "",
            "webhook_enabled": "on",
            "callback_url": "ftp://x",
            "number_format": "nanpa",
        },
    )
    assert bad.status_code == 200
    assert bad.context["form"].errors == {
        "webhook_url": ["Enter the URL, or untick “enabled”."],
        "callback_url": ["Enter an http:// or https:// URL."],
    }
    did_a.refresh_from_db()
    assert did_a.number_format == "e164"


def test_a_configuration_claims_an_unowned_account_but_never_anothers(
    world: World, accounts: Any
) -> None:
    free = sandbox_account_ensure(
        username="free@example.com", api_password="x", dids=["3322496213"]
    )
    make_configuration(world.tenant_a, name="Free", username="FREE@example.com")
    free.refresh_from_db()
    assert free.tenant == world.tenant_a
    make_configuration(world.tenant_a, name="Theirs", username="b@example.com")
    assert SandboxAccount.objects.get(username="b@example.com").tenant == world.tenant_b


def test_creating_the_account_a_configuration_signs_in_to(
    world: World, client_for: Callable
) -> None:
    configuration = make_configuration(world.tenant_a, username="new@example.com")
    client = client_for(world.admin_a)
    page = client.get(PAGE)
    assert b"Create this sandbox account" in page.content
    # Another tenant's configuration is not B's to create.
    other = client_for(world.admin_b).post(
        PAGE, {"create_account": "1", "configuration": configuration.pk}
    )
    assert other.status_code == 404
    assert not SandboxAccount.objects.filter(username="new@example.com").exists()
    response = client.post(PAGE, {"create_account": "1", "configuration": configuration.pk})
    assert response.status_code == 302
    account = SandboxAccount.objects.get(username="new@example.com")
    assert account.tenant == world.tenant_a
    # The sandbox accepts the configuration's own API password.
    assert account.api_password == API_PASSWORD


# End to end: the sandbox pushes into the portal, which files the message in the inbox -----------


@pytest.fixture
def tenant_a_on_did(world: World, settings: Any, live_server: Any) -> Any:
    """Tenant A's configuration signs in to a sandbox account holding DID, routed to 101."""
    settings.PUBLIC_BASE_URL = live_server.url
    trunk = trunk_save(name="Sandbox trunk", host="newyork1.voip.ms")
    trunk_assignment_save(trunk=trunk, tenant=world.tenant_a, did_pool=f"1{DID}")
    sandbox_account_ensure(username="a@example.com", api_password=API_PASSWORD, dids=[DID])
    configuration = make_configuration(
        world.tenant_a, name="Sandboxed", username="a@example.com", trunk=trunk
    )
    extension = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(world.tenant_a, did_range=DID, extension=extension, trunk=trunk)
    return configuration


def _deliver_and_process() -> Message:
    (delivery,) = WebhookDelivery.objects.all()
    webhook_delivery_process(delivery_id=delivery.pk)
    return Message.objects.get(direction=Direction.IN)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["webhook", "callback"])
def test_each_mode_delivers_into_the_inbox(
    mode: str, world: World, tenant_a_on_did: Any, client_for: Callable, tmp_path: Path
) -> None:
    configuration = tenant_a_on_did
    admin = client_for(world.admin_a)
    did_a = SandboxDid.objects.get(did=DID)
    fields = {"number_format": "nanpa"}
    if mode == "webhook":
        fields |= {"webhook_url": configuration.webhook_url, "webhook_enabled": "on"}
    else:
        fields |= {"callback_url": callback_template(configuration), "callback_enabled": "on"}
    assert admin.post(did_url(did_a), fields).status_code == 302
    user: User = world.user_a
    phone = client_for(user)
    response = phone.post(
        "/sandbox/voipms/phone/",
        {"did": DID, "handset": HANDSET, "text": f"Hello by {mode} & more", "via": mode},
        follow=True,
    )
    assert "pushed to the portal, which answered HTTP 200" in response.content.decode()
    assert SandboxMessage.objects.get().via == mode
    message = _deliver_and_process()
    assert message.tenant == world.tenant_a
    assert (message.did, message.remote) == (f"+1{DID}", f"+1{HANDSET}")
    assert message.body == f"Hello by {mode} & more"
    assert message.source == mode
    inbox = phone.get("/inbox/")
    assert f"+1{HANDSET}" in inbox.content.decode()
