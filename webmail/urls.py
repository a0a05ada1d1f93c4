from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from django_otp.admin import OTPAdminSite

from core.views import favicon, too_many_requests

# The admin needs a session verified with a second factor, as well as staff status.
admin.site.__class__ = OTPAdminSite
handler429 = too_many_requests

urlpatterns = [
    # Browsers ask for it on pages that name no icon, such as the admin's.
    path("favicon.ico", favicon),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    # One sign-in page for everyone: the admin's own would skip allauth's rate limits.
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="account_login", query_string=True),
        name="admin-login",
    ),
    # Courrier's own admin pages (the operations dashboard), before the admin's catch-all.
    path("admin/courrier/", include("domains.urls")),
    path("admin/", admin.site.urls),
    path("mail/", include("mailboxes.urls")),
    path("mail/", include("mail.urls")),
    path("mail/filters/", include("spam.urls")),
    path("compose/", include("compose.urls")),
    path("", include("core.urls")),
]
