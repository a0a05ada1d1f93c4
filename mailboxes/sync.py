"""The IMAP sync engine: brings an account's folders and messages in step with the server.

One pass over an account (``sync_account``):
1. claim the account's lease (a crashed worker's lease runs out; two syncs never overlap);
2. list the folders, decode their names, find their roles (RFC 6154 flags, else names);
3. per folder, ``STATUS`` first: when UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the message count
   match what is stored, the folder costs that one round trip and nothing else;
4. otherwise: new UIDs above the highest stored one are fetched newest first in small batches,
   each committed on its own (so the first screenful shows while older mail follows, and a killed
   worker resumes where it stopped); a count that still differs triggers a UID diff that fetches
   what is missing and deletes what the server expunged; flag changes come through CONDSTORE
   (``CHANGEDSINCE``) when the server has it, else through a FLAGS fetch of the folder;
5. a changed UIDVALIDITY drops the folder's copies and fetches it again; message bodies already
   stored are recognised by their hash and not stored twice.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Max, Q
from django.utils import timezone
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailboxes import bulk, rawstore, signals
from mailboxes.actions import record_keywords
from mailboxes.models import (
    Folder,
    MailAccount,
    Message,
    MessageContent,
    PendingAction,
    Reference,
)
from mailboxes.search import search_text_for
from mailboxes.threading import BatchThreadStore, prepare_thread, record_threads
from mailcore import connect
from mailcore.imap import fetch_range, list_with_status
from mailcore.mime import ParsedMessage, parse_headers

logger = logging.getLogger(__name__)

# Messages per FETCH and per transaction: bounds memory and the work a killed worker loses.
FIRST_BATCH = 25  # a folder's newest messages: the first screenful shows at once
BATCH_SIZE = 250
BATCH_BYTES = 16 * 1024 * 1024  # and no more bytes than this per batch (one message may be more)
MAX_MESSAGE = 50 * 1024 * 1024  # larger messages are kept as their header only
LEASE = timedelta(minutes=5)
MAX_PASSES = 3  # one pass, and up to two more when a sync was asked for meanwhile
# A sync that stores many messages has the database's statistics refreshed after this many, then
# each time the count has doubled (mailboxes.bulk.refresh_statistics, 45 ms at 30,000 messages):
# 6 times for an account of 100,000 messages.
STATISTICS_FROM = 2000
STATISTICS_COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    MessageContent: ("account", "sha256", "message_id", "thread_subject", "date", "conversation"),
    Reference: ("account", "message_id"),
    Message: ("folder", "uid", "conversation"),
}

SPECIAL_USE_ROLES = {
    b"\\Sent": Folder.Role.SENT,
    b"\\Drafts": Folder.Role.DRAFTS,
    b"\\Trash": Folder.Role.TRASH,
    b"\\Junk": Folder.Role.JUNK,
    b"\\Archive": Folder.Role.ARCHIVE,
}
# Servers without SPECIAL-USE: the usual names, in English and French, compared case-folded.
ROLE_NAMES = {
    Folder.Role.SENT: {
        "sent",
        "sent items",
        "sent messages",
        "sent mail",
        "envoyés",
        "envoyes",
        "éléments envoyés",
        "messages envoyés",
    },
    Folder.Role.DRAFTS: {"drafts", "draft", "brouillons"},
    Folder.Role.TRASH: {
        "trash",
        "deleted items",
        "deleted messages",
        "bin",
        "corbeille",
        "éléments supprimés",
    },
    Folder.Role.JUNK: {
        "junk",
        "spam",
        "junk e-mail",
        "junk email",
        "indésirables",
        "courrier indésirable",
        "pourriel",
        "pourriels",
    },
    Folder.Role.ARCHIVE: {"archive", "archives", "all mail"},
}


class AlreadySyncing(Exception):
    """Another worker holds the account's lease."""


@dataclass
class SyncReport:
    folders: int = 0
    unchanged_folders: int = 0
    fetched: int = 0
    flag_updates: int = 0
    removed: int = 0
    pushed: int = 0
    warnings: list[str] = field(default_factory=list)
    # Messages fetched by this sync when the planner's statistics are next refreshed.
    statistics_at: int = field(default_factory=lambda: STATISTICS_FROM)


