"""Two-factor sign-in: enrolment of an authenticator app, recovery codes, checking a code.

A user's second factor is one django-otp TOTP device (the authenticator app) and one static
device holding his recovery codes. `User.two_factor_enabled` mirrors "has a confirmed TOTP
device" and changes only here, together with the devices.
"""

from __future__ import annotations

import base64
import math

import segno
from django.db import transaction
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.errors import ApplicationError, Conflict, NotAllowed
from tenants.models import User
from tenants.services import audit_record

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
MAX_CODE_LENGTH = 16


class CodeRefused(ApplicationError):
    """Raise when a code from the authenticator app or a recovery code is not accepted."""

    code = "code_refused"


class CodeThrottled(CodeRefused):
    """Raise when too many wrong codes were entered and the next try must wait."""

    code = "code_throttled"


def two_factor_pending_device(*, user: User) -> TOTPDevice | None:
    """Return the authenticator device being set up (not yet confirmed with a code), if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def two_factor_secret(device: TOTPDevice) -> str:
    """Return the device's secret as the base32 text authenticator apps accept, in groups of 4."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def two_factor_qr_svg(device: TOTPDevice) -> SafeString:
    """Return the device's otpauth:// URL as an inline SVG QR code (no script, no style)."""
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5,
        title="QR code for your authenticator app",
        svgclass="totp-qr",
        lineclass=None,
        light="#fff",
    )
    # segno builds the SVG itself from the URL's bits; nothing user-typed reaches it unescaped.
    return mark_safe(svg)  # noqa: S308


def recovery_codes_left(*, user: User) -> int:
    """Return how many unused recovery codes the user has."""
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def two_factor_enrolment_start(*, user: User) -> TOTPDevice:
    """Create a new secret for the user's authenticator app, replacing an unfinished one."""
    if user.two_factor_enabled:
        raise Conflict(_("Two-factor sign-in is already on; turn it off first to change the app."))
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = StaticToken.random_token()
        # An all-digit code would be taken for the app's code (see two_factor_verify).
        if not code.isdigit() and code not in codes:
            codes.append(code)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def two_factor_enrolment_confirm(*, user: User, code: str) -> tuple[TOTPDevice, list[str]]:
    """Turn two-factor sign-in on once the app's first code matches; return the recovery codes."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("-pk")
            .first()
        )
        if device is None:
            raise Conflict(_("Start the set-up again: no authenticator app is waiting for a code."))
        accepted = _verify(device, _normal_code(code))
    # Outside the block: a refused code's throttling count must be kept, not rolled back.
    if not accepted:
        raise CodeRefused(_("That code is not right. Enter the 6 digits the app shows now."))
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        codes = _new_recovery_codes(user)
        user.two_factor_enabled = True
        user.save(update_fields=["two_factor_enabled"])
        audit_record(actor=user, action="two_factor_enabled", tenant=user.tenant, obj=user)
    return device, codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; the old ones stop working."""
    if not user.two_factor_enabled:
        raise Conflict(_("Turn two-factor sign-in on first."))
    codes = _new_recovery_codes(user)
    audit_record(actor=user, action="recovery_codes_regenerated", tenant=user.tenant, obj=user)
    return codes


def _normal_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _verify(device: Device, code: str) -> bool:
    """Check a code on a device locked for update, refusing early while it is throttled."""
    allowed, details = device.verify_is_allowed()
    if not allowed:
        locked_until = (details or {}).get("locked_until")
        wait = (locked_until - timezone.now()).total_seconds() if locked_until else 1
        raise CodeThrottled(
            _("Too many wrong codes. Wait %(value)s seconds and try again.")
            % {"value": max(1, math.ceil(wait))}
        )
    return device.verify_token(code)


def two_factor_verify(*, user: User, code: str) -> Device:
    """Return the device that accepts this code: the app's 6 digits, or an unused recovery code.

    Each device counts its wrong codes and makes the next try wait longer (django-otp's
    exponential throttling); a recovery code is used up when it is accepted.
    """
    code = _normal_code(code)
    model = TOTPDevice if code.isdigit() else StaticDevice
    # Codes are short and plain: anything else (a NUL, a page of text) is wrong without a query.
    well_formed = code.isascii() and code.isalnum() and len(code) <= MAX_CODE_LENGTH
    accepted = False
    with transaction.atomic():
        device = (
            model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk")
        ).first()
        if device is not None and well_formed:
            accepted = _verify(device, code)
    if not accepted:
        raise CodeRefused(
            _(
                "That code is not right. Enter the 6 digits your authenticator app shows now, "
                "or one of your recovery codes."
            )
        )
    return device


@transaction.atomic
def _remove_devices(user: User) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    user.two_factor_enabled = False
    user.save(update_fields=["two_factor_enabled"])


def two_factor_disable(*, user: User, code: str) -> None:
    """Turn the user's two-factor sign-in off, proven with a current code or a recovery code."""
    if user.two_factor_required:
        raise NotAllowed(_("Two-factor sign-in is required for your account; it cannot be off."))
    if not user.two_factor_enabled:
        raise Conflict(_("Two-factor sign-in is already off."))
    two_factor_verify(user=user, code=code)
    with transaction.atomic():
        _remove_devices(user)
        audit_record(actor=user, action="two_factor_disabled", tenant=user.tenant, obj=user)


def two_factor_reset(*, actor: User, user: User) -> None:
    """Turn another user's two-factor sign-in off (lost phone and codes); he may set it up again."""
    with transaction.atomic():
        _remove_devices(user)
        audit_record(actor=actor, action="two_factor_reset", tenant=user.tenant, obj=user)
