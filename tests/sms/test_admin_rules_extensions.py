"""Saving outbound rules and extensions from the tenant site, and the tenant home's recent
actions: the forms that used to answer 500 on Save."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from sms.models import Message, OutboundRule, SmsCallerId
from sms.outbound.rules import outbound_rule_save
from tenants.models import Extension, User
from tests.factories import POOLS, World, make_messaging_objects, shared_trunk
from tests.screens import form_errors

ClientFor = Callable[[User | None], Client]
RULES = "/tenant/sms/outboundrule/"
EXTENSIONS = "/tenant/tenants/extension/"
DID_A = POOLS["a.example"].split("-")[0]  # 12125550100
DID_B = POOLS["b.example"].split("-")[0]


def _errors(response: Any) -> Any:
    return form_errors(response.context) if response.context else response


def _routes(*rows: dict[str, Any], initial: int = 0) -> dict[str, Any]:
    data = {
        "routes-TOTAL_FORMS": str(len(rows)),
        "routes-INITIAL_FORMS": str(initial),
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "6",
    }
    for i, row in enumerate(rows):
        data.update({f"routes-{i}-{k}": v for k, v in row.items()})
    return data


def _rule_form(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "priority": "10",
        "strategy": "prioritized",
        "enabled": "on",
        "prefixes": "1",
        "lengths": "",
        "from_extensions": "",
        "hours": "always",
        "_save": "Save",
        **extra,
    }


@pytest.mark.django_db
def test_adding_an_outbound_rule_saves_it_with_its_routes(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    trunk = shared_trunk()
    route = {"position": "1", "trunk": str(trunk.pk), "strip_digits": "0", "caller_id": DID_A}
    response = client.post(RULES + "add/", {**_rule_form("Long distance"), **_routes(route)})

    assert response.status_code == 302, (
        form_errors(response.context) if response.context else response
    )
    rule = OutboundRule.objects.for_tenant(world.tenant_a).get(name="Long distance")
    assert [(r.trunk_id, r.caller_id) for r in rule.routes.all()] == [(trunk.pk, "+" + DID_A)]
    assert rule.created_at is not None
    entry = LogEntry.objects.get(object_id=str(rule.pk), content_type__model="outboundrule")
    assert entry.is_addition() and "outbound route" in entry.get_change_message()


@pytest.mark.django_db
def test_editing_an_outbound_rule_replaces_its_routes_and_keeps_the_rule(
    world: World, client_for: ClientFor
) -> None:
    trunk = shared_trunk()
    rule = outbound_rule_save(
        tenant=world.tenant_a,
        actor=None,
        name="Local",
        prefixes="212",
        routes=[{"trunk": trunk, "caller_id": DID_A}],
    )
    created = rule.created_at
    route = rule.routes.get()
    client = client_for(world.admin_a)
    rows = (
        {
            "id": str(route.pk),
            "rule": str(rule.pk),
            "position": "1",
            "trunk": str(trunk.pk),
            "strip_digits": "0",
        },
        {"position": "2", "trunk": str(trunk.pk), "strip_digits": "1", "caller_id": DID_A},
    )
    response = client.post(
        f"{RULES}{rule.pk}/change/",
        {**_rule_form("Local", prefixes="212;646"), **_routes(*rows, initial=1)},
    )

    assert response.status_code == 302, (
        form_errors(response.context) if response.context else response
    )
    rule.refresh_from_db()
    assert rule.prefixes == "212;646" and rule.created_at == created
    assert [(r.position, r.strip_digits) for r in rule.routes.order_by("position")] == [
        (1, 0),
        (2, 1),
    ]


@pytest.mark.django_db
def test_an_outbound_rule_without_a_condition_is_a_field_error_that_keeps_the_input(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    response = client.post(
        RULES + "add/", {**_rule_form("No conditions", prefixes=""), **_routes()}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["prefixes"] == [
        "Give at least one condition: prefixes, lengths or from extensions."
    ]
    assert 'value="No conditions"' in response.content.decode()
    assert not OutboundRule.objects.for_tenant(world.tenant_a).filter(name="No conditions")
    assert "at least one condition" in form.fields["prefixes"].help_text


@pytest.mark.django_db
def test_the_rule_list_still_switches_a_rule_off_in_place(
    world: World, client_for: ClientFor
) -> None:
    rule = outbound_rule_save(tenant=world.tenant_a, actor=None, name="Toggle", prefixes="9")
    client = client_for(world.admin_a)
    response = client.post(
        RULES,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
            "form-0-id": str(rule.pk),
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.enabled is False and rule.prefixes == "9"


def _extension_form(number: str, *rows: dict[str, Any], initial: int = 0) -> dict[str, Any]:
    prefix = "sms_caller_ids"
    data = {
        "number": number,
        "display_name": "Front desk",
        "email": "",
        "sms_permission": "allow",
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


@pytest.mark.django_db
def test_adding_an_extension_with_a_caller_id_saves_both(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    page = client.get(EXTENSIONS + "add/")
    assert page.status_code == 200
    assert "sms_caller_ids-TOTAL_FORMS" in page.content.decode()
    row = {"trunk": str(shared_trunk().pk), "did": DID_A, "description": "Main line"}
    response = client.post(EXTENSIONS + "add/", _extension_form("305", row))

    assert response.status_code == 302, (
        form_errors(response.context) if response.context else response
    )
    extension = Extension.objects.for_tenant(world.tenant_a).get(number="305")
    assert list(SmsCallerId.objects.filter(extension=extension).values_list("did", flat=True)) == [
        "+" + DID_A
    ]


@pytest.mark.django_db
def test_a_caller_id_outside_the_pool_is_an_error_on_its_row_and_nothing_is_saved(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    row = {"trunk": str(shared_trunk().pk), "did": DID_B, "description": ""}
    response = client.post(EXTENSIONS + "add/", _extension_form("306", row))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert "not in this tenant's DID pool" in formset.forms[0].errors["did"][0]
    assert not Extension.objects.for_tenant(world.tenant_a).filter(number="306").exists()


@pytest.mark.django_db
def test_an_extension_saved_unchanged_keeps_its_caller_ids(
    world: World, client_for: ClientFor
) -> None:
    objects = make_messaging_objects(world.tenant_a, world.objects_a)
    caller_id = objects[SmsCallerId]
    extension = caller_id.extension
    row = {
        "id": str(caller_id.pk),
        "extension": str(extension.pk),
        "trunk": str(caller_id.trunk_id),
        "did": caller_id.did,
        "description": "",
    }
    client = client_for(world.admin_a)
    response = client.post(
        f"{EXTENSIONS}{extension.pk}/change/",
        {**_extension_form(extension.number, row, initial=1), "display_name": "Reception"},
    )

    assert response.status_code == 302, (
        form_errors(response.context) if response.context else response
    )
    assert list(SmsCallerId.objects.filter(extension=extension)) == [caller_id]


@pytest.mark.django_db
def test_recent_actions_link_into_the_tenant_site_and_stay_in_the_tenant(
    world: World, client_for: ClientFor
) -> None:
    objects_a = make_messaging_objects(world.tenant_a, world.objects_a)
    objects_b = make_messaging_objects(world.tenant_b, world.objects_b)
    rule_a, rule_b = objects_a[OutboundRule], objects_b[OutboundRule]
    sysadmin = client_for(world.sysadmin)
    for tenant, rule in ((world.tenant_b, rule_b), (world.tenant_a, rule_a)):
        sysadmin.post(f"/admin/tenants/tenant/{tenant.pk}/manage/")
        page = sysadmin.get(f"{RULES}{rule.pk}/change/")
        assert page.status_code == 200
        response = sysadmin.post(
            f"{RULES}{rule.pk}/change/", {**_rule_form(rule.name, prefixes="9"), **_routes()}
        )
        assert response.status_code == 302

    home = sysadmin.get("/tenant/").content.decode()
    assert f'href="{RULES}{rule_a.pk}/change/"' in home
    assert f"{RULES}{rule_b.pk}/" not in home  # Tenant B's rule, changed by the same user
    assert 'href="/admin/' not in home.split('id="recent-actions-module"')[1]

    tenant_admin = client_for(world.admin_a)
    tenant_admin.post(f"{RULES}{rule_a.pk}/change/", {**_rule_form("Renamed"), **_routes()})
    home = tenant_admin.get("/tenant/").content.decode()
    assert f'href="{RULES}{rule_a.pk}/change/">Renamed</a>' in home
    assert 'href="/admin/' not in home


@pytest.mark.django_db
def test_posting_to_another_tenants_read_only_page_is_a_404(
    world: World, client_for: ClientFor
) -> None:
    objects_b = make_messaging_objects(world.tenant_b, world.objects_b)
    message = objects_b[Message]
    client = client_for(world.admin_a)
    assert client.post(f"/tenant/sms/message/{message.pk}/change/", {}).status_code == 404
    own = make_messaging_objects(world.tenant_a, world.objects_a)[Message]
    assert client.post(f"/tenant/sms/message/{own.pk}/change/", {}).status_code == 403


@pytest.mark.django_db
def test_a_tenant_admin_deletes_a_used_configuration_and_a_private_trunk(
    world: World, client_for: ClientFor
) -> None:
    from sms.models import SmsConfiguration, WebhookDelivery
    from trunks.models import PrivateTrunk, TrunkAssignment

    objects = make_messaging_objects(world.tenant_a, world.objects_a)
    configuration = world.objects_a[SmsConfiguration]
    assert WebhookDelivery.objects.filter(configuration=configuration).exists()
    private = objects[PrivateTrunk]
    client = client_for(world.admin_a)
    client.post(  # gives the private trunk its DID pool
        f"/tenant/trunks/privatetrunk/{private.pk}/change/",
        {
            "name": private.name,
            "enabled": "on",
            "did_pool": "17185550100",
            "host": private.host,
            "port": "5060",
            "transport": "udp",
            "reregister_interval": "300",
            "max_concurrent_calls": "10",
            "_save": "Save",
        },
    )
    assert TrunkAssignment.objects.filter(trunk=private).exists()
    for url in (
        f"/tenant/sms/smsconfiguration/{configuration.pk}/delete/",
        f"/tenant/trunks/privatetrunk/{private.pk}/delete/",
    ):
        page = client.get(url)
        assert page.status_code == 200 and not page.context["perms_lacking"]
        assert client.post(url, {"post": "yes"}).status_code == 302
    assert not SmsConfiguration.objects.filter(pk=configuration.pk).exists()
    assert not WebhookDelivery.objects.filter(configuration_id=configuration.pk).exists()
    assert not PrivateTrunk.objects.filter(pk=private.pk).exists()
