"""Contacts: the autocomplete's suggestions, the address book's changes, vCard import and export,
and the first contacts learnt from the user's sent mail.

vCard (RFC 6350 for 4.0, RFC 2426 for 3.0) is read by a small parser of its own: lines are
unfolded, each property is ``[group.]NAME[;param=value]*:value``, and only FN, N and EMAIL
matter here. Quoted-printable (a vCard 2.1 habit) is not decoded."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q, QuerySet

from accounts.models import User
from compose.models import Contact, Identity
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from mailcore import compose as mime_out

SUGGESTIONS = 8
MAX_VCARD_BYTES = 2 * 1024 * 1024
MAX_VCARDS = 5000
LEARN_FROM_MESSAGES = 5000  # the latest sent messages read to seed the contacts
NAME_CHARS = 200  # Contact.name
EMAIL_CHARS = 320  # Contact.email

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class VCardError(ValueError):
    """The file cannot be imported as a whole (too large, too many cards, not vCard)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code  # "too-large", "too-many", "no-card"


# Suggestions ------------------------------------------------------------------------------------


def suggest(user: User, query: str, limit: int = SUGGESTIONS) -> list[Contact]:
    """The user's contacts whose name or address contains `query`, most used first."""
    query = query.strip()
    if not query:
        return []
    return list(
        Contact.objects.filter(user=user)
        .filter(Q(email__icontains=query) | Q(name__icontains=query))
        .order_by("-times", F("last_used_at").desc(nulls_last=True), "email")[:limit]
    )


def recipient_text(name: str, email: str) -> str:
    """How a contact is written in To/Cc/Bcc: ``"Name" <address>``, or the bare address."""
    name = _CONTROL.sub(" ", name).replace('"', "").replace("\\", "").strip()
    return f'"{name}" <{email}>' if name else email


# The address book ---------------------------------------------------------------------------------


def listed(user: User, query: str = "") -> QuerySet[Contact]:
    contacts = Contact.objects.filter(user=user)
    if query:
        contacts = contacts.filter(Q(email__icontains=query) | Q(name__icontains=query))
    return contacts.order_by("name", "email")


def add(user: User, email: str, name: str = "") -> Contact | None:
    """A new contact, or None when the user already has this address."""
    contact, created = Contact.objects.get_or_create(
        user=user,
        email=email.lower()[:EMAIL_CHARS],
        defaults={"name": _clean_name(name), "edited": bool(name.strip())},
    )
    return contact if created else None


def rename(contact: Contact, name: str) -> Contact:
    """The user's own name for the contact, kept when mail later shows another."""
    contact.name = _clean_name(name)
    contact.edited = True
    contact.save(update_fields=["name", "edited"])
    return contact


def delete(contact: Contact) -> None:
    contact.delete()


def _clean_name(name: str) -> str:
    return " ".join(_CONTROL.sub(" ", name).split())[:NAME_CHARS]


# Learning from sent mail ------------------------------------------------------------------------


@dataclass
class _Seen:
    name: str = ""
    times: int = 0
    last: datetime | None = None


def learn_from_mail(user: User) -> int:
    """Seed the contacts of a user who has none from the To and Cc of their sent messages
    (the latest `LEARN_FROM_MESSAGES`): each address counted, its latest name and date kept.
    Returns how many contacts were created."""
    if Contact.objects.filter(user=user).exists():
        return 0
    sent = Message.objects.filter(folder__account__user=user, folder__role=Folder.Role.SENT)
    rows = (
        MessageContent.objects.filter(account__user=user, pk__in=sent.values("content_id"))
        .order_by(F("date").desc(nulls_last=True))
        .values_list("to", "cc", "date")[:LEARN_FROM_MESSAGES]
    )
    own = _own_addresses(user)
    seen: dict[str, _Seen] = {}
    for to, cc, date in rows:
        for name, email in _pairs(to) + _pairs(cc):
            address = email.lower()
            if address in own or not _looks_like_address(address):
                continue
            entry = seen.setdefault(address, _Seen())
            entry.times += 1
            # Rows come newest first: the first name met is the latest one.
            entry.name = entry.name or _clean_name(name)
            if date is not None and (entry.last is None or date > entry.last):
                entry.last = date
    if not seen:
        return 0
    created = Contact.objects.bulk_create(
        [
            Contact(user=user, email=address, name=e.name, times=e.times, last_used_at=e.last)
            for address, e in seen.items()
        ],
        ignore_conflicts=True,  # a message sent meanwhile may have added one
    )
    return len(created)


def _pairs(value: object) -> list[tuple[str, str]]:
    """[name, address] pairs from a MessageContent JSON list, tolerating odd shapes."""
    found = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            name, address = item
            if isinstance(name, str) and isinstance(address, str) and address:
                found.append((name, address.strip()))
    return found


def _own_addresses(user: User) -> set[str]:
    accounts = MailAccount.objects.filter(user=user).values_list("email", flat=True)
    identities = Identity.objects.filter(account__user=user).values_list("email", flat=True)
    return {a.lower() for a in accounts} | {i.lower() for i in identities}


