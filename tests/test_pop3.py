"""The POP3 sync against the real Dovecot: downloads, leaving mail on the server or not, deleting
after N days, resuming after a crash, broken mail, the lease, servers without UIDL."""

from __future__ import annotations

import hashlib
import poplib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from django.utils import timezone

from accounts.models import User
from mailboxes import pop3, sync
from mailboxes.models import Folder, MailAccount, Message, Pop3Download
from mailcore import connect
from tests.mailstack import MailStack

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]
DAVE = "dave@ecole.test"


def sample(number: int, subject: str = "Message") -> bytes:
    message = EmailMessage()
    message["From"] = "Carol <carol@ecole.test>"
    message["To"] = DAVE
    message["Subject"] = f"{subject} {number}"
    message["Message-ID"] = make_msgid(domain="ecole.test")
    message["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=number))
    message.set_content(f"Body of message {number}. {uuid.uuid4()}\n")
    return message.as_bytes()


# A multipart whose boundary never closes, with a NUL byte, a 5000-byte line, lines that start
# with a dot (stuffed on the wire, which the download must undo), bad base64 and an 8-bit header.
BROKEN = (
    b"From: Carol <carol@ecole.test>\r\n"
    b"To: dave@ecole.test\r\n"
    b"Subject: Cass\xe9 \r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="zz"\r\n'
    b"\r\n"
    b"--zz\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"hello\x00world\r\n"
    b".a leading dot\r\n"
    b"..two of them\r\n"
    b".\r\n" + b"x" * 5000 + b"\r\n"
    b"--zz\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"!!! not base64\r\n"
)


@pytest.fixture
def mailbox(mailstack: MailStack) -> MailStack:
    """Dave's mailbox, emptied."""
    mailstack.clear_mailbox(DAVE)
    return mailstack


@pytest.fixture
def account(alice: User, mailbox: MailStack) -> Iterator[MailAccount]:
    with override_settings(MAIL_CA_FILE=str(mailbox.ca_file)):
        yield MailAccount.objects.create(
            user=alice,
            email=DAVE,
            protocol=MailAccount.Protocol.POP3,
            incoming_host="127.0.0.1",
            incoming_port=mailbox.pop3s_port,
            username=DAVE,
            password=mailbox.users[DAVE],
            smtp_host="127.0.0.1",
            smtp_port=mailbox.submissions_port,
        )


def deliver(mailstack: MailStack, *numbers: int) -> None:
    for number in numbers:
        mailstack.deliver(sample(number), DAVE)


def open_client(account: MailAccount, mailstack: MailStack) -> poplib.POP3:
    return connect.open_pop3(sync.server_settings(account), ca_file=str(mailstack.ca_file))


def on_server(mailstack: MailStack) -> list[str]:
    """Subjects in Dave's mailbox, as a fresh IMAP session sees it."""
    with mailstack.imap(DAVE) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
    return sorted(
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip().removeprefix("Subject: ")
        for data in fetched.values()
    )


def stored(account: MailAccount) -> list[str]:
    messages = Message.objects.filter(folder__account=account)
    return sorted(messages.values_list("content__subject", flat=True))


def look_stored_days_ago(message: Message, days: int) -> None:
    """Age a local copy: make its download look ``days`` old."""
    Pop3Download.objects.filter(account=message.folder.account, uidl=message.pop3_uidl).update(
        downloaded_at=timezone.now() - timedelta(days=days)
    )


def test_the_first_sync_downloads_everything_into_a_local_inbox_and_leaves_it_on_the_server(
    account: MailAccount, mailbox: MailStack
) -> None:
    deliver(mailbox, 1, 2, 3)
    report = pop3.sync_pop3_account(account)

    assert report.fetched == 3
    inbox = account.folders.get()
    assert (inbox.name, inbox.role) == ("INBOX", Folder.Role.INBOX)
    assert stored(account) == ["Message 1", "Message 2", "Message 3"]
    assert (inbox.total_count, inbox.unread_count) == (3, 3)
    message = inbox.messages.get(content__subject="Message 1")
    assert message.pop3_uidl
    assert not message.seen
    assert message.date == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert message.content.from_email == "carol@ecole.test"
    assert on_server(mailbox) == ["Message 1", "Message 2", "Message 3"]


def test_a_second_sync_downloads_nothing_and_later_mail_only_itself(
    account: MailAccount, mailbox: MailStack
) -> None:
    deliver(mailbox, 1, 2)
    pop3.sync_pop3_account(account)
    again = pop3.sync_pop3_account(account)
    assert again.fetched == 0
    assert again.unchanged_folders == 1

    deliver(mailbox, 3)
    later = pop3.sync_pop3_account(account)
    assert later.fetched == 1
    assert stored(account) == ["Message 1", "Message 2", "Message 3"]
    assert Message.objects.filter(folder__account=account).count() == 3


def test_without_leave_on_server_messages_are_deleted_there_once_stored_here(
    account: MailAccount, mailbox: MailStack
) -> None:
    account.pop3_leave_on_server = False
    account.save(update_fields=["pop3_leave_on_server"])
    deliver(mailbox, 1, 2)
    report = pop3.sync_pop3_account(account)

    assert report.fetched == 2
    assert report.deleted_on_server == 2
    assert stored(account) == ["Message 1", "Message 2"]
    assert on_server(mailbox) == []

    deliver(mailbox, 3)
    pop3.sync_pop3_account(account)
    assert stored(account) == ["Message 1", "Message 2", "Message 3"]
    assert on_server(mailbox) == []


def test_delete_after_n_days_deletes_only_copies_stored_longer_ago(
    account: MailAccount, mailbox: MailStack
) -> None:
    deliver(mailbox, 1, 2, 3)
    pop3.sync_pop3_account(account)
    account.pop3_delete_after_days = 30
    account.save(update_fields=["pop3_delete_after_days"])
    inbox = account.folders.get()
    look_stored_days_ago(inbox.messages.get(content__subject="Message 1"), 31)
    look_stored_days_ago(inbox.messages.get(content__subject="Message 2"), 29)

    report = pop3.sync_pop3_account(account)
    assert report.fetched == 0
    assert report.deleted_on_server == 1
    assert on_server(mailbox) == ["Message 2", "Message 3"]
    assert stored(account) == ["Message 1", "Message 2", "Message 3"]


def test_an_interrupted_sync_resumes_without_loss_duplicates_or_early_deletion(
    account: MailAccount, mailbox: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    account.pop3_leave_on_server = False
    account.save(update_fields=["pop3_leave_on_server"])
    deliver(mailbox, *range(5))
    original = pop3.retrieve
    calls = 0

    def die_on_the_third(client: poplib.POP3, number: int) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("worker killed")
        return original(client, number)

    monkeypatch.setattr(pop3, "retrieve", die_on_the_third)
    client = open_client(account, mailbox)
    with pytest.raises(RuntimeError):
        pop3.sync_pop3_account(account, client)
    # The harsher ending: the session is closed with QUIT, which applies any DELE sent.
    client.quit()
    assert len(stored(account)) == 2
    assert len(on_server(mailbox)) == 5

    monkeypatch.setattr(pop3, "retrieve", original)
    report = pop3.sync_pop3_account(account)
    assert report.fetched == 3
    assert stored(account) == [f"Message {number}" for number in range(5)]
    uidls = Message.objects.filter(folder__account=account).values_list("pop3_uidl", flat=True)
    assert len(set(uidls)) == 5
    assert on_server(mailbox) == []


def test_a_lost_connection_applies_no_deletion(
    account: MailAccount, mailbox: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    account.pop3_leave_on_server = False
    account.save(update_fields=["pop3_leave_on_server"])
    deliver(mailbox, 1, 2)

    def connection_lost(client: poplib.POP3, report: sync.SyncReport) -> None:
        client.close()  # after the DELEs, before QUIT
        raise ConnectionResetError("lost")

    monkeypatch.setattr(pop3, "_quit", connection_lost)
    with pytest.raises(ConnectionResetError):
        pop3.sync_pop3_account(account)
    assert stored(account) == ["Message 1", "Message 2"]
    assert on_server(mailbox) == ["Message 1", "Message 2"]


def test_broken_mail_is_stored_byte_for_byte_with_warnings_and_the_rest_too(
    account: MailAccount, mailbox: MailStack
) -> None:
    deliver(mailbox, 1)
    mailbox.deliver(BROKEN, DAVE)
    deliver(mailbox, 2)
    report = pop3.sync_pop3_account(account)

    assert report.fetched == 3
    broken = Message.objects.get(folder__account=account, content__subject__startswith="Cass")
    raw = default_storage.open(broken.content.raw_path).read()
    # What Dovecot stored (with its trace headers first), NUL byte and dots as delivered.
    assert raw.endswith(BROKEN)
    assert broken.content.sha256 == hashlib.sha256(raw).hexdigest()
    assert broken.content.parse_warnings
    assert any(warning.startswith(f"{broken.pop3_uidl}:") for warning in report.warnings)
    assert "Message 1" in stored(account)
    assert "Message 2" in stored(account)


def test_renamed_uidls_after_a_server_migration_bring_no_duplicates(
    account: MailAccount, mailbox: MailStack
) -> None:
    deliver(mailbox, 1, 2)
    pop3.sync_pop3_account(account)
    # As if downloaded from the old server, whose UIDLs the new one does not use.
    for message in Message.objects.filter(folder__account=account):
        Pop3Download.objects.filter(account=account, uidl=message.pop3_uidl).update(
            uidl=f"old-{message.pk}"
        )
        message.pop3_uidl = f"old-{message.pk}"
        message.save(update_fields=["pop3_uidl"])

    report = pop3.sync_pop3_account(account)
    assert report.fetched == 0
    assert stored(account) == ["Message 1", "Message 2"]
    assert not Message.objects.filter(pop3_uidl__startswith="old-").exists()


def test_two_syncs_of_one_account_never_overlap(account: MailAccount) -> None:
    with sync.lease(account), pytest.raises(sync.AlreadySyncing):
        pop3.sync_pop3_account(account)


def test_a_server_without_uidl_is_refused_clearly(
    account: MailAccount, mailbox: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(mailbox, 1)
    client = open_client(account, mailbox)
    # The real server's answer to a command it does not know, as a UIDL-less one answers UIDL.
    monkeypatch.setattr(client, "uidl", lambda: client._longcmd("XUIDL"))
    try:
        with pytest.raises(connect.ConnectionFailed) as failure:
            pop3.sync_pop3_account(account, client)
    finally:
        client.quit()
    assert failure.value.problem is connect.Problem.CAPABILITY
    assert failure.value.detail.startswith("server has no UIDL: -ERR")
    assert stored(account) == []
    account.refresh_from_db()
    assert account.sync_lease_until is None


def test_uidls_outside_the_rfc_are_stored_as_a_stable_hash() -> None:
    assert pop3.uidl_key(b"0000000f6b0c25da") == "0000000f6b0c25da"
    long = pop3.uidl_key(b"x" * 71)
    assert long == pop3.uidl_key(b"x" * 71)
    assert len(long) <= pop3.MAX_UIDL
    assert pop3.uidl_key(b"a\x00b") != pop3.uidl_key(b"a\x01b")


def test_mail_deleted_here_is_not_downloaded_again_and_can_go_from_the_server(
    account: MailAccount, mailbox: MailStack
) -> None:
    deliver(mailbox, 1, 2)
    pop3.sync_pop3_account(account)
    Message.objects.filter(folder__account=account, content__subject="Message 1").delete()

    assert pop3.sync_pop3_account(account).fetched == 0
    assert stored(account) == ["Message 2"]
    assert on_server(mailbox) == ["Message 1", "Message 2"]

    MailAccount.objects.filter(pk=account.pk).update(pop3_delete_when_deleted=True)
    report = pop3.sync_pop3_account(MailAccount.objects.get(pk=account.pk))
    assert report.deleted_on_server == 1
    assert on_server(mailbox) == ["Message 2"]
