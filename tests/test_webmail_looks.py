"""How the webmail looks and whether everyone can use it, in Debian's Chromium: a desktop in
light and dark, a phone, French. Screenshots go to SHOTS for people to look at; the checks are
the ones a screenshot cannot make: text contrast (WCAG AA, 4.5:1), a visible focus ring when
tabbing, an accessible name on every control, no sideways scrolling on a phone, and (the
``page`` fixture's) no script error or CSP violation.

The mailbox is stored without IMAP, by the sync's own storing code and the indexer: sample mail
(`mailcore.samples`) and a school-trip conversation written here, dated the last few days.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from mailboxes import indexing, sync
from mailboxes.models import Folder, MailAccount
from mailcore import samples
from mailcore.mime import parse_headers
from tests.conftest import PASSWORD, make_user
from tests.test_browser import browser, record_problem, sign_in_page  # noqa: F401 -- a fixture
from tests.test_browser import page as page  # the fixture, by name

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/courrier-shots")  # noqa: S108 -- tests/test_dashboard.py's, to look at
DESKTOP = {"width": 1280, "height": 800}
PHONE: dict[str, Any] = {
    "viewport": {"width": 375, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
OWNER = samples.OWNER  # the sample mail's recipient: bob@courrier.test, "Bob Moreau"
TRIP = "Sortie au musée d'Orsay"
AA = 4.5  # WCAG 2.x level AA, normal text
FOCUS_RING = 3.0  # WCAG 1.4.11: user-interface components against what is next to them
# Chromium has only DejaVu here: Japanese and Chinese samples would show as boxes.
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
LF = re.compile(rb"(?<!\r)\n")


# The mailbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    folder: str
    raw: bytes  # CRLF line endings, as IMAP serves them
    flags: tuple[bytes, ...]


def letter(
    subject: str,
    sender: str,
    to: str,
    age: timedelta,
    text: str,
    *,
    parent: EmailMessage | None = None,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.localtime(timezone.now() - age))
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1].rstrip(">"))
    if parent is not None:
        message["In-Reply-To"] = parent["Message-ID"]
        message["References"] = f"{parent.get('References', '')} {parent['Message-ID']}".strip()
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    if attachment is not None:
        name, data = attachment
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message


def recent_mail() -> list[Stored]:
    """A four-message conversation (one reply in Sent, a PDF) and three single messages."""
    me = f"{samples.OWNER_NAME} <{OWNER}>"
    school = "Élodie Garnier <elodie.garnier@ecole.test>"
    first = letter(
        TRIP, school, me, timedelta(days=2, hours=3),
        "Bonjour à tous,\n\nLa classe de CE2 visitera le musée d'Orsay le jeudi 10 décembre."
        " Départ en car à 8 h 30 devant l'école, retour vers 16 h.\n\nBien cordialement,\nÉlodie",
        html="<p>Bonjour à tous,</p><p>La classe de <b>CE2</b> visitera le musée d'Orsay le"
        " <b>jeudi 10 décembre</b>. Départ en car à 8 h 30 devant l'école.</p>"
        "<p>Bien cordialement,<br>Élodie</p>",
    )  # fmt: skip
    reply = letter(
        f"Re: {TRIP}", me, school, timedelta(days=1, hours=20),
        "Bonjour Élodie,\n\nMerci ! Je peux accompagner le groupe si vous cherchez encore"
        " des parents.\n\nBob",
        parent=first,
    )  # fmt: skip
    second = letter(
        f"Re: {TRIP}", "François Lefèvre <francois.lefevre@exemple.fr>", me,
        timedelta(days=1, hours=2),
        "Je serai là aussi. Faut-il prévoir un pique-nique ?\n\nFrançois",
        parent=reply,
    )  # fmt: skip
    last = letter(
        f"Re: {TRIP}", school, me, timedelta(hours=5),
        "Merci à vous deux ! Oui, un pique-nique et une gourde.\n\nVoici l'autorisation de"
        " sortie à signer et à rendre avant lundi.\n\nÉlodie",
        parent=second,
        attachment=("autorisation-de-sortie.pdf", b"%PDF-1.4\n% autorisation\n%%EOF\n"),
    )  # fmt: skip
    singles = [
        letter(
            "Menu de la cantine — semaine du 30 novembre",
            "Cantine scolaire <cantine@mairie-exemple.fr>", me, timedelta(hours=1),
            "Lundi : potage de légumes, poisson pané, haricots verts. Mardi : repas végétarien.",
        ),
        letter(
            "Facture n°2026-118 — électricité", "Énergie Exemple <factures@energie.example>",
            me, timedelta(hours=3),
            "Votre facture de novembre est disponible : 84,20 EUR, prélevés le 5 décembre.",
            attachment=("facture-2026-118.pdf", b"%PDF-1.4\n% facture\n%%EOF\n"),
        ),
        letter(
            "Release notes for 4.2", "Priya Patel <priya@example.com>", me, timedelta(hours=26),
            "Hi Bob, the release is tagged. Highlights: faster search, a new dark theme.",
        ),
    ]  # fmt: skip
    read = (b"\\Seen",)  # the others are unread
    return [
        Stored("INBOX", crlf(first.as_bytes()), (*read, b"Famille")),
        Stored("Sent", crlf(reply.as_bytes()), read),
        Stored("INBOX", crlf(second.as_bytes()), read),
        # Read, like the rest of the conversation: opening an unread one would push the \Seen
        # flag to an IMAP server this account does not have.
        Stored("INBOX", crlf(last.as_bytes()), (*read, b"\\Flagged", b"Famille")),
        Stored("INBOX", crlf(singles[0].as_bytes()), (b"Famille",)),
        Stored("INBOX", crlf(singles[1].as_bytes()), (b"\\Flagged", b"Factures")),
        Stored("INBOX", crlf(singles[2].as_bytes()), (b"Travail",)),
    ]


def sample_mail(count: int = 150, seed: int = 7) -> list[Stored]:
    """`mailcore.samples`' mail in five folders, without CJK; a few of the Inbox's newest unread
    or starred, as a week's mail would be."""
    letters = {"D": b"\\Draft", "F": b"\\Flagged", "R": b"\\Answered", "S": b"\\Seen"}
    stored = []
    for generated in samples.generate_messages(count, folders=5, seed=seed):
        raw = crlf(generated.data)
        header = parse_headers(raw)
        if CJK.search(header.subject + "".join(a.name for a in header.from_)):
            continue
        flags = tuple(letters[code] for code in generated.flags)
        stored.append(Stored(generated.folder, raw, flags))
    inbox = [n for n, item in enumerate(stored) if item.folder == "INBOX"][::-1]  # newest first
    for rank, n in enumerate(inbox[:12]):
        flags = set(stored[n].flags)
        if rank in (0, 2, 3, 6):
            flags.discard(b"\\Seen")
        if rank in (1, 8):
            flags.add(b"\\Flagged")
        if rank in (2, 5):
            flags.add(b"Travail")
        stored[n] = Stored("INBOX", stored[n].raw, tuple(sorted(flags)))
    return stored


