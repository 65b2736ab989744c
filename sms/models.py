"""SMS/MMS configurations, webhook deliveries and messages."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from core.clock import time_display
from core.crypto import EncryptedTextField
from tenants.models import TenantOwned
from trunks.numbers import MAX_DID_LENGTH, MAX_SENDER_LENGTH


def webhook_token_digest(token: str) -> str:
    """Return the SHA-256 digest under which a webhook token is looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


class NumberFormat(models.TextChoices):
    NANPA = "nanpa", _("NANPA (3322496213)")
    E164 = "e164", _("E.164 (+13322496213)")


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    MMS = "mms", _("SMS and MMS")


class LongMessagePolicy(models.TextChoices):
    SPLIT = "split", _("Split into several SMS")
    MMS = "mms", _("Send as one MMS")


class VerificationStatus(models.TextChoices):
    NEVER = "", _("Never verified")
    RUNNING = "running", _("Verifying…")
    OK = "ok", _("OK")
    WARNING = "warning", _("OK, with warnings")
    FAILED = "failed", _("Failed")


class CredentialsStatus(models.TextChoices):
    UNKNOWN = "", _("Not checked")
    CHECKING = "checking", _("Checking…")
    OK = "ok", _("Verified")
    FAILED = "failed", _("Rejected by VoIP.ms")
    UNREACHABLE = "unknown", _("Could not be checked")


# One text for the three conditions of an outbound rule: an empty one matches any destination,
# but a rule must set at least one (sms.outbound.rules.outbound_rule_check).
_CONDITION_HELP = _(
    "e.g. {example}. Empty: this condition matches any; a rule needs at least one condition."
)


