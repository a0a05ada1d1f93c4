"""Drafts: started (new, reply, reply all, forward), saved as the user types, queued, undone,
discarded; and their copy in the account's IMAP Drafts folder, replaced rather than piled up."""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils import formats, timezone
from django.utils.html import escape, format_html, format_html_join, linebreaks
from django.utils.translation import gettext as _

from accounts.models import User
from compose.models import Draft, DraftAttachment, Identity
from compose.sending import drop_draft_copy, new_message_id, outgoing
from mailboxes import rawstore
from mailboxes.models import Folder, MailAccount, Message
from mailboxes.sync import open_imap
from mailcore import compose as mime_out
from mailcore.mime import html_to_text
from mailcore.sanitize import sanitize_html

logger = logging.getLogger(__name__)

SERVER_SAVE_DELAY = 10  # seconds after the last change before the IMAP copy is replaced
MAX_REFERENCES = 20
_PREFIX = re.compile(r"^\s*(re|fwd?|tr|aw|wg)\s*:\s*", re.IGNORECASE)


class NotEditable(Exception):
    """The draft is being sent or was sent: it cannot change any more."""


@dataclass
class Problem(Exception):
    """Why a draft cannot be sent yet, for one form field ("" for the whole form)."""

    field: str
    message: str


# Starting ---------------------------------------------------------------------------------------


def sender_of(user: User, account: MailAccount) -> tuple[str, str, Identity | None]:
    identity = account.identities.filter(is_default=True).first()
    if identity is not None:
        return identity.name, identity.email, identity
    from mail.services import preferences

    return preferences(user).display_name or account.display_name, account.email, None


def signature_html(user: User, identity: Identity | None) -> str:
    from mail.services import preferences

    text = identity.signature if identity is not None and identity.signature else ""
    text = text or preferences(user).signature
    return format_html('<p class="signature">-- <br>{}</p>', linebreaks(text)) if text else ""


@transaction.atomic
def start(
    user: User,
    account: MailAccount | None = None,
    *,
    reply_to: Message | None = None,
    reply_all: bool = False,
    forward: Message | None = None,
    as_attachment: bool = False,
) -> Draft:
    original = reply_to or forward
    if original is not None:
        account = original.folder.account
    if account is None:
        account = MailAccount.objects.filter(user=user).order_by("pk").first()
    if account is None:
        raise Problem("", _("Add a mail account before writing a message."))
    name, address, identity = sender_of(user, account)
    draft = Draft(
        user=user,
        account=account,
        identity=identity,
        from_name=name,
        from_email=address,
        message_id=new_message_id(address),
    )
    body = signature_html(user, identity)
    if reply_to is not None:
        content = reply_to.content
        own = _own_addresses(user)
        answer = content.reply_to or [[content.from_name, content.from_email]]
        draft.to = _join(answer)
        if reply_all:
            others = [p for p in [*content.to, *content.cc] if p[1].lower() not in own]
            others = [p for p in others if p[1].lower() not in {a[1].lower() for a in answer}]
            draft.cc = _join(others)
        draft.subject = _prefixed("Re: ", content.subject)
        draft.in_reply_to = content.message_id
        draft.references = [*content.references, content.message_id][-MAX_REFERENCES:]
        draft.replying_to = reply_to
        body = "<p></p>" + body + _quote(reply_to)
    elif forward is not None:
        draft.subject = _prefixed("Fwd: ", forward.content.subject)
        draft.forwarding = forward
        draft.forward_as_attachment = as_attachment
        body = "<p></p>" + body + ("" if as_attachment else _forwarded(forward))
    draft.html = _clean(body)
    draft.text = html_to_text(draft.html)
    draft.save()
    if forward is not None and not as_attachment:
        _carry_attachments(draft, forward)
    return draft


def _own_addresses(user: User) -> set[str]:
    accounts = {
        a.lower() for a in MailAccount.objects.filter(user=user).values_list("email", flat=True)
    }
    identities = Identity.objects.filter(account__user=user).values_list("email", flat=True)
    return accounts | {i.lower() for i in identities}


def _join(pairs: list[list[str]] | list[tuple[str, str]]) -> str:
    return ", ".join(
        f'"{name.replace(chr(34), "")}" <{address}>' if name else address
        for name, address in pairs
        if address
    )


def _prefixed(prefix: str, subject: str) -> str:
    return subject if _PREFIX.match(subject or "") else f"{prefix}{subject or ''}".strip()


def _when(date: datetime | None) -> str:
    if date is None:
        return ""
    return formats.date_format(timezone.localtime(date), "DATETIME_FORMAT")


def _quote(message: Message) -> str:
    content = message.content
    who = content.from_name or content.from_email
    attribution = _("On %(date)s, %(name)s <%(address)s> wrote:") % {
        "date": _when(content.date),
        "name": who,
        "address": content.from_email,
    }
    return format_html(
        "<p>{}</p><blockquote>{}</blockquote>", attribution, linebreaks(content.body_text)
    )


