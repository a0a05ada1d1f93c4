"""A real browser (Debian's Chromium, driven by Playwright) on the live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
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
        problems.append(message.text)


@pytest.fixture
def verified_alice(alice: User) -> User:
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    return alice


def test_sign_in_in_french_and_reach_the_mailbox(
    verified_alice: User, live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    assert page.evaluate("typeof window.htmx") == "object"  # vendored htmx loaded under the CSP

    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()

    page.locator("input[name=login]").fill(verified_alice.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Boîte de réception")).to_be_visible()
    expect(page.locator(".topbar .who")).to_have_text(verified_alice.email)
    page.screenshot(path=tmp_path / "mailbox-fr.png")

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté")
