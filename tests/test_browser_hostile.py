"""Hostile HTML mail in a real browser: nothing runs, nothing is fetched until images are shown,
and then only through Courrier's proxy.

Every body of tests/fixtures/html/ is appended to carol's IMAP mailbox (which alice reads in
Courrier), synced and indexed, then opened in Debian's Chromium. The bodies try to run script,
escape the sandboxed frame and reach a loopback HTTP listener (`{{REMOTE}}`), which records
every request it gets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.test import override_settings
from imapclient import IMAPClient
from playwright.sync_api import Browser, Dialog, Page, Request, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from mail import proxy
from mailboxes import indexing, sync
from mailboxes.models import MailAccount, Message
from tests.conftest import CAROL, PASSWORD
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, sign_in_page
from tests.test_image_proxy import ImageServer, serve_images

pytestmark = [pytest.mark.browser, pytest.mark.mailstack, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "html"
# What the listener may be asked for once images are shown: images, by the proxy. Scripts,
# style sheets, fonts, frames, forms, refreshes and tracking pixels never.
IMAGE_PATHS = frozenset(
    {
        "/table-bg.png", "/cell-bg.png", "/hero.png", "/srcset.png", "/picture.png",
        "/lazy.png", "/visible.png", "/entity.png", "/a.png", "/slash.png", "/named.png",
    }
)  # fmt: skip


@pytest.fixture
def listener() -> Iterator[ImageServer]:
    yield from serve_images()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Started once the database work is done: Django refuses ORM calls in this thread while
    Playwright's event loop runs."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def hostile_email(name: str, html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Mallory <mallory@ecole.test>"
    message["To"] = CAROL
    message["Subject"] = f"Hostile {name}"
    message["Message-ID"] = make_msgid(domain="ecole.test")
    message["Date"] = "Thu, 01 Jan 2026 10:00:00 +0000"
    message.set_content(f"The text version of {name}.")
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def deliver_fixtures(
    account: MailAccount, server: IMAPClient, listener: ImageServer
) -> dict[str, Message]:
    names = sorted(path.stem for path in FIXTURES.glob("*.html"))
    for name in names:
        html = (FIXTURES / f"{name}.html").read_text()
        html = html.replace("{{REMOTE}}", listener.base)
        html = html.replace("{{REMOTE_HOST}}", listener.base.removeprefix("http://"))
        server.append("INBOX", hostile_email(name, html))
    sync.sync_account(account)
    indexing.index_account(account)
    messages = Message.objects.filter(folder__account=account).select_related("content")
    return {message.content.subject.removeprefix("Hostile "): message for message in messages}


def test_hostile_bodies_run_nothing_and_fetch_only_through_the_proxy(
    alice: User,
    account: MailAccount,
    server: IMAPClient,
    listener: ImageServer,
    live_server: LiveServer,
) -> None:
    messages = deliver_fixtures(account, server, listener)
    assert len(messages) >= 12
    with chromium() as browser, override_settings(IMAGE_PROXY_ALLOW_LOOPBACK=True):
        read_them_all(browser, live_server.url, alice, messages, listener)


def read_them_all(
    browser: Browser, base: str, alice: User, messages: dict[str, Message], listener: ImageServer
) -> None:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: record_dialog(dialogs, dialog))
    page.on("popup", lambda popup: dialogs.append(f"popup {popup.url}"))
    frame_requests: list[Request] = []
    page.on("request", lambda request: frame_requests.append(request))
    sign_in_page(page, base, alice.email, PASSWORD)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    # Images blocked: every body opens, runs nothing, and asks the listener for nothing.
    for name, message in messages.items():
        open_message(page, base, message)
        check_untouched(page, base, message, name, dialogs)
    assert listener.requests == []
    body_requests = [r for r in frame_requests if "/body/" in r.url]
    assert body_requests
    # Signed, whether the browser sends the cookie or not; nothing relative to the body's URL.
    assert [r.url for r in body_requests if "/body/?t=" not in r.url] == []

    # Images shown: only image requests reach the listener, all from the proxy.
    for name, message in messages.items():
        open_message(page, base, message)
        show_images = page.locator(f"#reading-{message.pk}").get_by_role("link", name="Show images")
        if show_images.count():
            show_images.click()
            frame = page.locator(f"#reading-{message.pk} iframe.message-frame")
            expect(frame).to_have_attribute("src", re.compile(r"images=1"))
            frame.element_handle().content_frame().wait_for_load_state("load")  # type: ignore[union-attr]
        check_untouched(page, base, message, name, dialogs)
    page.wait_for_load_state("networkidle")

    seen = {request.path.split("?", 1)[0] for request in listener.requests}
    assert seen == IMAGE_PATHS
    for request in listener.requests:
        assert request.headers["user-agent"] == proxy.USER_AGENT  # the proxy, not Chromium
        assert "cookie" not in request.headers
        assert "referer" not in request.headers
    assert not [r.url for r in frame_requests if r.url.startswith(listener.base)]
    # From the sandboxed frame (an opaque origin) Chromium sends no session cookie: the proxied
    # images get through on their signed URLs alone.
    proxied = [r for r in frame_requests if "/image/?t=" in r.url]
    assert proxied
    assert [r.url for r in proxied if "cookie" in r.all_headers()] == []
    context.close()


def open_message(page: Page, base: str, message: Message) -> None:
    conversation = message.content.conversation_id
    page.goto(f"{base}/mail/conversation/{conversation}/")
    frame = page.locator(f"#reading-{message.pk} iframe.message-frame")
    expect(frame).to_be_visible()
    handle = frame.element_handle().content_frame()
    assert handle is not None
    handle.wait_for_load_state("load")
    expect(handle.locator("body")).to_contain_text("Fixture")


def check_untouched(page: Page, base: str, message: Message, name: str, dialogs: list[str]) -> None:
    assert dialogs == [], name
    assert page.url.startswith(f"{base}/mail/conversation/"), name
    assert f"Hostile {name} ·" in page.title(), name  # the app may prefix an unread count
    assert page.evaluate("typeof window.__pwned") == "undefined", name
    assert page.evaluate("document.querySelectorAll('iframe:not(.message-frame)').length") == 0


def record_dialog(dialogs: list[str], dialog: Dialog) -> None:
    dialogs.append(f"{dialog.type}: {dialog.message}")
    dialog.dismiss()


def conversation_of_two(listener: ImageServer) -> tuple[bytes, bytes]:
    first = EmailMessage()
    first["From"] = "Dave <dave@ecole.test>"
    first["To"] = CAROL
    first["Subject"] = "Sortie scolaire"
    first["Message-ID"] = "<sortie-1@ecole.test>"
    first["Date"] = "Thu, 01 Jan 2026 09:00:00 +0000"
    first.set_content("Fixture first: the older message.")
    first.add_alternative("<p>Fixture first: the older message.</p>", subtype="html")
    reply = EmailMessage()
    reply["From"] = "Dave <dave@ecole.test>"
    reply["To"] = CAROL
    reply["Subject"] = "Re: Sortie scolaire"
    reply["Message-ID"] = "<sortie-2@ecole.test>"
    reply["In-Reply-To"] = "<sortie-1@ecole.test>"
    reply["Date"] = "Thu, 01 Jan 2026 10:00:00 +0000"
    reply.set_content("Fixture reply, with a photo.")
    reply.add_alternative(
        f'<p>Fixture reply, with a photo.</p><img src="{listener.base}/visible.png" width="80">',
        subtype="html",
    )
    return first.as_bytes(), reply.as_bytes()


def test_an_older_message_loads_when_opened_and_a_sender_can_be_trusted(
    alice: User,
    account: MailAccount,
    server: IMAPClient,
    listener: ImageServer,
    live_server: LiveServer,
) -> None:
    for raw in conversation_of_two(listener):
        server.append("INBOX", raw, flags=[b"\\Seen"])
    sync.sync_account(account)
    indexing.index_account(account)
    older, newer = Message.objects.filter(folder__account=account).order_by("date")
    conversation = newer.content.conversation_id
    assert older.content.conversation_id == conversation

    with chromium() as browser, override_settings(IMAGE_PROXY_ALLOW_LOOPBACK=True):
        page = browser.new_context(locale="en-GB").new_page()
        sign_in_page(page, live_server.url, alice.email, PASSWORD)
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        page.goto(f"{live_server.url}/mail/conversation/{conversation}/")

        newest = page.locator(f"#reading-{newer.pk}")
        expect(newest.locator("iframe.message-frame")).to_be_visible()
        # The older message is folded: its panel waits until it is opened.
        expect(page.locator(f"#reading-{older.pk}")).to_contain_text("Loading the message")
        page.locator(f"#message-{older.pk} > summary").click()
        frame = page.frame_locator(f"#reading-{older.pk} iframe.message-frame")
        expect(frame.locator("body")).to_contain_text("Fixture first")

        assert listener.requests == []
        newest.get_by_role("button", name="Always show images from dave@ecole.test").click()
        expect(newest.locator("iframe.message-frame")).to_have_attribute(
            "src", re.compile(r"images=1")
        )
        expect(newest).not_to_contain_text("Remote images are hidden")
        image = page.frame_locator(f"#reading-{newer.pk} iframe.message-frame").locator("img")
        expect(image).to_have_js_property("naturalWidth", 1)  # the 1x1 PNG, loaded

    assert [request.path for request in listener.requests] == ["/visible.png"]
    assert listener.requests[0].headers["user-agent"] == proxy.USER_AGENT
