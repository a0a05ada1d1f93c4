"""The webmail end to end in Debian's Chromium: read, star, archive (on the IMAP server too),
search with operators, the keyboard, and new mail appearing without a reload (IMAP IDLE)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.db import connection
from django.test import override_settings
from imapclient import IMAPClient
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from mailboxes import idle, indexing, services, sync
from mailboxes.models import MailAccount
from tests.conftest import CAROL, PASSWORD
from tests.mailstack import MailStack
from tests.test_browser import browser, sign_in_page  # noqa: F401 -- a fixture
from tests.test_browser import page as page  # the fixture, by name

pytestmark = [pytest.mark.browser, pytest.mark.mailstack, pytest.mark.django_db(transaction=True)]


_hours = itertools.count(1)


def mail(subject: str, sender: str, body: str, **headers: str) -> bytes:
    """A message dated an hour after the previous one: the order of the list is known."""
    message = EmailMessage()
    message["Date"] = format_datetime(
        datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=next(_hours))
    )
    message["From"] = sender
    message["To"] = CAROL
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ecole.test")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


@pytest.fixture
def carol_mail(alice: User, mailstack: MailStack, server: IMAPClient) -> Iterator[MailAccount]:
    """Alice's account for carol@ecole.test, synced, with a small conversation and two others."""
    parent = mail("Sortie au musée", "Dave <dave@ecole.test>", "Rendez-vous à 9 h devant l'école.")
    parent_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in parent.splitlines()
        if line.lower().startswith(b"message-id:")
    )
    server.append("INBOX", parent)
    server.append(
        "INBOX",
        mail("Re: Sortie au musée", "Erin <erin@ecole.test>", "Je viendrai avec le bus.",
             In_Reply_To=parent_id, References=parent_id),
    )  # fmt: skip
    server.append("INBOX", mail("Budget cantine", "Élodie <elodie@ecole.test>", "Le budget 2027."))
    server.append("INBOX", mail("Kermesse", "Dave <dave@ecole.test>", "Stands et budget."))
    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        account = MailAccount.objects.create(
            user=alice,
            email=CAROL,
            incoming_host="127.0.0.1",
            incoming_port=mailstack.imaps_port,
            username=CAROL,
            password=mailstack.users[CAROL],
            smtp_host="127.0.0.1",
            smtp_port=mailstack.submissions_port,
        )
        sync.sync_account(account)
        indexing.index_account(account)
        yield account


def push_listener(account: MailAccount, stop: threading.Event) -> threading.Thread:
    """The IDLE listener, as `manage.py idle_listener` runs it: a change starts a sync."""
    ready = threading.Event()

    def on_change(account_id: int) -> None:
        try:
            services.run_sync(account_id)
        finally:
            connection.close()  # this thread's own connection, or teardown waits for it

    thread = threading.Thread(
        target=idle.watch_account,
        args=(account, on_change, stop),
        kwargs={"ready": ready},
        daemon=True,
    )
    thread.start()
    assert ready.wait(10), "IDLE did not start"
    return thread


def server_inbox_within(server: IMAPClient, seconds: float) -> list[str]:
    """The subjects in the server's Inbox once it holds two messages, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        server.select_folder("INBOX", readonly=True)
        subjects = sorted(
            data[b"ENVELOPE"].subject.decode()
            for data in server.fetch(server.search("ALL"), ["ENVELOPE"]).values()
        )
        if len(subjects) <= 2 or time.monotonic() > deadline:
            return subjects
        time.sleep(0.1)


def test_read_star_archive_search_keyboard_and_push(
    alice: User,
    carol_mail: MailAccount,
    mailstack: MailStack,
    server: IMAPClient,
    live_server: LiveServer,
    page: Page,
) -> None:
    base = live_server.url
    stop = threading.Event()
    listener = push_listener(carol_mail, stop)
    try:
        sign_in_page(page, base, alice.email, PASSWORD)
        expect(page).to_have_url(f"{base}/mail/inbox/")
        rows = page.locator("li.conversation")
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text("Kermesse")

        # Open the two-message conversation, star it.
        page.get_by_role("link", name=re.compile("Sortie au musée")).click()
        expect(page.get_by_role("heading", name="Re: Sortie au musée")).to_be_visible()
        expect(page.locator(".message-card")).to_have_count(2)
        page.locator("form#mail-actions button.star").click()
        expect(page.locator("form#mail-actions button.star.on")).to_be_visible()

        # Archive it with the keyboard from the conversation page: gone from the server's Inbox.
        page.keyboard.press("e")
        expect(page).to_have_url(f"{base}/mail/inbox/")
        expect(rows).to_have_count(2)
        # The move reaches the server through a sync task, which may still be running in
        # another request's thread (the star's sync, asked to go round again).
        assert server_inbox_within(server, 10.0) == ["Budget cantine", "Kermesse"]
        server.select_folder("Archive", readonly=True)
        assert len(server.search("ALL")) == 2

        # Search with two operators.
        page.keyboard.press("/")
        page.keyboard.type("budget from:elodie")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=re.compile("Search results"))).to_be_visible()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Budget cantine")
        expect(rows.first.locator("mark").first).to_have_text(re.compile("budget", re.I))

        # Keyboard navigation in the Inbox: j to the second row, o to open it.
        page.keyboard.press("g")
        page.keyboard.press("i")
        expect(page).to_have_url(f"{base}/mail/inbox/")
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("o")
        expect(page.get_by_role("heading", name="Budget cantine")).to_be_visible()
        page.keyboard.press("u")
        expect(page).to_have_url(f"{base}/mail/inbox/")

        # New mail over LMTP: IDLE notices, the sync stores it, the page shows it unreloaded.
        page.evaluate("window.__courrierNotReloaded = true")
        mailstack.deliver(
            mail("Nouvelle circulaire", "Direction <dir@ecole.test>", "Lisez-la."), CAROL
        )
        expect(rows.first).to_contain_text("Nouvelle circulaire", timeout=15_000)
        assert page.evaluate("window.__courrierNotReloaded") is True
    finally:
        stop.set()
        listener.join(timeout=10)
