"""Raw RFC 822 bytes in, a plain `ParsedMessage` out; hostile input never makes it raise.

Every fetched message goes through `parse_message`. Whatever the input, it returns a
`ParsedMessage` whose strings hold no NUL and no lone surrogate, whose lengths and list sizes are
bounded (the `MAX_*` constants), and whose `warnings` say what was wrong, as machine-readable codes:

- ``nul-bytes``: NUL characters were removed from a header or body.
- ``8bit-header``: a header held raw 8-bit bytes; decoded as UTF-8, else windows-1252, else latin-1.
- ``bad-charset:<name>``: a charset Python cannot use; decoded as UTF-8, else windows-1252, else
  latin-1.
- ``bad-encoded-word``: an RFC 2047 encoded word was damaged; decoded as far as it could be.
- ``defect:<Name>``: a defect the stdlib parser recorded, such as
  ``defect:StartBoundaryNotFoundDefect``.
- ``missing-header:<name>``: no ``date``, ``from`` or ``message-id`` header.
- ``duplicate-header:<name>``: a header allowed once appears again; the first one is used (the
  recipients of repeated To/Cc/Bcc headers are merged).
- ``header-too-long:<name>``: a header was longer than its bound and was cut.
- ``too-many-headers:<name>``: more authentication headers of one name than kept.
- ``too-many-addresses:<name>``: more than `MAX_ADDRESSES` addresses; the rest are ignored.
- ``bad-address:<name>``: an address that could not be made sense of was dropped.
- ``bad-idna:<name>``: an ``xn--`` domain label that is not valid punycode was kept as it was.
- ``too-many-references``: References trimmed to its first id and its latest ones.
- ``bad-date``: the Date header cannot be parsed. ``date-no-timezone``: it has no usable zone
  and is taken as UTC. ``date-out-of-range``: its year is before 1970 or after 2100.
- ``too-deep``: MIME nesting deeper than `MAX_DEPTH`; what is below is not read.
- ``too-many-parts``: more than `MAX_PARTS` MIME parts; the rest are not read.
- ``parse-failed``: the MIME parser gave up; only the headers were read.
- ``bad-part``: one MIME part could not be read and was skipped.
- ``body-truncated`` / ``html-truncated``: the text or HTML body was cut to its bound.
- ``html-parse-error``: the HTML could only partly be turned into text.
- ``too-many-warnings``: further warnings were dropped.
- ``internal-error:<Exception>``: a bug here; the message is returned as far as it got.

Parsing uses the stdlib parser with a compat32-based policy and does all header decoding here,
because `email.policy.default`'s header parser is superlinear and runs inside the parser itself:
a 4 KB Content-Type of quotes costs it half a second, nested comments raise RecursionError.
No Django here: this module is plain Python, tested alone.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.errors
import email.parser
import email.utils
import functools
import html as html_lib
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.policy import Compat32
from html.parser import HTMLParser
from typing import Any

__all__ = [
    "Address",
    "Attachment",
    "ParsedMessage",
    "decode_header_value",
    "html_to_text",
    "parse_addresses",
    "parse_headers",
    "parse_message",
]

MAX_ID_CHARS = 995  # RFC 5322 line limit less "<>" and a little: ids longer than that are junk
MAX_REFERENCES = 100
MAX_SUBJECT_CHARS = 998
MAX_NAME_CHARS = 255
MAX_EMAIL_CHARS = 320  # 64 for the local part, "@", 255 for the domain
MAX_ADDRESSES = 1000  # per header
MAX_FILENAME_CHARS = 255
MAX_CONTENT_TYPE_CHARS = 255
MAX_LIST_ID_CHARS = 255
MAX_TEXT_CHARS = 1_000_000
MAX_HTML_CHARS = 1_000_000
MAX_HTML_TO_TEXT_CHARS = 512_000  # HTMLParser costs ~2 µs a character on hostile input
MAX_SNIPPET_CHARS = 200
MAX_DEPTH = 20
MAX_PARTS = 500
MAX_WARNINGS = 100
MAX_AUTH_HEADERS = 50  # per header name
MAX_AUTH_HEADER_CHARS = 16_384
MAX_RAW_HEADER_CHARS = 65_536  # any header is cut to this as the parser reads it
MAX_CONTENT_HEADER_CHARS = 4096  # Content-* headers are parsed again and again, keep them short
MAX_DATE_CHARS = 256
MAX_HEADER_BLOCK = 4 * 1024 * 1024  # parse_headers reads no further than this

_DATE_MIN_YEAR = 1970
_DATE_MAX_YEAR = 2100
_HTML_PASSES = 4  # feed() may see the HTML again after a stuck construct, this many times over
_SNIPPET_SCAN_CHARS = 20_000

# What the stdlib email code is known to raise on broken input (IndexError and KeyError are
# LookupErrors, UnicodeError is a ValueError; AssertionError comes from html.parser's base class,
# RecursionError from nested comments, groups and message/rfc822 parts).
_EMAIL_ERRORS = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    email.errors.MessageError,
)

_ONCE_ONLY = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "list-id",
)
_MERGED = frozenset({"to", "cc", "bcc"})
_AUTH_HEADERS = frozenset(
    {
        "authentication-results",
        "received-spf",
        "dkim-signature",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
    }
)
_READ_HEADERS = frozenset(_ONCE_ONLY) | _AUTH_HEADERS


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # bytes once decoded; for message/* parts an estimate of the embedded message
    content_id: str
    disposition: str  # "inline" or "attachment"
    part_path: str  # IMAP section number, e.g. "2" or "1.2"


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_: list[Address] = field(default_factory=list)
    sender: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    date: datetime | None = None  # in UTC
    date_offset_minutes: int | None = None  # the sender's offset from UTC, None when unknown
    size: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    text: str = ""
    html: str | None = None  # decoded, NOT sanitised
    snippet: str = ""
    auth_headers: dict[str, list[str]] = field(default_factory=dict)
    list_id: str = ""
    has_attachments: bool = False  # anything but inline parts referenced by Content-ID
    warnings: list[str] = field(default_factory=list)


class _Warnings:
    """Warning codes in order of appearance, each once, at most `MAX_WARNINGS`."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self._seen: set[str] = set()

    def add(self, code: str) -> None:
        if code in self._seen:
            return
        self._seen.add(code)
        if len(self.codes) < MAX_WARNINGS:
            self.codes.append(code)
        elif self.codes[-1] != "too-many-warnings":
            self.codes.append("too-many-warnings")


