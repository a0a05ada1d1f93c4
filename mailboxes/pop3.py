"""The POP3 sync: Courrier is the device that keeps the mail; the server may keep a copy too.

One pass over an account (``sync_pop3_account``):
1. claim the account's lease (the IMAP sync's: two syncs of one account never overlap);
2. ``UIDL`` lists the server's messages; those whose UIDL no copy here carries are downloaded
   newest first, one at a time, each committed on its own with its UIDL, so that a killed worker
   resumes where it stopped (the unique (folder, pop3_uidl) keeps duplicates out);
3. then ``DELE``, only for messages whose copy here is committed: all of them when the account
   does not leave mail on the server, else those stored more than ``pop3_delete_after_days`` ago;
4. ``QUIT`` applies the deletions. A session that ends any other way applies none (RFC 1939 §6),
   and the next pass sends them again: whatever is still stored here and still on the server.

POP3 has one mailbox: the copies go into a local Inbox folder, created on the first pass.

Every UIDL downloaded is recorded (``Pop3Download``) with its time, and kept after the copy here
is deleted: such mail is not downloaded again, and "delete from the server after N days" and
"delete from the server when deleted here" work from that record.
"""

from __future__ import annotations

import hashlib
import logging
import poplib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailboxes.models import Folder, MailAccount, Message, Pop3Download
from mailboxes.sync import SyncReport, lease, renew_lease, server_settings, store_content
from mailcore import connect

logger = logging.getLogger(__name__)

INBOX_NAME = "INBOX"
RENEW_EVERY = 25  # downloads between two renewals of the lease
MAX_UIDL = 70  # RFC 1939 §7: 1 to 70 characters from 0x21 to 0x7E; Message.pop3_uidl's length
MAX_STATUS_LINE = 8192
READ_CHUNK = 64 * 1024
MAX_DETAIL = 500


@dataclass
class Pop3Report(SyncReport):
    deleted_on_server: int = 0


@dataclass
class ServerList:
    """What ``UIDL`` said: the message number of each UIDL, and the UIDLs a broken server gave
    to more than one message (downloaded once, never deleted: which one would go is unknown)."""

    numbers: dict[str, int] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)


def sync_pop3_account(account: MailAccount, client: poplib.POP3 | None = None) -> SyncReport:
    """One pass over a POP3 account. Raises ``connect.ConnectionFailed`` and ``AlreadySyncing``.

    Runs outside any transaction: each message must be committed before the server may delete
    it. A given ``client`` (logged in) is ended with QUIT on success, left open on failure.
    """
    report = Pop3Report(folders=1)
    with lease(account) as token:
        own_client = client is None
        if client is None:
            client = connect.open_pop3(
                server_settings(account), ca_file=settings.MAIL_CA_FILE or None
            )
        try:
            inbox = local_inbox(account)
            server = list_server(client, account, report)
            forget_gone(account, server)
            download_new(client, inbox, server, token, report)
            delete_on_server(client, account, server, report)
            _quit(client, report)
        except BaseException:
            if own_client:
                _close(client)  # no QUIT: the server applies none of this session's DELEs
            raise
        _save_counts(inbox)
    if not report.fetched and not report.deleted_on_server:
        report.unchanged_folders = 1
    return report


def local_inbox(account: MailAccount) -> Folder:
    inbox = account.folders.filter(role=Folder.Role.INBOX).first()
    if inbox is None:
        inbox, _created = Folder.objects.get_or_create(
            account=account, name=INBOX_NAME, defaults={"role": Folder.Role.INBOX}
        )
    return inbox


# Talking to the server ---------------------------------------------------------------------------


def _refused(exc: BaseException) -> bool:
    """A "-ERR" reply: the server is there and said no. poplib raises those with the reply's
    bytes, and its own troubles (EOF, overlong lines) with a str."""
    reply = exc.args[0] if exc.args else None
    return isinstance(reply, bytes) and reply.startswith(b"-ERR")


def _reply_text(exc: BaseException) -> str:
    reply = exc.args[0] if exc.args else b""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return text[:200]


