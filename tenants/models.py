"""Tenants, users and extensions: who acts, and in which isolated virtual PBX."""

from __future__ import annotations

import hashlib
import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.clock import time_display
from core.crypto import EncryptedTextField
from core.netguard import AddressRefused, url_literal_host_check


def validate_public_url(value: str) -> None:
    """Refuse a URL that is not http(s), or whose host is an address outbound requests may not
    reach (localhost included)."""
    if not value.lower().startswith(("http://", "https://")):
        raise ValidationError(_("Give an http:// or https:// address."))
    try:
        url_literal_host_check(url=value)
    except AddressRefused as error:
        raise ValidationError(
            _("This address is refused: %(message)s.") % {"message": error.message}
        ) from None


def validate_timezone(value: str) -> None:
    """Refuse a time zone name that the IANA database does not know."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)r is not a known time zone (e.g. America/New_York).") % {"value": value}
        )


class TenantQuerySet(models.QuerySet):
    """Queryset of a tenant-owned model; request code reads it only through for_tenant()."""

    def for_tenant(self, tenant: Tenant | None) -> TenantQuerySet:
        """Return the rows of this tenant, or none when there is no tenant."""
        if tenant is None:
            return self.none()
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Abstract base of every tenant-owned model: a non-null tenant and the scoped manager."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Tenant(models.Model):
    """An isolated virtual PBX: it never sees another tenant's data."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.CharField(
        _("SIP domain"),
        max_length=100,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
                "Use lower-case letters, digits, dots and dashes, like a domain name.",
            )
        ],
        help_text=_(
            "Lower-case, like a domain name (e.g. acme.pbx.example.com). "
            "API clients name the tenant with it in the X-Tenant header."
        ),
    )
    enabled = models.BooleanField(
        _("status"), default=True, help_text=_("A disabled tenant cannot log in.")
    )
    message_channels_enabled = models.BooleanField(
        _("Message Channels"),
        default=True,
        help_text=_("When off, the tenant cannot send or receive SMS/MMS."),
    )
    allow_private_trunks = models.BooleanField(
        default=False, help_text=_("Let the tenant's admins create trunks of their own.")
    )
    require_admin_2fa = models.BooleanField(
        _("require two-factor sign-in for administrators"),
        default=False,
        help_text=_(
            "The tenant's administrators must set up two-factor sign-in before they "
            "can use the portal."
        ),
    )
    country = models.CharField(max_length=2, default="US", help_text=_("ISO 3166 country code."))
    timezone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_timezone]
    )
    retention_days = models.PositiveIntegerField(
        _("keep messages for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(36500)],
        help_text=_(
            "Messages, their media and webhook deliveries older than this are deleted "
            "every night. Empty keeps them for ever."
        ),
    )
    monthly_quota = models.PositiveIntegerField(
        _("monthly quota (SMS segments sent)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Outbound segments a calendar month (in the tenant's time zone); the portal "
            "warns at 80 %. Empty: no quota."
        ),
    )
    quota_hard = models.BooleanField(
        _("refuse sends beyond the quota"),
        default=False,
        help_text=_("When on, a send that would pass the monthly quota is refused."),
    )
    status_callback_url = models.URLField(
        _("status callback URL"),
        max_length=2000,
        blank=True,
        validators=[validate_public_url],
        help_text=_(
            "Each status change of a sent message is POSTed here, signed with the "
            "callback secret, unless the send names its own status_callback. Empty: none."
        ),
    )
    stop_reply = models.CharField(
        _("default opt-out confirmation"),
        max_length=160,
        blank=True,
        help_text=_(
            "Sent when a contact texts STOP through a configuration whose own "
            "confirmation is empty; empty here too sends nothing."
        ),
    )
    help_reply = models.CharField(
        _("default HELP reply"),
        max_length=160,
        blank=True,
        help_text=_(
            "Sent when a contact texts HELP through a configuration whose own HELP reply "
            "is empty; empty here too sends nothing."
        ),
    )
    start_reply = models.CharField(
        _("START reply"),
        max_length=160,
        blank=True,
        help_text=_(
            "Sent when an opted-out contact texts START and is subscribed again; empty "
            "sends nothing."
        ),
    )
    callback_secret = EncryptedTextField(
        blank=True,
        editable=False,
        help_text=_("Signs status callbacks (HMAC-SHA256); created on first use, rotatable."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """Return the tenant's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)


class PortalUserManager(UserManager.from_queryset(TenantQuerySet)):
    """User manager with for_tenant(), like every tenant-owned model."""

    def create_superuser(
        self, username: str, email: str | None = None, password: str | None = None, **extra: Any
    ) -> User:
        """Create a system administrator (`manage.py createsuperuser` creates the first one)."""
        # A superuser has no tenant, which the user_tenant_matches_role constraint allows only
        # to a system administrator.
        extra.setdefault("role", Role.SYSTEM_ADMIN)
        return super().create_superuser(username, email, password, **extra)


class Role(models.TextChoices):
    SYSTEM_ADMIN = "system_admin", _("System administrator")
    TENANT_ADMIN = "tenant_admin", _("Tenant administrator")
    USER = "user", _("Extension user")


class User(AbstractUser):
    """A person or program signing in: a system admin, or a member of exactly one tenant."""

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.USER)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    # Kept by the two-factor services beside the user's django-otp devices, so that deciding
    # whether a request still needs a code costs no query beyond loading the user.
    two_factor_enabled = models.BooleanField(_("two-factor sign-in"), default=False, editable=False)
    # Profile settings. System pages show times in the user's own zone (tenant pages in the
    # tenant's); empty language follows the browser.
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text=_("Times on system pages are shown in this zone; empty: UTC."),
    )
    language = models.CharField(
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("Empty: the browser's language."),
    )

    objects = PortalUserManager()

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """Return the user's own time zone, for the system pages (UTC when he chose none)."""
        return zoneinfo.ZoneInfo(self.time_zone or "UTC")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(role=Role.SYSTEM_ADMIN) & Q(tenant__isnull=True))
                | (~Q(role=Role.SYSTEM_ADMIN) & Q(tenant__isnull=False)),
                name="user_tenant_matches_role",
                violation_error_message="Only system administrators have no tenant.",
            )
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def is_system_admin(self) -> bool:
        """Return whether the user administers the whole system."""
        return self.role == Role.SYSTEM_ADMIN

    @property
    def is_tenant_admin(self) -> bool:
        """Return whether the user administers his tenant."""
        return self.role == Role.TENANT_ADMIN

    @property
    def two_factor_required(self) -> bool:
        """Return whether the user must sign in with a second factor (a setting or his tenant)."""
        if self.is_system_admin:
            return settings.REQUIRE_ADMIN_2FA
        return self.is_tenant_admin and self.tenant is not None and self.tenant.require_admin_2fa


class SmsPermission(models.TextChoices):
    DISABLE = "disable", _("Disable")
    ALLOW = "allow", _("Allow")
    ALLOW_WITH_SENDER_ID = "allow_sender_id", _("Allow with Sender ID")


class Extension(TenantOwned):
    """A PBX extension; its user reads and sends messages in the inbox."""

    number = models.CharField(
        max_length=20, validators=[RegexValidator(r"^\d{2,10}$", "Use 2 to 10 digits.")]
    )
    display_name = models.CharField(max_length=100, blank=True)
    user = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="extension"
    )
    email = models.EmailField(blank=True)
    notify_by_email = models.BooleanField(
        default=False, help_text=_("E-mail the extension when a message arrives.")
    )
    sms_permission = models.CharField(
        _("SMS permission"),
        max_length=20,
        choices=SmsPermission.choices,
        default=SmsPermission.DISABLE,
        help_text=_(
            "Disable: no sending. Allow: sends from its own number only, the first of its SMS "
            "caller IDs (the lowest number). Allow with Sender ID: chooses the sender among "
            "all of its SMS caller IDs."
        ),
    )

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="extension_number_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}".strip()

    @property
    def sms_enabled(self) -> bool:
        """Return whether the extension may send SMS."""
        return self.sms_permission != SmsPermission.DISABLE

    def clean(self) -> None:
        if self.user_id and self.tenant_id and self.user.tenant_id != self.tenant_id:
            raise ValidationError({"user": _("Choose a user of this tenant.")})


