"""Two-factor sign-in: enrolment, the code step after the password, recovery codes, limits,
turning it off, and who must have it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.admin.sites import site as system_site
from django.test import Client, RequestFactory
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from freezegun import freeze_time

from portal.admin_sites import tenant_site
from tenants.models import AuditEvent, Tenant, User
from tenants.services import api_token_create, tenant_update
from tenants.services_two_factor import two_factor_enrolment_confirm, two_factor_enrolment_start

ClientFor = Callable[[User | None], Client]

PASSWORD = "correct horse 42"
STEP = 30


@pytest.fixture
def clock() -> Iterator[Any]:
    """Freeze time at now; tick(STEP) moves to the authenticator app's next code."""
    with freeze_time(datetime.now(UTC)) as frozen:
        yield frozen


def _code(device: TOTPDevice) -> str:
    """Return the code the user's authenticator app shows now."""
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{value:0{device.digits}d}"


def _enrol(user: User) -> tuple[TOTPDevice, list[str]]:
    device = two_factor_enrolment_start(user=user)
    return two_factor_enrolment_confirm(user=user, code=_code(device))


def _password(username: str, *, ip: str = "127.0.0.1", next_url: str = "") -> Any:
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=ip)
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post("/login/", data)
    response.client = client
    return response


def _enter(client: Client, code: str, next_url: str = "/") -> Any:
    return client.post("/login/code/", {"code": code, "next": next_url})


def _refused(response: Any) -> bool:
    """Return whether the code page or the security page showed its form again with an error."""
    return response.status_code == 200 and (
        b'data-testid="code-error"' in response.content
        or b'data-testid="security-error"' in response.content
    )


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- enrolment -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_enrolment_shows_a_qr_code_and_secret_and_turns_on_with_a_code(
    user_a: User, client_for: ClientFor, clock: Any
) -> None:
    client = client_for(user_a)
    page = client.get("/account/security/")
    assert page.status_code == 200
    assert b"is <strong>off</strong>" in page.content
    assert b"<svg" not in page.content

    assert client.post("/account/security/", {"action": "start"}).status_code == 302
    page = client.get("/account/security/").content.decode()
    assert '<svg width="' in page and 'class="totp-qr"' in page
    figure = page[page.index('<figure class="totp-enrol">') : page.index("</figure>")]
    assert "<script" not in page and " style=" not in figure
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    device = TOTPDevice.objects.get(user=user_a)
    assert not device.confirmed
    assert secret.replace(" ", "") == device.config_url.split("secret=")[1].split("&")[0]

    wrong = client.post("/account/security/", {"action": "confirm", "code": "000000"})
    assert _refused(wrong)
    assert b"That code is not right" in wrong.content
    user_a.refresh_from_db()
    assert not user_a.two_factor_enabled

    clock.tick(STEP)
    done = client.post("/account/security/", {"action": "confirm", "code": _code(device)})

    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert len(set(codes)) == 10
    assert set(codes) == set(
        StaticToken.objects.filter(device__user=user_a).values_list("token", flat=True)
    )
    user_a.refresh_from_db()
    assert user_a.two_factor_enabled
    device.refresh_from_db()
    assert device.confirmed
    event = AuditEvent.objects.get(action="two_factor_enabled")
    assert (event.actor, event.tenant, event.object_id) == (user_a, user_a.tenant, str(user_a.pk))
    # The session that enrolled is verified; the codes are shown once only.
    again = client.get("/account/security/")
    assert again.status_code == 200
    assert b"is <strong>on</strong>" in again.content
    assert codes[0].encode() not in again.content
    assert b"10 unused recovery codes" in again.content


