from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from mailboxes.models import MailAccount, Message


class Identity(models.Model):
    """An address the user sends as from one account: its own, or an alias with its own name and
    signature."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="identities")
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("address"), max_length=320)
    signature = models.TextField(_("signature"), blank=True, max_length=4000)
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [models.UniqueConstraint("account", "email", name="compose_identity_unique")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class Draft(models.Model):
    """One message being written or sent: the same row from the first keystroke to the Sent copy.

    draft → queued (undo window, or "send later") → sending (claimed by a worker under a lease)
    → accepted (the SMTP server took it: recorded before anything else) → done (the copy is in
    Sent). A transient failure goes to retrying (with backoff, for a bounded time); a permanent
    one back to draft, with the server's reply in ``last_error``.
    """

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Waiting to retry")
        ACCEPTED = "accepted", _("Accepted by the server")
        DONE = "done", pgettext_lazy("outbox state", "Sent")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="drafts")
    identity = models.ForeignKey(Identity, on_delete=models.SET_NULL, null=True, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    from_email = models.CharField(max_length=320)
    # As typed (comma-separated); parsed and checked when queued.
    to = models.TextField(blank=True, max_length=20000)
    cc = models.TextField(blank=True, max_length=20000)
    bcc = models.TextField(blank=True, max_length=20000)
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)  # sanitised on save
    text = models.TextField(blank=True)  # the plain-text alternative, made from the HTML
    message_id = models.CharField(max_length=255, unique=True)
    in_reply_to = models.CharField(max_length=995, blank=True)
    references = models.JSONField(default=list)
    replying_to = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    forwarding = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    forward_as_attachment = models.BooleanField(default=False)

    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    send_at = models.DateTimeField(null=True, blank=True, db_index=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    raw_path = models.CharField(max_length=300, blank=True)  # the bytes sent, frozen once built
    accepted_at = models.DateTimeField(null=True, blank=True)
    smtp_reply = models.TextField(blank=True)
    refused = models.JSONField(default=dict)  # recipients the server refused, with its reply
    done_at = models.DateTimeField(null=True, blank=True)

    version = models.PositiveIntegerField(default=0)  # every save of the text bumps it
    server_version = models.PositiveIntegerField(default=0)  # the version in the IMAP Drafts
    server_uid = models.BigIntegerField(null=True, blank=True)
    server_uidvalidity = models.BigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "state"], name="compose_draft_user_state")]

    def __str__(self) -> str:
        return self.subject or self.message_id


class DraftAttachment(models.Model):
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="attachments")
    path = models.CharField(max_length=300)  # in Django's default storage
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class Contact(models.Model):
    """Someone the user exchanged mail with: autocomplete ranks by how often and how lately."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts"
    )
    email = models.CharField(_("address"), max_length=320)  # lower-cased
    name = models.CharField(_("name"), max_length=200, blank=True)
    times = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    edited = models.BooleanField(default=False)  # the user changed the name: keep it

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-times", "email"]
        constraints = [models.UniqueConstraint("user", "email", name="compose_contact_unique")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email
