from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailboxesConfig(AppConfig):
    """Users' mail accounts, folders, messages and the IMAP/POP3 sync engine (issue #4)."""

    name = "mailboxes"
    verbose_name = _("Mailboxes")
