from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

TIME_ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})


class Preferences(models.Model):
    """One user's webmail settings; created with the defaults on first use."""

    class Images(models.TextChoices):
        ASK = "ask", _("Ask before showing remote images")
        ALWAYS = "always", _("Always show remote images (through Courrier's proxy)")

    PAGE_SIZES = [(25, "25"), (50, "50"), (100, "100")]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_preferences"
    )
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True, choices=settings.LANGUAGES)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    conversation_view = models.BooleanField(_("group messages into conversations"), default=True)
    page_size = models.PositiveSmallIntegerField(
        _("conversations per page"), default=50, choices=PAGE_SIZES
    )
    images = models.CharField(
        _("remote images"), max_length=8, choices=Images.choices, default=Images.ASK
    )
    signature = models.TextField(_("signature"), blank=True, max_length=4000)
    shortcuts = models.BooleanField(_("keyboard shortcuts"), default=True)
    undo_send_seconds = models.PositiveSmallIntegerField(
        _("undo send for"),
        default=10,
        choices=[(0, _("no delay")), (5, "5 s"), (10, "10 s"), (20, "20 s"), (30, "30 s")],
    )

    class Meta:
        verbose_name = _("webmail preferences")
        verbose_name_plural = _("webmail preferences")

    def __str__(self) -> str:
        return f"preferences of {self.user}"


class TrustedSender(models.Model):
    """A sender whose remote images the user chose to always show."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_senders"
    )
    address = models.CharField(max_length=320)  # lower-cased
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint("user", "address", name="mail_trustedsender_unique")]

    def __str__(self) -> str:
        return self.address


class UndoableAction(models.Model):
    """What undoes the user's last actions, for the few seconds its "Undo" is offered."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # {"moves": [[message_id, folder_id], ...]} or {"flag": field, "value": bool, "ids": [...]}
    inverse = models.JSONField()

    def __str__(self) -> str:
        return f"undo #{self.pk}"


class Snooze(models.Model):
    """A conversation taken out of the Inbox until a time, when it comes back unread.

    Kept here, not on the IMAP server (IMAP has no such thing): other devices still see the
    conversation in their Inbox."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "mailboxes.Conversation", on_delete=models.CASCADE, related_name="snoozes"
    )
    until = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint("user", "conversation", name="mail_snooze_unique")]

    def __str__(self) -> str:
        return f"snoozed until {self.until:%Y-%m-%d %H:%M}"
