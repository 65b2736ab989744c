"""Status callbacks through a real Celery worker, Redis and the VoIP.ms sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sms.models import CallbackStatus, Message, MessageStatus, SmsConfiguration, Source
from sms.outbound.send import message_queue
from tenants.models import Tenant
from tests.sms.test_outbound_worker import (  # noqa: F401 - fixtures
    _fresh_limits,
    api_url,
    configuration,
    worker_env,
)
from tests.sms.test_status_callbacks import Receiver, receiver, verify  # noqa: F401 - fixture
from tests.worker import celery_worker

SENDER = "+12125550100"
CONTACT = "+13125550199"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_and_posts_each_status_change_signed(
    configuration: SmsConfiguration,  # noqa: F811
    api_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = worker_env(api_url, OUTBOUND_HTTP_ALLOWED_NETWORKS="127.0.0.0/8")
    with celery_worker(tmp_path, queues="outbound,default", extra_env=env) as worker:
        (message,) = message_queue(
            configuration=configuration,
            conversation=None,
            did=SENDER,
            to=CONTACT,
            body="Your parcel is on its way",
            source=Source.API,
            status_callback=receiver.url,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if {"queued", "sending", "sent"} <= {d["status"] for d in receiver.documents()}:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"callbacks not received; worker log:\n{worker.log()[-5000:]}")

    message.refresh_from_db()
    secret = Tenant.objects.get(pk=configuration.tenant_id).callback_secret
    assert message.status == MessageStatus.SENT
    assert sorted(d["status"] for d in receiver.documents()) == ["queued", "sending", "sent"]
    assert {d["id"] for d in receiver.documents()} == {message.pk}
    assert all(verify(secret, headers, body) for _, headers, body in receiver.requests)
    assert set(message.callbacks.values_list("status", flat=True)) == {CallbackStatus.DELIVERED}
    assert Message.objects.filter(pk=message.pk, events__kind="callback").count() == 3
