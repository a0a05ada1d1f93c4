"""static/js/mail.js in a real browser: shortcuts, selection, actions with Undo, live updates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from mailboxes import live
from mailboxes.models import Conversation, Folder, MailAccount, Message, MessageContent
from tests.conftest import PASSWORD
from tests.mailstack import MailStack
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, record_problem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 11, 1, tzinfo=UTC)
T = TypeVar("T")


def off_the_loop(work: Callable[[], T]) -> T:
    """Django refuses ORM calls in the thread where Playwright's event loop runs: use another
    (and close its connection, or the test database could not be dropped at the end)."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


class Mailbox:
    """A POP3 account with the usual folders, filled in the database directly.

    Its server is the test mail stack's, whose certificate this process does not trust (no
    MAIL_CA_FILE): the sync that each action starts after its commit (eagerly, in tests) stops
    at the TLS handshake at once, records the error, and never touches the shared mailbox.
    """

    def __init__(self, user: User, port: int) -> None:
        self.user = user
        self.account = MailAccount.objects.create(
            user=user,
            email="alice@courrier.test",
            protocol=MailAccount.Protocol.POP3,
            incoming_host="127.0.0.1",
            incoming_port=port,
            username="alice@courrier.test",
            password="not used",
            smtp_host="127.0.0.1",
        )
        self.folders = {
            role: Folder.objects.create(account=self.account, name=name, role=role)
            for role, name in [
                ("inbox", "INBOX"),
                ("archive", "Archive"),
                ("trash", "Trash"),
                ("junk", "Junk"),
            ]
        }
        self.count = 0

    def add(self, subject: str, *, role: str = "inbox", hours: int = 0) -> Message:
        self.count += 1
        conversation = Conversation.objects.create(account=self.account, subject=subject)
        content = MessageContent.objects.create(
            account=self.account,
            sha256=f"{self.count:064d}",
            raw_path=f"mail/{self.count}.eml",
            size=100,
            subject=subject,
            from_name="Dave",
            from_email="dave@ecole.test",
            snippet=f"About {subject}",
            conversation=conversation,
            date=START + timedelta(hours=hours),
            indexed=True,
        )
        return Message.objects.create(folder=self.folders[role], content=content, date=content.date)


@pytest.fixture
def mailbox(alice: User, mailstack: MailStack) -> Mailbox:
    box = Mailbox(alice, mailstack.pop3s_port)
    # Newest first in the list: Kermesse, Cantine, Piscine.
    box.add("Piscine", hours=1)
    box.add("Cantine", hours=2)
    box.add("Kermesse", hours=3)
    return box


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def open_page(browser: Browser, **options: object) -> tuple[Page, list[str]]:
    context = browser.new_context(locale="en-GB", **options)  # type: ignore[arg-type]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: record_problem(problems, message))
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page, problems = open_page(browser)
    yield page
    page.context.close()
    # Any script error or CSP violation fails the test.
    assert problems == []


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/mail/inbox/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()
    expect(page).to_have_url(f"{base}/mail/inbox/")
    page.wait_for_load_state()  # mail.js (deferred) listens from here on


def subjects(page: Page) -> list[str]:
    return page.locator("#mail-list [data-row] .subject").all_inner_texts()


CURRENT = re.compile(r"\bcurrent\b")


def test_j_and_k_move_the_cursor_x_selects_and_question_mark_opens_the_help(
    alice: User, mailbox: Mailbox, live_server: LiveServer, page: Page
) -> None:
    sign_in(page, live_server.url, alice.email)
    rows = page.locator("#mail-list [data-row]")
    expect(rows).to_have_count(3)

    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(CURRENT)
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(CURRENT)
    expect(rows.nth(0)).not_to_have_class(CURRENT)
    expect(rows.nth(1).locator("[data-open]")).to_be_focused()
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(CURRENT)

    page.keyboard.press("x")
    expect(rows.nth(0).locator("input.select")).to_be_checked()
    select_all = page.locator("[data-select-all]")
    assert select_all.evaluate("box => box.indeterminate")
    rows.nth(2).locator("input.select").click(modifiers=["Shift"])  # a range from the last one
    expect(rows.nth(1).locator("input.select")).to_be_checked()
    expect(select_all).to_be_checked()
    expect(rows.nth(2)).to_have_class(CURRENT)  # clicking into a row makes it the current one

    page.keyboard.press("?")
    help_dialog = page.locator("#shortcuts-help")
    expect(help_dialog).to_be_visible()
    page.keyboard.press("k")  # shortcuts sleep while the dialog is open
    expect(rows.nth(2)).to_have_class(CURRENT)
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    page.keyboard.press("/")
    expect(page.locator("#mail-search")).to_be_focused()
    page.keyboard.press("j")  # typed into the search, not a shortcut
    expect(page.locator("#mail-search")).to_have_value("j")


