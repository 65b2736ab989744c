"""One clock: every page shows times in the tenant's zone (system pages: the user's own) with the
zone's abbreviation, exports write ISO 8601 with the offset, and each user sets his own zone."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone, translation

from core.clock import time_display, time_export
from sms.inbound.process import inbound_message_ingest
from sms.models import Conversation, Message, MessageEvent, SmsConfiguration, Source
from tenants.middleware import MANAGED_TENANT_SESSION_KEY, zone_for_request
from tenants.models import AuditEvent, Tenant, User
from tenants.services import tenant_update, user_profile_update
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from trunks.voipms.webhooks import InboundMessage

ClientFor = Callable[[User | None], Client]

# 14:05 UTC in winter: 9:05 a.m. EST in Toronto, 3:05 p.m. CET in Paris, 11:05 p.m. JST in Tokyo.
WINTER = datetime(2026, 1, 15, 14, 5, 7, tzinfo=UTC)
# 14:05 UTC in summer: 10:05 a.m. EDT in Toronto.
SUMMER = datetime(2026, 7, 15, 14, 5, 7, tzinfo=UTC)
DID, REMOTE = "+12125550101", "+13125550001"

_provider_ids = itertools.count(7_000_000)


def _set_zone(user: User, zone: str) -> User:
    return user_profile_update(user=user, time_zone=zone, language=user.language)


def _request(user: User, tenant: Tenant | None, path: str) -> object:
    request = RequestFactory().get(path)
    request.user = user
    request.tenant = tenant
    return request


@pytest.fixture
def toronto(world: World) -> Tenant:
    return tenant_update(tenant=world.tenant_a, timezone="America/Toronto")


def receive_at(configuration: SmsConfiguration, *, at: datetime, text: str) -> Message:
    """Ingest a message from REMOTE to DID, pinning every time of it (and its story) to `at`."""
    inbound = InboundMessage(
        kind="sms",
        provider_id=next(_provider_ids),
        from_number=REMOTE,
        to_number=DID,
        text=text,
        media_urls=(),
        received_at=at,
        received_at_raw=at.isoformat(),
        event_type="message.received",
        source="webhook",
    )
    result = inbound_message_ingest(
        configuration=configuration, inbound=inbound, source=Source.WEBHOOK
    )
    assert result.message is not None
    pk = result.message.pk
    # The test must not depend on today's date.
    Message.objects.filter(pk=pk).update(created_at=at, received_at=at)
    MessageEvent.objects.filter(message_id=pk).update(at=at)
    return Message.objects.select_related("configuration").get(pk=pk)


def toronto_message(world: World) -> Message:
    """Move tenant A to America/Toronto; return a message user_a's DID received at WINTER."""
    toronto = tenant_update(tenant=world.tenant_a, timezone="America/Toronto")
    configuration = make_configuration(toronto, name="Clock")
    make_rule(toronto, did_range=DID.removeprefix("+"), extension=world.user_a.extension)
    received = receive_at(configuration, at=WINTER, text="What time is it?")
    Conversation.objects.filter(pk=received.conversation_id).update(last_message_at=WINTER)
    return received


@pytest.fixture
def message(world: World, toronto: Tenant) -> Message:
    return toronto_message(world)


# --- which zone ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tenant_users_see_every_page_in_the_tenants_zone(world: World, toronto: Tenant) -> None:
    _set_zone(world.admin_a, "Europe/Paris")  # his own zone does not apply to his tenant's pages
    for user in (world.admin_a, world.user_a):
        for path in ("/tenant/", "/inbox/", "/account/profile/", "/account/api-tokens/", "/"):
            assert str(zone_for_request(_request(user, toronto, path))) == "America/Toronto"


@pytest.mark.django_db
def test_a_system_admin_sees_system_pages_in_his_zone_and_a_managed_tenants_pages_in_its(
    world: World, toronto: Tenant
) -> None:
    admin = world.sysadmin
    assert zone_for_request(_request(admin, None, "/admin/")).key == "UTC"
    _set_zone(admin, "Europe/Paris")
    for path in ("/admin/", "/admin/tenants/auditevent/", "/account/profile/", "/"):
        assert str(zone_for_request(_request(admin, toronto, path))) == "Europe/Paris"
        assert str(zone_for_request(_request(admin, None, path))) == "Europe/Paris"
    for path in ("/tenant/", "/tenant/sms/message/", "/inbox/", "/inbox/c/1/"):
        assert str(zone_for_request(_request(admin, toronto, path))) == "America/Toronto"
    # Not managing a tenant: the tenant pages have no tenant, his own zone stays.
    assert str(zone_for_request(_request(admin, None, "/inbox/"))) == "Europe/Paris"


