"""An email's decoded HTML body in, HTML that is safe to show out, or a refusal.

Every message is hostile input. `sanitize_html` parses the body the way a browser does (bleach's
html5lib), keeps an allowlist of tags, attributes, URL schemes and CSS properties
(`ALLOWED_TAGS`, `ALLOWED_ATTRIBUTES`, `ALLOWED_PROTOCOLS`, `ALLOWED_CSS_PROPERTIES`), and returns
a body fragment meant for a sandboxed ``<iframe srcdoc>`` (no scripts, no same origin).

All rewriting happens on the token stream, before serialisation; the output is never edited
afterwards, with regular expressions or otherwise. The stream goes through, in order:

1. `_Prepare`: drops ``script``, ``style``, ``title``, ``svg``, ``math``, ``iframe``… *with* their
   content (bleach's strip keeps the text inside), and decodes every attribute value's character
   references, so that the checks below see what a browser sees.
2. bleach's `BleachSanitizerFilter`: the allowlists; CSS through `EmailCSSSanitizer`, which also
   checks each declaration's value (no ``url()``, ``expression()``, ``var()``, ``image-set()``…).
3. `_MailFilter`: links and images (below).
4. html5lib's serializer, not bleach's: attribute values are decoded text by then and are escaped
   once on output, so the browser decodes exactly the value that was checked. (bleach leaves
   character references in, so its checks read ``&#39;`` where the browser reads a quote, and
   its serializer writes some references back as they came and escapes others.)

Links: only absolute ``http``, ``https``, ``mailto`` and ``tel`` URLs stay, rebuilt from their parts
(so the browser reads the URL that was checked: backslashes, tabs, ``//host`` and the like are
resolved here). Every link opens in a new tab without referrer, shows its real target in
``title``, loses its tracking parameters (`strip_tracking_params`), and is flagged with
``data-courrier-mismatch="<real host>"`` when its text reads as a domain other than its target's.

Images: ``cid:`` sources go through the caller's ``cid_url`` (``None`` drops the image); ``data:``
sources are kept only for PNG, GIF, JPEG and WebP in base64 up to `MAX_DATA_URI_CHARS` (never
SVG); remote sources (``src``, ``srcset``, the ``background`` attribute) are blocked by default —
nothing of the sender's URL remains, the image keeps its size and alt text and gets
``data-courrier-blocked`` — or, with ``images=True``, go through the caller's ``proxy_url`` and
never load directly. Tracking pixels (tiny, hidden or from `TRACKER_HOSTS`) are removed either way.
Relative URLs are dropped everywhere: in a srcdoc iframe they would point at the webmail itself.

Budget. Ordinary mail costs about 1.5 ms a KB here (bleach 6.4, one core; ~70 µs a tag): 1 ms
for a short reply, 15 ms for a 10 KB newsletter, 0.25 s for 145 KB, 1.1 s for 680 KB. Hostile
mail costs far more, because html5lib is not linear (the brief measured 23 s for 20,000
attributes and 10 s for 10,000 nested elements; here, without the pre-scan below):

- attributes of one tag are quadratic (each is checked against all before it): 500 take 18 ms,
  20,000 take 18 s, 30,000 take 36 s;
- nesting is quadratic (scope checks walk the open-element stack): 500 divs 28 ms, 10,000 divs
  5.6 s, 20,000 divs 21 s; unclosed formatting elements with distinct attributes are worse (the
  "Noah's Ark" check): 500 ``<b id=N>`` 0.1 s, 4,000 take 7 s;
- misnested formatting elements are re-created in every later block ("reconstruct the active
  formatting elements"): 8 KB of ``<div><b id=1>…<b id=200></div>`` then ``<div>x</div>``
  repeated take 1.5 s and 26 KB take 10 s (1 KB of it, 170 ms);
- a long numeric character reference is quadratic in bleach (200,000 digits: 4.5 s);
- html5lib's etree walker is quadratic in the number of siblings (8,000 paragraphs: 2.8 s), so
  `_walk` replaces it (0.4 s).

Hence three lines of defence, all returning a `SafeHtml` with ``over_budget`` set and no HTML (the
caller then shows the text body with a notice):

1. ``too-large``: more than `MAX_HTML_CHARS` characters (the bound `mailcore.mime` keeps too).
2. ``too-complex``: a linear pre-scan (`_shape`: about 2 µs a tag, 40 ms for 680 KB) counts tags,
   attributes in one tag, nesting (a model of the open-element stack that ignores end tags
   nothing open matches) and long character references, and refuses what is over `MAX_TAGS`,
   `MAX_ATTRIBUTES_PER_TAG`, `MAX_DEPTH` or `MAX_CHARREF_DIGITS`: each of the shapes above is
   refused in under 30 ms. It is a heuristic, not a guarantee: it does not model the
   reconstruction of misnested formatting elements, and a ``>`` in a quoted value hides the
   rest of a tag from it.
3. ``timeout``: the guarantee. A body that is not tiny is sanitised in a forked child that is
   killed (SIGKILL) and reaped when ``timeout`` seconds have passed; its address space is also
   capped (`CHILD_MEMORY_BYTES` above the parent's, ``too-complex`` when reached). The fork costs
   about 10 ms with Django loaded (5 ms for the fork itself, the rest in copied pages), small
   beside a newsletter's cost, and the caller caches the result.

Tiny bodies stay in-process: at most `IN_PROCESS_MAX_CHARS` characters, `IN_PROCESS_MAX_TAGS`
"<" and `IN_PROCESS_MAX_WORDS` words, which bounds every shape above (the worst found: 20 ms).
A size threshold alone would not do: the reconstruction above makes 2 KB cost 0.5 s.

The child is a plain `os.fork`, not `multiprocessing`: Celery's prefork workers are daemonic
processes, which `multiprocessing` forbids to have children, and a pool's worker cannot be killed
without breaking the pool. Everything the child needs is imported before any fork (an import in
the child could wait for a lock another thread held at the fork); the child stops collecting
the parent's objects, closes the descriptors it inherited (the parent's database and broker
sockets among them), answers through a pipe in JSON and leaves with `os._exit`. The caller's
``proxy_url`` and ``cid_url`` run in the child too, so they must be pure: build or sign a
string, with no database, cache or network access. (Python 3.12 warns about forking a process
that has threads; that is the case this design accepts, with the timeout as the backstop.)

Other reason code: ``error`` means sanitising raised (a bug here, logged) or the child died.
No Django here: this module is plain Python, tested alone.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import ipaddress
import json
import logging
import os
import re
import resource
import select
import signal
import struct
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

import tinycss2
from bleach import html5lib_shim
from bleach.css_sanitizer import CSSSanitizer
from bleach.sanitizer import BleachSanitizerFilter

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_CSS_PROPERTIES",
    "ALLOWED_PROTOCOLS",
    "ALLOWED_TAGS",
    "DROPPED_WITH_CONTENT",
    "TRACKER_HOSTS",
    "TRACKING_PARAMS",
    "EmailCSSSanitizer",
    "SafeHtml",
    "sanitize_html",
    "strip_tracking_params",
]

logger = logging.getLogger(__name__)

MAX_HTML_CHARS = 1_000_000  # as mailcore.mime.MAX_HTML_CHARS
MAX_TAGS = 25_000
MAX_ATTRIBUTES_PER_TAG = 500
MAX_DEPTH = 500
MAX_CHARREF_DIGITS = 32  # bleach's entity matcher is quadratic in a reference's length
MAX_DATA_URI_CHARS = 512 * 1024
MAX_LINK_TEXT_CHARS = 300  # longer link text does not read as a URL
IN_PROCESS_MAX_CHARS = 4096
IN_PROCESS_MAX_TAGS = 64
IN_PROCESS_MAX_WORDS = 512
CHILD_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_TIMEOUT = 5.0

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big",
        "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
        "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main", "mark",
        "nav", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strike",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr",
        "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip

# Dropped with everything inside: their content is code, metadata, or meant for another parser.
# Other disallowed elements (form, input, button, font-less wrappers…) lose their tags only.
DROPPED_WITH_CONTENT = frozenset(
    {
        "applet", "audio", "base", "basefont", "bgsound", "canvas", "datalist", "embed",
        "frame", "frameset", "head", "iframe", "link", "math", "meta", "noembed", "noframes",
        "noscript", "object", "option", "optgroup", "param", "script", "select",
        "source", "style", "svg", "template", "textarea", "title", "track", "video", "xml",
    }
)  # fmt: skip

_TABLE_PARTS = ["align", "valign", "bgcolor", "background", "height"]
ALLOWED_ATTRIBUTES: dict[str, list[str]] = {
    "*": ["style", "title", "dir", "lang", "align"],
    "a": ["href"],
    "blockquote": ["type"],
    "col": ["span", "width", "valign"],
    "colgroup": ["span", "width", "valign"],
    "font": ["color", "face", "size"],
    "hr": ["width", "size", "noshade", "color"],
    "img": ["src", "srcset", "alt", "width", "height", "border", "hspace", "vspace"],
    "li": ["value", "type"],
    "ol": ["start", "type", "reversed"],
    "ul": ["type"],
    "table": [
        "width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "background",
        "summary", "frame", "rules",
    ],
    "tbody": _TABLE_PARTS,
    "thead": _TABLE_PARTS,
    "tfoot": _TABLE_PARTS,
    "tr": _TABLE_PARTS,
    "td": [*_TABLE_PARTS, "width", "colspan", "rowspan", "nowrap", "scope", "abbr"],
    "th": [*_TABLE_PARTS, "width", "colspan", "rowspan", "nowrap", "scope", "abbr"],
    "time": ["datetime"],
}  # fmt: skip

# Schemes a link may keep. Images use cid: and data: besides http(s); _MailFilter decides.
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "tel"})
_BLEACH_PROTOCOLS = ALLOWED_PROTOCOLS | {"cid", "data"}

# No position (overlays), no content/cursor/behavior/-moz-binding, nothing that takes an image.
ALLOWED_CSS_PROPERTIES = frozenset(
    {
        "background", "background-color", "border", "border-bottom", "border-bottom-color",
        "border-bottom-left-radius", "border-bottom-right-radius", "border-bottom-style",
        "border-bottom-width", "border-collapse", "border-color", "border-left",
        "border-left-color", "border-left-style", "border-left-width", "border-radius",
        "border-right", "border-right-color", "border-right-style", "border-right-width",
        "border-spacing", "border-style", "border-top", "border-top-color",
        "border-top-left-radius", "border-top-right-radius", "border-top-style",
        "border-top-width", "border-width", "box-sizing", "caption-side", "clear", "color",
        "direction", "display", "empty-cells", "float", "font", "font-family", "font-size",
        "font-style", "font-variant", "font-weight", "height", "letter-spacing", "line-height",
        "list-style-position", "list-style-type", "margin", "margin-bottom", "margin-left",
        "margin-right", "margin-top", "max-height", "max-width", "min-height", "min-width",
        "overflow", "overflow-wrap", "padding", "padding-bottom", "padding-left",
        "padding-right", "padding-top", "table-layout", "text-align", "text-decoration",
        "text-decoration-color", "text-decoration-line", "text-decoration-style",
        "text-indent", "text-transform", "unicode-bidi", "vertical-align", "visibility",
        "white-space", "width", "word-break", "word-spacing", "word-wrap",
    }
)  # fmt: skip
_CSS_VALUE_TOKENS = frozenset(
    {"whitespace", "comment", "ident", "number", "percentage", "dimension", "hash", "string"}
)
_CSS_LITERALS = frozenset({",", "/"})
_CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla"})

# Query parameters that only tell the sender who clicked; utm_* and mtm_* by prefix.
TRACKING_PARAMS = frozenset(
    {
        "__hsfp", "__hssc", "__hstc", "_bta_c", "_bta_tid", "_ga", "_gl", "_hsenc", "_hsmi",
        "_openstat", "ck_subscriber_id", "dclid", "ef_id", "fbclid", "gbraid", "gclid",
        "gclsrc", "hsctatracking", "igshid", "li_fat_id", "mc_cid", "mc_eid", "mkt_tok",
        "ml_subscriber", "ml_subscriber_hash", "msclkid", "oly_anon_id", "oly_enc_id",
        "pk_campaign", "pk_content", "pk_keyword", "pk_kwd", "pk_medium", "pk_source",
        "rb_clickid", "s_cid", "ttclid", "twclid", "vero_conv", "vero_id", "wbraid",
        "wickedid", "yclid",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "mtm_")

# Hosts whose images in mail are open-tracking pixels and nothing else; subdomains included.
TRACKER_HOSTS = frozenset(
    {
        "bananatag.com", "doubleclick.net", "getnotify.com", "google-analytics.com",
        "list-manage.com", "mailfoogae.appspot.com", "mailtrack.io", "mandrillapp.com",
        "sendgrid.net", "t.yesware.com",
    }
)  # fmt: skip

# Second-level labels under which names are registered (no Public Suffix List here): the common
# ones, so that "bank.co.uk" and "evil.co.uk" do not count as one domain.
_TWO_LABEL_SUFFIXES = frozenset(
    {
        "ac.jp", "ac.uk", "ac.za", "co.id", "co.il", "co.in", "co.jp", "co.kr", "co.nz",
        "co.th", "co.uk", "co.za", "com.ar", "com.au", "com.br", "com.cn", "com.co", "com.hk",
        "com.mx", "com.my", "com.pl", "com.sg", "com.tr", "com.tw", "com.ua", "edu.au",
        "gov.uk", "gv.at", "ltd.uk", "me.uk", "ne.jp", "net.au", "net.br", "net.cn", "net.in",
        "or.jp", "org.au", "org.br", "org.cn", "org.in", "org.nz", "org.uk", "plc.uk",
    }
)  # fmt: skip
# Link text such as "invoice.pdf" is a file name, not a domain.
_FILE_EXTENSIONS = frozenset(
    {
        "asp", "aspx", "csv", "doc", "docx", "exe", "gif", "htm", "html", "ics", "jpeg", "jpg",
        "js", "json", "mov", "mp3", "mp4", "odt", "pdf", "php", "png", "ppt", "pptx", "rar",
        "svg", "txt", "xls", "xlsx", "xml", "zip",
    }
)  # fmt: skip

# The pre-scan's model of the open-element stack: void elements never open, and a new element of
# one of these names (its end tag being optional) closes the previous one.
_VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
        "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
    }
)  # fmt: skip
_CLOSES_SAME = frozenset(
    {"dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc", "td", "th", "tr"}
)
_TAG_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/")
_LONG_CHARREF = re.compile(rf"&#[xX]?[0-9a-fA-F]{{{MAX_CHARREF_DIGITS}}}")

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_AND_NEWLINES = str.maketrans("", "", "\t\n\r")
_FORBIDDEN_HOST_CHARS = frozenset(" #%/:<>?@[\\]^|\"'`{}\x7f") | frozenset(_C0_AND_SPACE)
_UNICODE_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|webp);base64,[A-Za-z0-9+/ ]*={0,2}", re.I)
_SURROGATES = re.compile("[\ud800-\udfff]")
_PIXELS = re.compile(r"\s*(\d{1,7})(?:\.\d*)?\s*(?:px)?\s*")
_TEXT_URL = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?:[^\s/?#@]+@)?(?P<host>[^\s/?#@:]+)(?::\d*)?"
    r"(?:[/?#]\S*)?",
    re.IGNORECASE,
)

UrlMapper = Callable[[str], str]
CidMapper = Callable[[str], str | None]
Token = dict[str, Any]


@dataclass(frozen=True)
class SafeHtml:
    """What `sanitize_html` made of a body; ``html`` is empty when ``over_budget`` says why."""

    html: str
    remote_images: int = 0  # remote images found, blocked or proxied (tracking pixels apart)
    tracking_pixels: int = 0
    mismatched_links: int = 0
    stripped_params: int = 0
    over_budget: str = ""  # "", "too-large", "too-complex", "timeout" or "error"


@dataclass
class _Options:
    images: bool
    proxy_url: UrlMapper | None
    cid_url: CidMapper | None


@dataclass
class _Counts:
    remote_images: int = 0
    tracking_pixels: int = 0
    mismatched_links: int = 0
    stripped_params: int = 0


@dataclass
class _Shape:
    """The pre-scan's view of a document: enough to refuse the shapes bleach is slow on."""

    tags: int = 0  # every "<", an upper bound
    words: int = 0  # counted for small inputs only
    max_attributes: int = 0  # in one tag, an estimate
    max_depth: int = 0  # of the open-element stack, an estimate
    long_charref: bool = False


