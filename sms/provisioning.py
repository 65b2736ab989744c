"""Connect a configuration's VoIP.ms DIDs: list them, add them to the tenant's pool, and point
them at the configuration's webhook URL with setSMS (DOMAIN.md §2)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from core.limits import limits
from core.tasks import enqueue
from sms.configurations import voipms_problem
from sms.models import (
    DidPointing,
    DidPointingResult,
    DidPointingStatus,
    SmsConfiguration,
)
from sms.providers import voipms_client_for
from tenants.access import messaging_check, messaging_refusal
from tenants.models import Tenant, User
from tenants.services import audit_record
from trunks.models import PoolRange, TrunkAssignment
from trunks.numbers import (
    DidRange,
    InvalidNumber,
    format_did_pool,
    merge_did_ranges,
    parse_nanp,
    pool_contains,
)
from trunks.selectors import did_owner_tenant_id
from trunks.services import did_pool_parse, trunk_assignment_save
from trunks.voipms.client import DidInfo, SmsSettings
from trunks.voipms.errors import VoipmsError, VoipmsOutcomeUnknown

logger = logging.getLogger(__name__)

# setSMS takes one write per DID per minute, else sms_wait_message (DOMAIN.md §2).
SET_SMS_INTERVAL_SECONDS = 60.0
POINT_MAX_DIDS = 100
# A DID still waiting for its write slot after this many runs is given up.
POINT_MAX_RUNS = 10
LIST_READ_TIMEOUT = 30.0

SETTING_LABELS = {
    "sms_enabled": "SMS/MMS enabled",
    "email_enabled": "SMS to e-mail",
    "email_address": "e-mail address",
    "forward_enabled": "SMS forwarding",
    "forward_to": "forwarding number",
    "url_callback_enabled": "URL callback",
    "url_callback": "URL callback address",
    "url_callback_retry": "URL callback retry",
    "webhook_enabled": "SMS/MMS webhook",
    "webhook": "SMS/MMS webhook URL",
}
# What pointing changes on purpose; every other setting must read back as it was.
POINTED_SETTINGS = ("sms_enabled", "webhook_enabled", "webhook")


class VoipmsUnavailable(ApplicationError):
    """Raise when VoIP.ms refused or failed a read the request needs."""

    code = "voipms_error"
    status = 502


@dataclass(frozen=True)
class AccountDid:
    """One DID of a configuration's VoIP.ms account, as the portal shows it."""

    did: str
    description: str
    sms_available: bool
    sms_enabled: bool
    mms_available: bool
    webhook: str
    webhook_enabled: bool
    points_here: bool
    in_pool: bool
    owner_tenant_id: int | None


def _e164(did: str) -> str | None:
    try:
        return parse_nanp(did)
    except InvalidNumber:
        return None


def _pool_ranges(configuration: SmsConfiguration) -> list[DidRange]:
    return [
        DidRange(row.start, row.end)
        for row in PoolRange.objects.for_tenant(configuration.tenant).filter(
            trunk=configuration.trunk
        )
    ]


def _read_dids(configuration: SmsConfiguration) -> dict[str, DidInfo]:
    """Return the account's DIDs by E.164 number, or raise VoipmsUnavailable."""
    try:
        with voipms_client_for(configuration, read_timeout=LIST_READ_TIMEOUT) as client:
            infos = client.get_dids_info()
    except VoipmsError as error:
        raise VoipmsUnavailable(voipms_problem(error, None), code=error.code) from error
    return {number: info for info in infos if (number := _e164(info.did)) is not None}