@pytest.mark.django_db
def test_the_api_and_anonymous_visitors_get_utc(world: World, toronto: Tenant) -> None:
    _set_zone(world.sysadmin, "Europe/Paris")
    assert zone_for_request(_request(world.admin_a, toronto, "/api/v1/messages/")) is None
    assert zone_for_request(_request(world.sysadmin, None, "/api/v1/admin/tenants/")) is None
    request = RequestFactory().get("/login/")
    request.user = type("Anonymous", (), {"is_authenticated": False})()
    assert zone_for_request(request) is None


@pytest.mark.django_db
def test_the_zone_is_active_during_the_request_and_reset_after_it(
    world: World, toronto: Tenant, client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).get("/tenant/")
    assert response.status_code == 200
    assert re.search(r"Times in America/Toronto \((EST|EDT)\)", response.content.decode())
    assert timezone.get_current_timezone_name() == "UTC"


@pytest.mark.django_db
def test_the_header_names_the_zone_on_the_system_site_and_the_managed_tenants_pages(
    world: World, toronto: Tenant, client_for: ClientFor
) -> None:
    _set_zone(world.sysadmin, "Europe/Paris")
    client = client_for(world.sysadmin)
    page = client.get("/admin/").content.decode()
    assert re.search(r"Times in Europe/Paris \((CET|CEST)\)", page)
    session = client.session
    session[MANAGED_TENANT_SESSION_KEY] = toronto.pk
    session.save()
    page = client.get("/tenant/").content.decode()
    assert re.search(r"Times in America/Toronto \((EST|EDT)\)", page)
    page = client.get("/account/profile/").content.decode()
    assert re.search(r"Times in Europe/Paris \((CET|CEST)\)", page)
    _set_zone(world.sysadmin, "")
    assert "Times in UTC<" in client.get("/admin/").content.decode()


# --- what the pages show -------------------------------------------------------------------------


def test_a_time_shows_its_zone_abbreviation_in_winter_and_summer() -> None:
    with timezone.override("America/Toronto"):
        assert time_display(WINTER) == "Jan. 15, 2026, 9:05 a.m. EST"
        assert time_display(SUMMER) == "July 15, 2026, 10:05 a.m. EDT"
    assert time_display(WINTER, timezone.get_fixed_timezone(0)) == "Jan. 15, 2026, 2:05 p.m. +0000"
    with translation.override("fr-ca"), timezone.override("Europe/Paris"):
        assert time_display(WINTER) == "15 janvier 2026, 15\xa0h\xa005 CET"


def test_an_export_time_is_iso_8601_with_its_offset() -> None:
    with timezone.override("America/Toronto"):
        assert time_export(WINTER) == "2026-01-15T09:05:07-05:00"
        assert time_export(SUMMER) == "2026-07-15T10:05:07-04:00"
    assert time_export(WINTER) == "2026-01-15T14:05:07+00:00"
    assert time_export(None) == ""


