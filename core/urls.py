from __future__ import annotations

from django.urls import path

from core import views

urlpatterns = [
    path("", views.home, name="core-home"),
]
