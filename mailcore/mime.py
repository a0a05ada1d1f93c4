"""Parse raw RFC 822 bytes into plain data, never raising: every email is hostile input.

``parse_message`` is called on every message the sync fetches. Whatever it cannot make sense of
is kept as well as it can be and recorded in ``warnings`` (codes below); the raw bytes stay
stored, so a message can always be shown as source.

Warning codes: ``defect:<Name>`` (the email package's parse defects), ``bad-charset:<name>``,
``missing-header:<name>``, ``bad-date``, ``date-without-zone``, ``nul-bytes``, ``too-deep``,
``too-many-parts``, ``too-many-addresses:<header>``, ``header-too-long:<header>``,
``8bit-header``, ``unparseable`` (the parser itself failed; the fallback fields are empty).
"""

from __future__ import annotations

import codecs
import contextlib
import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

MAX_DEPTH = 20
MAX_PARTS = 500
MAX_ADDRESSES = 1000
MAX_HEADER_CHARS = 16_384
MAX_SUBJECT = 998
MAX_ID = 995
MAX_REFERENCES = 100
MAX_TEXT = 1_000_000
MAX_HTML = 5_000_000
SNIPPET_LENGTH = 200
AUTH_HEADERS = (
    "authentication-results",
    "received-spf",
    "dkim-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
)
MAX_AUTH_VALUES = 20
FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")
ID_PATTERN = re.compile(r"<([^<>\s]{1,995})>")


@dataclass(frozen=True)
class Address:
    name: str
    email: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    content_id: str
    disposition: str
    part_path: str


@dataclass(frozen=True)
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
    date: datetime | None = None
    date_offset_minutes: int | None = None
    size: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    text: str = ""
    html: str | None = None
    snippet: str = ""
    auth_headers: dict[str, list[str]] = field(default_factory=dict)
    list_id: str = ""
    has_attachments: bool = False
    warnings: list[str] = field(default_factory=list)


def _clean(text: str, warnings: list[str] | None = None) -> str:
    if "\x00" in text:
        if warnings is not None and "nul-bytes" not in warnings:
            warnings.append("nul-bytes")
        text = text.replace("\x00", "")
    return text


def decode_header_value(value: str | bytes) -> str:
    """An RFC 2047 header decoded to text, whatever state it is in."""
    if isinstance(value, bytes):
        value = _decode_bytes(value, "utf-8", [])
    value = str(value)[: MAX_HEADER_CHARS * 4]
    if "=?" not in value:
        return _clean(value)
    try:
        return _clean(str(make_header(decode_header(value))))
    except (LookupError, UnicodeError, ValueError, AssertionError, IndexError):
        return _clean(value)  # malformed encoded words are shown as they are


def _decode_bytes(data: bytes, charset: str | None, warnings: list[str]) -> str:
    if charset:
        name = charset.strip().strip('"').lower()
        try:
            codecs.lookup(name)
        except LookupError:
            warnings.append(f"bad-charset:{name[:40]}")
        else:
            try:
                return data.decode(name)
            except UnicodeDecodeError:
                warnings.append(f"bad-charset:{name[:40]}")
    for fallback in FALLBACK_CHARSETS:
        try:
            return data.decode(fallback)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # unreachable: latin-1 decodes every byte


def _header(message: Message, name: str, warnings: list[str]) -> str:
    try:
        raw = message.get(name)
    except Exception:  # noqa: BLE001 -- the policy's header parser raises on garbage of all kinds
        raw = message.get_all(name, failobj=[None])[0] if hasattr(message, "get_all") else None
    if raw is None:
        return ""
    value = str(raw)
    if len(value) > MAX_HEADER_CHARS:
        warnings.append(f"header-too-long:{name.lower()}")
        value = value[:MAX_HEADER_CHARS]
    if any(ord(char) > 127 for char in value) and "=?" not in value:
        if "8bit-header" not in warnings:
            warnings.append("8bit-header")
        # Surrogate-escaped bytes come back as they were, then decode as UTF-8 or latin-1.
        value = _decode_bytes(value.encode("utf-8", "surrogateescape"), "utf-8", [])
    return _clean(decode_header_value(value), warnings)


def parse_addresses(
    value: str, warnings: list[str] | None = None, header: str = "to"
) -> list[Address]:
    warnings = warnings if warnings is not None else []
    if not value:
        return []
    if value.count("@") > MAX_ADDRESSES:
        warnings.append(f"too-many-addresses:{header}")
        value = ",".join(value.split(",")[:MAX_ADDRESSES])
    try:
        pairs = getaddresses([value])
    except Exception:  # noqa: BLE001 -- email.utils raises odd errors on hostile input
        pairs = []
    found = []
    for name, address in pairs[:MAX_ADDRESSES]:
        name = decode_header_value(name).strip()[:300]
        address = address.strip()[:320]
        if "@" in address:
            local, _, domain = address.rpartition("@")
            domain = domain.lower()
            if domain.startswith("xn--") or ".xn--" in domain:
                with contextlib.suppress(UnicodeError):  # not valid IDNA: shown as it came
                    domain = domain.encode("ascii").decode("idna")
            address = f"{local}@{domain}"
        elif not address and not name:
            continue
        found.append(Address(name=name, email=address))
    return found


def _ids(value: str) -> list[str]:
    ids = ID_PATTERN.findall(value)
    if not ids and value.strip():
        ids = [token for token in value.split() if "@" in token]
    seen: dict[str, None] = {}
    for item in ids:
        seen.setdefault(item.strip("<>")[:MAX_ID], None)
    return list(seen)


