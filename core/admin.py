from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from core import services
from core.models import Heartbeat, SiteSettings


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "seen_at"]
    readonly_fields = ["name", "seen_at"]


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "signup_open", "mfa_required"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not SiteSettings.objects.exists()

    def save_model(self, request: HttpRequest, obj: SiteSettings, form: Any, change: bool) -> None:
        if change:
            services.save_site_settings(obj, list(form.changed_data))
        else:
            super().save_model(request, obj, form, change)
            services.forget_site_settings_cache()

    def has_delete_permission(self, request: HttpRequest, obj: SiteSettings | None = None) -> bool:
        return False
