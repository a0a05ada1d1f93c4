"""The admin's pages that belong to no model; included at /admin/courrier/ (before the admin's own
URLs, whose catch-all would answer first)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from domains import views

urlpatterns = [
    path("dashboard/", admin.site.admin_view(views.dashboard), name="domains-dashboard"),
]
