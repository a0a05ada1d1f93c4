from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DomainsConfig(AppConfig):
    """The admin side: managed mail domains, their DKIM keys, DNS health, spam rules (issue #7)."""

    name = "domains"
    verbose_name = _("Mail domains")

    def ready(self) -> None:
        # Outgoing mail of managed domains is signed with their active DKIM keys.
        from compose import dkim as compose_dkim
        from domains.dkim import signer

        compose_dkim.register(signer)
