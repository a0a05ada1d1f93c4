from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DomainsConfig(AppConfig):
    """The admin side: managed mail domains, their DKIM keys, DNS health, spam rules (issue #7)."""

    name = "domains"
    verbose_name = _("Mail domains")
