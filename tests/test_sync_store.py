"""How the sync stores a batch: pack files, COPY, the read-ahead thread, the Inbox signal."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from imapclient import IMAPClient

from accounts.models import User
from mailboxes import bulk, rawstore, signals, sync
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from tests.conftest import sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_account(alice: User) -> MailAccount:
    return MailAccount.objects.create(
        user=alice,
        email="alice@example.org",
        incoming_host="imap.example.org",
        username="alice",
        password="not used",
        smtp_host="smtp.example.org",
    )


# The planner's statistics -------------------------------------------------------------------


def reltuples(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_refreshing_statistics_samples_the_tables_as_they_are_now(
    local_account: MailAccount,
) -> None:
    contents = sync.build_contents(local_account, {f"{n:064x}": sample(n) for n in range(40)})
    bulk.insert(contents, set_ids=True)
    table = MessageContent._meta.db_table
    assert reltuples(table) != MessageContent.objects.count()

    assert bulk.refresh_statistics(sync.STATISTICS_COLUMNS)

    # ANALYZE counts this transaction's own new rows as live.
    assert reltuples(table) == MessageContent.objects.count() == 40
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_stats WHERE tablename = %s ORDER BY attname", [table]
        )
        sampled = {row[0] for row in cursor.fetchall()}
    assert {"account_id", "sha256", "message_id", "thread_subject"} <= sampled
    assert "search_text" not in sampled  # the large columns are not sampled


@pytest.mark.mailstack
def test_a_sync_storing_many_messages_refreshes_statistics_as_it_grows(
    account: MailAccount, server: IMAPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(12):
        server.append("INBOX", sample(n))
    refreshed: list[int] = []
    real = bulk.refresh_statistics
    monkeypatch.setattr(sync, "STATISTICS_FROM", 2)
    monkeypatch.setattr(sync, "BATCH_SIZE", 1)
    monkeypatch.setattr(sync, "FIRST_BATCH", 1)

    def counting(columns: dict[Any, Any]) -> bool:
        refreshed.append(MessageContent.objects.filter(account=account).count())
        return real(columns)

    monkeypatch.setattr(bulk, "refresh_statistics", counting)
    sync.sync_account(account)

    assert refreshed == [2, 4, 8]  # after 2 stored, then each time the count doubled
    assert reltuples(MessageContent._meta.db_table) >= 8


# Pack files ----------------------------------------------------------------------------------


def test_a_batch_goes_into_one_pack_and_each_message_reads_back_whole(
    local_account: MailAccount,
) -> None:
    raws = {f"{n:064x}": sample(n) + b"x" * n * 100 for n in range(5)}

    built = sync.build_contents(local_account, raws)

    assert len({content.raw_path for content in built}) == 1
    assert [content.raw_offset for content in built] == [
        0,
        *[sum(len(raw) for raw in list(raws.values())[:n]) for n in range(1, 5)],
    ]
    for content, raw in zip(built, raws.values(), strict=True):
        assert rawstore.read(content) == raw
    pack = Path(default_storage.path(built[0].raw_path))
    assert pack.read_bytes() == b"".join(raws.values())
    assert not list(pack.parent.glob("*.tmp"))  # written under a temporary name, renamed


def test_a_message_stored_alone_has_its_own_file(local_account: MailAccount) -> None:
    raw = sample(1)
    content = sync.store_content(local_account, raw)

    assert content.raw_offset is None
    assert content.raw_path.endswith(f"{content.sha256}.eml")
    assert rawstore.read(content) == raw


def test_a_pack_shorter_than_its_rows_say_reads_as_missing(local_account: MailAccount) -> None:
    first, second = sync.build_contents(local_account, {"a" * 64: b"one", "b" * 64: b"two"})
    with default_storage.open(first.raw_path, "wb") as file:
        file.write(b"one")  # the second message's bytes lost

    assert rawstore.read(first) == b"one"
    with pytest.raises(OSError, match="shorter"):
        rawstore.read(second)


# COPY ------------------------------------------------------------------------------------------


def test_orphan_files_are_collected_once_old_and_named_ones_never(
    local_account: MailAccount, alice: User, settings: Any, tmp_path: Path
) -> None:
    """Packs a killed batch left without rows, temporary files and a deleted account's files go
    after a day; packs and message files that rows name stay, and so does anything younger."""
    settings.MEDIA_ROOT = tmp_path / "media"  # not the files of the session's other tests
    raws = {f"{n:064x}": sample(n) for n in range(3)}
    named = sync.build_contents(local_account, raws)
    bulk.insert(named, set_ids=True)
    alone = sync.store_content(local_account, sample(9))
    orphan_pack, _offsets = rawstore.write_pack(local_account, [sample(5)])  # no rows
    young_pack, _offsets = rawstore.write_pack(local_account, [sample(6)])
    unnamed_message = rawstore.write_one(local_account, sample(7), "7" * 64)  # kept: reusable
    root = Path(default_storage.path(""))
    stray = root / f"mail/{local_account.pk}/ab/{'a' * 64}.eml.123.456.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a message")
    gone = MailAccount.objects.create(
        user=alice, email="old@example.org", incoming_host="h", username="u", password="p",
        smtp_host="h",
    )  # fmt: skip
    gone_pack, _offsets = rawstore.write_pack(gone, [sample(8)])
    gone_message = rawstore.write_one(gone, sample(8), "8" * 64)
    gone.delete()
    not_ours = root / "mail/exports/archive.pack"
    not_ours.parent.mkdir(parents=True, exist_ok=True)
    not_ours.write_bytes(b"someone else's")
    day_and_a_bit = time.time() - 25 * 3600
    for path in root.joinpath("mail").rglob("*"):
        if path.is_file() and path.name != Path(young_pack).name:
            os.utime(path, (day_and_a_bit, day_and_a_bit))

    removed = rawstore.collect_orphans()

    assert sorted(removed) == sorted(
        [orphan_pack, f"mail/{local_account.pk}/ab/{stray.name}", gone_pack, gone_message]
    )
    for kept in (named[0].raw_path, alone.raw_path, young_pack, unnamed_message):
        assert default_storage.exists(kept), kept
    assert rawstore.read(named[2]) == raws[named[2].sha256]
    assert not_ours.exists()
    assert rawstore.collect_orphans() == []


def test_a_message_file_reused_by_a_new_copy_is_young_again(local_account: MailAccount) -> None:
    path = rawstore.write_one(local_account, sample(1), "1" * 64)
    file = Path(default_storage.path(path))
    os.utime(file, (0, 0))

    assert rawstore.write_one(local_account, sample(1), "1" * 64) == path

    assert file.stat().st_mtime > time.time() - 60


def test_copy_insert_sets_ids_and_stores_every_field(local_account: MailAccount) -> None:
    rows = [
        MessageContent(
            account=local_account,
            sha256=f"{n:064x}",
            raw_path="mail/x",
            size=n,
            subject=f"Sujet {n} — «éè»\ttab\\back",
            to=[["Élodie", "e@example.org"]],
            references=["<a@b>", '<"q"@b>'],
            auth_headers={"dkim-signature": ["v=1; \\ \n"]},
        )
        for n in range(3)
    ]

    bulk.insert(rows, set_ids=True)

    stored = {row.pk: row for row in MessageContent.objects.filter(account=local_account)}
    assert sorted(stored) == sorted(row.pk for row in rows)
    for row in rows:
        again = stored[row.pk]
        assert (again.subject, again.to, again.references, again.auth_headers) == (
            row.subject,
            row.to,
            row.references,
            row.auth_headers,
        )
        assert again.indexed is False  # the model's default
    assert not rows[0]._state.adding


def test_copy_insert_raises_integrity_error_and_inserts_nothing(
    local_account: MailAccount,
) -> None:
    rows = [
        MessageContent(account=local_account, sha256="f" * 64, raw_path="p", size=1)
        for _ in range(2)
    ]  # the same hash twice breaks the account's unique constraint

    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert(rows, set_ids=True)

    assert not MessageContent.objects.filter(account=local_account).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_copy_insert_sends_one_copy_statement(local_account: MailAccount) -> None:
    rows = [
        MessageContent(account=local_account, sha256=f"{n:064x}", raw_path="p", size=1)
        for n in range(50)
    ]
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        bulk.insert(rows, set_ids=True)

    # The ids in one query; COPY goes through psycopg's cursor, which Django does not log.
    assert len(queries) == 1
    assert MessageContent.objects.filter(account=local_account).count() == 50


# The read-ahead thread ---------------------------------------------------------------------------


def test_the_read_ahead_yields_everything_in_order_from_another_thread() -> None:
    threads: list[str] = []

    def produce() -> Iterator[int]:
        for number in range(5):
            threads.append(threading.current_thread().name)
            yield number

    assert list(sync._read_ahead(produce())) == [0, 1, 2, 3, 4]
    assert all(name.startswith("imap-fetch") for name in threads)


def test_the_read_ahead_raises_the_producers_error_when_its_item_is_reached() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ConnectionResetError("server gone")

    items = sync._read_ahead(produce())
    assert next(items) == 1
    with pytest.raises(ConnectionResetError, match="server gone"):
        next(items)


def test_closing_the_read_ahead_waits_for_the_item_being_produced() -> None:
    """The caller uses the connection again once the read-ahead is closed: the thread must be
    done with it by then."""
    started, release = threading.Event(), threading.Event()
    finished: list[int] = []

    def produce() -> Iterator[int]:
        yield 1
        started.set()
        release.wait(5)
        finished.append(2)
        yield 2

    items = sync._read_ahead(produce())
    assert next(items) == 1
    started.wait(5)
    threading.Timer(0.2, release.set).start()
    items.close()
    assert finished == [2]


# The incoming-mail signal (against Dovecot) -----------------------------------------------------


@pytest.mark.mailstack
def test_new_inbox_mail_is_announced_inside_its_transaction_after_the_first_sync(
    account: MailAccount, server: IMAPClient
) -> None:
    heard: list[dict[str, Any]] = []

    def receiver(sender: Any, account: MailAccount, messages: list[Message], **kw: Any) -> None:
        heard.append(
            {
                "subjects": [m.content.subject for m in messages],
                "ids": all(m.pk for m in messages),
                "in_transaction": connection.in_atomic_block,
                "stored": Message.objects.filter(pk__in=[m.pk for m in messages]).count(),
            }
        )

    signals.incoming_mail.connect(receiver)
    try:
        server.append("INBOX", sample(1))
        server.append("Archive", sample(2))
        sync.sync_account(account)
        assert heard == []  # the first sync imports the mailbox as it is: not incoming mail

        server.append("INBOX", sample(3))
        server.append("Archive", sample(4))
        sync.sync_account(account)
    finally:
        signals.incoming_mail.disconnect(receiver)

    assert heard == [{"subjects": ["Message 3"], "ids": True, "in_transaction": True, "stored": 1}]


@pytest.mark.mailstack
def test_a_filter_that_fails_leaves_the_new_mail_stored_and_the_sync_going(
    account: MailAccount, server: IMAPClient
) -> None:
    def broken(sender: Any, account: MailAccount, messages: list[Message], **kw: Any) -> None:
        Folder.objects.filter(account=account, role=Folder.Role.INBOX).update(name="renamed")
        raise RuntimeError("filter bug")

    server.append("INBOX", sample(1))
    sync.sync_account(account)
    signals.incoming_mail.connect(broken)
    try:
        server.append("INBOX", sample(2))
        report = sync.sync_account(account)
    finally:
        signals.incoming_mail.disconnect(broken)

    inbox = account.folders.get(role=Folder.Role.INBOX)
    assert inbox.name == "INBOX"  # the filter's own change was undone
    assert report.fetched == 1
    assert sorted(inbox.messages.values_list("content__subject", flat=True)) == [
        "Message 1",
        "Message 2",
    ]
