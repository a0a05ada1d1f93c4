"""Writing, undoing and sending a message in a real browser (Debian's Chromium through
Playwright), through the project's Postfix and Dovecot.

Celery runs eagerly in tests, so the task `drafts.queue` schedules with a countdown runs at once,
inside the Send request: `compose.sending.claim` finds the message not due yet (its send_at is
the end of the undo window) and leaves it, as a worker would. The test then plays the worker
after the window: it moves send_at to now and runs `compose.sending.send` itself, rather than
sleeping through the window or setting the user's undo delay to 0 (which would send inside the
request and leave the Undo nothing to undo)."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from compose import sending
from compose.models import Contact, Draft
from mailboxes import sync
from mailboxes.models import MailAccount
from tests.conftest import PASSWORD
from tests.mailstack import MailStack
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, record_problem

pytestmark = [pytest.mark.browser, pytest.mark.mailstack, pytest.mark.django_db(transaction=True)]

ALICE, BOB = "alice@courrier.test", "bob@courrier.test"
T = TypeVar("T")


@pytest.fixture
def stack(mailstack: MailStack) -> Iterator[MailStack]:
    for address in (ALICE, BOB):
        mailstack.clear_mailbox(address)
    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        yield mailstack


@pytest.fixture
def alice_account(alice: User, stack: MailStack) -> MailAccount:
    account = MailAccount.objects.create(
        user=alice,
        email=ALICE,
        display_name="Alice",
        incoming_host="127.0.0.1",
        incoming_port=stack.imaps_port,
        username=ALICE,
        password=stack.users[ALICE],
        smtp_host="127.0.0.1",
        smtp_port=stack.submission_port,
        smtp_security="starttls",
    )
    sync.sync_account(account)  # the folders, Sent and Drafts among them
    return account


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Listed after the database fixtures: Django refuses ORM calls while Playwright's loop runs
    in this thread (`in_thread` below is for the few the test makes meanwhile)."""
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: record_problem(problems, message))
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert problems == []  # no script error, no CSP violation, no failed request


def in_thread(function: Callable[[], T]) -> T:
    """Run ORM code away from Playwright's event loop, on a connection closed afterwards."""

    def run() -> T:
        try:
            return function()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def sign_in(page: Page, base: str, email_address: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=login]").fill(email_address)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()
    expect(page).to_have_url(f"{base}/mail/inbox/")


def test_write_attach_send_undo_reload_and_send_to_bob(
    alice: User, alice_account: MailAccount, stack: MailStack, live_server: LiveServer, page: Page
) -> None:
    base = live_server.url
    sign_in(page, base, alice.email)

    page.goto(f"{base}/compose/new/")
    expect(page).to_have_url(re.compile(r"/compose/\d+/$"))
    editor_url = page.url
    found = re.search(r"/compose/(\d+)/$", editor_url)
    assert found is not None
    draft_id = int(found.group(1))
    expect(page.get_by_role("heading", name="New message")).to_be_visible()

    page.get_by_label("To", exact=True).fill(BOB)
    page.get_by_label("Subject").fill("Le plan de la sortie")
    editor = page.get_by_role("textbox", name="Message")
    editor.click()
    page.keyboard.type("Bonjour Bob, voici le plan. ")
    page.get_by_role("button", name="Bold").click()
    page.keyboard.type("Départ à 8 h")
    plan = {"name": "plan.txt", "mimeType": "text/plain", "buffer": b"1. le car\n2. le musee\n"}
    page.get_by_label("Attach files").set_input_files(files=[plan])
    expect(page.locator("#attachment-list")).to_contain_text("plan.txt")
    expect(page.locator("#attachment-list")).to_contain_text("22 bytes")

    # Send, then change our mind within the window.
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page).to_have_url(f"{base}/mail/inbox/")
    notice = page.locator(".messages")
    expect(notice).to_contain_text("Sending…")
    notice.get_by_role("button", name="Undo").click()

    expect(page).to_have_url(editor_url)
    expect(page.locator(".messages")).to_contain_text("back in your drafts")
    expect(editor).to_contain_text("Bonjour Bob, voici le plan. Départ à 8 h")
    expect(editor.locator("b")).to_have_text("Départ à 8 h")
    expect(page.get_by_label("Subject")).to_have_value("Le plan de la sortie")
    expect(page.locator("#attachment-list")).to_contain_text("plan.txt")

    # Autosave: typing is saved without pressing anything, and a reload shows it.
    editor.click()
    page.keyboard.press("Control+End")
    bold = page.get_by_role("button", name="Bold")
    expect(bold).to_have_attribute("aria-pressed", "true")  # the caret is in the bold text
    bold.click()
    expect(bold).to_have_attribute("aria-pressed", "false")
    page.keyboard.type(" Et une suite.")
    expect(page.locator("[data-save-status]")).to_have_text("Saved", timeout=10_000)
    page.reload()
    expect(editor).to_contain_text("Départ à 8 h Et une suite.")
    expect(page.locator("#attachment-list")).to_contain_text("plan.txt")

    page.get_by_role("button", name="Send", exact=True).click()
    expect(page).to_have_url(f"{base}/mail/inbox/")
    expect(page.locator(".messages")).to_contain_text("Sending…")

    def worker_after_the_undo_window() -> tuple[str, str]:
        draft = Draft.objects.get(pk=draft_id)
        assert draft.state == Draft.State.QUEUED
        assert sending.send(draft_id) == ""  # within the window: a worker leaves it alone
        Draft.objects.filter(pk=draft_id).update(send_at=timezone.now())  # the window is over
        return sending.send(draft_id), draft.message_id

    state, message_id = in_thread(worker_after_the_undo_window)

    assert state == Draft.State.DONE
    delivered = email.message_from_bytes(
        stack.wait_for_message(BOB, f"<{message_id}>"), policy=email.policy.default
    )
    assert str(delivered["Subject"]) == "Le plan de la sortie"
    assert [a.get_filename() for a in delivered.iter_attachments()] == ["plan.txt"]
    body = delivered.get_body(("html",))
    assert body is not None
    assert "<b>Départ à 8 h</b>" in body.get_content()
    assert "Et une suite." in body.get_content()
    stack.wait_for_message(ALICE, f"<{message_id}>", folder="Sent")
    with stack.imap(ALICE) as client:
        client.select_folder("Drafts", readonly=True)
        assert client.search(["ALL"]) == []  # the autosaved copy went when the message did


