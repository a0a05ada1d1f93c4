"""The outbox: a queued draft goes out over SMTP exactly once, or comes back with the reason.

Every step records its outcome before the next one starts, and each is idempotent:

1. **claim** (conditional UPDATE): queued or retrying and due, or sending under a lease that ran
   out (a killed worker) → sending, under a new lease;
2. **freeze**: the bytes are built once (Message-ID and Date included) and stored; a retry sends
   the very same bytes, DKIM-signed when the domain has an active key (``compose.dkim``);
3. **submit**: SMTP with verified TLS and AUTH; the moment the server accepts, the row becomes
   *accepted* and commits — nothing after this point can send it again;
4. **file**: a copy appended to the account's Sent folder over IMAP, unless one with the same
   Message-ID is already there or the server files sent mail itself (Gmail); the draft copy in
   the IMAP Drafts folder is removed → *done*.

Failures: 4xx replies, timeouts, refused connections are retried with backoff (30 s·2^n) for
``SEND_RETRY_SECONDS``; 5xx replies and problems only the user can fix (authentication, a
certificate, a recipient refused) put the message back in the drafts with the server's words.
The one window no client can close: a worker killed after the server accepted the final "." of
DATA and before the *accepted* row commits; the message may then go twice.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from datetime import timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from imapclient import IMAPClient

from compose import dkim
from compose.models import Contact, Draft
from mailboxes import live, rawstore
from mailboxes.models import Folder, MailAccount
from mailboxes.sync import open_imap, outgoing_settings
from mailcore import compose as mime_out
from mailcore import connect

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
BACKOFF_BASE = 30  # seconds; doubled at each attempt
BACKOFF_MAX = 30 * 60
# Problems the user must fix: retrying would not help.
PERMANENT_PROBLEMS = {
    connect.Problem.AUTHENTICATION,
    connect.Problem.TLS_CERTIFICATE,
    connect.Problem.CAPABILITY,
    connect.Problem.STARTTLS_UNSUPPORTED,
    connect.Problem.DNS,
}


class Permanent(Exception):
    """The server said no for good (5xx), or only the user can fix what is wrong."""


class Transient(Exception):
    """Worth another try later (4xx, timeout, refused connection)."""


def new_message_id(from_email: str) -> str:
    domain = from_email.rpartition("@")[2] or "courrier.invalid"
    return make_msgid(domain=domain.encode("idna").decode("ascii")).strip("<>")


# Claiming ---------------------------------------------------------------------------------------


def claim(draft_id: int) -> tuple[Draft | None, str]:
    """Take the message for this worker; returns it and the lease token, or (None, "")."""
    now = timezone.now()
    token = secrets.token_hex(8)
    due = Q(state__in=[Draft.State.QUEUED, Draft.State.RETRYING], send_at__lte=now)
    abandoned = Q(state=Draft.State.SENDING, lease_until__lt=now)
    claimed = (
        Draft.objects.filter(pk=draft_id)
        .filter(due | abandoned)
        .update(state=Draft.State.SENDING, lease_until=now + LEASE, lease_token=token)
    )
    if not claimed:
        return None, ""
    return Draft.objects.select_related("account").get(pk=draft_id), token


def _held(draft: Draft, token: str) -> QuerySet[Draft]:
    """The row, as long as this worker still holds it."""
    return Draft.objects.filter(pk=draft.pk, state=Draft.State.SENDING, lease_token=token)


# Freezing ---------------------------------------------------------------------------------------


def outgoing(
    draft: Draft, *, with_attachments: bool = True, lenient: bool = False
) -> mime_out.Outgoing:
    """The message as mailcore.compose builds it. Raises BadAddress / HeaderInjection, except
    that a `lenient` build (the IMAP Drafts copy) leaves out recipients it cannot read."""

    def recipients(text: str, name: str) -> list[tuple[str, str]]:
        try:
            return mime_out.parse_recipients(text, name)
        except ValueError:
            if lenient:
                return []
            raise

    attachments = []
    for attachment in draft.attachments.all() if with_attachments else ():
        with default_storage.open(attachment.path, "rb") as file:
            data = file.read()
        attachments.append(mime_out.Attachment(attachment.filename, attachment.content_type, data))
    if with_attachments and draft.forwarding_id and draft.forward_as_attachment:
        original = draft.forwarding
        if original is not None:
            data = rawstore.read(original.content)
            name = (original.content.subject or "message")[:120] + ".eml"
            attachments.append(mime_out.Attachment(name, "message/rfc822", data, True))
    return mime_out.Outgoing(
        from_email=draft.from_email,
        from_name=draft.from_name,
        message_id=draft.message_id,
        date=timezone.now(),
        to=recipients(draft.to, "to"),
        cc=recipients(draft.cc, "cc"),
        bcc=[] if lenient else recipients(draft.bcc, "bcc"),
        subject=draft.subject,
        text=draft.text,
        html=draft.html or None,
        in_reply_to=draft.in_reply_to,
        references=list(draft.references),
        attachments=attachments,
    )


def freeze(draft: Draft) -> bytes:
    """The bytes to send, built and stored once: a retry sends exactly the same message."""
    if draft.raw_path and default_storage.exists(draft.raw_path):
        with default_storage.open(draft.raw_path, "rb") as file:
            return file.read()
    raw = mime_out.build(outgoing(draft)).as_bytes()
    raw = dkim.sign(raw, draft.from_email.rpartition("@")[2])
    path = default_storage.save(f"outbox/{draft.user_id}/{draft.pk}.eml", ContentFile(raw))
    Draft.objects.filter(pk=draft.pk).update(raw_path=path)
    draft.raw_path = path
    return raw


# Submitting -------------------------------------------------------------------------------------


def submit(draft: Draft, raw: bytes) -> tuple[str, dict[str, str]]:
    """Hand the bytes to the account's SMTP server; returns its reply and refused recipients."""
    message = outgoing(draft, with_attachments=False)
    sender, recipients = mime_out.envelope(message)
    utf8 = mime_out.needs_smtputf8(message)
    try:
        client = connect.open_smtp(
            outgoing_settings(vars(draft.account)), ca_file=settings.MAIL_CA_FILE or None
        )
    except connect.ConnectionFailed as failure:
        text = f"{failure.problem.value}: {failure.detail}"
        raise (Permanent if failure.problem in PERMANENT_PROBLEMS else Transient)(text) from failure
    try:
        if utf8 and not client.has_extn("smtputf8"):
            raise Permanent("the server cannot send to addresses with non-ASCII characters")
        options = ["SMTPUTF8"] if utf8 else []
        refused = client.sendmail(sender, recipients, raw, mail_options=options)
        reply = "250 accepted"
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _text in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {text.decode(errors='replace')}"
            for rcpt, (code, text) in exc.recipients.items()
        )
        raise (Permanent if all(code >= 500 for code in codes) else Transient)(detail) from exc
    except smtplib.SMTPResponseException as exc:
        detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        raise (Permanent if exc.smtp_code >= 500 else Transient)(detail) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from exc
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
    return reply, {rcpt: f"{code} {_text(text)}" for rcpt, (code, text) in (refused or {}).items()}


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# Filing -----------------------------------------------------------------------------------------


