"""The IMAP sync against the real Dovecot: first sync, new mail, flags, expunges, renumbering."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from mailboxes import actions, folders, idle, indexing, search, services, sync, tasks
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from mailcore import connect
from tests.conftest import CAROL, sample
from tests.mailstack import MailStack
from tests.test_message_conversation import assert_copies_follow_contents

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


def inbox(account: MailAccount) -> Folder:
    return account.folders.get(role=Folder.Role.INBOX)


def subjects(folder: Folder) -> list[str]:
    return list(folder.messages.order_by("-uid").values_list("content__subject", flat=True))


def test_the_first_sync_lists_folders_with_roles_and_stores_every_message(
    account: MailAccount, server: IMAPClient
) -> None:
    for number in range(3):
        server.append("INBOX", sample(number))
    server.append("Sent", sample(9, "Sent"), flags=[b"\\Seen"])
    report = sync.sync_account(account)

    roles = dict(account.folders.values_list("name", "role"))
    assert roles["INBOX"] == "inbox"
    assert roles["Sent"] == "sent"
    assert roles["Drafts"] == "drafts"
    assert roles["Trash"] == "trash"
    assert roles["Junk"] == "junk"
    assert roles["Archive"] == "archive"
    assert subjects(inbox(account)) == ["Message 2", "Message 1", "Message 0"]
    assert report.fetched == 4
    first = inbox(account).messages.order_by("uid").first()
    assert first.content.from_email == "dave@ecole.test"
    assert first.content.date == datetime(2026, 1, 1, tzinfo=UTC)
    assert inbox(account).total_count == 3
    assert inbox(account).unread_count == 3


def test_a_pass_with_no_change_fetches_nothing_and_touches_no_folder(
    account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    report = sync.sync_account(account)
    assert report.fetched == 0
    assert report.unchanged_folders == report.folders


def test_new_mail_and_flags_set_on_another_client_show_up(
    account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    server.select_folder("INBOX")
    uid = server.search("ALL")[0]
    server.add_flags([uid], [b"\\Seen", b"\\Flagged"])
    server.append("INBOX", sample(2))

    report = sync.sync_account(account)
    assert report.fetched == 1
    assert report.flag_updates == 1
    message = inbox(account).messages.get(uid=uid)
    assert message.seen
    assert message.flagged
    assert inbox(account).unread_count == 1


def test_a_flag_change_alone_costs_no_search_and_no_count_of_the_folder(
    account: MailAccount, server: IMAPClient
) -> None:
    """The pass that finds one changed flag stays cheap however big the folder: same UIDNEXT and
    count as the last pass, so no UID search and no COUNT(*) of the folder's rows."""
    for number in range(3):
        server.append("INBOX", sample(number))
    sync.sync_account(account)
    server.select_folder("INBOX")
    server.add_flags([server.search("ALL")[0]], [b"\\Flagged"])

    with CaptureQueriesContext(connection) as queries:
        report = sync.sync_account(account)

    assert report.flag_updates == 1
    assert report.fetched == report.removed == 0
    statements = " ".join(query["sql"] for query in queries.captured_queries).upper()
    assert "COUNT(" not in statements
    assert "MAX(" not in statements


def test_messages_expunged_elsewhere_disappear_here(
    account: MailAccount, server: IMAPClient
) -> None:
    for number in range(3):
        server.append("INBOX", sample(number))
    sync.sync_account(account)
    server.select_folder("INBOX")
    server.delete_messages(server.search(["SUBJECT", "Message 1"]))
    server.expunge()

    report = sync.sync_account(account)
    assert report.removed == 1
    assert subjects(inbox(account)) == ["Message 2", "Message 0"]


