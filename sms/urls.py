"""The inbox of extension users and tenant administrators."""

from __future__ import annotations

from django.urls import path

from sms import views

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("compose/", views.compose, name="inbox_compose"),
    path("conversations.json", views.conversations_json, name="inbox_conversations_json"),
    path("compose/senders/", views.compose_senders_json, name="inbox_compose_senders"),
    path("c/<int:pk>/", views.conversation_detail, name="inbox_conversation"),
    path(
        "c/<int:pk>/messages.json",
        views.conversation_messages_json,
        name="inbox_messages_json",
    ),
    path("c/<int:pk>/reply/", views.conversation_reply_view, name="inbox_reply"),
    path("c/<int:pk>/contact/", views.conversation_contact_view, name="inbox_contact"),
    path("c/<int:pk>/transfer/", views.conversation_transfer_view, name="inbox_transfer"),
    path("m/<int:pk>/retry/", views.message_retry_view, name="inbox_retry"),
    path("media/<int:pk>/", views.media_file, name="inbox_media"),
]