def file_sent_copy(draft: Draft, raw: bytes) -> None:
    """Put the copy in Sent (once) and drop the server's draft copy. Raises Transient."""
    account = draft.account
    if account.protocol == MailAccount.Protocol.POP3:
        _file_locally(draft, raw)
        return
    try:
        client = open_imap(account)
    except connect.ConnectionFailed as failure:
        raise Transient(f"{failure.problem.value}: {failure.detail}") from failure
    try:
        with client:  # logs out, or shuts a broken connection down
            # Gmail files what its SMTP server sends; a copy of ours would be a duplicate.
            if b"X-GM-EXT-1" not in client.capabilities():
                sent = account.folders.filter(role=Folder.Role.SENT).first()
                name = sent.name if sent is not None else "Sent"
                if sent is None and not client.folder_exists(name):
                    client.create_folder(name)
                client.select_folder(name)
                already = client.search(["HEADER", "Message-ID", f"<{draft.message_id}>"])
                if not already:
                    client.append(name, raw, flags=[b"\\Seen"])
            drafts = account.folders.filter(role=Folder.Role.DRAFTS).first()
            if draft.server_uid is not None and drafts is not None:
                drop_draft_copy(client, drafts.name, draft.server_uid, draft.server_uidvalidity)
    except Exception as exc:  # imapclient raises several kinds; all mean "try again later"
        raise Transient(f"{type(exc).__name__}: {exc}") from exc


def drop_draft_copy(client: IMAPClient, folder: str, uid: int, uidvalidity: int | None) -> None:
    """Delete a draft's copy on the server, unless its folder was renumbered since (the UID
    would then name another message)."""
    if client.select_folder(folder).get(b"UIDVALIDITY") == uidvalidity:
        client.delete_messages([uid])
        client.uid_expunge([uid])


def _file_locally(draft: Draft, raw: bytes) -> None:
    """POP3 accounts have no server folders: the Sent copy lives here."""
    from mailboxes.models import Message
    from mailboxes.sync import store_content

    sent, _created = Folder.objects.get_or_create(
        account=draft.account, name="Sent", defaults={"role": Folder.Role.SENT}
    )
    content = store_content(draft.account, raw)
    if not sent.messages.filter(content=content).exists():
        Message.objects.create(
            folder=sent,
            content=content,
            conversation_id=content.conversation_id,
            seen=True,
            date=content.date or timezone.now(),
        )