def sanitize_html(
    html: str,
    *,
    images: bool = False,
    proxy_url: UrlMapper | None = None,
    cid_url: CidMapper | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> SafeHtml:
    """Safe HTML for a sandboxed iframe, or a refusal when the body is over budget.

    ``images=True`` shows remote images through ``proxy_url(url)`` (without it they stay blocked);
    ``cid_url(content_id)`` gives the URL of an inline part, or None to drop the image. Both run
    in a forked child for any but tiny bodies: they must not touch a database, cache or network.
    """
    if len(html) > MAX_HTML_CHARS:
        return SafeHtml(html="", over_budget="too-large")
    if not html:
        return SafeHtml(html="")
    shape = _shape(html)
    if (
        shape.tags > MAX_TAGS
        or shape.max_attributes > MAX_ATTRIBUTES_PER_TAG
        or shape.max_depth > MAX_DEPTH
        or shape.long_charref
    ):
        return SafeHtml(html="", over_budget="too-complex")
    options = _Options(images=images, proxy_url=proxy_url, cid_url=cid_url)
    if (
        len(html) <= IN_PROCESS_MAX_CHARS
        and shape.tags <= IN_PROCESS_MAX_TAGS
        and shape.words <= IN_PROCESS_MAX_WORDS
    ):
        try:
            return _sanitize(html, options)
        except Exception:  # hostile input must not break the page; a bug here is logged
            logger.exception("sanitising an HTML body failed")
            return SafeHtml(html="", over_budget="error")
    return _sanitize_in_child(html, options, timeout)


def strip_tracking_params(url: str) -> str:
    """The http(s) URL without its click-tracking query parameters; any other URL unchanged."""
    return _strip_tracking(url)[0]


def _shape(html: str) -> _Shape:
    """Counts in one linear pass (about 2 µs a tag); the stack model ignores stray end tags."""
    shape = _Shape(tags=html.count("<"), long_charref=_LONG_CHARREF.search(html) is not None)
    if shape.tags > MAX_TAGS:
        return shape
    if len(html) <= IN_PROCESS_MAX_CHARS:
        shape.words = len(html.split())
    stack: list[str] = []
    open_count: dict[str, int] = {}

    def close(name: str) -> None:
        """Pops up to and including the innermost open element of that name."""
        while stack:
            popped = stack.pop()
            open_count[popped] -= 1
            if popped == name:
                return

    for piece in html.split("<")[1:]:
        if not piece or piece[0] not in _TAG_NAME_START:
            continue  # text, a comment or a declaration
        tag = piece.partition(">")[0]  # a ">" inside a quoted value cuts it short: an estimate
        words = tag.split()
        # Attributes are apart by white space, or after a quoted value, by nothing: a="1"b="2".
        # (Counting "=" instead would count every parameter of a long link.)
        quoted = tag.count('"') // 2 + tag.count("'") // 2
        shape.max_attributes = max(shape.max_attributes, len(words) - 1, quoted)
        name = words[0].lower().rstrip("/") if words else ""
        if name.startswith("/"):
            if open_count.get(name[1:]):
                close(name[1:])
            continue
        if not name or name in _VOID:
            continue
        if name in _CLOSES_SAME and open_count.get(name):
            close(name)  # a new <p>, <li>, <td>… ends the previous one
        stack.append(name)
        open_count[name] = open_count.get(name, 0) + 1
        shape.max_depth = max(shape.max_depth, len(stack))
    return shape


def _sanitize(html: str, options: _Options) -> SafeHtml:
    """The bleach pipeline proper, with no budget of its own."""
    # A lone surrogate cannot be encoded to UTF-8 by the caller; a browser shows U+FFFD for it.
    html = html.encode("utf-8", "replace").decode("utf-8")
    parser = html5lib_shim.BleachHTMLParser(
        tags=None,  # parse every element as a browser would; the filters below decide
        strip=True,
        consume_entities=False,
        namespaceHTMLElements=False,
    )
    dom = parser.parseFragment(html)
    counts = _Counts()
    stream: Iterable[Token] = _Prepare(_walk(dom))
    stream = BleachSanitizerFilter(
        source=stream,
        allowed_tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_protocols=_BLEACH_PROTOCOLS,
        strip_disallowed_tags=True,
        strip_html_comments=True,
        css_sanitizer=_CSS_SANITIZER,
    )
    stream = _MailFilter(stream, options, counts)
    # html5lib's own serializer, not bleach's: attribute values are decoded text by now, and
    # bleach's would keep any "&name;" in them as a reference, which the browser decodes again.
    serializer = html5lib_shim.HTMLSerializer(
        quote_attr_values="always",
        quote_char='"',
        use_best_quote_char=False,
        omit_optional_tags=False,
        escape_lt_in_attrs=True,
        escape_rcdata=True,
        resolve_entities=False,
        sanitize=False,
        alphabetical_attributes=False,
    )
    return SafeHtml(html=serializer.render(stream).strip(), **asdict(counts))


class EmailCSSSanitizer(CSSSanitizer):
    """bleach's CSS sanitizer checks property names only; this one checks their values too."""

    def sanitize_css(self, style: str) -> str:
        kept = []
        for item in tinycss2.parse_declaration_list(
            style, skip_comments=True, skip_whitespace=True
        ):
            if item.type != "declaration" or item.lower_name not in self.allowed_css_properties:
                continue
            if not _css_value_is_safe(item.value):
                continue
            value = tinycss2.serialize(item.value).strip()
            if value:
                important = " !important" if item.important else ""
                kept.append(f"{item.lower_name}: {value}{important}")
        return "; ".join(kept)


def _css_value_is_safe(tokens: Iterable[Any]) -> bool:  # tinycss2 nodes are untyped
    """Keywords, numbers, colours and strings only: nothing that fetches or runs."""
    for token in tokens:
        if token.type == "function":
            if token.lower_name not in _CSS_FUNCTIONS or not _css_value_is_safe(token.arguments):
                return False
        elif token.type == "literal":
            if token.value not in _CSS_LITERALS:
                return False
        elif token.type not in _CSS_VALUE_TOKENS:
            return False  # url, blocks, at-keywords, parse errors…
    return True


_CSS_SANITIZER = EmailCSSSanitizer(
    allowed_css_properties=ALLOWED_CSS_PROPERTIES, allowed_svg_properties=frozenset()
)


def _walk(root: Any) -> Iterator[Token]:  # an html5lib etree fragment
    """The tree as html5lib tokens, like html5lib's etree walker but in linear time.

    That walker finds each element's place among its siblings by searching the list: quadratic
    in their number (8,000 sibling paragraphs with a child each took 2.8 s, 2,000 took 0.2 s).
    """
    if root.text:
        yield {"type": "Characters", "data": root.text}
    stack = [(root, iter(root))]
    while stack:
        element, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if stack:
                namespace, name = _split_name(element.tag)
                yield {"type": "EndTag", "namespace": namespace, "name": name}
                if element.tail:
                    yield {"type": "Characters", "data": element.tail}
            continue
        if isinstance(child.tag, str) and child.tag != "<!DOCTYPE>":  # not a comment
            namespace, name = _split_name(child.tag)
            attrs = {_split_name(key): value for key, value in child.attrib.items()}
            if namespace is not None or name not in _VOID_ELEMENTS:
                yield {"type": "StartTag", "namespace": namespace, "name": name, "data": attrs}
                if child.text:
                    yield {"type": "Characters", "data": child.text}
                stack.append((child, iter(child)))
                continue
            yield {"type": "EmptyTag", "namespace": None, "name": name, "data": attrs}
        if child.tail:
            yield {"type": "Characters", "data": child.tail}


def _split_name(name: str) -> tuple[str | None, str]:
    """ElementTree's "{namespace}name" as html5lib's (namespace, name)."""
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return None, name


_VOID_ELEMENTS = html5lib_shim.constants.voidElements


class _Prepare(html5lib_shim.Filter):
    """Drops hidden-content elements with their content; decodes attribute values."""

    def __iter__(self) -> Iterator[Token]:
        skipping = 0
        for token in html5lib_shim.Filter.__iter__(self):
            kind = token["type"]
            if skipping:
                if kind == "StartTag":
                    skipping += 1
                elif kind == "EndTag":
                    skipping -= 1
                continue
            if kind in ("StartTag", "EmptyTag", "EndTag"):
                if token["namespace"] is not None or token["name"] in DROPPED_WITH_CONTENT:
                    skipping = 1 if kind == "StartTag" else 0
                    continue  # foreign (SVG, MathML) or hidden content
                if token.get("data"):
                    token["data"] = {key: _decode(value) for key, value in token["data"].items()}
            yield token


def _decode(value: str) -> str:
    """An attribute value as a browser reads it (bleach leaves character references in)."""
    return _SURROGATES.sub("\ufffd", html5lib_shim.convert_entities(value))


class _MailFilter(html5lib_shim.Filter):
    """Links and images: the email-specific part, after bleach's allowlists."""

    def __init__(self, source: Iterable[Token], options: _Options, counts: _Counts) -> None:
        super().__init__(source)
        self.options = options
        self.counts = counts

    def __iter__(self) -> Iterator[Token]:
        held: list[Token] = []  # tokens inside an <a>, held until its text is known
        links: list[tuple[Token, list[str]]] = []
        for token in html5lib_shim.Filter.__iter__(self):
            kind = token["type"]
            if kind in ("StartTag", "EmptyTag"):
                if token.get("data", {}).get((None, "style")) == "":
                    del token["data"][(None, "style")]  # nothing of it was allowed
                if token["name"] == "img":
                    if not self._image(token):
                        continue
                elif (None, "background") in token.get("data", {}):
                    self._background(token)
                if token["name"] == "a" and kind == "StartTag":
                    links.append((token, []))
            elif kind == "EndTag" and token["name"] == "a" and links:
                start, text = links.pop()
                self._link(start, "".join(text))
            elif links and kind in ("Characters", "SpaceCharacters", "Entity"):
                piece = _entity_text(token["name"]) if kind == "Entity" else token["data"]
                for _, text in links:
                    if sum(map(len, text)) <= MAX_LINK_TEXT_CHARS:
                        text.append(piece)
            if links or held:
                held.append(token)
                if not links:
                    yield from held
                    held = []
            else:
                yield token
        for start, text in reversed(links):  # unbalanced: not from a tree walker, but be safe
            self._link(start, "".join(text))
        yield from held

    def _link(self, token: Token, text: str) -> None:
        attrs = token["data"]
        raw = attrs.pop((None, "href"), None)
        target = _link_url(raw) if raw is not None else None
        if target is None:
            return
        url, host = target
        extra: dict[tuple[str | None, str], str] = {}
        if host:
            url, removed = _strip_tracking(url)
            self.counts.stripped_params += removed
            shown = _text_host(text)
            if shown is not None and _registrable(shown) != _registrable(_host_key(host)):
                extra[(None, "data-courrier-mismatch")] = host
                self.counts.mismatched_links += 1
        attrs.pop((None, "title"), None)
        token["data"] = {
            (None, "href"): url,
            (None, "title"): url,
            (None, "target"): "_blank",
            (None, "rel"): "noopener noreferrer",
            **extra,
            **attrs,
        }

    def _image(self, token: Token) -> bool:
        """Rewrites an img's source in place; False when the image must go."""
        attrs = token["data"]
        raw = attrs.pop((None, "src"), None)
        srcset = attrs.pop((None, "srcset"), None)
        if not raw and srcset:
            raw = srcset.strip().split(maxsplit=1)[0].rstrip(",") if srcset.strip() else None
        if not raw:
            return False
        kind, url, host = _image_source(raw)
        if kind == "remote" and _is_tracking_pixel(attrs, host):
            self.counts.tracking_pixels += 1
            return False
        source = self._source(kind, url)
        if source is not None:
            token["data"] = {(None, "src"): source, **attrs}
            return True
        if kind == "remote":  # blocked: keeps its size and alt text, loads nothing
            attrs[(None, "data-courrier-blocked")] = ""
            return True
        return False

    def _background(self, token: Token) -> None:
        attrs = token["data"]
        kind, url, host = _image_source(attrs.pop((None, "background")))
        if kind == "remote" and _is_tracker(host):
            self.counts.tracking_pixels += 1
            return
        source = self._source(kind, url)
        if source is not None:
            attrs[(None, "background")] = source

    def _source(self, kind: str, url: str) -> str | None:
        """The URL to load instead of the sender's: proxied, resolved or None (blocked)."""
        if kind == "data":
            return url
        if kind == "cid":
            return self.options.cid_url(url) if self.options.cid_url else None
        if kind == "remote":
            self.counts.remote_images += 1
            if self.options.images and self.options.proxy_url is not None:
                return self.options.proxy_url(url)
        return None


def _entity_text(name: str) -> str:
    return html5lib_shim.convert_entity(name) or f"&{name};"


def _clean_url(raw: str) -> str:
    """The URL a browser reads from an attribute: trimmed, tabs and newlines removed."""
    return raw.strip(_C0_AND_SPACE).translate(_TAB_AND_NEWLINES)


def _web_url(url: str) -> tuple[str, str] | None:
    """An absolute http(s) URL rebuilt from its parts, and its host; None when it is not one."""
    match = _SCHEME.match(url)
    if match:
        scheme = match[1].lower()
        if scheme not in ("http", "https"):
            return None
        rest = url[match.end() :]
    elif url[:2] in ("//", "\\\\", "/\\", "\\/"):
        scheme, rest = "https", url  # protocol-relative: the webmail is served over https
    else:
        return None  # relative: in a srcdoc iframe it would point at the webmail itself
    # Browsers read backslashes as slashes in the host and path of http(s) URLs, and skip any
    # slashes before the host.
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    rest = rest[:cut].replace("\\", "/").lstrip("/") + rest[cut:]
    try:
        parts = urllib.parse.urlsplit("//" + rest)
        host = urllib.parse.unquote(parts.hostname or "").lower().translate(_UNICODE_DOTS)
        port = parts.port
    except ValueError:
        return None
    if not host or any(char in _FORBIDDEN_HOST_CHARS for char in host):
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    netloc = host if port is None else f"{host}:{port}"
    # No user:password@ part: in a link it only serves to disguise the host.
    return urllib.parse.urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment)), host