def crlf(data: bytes) -> bytes:
    return LF.sub(b"\r\n", data)


FOLDERS = {
    "INBOX": Folder.Role.INBOX,
    "Sent": Folder.Role.SENT,
    "Drafts": Folder.Role.DRAFTS,
    "Archive": Folder.Role.ARCHIVE,
    "Trash": Folder.Role.TRASH,
    "Junk": Folder.Role.JUNK,
    "Listes": Folder.Role.NONE,
    "Projets": Folder.Role.NONE,
}


def store(account: MailAccount, mail: list[Stored]) -> None:
    """Each folder's messages through the sync's storing code, as if fetched (UIDs in date
    order), then the bodies through the indexer; the folders end as a finished sync leaves
    them. `fully_synced` stays off while storing: the mail is not new, no filter sees it."""
    report = sync.SyncReport()
    for name, role in FOLDERS.items():
        folder = Folder.objects.create(
            account=account, name=name, role=role, delimiter="/", uidvalidity=1
        )
        fetched = {
            uid: {b"BODY[]": item.raw, b"FLAGS": item.flags}
            for uid, item in enumerate((m for m in mail if m.folder == name), start=1)
        }
        with transaction.atomic():
            # Private, but exactly what the sync does with a FETCH's answer (as bench/web.py).
            sync._store_batch(folder, fetched, report)
        folder.uidnext = len(fetched) + 1
        folder.synced_down_to_uid = 1 if fetched else None
        folder.fully_synced = True
        folder.last_synced_at = timezone.now()
        folder.total_count = len(fetched)
        folder.unread_count = sum(b"\\Seen" not in data[b"FLAGS"] for data in fetched.values())
        folder.save()
    indexing.index_account(account)
    assert not indexing.pending(account)