# The whole journey ------------------------------------------------------------------------------


def send(draft_id: int) -> str:
    """One attempt at the message: returns the state it ended in (or "" if not ours to send)."""
    accepted = Draft.objects.filter(pk=draft_id, state=Draft.State.ACCEPTED).first()
    if accepted is not None:
        return _finish(accepted)
    draft, token = claim(draft_id)
    if draft is None:
        return ""
    if draft.first_attempt_at is None:
        draft.first_attempt_at = timezone.now()
        Draft.objects.filter(pk=draft.pk).update(first_attempt_at=draft.first_attempt_at)
    try:
        raw = freeze(draft)
        reply, refused = submit(draft, raw)
    except (mime_out.BadAddress, mime_out.HeaderInjection) as exc:
        return _return_to_drafts(draft, token, str(exc))
    except Permanent as exc:
        return _return_to_drafts(draft, token, str(exc))
    except Transient as exc:
        return _retry_later(draft, token, str(exc))
    # Recorded at once: from here on the message is never sent again.
    now = timezone.now()
    _held(draft, token).update(
        state=Draft.State.ACCEPTED,
        accepted_at=now,
        smtp_reply=reply,
        refused=refused,
        last_error="",
        lease_until=None,
    )
    draft.refresh_from_db()
    _remember_recipients(draft)
    return _finish(draft)


def _finish(draft: Draft) -> str:
    """Accepted → done: the Sent copy. A failure leaves it accepted for the next pass."""
    with default_storage.open(draft.raw_path, "rb") as file:
        raw = file.read()
    try:
        file_sent_copy(draft, raw)
    except Transient as exc:
        logger.info("filing draft %s in Sent failed, will retry: %s", draft.pk, exc)
        Draft.objects.filter(pk=draft.pk).update(last_error=str(exc)[:2000])
        return Draft.State.ACCEPTED
    Draft.objects.filter(pk=draft.pk, state=Draft.State.ACCEPTED).update(
        state=Draft.State.DONE, done_at=timezone.now(), last_error=""
    )
    live.bump(draft.user_id)
    _sync_soon(draft.account_id)
    return Draft.State.DONE


def _retry_later(draft: Draft, token: str, reason: str) -> str:
    attempts = draft.attempts + 1
    started = draft.first_attempt_at or timezone.now()
    delay = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_MAX)
    if timezone.now() + timedelta(seconds=delay) > started + timedelta(
        seconds=settings.SEND_RETRY_SECONDS
    ):
        return _return_to_drafts(draft, token, f"gave up after {attempts} attempts: {reason}")
    _held(draft, token).update(
        state=Draft.State.RETRYING,
        attempts=attempts,
        send_at=timezone.now() + timedelta(seconds=delay),
        last_error=reason[:2000],
        lease_until=None,
    )
    _schedule(draft.pk, delay)
    return Draft.State.RETRYING


def _return_to_drafts(draft: Draft, token: str, reason: str) -> str:
    _held(draft, token).update(
        state=Draft.State.DRAFT,
        last_error=reason[:2000],
        send_at=None,
        lease_until=None,
        raw_path="",  # rebuilt from the corrected draft next time
        first_attempt_at=None,
        attempts=0,
    )
    live.bump(draft.user_id)
    return Draft.State.DRAFT


def _remember_recipients(draft: Draft) -> None:
    now = timezone.now()
    for text in (draft.to, draft.cc, draft.bcc):
        try:
            pairs = mime_out.parse_recipients(text, "to")
        except ValueError:
            continue
        for name, address in pairs:
            contact, _created = Contact.objects.get_or_create(
                user_id=draft.user_id, email=address.lower()[:320], defaults={"name": name[:200]}
            )
            contact.times += 1
            contact.last_used_at = now
            if name and not contact.edited:
                contact.name = name[:200]
            contact.save(update_fields=["times", "last_used_at", "name"])


def _schedule(draft_id: int, delay: float) -> None:
    from compose.tasks import send_draft

    transaction.on_commit(lambda: send_draft.apply_async((draft_id,), countdown=max(delay, 0)))


def _sync_soon(account_id: int) -> None:
    from mailboxes.tasks import sync_account

    transaction.on_commit(lambda: sync_account.delay(account_id))


def due_ids() -> list[int]:
    """Messages a pass of the scheduler should (re)start: due, abandoned, or not yet filed."""
    now = timezone.now()
    return list(
        Draft.objects.filter(
            Q(state__in=[Draft.State.QUEUED, Draft.State.RETRYING], send_at__lte=now)
            | Q(state=Draft.State.SENDING, lease_until__lt=now)
            | Q(state=Draft.State.ACCEPTED)
        ).values_list("pk", flat=True)[:500]
    )
