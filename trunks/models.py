"""SIP trunks, their assignment to tenants, and each tenant's DID pool on a trunk."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.crypto import EncryptedTextField
from tenants.models import TenantOwned, TenantQuerySet
from trunks.numbers import DidRange, format_did_pool


class Brand(models.TextChoices):
    VOIPMS = "voipms", _("VoIP.ms")


class Transport(models.TextChoices):
    UDP = "udp", _("UDP")
    TCP = "tcp", _("TCP")
    TLS = "tls", _("TLS")


class TrunkQuerySet(models.QuerySet):
    def available_to(self, tenant: object) -> TrunkQuerySet:
        """Return the trunks assigned to a tenant (shared with it, or its own)."""
        if tenant is None:
            return self.none()
        return self.filter(assignments__tenant=tenant).distinct()


class Trunk(models.Model):
    """A SIP trunk at a provider; system trunks are shared with tenants through assignments."""

    # Unique per owner, not system-wide (see Meta.constraints): a global rule would tell a tenant
    # which names other tenants' private trunks, or system trunks it cannot see, already use.
    name = models.CharField(_("trunk name"), max_length=100)
    brand = models.CharField(max_length=20, choices=Brand.choices, default=Brand.VOIPMS)
    host = models.CharField(
        _("hostname or IP address"), max_length=255, help_text=_("e.g. sanjose2.voip.ms")
    )
    port = models.PositiveIntegerField(
        default=5060, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    transport = models.CharField(max_length=3, choices=Transport.choices, default=Transport.UDP)
    sip_username = models.CharField(_("SIP username"), max_length=100, blank=True)
    sip_password = EncryptedTextField(_("SIP password"), blank=True)
    reregister_interval = models.PositiveIntegerField(
        _("re-register interval (s)"), default=600, validators=[MinValueValidator(30)]
    )
    max_concurrent_calls = models.PositiveIntegerField(default=10)
    enabled = models.BooleanField(default=True)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="private_trunks",
        help_text=_("Set for a tenant's private trunk; empty for a system trunk."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TrunkQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(tenant__isnull=True),
                name="trunk_system_name_unique",
                violation_error_code="trunk_name_taken",
                violation_error_message="A system trunk with this name exists already.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="trunk_private_name_unique_per_tenant",
                violation_error_code="trunk_name_taken",
                violation_error_message="This tenant has a private trunk with this name already.",
            ),
        ]

    def __str__(self) -> str:
        # A tenant may see a system trunk and its own private trunk under one name.
        return f"{self.name} (private)" if self.is_private else self.name

    @property
    def is_private(self) -> bool:
        """Return whether a tenant owns this trunk (rather than the system administrator)."""
        return self.tenant_id is not None


class TrunkAssignment(TenantOwned):
    """A trunk shared with a tenant, with the tenant's own DID pool on it."""

    trunk = models.ForeignKey(Trunk, on_delete=models.CASCADE, related_name="assignments")
    did_pool = models.TextField(
        _("DID pool"),
        blank=True,
        help_text=_(
            "Numbers and ranges separated by ';', e.g. "
            "13322496213-13322496215;16468097069. No leading '+' or '0'."
        ),
    )
    max_concurrent_calls = models.PositiveIntegerField(default=10)

    class Meta:
        verbose_name = _("trunk")
        verbose_name_plural = _("trunks")
        ordering = ["trunk__name", "tenant__name"]
        constraints = [
            models.UniqueConstraint(fields=["trunk", "tenant"], name="one_assignment_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.trunk} → {self.tenant}"

    @property
    def ranges(self) -> list[DidRange]:
        """Return the pool's ranges as stored."""
        return [DidRange(r.start, r.end) for r in self.pool_ranges.all()]


class PoolRange(TenantOwned):
    """One range of a DID pool, expanded for indexed owner lookups and overlap checks."""

    assignment = models.ForeignKey(
        TrunkAssignment, on_delete=models.CASCADE, related_name="pool_ranges"
    )
    trunk = models.ForeignKey(Trunk, on_delete=models.CASCADE, related_name="+")
    start = models.BigIntegerField(
        help_text=_("First number, as the 11-digit integer 1NXXNXXXXXX.")
    )
    end = models.BigIntegerField(help_text=_("Last number, inclusive."))

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["start"]
        indexes = [
            # Covers the owner lookup (trunks.selectors.did_owner_tenant_id), which every inbound
            # message makes: PostgreSQL answers it from the index alone.
            models.Index(
                fields=["trunk", "start"], name="poolrange_trunk_start", include=["tenant", "end"]
            ),
            models.Index(fields=["tenant", "start"], name="poolrange_tenant_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start__lte=models.F("end")), name="range_order"
            )
        ]

    def __str__(self) -> str:
        return format_did_pool([DidRange(self.start, self.end)])


class PrivateTrunkQuerySet(TrunkQuerySet):
    def for_tenant(self, tenant: object) -> PrivateTrunkQuerySet:
        """Return the tenant's own trunks."""
        if tenant is None:
            return self.none()
        return self.filter(tenant=tenant)


class PrivateTrunk(Trunk):
    """A trunk a tenant created for itself (where the system administrator allows it)."""

    objects = PrivateTrunkQuerySet.as_manager()

    class Meta:
        proxy = True
        verbose_name = _("private trunk")
