"""What operators look at: the system site's logs across tenants and the tenant's audit log."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sms.models import Direction, Message, MessageStatus, SmsConfiguration, WebhookDelivery
from tenants.models import AuditEvent, Tenant
from tenants.services import audit_record
from tests.factories import World

pytestmark = pytest.mark.django_db


def _message(tenant: Tenant, body: str, **fields: Any) -> Message:
    values = {
        "direction": Direction.IN,
        "status": MessageStatus.ROUTED,
        "did": "+12125550101",
        "remote": "+18457231213",
    }
    values.update(fields)
    return Message.objects.create(tenant=tenant, body=body, **values)


def _rows(page: str) -> int:
    return page.count('<tr class="')


def test_the_system_message_log_lists_every_tenant_with_its_name_and_filters_by_tenant(
    world: World, client_for: Any
) -> None:
    _message(world.tenant_a, "hello from alpha land")
    _message(world.tenant_b, "hello from beta land", direction=Direction.OUT)
    client = client_for(world.sysadmin)

    page = client.get("/admin/sms/message/").content.decode()
    assert "hello from alpha land" in page and "hello from beta land" in page
    assert "column-tenant" in page and "Tenant A" in page and "Tenant B" in page

    narrowed = client.get(f"/admin/sms/message/?tenant__id__exact={world.tenant_b.pk}")
    text = narrowed.content.decode()
    assert "hello from beta land" in text and "hello from alpha land" not in text
    by_direction = client.get("/admin/sms/message/?direction__exact=out").content.decode()
    assert "hello from beta land" in by_direction and "hello from alpha land" not in by_direction
    searched = client.get("/admin/sms/message/?q=alpha").content.decode()
    assert "hello from alpha land" in searched and "hello from beta land" not in searched


def test_the_system_message_log_truncates_long_texts_and_opens_a_read_only_page(
    world: World, client_for: Any
) -> None:
    long = "x" * 59 + "THE-TAIL-IS-NOT-SHOWN" + "y" * 100
    message = _message(world.tenant_b, long)
    client = client_for(world.sysadmin)
    page = client.get("/admin/sms/message/?q=THE-TAIL").content.decode()
    # The list shows the first 40 characters; the whole text is only in the tooltip.
    assert f'<span title="{long}">{"x" * 40}…</span>' in page
    detail = client.get(f"/admin/sms/message/{message.pk}/change/")
    assert detail.status_code == 200
    assert "THE-TAIL-IS-NOT-SHOWN" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert client.get("/admin/sms/message/add/").status_code == 403
    assert client.get(f"/admin/sms/message/{message.pk}/delete/").status_code == 403
    assert client.post(f"/admin/sms/message/{message.pk}/change/", {"body": "x"}).status_code == 403
    assert Message.objects.get(pk=message.pk).body == long


def test_the_system_message_log_costs_the_same_queries_for_many_rows(
    world: World, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    client = client_for(world.sysadmin)
    _message(world.tenant_a, "one")
    client.get("/admin/sms/message/")  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/admin/sms/message/").status_code == 200
    for index in range(40):
        _message(world.tenant_a if index % 2 else world.tenant_b, f"row {index}")
    with django_assert_max_num_queries(len(few)):
        page = client.get("/admin/sms/message/").content.decode()
    assert "row 39" in page


def test_the_system_webhook_log_lists_every_tenant_and_filters_by_tenant(
    world: World, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    for tenant, objects in ((world.tenant_a, world.objects_a), (world.tenant_b, world.objects_b)):
        WebhookDelivery.objects.create(
            tenant=tenant,
            configuration=objects[SmsConfiguration],
            method="POST",
            reason=f"reason of {tenant.slug} " + "z" * 200,
        )
    client = client_for(world.sysadmin)
    client.get("/admin/sms/webhookdelivery/")
    with django_assert_max_num_queries(12):
        page = client.get("/admin/sms/webhookdelivery/").content.decode()
    assert "reason of a.example" in page and "reason of b.example" in page
    # The reason is cut in the list; the whole of it is in the tooltip.
    assert ">reason of a.example " + "z" * 20 + "…</span>" in page
    narrowed = client.get(
        f"/admin/sms/webhookdelivery/?tenant__id__exact={world.tenant_a.pk}"
    ).content.decode()
    assert "reason of a.example" in narrowed and "reason of b.example" not in narrowed
    delivery = WebhookDelivery.objects.for_tenant(world.tenant_b).first()
    assert client.get(f"/admin/sms/webhookdelivery/{delivery.pk}/change/").status_code == 200
    assert client.get("/admin/sms/webhookdelivery/add/").status_code == 403


@pytest.mark.parametrize("url", ["/admin/sms/message/", "/admin/sms/webhookdelivery/"])
def test_tenant_people_cannot_open_the_system_logs(world: World, client_for: Any, url: str) -> None:
    for user in (world.admin_a, world.user_a):
        response = client_for(user).get(url, follow=True)
        assert response.status_code == 403
        assert b"column-tenant" not in response.content
    anonymous = client_for(None).get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def _event(tenant: Tenant | None, action: str, who: str, address: str) -> AuditEvent:
    return audit_record(
        actor=None,
        actor_name=who,
        action=action,
        tenant=tenant,
        detail={"fields": ["name", "trunk"]},
        address=address,
    )


def test_the_audit_log_shows_the_tenants_own_events_with_who_what_when_and_where(
    world: World, client_for: Any
) -> None:
    own = _event(world.tenant_a, "configuration_changed", "alice-admin", "198.51.100.7")
    other = _event(world.tenant_b, "trunk_swapped_in_b", "bob-admin", "203.0.113.9")
    _event(None, "tenant_made_by_root", "root", "192.0.2.1")
    client = client_for(world.admin_a)
    page = client.get("/tenant/tenants/auditevent/").content.decode()
    assert "configuration_changed" in page and "198.51.100.7" in page and "alice-admin" in page
    assert "fields: name, trunk" in page
    assert "bob-admin" not in page and "203.0.113.9" not in page and "192.0.2.1" not in page
    assert client.get(f"/tenant/tenants/auditevent/{own.pk}/change/").status_code == 200
    assert client.get(f"/tenant/tenants/auditevent/{other.pk}/change/").status_code == 404
    # The filters offer this tenant's own values only.
    assert "trunk_swapped_in_b" not in page and "tenant_made_by_root" not in page
    assert client.get("/tenant/tenants/auditevent/add/").status_code == 403


def test_the_audit_log_filters_by_action_and_actor_and_searches(
    world: World, client_for: Any
) -> None:
    _event(world.tenant_a, "configuration_changed", "alice-admin", "198.51.100.7")
    _event(world.tenant_a, "rule_deleted", "carol-admin", "198.51.100.8")
    client = client_for(world.admin_a)
    by_action = client.get("/tenant/tenants/auditevent/?action=rule_deleted").content.decode()
    assert "198.51.100.8" in by_action and "198.51.100.7" not in by_action
    by_actor = client.get("/tenant/tenants/auditevent/?actor=alice-admin").content.decode()
    assert "198.51.100.7" in by_actor and "198.51.100.8" not in by_actor
    searched = client.get("/tenant/tenants/auditevent/?q=carol").content.decode()
    assert "198.51.100.8" in searched and "198.51.100.7" not in searched


def test_an_extension_user_cannot_open_the_audit_log(world: World, client_for: Any) -> None:
    event = _event(world.tenant_a, "configuration_changed", "alice-admin", "198.51.100.7")
    client = client_for(world.user_a)
    # The site sends a signed-in user it refuses to its sign-in page, which answers 403.
    for url in ("/tenant/tenants/auditevent/", f"/tenant/tenants/auditevent/{event.pk}/change/"):
        response = client.get(url, follow=True)
        assert response.status_code == 403
        assert b"198.51.100.7" not in response.content


def test_a_system_admin_managing_a_tenant_sees_only_that_tenants_audit_log(
    world: World, client_for: Any
) -> None:
    _event(world.tenant_a, "configuration_changed", "alice-admin", "198.51.100.7")
    other = _event(world.tenant_b, "secret_changed", "bob-admin", "203.0.113.9")
    client = client_for(world.sysadmin)
    assert client.post(f"/admin/tenants/tenant/{world.tenant_a.pk}/manage/").status_code == 302
    page = client.get("/tenant/tenants/auditevent/").content.decode()
    assert "198.51.100.7" in page and "203.0.113.9" not in page
    assert client.get(f"/tenant/tenants/auditevent/{other.pk}/change/").status_code == 404


def test_a_webhook_delivery_links_to_its_messages_on_the_site_that_shows_it(
    world: World, client_for: Any
) -> None:
    delivery = WebhookDelivery.objects.create(
        tenant=world.tenant_a, configuration=world.objects_a[SmsConfiguration], method="POST"
    )
    made = _message(world.tenant_a, "Made by the delivery", delivery=delivery)
    system = client_for(world.sysadmin).get(f"/admin/sms/webhookdelivery/{delivery.pk}/change/")
    assert f'href="/admin/sms/message/{made.pk}/change/"' in system.content.decode()
    tenant = client_for(world.admin_a).get(f"/tenant/sms/webhookdelivery/{delivery.pk}/change/")
    assert tenant.status_code == 200
    assert f'href="/tenant/sms/message/{made.pk}/change/"' in tenant.content.decode()