def account_dids(*, configuration: SmsConfiguration) -> list[AccountDid]:
    """Return the DIDs of the configuration's VoIP.ms account with their SMS settings."""
    dids = _read_dids(configuration)
    pool = _pool_ranges(configuration)
    rows = []
    for number, info in sorted(dids.items()):
        in_pool = pool_contains(pool, number)
        rows.append(
            AccountDid(
                did=number,
                description=info.description,
                sms_available=info.sms_available,
                sms_enabled=info.sms_enabled,
                mms_available=info.mms_available,
                webhook=info.webhook,
                webhook_enabled=info.webhook_enabled,
                points_here=info.webhook == configuration.webhook_url,
                in_pool=in_pool,
                owner_tenant_id=configuration.tenant_id
                if in_pool
                else did_owner_tenant_id(trunk=configuration.trunk, number=number),
            )
        )
    return rows


def _numbers(dids: Sequence[Any]) -> list[str]:
    """Return the requested DIDs in E.164, in order and without repeats, or raise."""
    if isinstance(dids, str) or not dids:
        raise ApplicationError(_("Choose at least one DID."), code="required", field="dids")
    if len(dids) > POINT_MAX_DIDS:
        raise ApplicationError(
            _("Choose at most %(POINT_MAX_DIDS)s DIDs at once.")
            % {"POINT_MAX_DIDS": POINT_MAX_DIDS},
            code="too_many",
            field="dids",
        )
    numbers: list[str] = []
    for did in dids:
        number = _e164(did) if isinstance(did, str) else None
        if number is None:
            raise ApplicationError(
                _("%(value)r is not a US or Canadian number.") % {"value": str(did)[:40]},
                code="invalid",
                field="dids",
            )
        if number not in numbers:
            numbers.append(number)
    return numbers


@transaction.atomic
def did_pool_add(
    *, configuration: SmsConfiguration, dids: Sequence[str], actor: User | None
) -> TrunkAssignment:
    """Add DIDs of the configuration's VoIP.ms account to its tenant's pool on its trunk."""
    numbers = _numbers(dids)
    assignment = TrunkAssignment.objects.filter(
        trunk=configuration.trunk, tenant=configuration.tenant
    ).first()
    if assignment is None:
        raise ApplicationError(
            _("%(tenant)s is not assigned to trunk %(trunk)s.")
            % {"tenant": configuration.tenant, "trunk": configuration.trunk},
            code="trunk_not_assigned",
        )
    ranges = did_pool_parse(did_pool=assignment.did_pool) if assignment.did_pool else []
    ranges += [DidRange(int(n[1:]), int(n[1:])) for n in numbers if not pool_contains(ranges, n)]
    # trunk_assignment_save merges the ranges and refuses numbers of another tenant's pool.
    return trunk_assignment_save(
        trunk=configuration.trunk,
        tenant=configuration.tenant,
        did_pool=format_did_pool(merge_did_ranges(ranges)),
        max_concurrent_calls=assignment.max_concurrent_calls,
        assignment=assignment,
        actor=actor,
    )


@transaction.atomic
def did_pointing_start(
    *, configuration: SmsConfiguration, dids: Sequence[Any], actor: User | None
) -> DidPointing:
    """Record a request to point DIDs at the configuration's webhook and start it."""
    messaging_check(configuration.tenant)
    numbers = _numbers(dids)
    pool = _pool_ranges(configuration)
    outside = [number for number in numbers if not pool_contains(pool, number)]
    if outside:
        raise ApplicationError(
            "Not in this tenant's DID pool on trunk "
            f"{configuration.trunk}: {', '.join(outside[:10])}"
            + (" …" if len(outside) > 10 else ""),
            code="not_in_pool",
            field="dids",
        )
    pointing = DidPointing.objects.create(
        tenant=configuration.tenant, configuration=configuration, requested_by=actor
    )
    DidPointingResult.objects.bulk_create(
        DidPointingResult(tenant=configuration.tenant, pointing=pointing, did=number)
        for number in numbers
    )
    audit_record(
        actor=actor,
        action="dids_pointing_requested",
        tenant=configuration.tenant,
        obj=configuration,
        detail={"dids": numbers},
    )
    enqueue("sms.point_dids", pointing.pk)
    return pointing


