from __future__ import annotations

from django.urls import path

from mailboxes import views

urlpatterns = [
    path("accounts/", views.account_list, name="mail-accounts"),
    path("accounts/add/", views.account_add, name="mail-account-add"),
    path("accounts/<int:account_id>/remove/", views.account_remove, name="mail-account-remove"),
]
