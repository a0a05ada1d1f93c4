"""Web benchmark: the webmail's pages on a big account, beside the same work done over IMAP.

Run by hand, as root, with the test mail stack's packages, PostgreSQL on 127.0.0.1:5432 and
Redis on 127.0.0.1:6379 (database 10, which must be empty):

    .venv/bin/python bench/web.py                      # 100,000 messages
    .venv/bin/python bench/web.py --messages 5000      # a quick run
    .venv/bin/python bench/web.py --keep               # keep database, data dir and mailbox
    .venv/bin/python bench/web.py --reuse courrier_webbench_1234   # measure a kept one again

It fills bench@courrier.test's mailbox in the loopback Dovecot with a generated mailbox
(`mailcore/samples.py`, Maildir files written in place, then `doveadm force-resync`), loads the
same messages into a throwaway PostgreSQL database through the sync's own storing code (without
IMAP: the bytes come from Dovecot's Maildir files, hard-linked aside first, the UIDs from its
uidlist) and the indexer, checks the load with one real sync pass, then times, in this process,
with Django's test client and a signed-in user: the Inbox page, conversations, and three
searches, 200 requests each after 10 warm-ups. The same list, message and searches are then
done directly on Dovecot over IMAPS, as Roundcube does, on a kept connection and on a fresh one
per request. One table: medians, p95, query counts, against the targets. See bench/README.md
("The web benchmark"). Never run by the tests.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import pwd
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from imapclient import IMAPClient  # noqa: E402

from bench.common import POSTGRES, create_database, drop_database, fmt, mailbox_intact  # noqa: E402
from mailcore import samples as mailgen  # noqa: E402
from mailcore.imap import fetch_range  # noqa: E402
from tests.mailstack import MailStack, parse_env  # noqa: E402

if TYPE_CHECKING:
    from django.test import Client

    from accounts.models import User
    from mailboxes.models import Folder, MailAccount

MAILBOX = "bench@courrier.test"  # no test uses it; the other benchmarks do (one at a time)
MAILSTACK = REPO / "mailstack" / "mailstack"
BATCH = 250  # messages stored per transaction, as the sync's later batches
SCREENFUL = 50  # Roundcube's default page size, and Courrier's
LIST_ITEMS = [
    "UID",
    "FLAGS",
    "RFC822.SIZE",
    "INTERNALDATE",
    "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE CONTENT-TYPE)]",
]
# Roundcube's "With attachment" filter (the option's value in its search filter menu).
ATTACHMENT = [
    "OR",
    "OR",
    "OR",
    "HEADER",
    "Content-Type",
    "application/",
    "HEADER",
    "Content-Type",
    "multipart/m",
    "HEADER",
    "Content-Type",
    "multipart/signed",
    "HEADER",
    "Content-Type",
    "multipart/report",
]
LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True)
class Search:
    label: str
    query: str  # as typed in Courrier's search box
    imap: list[Any]  # the IMAP SEARCH criteria Roundcube would send for it


# Words of mailcore.samples' French vocabulary and one of its senders; dates within its span.
SEARCHES = (
    Search("search: facture", "facture", ["TEXT", "facture"]),
    Search("search: from:marie devis", "from:marie devis", ["FROM", "marie", "TEXT", "devis"]),
    Search(
        "search: has:attachment before:",
        "has:attachment before:2025/01/01",
        [*ATTACHMENT, "BEFORE", date(2025, 1, 1)],
    ),
)


@dataclass(frozen=True)
class Snapshot:
    """A folder as the sync would see it: STATUS, flags and MODSEQs, files by UID."""

    status: dict[bytes, int]
    flags: dict[int, dict[bytes, Any]]
    files: dict[int, Path]


@dataclass(frozen=True)
class Picked:
    """A conversation to open, and its newest Inbox message: rank in UID order, size."""

    conversation_id: int
    rank: int
    size: int


@dataclass
class Row:
    label: str
    target_ms: float | None = None
    courrier: list[float] = field(default_factory=list)
    queries: int | None = None
    kept: list[float] = field(default_factory=list)
    fresh: list[float] = field(default_factory=list)
    note: str = ""


# Helpers -----------------------------------------------------------------------------------------


def run(command: list[str]) -> str:
    # S603: fixed tools (the mailstack script, doveadm, git) with arguments built here.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def say(text: str) -> None:
    print(text, flush=True)


def p95(values: list[float]) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def crlf(data: bytes) -> bytes:
    """Maildir files have LF line endings; Dovecot serves them with CRLF, as the sync gets them."""
    return LF.sub(b"\r\n", data)


def read_uidlist(directory: Path) -> dict[int, str]:
    """UID to Maildir base name, from Dovecot's `dovecot-uidlist` (version 3)."""
    lines = (directory / "dovecot-uidlist").read_text().splitlines()
    if not lines or not lines[0].startswith("3 "):
        raise SystemExit(f"{directory}/dovecot-uidlist: not a version 3 uidlist")
    names = {}
    for line in lines[1:]:
        head, _sep, name = line.partition(" :")
        names[int(head.split()[0])] = name
    return names


