"""manage.py mailaccount and mailsync, as an admin or a script uses them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import User
from mailboxes.models import MailAccount
from tests.mailstack import MailStack
from tests.test_sync import CAROL, sample

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


@pytest.fixture
def trusted(mailstack: MailStack) -> Iterator[None]:
    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        yield


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def add_carol(mailstack: MailStack, alice: User, password_file: Path) -> str:
    password_file.write_text(mailstack.users[CAROL] + "\n")
    return run(
        "mailaccount", "add", "--user", alice.email, "--email", CAROL, "--host", "127.0.0.1",
        "--port", str(mailstack.imaps_port), "--smtp-port", str(mailstack.submissions_port),
        "--password-file", str(password_file),
    )  # fmt: skip


@pytest.mark.usefixtures("trusted")
def test_an_account_is_added_listed_tested_and_removed(
    alice: User, mailstack: MailStack, tmp_path: Path
) -> None:
    assert f"Added {CAROL} for {alice.email}." in add_carol(mailstack, alice, tmp_path / "pw")
    account = MailAccount.objects.get(email=CAROL)
    assert account.password == mailstack.users[CAROL]

    assert CAROL in run("mailaccount", "list")
    tested = run("mailaccount", "test", CAROL)
    assert f"incoming 127.0.0.1:{mailstack.imaps_port}: ok" in tested
    assert f"outgoing 127.0.0.1:{mailstack.submissions_port}: ok" in tested

    assert f"Removed {CAROL}." in run("mailaccount", "remove", CAROL)
    assert not MailAccount.objects.exists()


@pytest.mark.usefixtures("trusted")
def test_a_wrong_password_is_refused_with_the_reason(
    alice: User, mailstack: MailStack, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("not the password")
    with pytest.raises(CommandError, match="refused the user name or the password"):
        run(
            "mailaccount", "add", "--user", alice.email, "--email", CAROL, "--host", "127.0.0.1",
            "--port", str(mailstack.imaps_port), "--smtp-port", str(mailstack.submissions_port),
            "--password-file", str(tmp_path / "pw"),
        )  # fmt: skip
    assert not MailAccount.objects.exists()


def test_the_password_never_comes_from_the_command_line(alice: User) -> None:
    with pytest.raises(CommandError):
        call_command("mailaccount", "add", "--user", alice.email, "--email", CAROL,
                     "--host", "127.0.0.1", "--password", "secret")  # fmt: skip


@pytest.mark.usefixtures("trusted")
def test_mailsync_syncs_in_the_foreground_and_says_what_it_did(
    alice: User, mailstack: MailStack, tmp_path: Path
) -> None:
    mailstack.clear_mailbox(CAROL)
    with mailstack.imap(CAROL) as client:
        for number in range(3):
            client.append("INBOX", sample(number))
    add_carol(mailstack, alice, tmp_path / "pw")
    output = run("mailsync", "--account", CAROL)
    assert f"{CAROL}:" in output
    assert "3 new" in output
    assert "0 new" in run("mailsync", "--account", CAROL)
    with pytest.raises(CommandError, match="No account"):
        run("mailsync", "--account", "nobody@example.org")


@pytest.mark.usefixtures("trusted")
def test_the_password_can_come_from_standard_input(
    alice: User, mailstack: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(mailstack.users[CAROL] + "\n"))
    run(
        "mailaccount", "add", "--user", alice.email, "--email", CAROL, "--host", "127.0.0.1",
        "--port", str(mailstack.imaps_port), "--smtp-port", str(mailstack.submissions_port),
        "--password-file", "-",
    )  # fmt: skip
    assert MailAccount.objects.get(email=CAROL).password == mailstack.users[CAROL]