def _link_url(raw: str) -> tuple[str, str] | None:
    """A link's URL and its host ("" for mailto: and tel:), or None when it may not stay."""
    url = _clean_url(raw)
    match = _SCHEME.match(url)
    if match and match[1].lower() in ("mailto", "tel"):
        return f"{match[1].lower()}:{url[match.end() :]}", ""
    return _web_url(url)


def _image_source(raw: str) -> tuple[str, str, str]:
    """(kind, url, host): kind is "cid", "data", "remote" or "invalid"."""
    url = _clean_url(raw)
    match = _SCHEME.match(url)
    scheme = match[1].lower() if match else ""
    if match and scheme == "cid":
        content_id = urllib.parse.unquote(url[match.end() :]).strip().strip("<>")
        return ("cid", content_id, "") if content_id else ("invalid", "", "")
    if scheme == "data":
        if len(url) <= MAX_DATA_URI_CHARS and _DATA_IMAGE.fullmatch(url):
            media, _, payload = url.partition(",")
            return "data", f"{media.lower()},{payload.replace(' ', '')}", ""
        return "invalid", "", ""
    web = _web_url(url)
    if web is None:
        return "invalid", "", ""
    return "remote", web[0], web[1]


def _is_tracker(host: str) -> bool:
    key = _host_key(host)
    return any(key == tracker or key.endswith("." + tracker) for tracker in TRACKER_HOSTS)