def incoming_settings(values: Mapping[str, Any]) -> connect.ServerSettings:
    """The receiving server of an account, from its fields (a form's cleaned data, say)."""
    return connect.ServerSettings(
        protocol=connect.Protocol(values["protocol"]),
        host=values["incoming_host"],
        port=values["incoming_port"],
        security=connect.Security(values["incoming_security"]),
        username=values["username"],
        password=values["password"],
    )


def outgoing_settings(values: Mapping[str, Any]) -> connect.ServerSettings:
    """The sending server; blank SMTP credentials mean the receiving ones."""
    return connect.ServerSettings(
        protocol=connect.Protocol.SMTP,
        host=values["smtp_host"],
        port=values["smtp_port"],
        security=connect.Security(values["smtp_security"]),
        username=values.get("smtp_username") or values["username"],
        password=values.get("smtp_password") or values["password"],
    )


def server_settings(account: MailAccount) -> connect.ServerSettings:
    return incoming_settings(vars(account))


def open_imap(account: MailAccount) -> IMAPClient:
    """A logged-in IMAP connection to the account's server (a context manager that logs out).
    Raises ``connect.ConnectionFailed``."""
    return connect.open_imap(server_settings(account), ca_file=settings.MAIL_CA_FILE or None)


# The lease ------------------------------------------------------------------------------------


@contextmanager
def lease(account: MailAccount) -> Iterator[str]:
    token = secrets.token_hex(8)
    now = timezone.now()
    claimed = (
        MailAccount.objects.filter(pk=account.pk)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        # A pass starting now covers whatever was asked before it.
        .update(sync_lease_until=now + LEASE, sync_lease_token=token, sync_again=False)
    )
    if not claimed:
        MailAccount.objects.filter(pk=account.pk).update(sync_again=True)
        raise AlreadySyncing(account.pk)
    try:
        yield token
    finally:
        MailAccount.objects.filter(pk=account.pk, sync_lease_token=token).update(
            sync_lease_until=None, sync_lease_token=""
        )


def renew_lease(account: MailAccount, token: str) -> None:
    MailAccount.objects.filter(pk=account.pk, sync_lease_token=token).update(
        sync_lease_until=timezone.now() + LEASE
    )


class LeaseKeeper:
    """Renews a held lease as time passes: called after every batch, it writes at most every
    third of the lease, so a long first sync keeps its claim and a quick pass costs nothing."""

    def __init__(self, account: MailAccount, token: str) -> None:
        self.account, self.token = account, token
        self.renewed = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.renewed > LEASE.total_seconds() / 3:
            renew_lease(self.account, self.token)
            self.renewed = time.monotonic()


# An account --------------------------------------------------------------------------------------


def sync_account(account: MailAccount, client: IMAPClient | None = None) -> SyncReport:
    """One pass over the account. Raises ``connect.ConnectionFailed`` and ``AlreadySyncing``."""
    report = SyncReport()
    with lease(account) as token:
        own_client = client is None
        if client is None:
            client = open_imap(account)
        try:
            for _pass in range(MAX_PASSES):
                _one_pass(client, account, token, report)
                asked = MailAccount.objects.filter(pk=account.pk, sync_again=True)
                if not asked.update(sync_again=False):
                    break  # nobody asked for more while this pass ran
        finally:
            if own_client:
                try:
                    client.logout()
                except Exception:
                    logger.debug("LOGOUT failed", exc_info=True)
    return report


def _one_pass(client: IMAPClient, account: MailAccount, token: str, report: SyncReport) -> None:
    report.pushed += push_pending_actions(client, account)
    statuses: dict[str, dict[bytes, int]] = {}
    if b"LIST-STATUS" in client.capabilities():
        # One round trip for every folder's list entry, subscription and STATUS.
        listed = list_with_status(client)
        statuses = {name: status for _flags, _delim, name, status in listed}
        folders = refresh_folders(
            client, account, [(flags, delim, name) for flags, delim, name, _s in listed]
        )
    else:
        folders = refresh_folders(client, account)
    keeper = LeaseKeeper(account, token)
    report.folders = report.unchanged_folders = 0  # the last pass's figures
    for folder in folders:
        if folder.selectable:
            sync_folder(client, folder, report, statuses.get(folder.name), keeper)
        keeper.tick()
        report.folders += 1