def _forwarded(message: Message) -> str:
    content = message.content
    rows = [
        (_("From"), f"{content.from_name} <{content.from_email}>"),
        (_("Date"), _when(content.date)),
        (_("Subject"), content.subject),
        (_("To"), ", ".join(address for _name, address in content.to)),
    ]
    header = format_html_join("", "{}: {}<br>", rows)
    return format_html(
        "<p>---------- {} ----------<br>{}</p>{}",
        _("Forwarded message"),
        header,
        linebreaks(content.body_text),
    )


def _carry_attachments(draft: Draft, message: Message) -> None:
    """A forward keeps the original's attachments."""
    try:
        parsed = email.message_from_bytes(
            rawstore.read(message.content), policy=email.policy.default
        )
    except OSError:
        return
    for part in parsed.iter_attachments():  # type: ignore[attr-defined]
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        name = (part.get_filename() or "attachment")[:255]
        _store_attachment(draft, name, part.get_content_type(), data)


# Saving -----------------------------------------------------------------------------------------


def _clean(html: str) -> str:
    """What the editor sent, sanitised: no script, no remote resources."""
    safe = sanitize_html(html, images=False)
    return safe.html if not safe.over_budget else escape(html_to_text(html))


@transaction.atomic
def save(
    draft: Draft,
    *,
    account: MailAccount | None = None,
    identity: Identity | None = None,
    to: str = "",
    cc: str = "",
    bcc: str = "",
    subject: str = "",
    html: str = "",
) -> Draft:
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if locked.state != Draft.State.DRAFT:
        raise NotEditable
    if account is not None and identity is None:
        # The account's own sender (its default identity, if any): also how one switches
        # back from an alias.
        locked.account = account
        name, address, identity_found = sender_of(locked.user, account)
        locked.from_name, locked.from_email, locked.identity = name, address, identity_found
    if identity is not None:
        locked.account = identity.account
        locked.identity = identity
        locked.from_name, locked.from_email = identity.name, identity.email
    locked.to, locked.cc, locked.bcc = to, cc, bcc
    locked.subject = subject[:998]
    locked.html = _clean(html)
    locked.text = html_to_text(locked.html)
    locked.version += 1
    locked.save()
    _push_later(locked.pk)
    return locked


def check(draft: Draft) -> None:
    """Raise Problem for what would stop the message from being sent."""
    fields = {"to": draft.to, "cc": draft.cc, "bcc": draft.bcc}
    found = 0
    for name, text in fields.items():
        try:
            found += len(mime_out.parse_recipients(text, name))
        except mime_out.HeaderInjection:
            raise Problem(name, _("Line breaks are not allowed here.")) from None
        except mime_out.BadAddress as bad:
            raise Problem(
                name, _("“%(text)s” is not an email address.") % {"text": bad.text}
            ) from None
    if not found:
        raise Problem("to", _("Add at least one recipient."))
    try:
        mime_out.build(outgoing(draft, with_attachments=False))
    except mime_out.HeaderInjection as bad:
        raise Problem(bad.field_name, _("Line breaks are not allowed here.")) from None
    except mime_out.BadAddress as bad:
        raise Problem("", _("“%(text)s” is not an email address.") % {"text": bad.text}) from None
    total = draft.attachments.aggregate(total=Sum("size"))["total"] or 0
    if total > attachment_limit(draft):
        raise Problem("", _("The attachments are too large to send."))


@transaction.atomic
def queue(draft: Draft, *, delay: int = 10, send_at: datetime | None = None) -> Draft:
    """Hand the draft to the outbox: sent after `delay` seconds (the undo window) or at
    `send_at`. Raises Problem (the draft stays as it is) or NotEditable."""
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if locked.state != Draft.State.DRAFT:
        raise NotEditable
    check(locked)
    when = send_at or timezone.now() + timedelta(seconds=delay)
    locked.state = Draft.State.QUEUED
    locked.send_at = when
    locked.last_error = ""
    locked.save(update_fields=["state", "send_at", "last_error", "updated_at"])

    from compose.tasks import send_draft

    countdown = max((when - timezone.now()).total_seconds(), 0)
    transaction.on_commit(lambda: send_draft.apply_async((locked.pk,), countdown=countdown))
    return locked


def undo(draft: Draft) -> bool:
    """Take a queued message back to the drafts, if no worker has started sending it."""
    return bool(
        Draft.objects.filter(pk=draft.pk, state=Draft.State.QUEUED).update(
            state=Draft.State.DRAFT, send_at=None
        )
    )


@transaction.atomic
def discard(draft: Draft) -> bool:
    locked = Draft.objects.select_for_update().filter(pk=draft.pk).first()
    if locked is None or locked.state != Draft.State.DRAFT:
        return False
    if locked.server_uid is not None:
        uid, validity, account_id = locked.server_uid, locked.server_uidvalidity, locked.account_id
        transaction.on_commit(lambda: _delete_server_copy(account_id, uid, validity))
    for attachment in locked.attachments.all():
        default_storage.delete(attachment.path)
    locked.delete()
    return True