def did_pointing_latest(*, configuration: SmsConfiguration) -> DidPointing | None:
    """Return the configuration's most recent pointing request."""
    return (
        DidPointing.objects.for_tenant(configuration.tenant)
        .filter(configuration=configuration)
        .prefetch_related("results")
        .first()
    )


def _finish(result: DidPointingResult, *, ok: bool, code: str, detail: str, **more: Any) -> None:
    DidPointingResult.objects.filter(pk=result.pk).update(
        ok=ok, code=code, detail=detail[:1000], **more
    )


def _changes(before: SmsSettings, after: SmsSettings) -> list[dict[str, Any]]:
    return [
        {
            "setting": item.name,
            "before": getattr(before, item.name),
            "after": getattr(after, item.name),
        }
        for item in fields(SmsSettings)
        if getattr(before, item.name) != getattr(after, item.name)
    ]


def _describe(changes: list[dict[str, Any]]) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return value or "(empty)"

    return "; ".join(
        f"{SETTING_LABELS[c['setting']]}: {shown(c['before'])} → {shown(c['after'])}"
        for c in changes
    )


def _verify(
    result: DidPointingResult, before: SmsSettings, wanted: SmsSettings, after: DidInfo | None
) -> None:
    """Record what the DID's settings read back after setSMS said success."""
    if after is None:
        _finish(
            result,
            ok=False,
            code="not_applied",
            detail="VoIP.ms accepted the change but no longer lists this DID.",
        )
        return
    changes = _changes(before, after.sms_settings)
    lost = _changes(wanted, after.sms_settings)
    not_pointed = [c for c in lost if c["setting"] in POINTED_SETTINGS]
    if not_pointed:
        _finish(
            result,
            ok=False,
            code="not_applied",
            detail="VoIP.ms answered success, but reading the DID again shows: "
            + _describe(not_pointed),
            changes=changes,
        )
    elif lost:
        _finish(
            result,
            ok=False,
            code="settings_lost",
            detail="The webhook points here, but other settings changed: " + _describe(lost),
            changes=changes,
        )
    elif changes:
        _finish(result, ok=True, code="pointed", detail=_describe(changes), changes=changes)
    else:
        _finish(
            result,
            ok=True,
            code="unchanged",
            detail="The DID already pointed here; its settings were written again unchanged.",
        )


def _claim(pointing_id: int) -> DidPointing | None:
    claimed = DidPointing.objects.filter(
        pk=pointing_id, status__in=[DidPointingStatus.QUEUED, DidPointingStatus.WAITING]
    ).update(status=DidPointingStatus.RUNNING, runs=F("runs") + 1, next_run_at=timezone.now())
    if not claimed:
        return None
    return DidPointing.objects.select_related("configuration__trunk", "tenant").get(pk=pointing_id)


def _close(pointing: DidPointing, *, wait: float | None) -> None:
    if wait is None:
        DidPointing.objects.filter(pk=pointing.pk).update(
            status=DidPointingStatus.DONE, finished_at=timezone.now()
        )
        audit_record(
            actor=None,
            action="dids_pointed",
            tenant=pointing.tenant,
            obj=pointing.configuration,
            detail={
                "ok": list(pointing.results.filter(ok=True).values_list("did", flat=True)),
                "failed": list(pointing.results.filter(ok=False).values_list("did", flat=True)),
            },
        )
        return
    DidPointing.objects.filter(pk=pointing.pk).update(
        status=DidPointingStatus.WAITING,
        next_run_at=timezone.now() + dt.timedelta(seconds=wait + 1.0),
    )
    # A second past the slot, so the next run does not find it a few milliseconds short.
    enqueue("sms.point_dids", pointing.pk, countdown=wait + 1.0)