def guess_role(name: str, flags: Iterable[bytes], delimiter: str) -> str:
    if name.upper() == "INBOX":
        return Folder.Role.INBOX
    for flag in flags:
        if flag in SPECIAL_USE_ROLES:
            return SPECIAL_USE_ROLES[flag]
    leaf = name.rsplit(delimiter, 1)[-1] if delimiter else name
    folded = leaf.casefold()
    for role, names in ROLE_NAMES.items():
        if folded in names:
            return role
    return Folder.Role.NONE


def refresh_folders(
    client: IMAPClient,
    account: MailAccount,
    listed: list[tuple[Sequence[bytes], Any, str]] | None = None,
) -> list[Folder]:
    """Mirror the server's folder list; the Inbox first, then roles, then the rest by name.

    ``listed`` is a LIST-STATUS answer, whose flags say which folders are subscribed; without
    it, LIST and LSUB are asked.
    """
    if listed is None:
        listed = client.list_folders()
        subscribed = {name for _flags, _delim, name in client.list_sub_folders()}
    else:
        subscribed = {name for flags, _delim, name in listed if b"\\Subscribed" in flags}
    existing = {folder.name: folder for folder in account.folders.all()}
    seen_names = set()
    taken_roles: set[str] = set()
    folders = []
    for flags, delimiter, name in listed:
        name = str(name)
        delim = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "")
        role = guess_role(name, flags, delim)
        if role and role in taken_roles:
            role = Folder.Role.NONE  # two "Sent" folders: the first listed keeps the role
        taken_roles.add(role)
        values = {
            "delimiter": delim,
            "role": role,
            "flags": [flag.decode(errors="replace") for flag in flags],
            "subscribed": name in subscribed or role == Folder.Role.INBOX,
            "selectable": b"\\Noselect" not in flags and b"\\NonExistent" not in flags,
        }
        folder = existing.get(name)
        if folder is None:
            folder = Folder.objects.create(account=account, name=name, **values)
        else:
            changed = [key for key, value in values.items() if getattr(folder, key) != value]
            for key in changed:
                setattr(folder, key, values[key])
            if changed:
                folder.save(update_fields=changed)
        seen_names.add(name)
        folders.append(folder)
    # Deleted on the server: their copies and queued actions go with them (cascade).
    Folder.objects.filter(
        pk__in=[f.pk for n, f in existing.items() if n not in seen_names]
    ).delete()
    order = [Folder.Role.INBOX, Folder.Role.SENT, Folder.Role.DRAFTS, Folder.Role.ARCHIVE]
    return sorted(
        folders, key=lambda f: (order.index(f.role) if f.role in order else len(order), f.name)
    )


# Pushing the user's actions ----------------------------------------------------------------------

MAX_PUSH_ATTEMPTS = 5


