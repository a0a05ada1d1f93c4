"""Spam filtering against the real Dovecot: a rule moves new mail to Junk on the server before
it shows in the Inbox, and "Not spam" moves it back on the server and teaches the classifier.

The spam app receives the sync's `incoming_mail` and the webmail's `spam_reported` signals.
Carol's mailbox is shared with other test modules: assertions name this module's messages.
"""

from __future__ import annotations

from typing import Any

import pytest
from imapclient import IMAPClient

from mail import services
from mail.listing import View
from mailboxes import sync
from mailboxes.models import Folder, MailAccount, Message
from spam.models import ClassifierState, RuleSet, Verdict
from tests.conftest import sample
from tests.mailstack import MailStack

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]

LOTTERY = {
    "name": "Lotteries",
    "conditions": [{"field": "subject", "op": "contains", "value": "lottery"}],
    "actions": [{"action": "junk"}],
}


@pytest.fixture(autouse=True)
def _resolver(mailstack: MailStack, settings: Any) -> None:
    """The mail stack's dnsmasq answers for ecole.test (and refuses the rest)."""
    settings.DNS_RESOLVER = f"127.0.0.1:{mailstack.dns_port}"


def server_subjects(server: IMAPClient, folder: str) -> list[str]:
    server.select_folder(folder, readonly=True)
    uids = server.search("ALL")
    fetched = server.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
    return sorted(
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip().removeprefix("Subject: ")
        for data in fetched.values()
    )


def local_subjects(account: MailAccount, role: str) -> list[str]:
    return sorted(
        Message.objects.filter(folder__account=account, folder__role=role).values_list(
            "content__subject", flat=True
        )
    )


def test_a_rule_moves_new_mail_to_junk_on_the_server_before_the_inbox_shows_it(
    account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1, "Hello"))
    sync.sync_account(account)  # the first sync: the initial import is not filtered
    assert "Hello 1" in local_subjects(account, "inbox")
    RuleSet.objects.create(scope="user", user=account.user, rules=[LOTTERY])

    server.append("INBOX", sample(2, "Lottery"))
    sync.sync_account(account)
    # Never in the Inbox here: filtered in the transaction that stored it.
    assert "Lottery 2" not in local_subjects(account, "inbox")
    assert "Lottery 2" in local_subjects(account, "junk")
    verdict = Verdict.objects.get(content__subject="Lottery 2")
    assert verdict.action == "junk"
    assert not Verdict.objects.filter(content__subject="Hello 1").exists()

    sync.sync_account(account)  # pushes the move (a sync starts on commit in production)
    assert "Hello 1" in server_subjects(server, "INBOX")
    assert "Lottery 2" not in server_subjects(server, "INBOX")
    assert "Lottery 2" in server_subjects(server, "Junk")
    moved = Message.objects.get(content__subject="Lottery 2")
    assert moved.uid is not None  # adopted under its Junk UID


def test_not_spam_moves_it_back_on_the_server_and_teaches_the_classifier(
    account: MailAccount, server: IMAPClient
) -> None:
    sync.sync_account(account)
    RuleSet.objects.create(scope="user", user=account.user, rules=[LOTTERY])
    server.append("INBOX", sample(3, "Lottery"))
    sync.sync_account(account)
    sync.sync_account(account)
    assert "Lottery 3" in server_subjects(server, "Junk")

    junk = Folder.objects.get(account=account, role="junk")
    chosen = Message.objects.filter(folder=junk, content__subject="Lottery 3")
    moved, _undo = services.apply(
        account.user, View("folder", folder=junk), services.Action.NOT_SPAM, chosen
    )
    assert moved == 1
    sync.sync_account(account)
    assert "Lottery 3" in server_subjects(server, "INBOX")
    assert "Lottery 3" not in server_subjects(server, "Junk")
    state = ClassifierState.objects.get(user=account.user).state
    assert (state["spam"], state["ham"]) == (0, 1)
    # Back in the Inbox, it is not filtered again.
    assert "Lottery 3" in local_subjects(account, "inbox")