@pytest.fixture
def mailbox(db: None) -> MailAccount:
    """Bob Moreau's account, stored without a server (127.0.0.1:1 refuses at once, should
    anything try to reach it)."""
    user = make_user(OWNER)
    account = MailAccount.objects.create(
        user=user,
        email=OWNER,
        display_name=samples.OWNER_NAME,
        incoming_host="127.0.0.1",
        incoming_port=1,
        username=OWNER,
        password="not used",  # no server to sign in to
        smtp_host="127.0.0.1",
        smtp_port=1,
    )
    mail = sample_mail() + recent_mail()
    store(account, mail)
    inbox = account.folders.get(role=Folder.Role.INBOX)
    assert 40 <= inbox.messages.count() <= 80, inbox.messages.count()
    assert inbox.messages.filter(seen=False).exists()
    assert inbox.messages.filter(flagged=True).exists()
    return account


# Pages ------------------------------------------------------------------------------------------

OpenPage = Callable[..., Page]


@pytest.fixture
def open_page(browser: Browser) -> Iterator[OpenPage]:  # noqa: F811 -- the imported fixture
    """More pages like the ``page`` fixture's (en-GB, every script error or CSP violation
    fails the test), each in its own context: a phone, the dark scheme."""
    contexts = []
    problems: list[str] = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(locale="en-GB", **options)
        contexts.append(context)
        new = context.new_page()
        new.on("console", lambda message: record_problem(problems, message))
        new.on("pageerror", lambda error: problems.append(str(error)))
        return new

    yield open_page
    for context in contexts:
        context.close()
    assert problems == []


def sign_in(page: Page, base: str) -> None:
    sign_in_page(page, base, OWNER, PASSWORD)
    expect(page).to_have_url(f"{base}/mail/inbox/")
    expect(page.locator("li.conversation").first).to_be_visible()
    page.wait_for_load_state()  # mail.js has shown what it shows (the drawer's button…)


def open_trip(page: Page) -> None:
    """From the Inbox, the school-trip conversation, its last message's panel loaded."""
    page.get_by_role("link", name=re.compile(TRIP)).first.click()
    expect(page.get_by_role("heading", name=f"Re: {TRIP}")).to_be_visible()
    page.wait_for_load_state()
    expect(page.locator(".message-card")).to_have_count(4)
    expect(page.locator(".message-card[open] .attachment")).to_contain_text(
        "autorisation-de-sortie.pdf"
    )


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)  # no row hovered
    page.screenshot(path=SHOTS / name, full_page=full_page)


# Colour: WCAG relative luminance and contrast ----------------------------------------------------

# The colours as painted: any CSS colour read back from a one-pixel canvas, the background as the
# stack of ancestors' backgrounds down to the first opaque one, translucent layers blended in.
PAINT_JS = """
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const pen = canvas.getContext("2d", { willReadFrequently: true });
  const rgba = (css) => {
    pen.clearRect(0, 0, 1, 1);
    pen.fillStyle = "#000";
    pen.fillStyle = css;
    pen.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = pen.getImageData(0, 0, 1, 1).data;
    return [r, g, b, a / 255];
  };
  const over = (top, bottom) =>
    top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3]));
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
    }
    let painted = [255, 255, 255];
    for (const layer of layers.reverse()) painted = over(layer, painted);
    return painted;
  };
  const painted = (element, property) => {
    const bg = background(element);
    return { fg: over(rgba(getComputedStyle(element)[property]), bg), bg };
  };
"""
COLOURS_JS = f"""(selectors) => {{{PAINT_JS}
  return selectors.map((selector) => {{
    const element = document.querySelector(selector);
    return element ? painted(element, "color") : null;
  }});
}}"""


def luminance(rgb: list[float]) -> float:
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: list[float], other: list[float]) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def colours(page: Page, selectors: list[str]) -> dict[str, dict[str, list[float]]]:
    found = page.evaluate(COLOURS_JS, selectors)
    missing = [s for s, c in zip(selectors, found, strict=True) if c is None]
    assert not missing, f"not on the page: {missing}"
    return dict(zip(selectors, found, strict=True))


def assert_scheme(page: Page, scheme: str) -> None:
    """The page's own background and text are those of the scheme: dark panes and light text
    in the dark one, the reverse in the light one."""
    for selector in ("body", "#main"):
        painted = colours(page, [selector])[selector]
        background, text = luminance(painted["bg"]), luminance(painted["fg"])
        if scheme == "dark":
            assert background < 0.05, (selector, painted)
            assert text > 0.5, (selector, painted)
        else:
            assert background > 0.8, (selector, painted)
            assert text < 0.05, (selector, painted)