def _looks_like_address(text: str) -> bool:
    if len(text) > EMAIL_CHARS:
        return False
    try:
        return len(mime_out.parse_recipients(text, "email")) == 1
    except ValueError:
        return False


# vCard ------------------------------------------------------------------------------------------


@dataclass
class Card:
    name: str = ""
    emails: list[str] = field(default_factory=list)


@dataclass
class Imported:
    created: int = 0
    updated: int = 0
    skipped: int = 0  # cards without a usable address


def parse_vcards(data: bytes) -> list[Card]:
    """The cards of a .vcf file (3.0 or 4.0; 2.1 mostly works). Raises VCardError."""
    if len(data) > MAX_VCARD_BYTES:
        raise VCardError("too-large")
    text = _decode(data)
    cards: list[Card] = []
    current: Card | None = None
    structured_name = ""
    depth = 0
    for line in _unfold(text):
        name, value = _property(line)
        if name == "BEGIN" and value.strip().upper() == "VCARD":
            depth += 1
            if depth == 1:
                current, structured_name = Card(), ""
            continue
        if name == "END" and value.strip().upper() == "VCARD":
            depth = max(depth - 1, 0)
            if depth == 0 and current is not None:
                current.name = current.name or structured_name
                cards.append(current)
                if len(cards) > MAX_VCARDS:
                    raise VCardError("too-many")
                current = None
            continue
        if current is None or depth != 1:
            continue  # outside a card, or inside a nested one (vCard 2.1's AGENT)
        if name == "FN":
            current.name = _clean_name(_unescape(value))
        elif name == "N":
            structured_name = _structured_name(value)
        elif name == "EMAIL":
            address = _unescape(value).strip()
            if address.lower().startswith("mailto:"):
                address = address[7:]
            if address and address not in current.emails:
                current.emails.append(address)
    if not cards:
        raise VCardError("no-card")
    return cards


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", errors="replace")


def _unfold(text: str) -> Iterable[str]:
    """Logical lines: a physical line starting with a space or a tab continues the one before."""
    logical = ""
    for physical in _LINE_BREAK.split(text):
        if physical[:1] in (" ", "\t") and logical:
            logical += physical[1:]
            continue
        if logical:
            yield logical
        logical = physical
    if logical:
        yield logical


def _property(line: str) -> tuple[str, str]:
    """``group.NAME;param;param:value`` → (NAME, value); a colon inside a quoted parameter
    value does not end the name. Parameters (TYPE=work, PREF=1…) do not matter here."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            head, value = line[:index], line[index + 1 :]
            break
    else:
        return "", ""
    name = _split_unquoted(head, ";")[0].rpartition(".")[2].strip().upper()
    return name, value


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


_ESCAPES = {"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\"}


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)


def _structured_name(value: str) -> str:
    """N is family;given;additional;prefixes;suffixes: written in the usual order."""
    parts = [_unescape(p) for p in re.split(r"(?<!\\);", value)] + [""] * 5
    family, given, additional, prefixes, suffixes = parts[:5]
    return _clean_name(" ".join(p for p in (prefixes, given, additional, family, suffixes) if p))


@transaction.atomic
def import_cards(user: User, cards: list[Card]) -> Imported:
    """Each address of each card becomes a contact; a name from the file replaces the one
    learnt from mail (it is the user's own), but an empty one changes nothing."""
    result = Imported()
    wanted: dict[str, str] = {}
    for card in cards:
        usable = [a.lower() for a in card.emails if _looks_like_address(a)]
        if not usable:
            result.skipped += 1
            continue
        name = "" if card.name.lower() in usable else card.name
        for address in usable:
            if address not in wanted or (name and not wanted[address]):
                wanted[address] = name
    existing = {
        c.email: c for c in Contact.objects.select_for_update().filter(user=user, email__in=wanted)
    }
    changed = []
    for address, name in wanted.items():
        contact = existing.get(address)
        if contact is not None and name and (contact.name != name or not contact.edited):
            contact.name, contact.edited = name, True
            changed.append(contact)
    Contact.objects.bulk_update(changed, ["name", "edited"])
    new = [
        Contact(user=user, email=address, name=name, edited=bool(name))
        for address, name in wanted.items()
        if address not in existing
    ]
    result.created = len(Contact.objects.bulk_create(new, ignore_conflicts=True))
    result.updated = len(changed)
    return result


def export_vcards(user: User) -> str:
    """Every contact as a vCard 4.0, CRLF line ends, long lines folded."""
    lines: list[str] = []
    for name, email in (
        Contact.objects.filter(user=user).order_by("name", "email").values_list("name", "email")
    ):
        lines += [
            "BEGIN:VCARD",
            "VERSION:4.0",
            _fold(f"FN:{_escape(name or email)}"),
            _fold(f"EMAIL:{_escape(email)}"),
            "END:VCARD",
        ]
    return "".join(f"{line}\r\n" for line in lines)


def _escape(value: str) -> str:
    value = value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    return _LINE_BREAK.sub("\\\\n", value)


def _fold(line: str, limit: int = 75) -> str:
    """Lines of at most 75 octets (RFC 6350 3.2), never cutting a UTF-8 character."""
    pieces, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            pieces.append(current)
            current, size = "", 1  # the continuation line's leading space
        current += char
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces)
