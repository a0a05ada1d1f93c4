"""A stored message as the reader sees it: its body made safe, its parts, its signed URLs.

Raw bytes are read from storage and parsed (`mailcore.mime.parse_message`); an HTML body is
sanitised (`mailcore.sanitize.sanitize_html`) once per message and images mode and the result
cached; a text body, or an HTML one over the sanitiser's budget, becomes escaped text with its
links made clickable and its quoted blocks folded. The sanitised HTML is never edited afterwards.

The HTML body is shown in a sandboxed iframe (no scripts, an opaque origin) whose document has
its own strict Content-Security-Policy. From an opaque origin the browser does not send the
session cookie with the frame's own requests, so the URLs in the body (inline ``cid:`` parts,
proxied images) and the frame's URL itself carry a signature (`sign`): the user and the message
they are for, what they give access to, and when they were made; they last `SIGNED_MAX_AGE`.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.message import Message as MimePart
from enum import StrEnum
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from mail import proxy
from mailboxes import rawstore
from mailboxes.models import Message, MessageContent
from mailcore import mime
from mailcore.sanitize import sanitize_html, strip_tracking_params

RENDER_VERSION = 1  # bump when the rendering changes: cached bodies are then not used
CACHE_SECONDS = 6 * 3600  # well under SIGNED_MAX_AGE: cached URLs stay valid for hours after
SIGNED_MAX_AGE = 24 * 3600
MAX_QUOTE_DEPTH = 8


# Signed URLs ------------------------------------------------------------------------------------


class Purpose(StrEnum):
    BODY = "body"  # value: ""
    PART = "part"  # value: the part's path, "2" or "1.2"
    IMAGE = "image"  # value: the remote image's URL


@dataclass(frozen=True)
class Grant:
    """What a valid signed URL allows: `value` of message `message_id`, for user `user_id`."""

    user_id: int
    message_id: int
    value: str


def _signer(purpose: Purpose) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"courrier.mail.message.{purpose}")


def sign(purpose: Purpose, user_id: int, message_id: int, value: str = "") -> str:
    return _signer(purpose).sign_object([user_id, message_id, value], compress=True)


def unsign(purpose: Purpose, token: str) -> Grant | None:
    """The grant of a token, or None when it is forged, altered, expired or for another use."""
    try:
        data = _signer(purpose).unsign_object(token, max_age=SIGNED_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if (
        not isinstance(data, list)
        or len(data) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in data[:2])
        or not isinstance(data[2], str)
    ):
        return None
    return Grant(data[0], data[1], data[2])


def body_url(message: Message, *, images: bool) -> str:
    token = sign(Purpose.BODY, message.folder.account.user_id, message.pk)
    query = {"t": token, **({"images": "1"} if images else {})}
    return f"{reverse('mail-message-body', args=[message.pk])}?{urllib.parse.urlencode(query)}"


def part_url(user_id: int, message_id: int, part: str, *, inline: bool = False) -> str:
    token = sign(Purpose.PART, user_id, message_id, part)
    query = {**({"inline": "1"} if inline else {}), "t": token}
    path = reverse("mail-message-part", args=[message_id, part])
    return f"{path}?{urllib.parse.urlencode(query)}"


def image_url_maker(user_id: int, message_id: int) -> Callable[[str], str]:
    """A pure function from a remote image URL to its proxied, signed URL: it runs in the
    sanitiser's forked child, so everything it needs is made here, in the parent."""
    signer = _signer(Purpose.IMAGE)
    base = reverse("mail-image-proxy", args=[message_id])

    def image_url(url: str) -> str:
        token = signer.sign_object([user_id, message_id, url], compress=True)
        return f"{base}?{urllib.parse.urlencode({'t': token})}"

    return image_url


# The body ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedBody:
    """A message's body, ready to show. ``html`` is sanitised HTML for the sandboxed frame when
    ``kind`` is "html", else the text as escaped HTML (``over_budget`` says why an HTML body
    is shown as text); "missing" when the raw bytes are gone."""

    kind: str
    html: str
    images_shown: bool = False
    remote_images: int = 0
    tracking_pixels: int = 0
    mismatched_links: int = 0
    stripped_params: int = 0
    over_budget: str = ""
    text_chars: int = 0
    attachments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def safe_html(self) -> SafeString:
        return mark_safe(self.html)  # noqa: S308 - sanitised by mailcore.sanitize or escaped here

    @property
    def images_blocked(self) -> bool:
        return self.kind == "html" and self.remote_images > 0 and not self.images_shown


def cache_key(message: Message, *, images: bool) -> str:
    # The user and message are in the key because the HTML holds URLs signed for them.
    mode = "images" if images else "blocked"
    content = message.content
    user_id = message.folder.account.user_id
    return f"mail:body:v{RENDER_VERSION}:{content.sha256}:{mode}:{message.pk}:{user_id}"