@contextmanager
def _step(account: MailAccount, step: str) -> Iterator[None]:
    """Network trouble in this step becomes ``ConnectionFailed`` (the task retries those); a
    "-ERR" goes through for the caller to judge."""
    try:
        yield
    except connect.TROUBLE as exc:
        if isinstance(exc, poplib.error_proto) and _refused(exc):
            raise
        problem = (
            connect.Problem.TIMEOUT if isinstance(exc, TimeoutError) else connect.Problem.OTHER
        )
        where = f"{account.incoming_host}:{account.incoming_port}"
        detail = f"POP3 session with {where} failed during {step}: {type(exc).__name__}: {exc}"
        raise connect.ConnectionFailed(problem, detail[:MAX_DETAIL]) from exc


def uidl_key(uidl: bytes) -> str:
    """The UIDL as stored. One outside RFC 1939's rules (too long, bytes Postgres cannot hold)
    is stored as a hash of itself, stable from pass to pass, rather than refused."""
    if 0 < len(uidl) <= MAX_UIDL and all(0x21 <= byte <= 0x7E for byte in uidl):
        return uidl.decode("ascii")
    return "~" + hashlib.sha256(uidl).hexdigest()


def list_server(client: poplib.POP3, account: MailAccount, report: SyncReport) -> ServerList:
    try:
        with _step(account, "UIDL"):
            _response, lines, _octets = client.uidl()
    except poplib.error_proto as exc:
        # Without UIDL nothing tells a new message from one downloaded before (RFC 1939 §7).
        raise connect.ConnectionFailed(
            connect.Problem.CAPABILITY, f"server has no UIDL: {_reply_text(exc)}"
        ) from exc
    server = ServerList()
    for line in lines:
        number, _space, uidl = line.strip().partition(b" ")
        if not number.isdigit() or not uidl.strip():
            report.warnings.append(f"bad-uidl-line:{line[:80]!r}")
            continue
        key = uidl_key(uidl.strip())
        if key in server.numbers:
            server.ambiguous.add(key)
            report.warnings.append(f"{key}:duplicate-uidl")
            continue
        server.numbers[key] = int(number)
    return server


def retrieve(client: poplib.POP3, number: int) -> bytes:
    """RETR, the message's bytes as the server stores them, less the dot-stuffing.

    Read here rather than by poplib's retr(), which refuses lines over 2048 bytes: real mail has
    them (RFC 5322's 998 is often ignored), and one such message would stop every pass.
    """
    client.sock.sendall(b"RETR %d\r\n" % number)
    status = client.file.readline(MAX_STATUS_LINE)
    if not status.endswith(b"\n"):
        raise poplib.error_proto("-ERR EOF" if not status else "status line too long")
    if not status.startswith(b"+OK"):
        raise poplib.error_proto(status.rstrip(b"\r\n"))
    chunks = []
    at_line_start = True
    while True:
        chunk = client.file.readline(READ_CHUNK)  # a long line comes in several chunks
        if not chunk:
            raise poplib.error_proto("-ERR EOF")
        if at_line_start:
            if chunk in (b".\r\n", b".\n"):
                break
            if chunk.startswith(b"."):
                chunk = chunk[1:]  # RFC 1939 §3: a line starting with "." has one added
        at_line_start = chunk.endswith(b"\n")
        chunks.append(chunk)
    return b"".join(chunks)


def _quit(client: poplib.POP3, report: SyncReport) -> None:
    try:
        client.quit()
    except connect.TROUBLE as exc:
        # Every copy is committed already; deletions not applied are sent again next pass.
        report.warnings.append(f"quit-failed:{_reply_text(exc)}")
        _close(client)


def _close(client: poplib.POP3) -> None:
    try:
        client.close()
    except OSError:
        logger.debug("closing the POP3 connection failed", exc_info=True)


# Downloading -------------------------------------------------------------------------------------


def _kept_uidls(account: MailAccount) -> set[str]:
    # Downloaded once is enough: a copy moved or deleted here is not fetched again.
    return set(Pop3Download.objects.filter(account=account).values_list("uidl", flat=True))


