"""The system site's pages from other packages: sign-in records (django-axes), API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.utils import timezone


def _attempt(username: str, age: timedelta) -> AccessAttempt:
    attempt = AccessAttempt.objects.create(
        username=username,
        ip_address="192.0.2.7",
        user_agent="Mozilla/5.0",
        path_info="/login/",
        failures_since_start=1,
    )
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=timezone.now() - age)
    return attempt


@pytest.mark.django_db
def test_cleaning_up_expired_attempts_removes_only_expired_ones(
    sysadmin: Any, client_for: Any
) -> None:
    old = _attempt("old", timedelta(days=2))
    fresh = _attempt("fresh", timedelta(seconds=5))
    response = client_for(sysadmin).post(
        "/admin/axes/accessattempt/",
        {"action": "cleanup_expired_attempts", "_selected_action": [str(old.pk)], "index": "0"},
    )
    assert response.status_code == 302
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == [fresh.username]


@pytest.mark.django_db
def test_no_admin_page_lists_api_tokens(sysadmin: Any, admin_a: Any, client_for: Any) -> None:
    from tenants.services import api_token_create

    token, key = api_token_create(user=admin_a, name="listed")
    client = client_for(sysadmin)
    assert client.get("/admin/authtoken/tokenproxy/").status_code in (302, 404)
    assert key not in client.get("/admin/").content.decode()
    assert key not in client.get("/admin/tenants/apitoken/").content.decode()
    assert token.prefix in client.get("/admin/tenants/apitoken/").content.decode()
