"""Backend for the app's own outgoing mail (password resets, notices)."""

from __future__ import annotations

import ssl

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.utils.functional import cached_property


class EmailBackend(SMTPBackend):
    """Django's SMTP backend, verifying the server against ``EMAIL_CA_FILE`` when it is set.

    For mail servers whose certificate comes from a private CA; without it the system's CAs are
    used. Verification is never turned off.
    """

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=getattr(settings, "EMAIL_CA_FILE", None) or None
        )
        if self.ssl_certfile or self.ssl_keyfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context
