from __future__ import annotations

from django.urls import include, path

from mail import views

urlpatterns = [
    path("inbox/", views.inbox, name="mail-inbox"),
    path("starred/", views.starred, name="mail-starred"),
    path("snoozed/", views.snoozed, name="mail-snoozed"),
    path("folder/<int:folder_id>/", views.folder, name="mail-folder"),
    path("folder/<int:folder_id>/empty/", views.empty_folder, name="mail-folder-empty"),
    path("search/", views.search, name="mail-search"),
    path("conversation/<int:conversation_id>/", views.conversation, name="mail-conversation"),
    path("act/", views.act, name="mail-act"),
    path("undo/<int:undo_id>/", views.undo, name="mail-undo"),
    path("poll/", views.poll, name="mail-poll"),
    path("settings/", views.preferences, name="mail-settings"),
    # Reading one message: its body, parts, source, print view, and the image proxy.
    path("", include("mail.message_urls")),
]