def _is_tracking_pixel(attrs: dict[tuple[str | None, str], str], host: str) -> bool:
    """A remote image nobody is meant to see, or from a host that serves nothing else."""
    if _is_tracker(host):
        return True
    width = _pixels(attrs.get((None, "width")))
    height = _pixels(attrs.get((None, "height")))
    for item in tinycss2.parse_declaration_list(
        attrs.get((None, "style"), ""), skip_comments=True, skip_whitespace=True
    ):
        if item.type != "declaration":
            continue
        values = [token for token in item.value if token.type not in ("whitespace", "comment")]
        if len(values) != 1:
            continue
        value = values[0]
        if item.lower_name == "display" and value.type == "ident" and value.lower_value == "none":
            return True
        if (
            item.lower_name == "visibility"
            and value.type == "ident"
            and value.lower_value in ("hidden", "collapse")
        ):
            return True
        if item.lower_name in ("width", "height", "max-width", "max-height"):
            pixels = _css_pixels(value)
            if pixels is None:
                continue
            if item.lower_name.endswith("width"):
                width = pixels if width is None else min(width, pixels)
            else:
                height = pixels if height is None else min(height, pixels)
    if width == 0 or height == 0:
        return True
    return width is not None and height is not None and width <= 2 and height <= 2


def _pixels(value: str | None) -> int | None:
    match = _PIXELS.fullmatch(value) if value is not None else None
    return int(match[1]) if match else None