def push_pending_actions(client: IMAPClient, account: MailAccount) -> int:
    """Apply the user's queued actions on the server, oldest first; returns how many were done.

    Consecutive actions of one kind on one folder go as one command. An action the server
    refuses is retried on later passes and dropped after a few attempts; a lost connection
    raises, leaving the rest queued.
    """
    actions = list(account.pending.select_related("folder", "target"))
    if not actions:
        return 0
    can_move = b"MOVE" in client.capabilities()
    done: list[int] = []
    for (_folder_id, kind, flags, _target_id), group in groupby(
        actions, key=lambda a: (a.folder_id, a.kind, tuple(a.flags), a.target_id)
    ):
        batch = list(group)
        folder = batch[0].folder
        try:
            selected = client.select_folder(folder.name)
        except IMAPClientError:
            # The folder is gone from the server (deleted elsewhere): so are its messages.
            done.extend(a.pk for a in batch)
            continue
        current = [a for a in batch if a.uidvalidity == selected[b"UIDVALIDITY"]]
        stale = [a.pk for a in batch if a not in current]
        done.extend(stale)  # the folder was renumbered: those UIDs mean nothing any more
        uids = [a.uid for a in current]
        if not uids:
            continue
        try:
            if kind == PendingAction.Kind.EXPUNGE:
                client.add_flags(uids, [b"\\Deleted"])
                if b"UIDPLUS" in client.capabilities():
                    client.uid_expunge(uids)
                else:
                    client.expunge()
            elif kind == PendingAction.Kind.ADD_FLAGS:
                client.add_flags(uids, [flag.encode() for flag in flags])
            elif kind == PendingAction.Kind.REMOVE_FLAGS:
                client.remove_flags(uids, [flag.encode() for flag in flags])
            elif can_move:
                client.move(uids, batch[0].target.name)
            else:
                client.copy(uids, batch[0].target.name)
                client.delete_messages(uids)
                if b"UIDPLUS" in client.capabilities():
                    client.uid_expunge(uids)
                else:
                    client.expunge()
        except IMAPClientError as exc:
            for action in current:
                action.attempts += 1
                action.last_error = str(exc)[:300]
            PendingAction.objects.bulk_update(current, ["attempts", "last_error"])
            done.extend(a.pk for a in current if a.attempts >= MAX_PUSH_ATTEMPTS)
            logger.info("pushing %s to %s failed: %s", kind, folder.name, exc)
            continue
        done.extend(a.pk for a in current)
    _leave_selected(client)
    PendingAction.objects.filter(pk__in=done).delete()
    return len(done)


def _leave_selected(client: IMAPClient) -> None:
    """Dovecot answers STATUS (and LIST-STATUS) on the selected folder from this session's old
    view of it: leave it, so that what follows on this connection sees what is there."""
    if client._imap.state != "SELECTED":  # imapclient does not tell; imaplib does
        return
    if b"UNSELECT" in client.capabilities():
        client.unselect_folder()
    else:
        client.close_folder()


# A folder ----------------------------------------------------------------------------------------


def sync_folder(
    client: IMAPClient,
    folder: Folder,
    report: SyncReport,
    status: dict[bytes, int] | None = None,
    keeper: LeaseKeeper | None = None,
) -> None:
    condstore = b"CONDSTORE" in client.capabilities()
    if not status:
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"]
        if condstore:
            items.append(b"HIGHESTMODSEQ")
        status = client.folder_status(folder.name, items)
    uidvalidity = status[b"UIDVALIDITY"]
    uidnext = status[b"UIDNEXT"]
    modseq = status.get(b"HIGHESTMODSEQ")
    server_count = status[b"MESSAGES"]

    # total_count is the server's count of the last complete pass: no COUNT(*) needed here.
    if (
        folder.fully_synced
        and folder.uidvalidity == uidvalidity
        and folder.uidnext == uidnext
        and (not condstore or folder.highestmodseq == modseq)
        and folder.total_count == server_count
    ):
        report.unchanged_folders += 1
        _save_counts(folder, server_count, status[b"UNSEEN"])
        return

    client.select_folder(folder.name, readonly=True)
    try:
        _sync_selected(client, folder, report, status, condstore, keeper)
    finally:
        _leave_selected(client)