class SmsConfiguration(TenantOwned):
    """A tenant's VoIP.ms account on a trunk, with the webhook URL VoIP.ms posts messages to."""

    name = models.CharField(max_length=100)
    trunk = models.ForeignKey(
        "trunks.Trunk", on_delete=models.PROTECT, related_name="sms_configurations"
    )
    username = models.EmailField(
        _("VoIP.ms username"), help_text=_("The e-mail address you sign in to VoIP.ms with.")
    )
    api_password = EncryptedTextField(
        _("VoIP.ms API password"),
        help_text=_(
            "Set at VoIP.ms under Main Menu > SOAP and REST/JSON API (not the SIP password)."
        ),
    )
    number_format = models.CharField(
        max_length=5,
        choices=NumberFormat.choices,
        default=NumberFormat.NANPA,
        help_text=_(
            "Choose the same format on each DID at VoIP.ms: NANPA 3322496213, E.164 +13322496213."
        ),
    )
    channel = models.CharField(
        _("SMS/MMS"), max_length=3, choices=Channel.choices, default=Channel.SMS
    )
    long_message_policy = models.CharField(
        _("long messages"),
        max_length=5,
        choices=LongMessagePolicy.choices,
        default=LongMessagePolicy.SPLIT,
        help_text=_("VoIP.ms takes at most 160 bytes per SMS."),
    )
    prepend_plus = models.BooleanField(
        _('prepend "+" to outbound recipient numbers'), default=False
    )
    daily_send_limit = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text=_("VoIP.ms allows 100 API sends a day unless its support raised the limit."),
    )
    enabled = models.BooleanField(_("enable"), default=True)
    poll_enabled = models.BooleanField(
        _("poll VoIP.ms for missed messages"),
        default=True,
        help_text=_("Every few minutes, fetch received messages a webhook may have missed."),
    )
    webhook_token_digest = models.CharField(max_length=64, unique=True, editable=False)
    webhook_token = EncryptedTextField(editable=False)
    last_webhook_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    stop_reply = models.CharField(
        _("opt-out confirmation"),
        max_length=160,
        blank=True,
        default="You are unsubscribed and will get no more messages. Reply START to resubscribe.",
        help_text=_("Sent once when a contact texts STOP; empty sends nothing."),
    )
    help_reply = models.CharField(
        _("HELP reply"),
        max_length=160,
        blank=True,
        default="Reply STOP to unsubscribe.",
        help_text=_("Sent when a contact texts HELP; empty sends nothing."),
    )
    verification_status = models.CharField(
        max_length=10, choices=VerificationStatus.choices, blank=True, editable=False
    )
    verification_result = models.JSONField(default=dict, blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The check every save of the credentials starts in the background (sms.check_credentials).
    credentials_status = models.CharField(
        max_length=8, choices=CredentialsStatus.choices, blank=True, editable=False
    )
    credentials_error = models.CharField(max_length=500, blank=True, editable=False)
    credentials_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("SMS/MMS configuration")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="sms_configuration_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def account_dids(self) -> frozenset[str]:
        """Return the pool DIDs (E.164) the last verification found on this VoIP.ms account."""
        rows = (self.verification_result or {}).get("dids") or []
        return frozenset(str(row["did"]) for row in rows if isinstance(row, dict) and "did" in row)

    @property
    def webhook_url(self) -> str:
        """Return the URL to paste into VoIP.ms for this configuration."""
        return f"{settings.PUBLIC_BASE_URL}/hooks/voipms/{self.webhook_token}/"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    DUPLICATE = "duplicate", _("Duplicate")
    IGNORED = "ignored", _("Ignored")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")


class WebhookDelivery(TenantOwned):
    """One request that reached a configuration's webhook URL, stored before it is answered."""

    # Written for every webhook, so the table carries no index or constraint it can do without:
    # the tenant is the configuration's (the configuration's constraint guards both), and the
    # (tenant, received_at) index serves every lookup by tenant.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    configuration = models.ForeignKey(
        SmsConfiguration, on_delete=models.CASCADE, related_name="deliveries"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=8)
    body = models.BinaryField(blank=True)
    query = models.TextField(blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED
    )
    reason = models.CharField(max_length=500, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweeper tries a failed delivery again; null once it has had its last try.
    next_try_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-received_at"], name="delivery_tenant_time"),
            models.Index(
                fields=["next_try_at"],
                condition=models.Q(status="failed"),
                name="delivery_failed_retry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {time_display(self.received_at)} {self.status}"

    @property
    def body_text(self) -> str:
        """Return the body as text for display."""
        return bytes(self.body).decode("utf-8", errors="replace")


class Direction(models.TextChoices):
    IN = "in", _("Inbound")
    OUT = "out", _("Outbound")


class Kind(models.TextChoices):
    SMS = "sms", _("SMS")
    MMS = "mms", _("MMS")


class MessageStatus(models.TextChoices):
    # outbound
    SCHEDULED = "scheduled", _("Scheduled")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Unknown")
    BLOCKED = "blocked", _("Blocked")
    CANCELLED = "cancelled", _("Cancelled")
    # inbound
    RECEIVED = "received", _("Received")
    ROUTED = "routed", _("Routed")
    UNROUTED = "unrouted", _("Unrouted")
    IGNORED = "ignored", _("Ignored")


class Source(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    CALLBACK = "callback", _("URL callback")
    POLL = "poll", _("Recovered by poll")
    PORTAL = "portal", _("Portal")
    API = "api", _("API")
    SYSTEM = "system", _("Automatic reply")


class Conversation(TenantOwned):
    """The messages between one of the tenant's DIDs and one outside number."""

    configuration = models.ForeignKey(
        SmsConfiguration, null=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    did = models.CharField(max_length=MAX_DID_LENGTH)
    remote = models.CharField(max_length=MAX_SENDER_LENGTH)
    extension = models.ForeignKey(
        "tenants.Extension", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ring_group = models.ForeignKey(
        "tenants.RingGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_message_text = models.CharField(max_length=200, blank=True)
    unread_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_message_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "did", "remote"], name="conversation_pair")
        ]

    def __str__(self) -> str:
        return f"{self.remote} ↔ {self.did}"


class Message(TenantOwned):
    """One SMS or MMS, in or out; an outbound row is the outbox entry its delivery claims."""

    configuration = models.ForeignKey(
        SmsConfiguration, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=3, choices=Kind.choices, default=Kind.SMS)
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEBHOOK)
    did = models.CharField(max_length=MAX_DID_LENGTH)
    remote = models.CharField(max_length=MAX_SENDER_LENGTH)
    body = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    segments = models.PositiveSmallIntegerField(default=1)
    provider_account = models.CharField(max_length=254, blank=True)
    provider_id = models.BigIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    extension = models.ForeignKey(
        "tenants.Extension", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule_name = models.CharField(max_length=100, blank=True)
    routed_to = models.CharField(max_length=200, blank=True)
    # Where an inbound message went, structured: the rule's action, and the id and name of the
    # extension, ring group or (for other actions) the inbound rule.
    route_type = models.CharField(max_length=12, blank=True)
    route_id = models.PositiveIntegerField(null=True, blank=True)
    route_name = models.CharField(max_length=200, blank=True)
    status_callback = models.TextField(
        blank=True, help_text=_("The URL each status change of this sent message is POSTed to.")
    )
    send_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a scheduled message is due to be sent.")
    )
    delivery = models.ForeignKey(
        WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    route_plan = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The routes to try in order: configuration, sender DID and destination."),
    )
    route_index = models.PositiveSmallIntegerField(default=0)
    resend_count = models.PositiveSmallIntegerField(default=0)
    carrier_status = models.CharField(max_length=200, blank=True)
    part_group = models.UUIDField(null=True, blank=True, help_text=_("Parts of one split text."))
    part_index = models.PositiveSmallIntegerField(default=0)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    received_at = models.DateTimeField(null=True, blank=True)
    received_at_note = models.CharField(
        _("note on the time received"),
        max_length=200,
        blank=True,
        help_text=_("Why the arrival time stands in for the time VoIP.ms gave."),
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="message_tenant_time"),
            models.Index(fields=["conversation", "created_at"], name="message_conversation"),
            models.Index(fields=["status", "created_at"], name="message_status_time"),
            models.Index(
                fields=["send_at"],
                condition=models.Q(status="scheduled"),
                name="message_scheduled_due",
            ),
        ]
        constraints = [
            # VoIP.ms ids are unique per account and kind only (SMS and MMS counters differ).
            models.UniqueConstraint(
                fields=["provider_account", "kind", "provider_id"],
                condition=models.Q(direction="in"),
                name="inbound_message_once",
            )
        ]

    def __str__(self) -> str:
        arrow = "←" if self.direction == Direction.IN else "→"
        return f"{self.did} {arrow} {self.remote}: {self.body[:30]}"


class MediaStatus(models.TextChoices):
    PENDING = "pending", _("Fetching")
    STORED = "stored", _("Stored")
    FAILED = "failed", _("Failed")


class MessageMedia(TenantOwned):
    """A file of an MMS: the provider's URL, and our copy once fetched."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="media")
    # Text, not a bounded URLField: a link VoIP.ms sends is kept whole, however long.
    url = models.TextField()
    status = models.CharField(
        max_length=10, choices=MediaStatus.choices, default=MediaStatus.PENDING
    )
    file = models.FileField(upload_to="mms/%Y/%m/", blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    # When the next download try is due; long past while still pending, its task was lost.
    next_try_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = _("message media")
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_try_at"],
                condition=models.Q(status="pending"),
                name="media_pending_next_try",
            )
        ]

    def __str__(self) -> str:
        return self.url


class OptOut(TenantOwned):
    """A contact who texted STOP to one of the tenant's DIDs: nothing more is sent to him."""

    did = models.CharField(max_length=MAX_DID_LENGTH)
    remote = models.CharField(max_length=MAX_SENDER_LENGTH)
    keyword = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "did", "remote"], name="opt_out_pair")
        ]

    def __str__(self) -> str:
        return f"{self.remote} → {self.did}"