def _css_pixels(token: Any) -> int | None:  # a tinycss2 node
    if token.type == "number" and token.value == 0:
        return 0
    if token.type == "dimension" and token.lower_unit == "px":
        return max(int(token.value), 0)
    return None


def _strip_tracking(url: str) -> tuple[str, int]:
    """The URL without tracking parameters, and how many went; the rest of it is untouched."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url, 0
    if parts.scheme.lower() not in ("http", "https") or not parts.query:
        return url, 0
    kept = []
    for item in parts.query.split("&"):
        key = urllib.parse.unquote_plus(item.partition("=")[0]).strip().lower()
        if key not in TRACKING_PARAMS and not key.startswith(_TRACKING_PREFIXES):
            kept.append(item)
    removed = parts.query.count("&") + 1 - len(kept)
    if not removed:
        return url, 0
    return urllib.parse.urlunsplit(parts._replace(query="&".join(kept))), removed


def _host_key(host: str) -> str:
    """A host in one spelling for comparisons: lower case, Unicode labels, no trailing dot."""
    labels = host.lower().translate(_UNICODE_DOTS).rstrip(".").split(".")
    for index, label in enumerate(labels):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError, ValueError):  # else compared as written
                labels[index] = codecs.decode(label[4:].encode("ascii"), "punycode")
    return ".".join(labels)


def _registrable(key: str) -> str:
    """The name a domain was registered as (approximately: no Public Suffix List here)."""
    try:
        return ipaddress.ip_address(key.strip("[]")).compressed
    except ValueError:
        pass
    labels = key.split(".")
    size = 3 if len(labels) > 2 and ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-size:])


def _text_host(text: str) -> str | None:
    """The host a link's visible text names, when the whole text reads as a URL or domain."""
    text = text.strip().strip("<>[]()\"'")
    if not text or len(text) > MAX_LINK_TEXT_CHARS:
        return None
    match = _TEXT_URL.fullmatch(text)
    if match is None:
        return None
    key = _host_key(match["host"])
    try:
        return ipaddress.ip_address(key).compressed
    except ValueError:
        pass
    labels = key.split(".")
    if len(labels) < 2 or not all(labels):
        return None
    top = labels[-1]
    if not (top.isalpha() or top.startswith("xn--")):
        return None
    if not match["scheme"] and labels[0] != "www" and top in _FILE_EXTENSIONS:
        return None
    return key