def _sync_selected(
    client: IMAPClient,
    folder: Folder,
    report: SyncReport,
    status: dict[bytes, Any],
    condstore: bool,
    keeper: LeaseKeeper | None,
) -> None:
    uidvalidity = status[b"UIDVALIDITY"]
    uidnext = status[b"UIDNEXT"]
    modseq = status.get(b"HIGHESTMODSEQ")
    server_count = status[b"MESSAGES"]
    if folder.uidvalidity is not None and folder.uidvalidity != uidvalidity:
        # The server renumbered the folder: our UIDs mean nothing now. Bodies stay stored and
        # are recognised by their hash when fetched again.
        logger.info("UIDVALIDITY of %s changed; resyncing it", folder.name)
        report.warnings.append(f"uidvalidity-changed:{folder.name}")
        with transaction.atomic():
            folder.messages.all().delete()
            folder.synced_down_to_uid = None
            folder.fully_synced = False
            folder.highestmodseq = None
            folder.save(update_fields=["synced_down_to_uid", "fully_synced", "highestmodseq"])
    if folder.uidvalidity != uidvalidity:
        folder.uidvalidity = uidvalidity
        folder.save(update_fields=["uidvalidity"])

    # Flags first: with CONDSTORE only what changed since the stored HIGHESTMODSEQ.
    if folder.fully_synced:
        report.flag_updates += _sync_flags(client, folder, condstore)

    # The same next UID and count as at the end of the last complete pass: nothing arrived and
    # nothing left (an arrival moves UIDNEXT; an expunge alone lowers the count), only flags
    # changed. No search and no count of the folder's rows, which grow with the folder.
    settled = (
        folder.fully_synced and folder.uidnext == uidnext and folder.total_count == server_count
    )
    if not settled:
        _fetch_new_and_missing(client, folder, server_count, condstore, report, keeper)

    folder.uidnext = uidnext
    folder.highestmodseq = modseq
    folder.fully_synced = True
    folder.last_synced_at = timezone.now()
    folder.save(update_fields=["uidnext", "highestmodseq", "fully_synced", "last_synced_at"])
    _save_counts(folder, server_count, status[b"UNSEEN"])


def _fetch_new_and_missing(
    client: IMAPClient,
    folder: Folder,
    server_count: int,
    condstore: bool,
    report: SyncReport,
    keeper: LeaseKeeper | None,
) -> None:
    uidvalidity = folder.uidvalidity
    # New mail: everything above the highest stored UID, newest first.
    top = folder.messages.filter(uidvalidity=uidvalidity).aggregate(top=Max("uid"))["top"] or 0
    new_uids = [uid for uid in client.search(["UID", f"{top + 1}:*"]) if uid > top]
    _fetch_and_store(client, folder, sorted(new_uids, reverse=True), condstore, report, keeper)

    # Anything else missing (older mail of a first sync, or after a crash) or expunged.
    if folder.messages.count() != server_count or not folder.fully_synced:
        server_uids = set(client.search("ALL"))
        # Rows moved here and waiting for their UID are not the server's to delete.
        stored = dict(folder.messages.filter(uid__isnull=False).values_list("uid", "pk"))
        vanished = [pk for uid, pk in stored.items() if uid not in server_uids]
        if vanished:
            Message.objects.filter(pk__in=vanished).delete()
            report.removed += len(vanished)
        # Nor are messages moved or deleted here whose move is not on the server yet (a filter
        # moved them to Junk during this pass, say): fetching them again would duplicate them.
        leaving = PendingAction.objects.filter(
            folder=folder,
            uidvalidity=uidvalidity,
            kind__in=[PendingAction.Kind.MOVE, PendingAction.Kind.EXPUNGE],
        ).values_list("uid", flat=True)
        missing = sorted(server_uids.difference(stored, leaving), reverse=True)
        _fetch_and_store(client, folder, missing, condstore, report, keeper)


def _save_counts(folder: Folder, total: int, unread: int) -> None:
    if (folder.total_count, folder.unread_count) != (total, unread):
        folder.total_count, folder.unread_count = total, unread
        folder.save(update_fields=["total_count", "unread_count"])


def _flag_fields(flags: Sequence[bytes]) -> dict[str, Any]:
    return {
        "seen": b"\\Seen" in flags,
        "flagged": b"\\Flagged" in flags,
        "answered": b"\\Answered" in flags,
        "draft": b"\\Draft" in flags,
        "keywords": sorted(
            flag.decode(errors="replace") for flag in flags if not flag.startswith(b"\\")
        ),
    }