class AuditEvent(models.Model):
    """Record who did what, where and when (Manage, configuration changes, verifications)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    address = models.GenericIPAddressField(
        null=True, blank=True, help_text=_("The client address of the request that did it.")
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{time_display(self.at)} {self.actor_name} {self.action} {self.object_repr}"


API_TOKEN_PREFIX_LENGTH = 8


def api_token_digest(key: str) -> str:
    """Return the SHA-256 digest under which an API token is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A named API key of one user, stored as a digest: the key itself is shown once only."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=API_TOKEN_PREFIX_LENGTH, help_text=_("The first characters of the key.")
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    # The owner's tenant, kept here so tenant queries need no join (null for system admins).
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        """Return whether the token was revoked."""
        return self.revoked_at is not None


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OfficeHours(TenantOwned):
    """One weekly range of the tenant's office hours, in the tenant's time zone."""

    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        verbose_name_plural = _("office hours")
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=models.F("end")), name="office_hours_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}-{self.end:%H:%M}"


class Holiday(TenantOwned):
    """A day (or days) the tenant's holiday destinations apply."""

    name = models.CharField(max_length=100)
    start_date = models.DateField()
    end_date = models.DateField(
        help_text=_("The last day of the holiday (the same day for one day).")
    )
    every_year = models.BooleanField(
        default=False, help_text=_("Repeat on the same dates every year.")
    )

    class Meta:
        ordering = ["start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__lte=models.F("end_date")), name="holiday_order"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RingGroup(TenantOwned):
    """Extensions that share conversations; one member is assigned each new conversation."""

    name = models.CharField(max_length=100)
    number = models.CharField(max_length=20, blank=True)
    members = models.ManyToManyField(
        Extension, through="RingGroupMember", related_name="ring_groups"
    )
    last_assigned = models.ForeignKey(
        Extension,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="ring_group_name")]

    def __str__(self) -> str:
        return self.name


class RingGroupMember(TenantOwned):
    """An extension in a ring group."""

    ring_group = models.ForeignKey(RingGroup, on_delete=models.CASCADE, related_name="memberships")
    extension = models.ForeignKey(Extension, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ring_group", "extension"], name="ring_group_member")
        ]

    def __str__(self) -> str:
        return f"{self.ring_group}: {self.extension}"
