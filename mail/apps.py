from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailConfig(AppConfig):
    """The webmail: conversation lists, reading, actions, search and settings (issue #5)."""

    name = "mail"
    verbose_name = _("Webmail")
