"""Conversations seen from the inbox: read, reply, retry, hand over, and contacts' opt-outs."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError, Conflict, NotAllowed
from core.tasks import enqueue
from sms.models import (
    Conversation,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    Source,
)
from sms.outbound.attachments import Attachment
from sms.outbound.send import message_queue
from sms.selectors import is_opted_out
from tenants.access import messaging_check
from tenants.models import Extension, RingGroupMember, SmsPermission, Tenant, User
from tenants.services import audit_record


def user_extension(*, user: User, tenant: Tenant) -> Extension | None:
    """Return the user's extension in the tenant, if he has one."""
    extension = getattr(user, "extension", None)
    if extension is None or extension.tenant_id != tenant.pk:
        return None
    return extension


def _check_may_send(*, user: User, tenant: Tenant) -> Extension | None:
    extension = user_extension(user=user, tenant=tenant)
    if user.is_system_admin or user.is_tenant_admin:
        return extension
    if extension is None or extension.sms_permission == SmsPermission.DISABLE:
        raise NotAllowed(
            _("Your extension is not allowed to send SMS; ask your administrator."),
            code="sms_not_allowed",
        )
    return extension


def conversation_mark_read(*, conversation: Conversation) -> None:
    """Mark the conversation and its received messages read."""
    if not conversation.unread_count:
        return
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
        Message.objects.filter(
            conversation=conversation, direction=Direction.IN, read_at__isnull=True
        ).update(read_at=timezone.now())
    conversation.unread_count = 0


def conversation_reply(
    *,
    conversation: Conversation,
    user: User,
    body: str,
    attachments: Sequence[Attachment] = (),
) -> list[Message]:
    """Queue the user's reply to the conversation's contact, from the conversation's DID."""
    tenant = conversation.tenant
    messaging_check(tenant)
    extension = _check_may_send(user=user, tenant=tenant)
    if conversation.configuration is None:
        raise ApplicationError(
            _("This conversation has no SMS/MMS configuration any more; add one for its DID."),
            code="no_configuration",
        )
    if attachments and conversation.configuration.channel != "mms":
        raise ApplicationError(
            "This number's configuration sends SMS only; remove the attachments.",
            code="mms_not_enabled",
            field="attachments",
        )
    return message_queue(
        configuration=conversation.configuration,
        conversation=conversation,
        did=conversation.did,
        to=conversation.remote,
        body=body.strip(),
        attachments=attachments,
        source=Source.PORTAL,
        extension=extension,
    )


@transaction.atomic
def conversation_transfer(
    *, conversation: Conversation, extension: Extension, actor: User | None
) -> Conversation:
    """Hand a ring-group conversation to another enabled member of the group."""
    if conversation.ring_group_id is None:
        raise ApplicationError(
            _("Only conversations of a ring group can be handed over."), code="not_ring_group"
        )
    member = RingGroupMember.objects.for_tenant(conversation.tenant).filter(
        ring_group_id=conversation.ring_group_id, extension=extension, enabled=True
    )
    if not member.exists():
        raise ApplicationError(
            _("Choose an enabled member of the conversation's ring group."), field="extension"
        )
    previous = conversation.extension
    # The handler of later messages is the assigned agent (see _ring_group_handler).
    Conversation.objects.filter(pk=conversation.pk).update(extension=extension)
    conversation.extension = extension
    audit_record(
        actor=actor,
        action="transferred",
        tenant=conversation.tenant,
        obj=conversation,
        detail={
            "from": previous.number if previous else None,
            "to": extension.number,
        },
    )
    return conversation


@transaction.atomic
def message_retry(*, message: Message, actor: User) -> Message:
    """Queue a failed outbound message again; its attempt count is kept."""
    tenant = message.tenant
    messaging_check(tenant)
    _check_may_send(user=actor, tenant=tenant)
    if message.direction != Direction.OUT:
        raise ApplicationError(_("Only outbound messages can be retried."), code="not_outbound")
    if message.source != Source.SYSTEM and is_opted_out(
        tenant=tenant, did=message.did, remote=message.remote
    ):
        raise ApplicationError(
            _("%(remote)s opted out (texted STOP); messages to them are blocked.")
            % {"remote": message.remote},
            code="opted_out",
        )
    updated = Message.objects.filter(pk=message.pk, status=MessageStatus.FAILED).update(
        status=MessageStatus.QUEUED, error_code="", error_message="", next_attempt_at=None
    )
    if not updated:
        raise Conflict(_("Only failed messages can be retried."))
    message.refresh_from_db()
    audit_record(actor=actor, action="retried", tenant=tenant, obj=message)
    enqueue("sms.deliver_message", message.pk)
    return message


@transaction.atomic
def opt_out_delete(*, opt_out: OptOut, actor: User | None) -> None:
    """Opt a contact back in: messages from the DID may be sent to him again."""
    audit_record(
        actor=actor,
        action="opted_in",
        tenant=opt_out.tenant,
        obj=opt_out,
        detail={"did": opt_out.did, "remote": opt_out.remote},
    )
    opt_out.delete()
