"""Users, ring groups, office hours, holidays, tenant settings and the audit log in the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tenants.models import AuditEvent, Extension, Holiday, OfficeHours, RingGroup, Role, User
from tenants.services import audit_record
from tests.factories import World

ClientFor = Callable[[User | None], Client]

USERS = "/api/v1/users/"
RING_GROUPS = "/api/v1/ring-groups/"
OFFICE_HOURS = "/api/v1/office-hours/"
HOLIDAYS = "/api/v1/holidays/"
SETTINGS = "/api/v1/settings/"
ROTATE = "/api/v1/settings/rotate-callback-secret/"
AUDIT = "/api/v1/audit-log/"
STRONG = "Kettle-harbour-Quilt-8812"


def post(client: Client, url: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(url, body, content_type="application/json", headers=headers)


def patch(client: Client, url: str, body: dict[str, Any], **headers: str) -> Any:
    return client.patch(url, body, content_type="application/json", headers=headers)


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- users -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_creates_changes_and_deletes_a_user_of_his_tenant(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    extension = world.objects_a[Extension]

    created = post(
        client,
        USERS,
        {
            "username": "carol",
            "email": "carol@a.example",
            "password": STRONG,
            "extension": extension.pk,
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    url = f"{USERS}{body['id']}/"
    changed = patch(client, url, {"role": "tenant_admin", "extension": None, "is_active": False})
    carol = User.objects.get(username="carol")

    assert "password" not in body
    assert body["tenant"] == "a.example"
    assert body["role"] == "user"
    assert body["extension"] == extension.pk
    assert carol.check_password(STRONG)
    assert carol.tenant == world.tenant_a
    assert not carol.is_staff
    assert changed.status_code == 200, changed.content
    assert changed.json()["role"] == "tenant_admin"
    assert changed.json()["extension"] is None
    assert changed.json()["is_active"] is False
    assert Extension.objects.get(pk=extension.pk).user is None
    assert client.delete(url).status_code == 204
    assert not User.objects.filter(username="carol").exists()
    actions = set(
        AuditEvent.objects.filter(object_type="tenants.user", tenant=world.tenant_a).values_list(
            "action", flat=True
        )
    )
    assert {"created", "changed", "deleted"} <= actions


@pytest.mark.django_db
def test_a_password_is_checked_with_the_password_rules_and_never_shown(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    weak = post(client, USERS, {"username": "dave", "password": "password"})
    common = post(client, USERS, {"username": "dave", "password": "dave"})
    fine = post(client, USERS, {"username": "dave"})
    changed = patch(client, f"{USERS}{fine.json()['id']}/", {"password": STRONG})

    assert weak.status_code == 400
    assert weak.json()["field"] == "password"
    assert common.status_code == 400
    assert fine.status_code == 201, fine.content
    assert changed.status_code == 200
    assert "password" not in changed.json()
    assert User.objects.get(username="dave").check_password(STRONG)
    assert not User.objects.filter(username="dave", password__contains=STRONG).exists()


@pytest.mark.django_db
def test_a_tenant_admin_cannot_make_a_system_admin_or_reach_another_tenant(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    b_member = world.objects_b[User]
    b_extension = world.objects_b[Extension]

    system = post(client, USERS, {"username": "mallory", "role": "system_admin"})
    foreign_extension = post(client, USERS, {"username": "mallory", "extension": b_extension.pk})
    listed = {row["username"] for row in results(client.get(USERS))}

    assert system.status_code == 400
    assert system.json()["field"] == "role"
    assert foreign_extension.status_code == 400
    assert "extension" in foreign_extension.json()["errors"]
    assert not User.objects.filter(username="mallory").exists()
    assert listed == {"alice-admin", "alice-101", "member-a.example"}
    assert client.get(f"{USERS}{b_member.pk}/").status_code == 404
    assert patch(client, f"{USERS}{b_member.pk}/", {"email": "x@a.example"}).status_code == 404
    assert client.delete(f"{USERS}{b_member.pk}/").status_code == 404
    assert client.get(f"{USERS}{world.sysadmin.pk}/").status_code == 404
    assert client.get(USERS, headers={"X-Tenant": "b.example"}).status_code == 404
    assert User.objects.filter(pk=b_member.pk, email="").exists()


@pytest.mark.django_db
def test_a_tenant_admin_cannot_delete_demote_or_deactivate_himself(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    url = f"{USERS}{world.admin_a.pk}/"

    assert client.delete(url).status_code == 400
    assert patch(client, url, {"role": "user"}).json()["field"] == "role"
    assert patch(client, url, {"is_active": False}).json()["field"] == "is_active"
    world.admin_a.refresh_from_db()
    assert world.admin_a.is_active and world.admin_a.role == Role.TENANT_ADMIN


@pytest.mark.django_db
def test_a_system_admin_manages_every_user_and_one_tenant_with_x_tenant(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)

    everyone = {row["username"] for row in results(client.get(USERS))}
    tenant_b = {
        row["username"] for row in results(client.get(USERS, headers={"X-Tenant": "b.example"}))
    }
    in_b = post(
        client, USERS, {"username": "erin", "role": "tenant_admin"}, **{"X-Tenant": "b.example"}
    )
    root2 = post(client, USERS, {"username": "root2", "role": "system_admin", "password": STRONG})
    tenantless = post(client, USERS, {"username": "frank", "role": "user"})

    assert {"root", "alice-admin", "bob-admin", "member-b.example"} <= everyone
    assert tenant_b == {"bob-admin", "bob-101", "member-b.example"}
    assert in_b.status_code == 201, in_b.content
    assert User.objects.get(username="erin").tenant == world.tenant_b
    assert root2.status_code == 201, root2.content
    assert root2.json()["tenant"] is None
    assert User.objects.get(username="root2").is_superuser
    assert tenantless.status_code == 400
    assert not User.objects.filter(username="frank").exists()


@pytest.mark.django_db
def test_an_extension_user_is_refused_every_tenant_admin_route(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)
    for url in (
        USERS,
        RING_GROUPS,
        OFFICE_HOURS,
        HOLIDAYS,
        SETTINGS,
        AUDIT,
        "/api/v1/extensions/",
        "/api/v1/webhook-deliveries/",
    ):
        assert client.get(url).status_code == 403, url
    assert post(client, USERS, {"username": "sneaky", "role": "tenant_admin"}).status_code == 403
    assert patch(client, SETTINGS, {"timezone": "UTC"}).status_code == 403
    assert client.post(ROTATE).status_code == 403
    assert (
        post(
            client, HOLIDAYS, {"name": "x", "start_date": "2030-01-01", "end_date": "2030-01-01"}
        ).status_code
        == 403
    )
    assert not User.objects.filter(username="sneaky").exists()


# --- ring groups, office hours, holidays -----------------------------------------------------


@pytest.mark.django_db
def test_ring_groups_with_members_through_the_api(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)
    reception = world.objects_a[Extension]
    other = Extension.objects.get(tenant=world.tenant_a, number="101")

    created = post(
        client,
        RING_GROUPS,
        {
            "name": "Sales",
            "number": "700",
            "members": [{"extension": reception.pk}, {"extension": other.pk, "enabled": False}],
        },
    )
    assert created.status_code == 201, created.content
    url = f"{RING_GROUPS}{created.json()['id']}/"
    renamed = patch(client, url, {"name": "Sales team"})
    replaced = patch(client, url, {"members": [{"extension": other.pk, "position": 3}]})
    twice = patch(client, url, {"members": [{"extension": other.pk}, {"extension": other.pk}]})
    duplicate_name = post(client, RING_GROUPS, {"name": "Sales team"})

    assert [(m["extension"], m["enabled"]) for m in created.json()["members"]] == [
        (reception.pk, True),
        (other.pk, False),
    ]
    assert renamed.json()["name"] == "Sales team"
    assert len(renamed.json()["members"]) == 2
    assert replaced.json()["members"] == [{"extension": other.pk, "enabled": True, "position": 3}]
    assert twice.status_code == 400
    assert duplicate_name.status_code == 400
    assert duplicate_name.json()["field"] == "name"
    assert client.delete(url).status_code == 204
    assert not RingGroup.objects.filter(name="Sales team").exists()


@pytest.mark.django_db
def test_a_ring_group_takes_only_extensions_of_its_tenant(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    refused = post(
        client,
        RING_GROUPS,
        {"name": "Mixed", "members": [{"extension": world.objects_b[Extension].pk}]},
    )
    assert refused.status_code == 400
    assert "members" in refused.json()["errors"]
    assert not RingGroup.objects.filter(name="Mixed").exists()


@pytest.mark.django_db
def test_office_hours_and_holidays_through_the_api(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    monday = post(client, OFFICE_HOURS, {"weekday": 0, "start": "09:00", "end": "12:00"})
    overlapping = post(client, OFFICE_HOURS, {"weekday": 0, "start": "11:00", "end": "13:00"})
    backwards = post(client, OFFICE_HOURS, {"weekday": 1, "start": "17:00", "end": "09:00"})
    bad_day = post(client, OFFICE_HOURS, {"weekday": 9, "start": "09:00", "end": "10:00"})
    moved = patch(client, f"{OFFICE_HOURS}{monday.json()['id']}/", {"weekday": 2})
    holiday = post(
        client,
        HOLIDAYS,
        {
            "name": "New Year",
            "start_date": "2031-01-01",
            "end_date": "2031-01-01",
            "every_year": True,
        },
    )
    reversed_holiday = post(
        client, HOLIDAYS, {"name": "Odd", "start_date": "2031-01-02", "end_date": "2031-01-01"}
    )

    assert monday.status_code == 201, monday.content
    assert overlapping.status_code == 400
    assert overlapping.json()["field"] == "start"
    assert backwards.status_code == 400
    assert backwards.json()["field"] == "end"
    assert bad_day.status_code == 400
    assert "weekday" in bad_day.json()["errors"]
    assert moved.json()["weekday"] == 2
    assert holiday.status_code == 201, holiday.content
    assert holiday.json()["every_year"] is True
    assert reversed_holiday.status_code == 400
    assert reversed_holiday.json()["field"] == "end_date"
    assert client.delete(f"{HOLIDAYS}{holiday.json()['id']}/").status_code == 204
    assert client.delete(f"{OFFICE_HOURS}{monday.json()['id']}/").status_code == 204
    assert not Holiday.objects.filter(name="New Year").exists()


@pytest.mark.django_db
def test_schedule_and_groups_of_tenant_a_are_404_and_unlisted_for_tenant_b(
    world: World, client_for: ClientFor
) -> None:
    owner, intruder = client_for(world.admin_a), client_for(world.admin_b)
    group = post(owner, RING_GROUPS, {"name": "A only"}).json()
    hours = post(owner, OFFICE_HOURS, {"weekday": 4, "start": "08:00", "end": "09:00"}).json()
    holiday = post(
        owner, HOLIDAYS, {"name": "A day", "start_date": "2032-05-01", "end_date": "2032-05-01"}
    ).json()

    for base, row in ((RING_GROUPS, group), (OFFICE_HOURS, hours), (HOLIDAYS, holiday)):
        url = f"{base}{row['id']}/"
        assert intruder.get(url).status_code == 404, url
        assert patch(intruder, url, {}).status_code == 404, url
        assert intruder.delete(url).status_code == 404, url
        assert row["id"] not in {r["id"] for r in results(intruder.get(base))}
        assert owner.get(url).status_code == 200
    assert RingGroup.objects.filter(pk=group["id"]).exists()
    assert OfficeHours.objects.filter(pk=hours["id"]).exists()


# --- settings --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_reads_and_changes_the_settings(world: World, client_for: ClientFor) -> None:
    client = client_for(world.admin_a)

    read = client.get(SETTINGS)
    changed = patch(
        client,
        SETTINGS,
        {
            "timezone": "Europe/Paris",
            "stop_reply": "Bye",
            "start_reply": "Welcome back",
            "retention_days": 30,
        },
    )
    bad_zone = patch(client, SETTINGS, {"timezone": "Mars/Olympus"})
    bad_days = patch(client, SETTINGS, {"retention_days": 0})
    quota = patch(client, SETTINGS, {"monthly_quota": 10})
    secret_ignored = patch(client, SETTINGS, {"callback_secret": "chosen"})

    assert read.status_code == 200
    assert read.json()["slug"] == "a.example"
    assert read.json()["callback_secret"] is None
    assert changed.status_code == 200, changed.content
    assert changed.json()["timezone"] == "Europe/Paris"
    world.tenant_a.refresh_from_db()
    assert (world.tenant_a.stop_reply, world.tenant_a.start_reply) == ("Bye", "Welcome back")
    assert world.tenant_a.retention_days == 30
    assert bad_zone.status_code == 400
    assert "timezone" in bad_zone.json()["errors"]
    assert bad_days.status_code == 400
    assert "retention_days" in bad_days.json()["errors"]
    assert quota.status_code == 400
    assert quota.json()["field"] == "monthly_quota"
    assert world.tenant_a.monthly_quota is None
    assert secret_ignored.json()["callback_secret"] is None
    assert AuditEvent.objects.filter(action="settings_changed", tenant=world.tenant_a).exists()


@pytest.mark.django_db
def test_a_system_admin_sets_the_quota_of_the_tenant_he_names(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    changed = patch(
        client, SETTINGS, {"monthly_quota": 500, "quota_hard": True}, **{"X-Tenant": "a.example"}
    )
    unnamed = client.get(SETTINGS)

    assert changed.status_code == 200, changed.content
    world.tenant_a.refresh_from_db()
    world.tenant_b.refresh_from_db()
    assert (world.tenant_a.monthly_quota, world.tenant_a.quota_hard) == (500, True)
    assert world.tenant_b.monthly_quota is None
    assert unnamed.status_code == 400
    assert unnamed.json()["code"] == "tenant_required"


@pytest.mark.django_db
def test_settings_are_the_callers_own_tenant_only(world: World, client_for: ClientFor) -> None:
    intruder = client_for(world.admin_b)
    patch(intruder, SETTINGS, {"stop_reply": "B says bye"})

    assert intruder.get(SETTINGS, headers={"X-Tenant": "a.example"}).status_code == 404
    assert (
        patch(intruder, SETTINGS, {"stop_reply": "x"}, **{"X-Tenant": "a.example"}).status_code
        == 404
    )
    assert intruder.post(ROTATE, headers={"X-Tenant": "a.example"}).status_code == 404
    assert client_for(world.admin_a).get(SETTINGS).json()["stop_reply"] == ""
    world.tenant_a.refresh_from_db()
    assert world.tenant_a.callback_secret == ""


@pytest.mark.django_db
def test_rotating_the_callback_secret_replaces_it_and_is_audited(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    first = client.post(ROTATE)
    second = client.post(ROTATE)
    shown = client.get(SETTINGS).json()["callback_secret"]

    assert first.status_code == second.status_code == 200
    assert len(first.json()["callback_secret"]) >= 32
    assert first.json()["callback_secret"] != second.json()["callback_secret"]
    assert shown == second.json()["callback_secret"]
    world.tenant_a.refresh_from_db()
    assert world.tenant_a.callback_secret == shown
    events = AuditEvent.objects.filter(
        action="secret_changed", tenant=world.tenant_a, object_type="tenants.tenant"
    )
    assert events.count() == 2
    assert all(event.detail == {"field": "callback_secret"} for event in events)
    assert not any(shown in str(event.detail) for event in AuditEvent.objects.all())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT callback_secret FROM tenants_tenant WHERE id = %s", [world.tenant_a.pk]
        )
        stored = cursor.fetchone()[0]
    assert stored and shown not in stored


# --- audit log -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_audit_log_shows_a_tenant_admin_his_tenants_events_only(
    world: World, client_for: ClientFor
) -> None:
    audit_record(actor=world.admin_a, action="manage", tenant=world.tenant_a)
    audit_record(actor=world.admin_b, action="manage", tenant=world.tenant_b)
    audit_record(actor=world.sysadmin, action="sign_in")
    client = client_for(world.admin_a)

    rows = results(client.get(AUDIT))
    managed = results(client.get(AUDIT, {"action": "manage"}))
    future = results(client.get(AUDIT, {"since": "2999-01-01T00:00:00Z"}))
    past = results(client.get(AUDIT, {"until": "2000-01-01T00:00:00Z"}))
    bad = client.get(AUDIT, {"since": "yesterday"})

    assert rows
    assert {row["tenant"] for row in rows} == {"a.example"}
    assert [row["action"] for row in managed] == ["manage"]
    assert managed[0]["actor_name"] == "alice-admin"
    assert future == past == []
    assert bad.status_code == 400
    assert "since" in bad.json()["errors"]
    assert client.get(AUDIT, headers={"X-Tenant": "b.example"}).status_code == 404


@pytest.mark.django_db
def test_a_system_admin_reads_every_tenants_audit_log_or_one(
    world: World, client_for: ClientFor
) -> None:
    audit_record(actor=world.admin_a, action="manage", tenant=world.tenant_a)
    audit_record(actor=world.admin_b, action="manage", tenant=world.tenant_b)
    client = client_for(world.sysadmin)

    everyone = {row["tenant"] for row in results(client.get(AUDIT, {"action": "manage"}))}
    only_b = {
        row["tenant"]
        for row in results(
            client.get(AUDIT, {"action": "manage"}, headers={"X-Tenant": "b.example"})
        )
    }

    assert everyone == {"a.example", "b.example"}
    assert only_b == {"b.example"}


@pytest.mark.django_db
def test_the_schema_documents_the_new_routes_and_hides_secrets_where_it_must(
    world: World, client_for: ClientFor
) -> None:
    schema = client_for(world.admin_a).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    components = schema["components"]["schemas"]

    for path, verbs in {
        "/api/v1/extensions/{id}/": {"get", "patch", "put", "delete"},
        "/api/v1/users/": {"get", "post"},
        "/api/v1/ring-groups/{id}/": {"get", "patch", "put", "delete"},
        "/api/v1/office-hours/": {"get", "post"},
        "/api/v1/holidays/": {"get", "post"},
        "/api/v1/settings/": {"get", "patch"},
        "/api/v1/settings/rotate-callback-secret/": {"post"},
        "/api/v1/webhook-deliveries/{id}/reprocess/": {"post"},
        "/api/v1/audit-log/": {"get"},
        "/api/v1/inbound-rules/{id}/rotate-secret/": {"post"},
    }.items():
        assert verbs <= set(paths[path]), path
    assert "password" not in components["User"]["properties"]
    assert components["UserRequest"]["properties"]["password"]["writeOnly"] is True
    assert components["TenantSettings"]["properties"]["callback_secret"]["readOnly"] is True
    assert "callback_secret" not in components.get("PatchedTenantSettingsRequest", {}).get(
        "properties", {}
    )
    assert "webhook_secret" in components["InboundRuleDetail"]["properties"]
    assert "webhook_secret" not in components["InboundRule"]["properties"]
    settings_get = paths["/api/v1/settings/"]["get"]["responses"]["200"]["content"]
    assert settings_get["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TenantSettings"
    }


@pytest.mark.django_db
def test_an_extension_that_has_a_user_is_not_taken_from_him(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    taken = Extension.objects.get(tenant=world.tenant_a, user=world.user_a)

    refused = post(client, USERS, {"username": "grace", "extension": taken.pk})

    assert refused.status_code == 400
    assert refused.json()["field"] == "extension"
    assert not User.objects.filter(username="grace").exists()
    assert Extension.objects.get(pk=taken.pk).user == world.user_a
