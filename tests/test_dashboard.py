"""The operations dashboard: counts, failing syncs, the outbox, mail per day, DNS alerts, services.

The cast: root (superuser), alice (a user with a failing account and a healthy one), dora (staff,
administers ecole.test only).
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from compose.models import Draft
from domains import dkim, services
from domains.models import AuditEntry, DnsCheckResult, Domain
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from tests.conftest import PASSWORD, add_authenticator, make_user, sign_in, totp_code
from tests.test_browser import browser, page  # noqa: F401 -- fixtures: Debian's Chromium

pytest.register_assert_rewrite("tests.dnszones")
from tests.dnszones import DnsServerFactory, Zones, mail_domain  # noqa: E402 -- after the rewrite

pytest_plugins = ["tests.dnszones"]

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/courrier/dashboard/"
SHOTS = Path("/tmp/courrier-shots")  # noqa: S108 -- where the brief asks for them, to look at
_numbers = itertools.count()


def signed_in(user: User) -> Client:
    device = add_authenticator(user)
    client = Client()
    sign_in(client, user.email)
    assert client.post("/accounts/security/verify/", {"code": totp_code(device)}).status_code == 302
    return client


@pytest.fixture
def root() -> User:
    return make_user("root@example.org", is_superuser=True)


@pytest.fixture
def root_client(root: User) -> Client:
    return signed_in(root)


def account(user: User, email: str, **state: object) -> MailAccount:
    return MailAccount.objects.create(
        user=user,
        email=email,
        incoming_host="imap.example.org",
        username=email,
        password="secret",
        smtp_host="smtp.example.org",
        **state,
    )


def draft(account: MailAccount, state: str, last_error: str = "") -> Draft:
    return Draft.objects.create(
        user=account.user,
        account=account,
        from_email=account.email,
        subject=f"Message {next(_numbers)}",
        message_id=f"<{next(_numbers)}@example.org>",
        state=state,
        last_error=last_error,
    )


def stored(account: MailAccount, folder: Folder, days_ago: int) -> Message:
    number = next(_numbers)
    date = timezone.now() - timedelta(days=days_ago)
    content = MessageContent.objects.create(
        account=account, sha256=f"{number:064x}", raw_path=f"raw/{number}", size=100, date=date
    )
    return Message.objects.create(folder=folder, content=content, uid=number, date=date)


def dns_run(domain: Domain, run: int, *statuses: str) -> None:
    for number, status in enumerate(statuses):
        DnsCheckResult.objects.create(
            domain=domain,
            run=run,
            kind=f"check-{number}",
            status=status,
            problem="missing" if status == "error" else "",
            checked_at=timezone.now(),
        )


@pytest.fixture
def activity(alice: User) -> None:
    """A small organisation on an ordinary day, with a few things going wrong."""
    now = timezone.now()
    broken = account(
        alice,
        "alice@ecole.test",
        last_error="auth: LOGIN refused by imap.example.org",
        last_error_at=now,
        last_success_at=now - timedelta(days=2),
    )
    healthy = account(alice, "alice@perso.test", last_success_at=now)
    for state in ("queued", "queued", "sending", "retrying", "done", "draft"):
        draft(healthy, state)
    draft(healthy, "draft", last_error="550 5.1.1 <nobody@nowhere.test>: Recipient unknown")
    inbox = Folder.objects.create(account=healthy, name="INBOX", role="inbox")
    junk = Folder.objects.create(account=healthy, name="Junk", role="junk")
    for days_ago in (0, 0, 1, 3):
        stored(healthy, inbox, days_ago)
    stored(healthy, junk, 0)
    stored(broken, inbox, 30)  # older than the chart

    ecole = Domain.objects.create(name="ecole.test")
    dns_run(ecole, 1, "ok", "ok")
    dns_run(ecole, 2, "error", "warning", "ok")
    mairie = Domain.objects.create(name="mairie.test")
    dns_run(mairie, 1, "error")
    dns_run(mairie, 2, "ok", "pending")  # fixed since: no alert


def test_the_dashboard_shows_counts_failures_outbox_and_a_dns_alert(
    root_client: Client, activity: None
) -> None:
    response = root_client.get(DASHBOARD)
    assert response.status_code == 200
    text = response.text
    numbers = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(\d+)</dd>", text))
    assert numbers == {
        "Active users": "2",  # alice and root
        "Staff": "1",
        "Mail accounts": "2",
        "Failing to sync": "1",
        "Queued": "2",
        "Sending": "1",
        "Waiting to retry": "1",
        "Failed, last 7 days": "1",
    }
    assert "auth: LOGIN refused by imap.example.org" in text
    assert "alice@ecole.test" in text
    assert "Recipient unknown" in text

    alert = text.split('class="courrier-alert"')[1].split("</div>")[0]
    assert "ecole.test" in alert
    assert "1 error" in alert
    assert "mairie.test" not in alert
    assert text.index('class="courrier-alert"') < text.index('id="people"')  # at the top


def test_the_dashboard_draws_its_charts_as_svg_on_the_server(
    root_client: Client, activity: None
) -> None:
    text = root_client.get(DASHBOARD).text
    charts = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" viewBox.*?</svg>', text, re.S)
    assert len(charts) == 2
    messages, junk = charts
    assert messages.count("<rect") == junk.count("<rect") == services.DASHBOARD_DAYS
    assert "<script" not in messages
    today = Message.objects.filter(folder__role="junk").get().date  # stored moments ago
    label = f"{today:%a} {today.day} {today:%b}"
    assert f"{label}: 3</title>" in messages  # two in the Inbox, one in Junk
    assert f"{label}: 1</title>" in junk
    assert "5 in all, at most 3 a day" in text
    assert "messages in Junk folders, by message date" in text
    assert "by the date they carry" in text


def test_chart_numbers_are_not_localized_into_commas(root_client: Client, activity: None) -> None:
    root_client.post("/i18n/setlang/", {"language": "fr"})
    svg = re.search(r"<svg xmlns=.*?</svg>", root_client.get(DASHBOARD).text, flags=re.S)
    assert svg is not None
    assert not re.search(r'(x|y|width|height)="\d+,\d', svg.group(0))


def test_the_dashboard_costs_a_fixed_number_of_queries(
    root_client: Client, alice: User, activity: None, django_assert_max_num_queries
) -> None:
    with django_assert_max_num_queries(20) as first:
        root_client.get(DASHBOARD)
    # More of everything: accounts failing, domains failing, messages, drafts.
    for number in range(5):
        failing = account(alice, f"more{number}@ecole.test", last_error="timeout")
        draft(failing, "queued")
        stored(failing, Folder.objects.create(account=failing, name="Junk", role="junk"), number)
        dns_run(Domain.objects.create(name=f"d{number}.test"), 1, "error")
    with django_assert_max_num_queries(len(first.captured_queries)):
        response = root_client.get(DASHBOARD)
    assert response.text.count("more") >= 5


def test_the_health_of_services_is_shown(root_client: Client) -> None:
    text = root_client.get(DASHBOARD).text
    services_card = text.split('id="services"')[1].split("</section>")[0]
    assert services_card.count('courrier-status--ok">ok') == 2  # database and broker
    assert "no heartbeat ever" in services_card
    assert "No managed domain yet" in text
    assert 'class="courrier-alert"' not in text


def test_only_superusers_see_the_dashboard(client: Client, root: User) -> None:
    dora = make_user("dora@ecole.test", is_staff=True)
    Domain.objects.create(name="ecole.test").admins.add(dora)
    assert signed_in(dora).get(DASHBOARD).status_code == 403
    add_authenticator(root)
    sign_in(client, root.email)  # second factor not given yet
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/security/verify/")


def test_the_admin_index_links_to_the_dashboard(root_client: Client) -> None:
    assert f'href="{DASHBOARD}"' in root_client.get("/admin/").text


def test_the_dashboard_is_get_only(root_client: Client) -> None:
    assert root_client.post(DASHBOARD).status_code == 405


# Screenshots in a real browser -------------------------------------------------------------------


@pytest.fixture
def root_code(root: User, activity: None, dns_servers: DnsServerFactory, settings: Any) -> str:
    """Everything in the database before the browser starts (Django refuses ORM calls under
    Playwright's event loop): a real DNS check of ecole.test, whose owner forgot SPF and left
    DMARC at "none", and root's current code."""
    zones = Zones()
    mail_domain(zones, "ecole.test", spf=(), dmarc="v=DMARC1; p=none")
    host, port = dns_servers(zones).nameserver
    settings.DNS_RESOLVER = f"{host}:{port}"
    ecole = Domain.objects.get(name="ecole.test")
    ecole.incoming_host = ecole.smtp_host = "mail.ecole.test"
    ecole.save()
    key = dkim.create_key(ecole, selector="rsa202611")
    services.run_dns_check(ecole)
    AuditEntry.objects.create(
        user=root,
        user_email=root.email,
        role="superuser",
        client_address="192.0.2.10",
        action="dkim.generate",
        target=f"ecole.test/{key.selector}",
        after=services.key_state(key),
    )
    return totp_code(add_authenticator(root))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_screenshots_of_the_dashboard_and_a_dns_report(
    root: User,
    root_code: str,
    live_server: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/accounts/login/?next={DASHBOARD}")
    page.locator("input[name=login]").fill(root.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()
    page.locator("input[name=code]").fill(root_code)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}{DASHBOARD}")
    expect(page.get_by_role("heading", name="DNS problems")).to_be_visible()
    expect(page.locator(".courrier-chart svg").first).to_be_visible()
    page.screenshot(path=SHOTS / "dashboard.png", full_page=True)

    page.locator(".courrier-alert").get_by_role("link", name="ecole.test").click()
    expect(page.get_by_role("heading", name="DNS report: ecole.test")).to_be_visible()
    page.screenshot(path=SHOTS / "dns-report.png", full_page=True)

    # The other pages of the domains admin, to look at (and for CSP errors, which fail the test).
    page.get_by_role("link", name="rsa202611").click()
    expect(page.get_by_text("DNS record to publish")).to_be_visible()
    page.screenshot(path=SHOTS / "dkim-key.png", full_page=True)
    page.goto(f"{base}/admin/domains/domain/")
    page.screenshot(path=SHOTS / "domains-list.png", full_page=True)
    page.get_by_role("link", name="ecole.test", exact=True).click()
    page.screenshot(path=SHOTS / "domain-change.png", full_page=True)
    page.goto(f"{base}/admin/domains/auditentry/")
    page.screenshot(path=SHOTS / "audit-log.png", full_page=True)
