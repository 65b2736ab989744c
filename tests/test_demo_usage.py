"""The demo seeds past traffic, so its usage pages show bars from the start."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from sms.models import Contact, Direction, Message
from sms.usage import Month, usage_rows
from tenants.models import OfficeHours, Tenant, User


@pytest.mark.django_db
def test_the_demo_seeds_usage_once(client_for: Callable[[User | None], Client]) -> None:
    call_command("demo_setup", stdout=io.StringIO())
    count = Message.objects.count()
    call_command("demo_setup", stdout=io.StringIO())

    assert Message.objects.count() == count > 100
    acme = Tenant.objects.get(slug="acme.demo")
    assert acme.monthly_quota == 600
    outbound = Message.objects.for_tenant(acme).filter(direction=Direction.OUT)
    assert outbound.exclude(part_index=0).exists()  # some texts were split
    assert all(m.conversation_id for m in Message.objects.for_tenant(acme))
    first = outbound.order_by("created_at").first().created_at.astimezone(acme.zone)
    assert usage_rows(tenant=acme, month=Month(first.year, first.month))
    # Every past day has traffic: yesterday's month shows bars, even on the 1st.
    yesterday = timezone.now().astimezone(acme.zone) - timedelta(days=1)
    page = client_for(User.objects.get(username="acme-admin")).get(
        f"/tenant/usage/?month={yesterday:%Y-%m}"
    )
    assert page.status_code == 200
    assert "<rect" in page.content.decode()


@pytest.mark.django_db
def test_the_demo_names_contacts_and_keeps_office_hours_for_its_first_tenant(
    client_for: Callable[[User | None], Client],
) -> None:
    call_command("demo_setup", stdout=io.StringIO())
    call_command("demo_setup", stdout=io.StringIO())

    acme = Tenant.objects.get(slug="acme.demo")
    assert Contact.objects.for_tenant(acme).count() == 3
    assert OfficeHours.objects.for_tenant(acme).count() == 5
    other = Tenant.objects.exclude(pk=acme.pk).get()
    assert not OfficeHours.objects.for_tenant(other).exists()
    # The inbox shows the names of the demo traffic's contacts.
    page = client_for(User.objects.get(username="acme-admin")).get("/inbox/")
    assert "Avery Tremblay" in page.content.decode()
