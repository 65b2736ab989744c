"""Scheduled sends (`send_at`), cancelling before a message is sent, and saved reply templates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from sms.models import Message, MessageStatus, ReplyTemplate
from sms.sweep import outbox_sweep, scheduled_release
from sms.templates_service import reply_template_save
from tenants.models import User
from tests.factories import World
from tests.tasks import TaskRecorder

SENDER = "+12125550100"
CONTACT = "+13125550199"
MESSAGES = "/api/v1/messages/"
COMPOSE = "/inbox/compose/"
TEMPLATES = "/tenant/sms/replytemplate/"
DELIVER = "sms.deliver_message"

ClientFor = Callable[[User | None], Client]


@pytest.fixture
def schedule(
    world: World,
    client_for: ClientFor,
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[..., Any]:
    """POST a send as tenant A's admin; return the response."""

    def run(body: str = "Happy birthday", **fields: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client_for(world.admin_a).post(
                MESSAGES,
                {"from": SENDER, "to": CONTACT, "body": body, **fields},
                content_type="application/json",
            )

    return run


def later(**delta: float) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


@pytest.mark.django_db
def test_a_send_at_in_the_future_stores_the_message_scheduled_and_sends_nothing(
    schedule: Callable[..., Any], published: TaskRecorder
) -> None:
    response = schedule(send_at=later(hours=2))

    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["status"] == "scheduled"
    assert answer["send_at"] is not None
    assert [e["status"] for e in answer["events"]] == ["scheduled"]
    assert published.ids(DELIVER) == []
    assert outbox_sweep() == 0


@pytest.mark.django_db
def test_the_sweeper_releases_a_scheduled_message_when_it_is_due(
    schedule: Callable[..., Any],
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    message_id = schedule(send_at=later(hours=2)).json()["id"]
    assert scheduled_release() == 0
    assert Message.objects.get(pk=message_id).status == MessageStatus.SCHEDULED

    Message.objects.filter(pk=message_id).update(send_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduled_release() == 1

    message = Message.objects.get(pk=message_id)
    assert message.status == MessageStatus.QUEUED
    assert published.ids(DELIVER) == [message_id]
    assert list(message.events.values_list("status", flat=True)) == ["scheduled", "queued"]


@pytest.mark.django_db
def test_a_scheduled_long_text_wakes_only_its_first_part(
    schedule: Callable[..., Any],
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    response = schedule(body="Long news. " * 30, send_at=later(minutes=5))
    parts = response.json()["parts"]
    assert len(parts) > 1
    Message.objects.filter(pk__in=parts).update(send_at=timezone.now() - timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert scheduled_release() == len(parts)

    assert published.ids(DELIVER) == [parts[0]]
    assert set(Message.objects.filter(pk__in=parts).values_list("status", flat=True)) == {"queued"}


@pytest.mark.django_db
def test_a_past_send_at_sends_now_and_one_beyond_a_year_is_refused(
    schedule: Callable[..., Any], published: TaskRecorder
) -> None:
    now = schedule(send_at=later(minutes=-5))
    far = schedule(send_at=later(days=400))

    assert now.status_code == 202 and now.json()["status"] == "queued"
    assert published.ids(DELIVER) == [now.json()["id"]]
    assert far.status_code == 400
    assert far.json()["code"] == "invalid_send_at"
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_scheduled_message_is_cancelled_with_every_part(
    world: World, schedule: Callable[..., Any], client_for: ClientFor
) -> None:
    parts = schedule(body="Long news. " * 30, send_at=later(hours=1)).json()["parts"]
    client = client_for(world.admin_a)

    response = client.post(f"{MESSAGES}{parts[0]}/cancel/")
    again = client.post(f"{MESSAGES}{parts[0]}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["events"][-1]["status"] == "cancelled"
    assert set(Message.objects.filter(pk__in=parts).values_list("status", flat=True)) == {
        "cancelled"
    }
    assert again.status_code == 409
    assert again.json()["code"] == "not_cancellable"
    Message.objects.filter(pk__in=parts).update(send_at=timezone.now() - timedelta(hours=1))
    assert scheduled_release() == 0


@pytest.mark.django_db
def test_a_sent_message_cannot_be_cancelled(
    world: World, schedule: Callable[..., Any], client_for: ClientFor
) -> None:
    message_id = schedule().json()["id"]
    Message.objects.filter(pk=message_id).update(status=MessageStatus.SENT)

    response = client_for(world.admin_a).post(f"{MESSAGES}{message_id}/cancel/")

    assert response.status_code == 409
    assert "sent" in response.json()["detail"]
    assert Message.objects.get(pk=message_id).status == MessageStatus.SENT


@pytest.mark.django_db
def test_another_tenant_or_a_user_who_cannot_see_it_cannot_cancel(
    world: World, schedule: Callable[..., Any], client_for: ClientFor
) -> None:
    message_id = schedule(send_at=later(hours=1)).json()["id"]

    for user in (world.admin_b, world.user_a, world.user_b):
        response = client_for(user).post(f"{MESSAGES}{message_id}/cancel/")
        assert response.status_code in (403, 404), (user, response.content)

    assert Message.objects.get(pk=message_id).status == MessageStatus.SCHEDULED


# --- reply templates --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_compose_box_offers_the_tenants_templates_only(
    world: World, client_for: ClientFor
) -> None:
    reply_template_save(tenant=world.tenant_a, actor=None, name="Hours", body="Open 9 to 5.")
    reply_template_save(tenant=world.tenant_b, actor=None, name="Secret B", body="B's own text")

    page = client_for(world.admin_a).get(COMPOSE).content.decode()

    assert 'data-testid="reply-templates"' in page
    assert 'data-body="Open 9 to 5."' in page
    assert "Secret B" not in page and "B&#x27;s own text" not in page
    assert "<script>" not in page


@pytest.mark.django_db
def test_a_tenant_admin_saves_templates_with_unique_names(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    created = client.post(f"{TEMPLATES}add/", {"name": "Thanks", "body": "Thank you!"})
    duplicate = client.post(f"{TEMPLATES}add/", {"name": "Thanks", "body": "Again"})
    elsewhere = reply_template_save(tenant=world.tenant_b, actor=None, name="Thanks", body="B")

    assert created.status_code == 302
    assert duplicate.status_code == 200
    assert "A template with this name exists already." in duplicate.content.decode()
    assert ReplyTemplate.objects.for_tenant(world.tenant_a).filter(name="Thanks").count() == 1
    template = ReplyTemplate.objects.for_tenant(world.tenant_a).get(name="Thanks")
    assert client_for(world.admin_b).get(f"{TEMPLATES}{template.pk}/change/").status_code in (
        302,
        404,
    )
    assert client.get(f"{TEMPLATES}{elsewhere.pk}/change/").status_code in (302, 404)


@pytest.mark.django_db
def test_reply_templates_through_the_api_stay_in_their_tenant(
    world: World, client_for: ClientFor
) -> None:
    url = "/api/v1/reply-templates/"
    admin = client_for(world.admin_a)

    created = admin.post(url, {"name": "Late", "body": "Running late."}, "application/json")
    duplicate = admin.post(url, {"name": "Late", "body": "Again"}, "application/json")
    by_user = client_for(world.user_a).post(url, {"name": "Mine", "body": "x"}, "application/json")
    other = reply_template_save(tenant=world.tenant_b, actor=None, name="B only", body="B")
    read_by_user = client_for(world.user_a).get(url)
    pk = created.json()["id"]

    assert created.status_code == 201, created.content
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "name_taken"
    assert by_user.status_code == 403
    assert [t["name"] for t in read_by_user.json()["results"]] == ["Late"]
    assert client_for(world.admin_b).get(f"{url}{pk}/").status_code == 404
    assert client_for(world.admin_b).delete(f"{url}{pk}/").status_code == 404
    assert admin.get(f"{url}{other.pk}/").status_code == 404
    assert (
        admin.patch(f"{url}{pk}/", {"body": "Ten minutes late."}, "application/json").json()["body"]
        == "Ten minutes late."
    )
    assert admin.delete(f"{url}{pk}/").status_code == 204
    assert not ReplyTemplate.objects.filter(pk=pk).exists()
