from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComposeConfig(AppConfig):
    """Writing and sending: drafts, the outbox state machine, SMTP, contacts (issue #6)."""

    name = "compose"
    verbose_name = _("Compose and send")