def _sync_flags(client: IMAPClient, folder: Folder, condstore: bool) -> int:
    if condstore and folder.highestmodseq:
        changed = fetch_range(
            client, "1:*", ["FLAGS"], modifiers=[f"CHANGEDSINCE {folder.highestmodseq}"]
        )
    else:
        changed = fetch_range(client, "1:*", ["FLAGS"])
    by_uid = {uid: data for uid, data in changed.items() if b"FLAGS" in data}
    updated = 0
    stored = folder.messages.filter(uid__in=list(by_uid))
    for message in stored:
        fields = _flag_fields(by_uid[message.uid][b"FLAGS"])
        modseq = by_uid[message.uid].get(b"MODSEQ")
        if modseq:
            fields["modseq"] = modseq[0]
        different = [key for key, value in fields.items() if getattr(message, key) != value]
        if "keywords" in different:
            record_keywords({(folder.account_id, k) for k in fields["keywords"]})
        if different:
            for key in different:
                setattr(message, key, fields[key])
            message.save(update_fields=different)
            updated += 1
    return updated


def _fetch_and_store(
    client: IMAPClient,
    folder: Folder,
    uids: Sequence[int],
    condstore: bool,
    report: SyncReport,
    keeper: LeaseKeeper | None = None,
) -> None:
    """Fetch and store `uids` in the order given, in batches committed one by one.

    The next batch is fetched while this one is stored: the connection is used by that other
    thread alone until the last batch is in, and the database by this one.
    """
    # Closed before anything else may use the connection, an exception here included.
    with closing(_read_ahead(_fetch_batches(client, uids, condstore, report))) as batches:
        for batch, fetched in batches:
            with transaction.atomic():
                _store_batch(folder, fetched, report)
                folder.synced_down_to_uid = min(batch)
                folder.save(update_fields=["synced_down_to_uid"])
            if keeper is not None:
                keeper.tick()
            if report.fetched >= report.statistics_at:
                bulk.refresh_statistics(STATISTICS_COLUMNS)
                report.statistics_at = report.fetched * 2


def _fetch_batches(
    client: IMAPClient, uids: Sequence[int], condstore: bool, report: SyncReport
) -> Iterator[tuple[list[int], dict[int, dict[bytes, Any]]]]:
    """The messages of `uids` in batches: each batch's UIDs and what FETCH returned for them.

    The first batch is small, so that the newest messages show at once; later ones are bigger
    (fewer round trips and statements) but bounded in bytes as well as in messages. Sizes come
    first: one huge message must not take the worker's memory with it. No database access here:
    this runs in `_read_ahead`'s thread.
    """
    items = ["FLAGS", "BODY.PEEK[]"] + (["MODSEQ"] if condstore else [])
    header_items = ["FLAGS", "BODY.PEEK[HEADER]"] + (["MODSEQ"] if condstore else [])
    sizes: dict[int, int] = {}
    position = 0
    while position < len(uids):
        ahead = uids[position : position + (FIRST_BATCH if position == 0 else BATCH_SIZE)]
        unknown = [uid for uid in ahead if uid not in sizes]
        if unknown:
            for uid, data in client.fetch(unknown, ["RFC822.SIZE"]).items():
                sizes[uid] = data.get(b"RFC822.SIZE", 0)
        batch: list[int] = []
        total = 0
        for uid in ahead:
            weight = min(sizes.get(uid, 0), MAX_MESSAGE)
            if batch and total + weight > BATCH_BYTES:
                break
            batch.append(uid)
            total += weight
        position += len(batch)
        # A UID without a size was expunged meanwhile: nothing to fetch.
        small = [uid for uid in batch if uid in sizes and sizes[uid] <= MAX_MESSAGE]
        large = [uid for uid in batch if uid in sizes and sizes[uid] > MAX_MESSAGE]
        fetched = client.fetch(small, items) if small else {}
        if large:
            # Kept as its header alone, marked, so that it still shows in the list.
            for uid, data in client.fetch(large, header_items).items():
                header = data.pop(b"BODY[HEADER]", b"") or b""
                data[b"BODY[]"] = (
                    header
                    + (
                        f"\r\n[Courrier: message of {sizes[uid]} bytes, over the "
                        f"{MAX_MESSAGE}-byte limit; only its header was downloaded.]\r\n"
                    ).encode()
                )
                fetched[uid] = data
                report.warnings.append(f"{uid}:too-large:{sizes[uid]}")
        for uid in batch:
            sizes.pop(uid, None)
        yield batch, fetched