class Contact(TenantOwned):
    """A person or business the tenant texts with: a name and notes for an outside number."""

    name = models.CharField(max_length=100)
    number = models.CharField(
        max_length=MAX_SENDER_LENGTH, help_text=_("E.164 (+1 and 10 digits), or a short code.")
    )
    notes = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="contact_number_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"


class Action(models.TextChoices):
    EXTENSION = "extension", _("Extension inbox")
    RING_GROUP = "ring_group", _("Ring group")
    FORWARD = "forward", _("Forward by SMS to a number")
    EMAIL = "email", _("E-mail")
    HTTP = "http", _("HTTP POST to a URL")
    AUTO_REPLY = "auto_reply", _("Auto-reply")
    DROP = "drop", _("Drop")


class InboundRule(TenantOwned):
    """Where a received message goes, by DID, sender and time, as PortSIP routes calls."""

    name = models.CharField(max_length=100)
    trunk = models.ForeignKey("trunks.Trunk", on_delete=models.PROTECT, related_name="+")
    did_range = models.CharField(
        _("DID or DID range"),
        max_length=40,
        help_text=_("One number or a range a-b inside the tenant's pool on the trunk."),
    )
    did_start = models.BigIntegerField(editable=False)
    did_end = models.BigIntegerField(editable=False)
    caller_mask = models.CharField(
        _("caller number mask"),
        max_length=500,
        blank=True,
        help_text=_("Optional: numbers, ranges 100-200 or wildcards 0038****** joined with ';'."),
    )
    priority = models.PositiveIntegerField(default=100, help_text=_("Lower wins among equals."))
    enabled = models.BooleanField(default=True)
    use_custom_hours = models.BooleanField(_("use this rule's own office hours"), default=False)
    custom_hours = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            'Own weekly hours: [{"weekday": 0, "start": "09:00", "end": "17:00"}, …]; Monday is 0.'
        ),
    )
    webhook_secret = EncryptedTextField(
        blank=True, editable=False, help_text=_("Signs HTTP POST destinations (HMAC-SHA256).")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # One destination for each time period (see sms.selectors.time_period): office hours,
    # outside office hours, holidays.
    office_action = models.CharField(
        _("Office hours: action"), max_length=12, choices=Action.choices, default=Action.EXTENSION
    )
    office_extension = models.ForeignKey(
        "tenants.Extension",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("Office hours: extension"),
    )
    office_ring_group = models.ForeignKey(
        "tenants.RingGroup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("Office hours: ring group"),
    )
    office_target = models.CharField(
        _("Office hours: number, e-mail, URL or reply text"), max_length=500, blank=True
    )
    after_hours_action = models.CharField(
        _("Outside office hours: action"),
        max_length=12,
        choices=Action.choices,
        default=Action.EXTENSION,
    )
    after_hours_extension = models.ForeignKey(
        "tenants.Extension",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("Outside office hours: extension"),
    )
    after_hours_ring_group = models.ForeignKey(
        "tenants.RingGroup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("Outside office hours: ring group"),
    )
    after_hours_target = models.CharField(
        _("Outside office hours: number, e-mail, URL or reply text"), max_length=500, blank=True
    )
    holiday_action = models.CharField(
        _("Holidays: action"), max_length=12, choices=Action.choices, default=Action.EXTENSION
    )
    holiday_extension = models.ForeignKey(
        "tenants.Extension",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("Holidays: extension"),
    )
    holiday_ring_group = models.ForeignKey(
        "tenants.RingGroup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("Holidays: ring group"),
    )
    holiday_target = models.CharField(
        _("Holidays: number, e-mail, URL or reply text"), max_length=500, blank=True
    )

    class Meta:
        ordering = ["priority", "name"]
        indexes = [models.Index(fields=["tenant", "trunk", "did_start"], name="rule_lookup")]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="inbound_rule_name")]

    def __str__(self) -> str:
        return self.name


