"""Celery entry points of the sms app: thin wrappers that take ids and call one service.

Every task runs the same way: it takes primitive ids, the service loads its row (a row that is
gone is logged and ignored), the tenant is asked once, through `tenants.access`, whether it may
use messaging, and one service does the work. Tasks are published only after the transaction that
wrote their row commits (`core.tasks.enqueue`), and every kind of row has a sweeper
(`sms.sweep`) that publishes again what a lost task left behind.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from sms.configurations import sms_configuration_check_credentials, sms_configuration_verify
from sms.inbound.destinations import destination_delivery_run
from sms.inbound.media import media_fetch, media_retry_note
from sms.inbound.poll import poll_account, poll_accounts_enqueue
from sms.inbound.process import webhook_deliveries_process, webhook_delivery_process
from sms.models import SmsConfiguration
from sms.outbound.callbacks import status_callback_run
from sms.outbound.deliver import message_deliver
from sms.outbound.reconcile import carrier_status_update, message_reconcile
from sms.outbound.sender import outbound_sender, sender_drain, sender_enabled
from sms.provisioning import did_pointing_run
from sms.retention import retention_purge_all
from sms.sweep import sweep_all
from tenants.access import messaging_refusal

logger = logging.getLogger(__name__)


@shared_task(name="sms.verify_configuration", ignore_result=True)
def verify_configuration(configuration_id: int) -> None:
    """Verify a configuration against VoIP.ms; credential errors are never retried."""
    configuration = (
        SmsConfiguration.objects.select_related("tenant", "trunk")
        .filter(pk=configuration_id)
        .first()
    )
    if configuration is None:
        logger.info("verify_configuration: configuration %s is gone", configuration_id)
        return
    refusal = messaging_refusal(configuration.tenant)
    if refusal:
        logger.info("verify_configuration %s: %s", configuration_id, refusal)
        return
    sms_configuration_verify(configuration=configuration)


@shared_task(name="sms.check_credentials", ignore_result=True)
def check_credentials(configuration_id: int) -> None:
    """Check a configuration's VoIP.ms credentials after a save and record the answer."""
    sms_configuration_check_credentials(configuration_id=configuration_id)


@shared_task(name="sms.point_dids", ignore_result=True, acks_late=True)
def point_dids(pointing_id: int) -> None:
    """Point the waiting DIDs of a request at their configuration's webhook with setSMS."""
    did_pointing_run(pointing_id=pointing_id)


@shared_task(name="sms.process_webhook", ignore_result=True, acks_late=True)
def process_webhook(delivery_id: int) -> None:
    """Turn a stored webhook delivery into a routed message (safe to run twice)."""
    webhook_delivery_process(delivery_id=delivery_id)


@shared_task(name="sms.process_webhooks", ignore_result=True, acks_late=True)
def process_webhooks(delivery_ids: list[int]) -> None:
    """Process a batch of stored deliveries, as web processes hand them on (safe to repeat)."""
    webhook_deliveries_process(delivery_ids=delivery_ids)


@shared_task(name="sms.deliver_message", ignore_result=True, acks_late=True)
def deliver_message(message_id: int, slot_reserved: bool = False) -> None:
    """Send one queued outbound message; waits and transient failures come back later.

    With the background sender on, the call is handed over once the message is claimed and
    this task returns at once; the sender records the answer (and any retry) itself.
    """
    if sender_enabled():
        outcome = outbound_sender().submit(message_id=message_id, slot_reserved=slot_reserved)
    else:
        outcome = message_deliver(message_id=message_id, slot_reserved=slot_reserved)
    if outcome is not None and outcome.retry_in is not None:
        deliver_message.apply_async(
            (message_id,), {"slot_reserved": outcome.slot_reserved}, countdown=outcome.retry_in
        )


@shared_task(name="sms.fetch_media", ignore_result=True, acks_late=True)
def fetch_media(media_id: int) -> None:
    """Download one MMS file and keep a copy; links that 404 for a while are tried again."""
    retry_in = media_fetch(media_id=media_id)
    if retry_in is not None:
        media_retry_note(media_id=media_id, retry_in=retry_in)
        fetch_media.apply_async((media_id,), countdown=retry_in)


@shared_task(name="sms.deliver_destination", ignore_result=True, acks_late=True)
def deliver_destination(destination_id: int) -> None:
    """Hand a received message to its e-mail or HTTP destination once; retries come back.

    The address is read from the rule or extension, so no URL (which may hold a token)
    travels in task arguments.
    """
    retry_in = destination_delivery_run(destination_id=destination_id)
    if retry_in is not None:
        deliver_destination.apply_async((destination_id,), countdown=retry_in)


@shared_task(name="sms.deliver_status_callback", ignore_result=True, acks_late=True)
def deliver_status_callback(callback_id: int) -> None:
    """POST one status change of a sent message to its callback URL; retries come back.

    The URL is read from the message, so no URL (which may hold a token) travels in task
    arguments.
    """
    retry_in = status_callback_run(callback_id=callback_id)
    if retry_in is not None:
        deliver_status_callback.apply_async((callback_id,), countdown=retry_in)


@shared_task(name="sms.poll_voipms_accounts", ignore_result=True)
def poll_voipms_accounts() -> None:
    """Enqueue one poll per VoIP.ms account among enabled configurations."""
    poll_accounts_enqueue()


@shared_task(name="sms.poll_voipms_account", ignore_result=True, acks_late=True)
def poll_voipms_account(configuration_id: int) -> None:
    """Backfill received messages a webhook may have missed, for one configuration's account."""
    poll_account(configuration_id=configuration_id)


@shared_task(name="sms.reconcile_message", ignore_result=True, acks_late=True)
def reconcile_message(message_id: int) -> None:
    """Settle a message whose send outcome is unknown, by VoIP.ms's history."""
    message_reconcile(message_id=message_id)


@shared_task(name="sms.outbox_sweep", ignore_result=True)
def outbox_sweep() -> None:
    """Publish again what lost tasks left behind, and settle stuck sends (run by beat)."""
    sweep_all()


@shared_task(name="sms.carrier_status", ignore_result=True)
def carrier_status() -> None:
    """Mark recent sends delivered or failed from VoIP.ms's carrier status (run by beat)."""
    carrier_status_update()


@shared_task(name="sms.retention_purge", ignore_result=True)
def retention_purge() -> None:
    """Delete what each tenant keeps no longer, in small batches (run nightly by beat)."""
    retention_purge_all()


@worker_ready.connect
def _start_the_sender(**kwargs: object) -> None:
    """Start the background sender's threads before the first send rather than during it."""
    if sender_enabled():
        outbound_sender()


@worker_shutdown.connect
def _wait_for_sends_in_flight(**kwargs: object) -> None:
    """On a warm shutdown, let the background sender record the calls it has in flight."""
    if not sender_drain(settings.OUTBOUND_SENDER_DRAIN_SECONDS):
        logger.warning("stopped with VoIP.ms sends in flight; the sweeper settles them")