# ---------------------------------------------------------------------------------------------
# Public entry points


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one raw message; never raises, records what was wrong in `warnings`."""
    raw = bytes(raw)
    warnings = _Warnings()
    try:
        return _parse_message(raw, warnings)
    except Exception as exc:  # noqa: BLE001 - one bad message must never stop a sync; tests fail on this code
        warnings.add(f"internal-error:{type(exc).__name__}")
        return ParsedMessage(size=len(raw), warnings=warnings.codes)


def parse_headers(raw: bytes) -> ParsedMessage:
    """The top-level header fields of one raw message, the body left unread: about a tenth of
    `parse_message`'s cost. Header fields and their warnings are the same as `parse_message`
    gives; body fields (text, html, snippet, attachments) stay empty. Never raises."""
    raw = bytes(raw)
    warnings = _Warnings()
    try:
        return _parse_headers(raw, warnings)
    except Exception as exc:  # noqa: BLE001 - one bad message must never stop a sync; tests fail on this code
        warnings.add(f"internal-error:{type(exc).__name__}")
        return ParsedMessage(size=len(raw), warnings=warnings.codes)


def parse_addresses(value: str) -> list[Address]:
    """The addresses of one address header's raw value, garbage dropped, at most MAX_ADDRESSES."""
    return _parse_addresses(value, _Warnings(), "address")


def decode_header_value(value: str | bytes) -> str:
    """Display text of a raw header value: 8-bit bytes and RFC 2047 words decoded, whitespace
    collapsed, control characters removed. Only the first MAX_RAW_HEADER_CHARS are read."""
    if isinstance(value, bytes):
        value = _decode_8bit(value[:MAX_RAW_HEADER_CHARS])
    return _decode_unstructured(value, _Warnings(), "header", MAX_RAW_HEADER_CHARS)


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: tags dropped, script/style/head content skipped."""
    return _html_to_text(html, _Warnings())


# ---------------------------------------------------------------------------------------------
# The message as a whole


def _parse_message(raw: bytes, warnings: _Warnings) -> ParsedMessage:
    root, body_readable = _parse_tree(raw, warnings)
    header_fields = _header_fields(root.raw_items(), warnings)

    walker = _Walker(warnings)
    plain: list[str] = []
    html_parts: list[str] = []
    if body_readable:
        try:
            plain, html_parts = walker.visit(root, "", 0)
        except _EMAIL_ERRORS:  # the headers are still worth having
            warnings.add("bad-part")
    _collect_defects(root, warnings)

    text = _bound("\n".join(plain), MAX_TEXT_CHARS, warnings, "body-truncated")
    html = _bound("\n".join(html_parts), MAX_HTML_CHARS, warnings, "html-truncated") or None
    if not text.strip() and html:
        text = _html_to_text(html, warnings)
    attachments = walker.attachments
    return ParsedMessage(
        **header_fields,
        size=len(raw),
        attachments=attachments,
        text=text,
        html=html,
        snippet=_snippet(text),
        has_attachments=any(a.disposition == "attachment" or not a.content_id for a in attachments),
        warnings=warnings.codes,
    )


def _parse_headers(raw: bytes, warnings: _Warnings) -> ParsedMessage:
    # The header block alone: the parser reads headers up to the first line that is not one,
    # so cutting after the first blank line (or at the bound) gives the same headers.
    items = _header_items(raw[: _header_end(raw)], _read_header)
    return ParsedMessage(**_header_fields(items, warnings), size=len(raw), warnings=warnings.codes)


# What the stdlib's feedparser takes for a line, and for a header line or a continuation.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")


def _header_items(
    block: bytes, wanted: Callable[[str], bool] | None = None
) -> list[tuple[str, str]]:
    """The (name, raw value) pairs of a header block, exactly as ``BytesHeaderParser`` with this
    module's policy stores them (feedparser's header rules, restated), at a third of its cost:
    the sync parses every message's header this way. Tests compare the two on the corpus.

    With `wanted`, only the fields whose lower-case name it accepts."""
    lines = []
    for line in _LINE.findall(block.decode("ascii", "surrogateescape")):
        if not _HEADER_LINE.match(line):
            break  # the blank line, or the first body line of a message without one
        lines.append(line)
    items: list[tuple[str, str]] = []
    current: list[str] = []
    for line in lines:
        if line[0] in " \t":
            if current:  # a continuation before any header is dropped
                current.append(line)
            continue
        if current:
            items.append(_POLICY.header_source_parse(current))
            current = []
        if line.startswith("From "):
            continue  # the Unix envelope line, or a misplaced one: not a header
        colon = line.find(":")
        if colon > 0 and (wanted is None or wanted(line[:colon].strip().lower())):
            current = [line]  # ":value" has no name and is dropped
    if current:
        items.append(_POLICY.header_source_parse(current))
    return items


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _header_end(raw: bytes) -> int:
    """Where the header block ends: after its blank line, or at MAX_HEADER_BLOCK."""
    match = _BLANK_LINE.search(raw, 0, MAX_HEADER_BLOCK)
    return match.end() if match else min(len(raw), MAX_HEADER_BLOCK)


def _header_fields(items: Iterable[tuple[str, str]], warnings: _Warnings) -> dict[str, Any]:
    """The ParsedMessage fields that come from the top-level headers' (name, raw value) pairs."""
    headers = _collect_headers(items, warnings)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    for name in ("date", "from", "message-id"):
        if name not in headers:
            warnings.add(f"missing-header:{name}")

    message_ids = _extract_ids(first("message-id") or "", warnings, "message-id")
    reply_ids = _extract_ids(first("in-reply-to") or "", warnings, "in-reply-to")
    date, offset = _parse_date(first("date"), warnings)
    return {
        "message_id": message_ids[0] if message_ids else "",
        "in_reply_to": reply_ids[0] if reply_ids else "",
        "references": _references(first("references") or "", warnings),
        "subject": _decode_unstructured(
            first("subject") or "", warnings, "subject", MAX_SUBJECT_CHARS
        ),
        "from_": _address_header(headers, "from", warnings),
        "sender": _address_header(headers, "sender", warnings),
        "reply_to": _address_header(headers, "reply-to", warnings),
        "to": _address_header(headers, "to", warnings),
        "cc": _address_header(headers, "cc", warnings),
        "bcc": _address_header(headers, "bcc", warnings),
        "date": date,
        "date_offset_minutes": offset,
        "auth_headers": _auth_headers(headers, warnings),
        "list_id": _list_id(first("list-id") or "", warnings),
    }


