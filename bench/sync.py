"""IMAP sync benchmark: Courrier's sync engine against mbsync on the same generated mailbox.

Run by hand, as root, with the test mail stack's packages and PostgreSQL on 127.0.0.1:5432:

    .venv/bin/python bench/sync.py --messages 2000 [--folders 10] [--keep] [--sqlite]

It fills syncbench@courrier.test's mailbox in the loopback Dovecot with a generated mailbox
(`mailcore/samples.py`: Maildir files written in place, then `doveadm force-resync`), syncs it with
`mailboxes.sync.sync_account` in a worker process (`bench/sync_worker.py`) on a throwaway
database, then with mbsync into a throwaway Maildir, and prints one table: full sync, first
screenful, no-change pass, one flag change, peak memory, against the targets. See
bench/README.md for what each figure means. Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import create_database, drop_database, fmt, mailbox_intact  # noqa: E402
from mailcore import samples as mailgen  # noqa: E402
from tests.mailstack import MailStack, parse_env  # noqa: E402

if TYPE_CHECKING:
    from mailboxes.models import MailAccount

BOB = "syncbench@courrier.test"  # its own mailbox: tests and the other benchmarks use others
MAILSTACK = REPO / "mailstack" / "mailstack"
WORKER = REPO / "bench" / "sync_worker.py"
SCREENFUL = 50
POLL_SECONDS = 0.01
MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<([^>\r\n]*)>", re.IGNORECASE | re.MULTILINE)


@dataclass
class Figures:
    """One engine's results; None where it was not measured."""

    full_seconds: float | None = None
    cpu_seconds: float | None = None  # user + system of the syncing process, during the full sync
    index_seconds: float | None = None  # Courrier: parsing the bodies after the full sync
    index_peak_mb: float | None = None
    first_screen_seconds: float | None = None
    nochange_ms: list[float] | None = None
    nochange_open_ms: list[float] | None = None
    flag_ms: list[float] | None = None
    flag_open_ms: list[float] | None = None
    peak_mb: float | None = None
    baseline_mb: float | None = None
    disk_mb: float | None = None


class Probe:
    """Something polled while a sync runs; remembers when it first came true."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self.check = check
        self.found_at: float | None = None

    def poll(self) -> None:
        if self.found_at is None and self.check():
            self.found_at = time.monotonic()


# Processes ----------------------------------------------------------------------------------------


def run(command: list[str], **kwargs: Any) -> str:
    # S603: fixed tools (mailstack script, doveadm, mbsync) with arguments built here.
    result = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def run_timed(command: list[str], log: IO[str], probe: Probe | None = None) -> tuple[float, int]:
    """Wall seconds and exit status of a command; `probe` is polled while it runs."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    if probe is None:
        status = process.wait()
    else:
        while process.poll() is None:  # costs up to POLL_SECONDS of resolution: long runs only
            probe.poll()
            time.sleep(POLL_SECONDS)
        probe.poll()
        status = process.returncode
    return time.monotonic() - started, status


def with_peak_rss(command: list[str], output: Path) -> list[str]:
    """The command under GNU time, which writes its peak RSS (KB) and CPU seconds (user, system)
    to `output`.

    Not wait4()/RUSAGE_CHILDREN here: Linux carries ru_maxrss over fork and exec, so any child
    of this ~100 MB Python process would report at least ~100 MB. GNU time is a small C parent.
    """
    return ["/usr/bin/time", "-f", "%M %U %S", "-o", str(output), *command]