@pytest.mark.django_db
def test_security_page_needs_a_signed_in_user(client_for: ClientFor) -> None:
    response = client_for(None).get("/account/security/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_starting_again_replaces_the_unconfirmed_secret(
    user_a: User, client_for: ClientFor
) -> None:
    client = client_for(user_a)
    client.post("/account/security/", {"action": "start"})
    first = TOTPDevice.objects.get(user=user_a).key
    client.post("/account/security/", {"action": "start"})

    assert list(TOTPDevice.objects.filter(user=user_a).values_list("key", flat=True)) != [first]
    assert TOTPDevice.objects.filter(user=user_a).count() == 1


@pytest.mark.django_db
def test_a_confirm_without_a_started_set_up_is_a_form_error(
    user_a: User, client_for: ClientFor
) -> None:
    response = client_for(user_a).post(
        "/account/security/", {"action": "confirm", "code": "123456"}
    )
    assert _refused(response)
    assert b"Start the set-up again" in response.content


@pytest.mark.django_db
def test_an_unknown_action_is_a_form_error(user_a: User, client_for: ClientFor) -> None:
    response = client_for(user_a).post("/account/security/", {"action": "bogus"})
    assert _refused(response)


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_user_without_two_factor_signs_in_with_the_password_only(admin_a: User) -> None:
    response = _password(admin_a.username)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert response.client.get("/tenant/").status_code == 200


@pytest.mark.django_db
def test_after_the_password_every_page_waits_for_the_code(admin_a: User, clock: Any) -> None:
    device, _ = _enrol(admin_a)
    response = _password(admin_a.username, next_url="/tenant/")
    client = response.client

    assert response.status_code == 302
    assert response["Location"] == "/login/code/?next=%2Ftenant%2F"
    for path in ("/tenant/", "/inbox/", "/account/api-tokens/", "/account/security/", "/"):
        held = client.get(path)
        assert held.status_code == 302, path
        assert held["Location"].startswith("/login/code/?next="), path
    # The API does not take the half-signed-in session.
    assert client.get("/api/v1/messages/").status_code in (401, 403)
    page = client.get("/login/code/?next=/tenant/")
    assert page.status_code == 200
    assert b'name="code"' in page.content

    clock.tick(STEP)
    done = _enter(client, _code(device), "/tenant/")

    assert done.status_code == 302
    assert done["Location"] == "/tenant/"
    assert client.get("/tenant/").status_code == 200
    assert client.get("/inbox/").status_code == 200