class _BoundedPolicy(Compat32):
    """compat32 with every header value cut as it is read, and plain strings handed back.

    Content-Type and Content-Transfer-Encoding are handed to the parser in a canonical short form
    built by this module's linear parameter parser, so that the stdlib's own parameter parsing
    (quadratic in quotes and semicolons) only ever sees a few dozen characters.
    """

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        limit = MAX_CONTENT_HEADER_CHARS if name.lower().startswith("content-") else None
        return name, value[: limit or MAX_RAW_HEADER_CHARS]

    def header_fetch_parse(self, name: str, value: str) -> str:
        lowered = name.lower()
        if lowered == "content-type":
            return _canonical_content_type(value)
        if lowered == "content-transfer-encoding":
            return _parse_params(value)[0]
        return value


_POLICY = _BoundedPolicy()


def _parse_tree(raw: bytes, warnings: _Warnings) -> tuple[Message, bool]:
    """The parsed message and whether its body can be read (False: headers only)."""
    source = _bounded_source(raw, warnings)
    try:
        return email.message_from_bytes(source, policy=_POLICY), True
    except _EMAIL_ERRORS:
        # RecursionError, from about a thousand nested message/rfc822 parts.
        warnings.add("parse-failed")
    try:
        return email.parser.BytesHeaderParser(policy=_POLICY).parsebytes(source), False
    except _EMAIL_ERRORS:
        return Message(policy=_POLICY), False


_SIMPLE_BOUNDARY = re.compile(
    rb'boundary\s*=\s*(?:"([0-9a-z\'+_,\-./:=?]{1,70})"|([0-9a-z\'+_,\-./:=?]{1,70}))'
    rb"[ \t]*(?=;|[\r\n]|\Z)"
)
# Any line that may be a delimiter: "--", a boundary of up to 200 characters, maybe "--".
_ANY_DELIMITER = re.compile(rb"(?<![^\r\n])--([^\r\n]{0,200}?)(--)?[ \t]*(?=[\r\n]|\Z)")
MAX_BOUNDARY_CHARS = 200  # RFC 2046 allows 70; the parser is never given a longer one


def _bounded_source(raw: bytes, warnings: _Warnings) -> bytes:
    """The part of `raw` the MIME parser may see, so that its work stays about linear.

    The stdlib parser checks every line against every open boundary (lines times depth) and spends
    a fixed cost per part, so a small message nesting a thousand multiparts, or holding a hundred
    thousand empty parts, takes it minutes. Boundary delimiter lines are counted here first, and
    the message is cut before the one that would open too deep a level or too many parts.
    """
    lowered = raw.lower()  # ASCII-only lowering keeps offsets, and makes searches literal
    mentions = lowered.count(b"boundary")
    if not mentions:
        return raw
    declared: set[bytes] = set()
    simple = 0
    for match in _SIMPLE_BOUNDARY.finditer(lowered):
        start, end = match.span(1) if match.group(1) is not None else match.span(2)
        declared.add(raw[start:end])
        simple += 1
    if simple == mentions and len(declared) <= 2 * MAX_PARTS:
        # Every mention is a plain boundary=token: only those tokens can make delimiters. The
        # pattern starts with a literal, which the regex engine searches fast.
        tokens = sorted(declared, key=len, reverse=True)
        alternatives = b"|".join(re.escape(token) for token in tokens)
        pattern = re.compile(rb"--(" + alternatives + rb")(--)?[ \t]*(?=[\r\n]|\Z)")
    else:
        pattern = _ANY_DELIMITER
    stack: list[bytes] = []
    delimiters = 0
    for match in pattern.finditer(raw):
        position = match.start()
        # Every match counts, even one not at a line start, so that the loop itself is bounded.
        delimiters += 1
        if delimiters > 2 * MAX_PARTS:
            warnings.add("too-many-parts")
            return raw[:position]
        if position and raw[position - 1] not in b"\r\n":
            continue
        name, closing = match.group(1), match.group(2) is not None
        if name in stack:
            del stack[stack.index(name) + (0 if closing else 1) :]
        elif not closing:
            stack.append(name)
            # Nesting needs one boundary declaration a level, so few mentions bound the depth.
            if len(stack) > MAX_DEPTH and mentions > MAX_DEPTH:
                warnings.add("too-deep")
                return raw[:position]
    return raw


def _read_header(name: str) -> bool:
    """Whether this module reads the header of this lower-case name."""
    return name in _READ_HEADERS or name.startswith("arc-")