def _sanitize_in_child(html: str, options: _Options, timeout: float) -> SafeHtml:
    """`_sanitize` in a forked child, killed when the time is up."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        logger.exception("cannot fork to sanitise an HTML body")
        return SafeHtml(html="", over_budget="error")
    if pid == 0:
        _child(html, options, write_fd)
    os.close(write_fd)
    payload = None
    try:
        payload = _read_message(read_fd, time.monotonic() + timeout)
    finally:
        os.close(read_fd)
        if payload is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # reaped already: SIGCHLD is ignored
            os.waitpid(pid, 0)
    if payload is None:
        return SafeHtml(html="", over_budget="timeout")
    return _from_message(payload)


def _child(html: str, options: _Options, write_fd: int) -> NoReturn:
    """The child's whole life: sanitise, answer through the pipe, exit without cleanup."""
    status = 0
    try:
        # The parent's objects are never garbage here: collecting them would only copy their pages.
        gc.freeze()
        # Closing inherited descriptors keeps the parent's sockets out of reach of anything here.
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, _max_fd())
        _limit_memory()
        try:
            message: dict[str, Any] = {"result": asdict(_sanitize(html, options))}
        except MemoryError:
            message = {"over_budget": "too-complex"}
        except Exception:  # noqa: BLE001 (reported to the parent, which logs it)
            message = {"error": traceback.format_exc(limit=20)}
        data = json.dumps(message).encode()
        view = memoryview(struct.pack("!Q", len(data)) + data)
        while view:
            view = view[os.write(write_fd, view) :]
    except BaseException:  # noqa: BLE001 (nothing may return into the parent's code in the child)
        status = 1
    finally:
        os._exit(status)