def assert_readable(page: Page, selectors: list[str]) -> None:
    low = {
        selector: round(contrast(c["fg"], c["bg"]), 2)
        for selector, c in colours(page, selectors).items()
        if contrast(c["fg"], c["bg"]) < AA
    }
    assert low == {}, f"text under {AA}:1 against its background"


INBOX_TEXT = [
    "#main",  # body text
    "#list-title",
    "li.conversation.unread .subject",
    "li.conversation.unread .snippet",
    "li.conversation.unread time",
    "li.conversation:not(.unread) .senders",
    "li.conversation:not(.unread) .subject",
    "li.conversation:not(.unread) .snippet",
    "li.conversation:not(.unread) time",
    ".label-chip",
    ".mail-nav a[aria-current] .label",
    ".mail-nav li:not(:first-child) a .label",
    ".nav-account",
    ".nav-extra a",
]
CONVERSATION_TEXT = [
    "#conversation-subject",
    ".back",
    ".message-card:not([open]) > summary .from",
    ".message-card:not([open]) > summary .snippet",
    ".message-card:not([open]) > summary time",
    ".message-card[open] .recipients dt",
    ".message-card[open] .recipients dd",
    ".message-card[open] .message-text",
    ".message-card[open] .attachment .size",
    ".message-tools a",
]


# Focus ------------------------------------------------------------------------------------------

# What may show focus on the focused element and on its row (whose ring stands in for its
# link's): outline and box shadow, with the outline's colour and what is behind it.
FOCUS_JS = f"""(element) => {{{PAINT_JS}
  return [element, element.closest("li.conversation")].filter(Boolean).map((node) => {{
    const style = getComputedStyle(node);
    return {{ what: node.outerHTML.slice(0, 120), style: style.outlineStyle,
             width: parseFloat(style.outlineWidth), shadow: style.boxShadow,
             ring: painted(node, "outlineColor") }};
  }});
}}"""


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab from the top of the page until `selector` has the focus."""
    page.locator(".brand").focus()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{limit} presses of Tab from the top never reached {selector}")


def assert_focus_visible(page: Page, selector: str) -> None:
    """Tabbing to `selector` shows a ring (an outline, or a box shadow) on it or its row that
    goes once the focus leaves; an outline stands out 3:1 from what is behind it."""
    tab_to(page, selector)
    element = page.evaluate_handle("document.activeElement")
    focused = page.evaluate(FOCUS_JS, element)
    page.evaluate("(element) => element.blur()", element)
    blurred = page.evaluate(FOCUS_JS, element)
    rings = [
        look
        for look, after in zip(focused, blurred, strict=True)
        if ((look["style"] != "none" and look["width"] >= 1) or look["shadow"] != "none")
        and (look["style"], look["width"], look["shadow"])
        != (after["style"], after["width"], after["shadow"])
    ]
    assert rings, f"no visible focus on {selector}: {focused}"
    for ring in rings:
        if ring["style"] != "none":
            assert contrast(ring["ring"]["fg"], ring["ring"]["bg"]) >= FOCUS_RING, ring


# Accessible names: Chromium's own, from its accessibility tree ----------------------------------

CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary"


def unnamed_controls(page: Page) -> list[str]:
    """Controls exposed to assistive technology whose accessible name is empty."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node_ids = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": CONTROLS})
        unnamed = []
        for node_id in node_ids["nodeIds"]:
            tree = cdp.send(
                "Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False}
            )
            node = tree["nodes"][0]
            if node.get("ignored"):
                continue  # hidden: not exposed
            if not str(node.get("name", {}).get("value", "")).strip():
                html = cdp.send("DOM.getOuterHTML", {"nodeId": node_id})["outerHTML"]
                unnamed.append(html[:160])
        assert node_ids["nodeIds"], "no controls found"
        return unnamed
    finally:
        cdp.detach()


# The page's width, and (to say what to fix) the innermost elements reaching past the layout
# viewport: a page wider than the screen makes a phone zoom out, so innerWidth grows with it.
WIDTH_JS = """() => {
  const edge = document.documentElement.clientWidth + 0.5;
  const past = (element) => element.getBoundingClientRect().right > edge;
  const out = Array.from(document.body.querySelectorAll("*"))
    .filter((element) => past(element) && !Array.from(element.children).some(past));
  return { scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
           out: out.slice(0, 5).map((element) => element.outerHTML.slice(0, 100)) };
}"""


def assert_no_sideways_scrolling(page: Page) -> None:
    sizes = page.evaluate(WIDTH_JS)
    wide = f"{page.url} is wider than the phone: {sizes}"
    assert sizes["inner"] == PHONE["viewport"]["width"], wide
    assert sizes["scroll"] <= sizes["inner"], wide


