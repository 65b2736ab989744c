"""Views of the VoIP.ms sandbox: the REST API, MMS media, and the phone simulator."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from core.clock import time_display, time_export
from tenants.models import Tenant
from trunks.numbers import normalize_number
from trunks.voipms.sandbox import api
from trunks.voipms.sandbox.models import SandboxDid, SandboxMessage, Via
from trunks.voipms.sandbox.selectors import sandbox_dids_of, sandbox_thread
from trunks.voipms.sandbox.services import (
    SandboxError,
    nanp_digits,
    sandbox_inbound_emit,
    sender_digits,
)

DEFAULT_HANDSET = "2125550143"
REFRESH_SECONDS = 3


@csrf_exempt
@require_http_methods(["GET", "POST"])
def rest_api(request: HttpRequest) -> HttpResponse:
    """Answer a VoIP.ms REST API call."""
    # Credentials travel in the parameters, as at VoIP.ms: no session, no CSRF token.
    return api.respond(request)


@require_GET
def media(request: HttpRequest) -> HttpResponse:
    """Serve the media an MMS carried as a data URL, like VoIP.ms's public media links."""
    mms_id, index = request.GET.get("mms", ""), request.GET.get("index", "")
    found = (
        api.media_content(mms_id=int(mms_id), index=int(index))
        if mms_id.isdigit() and index.isdigit()
        else None
    )
    if found is None:
        raise Http404("No such media")
    content, content_type = found
    return HttpResponse(content, content_type=content_type)


def _scope(request: HttpRequest) -> tuple[bool, Tenant | None]:
    """Return whether the user may use the simulator at all, and the tenant it is limited to.

    A tenant's users, and a system administrator managing a tenant, see that tenant's sandbox
    DIDs only; a system administrator on the system site sees every DID, labelled by tenant.
    """
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return True, tenant
    return bool(request.user.is_system_admin), None


def _visible_dids(request: HttpRequest) -> list[SandboxDid]:
    """Return the sandbox DIDs the user may text."""
    allowed, tenant = _scope(request)
    return list(sandbox_dids_of(tenant=tenant)) if allowed else []


def _visible_did(request: HttpRequest, raw: str) -> SandboxDid:
    """Return the DID named in the request, or 404 when it is unknown or not the user's."""
    digits = nanp_digits(raw)
    allowed, tenant = _scope(request)
    sandbox_did = (
        sandbox_dids_of(tenant=tenant).filter(did=digits).first() if digits and allowed else None
    )
    if sandbox_did is None:
        raise Http404("No such DID")
    return sandbox_did


def _handset(raw: str) -> str | None:
    """Return a handset number as the sandbox stores it, or None when it is not one."""
    try:
        return sender_digits(normalize_number(raw))
    except SandboxError:
        return None


def _phone_url(did: str, handset: str) -> str:
    """Return the phone page of a conversation."""
    return f"{reverse('sandbox_phone')}?{urlencode({'did': did, 'handset': handset})}"


def _phone_send(request: HttpRequest) -> HttpResponse:
    """Text the chosen DID from the handset and go back to the conversation."""
    if not request.POST.get("did", "").strip():
        messages.error(request, _("Choose the number to text."))
        return redirect(reverse("sandbox_phone"))
    sandbox_did = _visible_did(request, request.POST.get("did", ""))
    raw_handset = request.POST.get("handset", "").strip()
    handset = _handset(raw_handset)
    if handset is None:
        messages.error(
            request,
            _('"%(raw_handset)s" is not a US or Canadian number or a short code.')
            % {"raw_handset": raw_handset},
        )
        return redirect(_phone_url(sandbox_did.did, raw_handset))
    media_url = request.POST.get("media_url", "").strip()
    try:
        message = sandbox_inbound_emit(
            did=sandbox_did.did,
            from_number=handset,
            text=request.POST.get("text", ""),
            media_urls=[media_url] if media_url else [],
            via=request.POST.get("via", Via.WEBHOOK),
        )
    except SandboxError as error:
        messages.error(request, error.message)
        return redirect(_phone_url(sandbox_did.did, handset))
    label = f"{message.kind.upper()} {message.provider_id}"
    if message.delivered_to_portal:
        messages.success(
            request,
            _("%(label)s pushed to the portal, which answered HTTP %(portal_http_status)s.")
            % {"label": label, "portal_http_status": message.portal_http_status},
        )
    else:
        messages.warning(
            request,
            _("%(label)s recorded, but: %(portal_error)s")
            % {"label": label, "portal_error": message.portal_error},
        )
    return redirect(_phone_url(sandbox_did.did, handset))


@login_required
@require_http_methods(["GET", "POST"])
def phone(request: HttpRequest) -> HttpResponse:
    """Show the phone simulator, or text a DID from it."""
    if request.method == "POST":
        return _phone_send(request)
    dids = _visible_dids(request)
    requested = request.GET.get("did", "")
    selected = _visible_did(request, requested) if requested else (dids[0] if dids else None)
    tenant = getattr(request, "tenant", None)
    user = request.user
    site_admin = tenant is not None and (user.is_system_admin or user.is_tenant_admin)
    context = {
        # The portal's header, as on the tenant and system sites (admin/base_site.html).
        "title": _("Phone simulator"),
        "site_header": _("Seed SMS Portal"),
        "site_title": _("Seed SMS Portal"),
        "portal_site": "tenant" if tenant is not None else "system",
        "acting_tenant": tenant,
        "has_permission": True,
        "is_nav_sidebar_enabled": False,
        "show_tenant": tenant is None,
        "perms_sandbox_page": site_admin,
        "dids": dids,
        "selected": selected,
        "handset": request.GET.get("handset", DEFAULT_HANDSET),
        "via_choices": Via.choices,
        "refresh_ms": REFRESH_SECONDS * 1000,
    }
    return render(request, "sandbox/phone.html", context)


def _bubble(message: SandboxMessage, *, delivery_delay_s: int) -> dict[str, Any]:
    """Return one message of a conversation as the phone page draws it."""
    links = [
        f"{reverse('sandbox_media')}?{urlencode({'mms': message.provider_id, 'index': index})}"
        if item.startswith("data:")
        else item
        for index, item in enumerate(message.media, start=1)
    ]
    if message.is_sent:
        status = message.carrier_status(now=timezone.now(), delivery_delay_s=delivery_delay_s)
    elif message.delivered_to_portal:
        status = f"pushed by {message.via}: HTTP {message.portal_http_status}"
    else:
        status = f"not pushed: {message.portal_error or 'unknown'}"
    return {
        "id": message.provider_id,
        "kind": message.kind,
        "from_handset": not message.is_sent,
        "text": message.message,
        "media": links,
        "at": time_export(message.created_at),
        "at_display": time_display(message.created_at),
        "status": status,
    }


@login_required
@require_GET
def phone_thread(request: HttpRequest) -> JsonResponse:
    """Return the conversation between a DID and a handset, oldest first."""
    sandbox_did = _visible_did(request, request.GET.get("did", ""))
    handset = _handset(request.GET.get("handset", ""))
    if handset is None:
        return JsonResponse({"error": "Enter a US or Canadian number or a short code."}, status=400)
    delay = sandbox_did.account.delivery_delay_s
    return JsonResponse(
        {
            "did": sandbox_did.e164,
            "handset": handset,
            "messages": [
                _bubble(message, delivery_delay_s=delay)
                for message in sandbox_thread(did=sandbox_did.did, handset=handset)
            ],
        }
    )