def render_body(message: Message, *, images: bool) -> RenderedBody:
    """The message's body (cached); `message` comes with its content, folder and account."""
    key = cache_key(message, images=images)
    cached = cache.get(key)
    if cached is not None:
        return RenderedBody(**cached)
    raw = read_raw(message.content)
    if raw is None:
        return RenderedBody(kind="missing", html="")  # not cached: storage may come back
    body = _render(mime.parse_message(raw), message, images=images)
    cache.set(key, asdict(body), CACHE_SECONDS)
    return body


def read_raw(content: MessageContent) -> bytes | None:
    try:
        return rawstore.read(content)
    except OSError:
        return None


def _render(parsed: mime.ParsedMessage, message: Message, *, images: bool) -> RenderedBody:
    user_id = message.folder.account.user_id
    attachments = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "content_id": a.content_id,
            "part": a.part_path,
        }
        for a in parsed.attachments
    ]
    text = parsed.text
    if parsed.html is None:
        return RenderedBody(
            kind="text",
            html=text_to_html(text),
            text_chars=len(text),
            attachments=attachments,
        )
    cids = {
        a.content_id: part_url(user_id, message.pk, a.part_path, inline=True)
        for a in parsed.attachments
        if a.content_id and a.content_type.startswith("image/")
    }
    folded = {cid.lower(): url for cid, url in cids.items()}

    def cid_url(content_id: str) -> str | None:
        return cids.get(content_id) or folded.get(content_id.lower())

    safe = sanitize_html(
        parsed.html,
        images=images,
        proxy_url=image_url_maker(user_id, message.pk) if images else None,
        cid_url=cid_url,
    )
    counts = {
        "images_shown": images,
        "remote_images": safe.remote_images,
        "tracking_pixels": safe.tracking_pixels,
        "mismatched_links": safe.mismatched_links,
        "stripped_params": safe.stripped_params,
        "text_chars": len(text),
        "attachments": attachments,
    }
    if safe.over_budget:
        return RenderedBody(
            kind="text", html=text_to_html(text), over_budget=safe.over_budget, **counts
        )
    return RenderedBody(kind="html", html=safe.html, **counts)


def notice(body: RenderedBody) -> str:
    """What to say above a body shown otherwise than it was sent."""
    if body.over_budget:
        return _("This message's formatting was too complex to show safely; here is its text.")
    if body.kind == "missing":
        return _("This message's content is not available any more.")
    return ""