@pytest.mark.django_db
def test_a_wrong_code_is_refused_with_a_clear_message(
    admin_a: User, settings: Any, clock: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device, _ = _enrol(admin_a)
    client = _password(admin_a.username).client
    clock.tick(STEP)
    right = _code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    response = _enter(client, wrong)

    assert _refused(response)
    assert b"That code is not right" in response.content
    assert client.get("/tenant/").status_code == 302
    assert _enter(client, right).status_code == 302
    assert client.get("/tenant/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "code", ["", "12\x0034", "abc\x00defg", "x" * 5000, "\uff11\uff12\uff13\uff14\uff15\uff16"]
)
def test_a_malformed_code_is_refused_without_an_error(user_a: User, code: str) -> None:
    _, recovery_codes = _enrol(user_a)
    client = _password(user_a.username).client

    response = _enter(client, code)

    assert _refused(response)
    assert b"That code is not right" in response.content
    disable = client.post("/account/security/", {"action": "disable", "code": code})
    assert disable.status_code == 302
    assert disable["Location"].startswith("/login/code/")
    assert _enter(client, recovery_codes[0]).status_code == 302
    assert _refused(client.post("/account/security/", {"action": "disable", "code": code}))


@pytest.mark.django_db
def test_the_same_app_code_is_not_accepted_twice(admin_a: User, clock: Any) -> None:
    device, _ = _enrol(admin_a)
    clock.tick(STEP)
    code = _code(device)
    first = _password(admin_a.username).client
    assert _enter(first, code).status_code == 302

    second = _password(admin_a.username).client
    assert _refused(_enter(second, code))


@pytest.mark.django_db
def test_a_recovery_code_signs_in_once(user_a: User, settings: Any, clock: Any) -> None:
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    _, codes = _enrol(user_a)
    client = _password(user_a.username).client

    assert _enter(client, f" {codes[3].upper()} ", "/inbox/")["Location"] == "/inbox/"
    assert client.get("/inbox/").status_code == 200
    assert not StaticToken.objects.filter(token=codes[3]).exists()

    again = _password(user_a.username).client
    assert _refused(_enter(again, codes[3]))
    assert _enter(again, codes[4]).status_code == 302


@pytest.mark.django_db
def test_a_code_right_after_a_wrong_one_waits_for_the_throttle(
    admin_a: User, settings: Any, clock: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600
    device, _ = _enrol(admin_a)
    client = _password(admin_a.username).client
    clock.tick(STEP)

    assert _refused(_enter(client, "000000" if _code(device) != "000000" else "111111"))
    response = _enter(client, _code(device))

    assert _refused(response)
    assert b"Too many wrong codes. Wait 3600 seconds" in response.content
    assert client.get("/tenant/").status_code == 302


@pytest.mark.django_db
def test_repeated_wrong_codes_end_the_sign_in_and_lock_the_username(
    admin_a: User, settings: Any, clock: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device, _ = _enrol(admin_a)
    client = _password(admin_a.username).client
    clock.tick(STEP)
    wrong = "000000" if _code(device) != "000000" else "111111"

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _refused(_enter(client, wrong))
    locked = _enter(client, wrong)

    assert locked.status_code == 429
    assert not _signed_in(client)
    assert _password(admin_a.username).status_code == 429
    # Another address is not locked.
    assert _password(admin_a.username, ip="10.0.0.9").status_code == 302


@pytest.mark.django_db
def test_the_code_page_refuses_to_send_the_user_elsewhere(admin_a: User, clock: Any) -> None:
    device, _ = _enrol(admin_a)
    client = _password(admin_a.username).client
    clock.tick(STEP)

    response = _enter(client, _code(device), "https://evil.example/")

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_the_code_page_sends_users_without_two_factor_on(
    user_a: User, client_for: ClientFor
) -> None:
    response = client_for(user_a).get("/login/code/?next=/inbox/")
    assert response.status_code == 302
    assert response["Location"] == "/inbox/"


@pytest.mark.django_db
def test_other_sessions_wait_for_a_code_once_two_factor_is_on(
    user_a: User, client_for: ClientFor
) -> None:
    other = client_for(user_a)
    assert other.get("/inbox/").status_code == 200

    _enrol(user_a)

    held = other.get("/inbox/")
    assert held.status_code == 302
    assert held["Location"].startswith("/login/code/")


@pytest.mark.django_db
def test_api_tokens_work_without_the_second_factor(user_a: User, tenant_a: Tenant) -> None:
    _enrol(user_a)
    _, key = api_token_create(user=user_a, name="script")
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")

    assert client.get("/api/v1/conversations/").status_code == 200


@pytest.mark.django_db
def test_both_admin_sites_refuse_a_user_whose_code_is_missing(
    sysadmin: User, admin_a: User, tenant_a: Tenant
) -> None:
    factory = RequestFactory()
    for site, user in ((system_site, sysadmin), (tenant_site, admin_a)):
        user.two_factor_enabled = True
        request = factory.get("/")
        request.user = user
        request.tenant = tenant_a
        request.session = {}
        user.is_verified = lambda: False
        assert not site.has_permission(request)
        user.is_verified = lambda: True
        assert site.has_permission(request)


# --- recovery codes and turning off ----------------------------------------------------------


@pytest.mark.django_db
def test_new_recovery_codes_replace_the_old_ones(user_a: User, clock: Any) -> None:
    _, old = _enrol(user_a)
    client = _password(user_a.username).client
    _enter(client, old[0])

    response = client.post("/account/security/", {"action": "regenerate"})

    assert response.status_code == 200
    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert not StaticToken.objects.filter(token__in=old).exists()
    assert AuditEvent.objects.filter(action="recovery_codes_regenerated", actor=user_a).exists()


@pytest.mark.django_db
def test_turning_off_needs_a_right_code_and_is_audited(
    user_a: User, client_for: ClientFor, settings: Any, clock: Any
) -> None:
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    _, codes = _enrol(user_a)
    client = _password(user_a.username).client
    _enter(client, codes[0])

    wrong = client.post("/account/security/", {"action": "disable", "code": "zzzzzzzz"})
    assert _refused(wrong)
    user_a.refresh_from_db()
    assert user_a.two_factor_enabled

    off = client.post("/account/security/", {"action": "disable", "code": codes[1]})

    assert off.status_code == 302
    user_a.refresh_from_db()
    assert not user_a.two_factor_enabled
    assert not TOTPDevice.objects.filter(user=user_a).exists()
    assert not StaticDevice.objects.filter(user=user_a).exists()
    assert AuditEvent.objects.filter(action="two_factor_disabled", actor=user_a).exists()
    assert _password(user_a.username).status_code == 302
    assert _password(user_a.username)["Location"] == "/"


# --- who must have it ------------------------------------------------------------------------


@pytest.mark.django_db
def test_require_admin_2fa_sends_system_admins_to_enrolment_first(
    sysadmin: User, admin_a: User, client_for: ClientFor, settings: Any, clock: Any
) -> None:
    settings.REQUIRE_ADMIN_2FA = True
    client = client_for(sysadmin)

    for path in ("/admin/", "/admin/tenants/tenant/", "/inbox/", "/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/account/security/", path
    page = client.get("/account/security/")
    assert page.status_code == 200
    assert b"required for your account" in page.content
    # Tenant administrators are not system administrators.
    assert client_for(admin_a).get("/tenant/").status_code == 200

    client.post("/account/security/", {"action": "start"})
    device = TOTPDevice.objects.get(user=sysadmin)
    client.post("/account/security/", {"action": "confirm", "code": _code(device)})

    assert client.get("/admin/").status_code == 200
    refused = client.post("/account/security/", {"action": "disable", "code": "abcdefgh"})
    assert _refused(refused)
    assert b"required for your account" in refused.content
    sysadmin.refresh_from_db()
    assert sysadmin.two_factor_enabled


@pytest.mark.django_db
def test_without_the_setting_system_admins_need_no_second_factor(
    sysadmin: User, client_for: ClientFor
) -> None:
    assert client_for(sysadmin).get("/admin/").status_code == 200


@pytest.mark.django_db
def test_a_tenant_may_require_two_factor_of_its_administrators_only(
    admin_a: User, user_a: User, admin_b: User, client_for: ClientFor
) -> None:
    tenant_update(tenant=admin_a.tenant, require_admin_2fa=True)

    held = client_for(admin_a).get("/tenant/")
    assert held.status_code == 302
    assert held["Location"] == "/account/security/"
    assert client_for(user_a).get("/inbox/").status_code == 200
    assert client_for(admin_b).get("/tenant/").status_code == 200


@pytest.mark.django_db
def test_system_admins_set_the_tenant_requirement_in_the_tenant_admin(
    sysadmin: User, tenant_a: Tenant, client_for: ClientFor
) -> None:
    client = client_for(sysadmin)
    url = f"/admin/tenants/tenant/{tenant_a.pk}/change/"
    form = client.get(url)
    assert b'name="require_admin_2fa"' in form.content

    response = client.post(
        url,
        {
            "name": tenant_a.name,
            "slug": tenant_a.slug,
            "enabled": "on",
            "message_channels_enabled": "on",
            "require_admin_2fa": "on",
            "country": tenant_a.country,
            "timezone": tenant_a.timezone,
        },
    )

    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.require_admin_2fa


@pytest.mark.django_db
def test_the_tenant_api_reads_and_sets_the_requirement(sysadmin: User, tenant_a: Tenant) -> None:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(sysadmin)
    url = f"/api/v1/admin/tenants/{tenant_a.pk}/"

    response = client.patch(url, {"require_admin_2fa": True}, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["require_admin_2fa"] is True
    tenant_a.refresh_from_db()
    assert tenant_a.require_admin_2fa


# --- resetting another user's second factor --------------------------------------------------


@pytest.mark.django_db
def test_a_system_admin_resets_a_users_two_factor(
    sysadmin: User, user_a: User, client_for: ClientFor
) -> None:
    _enrol(user_a)

    response = client_for(sysadmin).post(
        "/admin/tenants/user/",
        {"action": "reset_two_factor", "_selected_action": [user_a.pk]},
    )

    assert response.status_code == 302
    user_a.refresh_from_db()
    assert not user_a.two_factor_enabled
    assert not TOTPDevice.objects.filter(user=user_a).exists()
    event = AuditEvent.objects.get(action="two_factor_reset")
    assert (event.actor, event.object_id) == (sysadmin, str(user_a.pk))


@pytest.mark.django_db
def test_a_tenant_admin_cannot_reset_another_tenants_user(
    admin_a: User, user_a: User, user_b: User, client_for: ClientFor
) -> None:
    _enrol(user_a)
    _enrol(user_b)
    client = client_for(admin_a)

    response = client.post(
        "/tenant/tenants/user/",
        {"action": "reset_two_factor", "_selected_action": [user_b.pk, user_a.pk]},
    )

    assert response.status_code == 302
    user_a.refresh_from_db()
    user_b.refresh_from_db()
    assert not user_a.two_factor_enabled
    assert user_b.two_factor_enabled
    assert not AuditEvent.objects.filter(action="two_factor_reset", object_id=str(user_b.pk))


@pytest.mark.django_db
def test_recovery_codes_are_never_all_digits(user_a: User, monkeypatch: Any) -> None:
    tokens = iter(["23456723", "abcdefgh", *[f"code{n}abc" for n in range(9)]])
    monkeypatch.setattr(StaticToken, "random_token", staticmethod(lambda: next(tokens)))
    _enrol(user_a)

    codes = list(StaticToken.objects.filter(device__user=user_a).values_list("token", flat=True))
    assert "23456723" not in codes
    assert len(codes) == 10


@pytest.mark.django_db
def test_the_security_page_shows_only_the_signed_in_users_own_secret(
    user_a: User, user_b: User, client_for: ClientFor
) -> None:
    two_factor_enrolment_start(user=user_b)
    other_secret = TOTPDevice.objects.get(user=user_b).config_url.split("secret=")[1][:16]

    page = client_for(user_a).get("/account/security/")

    assert page.status_code == 200
    assert b"is <strong>off</strong>" in page.content
    assert other_secret.encode() not in page.content
    assert b"totp-secret" not in page.content


@pytest.mark.django_db
def test_the_user_admin_shows_who_has_two_factor_sign_in(
    sysadmin: User, user_a: User, user_b: User, client_for: ClientFor
) -> None:
    _enrol(user_a)
    client = client_for(sysadmin)

    listed = client.get("/admin/tenants/user/?two_factor_enabled__exact=1")
    change = client.get(f"/admin/tenants/user/{user_a.pk}/change/")

    assert listed.status_code == 200
    assert user_a.username.encode() in listed.content
    assert user_b.username.encode() not in listed.content
    assert change.status_code == 200
    assert b"Two-factor sign-in" in change.content
    # The device's secret and the recovery codes are never shown in the admin.
    key = TOTPDevice.objects.get(user=user_a).key
    assert key.encode() not in change.content
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get("/admin/otp_static/staticdevice/").status_code == 404
