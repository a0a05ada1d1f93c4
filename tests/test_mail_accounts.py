"""Adding a mail account: the servers are tried first, and a failure says exactly what failed."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from mailboxes.models import MailAccount
from tests.mailstack import MailStack

pytestmark = pytest.mark.django_db
ALICE = "alice@courrier.test"


@pytest.fixture
def trusted_test_ca(mailstack: MailStack) -> Any:
    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        yield


def account_form(mailstack: MailStack, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "email": ALICE,
        "display_name": "Alice",
        "protocol": "imap",
        "incoming_host": "127.0.0.1",
        "incoming_port": mailstack.imaps_port,
        "incoming_security": "tls",
        "username": ALICE,
        "password": mailstack.users[ALICE],
        "smtp_host": "127.0.0.1",
        "smtp_port": mailstack.submissions_port,
        "smtp_security": "tls",
        "pop3_leave_on_server": "on",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.usefixtures("trusted_test_ca")
def test_an_account_whose_servers_answer_is_saved(
    alice_client: Client, alice: User, mailstack: MailStack
) -> None:
    response = alice_client.post("/mail/accounts/add/", account_form(mailstack))
    assert response.status_code == 302
    assert response["Location"] == "/mail/accounts/"
    account = MailAccount.objects.get(user=alice)
    assert account.email == ALICE
    assert account.password == mailstack.users[ALICE]
    assert account.smtp_password == ""  # same as for receiving
    page = alice_client.get("/mail/accounts/")
    assert ALICE in page.text
    assert mailstack.users[ALICE] not in page.text


@pytest.mark.usefixtures("trusted_test_ca")
def test_starttls_ports_work_too(alice_client: Client, alice: User, mailstack: MailStack) -> None:
    form = account_form(
        mailstack,
        incoming_port=mailstack.imap_port,
        incoming_security="starttls",
        smtp_port=mailstack.submission_port,
        smtp_security="starttls",
    )
    assert alice_client.post("/mail/accounts/add/", form).status_code == 302


@pytest.mark.usefixtures("trusted_test_ca")
def test_a_wrong_password_is_reported_and_nothing_is_saved(
    alice_client: Client, mailstack: MailStack
) -> None:
    page = alice_client.post(
        "/mail/accounts/add/", account_form(mailstack, password="not the password")
    )
    assert page.status_code == 200
    assert "The server refused the user name or the password." in page.text
    assert not MailAccount.objects.exists()


@pytest.mark.usefixtures("trusted_test_ca")
def test_a_closed_port_is_reported_with_its_number(
    alice_client: Client, mailstack: MailStack
) -> None:
    port = closed_port()
    page = alice_client.post("/mail/accounts/add/", account_form(mailstack, smtp_port=port))
    assert f"refused the connection on port {port}" in page.text
    assert not MailAccount.objects.exists()


def test_an_untrusted_certificate_is_refused(alice_client: Client, mailstack: MailStack) -> None:
    # Without the test CA among the trusted ones, the servers' identity cannot be checked.
    page = alice_client.post("/mail/accounts/add/", account_form(mailstack))
    assert "cannot be trusted" in page.text
    assert not MailAccount.objects.exists()


@pytest.mark.usefixtures("trusted_test_ca")
def test_the_reason_comes_in_french(alice_client: Client, mailstack: MailStack) -> None:
    page = alice_client.post(
        "/mail/accounts/add/",
        account_form(mailstack, password="not the password"),
        headers={"accept-language": "fr"},
    )
    assert "Le serveur a refusé le nom d’utilisateur ou le mot de passe." in page.text


def test_plain_connections_need_an_explicit_opt_in(
    alice_client: Client, mailstack: MailStack
) -> None:
    page = alice_client.post(
        "/mail/accounts/add/", account_form(mailstack, incoming_security="plain")
    )
    assert page.status_code == 200
    assert "Without encryption your password and mail cross the network in clear" in page.text
    assert not MailAccount.objects.exists()


def test_another_users_account_is_not_found(client: Client, alice: User, bob: User) -> None:
    account = MailAccount.objects.create(
        user=alice,
        email=ALICE,
        incoming_host="127.0.0.1",
        username=ALICE,
        password="x",
        smtp_host="127.0.0.1",
    )
    client.force_login(bob)
    assert client.post(f"/mail/accounts/{account.id}/remove/").status_code == 404
    assert ALICE not in client.get("/mail/accounts/").text
    assert MailAccount.objects.filter(pk=account.pk).exists()


def test_removing_takes_post_only_and_removes(alice_client: Client, alice: User) -> None:
    account = MailAccount.objects.create(
        user=alice,
        email=ALICE,
        incoming_host="127.0.0.1",
        username=ALICE,
        password="x",
        smtp_host="127.0.0.1",
    )
    assert alice_client.get(f"/mail/accounts/{account.id}/remove/").status_code == 405
    assert alice_client.post(f"/mail/accounts/{account.id}/remove/").status_code == 302
    assert not MailAccount.objects.exists()


def test_the_account_list_costs_the_same_for_many_accounts(
    alice_client: Client, alice: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    for number in range(5):
        MailAccount.objects.create(
            user=alice,
            email=f"a{number}@courrier.test",
            incoming_host="127.0.0.1",
            username="a",
            password="x",
            smtp_host="127.0.0.1",
        )
    alice_client.get("/mail/accounts/")
    with django_assert_num_queries(3):  # session, user, accounts
        alice_client.get("/mail/accounts/")


def test_the_servers_of_an_address_are_found_through_dns(
    alice_client: Client, mailstack: MailStack
) -> None:
    with override_settings(AUTOCONFIG_DNS_SERVER=f"127.0.0.1:{mailstack.dns_port}"):
        page = alice_client.get("/mail/accounts/add/", {"email": ALICE})
    assert "Settings found" in page.text
    form = page.context["form"]
    assert form.initial["incoming_host"] == "mail.courrier.test"
    assert form.initial["incoming_port"] == mailstack.imaps_port
    assert form.initial["incoming_security"] == "tls"
    assert form.initial["smtp_port"] == mailstack.submissions_port


def test_an_address_nobody_knows_says_so(alice_client: Client, mailstack: MailStack) -> None:
    with override_settings(AUTOCONFIG_DNS_SERVER=f"127.0.0.1:{mailstack.dns_port}"):
        page = alice_client.get("/mail/accounts/add/", {"email": "x@nowhere.courrier.test"})
    assert "No settings found for this address" in page.text


def test_the_list_shows_the_last_sync_error_or_success(alice_client: Client, alice: User) -> None:
    failing = MailAccount.objects.create(
        user=alice,
        email="a@courrier.test",
        incoming_host="127.0.0.1",
        username="a",
        password="a-distinctive-secret",
        smtp_host="127.0.0.1",
        last_error="authentication: login refused",
        last_error_at=timezone.now(),
    )
    MailAccount.objects.create(
        user=alice,
        email="b@courrier.test",
        incoming_host="127.0.0.1",
        username="b",
        password="x",
        smtp_host="127.0.0.1",
        last_success_at=timezone.now(),
    )
    page = alice_client.get("/mail/accounts/").text
    assert "authentication: login refused" in page
    assert "Up to date" in page
    assert failing.password not in page