class DestinationAttempt(TenantOwned):
    """One try to hand a received message to an e-mail address or an HTTP endpoint."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="destination_attempts"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    target = models.CharField(max_length=500)
    attempt = models.PositiveSmallIntegerField(default=1)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.action} {self.target} #{self.attempt}"


class DestinationStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class DestinationDelivery(TenantOwned):
    """A received message to hand to an e-mail address or an HTTP endpoint: one side effect.

    Written in the transaction that routes the message, so a lost task loses nothing: the
    sweeper enqueues again a pending row whose try is long overdue. The address is read from the
    rule or the extension when it is tried; every try is a DestinationAttempt.
    """

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="destination_deliveries"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    rule = models.ForeignKey(
        "InboundRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    period = models.CharField(max_length=12, blank=True)
    extension = models.ForeignKey(
        "tenants.Extension", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=DestinationStatus.choices, default=DestinationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_try_at"],
                condition=models.Q(status="pending"),
                name="destination_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} of message {self.message_id}: {self.status}"


class DeliveryAttempt(TenantOwned):
    """One call to VoIP.ms for an outbound message, with its outcome."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=20)
    code = models.CharField(max_length=50, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{time_display(self.at)} {self.outcome} {self.code}"


class EventKind(models.TextChoices):
    STATUS = "status", _("Status change")
    CALLBACK = "callback", _("Status callback")


class MessageEvent(TenantOwned):
    """A status change of a sent message, or one try to POST a status callback."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=10, choices=EventKind.choices, default=EventKind.STATUS)
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    code = models.CharField(max_length=50, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{time_display(self.at)} {self.kind} {self.status} {self.code}"


class CallbackStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class StatusCallback(TenantOwned):
    """One status change of a message to POST to its status callback URL: one side effect.

    Written with the status change, so a lost task loses nothing: the sweeper enqueues again a
    pending row whose try is long overdue. The body is fixed when the status changes; the URL
    is the message's, the secret the tenant's when it is tried. Every try is a MessageEvent.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="callbacks")
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=CallbackStatus.choices, default=CallbackStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_try_at"],
                condition=models.Q(status="pending"),
                name="status_callback_pending",
            )
        ]

    def __str__(self) -> str:
        return f"callback of message {self.message_id}: {self.status}"