class Worker:
    """A `bench/sync_worker.py` process, one command at a time."""

    def __init__(self, account_id: int, env: dict[str, str], profile: Path | None) -> None:
        command = [sys.executable, str(WORKER), "--account", str(account_id)]
        if profile:
            command += ["--profile", str(profile)]
        self.process = subprocess.Popen(  # noqa: S603 -- our own script
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self._answer(None)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _answer(self, probe: Probe | None) -> dict[str, Any]:
        while True:
            if probe is not None:
                probe.poll()
            try:
                line = self.lines.get(timeout=POLL_SECONDS if probe is not None else None)
            except queue.Empty:
                continue
            if line is None:
                raise SystemExit(f"the sync worker exited ({self.process.wait()})")
            answer: dict[str, Any] = json.loads(line)
            if "error" in answer:
                raise SystemExit(answer["error"])
            if probe is not None:
                probe.poll()
            return answer

    def command(self, command: str, probe: Probe | None = None) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer(probe)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise SystemExit(f"the sync worker failed ({self.process.returncode})")

    def kill(self) -> None:
        if self.process.returncode is None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# Helpers -----------------------------------------------------------------------------------------


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def disk_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_blocks * 512
            except FileNotFoundError:
                continue
    return total / 1e6


def maildir_files(root: Path) -> Iterator[Path]:
    for directory, _dirs, files in os.walk(root):
        if Path(directory).name in ("cur", "new"):
            for name in files:
                yield Path(directory) / name


def flagged_in_maildir(root: Path) -> int:
    return sum(1 for path in maildir_files(root) if "F" in path.name.rpartition(":2,")[2])


def next_second() -> None:
    """Wait for the wall clock's next second.

    isync 1.4 sleeps one second when a Maildir it scans was modified in the current second (it
    cannot tell later changes in that second apart), so back-to-back runs, as a benchmark makes
    them, would take a second more than runs minutes apart, as mail clients make them.
    """
    time.sleep(1.02 - time.time() % 1)


def say(text: str) -> None:
    print(text, flush=True)


# The benchmark ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)  # noqa: S311 -- picks messages to flag, not secrets
        self.stack: MailStack | None = None
        self.folders = mailgen.folder_names(args.folders)
        # Dovecot creates the special-use folders whether they hold mail or not.
        self.account_folders = len(set(self.folders) | mailgen.SPECIAL_FOLDERS)
        self.counts: Counter[str] = Counter()
        self.inbox_ids: list[str] = []  # Message-IDs of the Inbox, oldest first
        self.source_mb = 0.0
        self.database = f"courrier_bench_{os.getpid()}"
        self.database_created = False
        self.data_dir = Path(tempfile.mkdtemp(prefix="courrier-syncbench-"))
        self.mbsync_dir = Path(tempfile.mkdtemp(prefix="courrier-syncbench-mbsync-"))
        self.workers: list[Worker] = []
        self.interfered: list[str] = []
        self.account_id = 0
        self.env: dict[str, str] = {}
        self.courrier = Figures()
        self.mbsync = Figures()

    # The mailbox.

    def start_stack(self) -> MailStack:
        run([str(MAILSTACK), "up"])
        self.stack = MailStack.from_env(parse_env(run([str(MAILSTACK), "env"])))
        return self.stack

    def doveadm(self, *args: str) -> str:
        assert self.stack is not None
        return run(["doveadm", "-c", str(self.stack.state_dir / "dovecot.conf"), *args])

    def load_mailbox(self) -> None:
        stack = self.start_stack()
        stack.clear_mailbox(BOB)
        started = time.monotonic()
        with stack.imap(BOB) as client:
            for name in self.folders:
                if name not in mailgen.SPECIAL_FOLDERS:
                    client.create_folder(name)
                    client.subscribe_folder(name)
        mail = pwd.getpwnam("mail")
        directories = {}
        for name in self.folders:
            path = Path(self.doveadm("mailbox", "path", "-u", BOB, name).strip())
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
                os.chown(path / sub, mail.pw_uid, mail.pw_gid)
            directories[name] = path
        sizes: list[int] = []

        def recorded() -> Iterator[mailgen.GeneratedMessage]:
            messages = mailgen.generate_messages(
                self.args.messages, self.args.folders, self.args.seed
            )
            for message in messages:
                sizes.append(message.size)
                self.counts[message.folder] += 1
                if message.folder == "INBOX":
                    self.inbox_ids.append(message.message_id)
                yield message

        mailgen.write_maildir(recorded(), directories, (mail.pw_uid, mail.pw_gid))
        written = time.monotonic()
        self.doveadm("force-resync", "-u", BOB, "*")
        indexed = time.monotonic()
        if not self.mailbox_intact():
            raise SystemExit(f"{BOB}'s folders do not hold what was just written: in use?")
        self.source_mb = disk_mb(directories["INBOX"])
        say(
            f"mailbox: {len(sizes)} messages in {len(self.folders)} folders"
            f" ({mailgen.size_summary(sizes)})"
        )
        say(
            f"  generated and written in {written - started:.1f} s, indexed by Dovecot"
            f" (doveadm force-resync) in {indexed - written:.2f} s"
        )
        say("  " + ", ".join(f"{name} {self.counts[name]}" for name in self.folders))

    def mailbox_intact(self) -> bool:
        assert self.stack is not None
        return mailbox_intact(self.stack, BOB, {name: self.counts[name] for name in self.folders})

    def check_mailbox(self, stage: str) -> None:
        if not self.mailbox_intact():
            self.interfered.append(stage)
            say(
                f"WARNING: {BOB}'s mailbox changed {stage}. Something else uses it (the test"
                " suite does: tests/test_sign_in.py clears it, tests/test_mailstack.py delivers"
                " to it); these figures are not valid. Run the benchmark again when it is idle."
            )

    def newest_inbox(self) -> tuple[int, int]:
        """The lowest UID of the newest screenful of the Inbox, and how many messages that is."""
        assert self.stack is not None
        with self.stack.imap(BOB) as client:
            client.select_folder("INBOX", readonly=True)
            uids = sorted(client.search("ALL"))
            top = uids[-SCREENFUL:]
            fetched = client.fetch(top, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        served = set()
        for data in fetched.values():
            match = MESSAGE_ID.search(data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
            if match:
                served.add(match.group(1).decode())
        expected = {mid for mid in self.inbox_ids[-SCREENFUL:] if mid}
        if not expected <= served:
            say("warning: Dovecot's newest Inbox UIDs are not the newest generated messages")
        return (top[0] if top else 0), len(top)

    def flag_one(self) -> None:
        """Set \\Flagged on one unflagged message, as a phone would, from another connection."""
        assert self.stack is not None
        folders = [name for name in self.folders if self.counts[name]]
        weights = [self.counts[name] for name in folders]
        with self.stack.imap(BOB) as client:
            while True:
                folder = self.rng.choices(folders, weights)[0]
                client.select_folder(folder)
                uids = client.search(["UNFLAGGED"])
                if uids:
                    client.add_flags([self.rng.choice(uids)], [b"\\Flagged"])
                    return

    # Courrier.

    def setup_django(self) -> MailAccount:
        assert self.stack is not None
        started = time.monotonic()
        os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
        os.environ["DATA_DIR"] = str(self.data_dir)
        os.environ["MAIL_CA_FILE"] = str(self.stack.ca_file)
        os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "COURRIER_MODE", "DATABASE_URL"):
            os.environ.pop(name, None)
        if not self.args.sqlite:
            os.environ["DATABASE_URL"] = create_database(self.database)
            self.database_created = True
        self.env = dict(os.environ)

        import django

        django.setup()
        from django.core.management import call_command

        from accounts.models import User
        from mailboxes.models import MailAccount

        call_command("migrate", verbosity=0)
        user = User.objects.create_user("bench@example.org", "not used to sign in 123")
        account = MailAccount.objects.create(
            user=user,
            email=BOB,
            incoming_host=self.stack.host,
            incoming_port=self.stack.imaps_port,
            username=BOB,
            password=self.stack.users[BOB],
            smtp_host=self.stack.host,
            smtp_port=self.stack.submissions_port,
        )
        self.account_id = account.pk
        engine = "SQLite" if self.args.sqlite else f"PostgreSQL ({self.database})"
        say(f"courrier: {engine} migrated in {time.monotonic() - started:.1f} s")
        return account

    def database_mb(self) -> float:
        from django.db import connection

        if self.args.sqlite:
            return sum(path.stat().st_size for path in self.data_dir.glob("courrier.db*")) / 1e6
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0] / 1e6

    def run_courrier(self, threshold: int, screenful: int) -> None:
        from mailboxes.models import Conversation, Message, MessageContent

        account_id = self.account_id
        newest = Message.objects.filter(
            folder__account_id=account_id, folder__name="INBOX", uid__gte=threshold
        )
        probe = Probe(lambda: newest.count() >= screenful)
        database_before = self.database_mb()

        worker = Worker(account_id, self.env, self.args.profile)
        self.workers.append(worker)
        result = worker.command("full", probe)
        indexed = worker.command("index")
        worker.close()
        figures = self.courrier
        figures.full_seconds = result["seconds"]
        figures.cpu_seconds = result["cpu_seconds"]
        figures.index_seconds = indexed["seconds"]
        figures.index_peak_mb = indexed["maxrss_kb"] / 1024
        if probe.found_at is not None:
            figures.first_screen_seconds = probe.found_at - result["started"]
        figures.peak_mb = result["maxrss_kb"] / 1024
        figures.baseline_mb = worker.ready["maxrss_kb"] / 1024
        stored = Message.objects.filter(folder__account_id=account_id).count()
        figures.disk_mb = self.database_mb() - database_before + disk_mb(self.data_dir / "media")
        say(
            f"courrier: full sync {result['seconds']:.1f} s, fetched {result['fetched']},"
            f" stored {stored} copies of {MessageContent.objects.count()} contents in"
            f" {Conversation.objects.count()} conversations, {result['warnings']} parse warnings"
            + (" (profiled: times inflated)" if self.args.profile else "")
        )
        say(
            f"courrier: then {indexed['indexed']} bodies parsed and indexed"
            f" in {indexed['seconds']:.1f} s"
        )
        if stored != self.args.messages:
            say(f"warning: {stored} messages stored, {self.args.messages} on the server")

        worker = Worker(account_id, self.env, None)
        self.workers.append(worker)
        figures.nochange_ms, figures.nochange_open_ms = [], []
        figures.flag_ms, figures.flag_open_ms = [], []
        for command, times in (
            ("pass", figures.nochange_ms),
            ("pass-open", figures.nochange_open_ms),
        ):
            worker.command(command)  # a first pass opens the connection, warms caches
            for _ in range(self.args.repeat):
                result = worker.command(command)
                self.check_pass(result, flags=0, command=command)
                times.append(result["seconds"] * 1000)
        for command, times in (("pass", figures.flag_ms), ("pass-open", figures.flag_open_ms)):
            missed = 0
            for _ in range(self.args.repeat):
                self.flag_one()
                result = worker.command(command)
                if result["flag_updates"] == 0:
                    missed += 1  # not a time to find a change: left out of the median
                    continue
                self.check_pass(result, flags=1, command=command)
                times.append(result["seconds"] * 1000)
            if missed:
                say(
                    f"courrier: {command} missed the flag change {missed} time(s) of"
                    f" {self.args.repeat}, and found it in a later pass"
                )
        worker.close()
        say(
            f"courrier: no-change pass {fmt(median(figures.nochange_ms))} ms"
            f" ({fmt(median(figures.nochange_open_ms))} ms on an open connection),"
            f" one flag change {fmt(median(figures.flag_ms))} ms"
            f" ({fmt(median(figures.flag_open_ms))} ms)"
        )

    def check_pass(self, result: dict[str, Any], flags: int, command: str) -> None:
        if result["fetched"] or result["removed"] or result["flag_updates"] != flags:
            say(
                f"note: a {command} expected to find {flags} flag change(s) found"
                f" {result['flag_updates']}, fetched {result['fetched']}, removed"
                f" {result['removed']}"
            )

    # mbsync.

    def mbsync_config(self) -> Path:
        assert self.stack is not None
        maildir = self.mbsync_dir / "mail"
        maildir.mkdir()
        config = self.mbsync_dir / "mbsyncrc"
        # Host is a name: isync 1.4 checks the certificate's DNS names, not its IP addresses.
        config.write_text(
            f"""IMAPAccount bench
Host localhost
Port {self.stack.imaps_port}
User {BOB}
Pass {self.stack.users[BOB]}
SSLType IMAPS
CertificateFile {self.stack.ca_file}

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create Near
Sync Pull
SyncState *
"""
        )
        config.chmod(0o600)
        return config

    def run_mbsync(self) -> None:
        config = self.mbsync_config()
        maildir = self.mbsync_dir / "mail"
        command = ["mbsync", "-c", str(config), "-a", "-q"]
        log = (self.mbsync_dir / "mbsync.log").open("w")
        wanted = {mid for mid in self.inbox_ids[-SCREENFUL:] if mid}
        found: set[str] = set()
        seen: set[str] = set()

        def newest_stored() -> bool:
            for sub in ("new", "cur"):
                directory = maildir / "INBOX" / sub
                if not directory.is_dir():
                    continue
                for name in os.listdir(directory):
                    if name in seen:
                        continue
                    seen.add(name)
                    try:
                        with (directory / name).open("rb") as file:
                            match = MESSAGE_ID.search(file.read(65536).split(b"\n\n", 1)[0])
                    except FileNotFoundError:  # renamed from new/ to cur/ meanwhile
                        seen.discard(name)
                        continue
                    if match and match.group(1).decode() in wanted:
                        found.add(match.group(1).decode())
            return found >= wanted

        probe = Probe(newest_stored)
        figures = self.mbsync
        rss_file = self.mbsync_dir / "peak-rss"
        started = time.monotonic()
        seconds, status = run_timed(with_peak_rss(command, rss_file), log, probe)
        if status != 0:
            raise SystemExit(f"mbsync failed ({status}), see {log.name}")
        figures.full_seconds = seconds
        peak_kb, user, system = rss_file.read_text().split()[-3:]
        figures.peak_mb = int(peak_kb) / 1024
        figures.cpu_seconds = float(user) + float(system)
        if probe.found_at is not None:
            figures.first_screen_seconds = probe.found_at - started
        stored = sum(1 for _path in maildir_files(maildir))
        figures.disk_mb = disk_mb(maildir)
        say(f"mbsync: full sync {seconds:.1f} s, {stored} messages in the Maildir")
        if stored != self.args.messages:
            say(f"warning: mbsync stored {stored} messages, {self.args.messages} on the server")

        figures.nochange_ms, figures.flag_ms = [], []
        run_timed(command, log)  # like Courrier's: one pass before the timed ones
        for _ in range(self.args.repeat):
            next_second()
            seconds, status = run_timed(command, log)
            figures.nochange_ms.append(seconds * 1000)
        for _ in range(self.args.repeat):
            before = flagged_in_maildir(maildir)
            self.flag_one()
            next_second()
            seconds, status = run_timed(command, log)
            figures.flag_ms.append(seconds * 1000)
            if flagged_in_maildir(maildir) != before + 1:
                say("warning: mbsync's pass did not bring exactly one new \\Flagged")
        log.close()
        say(
            f"mbsync: no-change pass {median(figures.nochange_ms):.0f} ms,"
            f" one flag change {median(figures.flag_ms):.0f} ms, medians of {self.args.repeat}"
        )

    # The table.

    def print_table(self) -> None:
        courrier, mbsync = self.courrier, self.mbsync
        n = self.args.messages
        rate_c = n / courrier.full_seconds if courrier.full_seconds else None
        rate_m = n / mbsync.full_seconds if mbsync.full_seconds else None
        full_target = mbsync.full_seconds * 1.5 if mbsync.full_seconds is not None else None
        rows: list[tuple[str, float | None, float | None, str, float | None, bool]] = [
            # label, Courrier, mbsync, target text, limit, lower is better
            (
                "full sync (s)",
                courrier.full_seconds,
                mbsync.full_seconds,
                "<= 1.5x mbsync",
                full_target,
                True,
            ),
            ("  messages per second", rate_c, rate_m, "", None, False),
            (
                "  CPU of the syncing process (s)",
                courrier.cpu_seconds,
                mbsync.cpu_seconds,
                "",
                None,
                True,
            ),
            ("then bodies indexed (s)", courrier.index_seconds, None, "", None, True),
            (
                "  full sync + indexing (s)",
                (courrier.full_seconds or 0) + courrier.index_seconds
                if courrier.index_seconds is not None
                else None,
                mbsync.full_seconds,
                "",
                None,
                True,
            ),
            (
                f"newest {SCREENFUL} Inbox stored (s)",
                courrier.first_screen_seconds,
                mbsync.first_screen_seconds,
                "< 3 s",
                3.0,
                True,
            ),
            (
                "no-change pass (ms)",
                median(courrier.nochange_ms),
                median(mbsync.nochange_ms),
                f"< 50 ms ({self.account_folders} folders)",
                50.0,
                True,
            ),
            (
                "  on an open connection (ms)",
                median(courrier.nochange_open_ms),
                None,
                "< 50 ms",
                50.0,
                True,
            ),
            (
                "one flag change found (ms)",
                median(courrier.flag_ms),
                median(mbsync.flag_ms),
                "< 100 ms at 100k msgs",
                100.0,
                True,
            ),
            (
                "  on an open connection (ms)",
                median(courrier.flag_open_ms),
                None,
                "< 100 ms at 100k msgs",
                100.0,
                True,
            ),
            ("peak memory (MB)", courrier.peak_mb, mbsync.peak_mb, "< 300 MB", 300.0, True),
            ("  of which at start (MB)", courrier.baseline_mb, None, "", None, True),
            ("  after indexing (MB)", courrier.index_peak_mb, None, "< 300 MB", 300.0, True),
            ("disk used (MB)", courrier.disk_mb, mbsync.disk_mb, "", None, True),
        ]
        engine = "SQLite" if self.args.sqlite else "PostgreSQL"
        say("")
        say(
            f"{n} messages, {self.account_folders} folders, seed {self.args.seed},"
            f" Courrier on {engine}, medians of {self.args.repeat} passes"
        )
        header = f"{'metric':<32}{'Courrier':>10}{'mbsync':>10}{'ratio':>8}  {'target':<24}verdict"
        say(header)
        say("-" * len(header))
        for label, mine, theirs, target, limit, lower in rows:
            ratio = mine / theirs if mine is not None and theirs else None
            verdict = ""
            if limit is not None and mine is not None:
                verdict = "ok" if (mine <= limit if lower else mine >= limit) else "MISSED"
            say(
                f"{label:<32}{fmt(mine):>10}{fmt(theirs):>10}"
                f"{(f'{ratio:.2f}' if ratio is not None else '—'):>8}  {target:<24}{verdict}"
            )
        say(f"(Dovecot's Maildir of the account: {self.source_mb:.0f} MB)")
        if self.interfered:
            say(f"NOT VALID: {BOB}'s mailbox changed " + " and ".join(self.interfered))

    # Cleaning up.

    def cleanup(self) -> None:
        for worker in self.workers:
            worker.kill()
        if self.args.keep:
            say(
                f"kept: database {self.database if not self.args.sqlite else '(SQLite)'},"
                f" DATA_DIR {self.data_dir}, mbsync {self.mbsync_dir}, {BOB}'s mailbox"
            )
            return
        if self.database_created:
            drop_database(self.database)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.mbsync_dir, ignore_errors=True)
        if self.stack is not None:
            self.stack.clear_mailbox(BOB)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, required=True, help="messages to generate")
    parser.add_argument("--folders", type=int, default=10, help="folders holding them (10)")
    parser.add_argument("--seed", type=int, default=1, help="of the generated mailbox (1)")
    parser.add_argument("--repeat", type=int, default=5, help="timed incremental passes (5)")
    parser.add_argument("--keep", action="store_true", help="keep database, dirs and mailbox")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--skip-mbsync", action="store_true", help="measure Courrier only")
    parser.add_argument(
        "--profile", type=Path, help="cProfile Courrier's full sync into this file (slower)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the mail stack and Dovecot's Maildirs need it")
    if not shutil.which("mbsync") and not args.skip_mbsync:
        raise SystemExit("mbsync is not installed (Debian: isync); or use --skip-mbsync")
    bench = Bench(args)
    try:
        bench.load_mailbox()
        threshold, screenful = bench.newest_inbox()
        bench.setup_django()
        bench.run_courrier(threshold, screenful)
        bench.check_mailbox("during Courrier's runs")
        if not args.skip_mbsync:
            bench.run_mbsync()
            bench.check_mailbox("during mbsync's runs")
        bench.print_table()
        if bench.interfered:
            sys.exit(1)
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
