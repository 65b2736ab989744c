"""URLs of the VoIP.ms sandbox, mounted at /sandbox/voipms/ when VOIPMS_SANDBOX is on."""

from __future__ import annotations

from django.urls import path

from trunks.voipms.sandbox import views

urlpatterns = [
    path("api/v1/rest.php", views.rest_api, name="sandbox_api"),
    path("media/", views.media, name="sandbox_media"),
    path("phone/", views.phone, name="sandbox_phone"),
    path("phone/thread/", views.phone_thread, name="sandbox_phone_thread"),
]