class ReplyTemplate(TenantOwned):
    """A saved text a tenant's users can start a message from."""

    name = models.CharField(max_length=100)
    body = models.TextField(max_length=1600)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="reply_template_name")
        ]

    def __str__(self) -> str:
        return self.name


class SmsCallerId(TenantOwned):
    """A DID an extension may send SMS from."""

    extension = models.ForeignKey(
        "tenants.Extension", on_delete=models.CASCADE, related_name="sms_caller_ids"
    )
    trunk = models.ForeignKey("trunks.Trunk", on_delete=models.PROTECT, related_name="+")
    did = models.CharField(_("DID"), max_length=20, help_text=_("A number of the tenant's pool."))
    description = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = _("SMS caller ID")
        ordering = ["extension__number", "did"]
        constraints = [
            models.UniqueConstraint(fields=["extension", "did"], name="sms_caller_id_once")
        ]

    def __str__(self) -> str:
        return f"{self.extension.number}: {self.did}"


class RoutingStrategy(models.TextChoices):
    PRIORITIZED = "prioritized", _("Prioritized")
    RANDOM = "random", _("Random")


class HoursMode(models.TextChoices):
    ALWAYS = "always", _("Always")
    OFFICE = "office", _("During office hours")
    AFTER_HOURS = "after_hours", _("Outside office hours")