def _collect_headers(items: Iterable[tuple[str, str]], warnings: _Warnings) -> dict[str, list[str]]:
    """Raw values of the headers this module reads, by lower-case name, in order."""
    headers: dict[str, list[str]] = {}
    for name, value in items:
        key = name.strip().lower()
        if _read_header(key):
            headers.setdefault(key, []).append(value)
    for name in _ONCE_ONLY:
        if len(headers.get(name, ())) > 1:
            warnings.add(f"duplicate-header:{name}")
    return headers


def _collect_defects(part: Message, warnings: _Warnings) -> None:
    for defect in getattr(part, "defects", ()):
        warnings.add(f"defect:{type(defect).__name__}")


def _bound(text: str, limit: int, warnings: _Warnings, code: str) -> str:
    if len(text) > limit:
        warnings.add(code)
        return text[:limit]
    return text


# ---------------------------------------------------------------------------------------------
# MIME structure and bodies


@dataclass(frozen=True, slots=True)
class _PartInfo:
    content_type: str
    charset: str | None
    disposition: str  # "", "inline", "attachment" or whatever the part declared
    filename: str
    content_id: str


class _Walker:
    """Walks the MIME tree once: collects attachments, returns the body texts of each subtree."""

    def __init__(self, warnings: _Warnings) -> None:
        self.warnings = warnings
        self.attachments: list[Attachment] = []
        self.parts_seen = 0
        self.body_chars = 0  # decoded body text so far, to bound work across many body parts

    def visit(self, part: Message, path: str, depth: int) -> tuple[list[str], list[str]]:
        """(plain texts, HTML texts) of the subtree at `part`, in reading order."""
        self.parts_seen += 1
        if self.parts_seen > MAX_PARTS:
            self.warnings.add("too-many-parts")
            return [], []
        try:
            info = _part_info(part, self.warnings)
            payload = part.get_payload()
        except _EMAIL_ERRORS:
            self.warnings.add("bad-part")
            return [], []
        _collect_defects(part, self.warnings)

        if isinstance(payload, list) and info.content_type.startswith("multipart/"):
            if depth >= MAX_DEPTH:
                self.warnings.add("too-deep")
                return [], []
            return self._visit_children(payload, info.content_type, path, depth)
        leaf_path = path or "1"  # IMAP numbers a single-part message's body "1"
        if isinstance(payload, list):  # message/rfc822 and kin: the parser made it a message
            self._attach_message(part, info, payload, leaf_path)
            return [], []

        data = self._payload_bytes(part)
        is_text = info.content_type in ("text/plain", "text/html") or info.content_type.startswith(
            "multipart/"  # a multipart whose boundary never shows up is one text body
        )
        if is_text and info.disposition != "attachment" and not info.filename:
            return self._body_text(data, info)
        disposition = info.disposition if info.disposition == "inline" else "attachment"
        if not info.disposition and info.content_id:
            disposition = "inline"
        self.attachments.append(
            Attachment(
                filename=info.filename,
                content_type=info.content_type,
                size=len(data),
                content_id=info.content_id,
                disposition=disposition,
                part_path=leaf_path,
            )
        )
        return [], []

    def _visit_children(
        self, children: list[Message], content_type: str, path: str, depth: int
    ) -> tuple[list[str], list[str]]:
        results = []
        for index, child in enumerate(children, start=1):
            if self.parts_seen >= MAX_PARTS:
                self.warnings.add("too-many-parts")
                break
            if isinstance(child, Message):
                child_path = f"{path}.{index}" if path else str(index)
                results.append(self.visit(child, child_path, depth + 1))
        if content_type == "multipart/alternative":
            # The plainest version for the text, the richest (the last, RFC 2046) for the HTML.
            plain = next((p for p, _ in results if any(t.strip() for t in p)), [])
            html = next((h for _, h in reversed(results) if h), [])
            return plain, html
        return [t for p, _ in results for t in p], [t for _, h in results for t in h]

    def _payload_bytes(self, part: Message) -> bytes:
        encoded = part.get_payload()
        if part.get("content-transfer-encoding") == "quoted-printable" and isinstance(encoded, str):
            # Blanks at line ends were added in transport and hide soft breaks (RFC 2045 6.7);
            # the stdlib keeps them, so this decodes itself.
            raw = encoded.encode("ascii", "surrogateescape")
            return binascii.a2b_qp(_TRAILING_BLANKS.sub(b"", raw))
        try:
            data = part.get_payload(decode=True)
        except _EMAIL_ERRORS:
            self.warnings.add("bad-part")
            return b""
        if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in part.defects):
            # The stdlib then hands back the base64 text itself; decode what can be decoded.
            data = _lenient_base64(encoded)
        _collect_defects(part, self.warnings)
        return data if isinstance(data, bytes) else b""

    def _body_text(self, data: bytes, info: _PartInfo) -> tuple[list[str], list[str]]:
        budget = 2 * (MAX_TEXT_CHARS + MAX_HTML_CHARS) - self.body_chars
        if budget <= 0:
            self.warnings.add("body-truncated")
            return [], []
        is_html = info.content_type == "text/html"
        limit = min(budget, MAX_HTML_CHARS if is_html else MAX_TEXT_CHARS)
        # Four bytes a character at most, in any charset worth the name.
        text = _decode_bytes(data[: 4 * limit + 4], info.charset, self.warnings)
        if len(text) > limit:
            self.warnings.add("html-truncated" if is_html else "body-truncated")
            text = text[:limit]
        text = _clean_text(text, self.warnings, keep_newlines=True)
        self.body_chars += len(text)
        if is_html:
            return [], [text]
        return [text.replace("\r\n", "\n").replace("\r", "\n")], []

    def _attach_message(
        self, part: Message, info: _PartInfo, payload: list[Message], path: str
    ) -> None:
        inner = payload[0] if payload and isinstance(payload[0], Message) else None
        filename = info.filename
        if not filename:
            subject = ""
            if inner is not None:
                raw_subject = next(
                    (v for k, v in inner.raw_items() if k.strip().lower() == "subject"), ""
                )
                # The embedded message's flaws are its own: its warnings are not kept.
                subject = _decode_unstructured(raw_subject, _Warnings(), "subject", 200)
            filename = _clean_filename(f"{subject or 'message'}.eml", self.warnings)
        self.attachments.append(
            Attachment(
                filename=filename,
                content_type=info.content_type,
                size=_estimate_size(inner),
                content_id=info.content_id,
                disposition="inline" if info.disposition == "inline" else "attachment",
                part_path=path,
            )
        )