def maildir_files(directory: Path) -> dict[str, Path]:
    """Maildir base name (before ":2,") to the file's path."""
    found = {}
    for sub in ("cur", "new"):
        for name in os.listdir(directory / sub):
            found[name.partition(":2,")[0]] = directory / sub / name
    return found


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it."""
    if not (REPO / ".git").exists():
        return f"a copy in {REPO} (no git)"
    commit = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).strip()
    dirty = run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return commit + (" with uncommitted changes" if dirty.strip() else "")


def index_in_parallel(account_id: int, workers: int) -> int:
    """`indexing.index_account` in `workers` processes at once, as that many Celery workers
    would run it (claims skip each other's rows); how many bodies they indexed."""
    from django.db import connections

    connections.close_all()  # each child opens its own
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.map(index_worker, [account_id] * workers))


def index_worker(account_id: int) -> int:
    from mailboxes import indexing
    from mailboxes.models import MailAccount

    return indexing.index_account(MailAccount.objects.get(pk=account_id)).indexed


# The benchmark ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.address: str = args.mailbox
        self.database = args.reuse or f"courrier_webbench_{os.getpid()}"
        self.data_dir = Path(tempfile.gettempdir()) / f"courrier-webbench-{self.database}"
        self.manifest = self.data_dir / "manifest.json"
        self.database_created = False
        self.stack: MailStack | None = None
        self.folders = mailgen.folder_names(args.folders)
        self.counts: Counter[str] = Counter()
        self.interfered: list[str] = []
        self.rows: list[Row] = []
        self.queued_before = 0
        self.load: list[float] = []  # 1-minute load averages while measuring
        self.django_ready = False

    # The mailbox.

    def start_stack(self) -> MailStack:
        run([str(MAILSTACK), "up"])
        self.stack = MailStack.from_env(parse_env(run([str(MAILSTACK), "env"])))
        return self.stack

    def doveadm(self, *args: str) -> str:
        assert self.stack is not None
        return run(["doveadm", "-c", str(self.stack.state_dir / "dovecot.conf"), *args])

    def maildir(self, name: str) -> Path:
        return Path(self.doveadm("mailbox", "path", "-u", self.address, name).strip())

    def load_mailbox(self) -> None:
        stack = self.start_stack()
        stack.clear_mailbox(self.address)
        started = time.monotonic()
        with stack.imap(self.address) as client:
            for name in self.folders:
                if name not in mailgen.SPECIAL_FOLDERS:
                    client.create_folder(name)
                    client.subscribe_folder(name)
        mail = pwd.getpwnam("mail")
        directories = {}
        for name in self.folders:
            path = self.maildir(name)
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
                os.chown(path / sub, mail.pw_uid, mail.pw_gid)
            directories[name] = path
        sizes: list[int] = []

        def recorded() -> Iterator[mailgen.GeneratedMessage]:
            for message in mailgen.generate_messages(
                self.args.messages, self.args.folders, self.args.seed
            ):
                sizes.append(message.size)
                self.counts[message.folder] += 1
                yield message

        mailgen.write_maildir(recorded(), directories, (mail.pw_uid, mail.pw_gid))
        written = time.monotonic()
        self.doveadm("force-resync", "-u", self.address, "*")
        if not self.mailbox_intact():
            raise SystemExit(f"{self.address}'s folders do not hold what was just written: in use?")
        say(
            f"mailbox: {len(sizes)} messages in {len(self.folders)} folders"
            f" ({mailgen.size_summary(sizes)})"
        )
        say(
            f"  generated and written in {written - started:.0f} s, indexed by Dovecot in"
            f" {time.monotonic() - written:.1f} s; "
            + ", ".join(f"{name} {self.counts[name]}" for name in self.folders)
        )

    def mailbox_intact(self) -> bool:
        assert self.stack is not None
        return mailbox_intact(
            self.stack, self.address, {name: self.counts[name] for name in self.folders}
        )

    def ensure_mailbox(self) -> None:
        """The mailbox as loaded, filled again if it was emptied since (the other benchmarks
        share it): the same seed gives the same messages in the same order; only the UIDs
        differ, which run_imap maps."""
        if self.mailbox_intact():
            return
        say(f"{self.address}'s mailbox changed since the database was loaded: filling it again")
        expected, self.counts = self.counts, Counter()
        self.load_mailbox()
        if self.counts != expected:
            raise SystemExit("the mailbox generated again differs from the one loaded")

    def check_mailbox(self, stage: str) -> None:
        if not self.mailbox_intact():
            self.interfered.append(stage)
            say(
                f"WARNING: {self.address}'s mailbox changed {stage}. Something else uses it"
                " (bench/sync.py and bench/send.py fill and empty it too); these figures are not"
                " valid."
            )

    # Courrier: the database.

    def setup_django(self) -> None:
        assert self.stack is not None
        self.data_dir.mkdir(exist_ok=True)
        os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
        os.environ["DATA_DIR"] = str(self.data_dir)
        os.environ["MAIL_CA_FILE"] = str(self.stack.ca_file)
        os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory, and is not production
        os.environ["ALLOWED_HOSTS"] = "testserver"  # the test client's host
        os.environ["LOG_LEVEL"] = "WARNING"
        os.environ["DATABASE_URL"] = f"{POSTGRES}/{self.database}"
        for name in ("COURRIER_MODE", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"):
            os.environ.pop(name, None)  # eager tasks would reach the IMAP server in the request
        os.environ.pop("REDIS_URL", None)
        if self.args.redis:
            os.environ["REDIS_URL"] = self.args.redis  # the cache and the Celery broker
            import redis

            keys = redis.Redis.from_url(self.args.redis).dbsize()
            if keys:
                raise SystemExit(
                    f"{self.args.redis} holds {keys} keys: not ours to use and flush; pick"
                    " another with --redis"
                )
        if not self.args.reuse:
            create_database(self.database)
            self.database_created = True

        import django

        django.setup()
        from django.conf import settings

        self.django_ready = True
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise SystemExit("CELERY_TASK_ALWAYS_EAGER is on: requests would sync in-line")
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # on a reused database, what was added since

    def create_account(self) -> MailAccount:
        from accounts.models import User
        from mailboxes.models import MailAccount

        assert self.stack is not None
        user = User.objects.create_user("bench@example.org", "not used to sign in 123")
        return MailAccount.objects.create(
            user=user,
            email=self.address,
            incoming_host=self.stack.host,
            incoming_port=self.stack.imaps_port,
            username=self.address,
            password=self.stack.users[self.address],
            smtp_host=self.stack.host,
            smtp_port=self.stack.submissions_port,
        )

    def fill_database(self) -> MailAccount:
        """Store every message as the sync would, from Dovecot's files instead of a FETCH.

        First, in a few seconds, what the sync would ask the server: the folders
        (`refresh_folders` on a real connection), each folder's STATUS, flags and MODSEQs,
        and its files, hard-linked aside with their UIDs, so that another user of the
        mailbox can no longer pull them away. Then each batch goes through the sync's own
        `_store_batch` (header parse, dedupe, threading, the INSERTs) and the indexer parses
        the bodies. A real sync pass afterwards must find nothing to do.
        """
        from django.db import connection
        from django.utils import timezone

        from mailboxes import indexing, sync
        from mailboxes.models import MessageContent

        assert self.stack is not None
        account = self.create_account()
        with self.stack.imap(self.address) as client:
            client._imap.debug = 0  # see mailcore.connect._IMAPClient
            folders = [f for f in sync.refresh_folders(client, account) if f.selectable]
            snapshots = [self.snapshot(client, folder) for folder in folders]
        started = time.monotonic()
        report = sync.SyncReport()
        for folder, snapshot in zip(folders, snapshots, strict=True):
            self.store_folder(folder, snapshot, report)
        stored = time.monotonic()
        shutil.rmtree(self.data_dir / "snapshot")
        say(
            f"courrier: {report.fetched} messages stored through the sync's storing code in"
            f" {stored - started:.0f} s ({(stored - started) / max(report.fetched, 1) * 1000:.2f}"
            f" ms a message), {len(report.warnings)} parse warnings"
        )
        indexed = index_in_parallel(account.pk, self.args.index_workers)
        done = time.monotonic()
        say(
            f"courrier: {indexed} bodies parsed and indexed by {self.args.index_workers}"
            f" processes in {done - stored:.0f} s"
            f" ({(done - stored) / max(indexed, 1) * 1000:.2f} ms a message)"
        )
        if indexing.pending(account):
            raise SystemExit("some bodies were not indexed")
        with connection.cursor() as cursor:
            # What autovacuum does to a table that has stopped changing: statistics for the
            # planner, the full-text index's pending list merged, a visibility map.
            cursor.execute("VACUUM ANALYZE")
        say(f"courrier: VACUUM ANALYZE in {time.monotonic() - done:.0f} s")
        if self.mailbox_intact():
            account.refresh_from_db()
            check = sync.sync_account(account)
            if check.fetched or check.removed or check.flag_updates:
                raise SystemExit(
                    f"a sync pass after the load fetched {check.fetched}, removed"
                    f" {check.removed}, updated {check.flag_updates} flags: the load is not"
                    " what a sync stores"
                )
            say(
                f"courrier: a sync pass afterwards found nothing to do"
                f" ({check.unchanged_folders} of {check.folders} folders unchanged)"
            )
        else:
            say("courrier: the mailbox changed during the load: no sync pass to check it")
        contents = MessageContent.objects.filter(account=account).count()
        say(f"courrier: {contents} contents, database {self.database_mb():.0f} MB")
        self.manifest.write_text(
            json.dumps(
                {
                    "messages": self.args.messages,
                    "folders": self.args.folders,
                    "seed": self.args.seed,
                    "mailbox": self.address,
                    "counts": dict(self.counts),
                    "account": account.pk,
                    "loaded_at": timezone.now().isoformat(),
                }
            )
        )
        return account

    def snapshot(self, client: IMAPClient, folder: Folder) -> Snapshot:
        """What the sync would learn of a folder, and its files linked aside by UID."""
        status = client.folder_status(
            folder.name,
            [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"HIGHESTMODSEQ"],
        )
        client.select_folder(folder.name, readonly=True)
        flags = fetch_range(client, "1:*", ["FLAGS", "MODSEQ"]) if status[b"MESSAGES"] else {}
        client.unselect_folder()
        directory = self.maildir(folder.name)
        aside = self.data_dir / "snapshot" / str(folder.pk)
        aside.mkdir(parents=True)
        files = {}
        if flags:
            names = read_uidlist(directory)
            paths = maildir_files(directory)
            for uid in flags:
                files[uid] = aside / str(uid)
                try:
                    os.link(paths[names[uid]], files[uid])
                except KeyError as missing:
                    raise SystemExit(f"{folder.name} UID {uid}: no file found") from missing
                except OSError:  # another file system
                    shutil.copyfile(paths[names[uid]], files[uid])
        self.check_bytes(client, folder.name, files)
        return Snapshot(status, flags, files)

    def store_folder(self, folder: Folder, snapshot: Snapshot, report: Any) -> None:
        from django.db import transaction
        from django.utils import timezone

        from mailboxes import sync

        status, flags = snapshot.status, snapshot.flags
        folder.uidvalidity = status[b"UIDVALIDITY"]
        folder.save(update_fields=["uidvalidity"])
        uids = sorted(flags, reverse=True)  # newest first, as the sync stores them
        for start in range(0, len(uids), BATCH):
            fetched = {
                uid: {
                    b"BODY[]": crlf(snapshot.files[uid].read_bytes()),
                    b"FLAGS": flags[uid][b"FLAGS"],
                    b"MODSEQ": flags[uid][b"MODSEQ"],
                }
                for uid in uids[start : start + BATCH]
            }
            with transaction.atomic():
                # Private, but exactly what the sync does with a FETCH's answer.
                sync._store_batch(folder, fetched, report)
        folder.uidnext = status[b"UIDNEXT"]
        folder.highestmodseq = status.get(b"HIGHESTMODSEQ")
        folder.synced_down_to_uid = min(uids) if uids else None
        folder.fully_synced = True
        folder.last_synced_at = timezone.now()
        folder.total_count = status[b"MESSAGES"]
        folder.unread_count = status[b"UNSEEN"]
        folder.save()

    def check_bytes(self, client: IMAPClient, name: str, files: dict[int, Path]) -> None:
        """A few messages' file bytes (CRLF) must be what IMAP serves for their UIDs."""
        if not files:
            return
        uids = sorted(files)
        rng = random.Random(0)  # noqa: S311 -- picks messages to compare, not secrets
        picked = sorted({uids[0], uids[-1], *rng.sample(uids, min(10, len(uids)))})
        client.select_folder(name, readonly=True)
        served = client.fetch(picked, ["BODY.PEEK[]"])
        client.unselect_folder()
        for uid in picked:
            if served[uid][b"BODY[]"] != crlf(files[uid].read_bytes()):
                raise SystemExit(f"{name} UID {uid}: the Maildir file is not what IMAP serves")

    def database_mb(self) -> float:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0] / 1e6

    def reuse(self) -> MailAccount:
        from mailboxes.models import MailAccount

        if not self.manifest.exists():
            raise SystemExit(f"{self.manifest} is missing: was {self.database} kept by --keep?")
        kept = json.loads(self.manifest.read_text())
        self.args.messages, self.args.folders = kept["messages"], kept["folders"]
        self.args.seed, self.address = kept["seed"], kept.get("mailbox", MAILBOX)
        self.folders = mailgen.folder_names(self.args.folders)
        self.counts = Counter(kept["counts"])
        say(f"reusing {self.database}: {self.args.messages} messages, {self.address}")
        return MailAccount.objects.get(pk=kept["account"])

    # Courrier: the requests.

    def client(self, user: User) -> Client:
        from django.test import Client

        client = Client()
        client.force_login(user)
        return client

    def time_courrier(self, client: Client, row: Row, paths: list[str]) -> None:
        """`paths`: the warm-ups, then the timed requests, then one more to count queries."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        warmup, requests = self.args.warmup, self.args.requests
        for path in paths[:warmup]:
            self.get(client, path)
        for path in paths[warmup : warmup + requests]:
            started = time.perf_counter()
            self.get(client, path)
            row.courrier.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as queries:
            self.get(client, paths[warmup + requests])
        row.queries = len(queries)
        say(
            f"courrier: {row.label}: median {fmt(median(row.courrier))} ms,"
            f" p95 {fmt(p95(row.courrier))} ms, {row.queries} queries"
        )

    def get(self, client: Client, path: str) -> Any:
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code}")
        return response

    def pick_conversations(self, account: MailAccount, count: int) -> list[Picked]:
        """`count` different conversations of the Inbox, at random (seeded), with the rank in
        UID order of their newest Inbox message and its size."""
        from mailboxes.models import Message

        inbox = Message.objects.filter(folder__account=account, folder__role="inbox")
        rank = {uid: n for n, uid in enumerate(sorted(inbox.values_list("uid", flat=True)))}
        newest: dict[int, Picked] = {}
        for conversation_id, uid, size in (
            inbox.exclude(content__conversation=None)
            .order_by("date", "id")
            .values_list("content__conversation_id", "uid", "content__size")
        ):
            newest[conversation_id] = Picked(conversation_id, rank[uid], size)
        if len(newest) < count:
            raise SystemExit(f"{len(newest)} conversations in the Inbox, {count} needed")
        rng = random.Random(self.args.seed)  # noqa: S311 -- picks conversations, not secrets
        return rng.sample([newest[key] for key in sorted(newest)], count)

    @contextmanager
    def reading(self, account: MailAccount, conversation_ids: list[int]) -> Iterator[list[int]]:
        """The unread messages of these conversations, made unread again afterwards and their
        queued flag changes dropped, so that a reused database starts each run the same."""
        from mailboxes.models import Message, PendingAction

        unread = list(
            Message.objects.filter(
                folder__account=account, content__conversation_id__in=conversation_ids, seen=False
            ).values_list("pk", flat=True)
        )
        try:
            yield unread
        finally:
            Message.objects.filter(pk__in=unread).update(seen=False)
            PendingAction.objects.filter(account=account).delete()

    def run_courrier(self, account: MailAccount, conversations: list[Picked]) -> None:
        from mailboxes.models import PendingAction

        self.load.append(os.getloadavg()[0])

        user = account.user
        client = self.client(user)
        extra = self.args.warmup + self.args.requests + 1
        inbox = Row("Inbox page", 50.0)
        self.time_courrier(client, inbox, ["/mail/inbox/"] * extra)
        self.rows.append(inbox)

        # Opening a conversation marks it read, which queues its flags for the server and a
        # sync task: timed as it is.
        ids = [picked.conversation_id for picked in conversations]
        self.queued_before = self.queued_tasks()
        row = Row("conversation")
        with self.reading(account, ids) as unread:
            self.time_courrier(client, row, [f"/mail/conversation/{pk}/" for pk in ids[:extra]])
            pushed = PendingAction.objects.filter(account=account).count()
            row.note = (
                f"{len(unread)} unread messages in the {len(ids)} conversations;"
                f" opening them queued {pushed} flag changes for IMAP and"
                f" {self.queued_tasks() - self.queued_before} sync tasks (no worker runs them)"
            )
        say(f"courrier: {row.note}")
        self.rows.append(row)

        for search in SEARCHES:
            row = Row(search.label, 200.0)
            path = "/mail/search/?" + urlencode({"q": search.query})
            self.time_courrier(client, row, [path] * extra)
            self.rows.append(row)
        self.count_results(user)

    def count_results(self, user: User) -> None:
        from mailboxes import search

        for row, item in zip(self.rows[2:], SEARCHES, strict=True):
            found = search.search_messages(user, item.query)
            row.note = f"Courrier: {found.count()} messages match (all folders but Trash and Junk)"

    def queued_tasks(self) -> int:
        """Tasks waiting in the broker: nobody consumes them here."""
        from django.conf import settings

        if settings.CELERY_BROKER_URL.startswith("redis"):
            import redis

            return int(redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("celery"))
        return len(os.listdir(self.data_dir / "broker" / "queue"))

    def explain_and_profile(self, account: MailAccount, conversations: list[int]) -> None:
        """EXPLAIN ANALYZE of each request's slowest query; cProfile of one request of each."""
        client = self.client(account.user)
        paths = {
            "inbox": "/mail/inbox/",
            "conversation": f"/mail/conversation/{conversations[0]}/",
        }
        for number, item in enumerate(SEARCHES, 1):
            paths[f"search{number}"] = "/mail/search/?" + urlencode({"q": item.query})
        with self.reading(account, conversations[:2]):
            # A first request on a new session writes the session's records: not measured.
            self.get(client, f"/mail/conversation/{conversations[1]}/")
            for name, path in paths.items():
                self.explain_and_profile_one(client, name, path)

    def explain_and_profile_one(self, client: Client, name: str, path: str) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        if self.args.explain:
            with CaptureQueriesContext(connection) as queries:
                self.get(client, path)
            say(f"\n--- {name}: {len(queries)} queries, ms (as the client saw them)")
            for query in queries.captured_queries:
                say(f"{float(query['time']) * 1000:7.1f}  {query['sql'][:150]}")
            slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
                plan = "\n".join(line for (line,) in cursor.fetchall())
            say(f"\n--- {name}: the slowest, explained")
            say(slowest["sql"])
            say(plan)
        if self.args.profile:
            self.args.profile.mkdir(parents=True, exist_ok=True)
            profiler = cProfile.Profile()
            profiler.runcall(self.get, client, path)
            target = self.args.profile / f"{name}.prof"
            profiler.dump_stats(target)
            say(f"\n--- {name}: cProfile of one request ({target}), by cumulative time")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

    # IMAP, as Roundcube does it.

    def run_imap(self, conversations: list[Picked]) -> None:
        stack = self.stack
        assert stack is not None
        context = ssl.create_default_context(cafile=stack.ca_file)

        def connect() -> IMAPClient:
            client = IMAPClient(stack.host, port=stack.imaps_port, ssl_context=context)
            client._imap.debug = 0  # no per-line formatting: see mailcore.connect._IMAPClient
            client.login(self.address, stack.users[self.address])
            return client

        probe = connect()
        can_sort = b"SORT" in probe.capabilities()
        probe.logout()

        def listing(criteria: list[Any]) -> Callable[[IMAPClient], None]:
            def request(client: IMAPClient) -> None:
                client.select_folder("INBOX")
                if can_sort:
                    uids = client.sort(["REVERSE ARRIVAL"], criteria, "UTF-8")
                else:
                    uids = sorted(client.search(criteria, "UTF-8"), reverse=True)
                if uids:
                    client.fetch(uids[:SCREENFUL], LIST_ITEMS)

            return request

        def message(uids: Iterator[int]) -> Callable[[IMAPClient], None]:
            def request(client: IMAPClient) -> None:
                client.select_folder("INBOX")
                client.fetch([next(uids)], ["BODY.PEEK[]"])

            return request

        # The n-th UID of the Inbox is the n-th message generated for it, whatever UIDs the
        # server gave (the mailbox may have been filled again since the database was loaded).
        kept = connect()
        kept.select_folder("INBOX", readonly=True)
        server = sorted(kept.search("ALL"))
        uids = [server[picked.rank] for picked in conversations]
        sizes = kept.fetch(uids, ["RFC822.SIZE"])
        pairs = zip(uids, conversations, strict=True)
        if any(sizes[uid][b"RFC822.SIZE"] != picked.size for uid, picked in pairs):
            raise SystemExit("the Inbox's messages are not in the order they were loaded")
        work: list[tuple[Row, Callable[[], Callable[[IMAPClient], None]]]] = [
            (self.rows[0], lambda: listing(["ALL"])),
            (self.rows[1], lambda: message(iter(uids))),
        ]
        for row, item in zip(self.rows[2:], SEARCHES, strict=True):
            work.append((row, lambda item=item: listing(item.imap)))
        self.load.append(os.getloadavg()[0])
        for row, make in work:
            self.time_imap(row, row.kept, make(), kept, None)
            self.time_imap(row, row.fresh, make(), None, connect)
            say(
                f"imap: {row.label}: kept {fmt(median(row.kept))} / {fmt(p95(row.kept))} ms,"
                f" fresh {fmt(median(row.fresh))} / {fmt(p95(row.fresh))} ms"
                f" (median / p95, {len(row.kept)} and {len(row.fresh)} requests)"
            )
        for row, item in zip(self.rows[2:], SEARCHES, strict=True):
            kept.select_folder("INBOX", readonly=True)
            found = len(kept.search(item.imap, "UTF-8"))
            row.note += f"; IMAP: {found} in the Inbox"
        kept.logout()

    def time_imap(
        self,
        row: Row,
        times: list[float],
        request: Callable[[IMAPClient], None],
        kept: IMAPClient | None,
        connect: Callable[[], IMAPClient] | None,
    ) -> None:
        """Warm-ups then timed requests, within --imap-budget seconds (at least 5 timed)."""
        budget = self.args.imap_budget
        started = time.monotonic()

        def once() -> float:
            began = time.perf_counter()
            if kept is not None:
                request(kept)
            else:
                assert connect is not None
                client = connect()
                request(client)
                client.logout()
            return (time.perf_counter() - began) * 1000

        for _ in range(self.args.warmup):
            once()
            if time.monotonic() - started > budget / 10:
                break
        while len(times) < self.args.requests:
            times.append(once())
            if len(times) >= 5 and time.monotonic() - started > budget:
                break

    # The table.

    def print_table(self) -> None:
        self.load.append(os.getloadavg()[0])
        say("")
        say(f"{time.strftime('%Y-%m-%d %H:%M')}, code at {code_version()}")
        say(
            f"{self.args.messages} messages (Inbox {self.counts['INBOX']}), seed"
            f" {self.args.seed}, Courrier on PostgreSQL; ms per request: {self.args.requests}"
            f" requests after {self.args.warmup} warm-ups, fewer where n says so; load average"
            f" {' → '.join(f'{load:.1f}' for load in self.load)} on {os.cpu_count()} CPUs"
        )
        header = (
            f"{'request':<32}{'Courrier':>17}{'queries':>9}{'IMAP kept':>17}{'IMAP fresh':>17}"
            f"{'n':>5}  {'target':<16}verdict"
        )
        say(header)
        say(f"{'':<32}{'median':>9}{'p95':>8}{'':>9}" + f"{'median':>9}{'p95':>8}" * 2)
        say("-" * len(header))
        for row in self.rows:
            limit = row.target_ms
            worst = p95(row.courrier)
            verdict = ""
            if limit is not None and worst is not None:
                verdict = "ok" if worst <= limit else "MISSED"
            n = min(len(row.kept), len(row.fresh)) if row.kept else None
            shown_n = str(n) if n is not None and n < self.args.requests else ""
            say(
                f"{row.label:<32}{fmt(median(row.courrier)):>9}{fmt(worst):>8}"
                f"{(row.queries if row.queries is not None else '—'):>9}"
                f"{fmt(median(row.kept)):>9}{fmt(p95(row.kept)):>8}"
                f"{fmt(median(row.fresh)):>9}{fmt(p95(row.fresh)):>8}{shown_n:>5}  "
                f"{(f'p95 <= {limit:.0f} ms' if limit else ''):<16}{verdict}"
            )
        for row in self.rows:
            if row.note:
                say(f"{row.label}: {row.note}")
        if self.interfered:
            say(f"NOT VALID: {self.address}'s mailbox changed " + " and ".join(self.interfered))

    # Cleaning up.

    def cleanup(self) -> None:
        if self.django_ready and self.args.redis:
            from django.core.cache import cache

            try:
                cache.clear()  # the cache and the queued tasks: an empty database, as we found it
            except Exception as error:  # noqa: BLE001 -- cleaning up must not hide the result
                say(f"could not flush {self.args.redis}: {error}")
        if self.args.reuse or (self.args.keep and self.manifest.exists()):
            say(
                f"kept: database {self.database}, DATA_DIR {self.data_dir},"
                f" {self.address}'s mailbox; measure again with --reuse {self.database}"
            )
            return
        if self.database_created:
            drop_database(self.database, django_ready=self.django_ready)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.stack is not None:
            self.stack.clear_mailbox(self.address)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="to generate (100000)")
    parser.add_argument("--folders", type=int, default=10, help="folders holding them (10)")
    parser.add_argument("--seed", type=int, default=1, help="of the generated mailbox (1)")
    parser.add_argument("--requests", type=int, default=200, help="timed per row (200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first requests (10)")
    parser.add_argument(
        "--imap-budget",
        type=float,
        default=120.0,
        help="seconds per IMAP row and mode; slow searches get fewer requests (120)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/10",
        help="REDIS_URL (cache and broker), an empty database; '' for the file cache and the"
        " filesystem broker",
    )
    parser.add_argument(
        "--mailbox", default=MAILBOX, help=f"a mail stack user to fill and empty ({MAILBOX})"
    )
    parser.add_argument("--keep", action="store_true", help="keep database, data dir, mailbox")
    parser.add_argument("--reuse", metavar="DATABASE", help="measure a kept database again")
    parser.add_argument(
        "--index-workers", type=int, default=2, help="processes parsing bodies at load (2)"
    )
    parser.add_argument("--skip-imap", action="store_true", help="measure Courrier only")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest query"
    )
    parser.add_argument("--profile", type=Path, help="cProfile one request of each into DIR")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the mail stack and Dovecot's Maildirs need it")
    bench = Bench(args)
    try:
        if args.reuse:
            bench.start_stack()
            bench.setup_django()
            account = bench.reuse()
        else:
            bench.load_mailbox()
            bench.setup_django()
            account = bench.fill_database()
        count = args.warmup + args.requests + 1
        conversations = bench.pick_conversations(account, count)
        bench.run_courrier(account, conversations)  # the mail server plays no part in it
        if not args.skip_imap:
            bench.ensure_mailbox()
            bench.run_imap(conversations)
            bench.check_mailbox("during the IMAP requests")
        bench.print_table()
        if args.explain or args.profile:
            bench.explain_and_profile(account, [p.conversation_id for p in conversations])
        if bench.interfered:
            sys.exit(1)
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