@pytest.mark.django_db
def test_the_message_list_and_page_show_the_tenants_zone_abbreviation(
    world: World, message: Message, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    listing = client.get("/tenant/sms/message/").content.decode()
    assert "Jan. 15, 2026, 9:05 a.m. EST" in listing
    detail = client.get(f"/tenant/sms/message/{message.pk}/change/").content.decode()
    assert "Jan. 15, 2026, 9:05 a.m. EST" in detail  # created/received fields and the story
    assert "2:05 p.m." not in detail


@pytest.mark.django_db
def test_a_system_page_shows_the_admins_own_zone(
    world: World, message: Message, client_for: ClientFor
) -> None:
    AuditEvent.objects.update(at=WINTER)
    _set_zone(world.sysadmin, "Europe/Paris")
    AuditEvent.objects.filter(action="profile_changed").update(at=WINTER)
    page = client_for(world.sysadmin).get("/admin/tenants/auditevent/").content.decode()
    assert "Jan. 15, 2026, 3:05 p.m. CET" in page
    assert "9:05 a.m. EST" not in page


@pytest.mark.django_db
def test_the_inbox_shows_the_tenants_zone_abbreviation(
    world: World, message: Message, client_for: ClientFor
) -> None:
    _set_zone(world.user_a, "Asia/Tokyo")  # ignored on the tenant's pages
    client = client_for(world.user_a)
    listing = client.get("/inbox/").content.decode()
    assert "Jan. 15, 2026, 9:05 a.m. EST" in listing
    assert 'datetime="2026-01-15T09:05:07-05:00"' in listing
    conversation = client.get(f"/inbox/c/{message.conversation_id}/").content.decode()
    assert "Jan. 15, 2026, 9:05 a.m. EST" in conversation
    data = client.get(f"/inbox/c/{message.conversation_id}/messages.json?after=0").json()
    [bubble] = data["messages"]
    assert bubble["at"] == "2026-01-15T09:05:07-05:00"
    assert bubble["at_display"] == "Jan. 15, 2026, 9:05 a.m. EST"


@pytest.mark.django_db
def test_the_api_tokens_page_shows_the_zone_abbreviation(
    world: World, toronto: Tenant, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    client.post("/account/api-tokens/", {"name": "CRM"})
    world.admin_a.api_tokens.update(created_at=SUMMER)
    assert "July 15, 2026, 10:05 a.m. EDT" in client.get("/account/api-tokens/").content.decode()


# --- exports -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_message_export_writes_iso_times_with_the_tenants_offset(
    world: World, message: Message, client_for: ClientFor
) -> None:
    response = client_for(world.admin_a).get("/tenant/sms/message/export/")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    [row] = rows
    assert row["time"] == "2026-01-15T09:05:07-05:00"
    assert row["received at"] == "2026-01-15T09:05:07-05:00"
    assert row["events"].startswith("2026-01-15T09:05:07-05:00 ")
    assert all(line.split(" ", 1)[0].endswith("-05:00") for line in row["events"].splitlines())


# --- the profile page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_user_sets_his_zone_and_language_and_the_change_is_audited(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    page = client.get("/account/profile/")
    assert page.status_code == 200
    assert '<option value="Europe/Paris">' in page.content.decode()
    response = client.post("/account/profile/", {"time_zone": "Europe/Paris", "language": "fr-ca"})
    assert response.status_code == 302
    world.sysadmin.refresh_from_db()
    assert (world.sysadmin.time_zone, world.sysadmin.language) == ("Europe/Paris", "fr-ca")
    event = AuditEvent.objects.get(action="profile_changed", object_id=str(world.sysadmin.pk))
    assert event.actor == world.sysadmin
    assert event.detail["fields"] == ["language", "time_zone"]
    assert event.detail["time_zone"] == "Europe/Paris"
    # The page now speaks French, in Paris time.
    assert re.search(r"Heures de Europe/Paris", client.get("/admin/").content.decode())
    # Emptying both goes back to UTC and the browser's language.
    client.post("/account/profile/", {"time_zone": "", "language": ""})
    world.sysadmin.refresh_from_db()
    assert (world.sysadmin.time_zone, world.sysadmin.language) == ("", "")


@pytest.mark.django_db
def test_the_profile_refuses_an_unknown_zone_or_language(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.user_a)
    response = client.post("/account/profile/", {"time_zone": "Mars/Olympus", "language": ""})
    assert response.status_code == 200
    assert "Mars/Olympus is not one of the available choices" in response.content.decode()
    response = client.post("/account/profile/", {"time_zone": "", "language": "klingon"})
    assert "klingon is not one of the available choices" in response.content.decode()
    world.user_a.refresh_from_db()
    assert (world.user_a.time_zone, world.user_a.language) == ("", "")
    assert not AuditEvent.objects.filter(action="profile_changed").exists()


@pytest.mark.django_db
def test_the_profile_service_refuses_what_the_form_would(world: World) -> None:
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError) as error:
        user_profile_update(user=world.user_a, time_zone="Mars/Olympus", language="")
    assert error.value.field == "time_zone"
    with pytest.raises(ApplicationError) as error:
        user_profile_update(user=world.user_a, time_zone="", language="de")
    assert error.value.field == "language"


@pytest.mark.django_db
def test_the_profile_page_changes_only_the_signed_in_user(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.user_b)
    client.post(
        "/account/profile/",
        {"time_zone": "Asia/Tokyo", "language": "en", "user": world.user_a.pk},
    )
    world.user_a.refresh_from_db()
    world.user_b.refresh_from_db()
    assert world.user_a.time_zone == ""
    assert world.user_b.time_zone == "Asia/Tokyo"
    event = AuditEvent.objects.get(action="profile_changed")
    assert (event.object_id, event.tenant) == (str(world.user_b.pk), world.tenant_b)


@pytest.mark.django_db
def test_the_profile_page_needs_a_signed_in_user(client_for: ClientFor) -> None:
    response = client_for(None).get("/account/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_tenant_user_is_told_his_tenants_pages_keep_the_tenants_zone(
    world: World, toronto: Tenant, client_for: ClientFor
) -> None:
    page = client_for(world.user_a).get("/account/profile/").content.decode()
    assert "show times in its zone, America/Toronto" in page


@pytest.mark.django_db
def test_the_users_api_shows_the_profile_read_only_and_keeps_utc_times(
    world: World, toronto: Tenant, client_for: ClientFor
) -> None:
    _set_zone(world.user_a, "Asia/Tokyo")
    User.objects.filter(pk=world.user_a.pk).update(date_joined=WINTER)
    client = client_for(world.admin_a)
    url = f"/api/v1/users/{world.user_a.pk}/"
    body = client.get(url).json()
    assert (body["time_zone"], body["language"]) == ("Asia/Tokyo", "")
    # The API speaks UTC, whatever the tenant's zone.
    assert body["date_joined"] == "2026-01-15T14:05:07Z"
    client.patch(url, {"time_zone": "Europe/Paris"}, content_type="application/json")
    world.user_a.refresh_from_db()
    assert world.user_a.time_zone == "Asia/Tokyo"