def _estimate_size(message: Message | None) -> int:
    """About the byte length of an embedded message: the parser keeps no offsets into the raw."""
    size = 0
    stack = [message] if message is not None else []
    visited = 0
    while stack and visited < MAX_PARTS:
        current = stack.pop()
        visited += 1
        size += sum(len(k) + len(v) + 4 for k, v in current.raw_items()) + 2
        payload = current.get_payload()
        if isinstance(payload, str):
            size += len(payload)
        elif isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
            size += 80 * len(payload)  # delimiter lines
    return size


def _part_info(part: Message, warnings: _Warnings) -> _PartInfo:
    raw: dict[str, str] = {}
    for name, value in part.raw_items():
        key = name.strip().lower()
        if key in ("content-type", "content-disposition", "content-id") and key not in raw:
            raw[key] = value
    content_type = part.get_content_type()[:MAX_CONTENT_TYPE_CHARS]
    type_params = _parse_params(raw.get("content-type", ""))[1]
    disposition, disposition_params = _parse_params(raw.get("content-disposition", ""))
    filename = _param(disposition_params, "filename", warnings)
    if filename is None:
        filename = _param(type_params, "name", warnings)
    charset = _param(type_params, "charset", warnings)
    ids = _extract_ids(raw.get("content-id", ""), warnings, "content-id")
    return _PartInfo(
        content_type=content_type,
        charset=charset,
        disposition=disposition[:32],
        filename=_clean_filename(filename, warnings) if filename else "",
        content_id=ids[0] if ids else "",
    )


_PARAM_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)(?:"|\Z)|[();=]|[^";()=]+', re.DOTALL)
# Only \\ and \" are unescaped, as the stdlib does: Windows paths arrive with bare backslashes.
_QUOTED_PAIR = re.compile(r'\\([\\"])')


