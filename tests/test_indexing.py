"""mailboxes.indexing: the sync stores header fields, the indexer parses bodies afterwards."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.core.files.storage import default_storage
from imapclient import IMAPClient

from accounts.models import User
from mailboxes import indexing, search, sync, tasks
from mailboxes.models import MailAccount, MessageContent
from tests.conftest import CAROL, sample

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


def with_attachment(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Élodie Martin <elodie@ecole.test>"
    message["To"] = CAROL
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ecole.test")
    message.set_content("Le budget prévisionnel est en pièce jointe.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="b.pdf")
    return message.as_bytes()


def test_the_sync_stores_the_header_and_the_indexer_adds_the_body(
    account: MailAccount, server: IMAPClient, alice: User
) -> None:
    server.append("INBOX", with_attachment("Réunion du conseil"))
    sync.sync_account(account)

    stored = MessageContent.objects.get(account=account)
    assert (stored.subject, stored.from_email, stored.indexed) == (
        "Réunion du conseil",
        "elodie@ecole.test",
        False,
    )
    assert (stored.snippet, stored.body_text, stored.attachments) == ("", "", [])
    assert [m.content.subject for m in search.search_messages(alice, "réunion")] == [
        "Réunion du conseil"
    ]  # header words are searchable at once
    assert list(search.search_messages(alice, "prévisionnel")) == []

    report = indexing.index_account(account)

    stored.refresh_from_db()
    assert (report.indexed, stored.indexed, stored.has_attachments) == (1, True, True)
    assert stored.snippet.startswith("Le budget prévisionnel")
    assert [a["filename"] for a in stored.attachments] == ["b.pdf"]
    assert [m.content.subject for m in search.search_messages(alice, "prévisionnel")] == [
        "Réunion du conseil"
    ]


def test_indexing_again_changes_nothing(account: MailAccount, server: IMAPClient) -> None:
    for number in range(3):
        server.append("INBOX", sample(number))
    sync.sync_account(account)
    assert indexing.index_account(account, limit=2).indexed == 2
    assert indexing.pending(account)

    assert indexing.index_account(account).indexed == 1
    assert indexing.index_account(account).indexed == 0
    assert not indexing.pending(account)


def test_a_message_whose_bytes_are_gone_is_marked_and_not_tried_again(
    account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    stored = MessageContent.objects.get(account=account)
    default_storage.delete(stored.raw_path)

    report = indexing.index_account(account)

    stored.refresh_from_db()
    assert (report.indexed, report.missing, stored.indexed) == (1, 1, True)
    assert "raw-missing" in stored.parse_warnings
    assert stored.subject == "Message 1"  # the header fields stay
    assert indexing.index_account(account).indexed == 0


def test_the_sync_task_indexes_what_it_stored_and_what_an_earlier_run_left(
    account: MailAccount,
    server: IMAPClient,
    django_capture_on_commit_callbacks: pytest.FixtureRequest,
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)  # stored, not indexed: as if the indexer had been killed
    server.append("INBOX", sample(2))

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        tasks.sync_account.delay(account.pk)  # eager: sync, then the index task

    assert MessageContent.objects.filter(account=account).count() == 2
    assert not indexing.pending(account)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:  # type: ignore[operator]
        tasks.sync_account.delay(account.pk)
    assert callbacks == []  # nothing left: no index task