# Attachments ------------------------------------------------------------------------------------


def attachment_limit(draft: Draft) -> int:
    """The site's limit, or the sender's domain policy when lower."""
    from domains.policies import attachment_limit_for

    return attachment_limit_for(draft.from_email, int(settings.MAX_ATTACHMENTS_BYTES))


def attach(draft: Draft, upload: UploadedFile) -> DraftAttachment:
    if draft.state != Draft.State.DRAFT:
        raise NotEditable
    total = draft.attachments.aggregate(total=Sum("size"))["total"] or 0
    limit = attachment_limit(draft)
    if total + (upload.size or 0) > limit:
        raise Problem("attachment", too_large_message(limit))
    name = re.sub(r"[\r\n\x00]", " ", upload.name or "attachment")[:255]
    # Streamed to storage in chunks, never read whole into memory.
    path = default_storage.save(f"drafts/{draft.user_id}/{draft.pk}/attachment", upload)
    return DraftAttachment.objects.create(
        draft=draft,
        path=path,
        filename=name,
        content_type=(upload.content_type or "application/octet-stream")[:255],
        size=upload.size or default_storage.size(path),
    )


def too_large_message(limit: int) -> str:
    return _("Attachments can weigh %(size)s in all.") % {
        "size": _("%(number)s MB") % {"number": formats.number_format(limit / (1024 * 1024), 0)}
    }


def _store_attachment(draft: Draft, name: str, content_type: str, data: bytes) -> DraftAttachment:
    safe_name = re.sub(r"[\r\n\x00]", " ", name)
    path = default_storage.save(f"drafts/{draft.user_id}/{draft.pk}/attachment", ContentFile(data))
    return DraftAttachment.objects.create(
        draft=draft, path=path, filename=safe_name, content_type=content_type[:255], size=len(data)
    )


def forget_empty_drafts(older_than: timedelta = timedelta(days=1)) -> int:
    """Drafts opened and never written in (version 0) are dropped after a day."""
    deleted, _ = Draft.objects.filter(
        state=Draft.State.DRAFT, version=0, created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted


def remove_attachment(draft: Draft, attachment_id: int) -> bool:
    if draft.state != Draft.State.DRAFT:
        raise NotEditable
    found = draft.attachments.filter(pk=attachment_id).first()
    if found is None:
        return False
    default_storage.delete(found.path)
    found.delete()
    return True


# The IMAP Drafts copy ---------------------------------------------------------------------------


def _push_later(draft_id: int) -> None:
    from compose.tasks import save_draft_on_server

    transaction.on_commit(
        lambda: save_draft_on_server.apply_async((draft_id,), countdown=SERVER_SAVE_DELAY)
    )


def push_to_server(draft_id: int) -> bool:
    """Replace the draft's copy in the IMAP Drafts folder with its latest version (append the
    new one, then delete the old): returns whether it wrote anything."""
    draft = Draft.objects.select_related("account").filter(pk=draft_id).first()
    if (
        draft is None
        or draft.state != Draft.State.DRAFT
        or draft.version <= draft.server_version
        or draft.account.protocol != MailAccount.Protocol.IMAP
    ):
        return False
    folder = draft.account.folders.filter(role=Folder.Role.DRAFTS).first()
    if folder is None:
        return False
    try:
        raw = mime_out.build(_lenient(draft)).as_bytes()
    except ValueError:
        return False  # a recipient not finished yet: the next save will do
    version = draft.version
    try:
        with open_imap(draft.account) as client:  # logs out, or shuts a broken connection down
            response = client.append(folder.name, raw, flags=[b"\\Draft", b"\\Seen"])
            uid, validity = _appended_uid(response)
            if draft.server_uid is not None:
                drop_draft_copy(client, folder.name, draft.server_uid, draft.server_uidvalidity)
    except Exception:  # connection failures included: the local draft is safe, next save retries
        logger.info("saving draft %s on the server failed", draft_id, exc_info=True)
        return False
    Draft.objects.filter(pk=draft.pk).update(
        server_version=version, server_uid=uid, server_uidvalidity=validity
    )
    return True


def _lenient(draft: Draft) -> mime_out.Outgoing:
    """The draft as a message even with half-typed recipients (they are left out)."""
    return outgoing(draft, lenient=True)


def _appended_uid(response: bytes) -> tuple[int | None, int | None]:
    """The new message's UID from APPENDUID (RFC 4315), when the server says it."""
    match = re.search(rb"APPENDUID (\d+) (\d+)", response or b"")
    if match is None:
        return None, None
    return int(match.group(2)), int(match.group(1))


def _delete_server_copy(account_id: int, uid: int | None, validity: int | None) -> None:
    account = MailAccount.objects.filter(pk=account_id).first()
    folder = account.folders.filter(role=Folder.Role.DRAFTS).first() if account else None
    if account is None or folder is None or uid is None:
        return
    try:
        with open_imap(account) as client:
            drop_draft_copy(client, folder.name, uid, validity)
    except Exception:
        logger.info("deleting a draft's server copy failed", exc_info=True)
