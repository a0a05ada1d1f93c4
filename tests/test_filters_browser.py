"""Settings → Filters in a real browser (Debian's Chromium through Playwright): rules, the allow
and block lists, the dry run, and the page in French.

The cast: alice, with one mail account filled in the database (no IMAP server is asked). Every
database row is made by a fixture listed before ``page``; what the browser changed is checked in
the page itself, after a reload.

A refused form comes back with status 400, which Chromium logs as a console error ("Failed to load
resource"). This module's ``page`` is tests/test_browser.py's with one difference: it records the
400 answers in ``refused``, which each test compares with the forms it meant to be refused, and
lets through only as many of those console lines; any other console error or CSP violation still
fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Response, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from mailboxes.models import Folder, MailAccount
from spam.models import RuleSet
from tests.conftest import PASSWORD
from tests.test_browser import browser as browser  # the fixture, by name
from tests.test_browser import record_problem, sign_in_page
from tests.test_spam_pipeline import LOTTERY, mail

pytest_plugins = ["tests.dnszones"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("app_uses_dnszones"),
]


FAILED_WITH_400 = "Failed to load resource: the server responded with a status of 400 "


@pytest.fixture
def refused() -> list[str]:
    """The requests the server answered 400 (a refused form), as "METHOD /path"."""
    return []


@pytest.fixture
def page(browser: Browser, refused: list[str]) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: record_problem(problems, message))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda response: record_refusal(refused, response))
    yield page
    context.close()
    failed_loads = [problem for problem in problems if problem.startswith(FAILED_WITH_400)]
    assert len(failed_loads) == len(refused)
    assert [problem for problem in problems if problem not in failed_loads] == []


def record_refusal(refused: list[str], response: Response) -> None:
    if response.status == 400:
        path = re.sub(r"^https?://[^/]+", "", response.url)
        refused.append(f"{response.request.method} {path}")


@pytest.fixture
def alice_account(alice: User) -> MailAccount:
    account = MailAccount.objects.create(
        user=alice,
        email="alice@ecole.test",
        incoming_host="h",
        username="u",
        password="p",
        smtp_host="h",
    )
    for role, name in [("inbox", "INBOX"), ("junk", "Junk"), ("trash", "Trash")]:
        Folder.objects.create(account=account, name=name, role=role, uidvalidity=1)
    return account


@pytest.fixture
def lottery_rule(alice: User) -> RuleSet:
    return RuleSet.objects.create(scope="user", user=alice, rules=[LOTTERY])


def open_filters(page: Page, base: str, user: User) -> None:
    sign_in_page(page, base, user.email, PASSWORD)
    page.goto(f"{base}/mail/filters/")


def test_add_a_rule_from_the_settings_see_a_bad_one_refused_and_remove_it(
    alice: User,
    alice_account: MailAccount,
    live_server: LiveServer,
    page: Page,
    refused: list[str],
) -> None:
    base = live_server.url
    sign_in_page(page, base, alice.email, PASSWORD)
    expect(page).to_have_url(f"{base}/mail/inbox/")
    page.locator(".sidebar").get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Filters and spam").click()
    expect(page).to_have_url(f"{base}/mail/filters/")
    expect(page.get_by_role("heading", name="Filters and spam", level=1)).to_be_visible()
    rules = page.locator("section.spam-rules")
    expect(rules).to_contain_text("You have no rules of your own yet.")

    # A move with no folder: refused, with the reason, and what was typed is still there.
    rules.get_by_label("Name").fill("Newsletters")
    rules.get_by_label("When").select_option(label="The sender's domain")
    rules.get_by_label("Condition").select_option(label="is")
    rules.get_by_label("Value").fill("news.example")
    rules.get_by_label("Then").select_option(label="Move to the folder…")
    rules.get_by_role("button", name="Add the rule").click()
    # Said under the Folder field, in words: no path into the rules' JSON.
    folder_field = rules.locator(".field").filter(has=page.get_by_label("Folder"))
    expect(rules.get_by_role("alert")).to_have_count(1)
    expect(folder_field.get_by_role("alert")).to_have_text("Name the folder to move it to.")
    expect(rules.get_by_label("Name")).to_have_value("Newsletters")
    expect(rules.get_by_label("When")).to_have_value("sender_domain")
    expect(rules.get_by_label("Value")).to_have_value("news.example")
    expect(rules.get_by_label("Then")).to_have_value("move")
    expect(rules.locator("ol.rules")).to_have_count(0)

    # Given the folder, the rule is added and listed.
    rules.get_by_label("Folder").fill("Newsletters")
    rules.get_by_role("button", name="Add the rule").click()
    expect(page).to_have_url(f"{base}/mail/filters/")
    expect(page.get_by_role("status")).to_have_text("The rule is added.")
    listed = rules.locator("ol.rules > li")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("Newsletters")
    expect(listed.first.locator(".rule-summary")).to_have_text(
        "The sender's domain is “news.example” → move to “Newsletters”"
    )
    expect(rules.get_by_label("Name")).to_have_value("")  # a fresh form for the next rule

    # The text can only be searched for words: refused, and nothing more is listed.
    rules.get_by_label("Name").fill("Prizes")
    rules.get_by_label("When").select_option(label="The text")
    rules.get_by_label("Condition").select_option(label="is")
    rules.get_by_label("Value").fill("you won")
    rules.get_by_role("button", name="Add the rule").click()
    expect(rules.get_by_role("alert")).to_have_text(
        "The text can only be searched for words (contains)."
    )
    expect(rules.get_by_label("Value")).to_have_value("you won")
    expect(listed).to_have_count(1)

    # Removed, and still gone after a reload.
    listed.first.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_have_text("The rule was removed.")
    page.reload()
    expect(rules).to_contain_text("You have no rules of your own yet.")
    expect(listed).to_have_count(0)
    assert refused == ["POST /mail/filters/rules/"] * 2


def test_block_a_sender_see_a_bad_pattern_refused_and_remove_it(
    alice: User,
    alice_account: MailAccount,
    live_server: LiveServer,
    page: Page,
    refused: list[str],
) -> None:
    base = live_server.url
    open_filters(page, base, alice)
    lists = page.locator("section.spam-lists")
    expect(lists).to_contain_text("Nobody is on your lists yet.")

    lists.get_by_label("List").select_option(label="Always send to Junk")
    lists.get_by_label("Address or domain").fill("*")
    lists.get_by_role("button", name="Add", exact=True).click()
    expect(lists.get_by_role("alert")).to_have_text(
        "An address or a domain, with * and ? as wildcards."
    )
    expect(lists.get_by_label("Address or domain")).to_have_value("*")
    expect(lists.get_by_label("List")).to_have_value("block")

    lists.get_by_label("Address or domain").fill(" Prizes.Example ")
    lists.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("The list is saved.")
    entries = lists.locator("ul.sender-entries > li")
    expect(entries).to_have_count(1)
    expect(entries.first).to_have_attribute("data-kind", "block")
    expect(entries.first).to_contain_text("Always send to Junk prizes.example")

    entries.first.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_have_text("prizes.example was removed.")
    page.reload()
    expect(entries).to_have_count(0)
    expect(lists).to_contain_text("Nobody is on your lists yet.")
    assert refused == ["POST /mail/filters/senders/"]


def test_try_the_filters_on_a_pasted_message(
    alice: User,
    alice_account: MailAccount,
    lottery_rule: RuleSet,
    live_server: LiveServer,
    page: Page,
    refused: list[str],
) -> None:
    base = live_server.url
    raw = mail(subject="Lottery results: you won").decode()
    open_filters(page, base, alice)
    page.get_by_role("link", name="Try them on a message").click()
    expect(page.get_by_role("heading", name="Try the filters", level=1)).to_be_visible()

    page.get_by_role("button", name="Try", exact=True).click()  # nothing pasted
    expect(page.get_by_role("alert")).to_have_text("This field is required.")
    expect(page.locator("section.dry-run-result")).to_have_count(0)

    page.get_by_label("The raw message").fill(raw)
    page.get_by_role("button", name="Try", exact=True).click()
    result = page.locator("section.dry-run-result")
    expect(result.locator(".dry-run-destination")).to_contain_text("It would go to Junk.")
    expect(result.locator("ol.matched-rules > li")).to_have_count(1)
    expect(result.locator("ol.matched-rules > li")).to_contain_text("Lotteries")
    expect(result).to_contain_text("The subject contains “lottery”")
    expect(page.get_by_label("The raw message")).to_have_value(re.compile("Lottery results"))

    assert refused == ["POST /mail/filters/dry-run/"]


def test_the_filters_page_in_french(
    alice: User,
    alice_account: MailAccount,
    live_server: LiveServer,
    page: Page,
    refused: list[str],
) -> None:
    base = live_server.url
    open_filters(page, base, alice)
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_url(f"{base}/mail/filters/")
    expect(page.get_by_role("heading", name="Filtres et spam", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Expéditeurs autorisés et bloqués")).to_be_visible()
    expect(page.get_by_role("heading", name="Vos règles")).to_be_visible()
    expect(page.locator("section.spam-lists button[type=submit]").last).to_have_text("Ajouter")
    expect(page.get_by_role("button", name="Ajouter la règle")).to_be_visible()
    expect(page.locator(".sidebar").get_by_role("link", name="Essayer les filtres")).to_be_visible()

    # The form reads as a sentence: Si … Condition … Valeur … Alors.
    rules = page.locator("section.spam-rules")
    rules.get_by_label("Nom").fill("Loterie")
    rules.get_by_label("Si", exact=True).select_option(label="L’objet")
    rules.get_by_label("Valeur").fill("loterie")
    rules.get_by_label("Alors").select_option(label="Placer dans le dossier…")
    rules.get_by_role("button", name="Ajouter la règle").click()
    expect(rules.locator(".field").filter(has=page.get_by_label("Dossier"))).to_contain_text(
        "Indiquez le dossier où le déplacer."
    )
    rules.get_by_label("Alors").select_option(label="Placer dans les indésirables")
    rules.get_by_role("button", name="Ajouter la règle").click()
    expect(page.get_by_role("status")).to_have_text("La règle est ajoutée.")
    expect(rules.locator("ol.rules > li")).to_contain_text("Loterie")
    assert refused == ["POST /mail/filters/rules/"]