class OutboundRule(TenantOwned):
    """Which trunks send a message, by destination and sender, as PortSIP routes calls."""

    name = models.CharField(max_length=100)
    priority = models.PositiveIntegerField(default=100, help_text=_("Lower wins."))
    strategy = models.CharField(
        _("routing strategy"),
        max_length=12,
        choices=RoutingStrategy.choices,
        default=RoutingStrategy.PRIORITIZED,
    )
    prefixes = models.CharField(
        _("destination prefixes"),
        max_length=200,
        blank=True,
        help_text=format_lazy(_CONDITION_HELP, example="1;212"),
    )
    lengths = models.CharField(
        _("destination lengths"),
        max_length=100,
        blank=True,
        help_text=format_lazy(_CONDITION_HELP, example="10;11"),
    )
    from_extensions = models.CharField(
        _("from extensions"),
        max_length=200,
        blank=True,
        help_text=format_lazy(_CONDITION_HELP, example="100-200;300"),
    )
    hours = models.CharField(max_length=12, choices=HoursMode.choices, default=HoursMode.ALWAYS)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="outbound_rule_name")
        ]

    def __str__(self) -> str:
        return self.name


class OutboundRoute(TenantOwned):
    """One of up to six trunks an outbound rule tries, in order."""

    rule = models.ForeignKey(OutboundRule, on_delete=models.CASCADE, related_name="routes")
    position = models.PositiveSmallIntegerField(default=1)
    trunk = models.ForeignKey("trunks.Trunk", on_delete=models.PROTECT, related_name="+")
    strip_digits = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(9)], help_text=_("Digits removed from the front.")
    )
    prepend = models.CharField(max_length=10, blank=True, help_text=_("Digits added to the front."))
    caller_id = models.CharField(
        _("outbound caller ID"),
        max_length=20,
        blank=True,
        help_text=_("A DID of this trunk's pool; empty sends from the sender's own DID."),
    )
    configuration = models.ForeignKey(
        SmsConfiguration,
        verbose_name="SMS/MMS configuration",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_(
            "Needed only when several configurations share this trunk: the one to send "
            "through. Empty: the one whose VoIP.ms account owns the sending DID."
        ),
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.rule} #{self.position}: {self.trunk}"


class IdempotencyRecord(TenantOwned):
    """The answer given to an API request with an Idempotency-Key, kept for 24 hours."""

    user = models.ForeignKey("tenants.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "key"], name="idempotency_key_once")
        ]

    def __str__(self) -> str:
        return self.key


class DidPointingStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    WAITING = "waiting", _("Waiting (one write per DID per minute)")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class DidPointing(TenantOwned):
    """A request to point DIDs of a configuration's VoIP.ms account at its webhook URL."""

    configuration = models.ForeignKey(
        SmsConfiguration, on_delete=models.CASCADE, related_name="did_pointings"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=DidPointingStatus.choices, default=DidPointingStatus.QUEUED
    )
    runs = models.PositiveSmallIntegerField(default=0)
    # When the next run is due: the sweeper publishes again a request whose task was lost.
    next_run_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["configuration", "created_at"]),
            models.Index(fields=["status", "next_run_at"]),
        ]

    def __str__(self) -> str:
        return f"Pointing DIDs at {self.configuration_id} ({self.status})"


class DidPointingResult(TenantOwned):
    """What pointing one DID did: pending (ok is null), done, or why it failed."""

    pointing = models.ForeignKey(DidPointing, on_delete=models.CASCADE, related_name="results")
    did = models.CharField(_("DID"), max_length=16)
    ok = models.BooleanField(null=True, blank=True)
    code = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=1000, blank=True)
    changes = models.JSONField(default=list, blank=True)
    written_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["did"]
        constraints = [
            models.UniqueConstraint(fields=["pointing", "did"], name="did_pointing_result_did")
        ]

    def __str__(self) -> str:
        return self.did
