from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """The last time a background process showed it was alive (worker, scheduler, IDLE listener)."""

    name = models.CharField(_("process"), max_length=64, unique=True)
    seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class SiteSettings(models.Model):
    """Site-wide policy the admin changes at run time. One row (pk=1), created on first read."""

    signup_open = models.BooleanField(
        _("anyone may sign up"),
        default=True,
        help_text=_("Off: invite-only; administrators create the accounts."),
    )
    mfa_required = models.BooleanField(
        _("second factor required for everyone"),
        default=False,
        help_text=_("Staff always need one. On: every user must enrol before using the mail."),
    )

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __str__(self) -> str:
        return str(_("Site settings"))

    @classmethod
    def load(cls) -> SiteSettings:
        settings, _created = cls.objects.get_or_create(pk=1)
        return settings
