"""The inbox of extension users and tenant administrators."""

from __future__ import annotations

from django.urls import path

from sms import views

urlpatterns = [
    path("", views.inbox, name="inbox"),
]