_END = object()


def _read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """What `items` yields, the next item produced in another thread while this one is used.

    The thread spends most of its time waiting on the server's bytes, with the GIL released.
    An exception raised producing an item is raised here when that item is asked for; if the
    caller stops early, the item being produced is finished first (the connection is left
    between commands), then dropped.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-fetch") as pool:
        coming = pool.submit(next, items, _END)
        while (item := coming.result()) is not _END:
            coming = pool.submit(next, items, _END)
            yield item


def _store_batch(folder: Folder, fetched: dict[int, dict[bytes, Any]], report: SyncReport) -> None:
    """One FETCH batch: contents looked up in one query, copies inserted in one."""
    account = folder.account
    bodies = {
        uid: data[b"BODY[]"] for uid, data in fetched.items() if data.get(b"BODY[]") is not None
    }  # a UID without a body was expunged between SEARCH and FETCH
    shas = {uid: hashlib.sha256(raw).hexdigest() for uid, raw in bodies.items()}
    contents = {
        content.sha256: content
        for content in MessageContent.objects.filter(account=account, sha256__in=shas.values())
    }
    already = set(folder.messages.filter(uid__in=list(bodies)).values_list("uid", flat=True))
    # Rows the user moved here wait for their UID; only look for them when there are any.
    waiting = folder.messages.filter(uid__isnull=True).exists()
    new = {shas[uid]: bodies[uid] for uid in sorted(bodies, reverse=True)}
    for sha in contents:
        new.pop(sha, None)
    # The stored contents are passed along: a merge of conversations by the new ones moves
    # them too, and their copies below must name the conversation they end in.
    contents.update(
        insert_contents(account, build_contents(account, new), known=list(contents.values()))
    )
    copies = []
    for uid in sorted(bodies, reverse=True):
        content = contents[shas[uid]]
        if uid in already:
            continue
        data = fetched[uid]
        fields = _flag_fields(data.get(b"FLAGS", ()))
        modseq = data.get(b"MODSEQ")
        if waiting and _adopt_moved(folder, uid, content, fields, modseq):
            continue
        copies.append(
            Message(
                folder=folder,
                uidvalidity=folder.uidvalidity,
                uid=uid,
                content=content,
                conversation_id=content.conversation_id,
                # Undated mail sorts as arriving now, never first or last for ever.
                date=content.date or timezone.now(),
                modseq=modseq[0] if modseq else None,
                **fields,
            )
        )
        report.warnings.extend(f"{uid}:{warning}" for warning in content.parse_warnings[:3])
    try:
        with transaction.atomic():
            bulk.insert(copies, set_ids=True)
    except IntegrityError:
        # A copy stored meanwhile by another writer (a Sent copy filed by compose, say) is
        # simply already there.
        Message.objects.bulk_create(copies, ignore_conflicts=True)
        copies = list(
            folder.messages.filter(uid__in=[copy.uid for copy in copies]).select_related("content")
        )
    record_keywords({(account.pk, k) for copy in copies for k in copy.keywords})
    report.fetched += len(copies)
    if copies and folder.role == Folder.Role.INBOX and folder.fully_synced:
        _announce_incoming(account, copies)


def _announce_incoming(account: MailAccount, messages: list[Message]) -> None:
    """Let the filters (the spam app) see new Inbox mail before it shows. A filter that fails
    leaves the mail where it is, stored: its changes are undone, the sync goes on."""
    try:
        with transaction.atomic():
            signals.incoming_mail.send(Folder, account=account, messages=messages)
    except Exception:  # one filter's bug must never stop a sync (logged with its traceback)
        logger.exception("filtering new mail of account %s failed; left in the Inbox", account.pk)


def _adopt_moved(
    folder: Folder,
    uid: int,
    content: MessageContent,
    fields: dict[str, Any],
    modseq: tuple[int, ...] | None,
) -> bool:
    """A message the user moved here: its row is already shown, waiting for its new UID."""
    moved_here = folder.messages.filter(uid__isnull=True, content=content).first()
    if moved_here is None:
        return False
    moved_here.uid, moved_here.uidvalidity = uid, folder.uidvalidity
    moved_here.modseq = modseq[0] if modseq else None
    for key, value in fields.items():
        setattr(moved_here, key, value)
    moved_here.save()
    return True


def store_content(account: MailAccount, raw: bytes) -> MessageContent:
    """The account's stored copy of these bytes, parsed and written once (one message)."""
    sha = hashlib.sha256(raw).hexdigest()
    existing = MessageContent.objects.filter(account=account, sha256=sha).first()
    if existing:
        return existing
    content = build_content(account, raw, sha, rawstore.write_one(account, raw, sha))
    return insert_contents(account, [content])[sha]