def download_new(
    client: poplib.POP3, inbox: Folder, server: ServerList, token: str, report: SyncReport
) -> None:
    account = inbox.account
    kept = _kept_uidls(account)
    new = sorted(
        ((number, uidl) for uidl, number in server.numbers.items() if uidl not in kept),
        reverse=True,  # newest first, so that the first screenful shows while older mail follows
    )
    for index, (number, uidl) in enumerate(new):
        if index and index % RENEW_EVERY == 0:
            renew_lease(account, token)
        try:
            with _step(account, "RETR"):
                raw = retrieve(client, number)
        except poplib.error_proto as exc:
            # Gone meanwhile (another client's session), say: the next pass will tell.
            report.warnings.append(f"{uidl}:retr-refused:{_reply_text(exc)}")
            continue
        store_copy(inbox, uidl, raw, server.numbers.keys(), report)


def store_copy(
    inbox: Folder, uidl: str, raw: bytes, on_server: Collection[str], report: SyncReport
) -> None:
    """Store the message and its copy in the Inbox in one transaction: once it commits, the
    server may delete the message."""
    account = inbox.account
    with transaction.atomic(durable=True):
        content = store_content(account, raw)
        # A server that renamed its UIDLs (a migration) offers mail kept here under new names:
        # the copy whose old UIDL the server no longer lists takes the new one.
        earlier = Message.objects.filter(folder__account=account, content=content).exclude(
            pop3_uidl=""
        )
        for message in earlier:
            if message.pop3_uidl not in on_server:
                message.pop3_uidl = uidl
                message.save(update_fields=["pop3_uidl"])
                Pop3Download.objects.get_or_create(account=account, uidl=uidl)
                report.warnings.append(f"{uidl}:uidl-renamed")
                return
        Pop3Download.objects.get_or_create(account=account, uidl=uidl)
        try:
            with transaction.atomic():
                Message.objects.create(
                    folder=inbox,
                    content=content,
                    conversation_id=content.conversation_id,
                    pop3_uidl=uidl,
                    seen=False,
                    date=content.date or timezone.now(),
                )
        except IntegrityError:
            return  # a concurrent writer stored the same copy
    report.fetched += 1
    report.warnings.extend(f"{uidl}:{warning}" for warning in content.parse_warnings[:3])


# Deleting on the server --------------------------------------------------------------------------


def to_delete(account: MailAccount, server: ServerList) -> list[str]:
    """The UIDLs to DELE: only among those downloaded and committed here."""
    leave = account.pop3_leave_on_server
    days = account.pop3_delete_after_days
    if leave and days is None and not account.pop3_delete_when_deleted:
        return []
    cutoff = timezone.now() - timedelta(days=days) if days is not None else None
    still_here = set(
        Message.objects.filter(folder__account=account)
        .exclude(pop3_uidl="")
        .values_list("pop3_uidl", flat=True)
    )
    doomed = []
    downloads = Pop3Download.objects.filter(account=account).values_list("uidl", "downloaded_at")
    for uidl, downloaded_at in downloads.iterator():
        if uidl not in server.numbers or uidl in server.ambiguous:
            continue
        if (
            not leave
            or (cutoff is not None and downloaded_at < cutoff)
            or (account.pop3_delete_when_deleted and uidl not in still_here)
        ):
            doomed.append(uidl)
    return doomed


def forget_gone(account: MailAccount, server: ServerList) -> None:
    """Records of mail the server no longer has serve nothing more."""
    recorded = Pop3Download.objects.filter(account=account)
    gone = [pk for pk, uidl in recorded.values_list("pk", "uidl") if uidl not in server.numbers]
    Pop3Download.objects.filter(pk__in=gone).delete()


def delete_on_server(
    client: poplib.POP3, account: MailAccount, server: ServerList, report: Pop3Report
) -> None:
    for uidl in sorted(set(to_delete(account, server)), key=server.numbers.__getitem__):
        try:
            with _step(account, "DELE"):
                client.dele(server.numbers[uidl])
        except poplib.error_proto as exc:
            report.warnings.append(f"{uidl}:dele-refused:{_reply_text(exc)}")
            continue
        report.deleted_on_server += 1


def _save_counts(inbox: Folder) -> None:
    inbox.total_count = inbox.messages.count()
    inbox.unread_count = inbox.messages.filter(seen=False).count()
    inbox.fully_synced = True
    inbox.last_synced_at = timezone.now()
    inbox.save(update_fields=["total_count", "unread_count", "fully_synced", "last_synced_at"])