def did_pointing_run(*, pointing_id: int) -> None:
    """Point the waiting DIDs of a request, one setSMS per DID per minute, and read them back."""
    pointing = _claim(pointing_id)
    if pointing is None:
        logger.info("did_pointing_run: %s is gone, running or done", pointing_id)
        return
    configuration: SmsConfiguration = pointing.configuration
    pending = list(pointing.results.filter(ok__isnull=True))
    refusal = messaging_refusal(pointing.tenant)
    if refusal:
        for result in pending:
            _finish(result, ok=False, code="messaging_off", detail=refusal)
        _close(pointing, wait=None)
        return
    give_up = pointing.runs >= POINT_MAX_RUNS
    try:
        before = _read_dids(configuration)
    except VoipmsUnavailable as error:
        cause = error.__cause__
        if isinstance(cause, VoipmsError) and not cause.permanent and not give_up:
            _close(pointing, wait=cause.retry_after or SET_SMS_INTERVAL_SECONDS)
            return
        for result in pending:
            _finish(result, ok=False, code=error.code, detail=error.message)
        _close(pointing, wait=None)
        return
    waits: list[float] = []
    written: list[tuple[DidPointingResult, SmsSettings, SmsSettings]] = []
    with voipms_client_for(configuration, read_timeout=LIST_READ_TIMEOUT) as client:
        for result in pending:
            info = before.get(result.did)
            if info is None:
                _finish(
                    result,
                    ok=False,
                    code="invalid_did",
                    detail="This DID is not on the configuration's VoIP.ms account.",
                )
                continue
            if not info.sms_available:
                _finish(
                    result,
                    ok=False,
                    code="sms_not_available",
                    detail="VoIP.ms does not offer SMS on this DID.",
                )
                continue
            key = f"setsms:{configuration.username.lower()}:{result.did}"
            wait = limits().claim_interval(key, SET_SMS_INTERVAL_SECONDS)
            if wait and not give_up:
                waits.append(wait)
                continue
            if wait:
                _finish(
                    result,
                    ok=False,
                    code="sms_wait_message",
                    detail="The DID's settings kept changing; try again in a minute.",
                )
                continue
            wanted = replace(
                info.sms_settings,
                sms_enabled=True,
                webhook_enabled=True,
                webhook=configuration.webhook_url,
            )
            try:
                client.set_sms(
                    did=info.did, settings=wanted, number_format=configuration.number_format
                )
            except VoipmsOutcomeUnknown:
                # The write may have happened: reading the DID back below tells.
                pass
            except VoipmsError as error:
                if not error.permanent and error.nothing_sent and not give_up:
                    waits.append(error.retry_after or SET_SMS_INTERVAL_SECONDS)
                    continue
                _finish(result, ok=False, code=error.code, detail=voipms_problem(error, None))
                continue
            DidPointingResult.objects.filter(pk=result.pk).update(written_at=timezone.now())
            written.append((result, info.sms_settings, wanted))
    if written:
        # "success" from setSMS is not proof (DOMAIN.md §2): read every DID back.
        try:
            after = _read_dids(configuration)
        except VoipmsUnavailable as error:
            for result, _before, _wanted in written:
                _finish(
                    result,
                    ok=False,
                    code="unconfirmed",
                    detail=f"VoIP.ms accepted the change, but reading it back failed: "
                    f"{error.message}",
                )
        else:
            for result, old, wanted in written:
                _verify(result, old, wanted, after.get(result.did))
    _close(pointing, wait=max(waits) if waits else None)


def did_pointing_results(*, pointing: DidPointing) -> list[dict[str, Any]]:
    """Return the per-DID results of a request as the API shows them."""
    return [
        {
            "did": result.did,
            "ok": result.ok,
            "code": result.code,
            "detail": result.detail,
            "changes": result.changes,
        }
        for result in pointing.results.all()
    ]


def tenant_dids_owner_names(*, rows: Sequence[AccountDid]) -> dict[int, str]:
    """Return the names of the tenants that hold listed DIDs in their pools."""
    ids = {row.owner_tenant_id for row in rows if row.owner_tenant_id is not None}
    return dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "name"))
