from __future__ import annotations

from django.urls import path

from mail import message_views

urlpatterns = [
    path("message/<int:message_id>/", message_views.show_message, name="mail-message"),
    path("message/<int:message_id>/body/", message_views.show_body, name="mail-message-body"),
    path(
        "message/<int:message_id>/part/<str:part>/",
        message_views.download_part,
        name="mail-message-part",
    ),
    path("message/<int:message_id>/image/", message_views.proxy_image, name="mail-image-proxy"),
    path("message/<int:message_id>/raw/", message_views.show_source, name="mail-message-raw"),
    path("message/<int:message_id>/print/", message_views.print_message, name="mail-message-print"),
    path(
        "message/<int:message_id>/trust-sender/",
        message_views.trust_sender,
        name="mail-message-trust-sender",
    ),
]