@functools.lru_cache(maxsize=256)
def _parse_params(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The main value (lower case, no blanks or comments) and the (name, value) parameters of a
    MIME header such as Content-Type; linear in the length, whatever the input."""
    segments: list[list[tuple[str, bool]]] = [[]]  # (text, was quoted) pieces of each parameter
    names: list[str | None] = [None]
    depth = 0  # comments nest
    for match in _PARAM_TOKEN.finditer(value):
        piece = match.group()
        if piece == "(":
            depth += 1
        elif piece == ")":
            depth = max(depth - 1, 0)
        elif depth:
            continue
        elif piece == ";":
            segments.append([])
            names.append(None)
        elif piece == "=" and names[-1] is None and len(segments) > 1:
            names[-1] = _join_pieces(segments[-1]).lower()
            segments[-1] = []
        elif match.group(1) is not None:
            segments[-1].append((_QUOTED_PAIR.sub(r"\1", match.group(1)), True))
        else:
            segments[-1].append((piece, False))
    main = "".join(_join_pieces(segments[0]).split()).lower()
    params = tuple(
        (name, _join_pieces(pieces))
        for name, pieces in zip(names[1:], segments[1:], strict=True)
        if name
    )
    return main, params


def _join_pieces(pieces: list[tuple[str, bool]]) -> str:
    """Join a value's pieces; blanks around it go, blanks inside quotes stay."""
    texts = [text for text, _ in pieces]
    if pieces and not pieces[0][1]:
        texts[0] = texts[0].lstrip()
    if pieces and not pieces[-1][1]:
        texts[-1] = texts[-1].rstrip()
    return "".join(texts)


@functools.lru_cache(maxsize=256)
def _canonical_content_type(value: str) -> str:
    main, params = _parse_params(value)
    boundary = next((v for k, v in params if k == "boundary"), None)
    if boundary is None or len(boundary) > MAX_BOUNDARY_CHARS:
        return main
    return f'{main}; boundary="{email.utils.quote(boundary)}"'


def _param(params: tuple[tuple[str, str], ...], name: str, warnings: _Warnings) -> str | None:
    """A parameter's value, RFC 2231 extended and continued forms included (and preferred)."""
    plain: str | None = None
    pieces: dict[int, tuple[str, bool]] = {}
    prefix = name + "*"
    for key, value in params:
        if key == name:
            plain = value if plain is None else plain
        elif key.startswith(prefix):
            rest = key[len(prefix) :]
            encoded = rest.endswith("*") or rest == ""
            number = rest.rstrip("*") or "0"
            if number.isdigit() and len(number) <= 3:
                pieces.setdefault(int(number), (value, encoded))
    if not pieces:
        return plain
    charset: str | None = None
    chunks: list[bytes] = []
    for index in range(len(pieces)):
        if index not in pieces:
            break
        value, encoded = pieces[index]
        if encoded:
            if index == 0 and value.count("'") >= 2:
                charset, _language, value = value.split("'", 2)
            chunks.append(urllib.parse.unquote_to_bytes(value))
        else:
            chunks.append(value.encode("utf-8", "surrogateescape"))
    return _decode_bytes(b"".join(chunks), charset or None, warnings)


_TRAILING_BLANKS = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def _lenient_base64(payload: object) -> bytes:
    if not isinstance(payload, str):
        return b""
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", payload.encode("ascii", "ignore"))
    data = data[: len(data) - len(data) % 4]
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


# ---------------------------------------------------------------------------------------------
# Charsets and encoded words

_SUPERSETS = {
    # What mailers mean by these labels is the larger Windows set (as browsers assume too).
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
}
# Python codecs that are no charset: slow (punycode is quadratic), or decoding escapes.
_REFUSED_CODECS = frozenset({"punycode", "idna", "raw-unicode-escape", "unicode-escape"})


@functools.lru_cache(maxsize=128)
def _codec_for(label: str) -> str | None:
    """The Python codec for a charset label; "" for ASCII or no label; None if unusable."""
    if not label:
        return ""
    try:
        name = codecs.lookup(label).name
        b"".decode(name)  # LookupError for codecs that are no text encoding (zlib, base64...)
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        return None
    if name in _REFUSED_CODECS:
        return None
    if name == "ascii":
        return ""
    return _SUPERSETS.get(name, name)


def _charset_label(charset: str | None) -> str:
    return (charset or "").strip().strip("\"'").lower()[:64]


def _decode_bytes(data: bytes, charset: str | None, warnings: _Warnings) -> str:
    """Bytes in a declared charset; unknown charsets fall back like undeclared ones."""
    label = _charset_label(charset)
    codec = _codec_for(label)
    if codec:
        try:
            return data.decode(codec, errors="replace")
        except (LookupError, ValueError):  # a codec that rejects errors="replace"
            codec = None
    if codec is None:
        shown = re.sub(r"[^a-z0-9._:+-]", "", label)[:40] or "unnamed"
        warnings.add(f"bad-charset:{shown}")
    return _decode_8bit(data)


def _decode_8bit(data: bytes) -> str:
    """Undeclared bytes: UTF-8 if they are valid UTF-8, else windows-1252, else latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([qQbB])\?([^?]*)\?=")


def _fix_surrogates(text: str, warnings: _Warnings) -> str:
    """Turn raw 8-bit bytes the parser kept as lone surrogates back into characters."""
    if not _SURROGATE.search(text):
        return text
    warnings.add("8bit-header")
    try:
        return _decode_8bit(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # surrogates that were never bytes (from utf-7, say)
        return _SURROGATE.sub("\ufffd", text)


def _decode_words(text: str, warnings: _Warnings) -> str:
    """Decode RFC 2047 encoded words; adjacent words in one charset are joined before decoding
    (mailers split multi-byte characters across them), the blanks between them dropped."""
    out: list[str] = []
    pending_charset: str | None = None
    pending = bytearray()
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(_decode_bytes(bytes(pending), pending_charset, warnings))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if pending_charset is None or between.strip():
            flush()
            out.append(between)
        charset = match.group(1).split("*", 1)[0].lower()  # RFC 2231 language suffix
        data = _decode_word(match.group(2), match.group(3), warnings)
        if charset != pending_charset:
            flush()
            pending_charset = charset
        pending.extend(data)
        position = match.end()
    flush()
    out.append(text[position:])
    return "".join(out)


def _decode_word(encoding: str, payload: str, warnings: _Warnings) -> bytes:
    data = payload.encode("utf-8", "surrogatepass")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data.rstrip(b"="))
    if len(cleaned) % 4 == 1 or cleaned != re.sub(rb"\s", b"", data.rstrip(b"=")):
        warnings.add("bad-encoded-word")
        cleaned = cleaned[: len(cleaned) - (len(cleaned) % 4 == 1)]
    return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))


# ---------------------------------------------------------------------------------------------
# Header values

_CONTROLS = {c: None for c in (*range(32), 127) if chr(c) not in "\t\n\r"}
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff"))


def _clean_text(text: str, warnings: _Warnings, *, keep_newlines: bool = False) -> str:
    """No NUL, no lone surrogate; without `keep_newlines`, no control character either."""
    if "\x00" in text:
        warnings.add("nul-bytes")
        text = text.replace("\x00", "")
    text = _SURROGATE.sub("\ufffd", text)  # lone surrogates, from utf-7 or utf-16 say
    return text if keep_newlines else text.translate(_CONTROLS)


def _header_text(raw: str, warnings: _Warnings, name: str, limit: int) -> str:
    """A raw header value unfolded, its 8-bit bytes decoded, cut to `limit` characters."""
    if len(raw) > limit or len(raw) >= MAX_RAW_HEADER_CHARS:
        warnings.add(f"header-too-long:{name}")
        raw = raw[:limit]
    text = _fix_surrogates(raw, warnings)
    return text.replace("\r", "").replace("\n", "")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _decode_unstructured(raw: str, warnings: _Warnings, name: str, limit: int) -> str:
    # Encoded text is up to ~12 characters a decoded one (Q-encoded UTF-8); read no more.
    text = _header_text(raw, warnings, name, max(limit * 12, 1024))
    decoded = _collapse(_clean_text(_decode_words(text, warnings), warnings))
    if len(decoded) > limit:
        warnings.add(f"header-too-long:{name}")
        decoded = decoded[:limit].rstrip()
    return decoded


_ID = re.compile(r"<([^<>]*)>")


def _extract_ids(raw: str, warnings: _Warnings, name: str) -> list[str]:
    """Message ids without brackets, in order; bare tokens when nothing is bracketed."""
    text = _clean_text(_header_text(raw, warnings, name, MAX_RAW_HEADER_CHARS), warnings)
    found = ["".join(m.group(1).split()) for m in _ID.finditer(text)]
    if not found:
        found = [token.strip("<>,") for token in text.split()]
    return [i[:MAX_ID_CHARS] for i in found if i]


def _references(raw: str, warnings: _Warnings) -> list[str]:
    ids = list(dict.fromkeys(_extract_ids(raw, warnings, "references")))
    if len(ids) > MAX_REFERENCES:
        warnings.add("too-many-references")
        # The thread root and the latest ancestors are what threading needs (RFC 5322 3.6.4).
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return ids


def _list_id(raw: str, warnings: _Warnings) -> str:
    text = _clean_text(_header_text(raw, warnings, "list-id", MAX_RAW_HEADER_CHARS), warnings)
    match = _ID.search(text)
    value = "".join(match.group(1).split()) if match else _collapse(_decode_words(text, warnings))
    return value[:MAX_LIST_ID_CHARS]


def _auth_headers(headers: dict[str, list[str]], warnings: _Warnings) -> dict[str, list[str]]:
    """Raw values kept for verification later: folding kept, only NULs and 8-bit bytes fixed."""
    kept: dict[str, list[str]] = {}
    for name, values in headers.items():
        if name not in _AUTH_HEADERS and not name.startswith("arc-"):
            continue
        if len(values) > MAX_AUTH_HEADERS:
            warnings.add(f"too-many-headers:{name}")
        cleaned = []
        for value in values[:MAX_AUTH_HEADERS]:
            if len(value) > MAX_AUTH_HEADER_CHARS:
                warnings.add(f"header-too-long:{name}")
                value = value[:MAX_AUTH_HEADER_CHARS]
            cleaned.append(
                _clean_text(_fix_surrogates(value, warnings), warnings, keep_newlines=True)
            )
        kept[name] = cleaned
    return kept


def _parse_date(raw: str | None, warnings: _Warnings) -> tuple[datetime | None, int | None]:
    if raw is None:
        return None, None
    text = _collapse(_clean_text(_header_text(raw, warnings, "date", MAX_DATE_CHARS), warnings))
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        warnings.add("bad-date")
        return None, None
    offset: int | None = None
    if parsed.tzinfo is None:
        # No zone, "-0000" or an unknown zone name: the local time is all that is known.
        warnings.add("date-no-timezone")
        parsed = parsed.replace(tzinfo=UTC)
    else:
        delta = parsed.utcoffset()
        offset = int(delta.total_seconds()) // 60 if delta is not None else None
    try:
        in_utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        warnings.add("bad-date")
        return None, None
    if not _DATE_MIN_YEAR <= in_utc.year <= _DATE_MAX_YEAR:
        warnings.add("date-out-of-range")
        return None, None
    return in_utc, offset


# ---------------------------------------------------------------------------------------------
# Addresses


def _address_header(headers: dict[str, list[str]], name: str, warnings: _Warnings) -> list[Address]:
    values = headers.get(name)
    if not values:
        return []
    raw = ", ".join(values) if name in _MERGED else values[0]
    return _parse_addresses(raw, warnings, name)


def _parse_addresses(value: str, warnings: _Warnings, name: str) -> list[Address]:
    text = _clean_text(_header_text(value, warnings, name, MAX_RAW_HEADER_CHARS), warnings)
    chunks, cut = _split_addresses(text, MAX_ADDRESSES)
    if cut:
        warnings.add(f"too-many-addresses:{name}")
    addresses: list[Address] = []
    for chunk in chunks:
        if not chunk.strip():
            continue
        try:
            # Parsed before decoding: a decoded name may hold commas and angle brackets.
            pairs = _simple_address(chunk) or email.utils.getaddresses([chunk])
        except RecursionError:  # nested comments or groups
            warnings.add(f"bad-address:{name}")
            continue
        for display, addr in pairs:
            address = _make_address(display, addr, warnings, name)
            if address is not None and len(addresses) < MAX_ADDRESSES:
                addresses.append(address)
    return addresses


# The common shapes, "Name <local@domain>" and "local@domain", with nothing RFC 5322 would
# read specially (quotes, comments, groups, routes, escapes, odd dots or spaces): what
# email.utils.getaddresses makes of them, found by two regular expressions at a tenth of its
# cost. Anything else goes to getaddresses; tests compare both on the corpus and fuzzed input.
_ATOM = r'[^()<>@,:;"\[\]\\\s.]+'
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_WORD = r'[^()<>@,:;"\[\]\\\s]+'
_FWS = r"[ \t\r\n]"  # what getaddresses skips between words; other white space is a word's
_NAMED_ADDRESS = re.compile(
    rf"{_FWS}*(?P<name>{_WORD}(?:{_FWS}+{_WORD})*)?{_FWS}*<(?P<addr>{_ADDR_SPEC})>{_FWS}*"
)
_BARE_ADDRESS = re.compile(rf"{_FWS}*(?P<addr>{_ADDR_SPEC}){_FWS}*")


def _simple_address(chunk: str) -> list[tuple[str, str]] | None:
    match = _NAMED_ADDRESS.fullmatch(chunk) or _BARE_ADDRESS.fullmatch(chunk)
    if match is None:
        return None
    name = match.groupdict().get("name") or ""
    return [(" ".join(name.split()), match["addr"])]


# Without quotes, comments or escapes, and with angle brackets only in simple pairs holding no
# comma, every comma is a top-level one: the split is str.split's.
_QUOTES_COMMENTS_ESCAPES = re.compile(r'["(\\]')
_SIMPLE_ANGLES = re.compile(r"<[^<>,]*>")


def _plain_list(text: str) -> bool:
    return not _QUOTES_COMMENTS_ESCAPES.search(text) and "<" not in _SIMPLE_ANGLES.sub("", text)


def _split_addresses(text: str, limit: int) -> tuple[list[str], bool]:
    """Split at top-level commas (not in quotes, comments or angle brackets), at most `limit`."""
    if _plain_list(text):
        parts = text.split(",")
        return parts[:limit], len(parts) > limit and bool(",".join(parts[limit:]).strip())
    return _scan_addresses(text, limit)


def _scan_addresses(text: str, limit: int) -> tuple[list[str], bool]:
    """`_split_addresses`, character by character."""
    chunks: list[str] = []
    start = 0
    quoted = escaped = False
    comments = angle = 0
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comments += 1
        elif char == ")":
            comments = max(comments - 1, 0)
        elif comments:
            continue
        elif char == "<":
            angle += 1
        elif char == ">":
            angle = max(angle - 1, 0)
        elif char == "," and not angle:
            chunks.append(text[start:index])
            start = index + 1
            if len(chunks) >= limit:
                return chunks, bool(text[start:].strip())
    chunks.append(text[start:])
    return chunks, False


def _make_address(display: str, addr: str, warnings: _Warnings, name: str) -> Address | None:
    addr = addr.strip()
    if not addr:
        if display.strip():
            warnings.add(f"bad-address:{name}")
        return None  # an empty group or a stray comma otherwise
    local, at, domain = addr.rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not at or not local or not domain or len(addr) > MAX_EMAIL_CHARS:
        warnings.add(f"bad-address:{name}")
        return None
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                warnings.add(f"bad-idna:{name}")
        labels.append(label)
    display = _collapse(_clean_text(_decode_words(display, warnings), warnings))
    return Address(name=display[:MAX_NAME_CHARS], email=f"{local}@{'.'.join(labels)}")


def _clean_filename(value: str, warnings: _Warnings) -> str:
    text = _fix_surrogates(value, warnings)
    if "=?" in text:
        text = _decode_words(text, warnings)
    text = _collapse(_clean_text(text, warnings))
    # A filename names a file for display and download; a directory in it is only ever a trap.
    text = text.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return text[:MAX_FILENAME_CHARS]


# ---------------------------------------------------------------------------------------------
# HTML to text and the snippet

_SKIPPED_ELEMENTS = frozenset({"script", "style", "head", "title", "template"})
_BLOCK_ELEMENTS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "nav", "ol", "p", "pre", "section", "table"),
        *("tr", "ul"),
    }
)
_BLANKS = re.compile(r"\s+")


class _TextFull(Exception):
    """Raised from a handler to stop parsing once enough text is collected."""


class _TextExtractor(HTMLParser):
    def __init__(self, limit: int) -> None:
        self.pieces: list[str] = []
        self.length = 0
        self.limit = limit
        self.skipping: list[str] = []
        self.preformatted = 0
        super().__init__(convert_charrefs=True)

    def emit(self, text: str) -> None:
        self.pieces.append(text)
        self.length += len(text)
        if self.length >= self.limit:
            raise _TextFull

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":  # an unclosed <head> ends where the body starts
            self.skipping = [t for t in self.skipping if t != "head"]
        if tag in _SKIPPED_ELEMENTS:
            self.skipping.append(tag)
        elif self.skipping:
            return
        elif tag == "pre":
            self.preformatted += 1
        if tag in _BLOCK_ELEMENTS:
            self.emit("\n")
        elif tag in ("td", "th"):
            self.emit(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skipping:
            del self.skipping[len(self.skipping) - 1 - self.skipping[::-1].index(tag) :]
            return
        if self.skipping:
            return
        if tag == "pre" and self.preformatted:
            self.preformatted -= 1
        if tag in _BLOCK_ELEMENTS:
            self.emit("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.emit(data if self.preformatted else _BLANKS.sub(" ", data))

    def parse_html_declaration(self, i: int) -> int:
        # The stdlib raises AssertionError on "<![foo[" and on some DOCTYPE internal subsets;
        # browsers read those as bogus comments, ending at the next ">".
        try:
            return super().parse_html_declaration(i)
        except AssertionError:
            end = self.rawdata.find(">", i + 2)
            return -1 if end < 0 else end + 1


def _html_to_text(html: str, warnings: _Warnings) -> str:
    """HTML to text with the stdlib parser, in time linear in the input.

    HTMLParser.close() rescans to the end of the data for every unterminated tag or comment,
    which is quadratic (fixed in Python 3.11.13, CVE-2025-6069): 80 KB of "x <y " takes it 40 s.
    So close() is never called: what feed() leaves unparsed is, as for HTML5 at end of file, an
    unterminated construct and is dropped, or plain text; a construct stuck before a later ">"
    is skipped up to there, and parsing goes on, within a budget of `_HTML_PASSES` times the
    input.
    """
    extractor = _TextExtractor(MAX_TEXT_CHARS)
    data = html[:MAX_HTML_TO_TEXT_CHARS]
    budget = _HTML_PASSES * len(data)
    try:
        while True:
            budget -= len(data)
            extractor.feed(data)
            rest = extractor.rawdata
            if "<" not in rest:
                if rest and not extractor.skipping:
                    extractor.emit(_BLANKS.sub(" ", html_lib.unescape(rest)))
                break
            end = rest.find(">", 1)
            if not rest.startswith("<") or end < 0:
                break  # as HTML5 at end of file: an unterminated construct shows nothing
            if budget < len(rest) - end:
                warnings.add("html-parse-error")
                break
            extractor.reset()
            data = rest[end + 1 :]
    except _TextFull:
        warnings.add("body-truncated")
    except AssertionError:  # html.parser's last resort on input it cannot place
        warnings.add("html-parse-error")
    text = _clean_text("".join(extractor.pieces), warnings, keep_newlines=True)
    return _tidy_lines(text.translate(_INVISIBLE))[:MAX_TEXT_CHARS]


def _tidy_lines(text: str) -> str:
    """Strip each line, and keep at most one blank line in a row."""
    lines: list[str] = []
    for line in text.split("\n"):
        line = line.strip(" \t\r")
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip("\n")


def _snippet(text: str) -> str:
    """The first words of the text, skipping quoted lines and the "On …, X wrote:" before them."""
    lines = [line.strip() for line in text[:_SNIPPET_SCAN_CHARS].split("\n")]
    lines = [line for line in lines if line]
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        if line.startswith(">"):
            continue
        if line == "--" and kept:  # the signature starts
            break
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if line.endswith(":") and next_line.startswith(">"):
            continue
        kept.append(line)
        size += len(line) + 1
        if size > MAX_SNIPPET_CHARS:
            break
    if not kept:  # nothing but quotes: better them than nothing
        kept = [line.lstrip("> ") for line in lines[:20]]
    return _collapse(" ".join(kept).translate(_INVISIBLE))[:MAX_SNIPPET_CHARS].rstrip()