@pytest.fixture
def address_book(alice: User) -> None:
    """An account with nothing behind it (no Drafts folder: autosave stays local), and three
    contacts."""
    MailAccount.objects.create(
        user=alice, email=ALICE, incoming_host="127.0.0.1", username=ALICE, password="p",
        smtp_host="127.0.0.1",
    )  # fmt: skip
    for address, name, times in [
        ("carol@ecole.test", "Carol Martin", 5),
        ("caroline@ecole.test", "Caroline, la directrice", 2),
        ("dave@ecole.test", "Dave", 9),
    ]:
        Contact.objects.create(user=alice, email=address, name=name, times=times)


PASTED = (
    '<p style="color: red" onclick="alert(1)">Collé <img src="https://tracker.test/p.png">'
    '<img src="//cdn.test/x.gif"><a href="javascript:alert(1)">lien</a></p>'
)
PASTE = """(html) => {
    const data = new DataTransfer();
    data.setData("text/html", html);
    const options = {clipboardData: data, bubbles: true, cancelable: true};
    const paste = new ClipboardEvent("paste", options);
    document.getElementById("compose-editor").dispatchEvent(paste);
}"""


def test_suggestions_by_keyboard_and_pasted_remote_images_stripped(
    alice: User, address_book: None, live_server: LiveServer, page: Page
) -> None:
    base = live_server.url
    sign_in(page, base, alice.email)
    page.goto(f"{base}/compose/new/")

    to = page.get_by_label("To", exact=True)
    to.fill("car")
    listbox = page.get_by_role("listbox", name="Suggested addresses")
    expect(listbox.get_by_role("option")).to_have_count(2)
    expect(listbox.get_by_role("option").first).to_contain_text("Carol Martin")  # most used
    expect(to).to_have_attribute("aria-expanded", "true")
    to.press("ArrowDown")
    to.press("ArrowDown")
    expect(listbox.get_by_role("option").nth(1)).to_have_attribute("aria-selected", "true")
    to.press("Enter")
    expect(to).to_have_value('"Caroline, la directrice" <caroline@ecole.test>, ')
    expect(listbox).to_be_hidden()
    to.press_sequentially("da")
    expect(listbox.get_by_role("option")).to_have_count(1)
    to.press("Escape")
    expect(listbox).to_be_hidden()
    expect(to).to_have_attribute("aria-expanded", "false")
    expect(page).to_have_url(re.compile(r"/compose/\d+/$"))  # Enter did not send anything

    editor = page.get_by_role("textbox", name="Message")
    editor.click()
    page.evaluate(PASTE, PASTED)
    expect(editor).to_contain_text("Collé")
    assert editor.locator("img").count() == 0
    inner = editor.inner_html()
    assert "onclick" not in inner
    assert "style" not in inner
    assert "javascript:" not in inner

    page.keyboard.press("End")
    page.keyboard.press("Enter")
    bullets = page.get_by_role("button", name="Bulleted list")
    bullets.click()
    page.keyboard.type("premier point")
    expect(editor.locator("ul > li")).to_have_text("premier point")
    expect(bullets).to_have_attribute("aria-pressed", "true")
    quote = page.get_by_role("button", name="Quote")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # out of the list
    page.keyboard.type("une citation")
    quote.click()
    expect(editor.locator("blockquote")).to_have_text("une citation")
    expect(quote).to_have_attribute("aria-pressed", "true")
    quote.click()
    expect(editor.locator("blockquote")).to_have_count(0)
    expect(editor).to_contain_text("une citation")
    expect(page.locator("[data-save-status]")).to_have_text("Saved", timeout=10_000)