def test_a_message_moved_elsewhere_keeps_one_stored_body(
    account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    server.select_folder("INBOX")
    server.move(server.search("ALL"), "Archive")

    sync.sync_account(account)
    assert subjects(inbox(account)) == []
    assert subjects(account.folders.get(role="archive")) == ["Message 1"]
    assert MessageContent.objects.filter(account=account).count() == 1


def test_a_uidvalidity_change_resyncs_the_folder_without_duplicates(
    account: MailAccount, server: IMAPClient
) -> None:
    server.create_folder("Projets")
    for number in range(2):
        server.append("Projets", sample(number, "Projet"))
    sync.sync_account(account)
    old = account.folders.get(name="Projets")
    # Recreating the folder gives it a new UIDVALIDITY, as a server restore would.
    server.delete_folder("Projets")
    server.create_folder("Projets")
    for number in range(3):
        server.append("Projets", sample(number + 10, "Projet"))

    report = sync.sync_account(account)
    folder = account.folders.get(name="Projets")
    assert folder.uidvalidity != old.uidvalidity
    assert "uidvalidity-changed:Projets" in report.warnings
    assert sorted(subjects(folder)) == ["Projet 10", "Projet 11", "Projet 12"]
    assert folder.messages.count() == 3


def test_folders_deleted_on_the_server_go_and_new_ones_come(
    account: MailAccount, server: IMAPClient
) -> None:
    server.create_folder("Réunions/2026")
    sync.sync_account(account)
    names = set(account.folders.values_list("name", flat=True))
    assert {"Réunions", "Réunions/2026"} <= names
    assert account.folders.get(name="Réunions/2026").display_name == "2026"
    server.delete_folder("Réunions/2026")
    if server.folder_exists("Réunions"):  # Dovecot may list the parent without creating it
        server.delete_folder("Réunions")
    sync.sync_account(account)
    assert not account.folders.filter(name__startswith="Réunions").exists()


def test_an_interrupted_first_sync_resumes_without_loss_or_duplicates(
    account: MailAccount, server: IMAPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "FIRST_BATCH", 5)
    monkeypatch.setattr(sync, "BATCH_SIZE", 10)
    total = 5 + 10 * 2 + 3
    for number in range(total):
        server.append("INBOX", sample(number))

    original_store = sync._store_batch
    stored_batches = []

    def one_batch_then_die(folder: Folder, fetched: dict[int, Any], report: Any) -> None:
        if stored_batches:
            raise RuntimeError("worker killed")
        original_store(folder, fetched, report)
        stored_batches.append(sorted(fetched))

    monkeypatch.setattr(sync, "_store_batch", one_batch_then_die)
    with pytest.raises(RuntimeError):
        sync.sync_account(account)
    # The newest messages came first and are stored; the lease of the dead worker runs out.
    assert inbox(account).messages.count() == 5
    assert subjects(inbox(account))[0] == f"Message {total - 1}"
    MailAccount.objects.filter(pk=account.pk).update(
        sync_lease_until=datetime(2000, 1, 1, tzinfo=UTC), sync_lease_token="dead"
    )

    monkeypatch.setattr(sync, "_store_batch", original_store)
    sync.sync_account(account)
    assert inbox(account).messages.count() == total
    assert len(set(inbox(account).messages.values_list("uid", flat=True))) == total


def test_later_batches_are_bounded_in_bytes_as_well_as_in_messages(
    account: MailAccount, server: IMAPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "FIRST_BATCH", 2)
    monkeypatch.setattr(sync, "BATCH_BYTES", 1000)
    for number in range(8):
        server.append("INBOX", sample(number))  # about 330 bytes each
    server.append("INBOX", sample(8, Filler="x" * 5000))  # alone over the byte bound
    batches: list[list[int]] = []  # the sizes of each batch's messages
    original_store = sync._store_batch

    def counted(folder: Folder, fetched: dict[int, Any], report: Any) -> None:
        batches.append([len(data[b"BODY[]"]) for data in fetched.values()])
        original_store(folder, fetched, report)

    monkeypatch.setattr(sync, "_store_batch", counted)
    sync.sync_account(account)

    assert inbox(account).messages.count() == 9
    assert [len(sizes) for sizes in batches[:1]] == [1]  # the big newest one, alone
    assert batches[0][0] > 1000
    assert len(batches) >= 3  # the eight others did not fit in one batch
    assert all(sum(sizes) <= 1000 for sizes in batches[1:])


def test_a_sync_asked_for_while_another_runs_gets_one_more_pass_from_it(
    account: MailAccount, server: IMAPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Push notices new mail while a sync is past the Inbox: the refused sync leaves a request
    that the running one honours before letting go, not the periodic pass minutes later."""
    server.append("INBOX", sample(1))
    original = sync.sync_folder
    refused = []

    def meanwhile(client: IMAPClient, folder: Folder, *args: Any, **kwargs: Any) -> None:
        original(client, folder, *args, **kwargs)
        if folder.role == Folder.Role.INBOX and not refused:
            server.append("INBOX", sample(2, "Arrivé pendant la synchronisation"))
            with pytest.raises(sync.AlreadySyncing):
                sync.sync_account(account)  # what the IDLE listener's task does now
            refused.append(True)

    monkeypatch.setattr(sync, "sync_folder", meanwhile)
    report = sync.sync_account(account)

    assert report.fetched == 2
    assert subjects(inbox(account)) == ["Arrivé pendant la synchronisation 2", "Message 1"]
    assert not MailAccount.objects.get(pk=account.pk).sync_again


def test_two_syncs_of_one_account_never_overlap(account: MailAccount) -> None:
    with sync.lease(account), pytest.raises(sync.AlreadySyncing):
        sync.sync_account(account)


def test_a_broken_password_is_recorded_on_the_account(account: MailAccount) -> None:
    account.password = "wrong"
    account.save(update_fields=["password"])
    assert services.run_sync(account.pk) is None
    account.refresh_from_db()
    assert account.last_error.startswith("authentication")
    assert account.last_error_at is not None
    assert account.sync_lease_until is None


def test_a_success_clears_the_last_error(account: MailAccount, server: IMAPClient) -> None:
    MailAccount.objects.filter(pk=account.pk).update(last_error="timeout: earlier")
    assert services.run_sync(account.pk) is not None
    account.refresh_from_db()
    assert account.last_error == ""
    assert account.last_success_at is not None
    assert Message.objects.filter(folder__account=account).count() == 0


def test_push_notices_new_mail_within_seconds(
    account: MailAccount, server: IMAPClient, mailstack: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idle, "CHECK_SECONDS", 0.5)  # how soon the watcher sees its stop flag
    noticed = threading.Event()
    ready = threading.Event()
    stop = threading.Event()
    watcher = threading.Thread(
        target=idle.watch_account,
        args=(account, lambda account_id: noticed.set(), stop),
        kwargs={"ready": ready},
    )
    watcher.start()
    sync.sync_account(account)  # the account is up to date before the delivery
    try:
        assert ready.wait(10), "IDLE never started"
        mailstack.deliver(sample(1, "Poussé"), CAROL)
        assert noticed.wait(10), "no change noticed within 10 s"
        # What the listener's task then does: the delivered message is stored.
        assert sync.sync_account(account).fetched == 1
        assert subjects(inbox(account)) == ["Poussé 1"]
    finally:
        stop.set()
        watcher.join(timeout=15)
    assert not watcher.is_alive()


def test_the_debouncer_lets_one_sync_through_per_burst() -> None:
    calls: list[int] = []
    debounce = idle.Debouncer(calls.append, seconds=60)
    for _ in range(5):
        debounce(7)
    debounce(8)
    assert calls == [7, 8]


# The user's actions reach the server -------------------------------------------------------------


def server_flags(server: IMAPClient, folder: str) -> dict[str, set[bytes]]:
    server.select_folder(folder)
    fetched = server.fetch(server.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip(): set(
            data[b"FLAGS"]
        )
        for data in fetched.values()
    }


def test_reading_and_starring_here_reach_the_server(
    account: MailAccount, server: IMAPClient, alice: User
) -> None:
    for number in range(3):
        server.append("INBOX", sample(number))
    sync.sync_account(account)
    ids = list(inbox(account).messages.order_by("uid").values_list("pk", flat=True))

    assert actions.set_flag(alice, ids[:2], "seen", True) == 2
    assert actions.set_flag(alice, ids[2:], "flagged", True) == 1
    assert inbox(account).messages.filter(seen=True).count() == 2  # at once, before any push
    report = sync.sync_account(account)
    assert report.pushed == 3

    flags = server_flags(server, "INBOX")
    assert b"\\Seen" in flags["Message 0"]
    assert b"\\Seen" in flags["Message 1"]
    assert b"\\Flagged" in flags["Message 2"]
    assert not account.pending.exists()

    actions.set_flag(alice, ids[:1], "seen", False)
    sync.sync_account(account)
    assert b"\\Seen" not in server_flags(server, "INBOX")["Message 0"]


def test_moving_here_moves_on_the_server_without_a_duplicate(
    account: MailAccount, server: IMAPClient, alice: User
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    message = inbox(account).messages.get()
    archive = account.folders.get(role="archive")

    assert actions.move_messages(alice, [message.pk], archive) == 1
    message.refresh_from_db()
    assert message.folder == archive  # shown in the Archive at once
    sync.sync_account(account)

    assert server_flags(server, "INBOX") == {}
    assert list(server_flags(server, "Archive")) == ["Message 1"]
    assert archive.messages.count() == 1
    moved = archive.messages.get()
    assert moved.pk == message.pk
    assert moved.uid is not None


def test_deleting_moves_to_the_trash(account: MailAccount, server: IMAPClient, alice: User) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    message = inbox(account).messages.get()
    actions.delete_messages(alice, [message.pk])
    sync.sync_account(account)
    assert list(server_flags(server, "Trash")) == ["Message 1"]
    assert account.folders.get(role="trash").messages.count() == 1


def test_nobody_acts_on_another_users_messages(
    account: MailAccount, server: IMAPClient, bob: User
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    message = inbox(account).messages.get()
    assert actions.set_flag(bob, [message.pk], "seen", True) == 0
    assert actions.move_messages(bob, [message.pk], account.folders.get(role="trash")) == 0
    assert not account.pending.exists()
    message.refresh_from_db()
    assert not message.seen


def test_actions_wait_while_the_server_is_unreachable(
    account: MailAccount, server: IMAPClient, alice: User
) -> None:
    server.append("INBOX", sample(1))
    sync.sync_account(account)
    message = inbox(account).messages.get()
    actions.set_flag(alice, [message.pk], "flagged", True)
    MailAccount.objects.filter(pk=account.pk).update(incoming_port=1)
    with pytest.raises(connect.ConnectionFailed):  # transient: the task retries it later
        services.run_sync(account.pk)
    assert account.pending.count() == 1
    assert MailAccount.objects.get(pk=account.pk).last_error.startswith("refused")
    MailAccount.objects.filter(pk=account.pk).update(incoming_port=account.incoming_port)
    sync.sync_account(MailAccount.objects.get(pk=account.pk))
    assert not account.pending.exists()
    assert b"\\Flagged" in server_flags(server, "INBOX")["Message 1"]


# Search ------------------------------------------------------------------------------------------


def test_search_finds_words_in_subjects_bodies_addresses_and_attachment_names(
    account: MailAccount, server: IMAPClient, alice: User, bob: User
) -> None:
    budget = EmailMessage()
    budget["From"] = "Élodie Martin <elodie@ecole.test>"
    budget["To"] = CAROL
    budget["Subject"] = "Réunion du conseil"
    budget["Message-ID"] = make_msgid(domain="ecole.test")
    budget.set_content("Le budget prévisionnel est en pièce jointe.")
    budget.add_attachment(
        b"%PDF-1.4", maintype="application", subtype="pdf", filename="previsions-2027.pdf"
    )
    server.append("INBOX", budget.as_bytes())
    server.append("INBOX", sample(1, "Lunch"))
    sync.sync_account(account)
    indexing.index_account(account)  # bodies and attachment names

    def found(query: str) -> list[str]:
        return [m.content.subject for m in search.search_messages(alice, query)]

    assert found("budget") == ["Réunion du conseil"]
    assert found("prévisionnel") == ["Réunion du conseil"]
    assert found("elodie@ecole.test") == ["Réunion du conseil"]
    assert found("previsions-2027.pdf") == ["Réunion du conseil"]
    assert found("lunch") == ["Lunch 1"]
    assert found("budget lunch") == []  # every word must match
    assert found("") == []
    assert list(search.search_messages(bob, "budget")) == []  # only one's own mail


def test_postgresql_answers_searches_from_the_full_text_index() -> None:
    query = search.matching(MessageContent.objects.all(), "budget")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned anyway
        sql, params = query.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "mailboxes_content_vector" in plan  # the GIN index of the stored vector (0011)


def test_every_message_of_the_broken_mail_corpus_syncs_and_the_rest_stays_intact(
    account: MailAccount, server: IMAPClient
) -> None:
    corpus = sorted((Path(__file__).parent / "fixtures" / "mail").glob("*.eml"))
    server.append("INBOX", sample(1, "Before"))
    appended = 0
    for path in corpus:
        raw = path.read_bytes()
        if not raw.strip():
            continue  # IMAP cannot hold an empty message
        try:
            server.append("INBOX", raw)
        except IMAPClientError:
            continue  # the server refused it (Dovecot does for some): nothing to sync
        appended += 1
    server.append("INBOX", sample(2, "After"))
    assert appended > 20

    report = sync.sync_account(account)
    assert report.fetched == appended + 2
    stored = inbox(account).messages.count()
    assert stored == appended + 2
    subjects_stored = set(inbox(account).messages.values_list("content__subject", flat=True))
    assert {"Before 1", "After 2"} <= subjects_stored
    assert MessageContent.objects.filter(account=account).exclude(parse_warnings=[]).exists()


# Folders changed from here -----------------------------------------------------------------------


def test_folders_are_created_renamed_and_deleted_on_the_server(
    account: MailAccount, server: IMAPClient
) -> None:
    sync.sync_account(account)
    projets = folders.create_folder(account, "Projets")
    sous = folders.create_folder(account, "Été 2026", parent=projets)
    assert sous.name == "Projets/Été 2026"
    assert server.folder_exists("Projets/Été 2026")  # modified UTF-7 on the wire, text here

    renamed = folders.rename_folder(sous, "Automne 2026")
    assert renamed.name == "Projets/Automne 2026"
    assert server.folder_exists("Projets/Automne 2026")
    assert not account.folders.filter(name="Projets/Été 2026").exists()

    folders.delete_folder(renamed)
    assert not server.folder_exists("Projets/Automne 2026")
    assert not account.folders.filter(name="Projets/Automne 2026").exists()


def test_folder_names_are_checked_and_the_inbox_is_protected(
    account: MailAccount, server: IMAPClient
) -> None:
    sync.sync_account(account)
    with pytest.raises(folders.FolderError, match="cannot contain"):
        folders.create_folder(account, "a/b")
    with pytest.raises(folders.FolderError, match="1 to 200 characters"):
        folders.create_folder(account, "  ")
    with pytest.raises(folders.FolderError, match="already a folder"):
        folders.create_folder(account, "Archive")
    with pytest.raises(folders.FolderError, match="Inbox cannot be deleted"):
        folders.delete_folder(inbox(account))


def test_unsubscribing_reaches_the_server(account: MailAccount, server: IMAPClient) -> None:
    sync.sync_account(account)
    lists = folders.create_folder(account, "Listes")
    assert lists.subscribed
    folders.set_subscribed(lists, False)
    lists.refresh_from_db()
    assert not lists.subscribed
    assert "Listes" not in [name for _f, _d, name in server.list_sub_folders()]


@pytest.mark.parametrize(
    ("name", "flags", "role"),
    [
        ("INBOX", [], "inbox"),
        ("Éléments envoyés", [], "sent"),
        ("Brouillons", [], "drafts"),
        ("Corbeille", [], "trash"),
        ("Courrier indésirable", [], "junk"),
        ("Archives", [], "archive"),
        ("INBOX.Sent Items", [], "sent"),
        ("Mes envois", [b"\\Sent"], "sent"),  # RFC 6154 flags win over names
        ("Projets", [], ""),
    ],
)
def test_folder_roles_come_from_flags_else_english_or_french_names(
    name: str, flags: list[bytes], role: str
) -> None:
    assert sync.guess_role(name, flags, ".") == role


def test_a_reply_filed_in_sent_joins_the_conversation_it_answers(
    account: MailAccount, server: IMAPClient
) -> None:
    question = sample(1, "Sortie scolaire")
    server.append("INBOX", question)
    parent_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in question.splitlines()
        if line.lower().startswith(b"message-id:")
    )
    reply = EmailMessage()
    reply["From"] = CAROL
    reply["To"] = "dave@ecole.test"
    reply["Subject"] = "Re: Sortie scolaire 1"
    reply["Message-ID"] = make_msgid(domain="ecole.test")
    reply["In-Reply-To"] = parent_id
    reply["References"] = parent_id
    reply["Date"] = format_datetime(datetime(2026, 1, 2, tzinfo=UTC))
    reply.set_content("Oui, je viens.")
    server.append("Sent", reply.as_bytes())
    server.append("INBOX", sample(2, "Autre chose"))
    sync.sync_account(account)

    contents = MessageContent.objects.filter(account=account)
    conversation = contents.get(subject="Sortie scolaire 1").conversation
    assert contents.get(subject="Re: Sortie scolaire 1").conversation == conversation
    assert contents.get(subject="Autre chose 2").conversation != conversation
    assert conversation.contents.count() == 2
    assert_copies_follow_contents()


# Jobs ------------------------------------------------------------------------------------------


def test_the_sync_task_retries_transient_failures_with_growing_delays(
    account: MailAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    MailAccount.objects.filter(pk=account.pk).update(incoming_port=1)  # refused: transient
    delays: list[int] = []

    def record_retry(self: object, exc: BaseException, countdown: int) -> Exception:
        delays.append(countdown)
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.sync_account, "retry", record_retry.__get__(tasks.sync_account))
    for attempt in range(3):
        tasks.sync_account.push_request(retries=attempt)
        try:
            with pytest.raises(Retry):
                tasks.sync_account.run(account.pk)
        finally:
            tasks.sync_account.pop_request()
    assert delays == [30, 60, 120]


def test_a_permanent_failure_is_recorded_and_not_retried(account: MailAccount) -> None:
    MailAccount.objects.filter(pk=account.pk).update(password="wrong")
    tasks.sync_account.delay(account.pk)  # eager; raising would fail the test
    assert MailAccount.objects.get(pk=account.pk).last_error.startswith("authentication")


def test_the_scheduler_pass_enqueues_every_account(
    account: MailAccount, server: IMAPClient, bob: User, mailstack: MailStack
) -> None:
    server.append("INBOX", sample(1))
    tasks.sync_all_accounts.delay()  # eager: each account's sync runs at once
    assert inbox(account).messages.count() == 1


def test_a_reply_and_its_parent_in_one_fetch_batch_share_a_conversation(
    account: MailAccount, server: IMAPClient
) -> None:
    parent = sample(1, "Kermesse")
    parent_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in parent.splitlines()
        if line.lower().startswith(b"message-id:")
    )
    server.append("INBOX", parent)
    server.append("INBOX", sample(2, "Re: Kermesse", In_Reply_To=parent_id, References=parent_id))
    server.append("INBOX", sample(3, "Sans rapport"))
    sync.sync_account(account)  # three messages: one batch

    conversations = dict(
        MessageContent.objects.filter(account=account).values_list("subject", "conversation_id")
    )
    assert conversations["Kermesse 1"] == conversations["Re: Kermesse 2"]
    assert conversations["Sans rapport 3"] != conversations["Kermesse 1"]
    assert_copies_follow_contents()


def test_a_message_over_the_size_limit_is_kept_as_its_header(
    account: MailAccount, server: IMAPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "MAX_MESSAGE", 20_000)
    huge = EmailMessage()
    huge["From"] = "dave@ecole.test"
    huge["To"] = CAROL
    huge["Subject"] = "Photos de la kermesse"
    huge["Message-ID"] = make_msgid(domain="ecole.test")
    huge.set_content("Voici les photos.")
    huge.add_attachment(b"\xff" * 60_000, maintype="image", subtype="jpeg", filename="p.jpg")
    server.append("INBOX", huge.as_bytes())
    server.append("INBOX", sample(1))

    report = sync.sync_account(account)
    assert report.fetched == 2
    assert any(":too-large:" in warning for warning in report.warnings)
    indexing.index_account(account)
    kept = MessageContent.objects.get(account=account, subject="Photos de la kermesse")
    assert kept.size < 20_000
    assert "only its header was downloaded" in kept.body_text


def test_servers_without_list_status_are_synced_folder_by_folder(
    account: MailAccount, server: IMAPClient, mailstack: MailStack
) -> None:
    server.append("INBOX", sample(1))
    server.append("Archive", sample(2))
    client = connect.open_imap(sync.server_settings(account), ca_file=str(mailstack.ca_file))
    capabilities = frozenset(client.capabilities()) - {b"LIST-STATUS"}
    client.capabilities = lambda: capabilities  # type: ignore[method-assign]
    try:
        report = sync.sync_account(account, client)
        assert report.fetched == 2
        server.append("INBOX", sample(3))
        assert sync.sync_account(account, client).fetched == 1
    finally:
        client.logout()
    assert subjects(inbox(account)) == ["Message 3", "Message 1"]
    assert account.folders.get(name="Archive").subscribed


def test_a_long_sync_keeps_renewing_its_lease(
    account: MailAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(sync.time, "monotonic", lambda: now[0])
    with sync.lease(account) as token:
        keeper = sync.LeaseKeeper(account, token)
        soon = timezone.now() + timedelta(seconds=5)
        MailAccount.objects.filter(pk=account.pk).update(sync_lease_until=soon)
        keeper.tick()  # too early: no write
        assert MailAccount.objects.get(pk=account.pk).sync_lease_until == soon
        now[0] += sync.LEASE.total_seconds() / 3 + 1
        keeper.tick()
        assert MailAccount.objects.get(pk=account.pk).sync_lease_until > soon + timedelta(minutes=1)


def test_actions_on_a_folder_deleted_elsewhere_are_dropped_not_stuck(
    account: MailAccount, server: IMAPClient, alice: User
) -> None:
    server.create_folder("Vieux")
    server.append("Vieux", sample(1))
    sync.sync_account(account)
    message = account.folders.get(name="Vieux").messages.get()
    actions.set_flag(alice, [message.pk], "flagged", True)
    server.delete_folder("Vieux")

    sync.sync_account(account)  # must not fail, now or on any later pass
    assert not account.pending.exists()
    assert not account.folders.filter(name="Vieux").exists()


def test_subject_fallback_works_inside_one_fetch_batch(
    account: MailAccount, server: IMAPClient
) -> None:
    def titled(subject: str, day: int) -> bytes:
        message = EmailMessage()
        message["From"] = "dave@ecole.test"
        message["To"] = CAROL
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="ecole.test")
        message["Date"] = format_datetime(datetime(2026, 3, day, tzinfo=UTC))
        message.set_content(f"{subject} ({day})")
        return message.as_bytes()

    server.append("INBOX", titled("Piscine", 1))
    # A reply from a client that sends no References: only the subject links it.
    server.append("INBOX", titled("RE: Piscine", 2))
    server.append("INBOX", titled("Hello", 3))
    server.append("INBOX", titled("Hello", 4))
    sync.sync_account(account)  # four messages: one batch
    indexing.index_account(account)  # for body_text, which names each message here

    by_day = {
        content.body_text.strip(): content.conversation_id
        for content in MessageContent.objects.filter(account=account)
    }
    assert by_day["Piscine (1)"] == by_day["RE: Piscine (2)"]
    assert by_day["Hello (3)"] != by_day["Hello (4)"]  # unrelated messages are never grouped
    assert by_day["Hello (3)"] != by_day["Piscine (1)"]


def test_marking_many_messages_costs_a_fixed_number_of_queries(
    account: MailAccount,
    server: IMAPClient,
    alice: User,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    for number in range(6):
        server.append("INBOX", sample(number))
    sync.sync_account(account)
    ids = list(inbox(account).messages.values_list("pk", flat=True))
    # The messages with their folders and accounts, one UPDATE, one INSERT of the actions, and
    # the savepoint pair of the atomic block (the test runs inside a transaction).
    with django_assert_num_queries(5):
        assert actions.set_flag(alice, ids, "seen", True) == 6
