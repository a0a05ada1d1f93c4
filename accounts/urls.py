from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("security/", views.security, name="accounts-security"),
    path("security/verify/", views.verify, name="accounts-verify"),
    path("security/authenticator/add/", views.add_totp, name="accounts-totp-add"),
    path(
        "security/authenticator/<int:device_id>/rename/",
        views.rename_totp,
        name="accounts-totp-rename",
    ),
    path(
        "security/authenticator/<int:device_id>/remove/",
        views.remove_totp,
        name="accounts-totp-remove",
    ),
    path("security/backup-codes/", views.backup_codes, name="accounts-backup-codes"),
    path("security/sessions/<int:session_id>/end/", views.end_session, name="accounts-session-end"),
    path("security/sessions/end-others/", views.end_other_sessions, name="accounts-sessions-end"),
    path("security/sessions/end-all/", views.sign_out_everywhere, name="accounts-sessions-end-all"),
]