def _date(message: Message, warnings: list[str]) -> tuple[datetime | None, int | None]:
    value = _header(message, "date", warnings)
    if not value:
        warnings.append("missing-header:date")
        return None, None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        warnings.append("bad-date")
        return None, None
    if parsed is None or not 1970 <= parsed.year <= 2100:
        warnings.append("bad-date")
        return None, None
    if parsed.tzinfo is None:
        warnings.append("date-without-zone")
        return parsed.replace(tzinfo=UTC), None
    offset = parsed.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else None
    return parsed.astimezone(UTC), minutes


class _TextFromHtml(HTMLParser):
    """Visible text of an HTML body; script and style contents are dropped."""

    SKIP = {"script", "style", "head", "title", "template"}
    BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextFromHtml()
    # html.parser is lenient, but hostile input is hostile: keep what was read before it gave up.
    with contextlib.suppress(Exception):
        extractor.feed(html[:MAX_HTML])
        extractor.close()
    text = "".join(extractor.parts)
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t\r\f\v]+", " ", text)).strip()


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 -- broken base64/quoted-printable
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _part_text(part: Message, warnings: list[str]) -> str:
    return _clean(
        _decode_bytes(_payload_bytes(part), part.get_content_charset(), warnings), warnings
    )


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 -- RFC 2231 parameters can be broken in many ways
        name = None
    if not name:
        try:
            name = part.get_param("name")
        except Exception:  # noqa: BLE001
            name = None
        if isinstance(name, tuple):  # an RFC 2231 triple
            name = email.utils.collapse_rfc2231_value(name)
    return decode_header_value(str(name)).strip()[:255] if name else ""


def _walk(
    part: Message, path: str, depth: int, state: dict[str, object], warnings: list[str]
) -> None:
    state["parts"] = int(state["parts"]) + 1  # type: ignore[call-overload]
    if int(state["parts"]) > MAX_PARTS:  # type: ignore[call-overload]
        if "too-many-parts" not in warnings:
            warnings.append("too-many-parts")
        return
    if depth > MAX_DEPTH:
        if "too-deep" not in warnings:
            warnings.append("too-deep")
        return
    content_type = part.get_content_type()
    if part.is_multipart():
        children = part.get_payload()
        if isinstance(children, list):
            for index, child in enumerate(children, start=1):
                if isinstance(child, Message):
                    child_path = f"{path}.{index}" if path else str(index)
                    _walk(child, child_path, depth + 1, state, warnings)
        return
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    is_body = disposition != "attachment" and not filename
    if is_body and content_type == "text/plain" and not state["text"]:
        state["text"] = _part_text(part, warnings)[:MAX_TEXT]
        return
    if is_body and content_type == "text/html" and state["html"] is None:
        state["html"] = _part_text(part, warnings)[:MAX_HTML]
        return
    if is_body and content_type.startswith("text/") and not filename:
        return  # other text bodies (calendar, enriched): kept in the raw message only
    content_id = str(part.get("content-id", "") or "").strip().strip("<>")[:MAX_ID]
    attachments: list[Attachment] = state["attachments"]  # type: ignore[assignment]
    attachments.append(
        Attachment(
            filename=filename,
            content_type=content_type[:100],
            size=len(_payload_bytes(part)),
            content_id=content_id,
            disposition=disposition or ("inline" if content_id else "attachment"),
            part_path=path or "1",
        )
    )


def _snippet(text: str) -> str:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    flat = re.sub(r"\s+", " ", " ".join(lines) if lines else text).strip()
    return flat[:SNIPPET_LENGTH]


def parse_message(raw: bytes) -> ParsedMessage:
    warnings: list[str] = []
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 -- the parser of last resort failed: keep only the size
        return ParsedMessage(size=len(raw), warnings=["unparseable"])
    for defect in getattr(message, "defects", [])[:10]:
        code = f"defect:{type(defect).__name__}"
        if code not in warnings:
            warnings.append(code)
    if b"\x00" in raw:
        warnings.append("nul-bytes")

    header = lambda name: _header(message, name, warnings)  # noqa: E731
    addresses = lambda name: parse_addresses(header(name), warnings, name)  # noqa: E731
    message_ids = _ids(header("message-id"))
    if not message_ids:
        warnings.append("missing-header:message-id")
    from_ = addresses("from")
    if not from_:
        warnings.append("missing-header:from")
    date, offset = _date(message, warnings)
    state: dict[str, object] = {"parts": 0, "text": "", "html": None, "attachments": []}
    try:
        _walk(message, "", 0, state, warnings)
    except RecursionError:
        warnings.append("too-deep")
    text = str(state["text"])
    html = state["html"] if isinstance(state["html"], str) else None
    if not text and html:
        text = html_to_text(html)[:MAX_TEXT]
    auth: dict[str, list[str]] = {}
    for name in AUTH_HEADERS:
        values = message.get_all(name) or []
        if values:
            auth[name] = [
                _clean(str(value))[:MAX_HEADER_CHARS] for value in values[:MAX_AUTH_VALUES]
            ]
    attachments: list[Attachment] = state["attachments"]  # type: ignore[assignment]
    references = _ids(header("references"))
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    in_reply_to = _ids(header("in-reply-to"))
    subject = re.sub(r"\s+", " ", header("subject")).strip()[:MAX_SUBJECT]
    return ParsedMessage(
        message_id=message_ids[0] if message_ids else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=references,
        subject=subject,
        from_=from_,
        sender=addresses("sender"),
        reply_to=addresses("reply-to"),
        to=addresses("to"),
        cc=addresses("cc"),
        bcc=addresses("bcc"),
        date=date,
        date_offset_minutes=offset,
        size=len(raw),
        attachments=attachments,
        text=text,
        html=html,
        snippet=_snippet(text),
        auth_headers=auth,
        list_id=header("list-id")[:300],
        has_attachments=any(a.disposition == "attachment" or a.filename for a in attachments),
        warnings=warnings,
    )
