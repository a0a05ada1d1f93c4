"""Outgoing messages: plain data in, RFC 5322 bytes and an SMTP envelope out. No Django here.

Built with Python's ``email`` package (``EmailMessage`` under the SMTP policies), so MIME
structure, RFC 2047 encoded words, folding and quoting are the standard library's. What this
module adds: every field a user typed is checked for CR, LF and NUL before it can reach a header
(`HeaderInjection`, naming the field); domains are converted to IDNA; a non-ASCII local part
needs SMTPUTF8 (RFC 6531), and the message is then built with the SMTPUTF8 policy; Bcc never
appears in the headers, only in the envelope.
"""

from __future__ import annotations

import email.policy
import email.utils
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage

__all__ = [
    "Attachment",
    "BadAddress",
    "HeaderInjection",
    "Outgoing",
    "build",
    "envelope",
    "needs_smtputf8",
    "parse_recipients",
]

MAX_RECIPIENTS = 500
MAX_SUBJECT_CHARS = 998
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\]{1,255}")


class HeaderInjection(ValueError):
    """A field holds a character that could start a new header line (CR, LF) or NUL."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"line break or NUL in {field_name}")
        self.field_name = field_name


class BadAddress(ValueError):
    """An address that cannot be sent to, with the text as typed."""

    def __init__(self, text: str, field_name: str) -> None:
        super().__init__(f"not an address in {field_name}: {text!r}")
        self.text = text
        self.field_name = field_name


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline_message: bool = False  # a whole message forwarded as message/rfc822


@dataclass(frozen=True)
class Outgoing:
    from_email: str
    message_id: str  # without angle brackets
    date: datetime
    from_name: str = ""
    to: Sequence[tuple[str, str]] = ()  # (name, address)
    cc: Sequence[tuple[str, str]] = ()
    bcc: Sequence[tuple[str, str]] = ()
    reply_to: Sequence[tuple[str, str]] = ()
    subject: str = ""
    text: str = ""
    html: str | None = None  # already sanitised by the caller
    in_reply_to: str = ""  # a Message-ID without brackets
    references: Sequence[str] = ()
    attachments: Sequence[Attachment] = field(default_factory=tuple)
    user_agent: str = "Courrier"


def check_header_text(value: str, field_name: str) -> str:
    if _FORBIDDEN.search(value):
        raise HeaderInjection(field_name)
    return value


def parse_recipients(text: str, field_name: str) -> list[tuple[str, str]]:
    """(name, address) pairs from what a user typed in To/Cc/Bcc: commas or semicolons between
    addresses, each "Name <address>" or a bare address. Raises BadAddress or HeaderInjection."""
    check_header_text(text, field_name)
    found: list[tuple[str, str]] = []
    for piece in _split_addresses(text):
        name, address = email.utils.parseaddr(piece)
        address = address.strip()
        if not _ADDRESS.fullmatch(address):
            raise BadAddress(piece.strip(), field_name)
        found.append((name.strip(), address))
    if len(found) > MAX_RECIPIENTS:
        raise BadAddress(text[:80], field_name)
    return found


def _split_addresses(text: str) -> list[str]:
    """The non-blank pieces between commas and semicolons outside quotes and angle brackets."""
    pieces, current, quoted, angled = [], [], False, False
    for char in text:
        if char == '"' and not angled:
            quoted = not quoted
        elif char == "<" and not quoted:
            angled = True
        elif char == ">" and not quoted:
            angled = False
        elif char in ",;" and not quoted and not angled:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()]


def _idna_address(name: str, address: str, field_name: str) -> Address:
    check_header_text(name, field_name)
    check_header_text(address, field_name)
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise BadAddress(address, field_name)
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise BadAddress(address, field_name) from exc
    try:
        return Address(display_name=name, username=local, domain=ascii_domain)
    except (ValueError, IndexError) as exc:
        raise BadAddress(address, field_name) from exc


def needs_smtputf8(outgoing: Outgoing) -> bool:
    """Whether an address's local part is not ASCII (RFC 6531): the server must offer SMTPUTF8."""
    pairs = [
        ("", outgoing.from_email),
        *outgoing.to,
        *outgoing.cc,
        *outgoing.bcc,
        *outgoing.reply_to,
    ]
    return any(not address.rpartition("@")[0].isascii() for _name, address in pairs)


def envelope(outgoing: Outgoing) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO: every To, Cc and Bcc address once, domains in IDNA."""
    sender = _idna_address("", outgoing.from_email, "from").addr_spec
    recipients: list[str] = []
    for field_name, pairs in (("to", outgoing.to), ("cc", outgoing.cc), ("bcc", outgoing.bcc)):
        for name, address in pairs:
            spec = _idna_address(name, address, field_name).addr_spec
            if spec.lower() not in {r.lower() for r in recipients}:
                recipients.append(spec)
    return sender, recipients


def build(outgoing: Outgoing) -> EmailMessage:
    """The message, ready for ``as_bytes()``; never with a Bcc header."""
    utf8 = needs_smtputf8(outgoing)
    message = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    message["From"] = _idna_address(outgoing.from_name, outgoing.from_email, "from")
    if outgoing.to:
        message["To"] = [_idna_address(n, a, "to") for n, a in outgoing.to]
    if outgoing.cc:
        message["Cc"] = [_idna_address(n, a, "cc") for n, a in outgoing.cc]
    for name, address in outgoing.bcc:  # checked like the others, never written
        _idna_address(name, address, "bcc")
    if outgoing.reply_to:
        message["Reply-To"] = [_idna_address(n, a, "reply-to") for n, a in outgoing.reply_to]
    message["Subject"] = check_header_text(outgoing.subject[:MAX_SUBJECT_CHARS], "subject")
    message["Date"] = email.utils.format_datetime(outgoing.date)
    message["Message-ID"] = f"<{_id(outgoing.message_id, 'message-id')}>"
    if outgoing.in_reply_to:
        message["In-Reply-To"] = f"<{_id(outgoing.in_reply_to, 'in-reply-to')}>"
    if outgoing.references:
        message["References"] = " ".join(
            f"<{_id(ref, 'references')}>" for ref in outgoing.references
        )
    message["MIME-Version"] = "1.0"
    message["User-Agent"] = check_header_text(outgoing.user_agent, "user-agent")

    message.set_content(outgoing.text or "", cte="quoted-printable")
    if outgoing.html is not None:
        message.add_alternative(outgoing.html, subtype="html", cte="quoted-printable")
    for attachment in outgoing.attachments:
        _attach(message, attachment)
    return message


def _id(value: str, field_name: str) -> str:
    value = check_header_text(value.strip().strip("<>"), field_name)
    if not value or any(c in value for c in " <>"):
        raise BadAddress(value, field_name)
    return value


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    filename = check_header_text(attachment.filename, "attachment name") or "attachment"
    if attachment.inline_message:
        # A forwarded message travels as it was, bytes untouched.
        forwarded = email.message_from_bytes(attachment.data, policy=email.policy.default)
        message.add_attachment(forwarded, filename=filename)
        return
    content_type = attachment.content_type or mimetypes.guess_type(filename)[0] or ""
    maintype, _, subtype = content_type.partition("/")
    if not maintype or not subtype or maintype in ("multipart", "message"):
        maintype, subtype = "application", "octet-stream"
    message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=filename)
