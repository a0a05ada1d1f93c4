from __future__ import annotations

from django.contrib import admin

from mailboxes.models import MailAccount


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "user",
        "protocol",
        "incoming_host",
        "last_success_at",
        "last_error_at",
    ]
    list_filter = ["protocol", "incoming_security"]
    search_fields = ["email", "user__email", "incoming_host"]
    list_select_related = ["user"]
    # Passwords are neither shown nor edited here: users manage their own accounts.
    exclude = ["password", "smtp_password"]
    readonly_fields = ["created_at", "last_success_at", "last_error", "last_error_at"]
