"""Status callbacks: each status change of a sent message is POSTed, signed, to a URL the send
named (or the tenant's default), retried with backoff for a day, every try kept on the message."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from sms.models import CallbackStatus, EventKind, Message, MessageEvent, StatusCallback
from sms.outbound.callbacks import status_callback_run
from sms.outbound.deliver import message_deliver
from sms.outbound.send import message_send
from sms.sweep import callbacks_sweep
from tenants.models import AuditEvent, Tenant, User
from tenants.services import tenant_callback_secret_rotate
from tests.factories import World
from tests.sms.test_message_story import _outbound_settings  # noqa: F401 - autouse fixture
from tests.sms.test_outbound import FakeVoipms
from tests.tasks import TaskRecorder

SENDER = "+12125550100"
CONTACT = "+13125550199"
MESSAGES = "/api/v1/messages/"
TASK = "sms.deliver_status_callback"

ClientFor = Callable[[User | None], Client]


class Receiver:
    """What a local HTTP server was sent; answers the queued status codes, then 200."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[int] = []

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.requests]


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """Serve a status callback endpoint on this machine, reachable by the outbound guard."""
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.requests.append((self.path, dict(self.headers), body))
            self.send_response(got.answers.pop(0) if got.answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_port}/status?app=7"
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _recorded(published: TaskRecorder) -> TaskRecorder:
    """Record the tasks published; none reaches a broker."""
    return published


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a callback's signature as the README tells a receiver to."""
    timestamp = headers["X-Seed-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(headers["X-Seed-Signature"], "sha256=" + expected.hexdigest())


def run_callbacks(published: TaskRecorder) -> list[float | None]:
    """Run each published status callback task once, in order, and forget it."""
    ids = published.ids(TASK)
    published.calls[:] = [call for call in published.calls if call[0] != TASK]
    return [status_callback_run(callback_id=pk) for pk in ids]


def send(world: World, capture: Callable[..., Any], **kwargs: Any) -> Message:
    with capture(execute=True):
        (message,) = message_send(
            user=world.admin_a,
            tenant=world.tenant_a,
            to=CONTACT,
            body="Ready",
            did=SENDER,
            **kwargs,
        )
    return message


@pytest.mark.django_db
def test_each_status_change_is_posted_signed_to_the_callback_url(
    world: World,
    client_for: ClientFor,
    receiver: Receiver,
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    client = client_for(world.admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            MESSAGES,
            {"from": SENDER, "to": CONTACT, "body": "Ready", "status_callback": receiver.url},
            content_type="application/json",
        )
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status_callback == receiver.url
    run_callbacks(published)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        FakeVoipms(mocked).answer("sendSMS", {"status": "success", "sms": 5501})
        with django_capture_on_commit_callbacks(execute=True):
            message_deliver(message_id=message.pk)
    run_callbacks(published)

    secret = Tenant.objects.get(pk=world.tenant_a.pk).callback_secret
    assert secret
    assert [d["status"] for d in receiver.documents()] == ["queued", "sending", "sent"]
    for path, headers, body in receiver.requests:
        assert path == "/status?app=7"
        assert headers["Content-Type"] == "application/json"
        assert verify(secret, headers, body)
        assert not verify(secret + "x", headers, body)
    document = receiver.documents()[-1]
    assert set(document) == {"id", "status", "error_code", "error_message", "at"}
    assert (document["id"], document["error_code"]) == (message.pk, None)
    events = client.get(f"{MESSAGES}{message.pk}/").json()["events"]
    tries = [(e["status"], e["code"]) for e in events if e["type"] == "callback"]
    assert tries == [("queued", "http_200"), ("sending", "http_200"), ("sent", "http_200")]
    assert StatusCallback.objects.filter(status=CallbackStatus.DELIVERED).count() == 3


@pytest.mark.django_db
def test_a_failing_endpoint_is_tried_again_with_backoff_and_given_up_after_a_day(
    world: World,
    receiver: Receiver,
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answers = [500]
    message = send(world, django_capture_on_commit_callbacks, status_callback=receiver.url)
    (row,) = StatusCallback.objects.filter(message=message)

    first = status_callback_run(callback_id=row.pk)
    row.refresh_from_db()
    assert first is not None and first > 0
    assert (row.status, row.attempts) == (CallbackStatus.PENDING, 1)
    assert row.next_try_at > timezone.now()
    second = status_callback_run(callback_id=row.pk)
    row.refresh_from_db()
    assert second is None
    assert (row.status, row.attempts) == (CallbackStatus.DELIVERED, 2)
    tries = MessageEvent.objects.filter(message=message, kind=EventKind.CALLBACK).order_by("id")
    assert [(t.code, t.detail.split(":")[0]) for t in tries] == [
        ("http_500", "try 1"),
        ("http_200", "try 2"),
    ]
    assert "next try in" in tries[0].detail

    # A day after the change, a failing endpoint is given up.
    receiver.answers = [503]
    StatusCallback.objects.filter(pk=row.pk).update(
        status=CallbackStatus.PENDING, created_at=timezone.now() - timedelta(hours=24)
    )
    assert status_callback_run(callback_id=row.pk) is None
    row.refresh_from_db()
    assert row.status == CallbackStatus.FAILED
    assert "given up" in MessageEvent.objects.filter(message=message).latest("id").detail


@pytest.mark.django_db
def test_a_callback_is_posted_once_even_when_its_task_runs_again(
    world: World, receiver: Receiver, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    message = send(world, django_capture_on_commit_callbacks, status_callback=receiver.url)
    row = StatusCallback.objects.get(message=message)

    assert status_callback_run(callback_id=row.pk) is None
    assert status_callback_run(callback_id=row.pk) is None

    assert len(receiver.requests) == 1
    assert StatusCallback.objects.get(pk=row.pk).attempts == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/status",
        "http://localhost/status",
        "http://10.1.2.3/status",
        "http://[::1]/status",
        "http://169.254.169.254/latest/meta-data/",
        "ftp://example.com/status",
        "not a url",
    ],
)
def test_a_callback_to_a_private_address_or_not_http_is_refused_at_the_door(
    world: World, client_for: ClientFor, url: str
) -> None:
    response = client_for(world.admin_a).post(
        MESSAGES,
        {"from": SENDER, "to": CONTACT, "body": "Ready", "status_callback": url},
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid", "invalid_status_callback")
    assert "status_callback" in json.dumps(response.json())
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_address_refused_when_posting_fails_the_callback_without_retries(
    world: World, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    message = send(world, django_capture_on_commit_callbacks, status_callback="http://a.test/")
    # As if the name now led to an internal address (the guard checks every connection).
    Message.objects.filter(pk=message.pk).update(status_callback="http://10.0.0.5/status")
    row = StatusCallback.objects.get(message=message)

    assert status_callback_run(callback_id=row.pk) is None
    row.refresh_from_db()
    assert row.status == CallbackStatus.FAILED
    event = MessageEvent.objects.filter(message=message, kind=EventKind.CALLBACK).get()
    assert event.code == "address_refused"


@pytest.mark.django_db
def test_the_tenants_default_url_is_used_when_the_send_names_none(
    world: World,
    receiver: Receiver,
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    Tenant.objects.filter(pk=world.tenant_a.pk).update(status_callback_url=receiver.url)
    world.tenant_a.refresh_from_db()

    message = send(world, django_capture_on_commit_callbacks)
    run_callbacks(published)
    other = message_send(
        user=world.admin_b,
        tenant=world.tenant_b,
        to=CONTACT,
        body="Elsewhere",
        did="+12125550110",
    )[0]

    assert message.status_callback == receiver.url
    assert [d["id"] for d in receiver.documents()] == [message.pk]
    assert other.status_callback == ""
    assert not StatusCallback.objects.filter(message=other).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://localhost/cb", "http://192.168.1.10/cb", "ftp://x.test/"])
def test_a_tenant_default_url_must_be_public_http(world: World, url: str) -> None:
    world.tenant_a.status_callback_url = url

    with pytest.raises(ValidationError) as refused:
        world.tenant_a.full_clean()

    assert "status_callback_url" in refused.value.message_dict


@pytest.mark.django_db
def test_rotating_the_secret_signs_later_callbacks_with_the_new_one(
    world: World,
    receiver: Receiver,
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    send(world, django_capture_on_commit_callbacks, status_callback=receiver.url)
    run_callbacks(published)
    old = Tenant.objects.get(pk=world.tenant_a.pk).callback_secret

    new = tenant_callback_secret_rotate(tenant=world.tenant_a, actor=world.admin_a)
    send(world, django_capture_on_commit_callbacks, status_callback=receiver.url)
    run_callbacks(published)

    (_, first_headers, first_body), (_, second_headers, second_body) = receiver.requests
    assert new != old
    assert verify(old, first_headers, first_body)
    assert verify(new, second_headers, second_body) and not verify(old, second_headers, second_body)
    audit = AuditEvent.objects.filter(action="secret_changed", tenant=world.tenant_a)
    assert audit.filter(detail__field="callback_secret").exists()
    assert not any(new in json.dumps(event.detail) for event in audit)


@pytest.mark.django_db
def test_the_sweeper_enqueues_a_callback_whose_task_was_lost(
    world: World,
    published: TaskRecorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    message = send(world, django_capture_on_commit_callbacks, status_callback="https://a.test/cb")
    row = StatusCallback.objects.get(message=message)
    published.reset_mock()
    assert callbacks_sweep() == 0

    StatusCallback.objects.filter(pk=row.pk).update(
        next_try_at=timezone.now() - timedelta(minutes=11)
    )
    assert callbacks_sweep() == 1

    assert published.ids(TASK) == [row.pk]


@pytest.mark.django_db
def test_a_system_admin_sets_a_tenants_default_url_through_the_api(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.sysadmin)
    url = f"/api/v1/admin/tenants/{world.tenant_a.pk}/"

    refused = client.patch(
        url, {"status_callback_url": "http://localhost/cb"}, content_type="application/json"
    )
    accepted = client.patch(
        url, {"status_callback_url": "https://hooks.example.com/s"}, content_type="application/json"
    )
    tenant_admin = client_for(world.admin_a).patch(
        url, {"status_callback_url": "https://evil.example.com/"}, content_type="application/json"
    )

    assert refused.status_code == 400
    assert "status_callback_url" in refused.json()["errors"]
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status_callback_url"] == "https://hooks.example.com/s"
    assert tenant_admin.status_code == 403
    world.tenant_a.refresh_from_db()
    assert world.tenant_a.status_callback_url == "https://hooks.example.com/s"