def test_e_archives_the_current_conversation_and_undo_brings_it_back(
    alice: User, mailbox: Mailbox, live_server: LiveServer, page: Page
) -> None:
    sign_in(page, live_server.url, alice.email)
    assert subjects(page) == ["Kermesse", "Cantine", "Piscine"]

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("e")  # nothing selected: the current row is what is archived

    toast = page.locator("#toast [data-toast]")
    expect(toast).to_contain_text("Conversation archived.")
    expect(page.locator("#mail-list [data-row] .subject")).to_have_text(["Kermesse", "Piscine"])
    # The cursor stays at its place, now on the next conversation, and keeps the focus.
    current = page.locator("#mail-list [data-row].current")
    expect(current.locator(".subject")).to_have_text("Piscine")
    expect(current.locator("[data-open]")).to_be_focused()
    expect(page.locator("#mail-list input.select:checked")).to_have_count(0)

    toast.get_by_role("button", name="Undo").click()
    expect(toast).to_contain_text("Undone.")
    expect(page.locator("#mail-list [data-row] .subject")).to_have_text(
        ["Kermesse", "Cantine", "Piscine"]
    )
    # The toast goes by itself after a few seconds, once the pointer leaves it.
    page.mouse.move(600, 20)
    expect(toast).to_have_count(0, timeout=15_000)

    roles = off_the_loop(
        lambda: sorted(
            Message.objects.filter(folder__account__user=alice).values_list(
                "folder__role", flat=True
            )
        )
    )
    assert roles == ["inbox", "inbox", "inbox"]


def test_a_star_posts_its_own_row_only_with_and_without_javascript(
    alice: User, mailbox: Mailbox, live_server: LiveServer, browser: Browser
) -> None:
    def starred() -> list[str]:
        return off_the_loop(
            lambda: sorted(
                Message.objects.filter(folder__account__user=alice, flagged=True).values_list(
                    "content__subject", flat=True
                )
            )
        )

    for javascript, subject in [(True, "Cantine"), (False, "Piscine")]:
        page, problems = open_page(browser, java_script_enabled=javascript)
        sign_in(page, live_server.url, alice.email)
        rows = page.locator("#mail-list [data-row]")
        rows.filter(has_text="Kermesse").locator("input.select").check()  # a selection aside
        rows.filter(has_text=subject).locator("[data-star]").click()
        if javascript:
            expect(page.locator("#toast")).to_contain_text("Starred.")
        else:
            expect(page.locator(".messages")).to_contain_text("Starred.")
        expect(rows.filter(has_text=subject).locator("[data-star]")).to_have_attribute(
            "aria-pressed", "true"
        )
        page.context.close()
        assert problems == []
    assert starred() == ["Cantine", "Piscine"]


def test_delete_for_good_asks_first(
    alice: User, mailbox: Mailbox, live_server: LiveServer, page: Page
) -> None:
    off_the_loop(lambda: mailbox.add("Loterie", role="junk"))
    junk = mailbox.folders["junk"].pk
    sign_in(page, live_server.url, alice.email)
    page.goto(f"{live_server.url}/mail/folder/{junk}/")
    page.locator("#mail-list [data-row] input.select").check()
    answers = iter([False, True])
    page.on("dialog", lambda dialog: dialog.accept() if next(answers) else dialog.dismiss())
    posts: list[str] = []
    page.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )

    page.get_by_role("button", name="Delete for good").click()  # declined
    page.get_by_role("button", name="Delete for good").click()  # accepted
    expect(page.locator("#toast")).to_contain_text("Deleted for good.")
    expect(page.locator("#mail-list [data-row]")).to_have_count(0)
    assert posts == [f"{live_server.url}/mail/act/"]


def test_mail_arriving_on_the_server_appears_without_reloading(
    alice: User, mailbox: Mailbox, live_server: LiveServer, page: Page
) -> None:
    sign_in(page, live_server.url, alice.email)
    expect(page).to_have_title(re.compile(r"^\(3\) All inboxes · "))
    page.evaluate("document.documentElement.dataset.loaded = 'once'")  # gone if the page reloads

    def arrives() -> None:
        mailbox.add("Sortie scolaire", hours=4)
        live.bump(alice.pk)  # what a sync does once it stored something

    off_the_loop(arrives)
    expect(page.locator("#mail-list [data-row] .subject").first).to_have_text(
        "Sortie scolaire", timeout=10_000
    )
    expect(page.locator("[data-count=inbox]")).to_have_text("4")
    expect(page).to_have_title(re.compile(r"^\(4\) All inboxes · "))
    expect(page.locator("html")).to_have_attribute("data-loaded", "once")