def _max_fd() -> int:
    try:
        return max(os.sysconf("SC_OPEN_MAX"), 3)
    except (OSError, ValueError):
        return 1024


def _limit_memory() -> None:
    """Caps the child's address space: the amplifying inputs above also eat memory."""
    try:
        statm = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            current = int(os.read(statm, 256).split()[0]) * os.sysconf("SC_PAGE_SIZE")
        finally:
            os.close(statm)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + CHILD_MEMORY_BYTES
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or limit < soft:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        pass  # no /proc, or a limit we may not lower: the timeout still holds


def _read_message(fd: int, deadline: float) -> bytes | None:
    """A length-prefixed message from the child, or None when the deadline passes first."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    data = bytearray()
    expected: int | None = None
    while expected is None or len(data) < expected + 8:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b""  # the child died without a full answer
        data += chunk
        if expected is None and len(data) >= 8:
            (expected,) = struct.unpack("!Q", data[:8])
    return bytes(data[8:])


def _from_message(payload: bytes) -> SafeHtml:
    try:
        message = json.loads(payload) if payload else {}
    except ValueError:
        message = {}
    if "result" in message:
        return SafeHtml(**message["result"])
    if "over_budget" in message:
        return SafeHtml(html="", over_budget=message["over_budget"])
    logger.error("sanitising an HTML body failed in the child: %s", message.get("error", "died"))
    return SafeHtml(html="", over_budget="error")


# Import and initialise everything the pipeline uses now, not in a forked child, where an import
# could wait forever for a lock that another thread of the parent held at the fork.
codecs.lookup("punycode")
_sanitize(
    '<table background="https://example.org/b.png"><tr><td style="color: red">'
    '<a href="https://xn--bcher-kva.example/?utm_source=x">example.org</a>'
    '<img src="https://example.org/i.png" width="1" height="1"><img src="cid:x">'
    '<img src="data:image/png;base64,AAAA"></td></tr></table>',
    _Options(False, None, None),
)
