"""State of the VoIP.ms sandbox, kept in the database so web and worker processes share it."""

from __future__ import annotations

import datetime as dt

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

# SMS and MMS ids come from separate counters that start together, so an SMS and an MMS with the
# same id appear at once, as they do at VoIP.ms (DOMAIN.md §2, sendMMS).
FIRST_PROVIDER_ID = 100000

ten_digits = RegexValidator(r"^[2-9][0-9]{2}[2-9][0-9]{6}$", "Enter the DID as 10 digits.")


class FaultMode(models.TextChoices):
    """Failures the sandbox can imitate instead of a normal answer."""

    NONE = "", "None"
    CLOUDFLARE_HTML = "cloudflare_html", "Cloudflare 403 “Attention Required!” page"
    ERROR_522 = "error_522", "HTTP 522 with the plain body “error code: 522”"
    HTML_521 = "html_521", "Cloudflare 521 “Web server is down” page"
    SOAP_FAULT = "soap_fault", "SOAP fault XML"
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept", "Record the send, then answer too late"


class NumberFormat(models.TextChoices):
    """How VoIP.ms writes numbers for a DID (DOMAIN.md §1, step 7)."""

    NANPA = "nanpa", "NANPA (3322496213)"
    E164 = "e164", "E.164 (+13322496213)"


class MessageKind(models.TextChoices):
    """The two message kinds, each with its own id counter."""

    SMS = "sms", "SMS"
    MMS = "mms", "MMS"


class MessageType(models.IntegerChoices):
    """Direction of a message as getSMS reports it in its type column."""

    SENT = 0, "Sent"
    RECEIVED = 1, "Received"


class Via(models.TextChoices):
    """How a received message was pushed to the portal."""

    WEBHOOK = "webhook", "JSON webhook (POST)"
    CALLBACK = "callback", "URL callback (GET)"


class SandboxAccount(models.Model):
    """A VoIP.ms account: API credentials, allow-list, daily cap and fault switches."""

    username = models.EmailField("login email", unique=True)
    # The tenant whose SMS configuration uses this account's login; its administrators manage
    # the account's DIDs and only its users see them on the phone simulator.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # A fake provider: the password is compared, never logged, rendered or returned.
    api_password = models.CharField("API password", max_length=128)
    api_enabled = models.BooleanField("API enabled", default=True)
    ip_allowlist = models.TextField(
        "IP allow-list",
        default="0.0.0.0",  # noqa: S104 - VoIP.ms's own spelling of "any address", not a bind
        blank=True,
        help_text="IPs, CIDR blocks, * wildcards or host names, separated by commas or lines; "
        "0.0.0.0 allows any address.",
    )
    daily_send_cap = models.PositiveIntegerField(default=100)
    # The sends of the current US Eastern day, counted as they are recorded, so the cap check is
    # one row update rather than a count of the day's history.
    sends_day = models.DateField(null=True, blank=True, editable=False)
    sends_today = models.PositiveIntegerField(default=0, editable=False)
    latency_ms = models.PositiveIntegerField(default=0)
    fault_mode = models.CharField(max_length=32, choices=FaultMode.choices, default="", blank=True)
    fault_rate = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction of calls that get the fault (1.0 = every call).",
    )
    timeout_sleep_s = models.FloatField(default=60.0, validators=[MinValueValidator(0.0)])
    delivery_delay_s = models.PositiveIntegerField(
        default=10,
        help_text="Seconds after which a sent message reads “Message delivered to handset.”",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fault_rate__gte=0.0, fault_rate__lte=1.0),
                name="sandbox_account_fault_rate_range",
            )
        ]

    def __str__(self) -> str:
        return self.username


class SandboxDid(models.Model):
    """A DID of a sandbox account with its messaging settings."""

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="dids")
    did = models.CharField("DID", max_length=10, unique=True, validators=[ten_digits])
    sms_available = models.BooleanField("SMS available", default=True)
    sms_enabled = models.BooleanField("SMS enabled", default=True)
    mms_available = models.BooleanField("MMS available", default=True)
    number_format = models.CharField(
        max_length=8, choices=NumberFormat.choices, default=NumberFormat.NANPA
    )
    webhook_url = models.CharField("SMS/MMS webhook URL", max_length=1000, blank=True)
    webhook_enabled = models.BooleanField(default=True)
    callback_url = models.CharField(
        "URL callback",
        max_length=1000,
        blank=True,
        help_text="GET template with {FROM} {TO} {MESSAGE} {ID} {TIMESTAMP} {MEDIA}.",
    )
    callback_enabled = models.BooleanField(default=True)
    callback_retry = models.BooleanField(default=False)
    email_address = models.CharField("SMS to e-mail address", max_length=254, blank=True)
    email_enabled = models.BooleanField("SMS to e-mail", default=False)
    forward_to = models.CharField("SMS forward number", max_length=20, blank=True)
    forward_enabled = models.BooleanField("SMS forward", default=False)
    # setSMS refuses a second write within a minute (DOMAIN.md §2, sms_wait_message).
    sms_settings_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["did"]
        verbose_name = "sandbox DID"

    def __str__(self) -> str:
        return self.did

    @property
    def e164(self) -> str:
        """Return the DID in E.164."""
        return f"+1{self.did}"

    def formatted(self, number: str) -> str:
        """Return a 10-digit number as this DID's number format writes it."""
        # Short codes pass through unchanged in either format (DOMAIN.md §3).
        if self.number_format == NumberFormat.E164 and len(number) == len(self.did):
            return f"+1{number}"
        return number


class SandboxCounter(models.Model):
    """The last id handed out for one message kind."""

    kind = models.CharField(max_length=3, choices=MessageKind.choices, primary_key=True)
    last_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.kind}: {self.last_id}"


class SandboxMessage(models.Model):
    """A message in an account's history: sent through the API or received from a handset."""

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=3, choices=MessageKind.choices)
    provider_id = models.BigIntegerField()
    type = models.PositiveSmallIntegerField(choices=MessageType.choices)
    did = models.CharField("DID", max_length=10)
    contact = models.CharField(max_length=10)
    message = models.TextField(blank=True)
    media = models.JSONField(default=list, blank=True)
    # VoIP.ms keeps whole seconds: webhooks show ".000000" and getSMS "YYYY-MM-DD HH:MM:SS".
    created_at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=8, choices=Via.choices, blank=True)
    delivered_to_portal = models.BooleanField(default=False)
    portal_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    portal_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-provider_id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "provider_id"], name="sandbox_message_kind_id")
        ]
        indexes = [
            models.Index(fields=["account", "created_at"]),
            models.Index(fields=["did", "contact", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.provider_id}"

    @property
    def is_sent(self) -> bool:
        """Return whether the portal sent this message through the API."""
        return self.type == MessageType.SENT

    def carrier_status(self, *, now: dt.datetime, delivery_delay_s: int) -> str:
        """Return the carrier status getSMS shows for this message at the given time."""
        if not self.is_sent:
            return "received"
        if now - self.created_at >= dt.timedelta(seconds=delivery_delay_s):
            return "Message delivered to handset."
        return "Message sent"