def build_contents(account: MailAccount, raws: Mapping[str, bytes]) -> list[MessageContent]:
    """Unsaved rows for a batch of new messages (by hash), their bytes written in one pack."""
    if not raws:
        return []
    path, offsets = rawstore.write_pack(account, list(raws.values()))
    return [
        build_content(account, raw, sha, path, offset)
        for (sha, raw), offset in zip(raws.items(), offsets, strict=True)
    ]


def build_content(
    account: MailAccount, raw: bytes, sha: str, path: str, offset: int | None = None
) -> MessageContent:
    """An unsaved row for bytes already in storage, with their header fields.

    Only the header is parsed here: that is what the message list and threading need, at a
    tenth of a full parse. The body (text, snippet, attachments, the rest of the search text)
    is parsed afterwards by mailboxes.indexing, off the sync's path. The bytes are written
    before the row is inserted: a crash leaves at worst a file no row points to, never a row
    without its bytes.
    """
    content = MessageContent(
        account=account, sha256=sha, raw_path=path, raw_offset=offset, size=len(raw)
    )
    apply_headers(content, parse_headers(raw))
    return content


def apply_headers(content: MessageContent, parsed: ParsedMessage) -> None:
    """Set the row's header fields (and their warnings) from a parse of its bytes."""
    sender = parsed.from_[0] if parsed.from_ else None
    content.message_id = parsed.message_id[:995]
    content.in_reply_to = parsed.in_reply_to[:995]
    content.references = list(parsed.references)
    content.subject = parsed.subject[:998]
    content.from_name = sender.name[:300] if sender else ""
    content.from_email = sender.email[:320] if sender else ""
    content.to = [[a.name, a.email] for a in parsed.to]
    content.cc = [[a.name, a.email] for a in parsed.cc]
    content.reply_to = [[a.name, a.email] for a in parsed.reply_to]
    content.date = parsed.date
    content.date_offset_minutes = parsed.date_offset_minutes
    content.list_id = parsed.list_id[:300]
    content.auth_headers = parsed.auth_headers
    content.parse_warnings = list(parsed.warnings)
    content.search_text = search_text_for(content)


def insert_contents(
    account: MailAccount, batch: list[MessageContent], known: Sequence[MessageContent] = ()
) -> dict[str, MessageContent]:
    """Thread a batch of built rows and insert them in one statement; by sha256.

    Threading looks up what the batch refers to in two queries up front and the batch's own
    messages in memory; references and conversation dates are written once per batch. `known`:
    stored contents the caller holds, kept in their conversation when the batch merges it.
    """
    if not batch:
        return {}
    store = BatchThreadStore(account, batch, known=known)
    references = {content.sha256: prepare_thread(content, store) for content in batch}
    store.create_threads()
    try:
        with transaction.atomic():
            bulk.insert(batch, set_ids=True)
    except IntegrityError:
        # Some were stored meanwhile by another writer (the lease makes this rare): one by one.
        return {
            content.sha256: _insert_one(content, references[content.sha256]) for content in batch
        }
    record_threads(batch, references)
    return {content.sha256: content for content in batch}


def _insert_one(content: MessageContent, references: tuple[str, ...]) -> MessageContent:
    try:
        with transaction.atomic():
            content.save(force_insert=True)
    except IntegrityError:
        return MessageContent.objects.get(account=content.account, sha256=content.sha256)
    record_threads([content], {content.sha256: references})
    return content
