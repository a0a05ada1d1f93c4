"""A real browser (Debian's Chromium, driven by Playwright) on the live server."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import mail
from django_otp.oath import TOTP
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
# No background traffic: the machine has no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Playwright's sync API runs an event loop in this thread while it lives, and Django refuses
    ORM calls under a running loop: tests list their database fixtures before ``page``."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: record_problem(problems, message))
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    # Any script error or CSP violation on any page fails the test.
    assert problems == []


def record_problem(problems: list[str], message: ConsoleMessage) -> None:
    if message.type in {"error", "warning"}:
        problems.append(f"{message.text} ({message.location.get('url')})")


def test_sign_in_in_french_and_reach_the_mailbox(
    alice: User, live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    assert page.evaluate("typeof window.htmx") == "object"  # vendored htmx loaded under the CSP

    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()

    page.locator("input[name=login]").fill(alice.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()

    expect(page).to_have_url(f"{live_server.url}/mail/inbox/")
    expect(page.get_by_role("heading", name="Toutes les boîtes de réception")).to_be_visible()
    expect(page.locator(".topbar .who")).to_have_text(alice.email)
    page.screenshot(path=tmp_path / "mailbox-fr.png")

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté")


def phone_code(secret: str, steps: int = 0) -> str:
    """What the user's phone shows, having been given ``secret`` (as displayed, base32)."""
    totp = TOTP(base64.b32decode(secret.replace(" ", "")))
    totp.time = time.time() + steps * 30
    return f"{totp.token():06d}"


def enrol_authenticator(page: Page) -> str:
    """On the enrolment page: scan (read the key), type the code, keep the backup codes."""
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    page.locator("input[name=code]").fill(phone_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    expect(page.locator(".backup-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have saved them").click()
    return secret


def sign_in_page(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()


def test_sign_up_enrol_an_authenticator_then_sign_in_with_it(
    live_server: LiveServer, page: Page
) -> None:
    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    page.locator("input[name=email]").fill("erin@example.org")
    page.locator("input[name=password1]").fill("larch-quiver-omelette-87")
    page.locator("input[name=password2]").fill("larch-quiver-omelette-87")
    page.locator("form[action='/accounts/signup/'] button[type=submit]").click()
    expect(page).to_have_url(f"{base}/accounts/confirm-email/")

    link = re.search(r"(http://\S+/accounts/confirm-email/\S+/)", mail.outbox[-1].body)
    assert link is not None
    page.goto(link.group(1))
    page.get_by_role("button", name="Confirm").click()
    sign_in_page(page, base, "erin@example.org", "larch-quiver-omelette-87")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    page.get_by_role("link", name="Security").first.click()
    page.get_by_role("link", name="Add an authenticator app").click()
    secret = enrol_authenticator(page)
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()

    page.locator(".topbar").get_by_role("button", name="Sign out").click()
    sign_in_page(page, base, "erin@example.org", "larch-quiver-omelette-87")
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.goto(f"{base}/")  # held back: still the code page
    expect(page).to_have_url(re.compile(r"/accounts/security/verify/"))
    # The enrolment code was used; the phone's next one is within the one-step tolerance.
    page.locator("input[name=code]").fill(phone_code(secret, steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/mail/inbox/")
    expect(page.get_by_role("heading", name="All inboxes")).to_be_visible()


def test_staff_must_enrol_before_reaching_the_admin(
    admin_user: User, live_server: LiveServer, page: Page
) -> None:
    base = live_server.url
    page.goto(f"{base}/admin/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/admin/"))
    page.locator("input[name=login]").fill(admin_user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/accounts/security/authenticator/add/\?next=%2Fadmin%2F"))
    expect(page.get_by_text("Your account needs a second sign-in step")).to_be_visible()
    page.goto(f"{base}/admin/accounts/user/")
    expect(page).to_have_url(re.compile(r"/accounts/security/authenticator/add/"))

    enrol_authenticator(page)
    expect(page).to_have_url(f"{base}/admin/accounts/user/")
    expect(page.get_by_role("link", name="Security events")).to_be_visible()