def frame_height(body: RenderedBody) -> int:
    """A first guess, in pixels, at the height of the frame: a sandboxed frame without scripts
    cannot tell its parent how tall it is."""
    return max(240, min(1400, 120 + body.text_chars // 4))


# Text as HTML -----------------------------------------------------------------------------------

_LINK = re.compile(r"(?:https?://|mailto:)[^\s<>\"'`\x00-\x1f\x7f]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*"
_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<"}


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML: line breaks kept, http, https and mailto links made
    clickable (without tracking parameters), quoted blocks ("> …") folded in <details>."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(_blocks(lines, 0))


def _blocks(lines: list[str], depth: int) -> list[str]:
    out: list[str] = []
    index = 0
    folding = depth < MAX_QUOTE_DEPTH
    while index < len(lines):
        start = index
        quoted = folding and lines[index].startswith(">")
        while index < len(lines) and (folding and lines[index].startswith(">")) == quoted:
            index += 1
        run = lines[start:index]
        if not quoted:
            out.append(
                format_html('<div class="text">{}</div>', mark_safe("<br>".join(map(_line, run))))  # noqa: S308 - built from escaped pieces
            )
            continue
        inner = "".join(_blocks([_unquote(line) for line in run], depth + 1))
        if depth:
            out.append(f"<blockquote>{inner}</blockquote>")
        else:
            summary = _("Quoted text (%(count)d lines)") % {"count": len(run)}
            out.append(
                format_html(
                    '<details class="quote"><summary>{}</summary><blockquote>{}</blockquote>'
                    "</details>",
                    summary,
                    mark_safe(inner),  # noqa: S308 - built from escaped pieces
                )
            )
    return out


def _unquote(line: str) -> str:
    line = line[1:]
    return line[1:] if line.startswith(" ") else line


def _line(line: str) -> str:
    pieces: list[str] = []
    position = 0
    for match in _LINK.finditer(line):
        url = _trim(match.group())
        end = match.start() + len(url)
        pieces.append(_spaces(escape(line[position : match.start()])))
        href = _safe_href(url)
        if href is None:
            pieces.append(escape(url))
        else:
            pieces.append(
                format_html(
                    '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', href, url
                )
            )
        position = end
    pieces.append(_spaces(escape(line[position:])))
    return "".join(pieces)


def _spaces(escaped: str) -> str:
    """Runs of spaces kept (indented text, signatures) without <pre>'s long lines."""
    return escaped.replace("  ", " \u00a0").replace("\t", "\u00a0\u00a0\u00a0\u00a0")


def _trim(url: str) -> str:
    """A URL without the punctuation that ends the sentence around it; in linear time, as a
    line can be a megabyte of ")"."""
    counts = {char: url.count(char) for char in (*_PAIRS, *_PAIRS.values())}
    end = len(url)
    while end:
        last = url[end - 1]
        unbalanced = last in _PAIRS and counts[last] > counts[_PAIRS[last]]
        if last not in _TRAILING and not unbalanced:
            break
        if last in counts:
            counts[last] -= 1
        end -= 1
    return url[:end]


def _safe_href(url: str) -> str | None:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "mailto":
        return url if len(url) > len("mailto:") else None
    try:
        parts = urllib.parse.urlsplit(url)
        _port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return strip_tracking_params(url)


# The frame's document ---------------------------------------------------------------------------

# Links in a body open in a new tab (allow-popups), outside the sandbox (…-to-escape-sandbox) so
# that the site they open works; without allow-scripts nothing in the body can open one itself.
BODY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src 'none'; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
PART_POLICY = "default-src 'none'; sandbox"

DOCUMENT_STYLE = """
html { color-scheme: light; }
body { margin: 0; padding: 12px 16px; font: 15px/1.5 system-ui, sans-serif; color: #1f1f1f;
       background: #fff; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
table { max-width: 100%; }
pre { white-space: pre-wrap; }
blockquote { margin: .4em 0; padding-left: .8em; border-left: 3px solid #c8c8d0; color: #555; }
details.quote > summary { cursor: pointer; color: #555; font-size: 13px; }
img[data-courrier-blocked] { background: #eef0f4; outline: 1px dashed #aab; min-width: 24px;
                             min-height: 24px; }
a[data-courrier-mismatch]::after { content: " [" attr(data-courrier-mismatch) "]";
                                   color: #a33; font-size: 12px; }
.courrier-notice { margin: 0 0 12px; padding: 8px 12px; background: #fff4ce; border-radius: 6px; }
@media print { body { padding: 0; } details.quote { display: block; } }
"""


def body_document(body: RenderedBody) -> str:
    """The whole document of the body frame (its styles allowed by its own CSP only)."""
    message = notice(body)
    notice_html = format_html('<p class="courrier-notice">{}</p>', message) if message else ""
    return format_html(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><title>{}</title><style>{}</style></head>'
        '<body class="{}">{}{}</body></html>',
        _("Message"),
        mark_safe(DOCUMENT_STYLE),  # noqa: S308 - a constant
        body.kind,
        notice_html,
        body.safe_html,
    )


# Attachments ------------------------------------------------------------------------------------

# Extensions whose files run code when opened (or are commonly used to smuggle such files).
EXECUTABLE_EXTENSIONS = frozenset(
    {
        "app", "appref-ms", "application", "apk", "bat", "chm", "cmd", "com", "cpl", "dll",
        "dmg", "docm", "dotm", "exe", "gadget", "hta", "htm", "html", "img", "inf", "iso",
        "jar", "js", "jse", "lnk", "mht", "mhtml", "msc", "msi", "msp", "one", "pif", "pkg",
        "potm", "ppam", "pptm", "ps1", "psm1", "reg", "scf", "scr", "sh", "shtml", "svg",
        "sys", "url", "vb", "vbe", "vbs", "vhd", "vhdx", "ws", "wsc", "wsf", "wsh", "xht",
        "xhtml", "xlam", "xlsm", "xltm",
    }
)  # fmt: skip
# Fillers that render as blank in most fonts without being white space.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_PART_PATH = re.compile(r"[1-9][0-9]{0,3}(?:\.[1-9][0-9]{0,3}){0,19}")
PREVIEW_TYPES = frozenset(
    {
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
        "image/x-icon", "application/pdf",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Filename:
    """A file name fit to show and to save, and why it deserves care."""

    text: str
    hidden_characters: bool = False
    double_extension: str = ""  # "pdf.exe" when a harmless-looking type hides another one
    executable: str = ""  # the extension, when it names a type that runs code

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.hidden_characters:
            found.append(
                _(
                    "This file's name held invisible or direction-changing characters, which "
                    "can disguise its type; they were removed."
                )
            )
        if self.double_extension:
            shown, real = self.double_extension.rsplit(".", 1)
            found.append(
                _("This file ends in .%(real)s after .%(shown)s: it is a .%(real)s file.")
                % {"real": real, "shown": shown}
            )
        if self.executable:
            found.append(
                _(
                    "Files of this type (.%(ext)s) can run programs on your computer: open it "
                    "only if you expected it."
                )
                % {"ext": self.executable}
            )
        return found


def clean_filename(name: str, content_type: str = "", part: str = "") -> Filename:
    """The name without control, format (bidi, zero-width) and invisible characters."""
    kept = []
    hidden = False
    for char in unicodedata.normalize("NFC", name):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp") or char in _INVISIBLE_LETTERS:
            hidden = True
            continue
        kept.append(" " if category == "Zs" else char)
    text = " ".join("".join(kept).replace("/", "_").replace("\\", "_").split()).strip(". ")
    if not text:
        extension = mimetypes.guess_extension(content_type or "") or ".bin"
        text = f"attachment-{part or 'file'}{extension}"
    extensions = [e.strip().lower() for e in text.split(".")[1:]]
    last = extensions[-1] if extensions else ""
    inner = extensions[-2] if len(extensions) >= 2 else ""
    double = ""
    if (
        1 <= len(inner) <= 5
        and inner != last
        and inner.isalnum()
        and last.isalnum()
        and last in EXECUTABLE_EXTENSIONS
        and mimetypes.guess_type(f"x.{inner}")[0]
    ):
        # "invoice.pdf.exe", "photo.jpg.html"; not "report.2026.exe" (2026 is no type).
        double = f"{inner}.{last}"
    return Filename(
        text=text[:255],
        hidden_characters=hidden,
        double_extension=double,
        executable=last if last in EXECUTABLE_EXTENSIONS else "",
    )


@dataclass(frozen=True)
class AttachmentView:
    part: str
    filename: Filename
    content_type: str
    size: int
    inline: bool  # shown in the body through its Content-ID
    download_url: str
    preview_url: str  # "" when the type is never shown in the browser


def attachments(message: Message, body: RenderedBody) -> list[AttachmentView]:
    """The message's parts other than its body text (opened from the page: no signature)."""
    listed = body.attachments or list(message.content.attachments or [])
    views = []
    for item in listed:
        part = str(item.get("part", ""))
        if not _PART_PATH.fullmatch(part):
            continue
        content_type = str(item.get("content_type", "")).lower()
        filename = clean_filename(str(item.get("filename", "")), content_type, part)
        preview = content_type in PREVIEW_TYPES or content_type == "image/jpg"
        download = reverse("mail-message-part", args=[message.pk, part])
        views.append(
            AttachmentView(
                part=part,
                filename=filename,
                content_type=content_type,
                size=int(item.get("size") or 0),
                inline=bool(item.get("content_id")) and content_type.startswith("image/"),
                download_url=download,
                preview_url=f"{download}?inline=1" if preview else "",
            )
        )
    return views


def valid_part_path(part: str) -> bool:
    return _PART_PATH.fullmatch(part) is not None


def find_part(raw: bytes, path: str) -> bytes | None:
    """The decoded bytes of the leaf part at `path`, numbered as mailcore.mime numbers them
    (IMAP section numbers: a single-part message's body is "1"); None when there is none.

    The tree and the decoding are mailcore.mime's own, so that the path and bytes are those of
    the attachment it listed (its parser bounds hostile nesting, its decoder mends broken
    quoted-printable and base64 as it did when it measured the part).
    """
    if not valid_part_path(path):
        return None
    warnings = mime._Warnings()
    root, readable = mime._parse_tree(raw, warnings)
    if not readable:
        return None
    node: MimePart = root
    for depth, number in enumerate(int(n) for n in path.split(".")):
        payload = node.get_payload()
        if isinstance(payload, list) and node.get_content_type().startswith("multipart/"):
            if number > len(payload) or not isinstance(payload[number - 1], MimePart):
                return None
            node = payload[number - 1]
        elif depth == 0 and number == 1 and path == "1":
            break  # the body of a single-part message
        else:
            return None
    payload = node.get_payload()
    if isinstance(payload, list) and node.get_content_type().startswith("multipart/"):
        return None
    if isinstance(payload, list):  # message/rfc822 and kin: the embedded message
        inner = payload[0] if payload and isinstance(payload[0], MimePart) else None
        try:
            return inner.as_bytes() if inner is not None else b""
        except (*mime._EMAIL_ERRORS, UnicodeError):
            return None
    return mime._Walker(warnings)._payload_bytes(node)


def sniff_preview_type(data: bytes) -> str | None:
    """The type a part may be shown inline as: a raster image or a PDF, by its bytes."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return proxy.sniff_image_type(data[:64])


def content_disposition(disposition: str, filename: str) -> str:
    """An RFC 6266 header: an ASCII fallback name and the UTF-8 one (RFC 5987 encoding)."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9 ._()+\-]", "_", folded).strip(" .") or "attachment"
    encoded = urllib.parse.quote(filename, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