# The tests --------------------------------------------------------------------------------------


def test_inbox_and_conversation_in_light_and_dark(
    mailbox: MailAccount, live_server: LiveServer, page: Page, open_page: OpenPage
) -> None:
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    sign_in(page, base)
    dark = open_page(
        color_scheme="dark", viewport=DESKTOP, storage_state=page.context.storage_state()
    )
    dark.goto(f"{base}/mail/inbox/")
    for scheme, shown in (("light", page), ("dark", dark)):
        rows = shown.locator("li.conversation")
        expect(rows.first).to_contain_text("Menu de la cantine")
        expect(shown.locator("li.conversation.unread").first).to_be_visible()
        expect(shown.locator("li.conversation.starred").first).to_be_visible()
        expect(shown.locator(".mail-nav").get_by_role("link", name="Archive")).to_be_visible()
        expect(shown.locator(".mail-nav").get_by_role("link", name="Listes")).to_be_visible()
        assert_scheme(shown, scheme)
        assert_readable(shown, INBOX_TEXT)
        assert unnamed_controls(shown) == []
        shoot(shown, "webmail-inbox-desktop.png" if scheme == "light" else "webmail-inbox-dark.png")
        assert_focus_visible(shown, "li.conversation .open")
        assert_focus_visible(shown, "#mail-actions button[value=archive]")

        open_trip(shown)
        assert_scheme(shown, scheme)
        assert_readable(shown, CONVERSATION_TEXT)
        assert unnamed_controls(shown) == []
        name = "desktop" if scheme == "light" else "dark"
        shoot(shown, f"webmail-conversation-{name}.png")
        assert_focus_visible(shown, "#mail-actions button.star")


def test_a_phone_reads_the_inbox_a_conversation_and_compose_without_sideways_scrolling(
    mailbox: MailAccount, live_server: LiveServer, open_page: OpenPage
) -> None:
    base = live_server.url
    phone = open_page(**PHONE)
    sign_in(phone, base)
    assert_no_sideways_scrolling(phone)

    # Every row's box, star and link fit the screen; the newest rows are on it.
    rows = phone.locator("li.conversation")
    for n in range(3):
        for part in ("input.select", "button.star", "a.open", "time"):
            expect(rows.nth(n).locator(part)).to_be_in_viewport(ratio=1)
    # The folders are a drawer behind the ☰ button, out of the way until opened.
    toggle = phone.get_by_role("button", name="Folders")
    expect(toggle).to_be_in_viewport(ratio=1)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    archive = phone.locator(".sidebar").get_by_role("link", name="Archive")
    expect(archive).to_be_hidden()
    assert unnamed_controls(phone) == []
    shoot(phone, "webmail-inbox-phone.png", full_page=False)  # the first screenful

    # The toolbar is one line that scrolls on its own: its last button can be brought in.
    snooze = phone.locator("#mail-actions button[value=snooze]")
    snooze.scroll_into_view_if_needed()
    expect(snooze).to_be_in_viewport(ratio=0.9)  # whole, give or take a fraction of a pixel
    assert_no_sideways_scrolling(phone)

    toggle.click()
    expect(archive).to_be_in_viewport(ratio=1)
    phone.keyboard.press("Escape")
    expect(archive).to_be_hidden()
    expect(toggle).to_be_focused()
    toggle.click()
    archive.click()
    expect(phone).to_have_url(re.compile(r"/mail/folder/\d+/$"))
    expect(phone.get_by_role("heading", name="Archive")).to_be_visible()
    assert_no_sideways_scrolling(phone)

    phone.goto(f"{base}/mail/inbox/")
    open_trip(phone)
    assert_no_sideways_scrolling(phone)
    expect(phone.get_by_role("link", name="Reply", exact=True)).to_be_visible()
    shoot(phone, "webmail-conversation-phone.png")

    phone.goto(f"{base}/compose/new/")
    expect(phone.get_by_role("heading", name="New message")).to_be_visible()
    assert_no_sideways_scrolling(phone)


def test_the_inbox_in_french(mailbox: MailAccount, live_server: LiveServer, page: Page) -> None:
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    sign_in(page, base)
    page.locator(".topbar").get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.wait_for_load_state()
    expect(page.get_by_role("heading", name="Toutes les boîtes de réception")).to_be_visible()
    expect(page.get_by_role("button", name="Marquer comme lu")).to_be_visible()
    assert unnamed_controls(page) == []
    shoot(page, "webmail-inbox-fr.png")
