from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from core.crypto import EncryptedTextField


class Security(models.TextChoices):
    TLS = "tls", _("TLS (recommended)")
    STARTTLS = "starttls", _("STARTTLS")
    PLAIN = "plain", _("None — insecure")


class MailAccount(models.Model):
    """One mailbox a user reads through Courrier: where to fetch from and where to send through."""

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_accounts"
    )
    email = models.EmailField(_("email address"), max_length=254)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)

    protocol = models.CharField(
        _("incoming protocol"), max_length=4, choices=Protocol.choices, default=Protocol.IMAP
    )
    incoming_host = models.CharField(_("incoming server"), max_length=253)
    incoming_port = models.PositiveIntegerField(_("port"), default=993)
    incoming_security = models.CharField(
        _("security"), max_length=8, choices=Security.choices, default=Security.TLS
    )
    username = models.CharField(_("user name"), max_length=254)
    password = EncryptedTextField(_("password"))

    smtp_host = models.CharField(_("outgoing server"), max_length=253)
    smtp_port = models.PositiveIntegerField(_("port"), default=465)
    smtp_security = models.CharField(
        _("security"), max_length=8, choices=Security.choices, default=Security.TLS
    )
    # Blank: the incoming credentials, which most providers share.
    smtp_username = models.CharField(_("user name"), max_length=254, blank=True)
    smtp_password = EncryptedTextField(_("password"), blank=True)

    # Plain connections are refused unless the user ticked this, and the UI warns while it is on.
    allow_insecure = models.BooleanField(_("allow unencrypted connections"), default=False)

    # POP3 only: Courrier keeps the copy; the server may keep one too.
    pop3_leave_on_server = models.BooleanField(_("leave messages on the server"), default=True)
    pop3_delete_after_days = models.PositiveIntegerField(
        _("delete from the server after (days)"), null=True, blank=True
    )
    pop3_delete_when_deleted = models.BooleanField(
        _("delete from the server when deleted here"), default=False
    )

    created_at = models.DateTimeField(_("added"), auto_now_add=True)
    last_success_at = models.DateTimeField(_("last successful sync"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)

    class Meta:
        verbose_name = _("mail account")
        verbose_name_plural = _("mail accounts")
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                "user", Lower("email"), name="mailboxes_account_user_email_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(incoming_security="plain", allow_insecure=False)
                & ~models.Q(smtp_security="plain", allow_insecure=False),
                name="mailboxes_account_plain_needs_opt_in",
            ),
        ]

    def __str__(self) -> str:
        return self.email
