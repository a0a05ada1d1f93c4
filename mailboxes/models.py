from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
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
    # A lease, not a lock: a crashed worker's claim runs out and another may sync.
    sync_lease_until = models.DateTimeField(null=True, blank=True)
    sync_lease_token = models.CharField(max_length=32, blank=True)
    # Set by a sync that found the lease taken: the holder makes one more pass before it lets go,
    # so a change noticed meanwhile (IMAP push) is not left for the periodic pass.
    sync_again = models.BooleanField(default=False)

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


class Folder(models.Model):
    """A mailbox on the IMAP server (or the local Inbox of a POP3 account), with its sync state."""

    class Role(models.TextChoices):
        INBOX = "inbox", _("Inbox")
        SENT = "sent", _("Sent")
        DRAFTS = "drafts", _("Drafts")
        TRASH = "trash", _("Trash")
        JUNK = "junk", _("Junk")
        ARCHIVE = "archive", _("Archive")
        NONE = "", _("Folder")

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="folders")
    # The name as the server lists it, modified UTF-7 already decoded by imapclient.
    name = models.CharField(_("name"), max_length=1000)
    delimiter = models.CharField(_("hierarchy delimiter"), max_length=8, blank=True)
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, blank=True)
    flags = models.JSONField(_("server flags"), default=list)
    subscribed = models.BooleanField(_("subscribed"), default=True)
    selectable = models.BooleanField(_("selectable"), default=True)

    # Sync state, advanced only once the messages it covers are committed.
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uidnext = models.BigIntegerField(null=True, blank=True)
    highestmodseq = models.BigIntegerField(null=True, blank=True)
    # The initial sync goes newest first: every server UID at or above this one is stored.
    synced_down_to_uid = models.BigIntegerField(null=True, blank=True)
    fully_synced = models.BooleanField(default=False)

    total_count = models.PositiveIntegerField(_("messages"), default=0)
    unread_count = models.PositiveIntegerField(_("unread"), default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("folder")
        verbose_name_plural = _("folders")
        ordering = ["account", "name"]
        constraints = [
            models.UniqueConstraint("account", "name", name="mailboxes_folder_account_name_unique")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The last segment of the hierarchy: "Projets/2026" shows as "2026" under "Projets"."""
        if self.delimiter and self.delimiter in self.name:
            return self.name.rsplit(self.delimiter, 1)[1]
        return self.name


class Conversation(models.Model):
    """Messages threaded together (mailcore.threads), across an account's folders."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="conversations")
    subject = models.CharField(max_length=998, blank=True)
    last_date = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.subject or f"#{self.pk}"


class MessageContent(models.Model):
    """One message's bytes and what was parsed from them, stored once per account however many
    folders hold a copy. The raw bytes live in Django's storage (``mailboxes.rawstore``), not in a
    row."""

    # Not indexed alone: every index of this table that an account's lookups use starts with
    # the account. A lone account index misleads PostgreSQL while a new account's first sync
    # outgrows the table's statistics: it read all the account's rows for each batch's
    # Message-ID and hash lookups (48 and 17 ms a batch at 30,000 messages, and growing).
    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="contents", db_index=False
    )
    sha256 = models.CharField(max_length=64)
    raw_path = models.CharField(max_length=300)
    # Where the message starts in a pack of messages (mailboxes.rawstore); null: the file at
    # raw_path holds this message alone.
    raw_offset = models.BigIntegerField(null=True, blank=True)
    size = models.PositiveIntegerField()

    message_id = models.CharField(max_length=995, blank=True)  # mailboxes_content_msgid
    in_reply_to = models.CharField(max_length=995, blank=True)
    references = models.JSONField(default=list)
    subject = models.CharField(max_length=998, blank=True)
    from_name = models.CharField(max_length=300, blank=True)
    from_email = models.CharField(max_length=320, blank=True)
    # Lists of [name, address] pairs.
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list)
    reply_to = models.JSONField(default=list)
    date = models.DateTimeField(null=True, blank=True)
    date_offset_minutes = models.SmallIntegerField(null=True, blank=True)
    has_attachments = models.BooleanField(default=False)
    attachments = models.JSONField(default=list)
    snippet = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    list_id = models.CharField(max_length=300, blank=True)
    auth_headers = models.JSONField(default=dict)
    parse_warnings = models.JSONField(default=list)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="contents"
    )
    # For threading (mailcore.threads): the subject without Re:/Fwd:/[list] and whether it had one.
    thread_subject = models.CharField(max_length=255, blank=True)
    is_reply = models.BooleanField(default=False)
    # What search looks through: subject, addresses, attachment names and the body text,
    # indexed for full-text search on PostgreSQL (mailboxes.search).
    search_text = models.TextField(blank=True)
    # The sync stores a message with its header fields only; mailboxes.indexing parses the body
    # (text, snippet, attachments, the rest of search_text) afterwards and sets this.
    indexed = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account", "sha256", name="mailboxes_content_account_sha_unique"
            )
        ]
        indexes = [
            # The threading's lookups of a batch's Message-IDs and references.
            models.Index(fields=["account", "message_id"], name="mailboxes_content_msgid"),
            models.Index(
                fields=["account", "thread_subject", "date"], name="mailboxes_content_subj"
            ),
            models.Index(
                fields=["account", "-date"],
                condition=models.Q(indexed=False),
                name="mailboxes_content_unindexed",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or self.sha256[:12]


class Reference(models.Model):
    """One Message-ID a stored message refers to (In-Reply-To, References), for threading: a
    parent synced after its replies finds them through this table."""

    # Indexed by mailboxes_reference_id, which starts with it (see MessageContent.account).
    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    content = models.ForeignKey(
        MessageContent, on_delete=models.CASCADE, related_name="reference_rows"
    )
    message_id = models.CharField(max_length=995)

    class Meta:
        indexes = [models.Index(fields=["account", "message_id"], name="mailboxes_reference_id")]

    def __str__(self) -> str:
        return self.message_id


class Message(models.Model):
    """A copy of a message in one folder: its server identity and flags."""

    # Indexed by the (folder, …) indexes below, which start with it (see MessageContent.account).
    folder = models.ForeignKey(
        Folder, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    content = models.ForeignKey(MessageContent, on_delete=models.PROTECT, related_name="copies")
    # IMAP identity: (folder, uidvalidity, uid). POP3 copies have no UID but a UIDL.
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    pop3_uidl = models.CharField(max_length=70, blank=True)
    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    keywords = models.JSONField(default=list)
    modseq = models.BigIntegerField(null=True, blank=True)
    # Copied from the content so that a folder's list sorts on one table.
    date = models.DateTimeField(null=True, blank=True)
    # The content's conversation, copied so that a list's conversation summaries read this
    # table and its index alone (mail.listing). Whatever sets or changes the content's sets this
    # too: the sync's copies, the threading's merges, POP3, compose's local Sent copies.
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        db_index=False,  # the first column of mailboxes_msg_conversation
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "folder",
                "uidvalidity",
                "uid",
                name="mailboxes_message_folder_uid_unique",
                condition=models.Q(uid__isnull=False),
            ),
            models.UniqueConstraint(
                "folder",
                "pop3_uidl",
                name="mailboxes_message_folder_uidl_unique",
                condition=~models.Q(pop3_uidl=""),
            ),
        ]
        indexes = [
            models.Index(fields=["folder", "-date", "-id"], name="mailboxes_msg_folder_date"),
            # Lists over several folders (a search, Starred) walk the dates across them.
            models.Index(fields=["-date", "-id"], name="mailboxes_msg_date"),
            # Unread counts per folder (of conversations), computed here so that they follow
            # local actions at once.
            models.Index(
                fields=["folder", "conversation"],
                condition=models.Q(seen=False),
                name="mailboxes_msg_unread_threads",
            ),
            # A conversation's messages: the lists' summaries and the threading's merges. On
            # PostgreSQL it also holds what the summaries read (migration 0014).
            models.Index(fields=["conversation", "folder"], name="mailboxes_msg_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.folder} #{self.uid or self.pop3_uidl}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A copy created one by one (POP3, compose, the admin, tests) is in its content's
        # conversation; the sync's bulk INSERT sets it itself.
        if self._state.adding and self.conversation_id is None and self.content_id is not None:
            self.conversation_id = self.content.conversation_id
        super().save(*args, **kwargs)


class Keyword(models.Model):
    """An IMAP keyword seen on, or set on, one of the account's messages: the webmail's labels.

    Recorded by the sync and by the user's actions so that the list of labels costs one small
    query, not a scan of every message's keywords."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="keywords")
    name = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint("account", "name", name="mailboxes_keyword_unique")]

    def __str__(self) -> str:
        return self.name


class PendingAction(models.Model):
    """A change the user made here that the IMAP server has not been told of yet.

    Written in the same transaction as the local change, so the interface never waits on the
    server and nothing is lost while it is unreachable; the sync pushes these before it pulls.
    """

    class Kind(models.TextChoices):
        ADD_FLAGS = "add_flags"
        REMOVE_FLAGS = "remove_flags"
        MOVE = "move"
        EXPUNGE = "expunge"  # delete for good (emptying the Trash)

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="pending")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Where the message is on the server when the action is pushed (its UID there).
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    flags = models.JSONField(default=list)
    target = models.ForeignKey(
        Folder, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The row a move concerns: deleting it for good before the move reached the server turns
    # the move into an expunge at its source.
    message = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.folder}#{self.uid}"


class Pop3Download(models.Model):
    """A UIDL this account downloaded from its POP3 server, kept after the copy here is deleted:
    it is not downloaded again, and the server deletes it as the account's options say."""

    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="pop3_downloads"
    )
    uidl = models.CharField(max_length=70)
    downloaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account", "uidl", name="mailboxes_pop3download_account_uidl_unique"
            )
        ]

    def __str__(self) -> str:
        return self.uidl
