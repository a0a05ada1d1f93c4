from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SpamConfig(AppConfig):
    """Spam rules, sender authentication verdicts and the per-user classifier (issue 8)."""

    name = "spam"
    verbose_name = _("Spam and filters")

    def ready(self) -> None:
        from mail.signals import spam_reported
        from mailboxes.signals import incoming_mail
        from spam import pipeline

        # New Inbox mail is filtered in the sync's transaction; Report spam / Not spam teach.
        incoming_mail.connect(pipeline.on_incoming_mail, dispatch_uid="spam.filter")
        spam_reported.connect(pipeline.on_spam_reported, dispatch_uid="spam.learn")
