"""Sending benchmark: Courrier's outbox through Postfix, plain and DKIM-signed, against a bare
smtplib loop sending the same messages in the same run.

Run by hand, as root, with the test mail stack's packages and PostgreSQL on 127.0.0.1:5432:

    .venv/bin/python bench/send.py --messages 500 [--seed 1] [--keep] [--sqlite] [--profile F]

Needs requirements.txt installed in the venv (dkimpy[ed25519] among them).

Every engine sends its own copy of the same N generated messages (a few KB of text, one in five
with a 100 KB attachment) from alice@courrier.test to bench@courrier.test through Postfix's
submission port (STARTTLS, AUTH, the stack's CA), and the benchmark waits until Dovecot holds all
N (IMAP SEARCH on a tag in the subject). Engines: one smtplib connection and `sendmail` per
prebuilt message; then `compose.sending.send(draft_id)` per queued Draft (made through the ORM
outside the timing), plain, with the Sent copy skipped, and DKIM-signed with a fresh RSA-2048,
then Ed25519, key of the domains app (the signer it registers with `compose.dkim.register`:
relaxed/relaxed, dkimpy). Prints one table, then the cost of each step in wall and CPU time.
See bench/README.md ("The send benchmark"). Never run by the tests.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import create_database, drop_database, fmt  # noqa: E402
from tests.mailstack import MailStack, parse_env  # noqa: E402

if TYPE_CHECKING:
    from domains.models import DkimKey
    from mailboxes.models import MailAccount

ALICE = "alice@courrier.test"
BENCH = "bench@courrier.test"  # its own mailbox: tests use the others
DOMAIN = "courrier.test"
MAILSTACK = REPO / "mailstack" / "mailstack"
ATTACHMENT_EVERY = 5  # one message in five carries the attachment
ATTACHMENT_BYTES = 100 * 1024
POLL_SECONDS = 0.05
WARM_UP = 5  # messages sent through Courrier before the timed passes, not counted

VOCABULARY = (
    "le la les un une des du de et à en pour avec sans sur dans par que qui ne pas plus "
    "réunion projet équipe budget semaine lundi mardi jeudi vendredi dossier compte rendu "
    "rapport facture devis client livraison planning école classe parents sortie musée "
    "merci bonjour cordialement question réponse suite point ordre jour proposition "
    "the meeting schedule report please find attached below regards thanks next week "
    "draft review update version deadline budget figures quarter team office"
)
WORDS = VOCABULARY.split()
SUBJECTS = (
    "Compte-rendu de la réunion du {n}",
    "Facture n° {n}",
    "Planning de la semaine {n}",
    "Re: sortie au musée ({n})",
    "Devis {n} : livraison",
    "Quarterly report, draft {n}",
    "Fwd: école — réunion des parents {n}",
)


@dataclass
class Sample:
    """One generated message: what a user would have typed, and maybe a file."""

    subject: str
    html: str
    text: str
    attachment: bytes | None


@dataclass
class Figures:
    """One engine's run; seconds from the start of its timed loop."""

    label: str
    courrier: bool
    loop_seconds: float = 0.0
    delivered_seconds: float | None = None
    steps: Counter[str] = field(default_factory=Counter)  # wall seconds spent in each step
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds of this process, the same
    loop_cpu: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    sent_copies: int | None = None
    load: float = 0.0  # the machine's 1-minute load average at the end of the pass
    note: str = ""

    @property
    def without_sent_copy(self) -> float | None:
        return self.loop_seconds - self.steps["sent copy"] if self.courrier else None


def say(text: str) -> None:
    print(text, flush=True)


def run(command: list[str]) -> str:
    # S603: our own mailstack script, with fixed arguments.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# The messages -------------------------------------------------------------------------------------


def generate(count: int, seed: int) -> list[Sample]:
    """The same `count` messages for every engine: 2 to 6 KB of text, one in five with a file."""
    rng = random.Random(seed)  # noqa: S311 -- sample text, not secrets
    samples = []
    for index in range(count):
        target = rng.randint(2000, 6000)
        paragraphs: list[str] = []
        size = 0
        while size < target:
            words = rng.choices(WORDS, k=rng.randint(20, 80))
            paragraph = " ".join(words).capitalize() + "."
            paragraphs.append(paragraph)
            size += len(paragraph.encode())
        html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        subject = rng.choice(SUBJECTS).format(n=index + 1)
        attachment = rng.randbytes(ATTACHMENT_BYTES) if index % ATTACHMENT_EVERY == 0 else None
        samples.append(Sample(subject, html, "\n\n".join(paragraphs), attachment))
    return samples


def tagged(subject: str, tag: str) -> str:
    """The subject with the pass's tag, which IMAP SEARCH SUBJECT finds in Dovecot."""
    return f"{subject} [{tag}]"


# Timing the steps of compose.sending ------------------------------------------------------------


@contextmanager
def timed_steps(figures: Figures, skip_sent_copy: bool = False) -> Iterator[None]:
    """Wrap the outbox's steps in timers, for as long as the context lasts.

    Each wrapped function is called through its module's attribute (`sending.send` calls
    `freeze`, `submit`, `file_sent_copy` as globals; they call `dkim.sign`, `connect.open_smtp`,
    `connect.open_imap`; the domains signer calls `dkimkeys.sign`; both openers call
    `ssl_context`), so replacing the attribute times every call. Steps nest: "submit" includes
    "SMTP connect", which includes its own "TLS context" (recorded under the step it ran in).
    """
    from compose import dkim, sending
    from mailcore import connect, dkimkeys

    patches: list[tuple[Any, str, Any]] = []
    running: list[str] = []

    def wrap(
        module: Any, name: str, label: str, replacement: Callable[..., Any] | None = None
    ) -> None:
        original = getattr(module, name)
        target = replacement or original

        def timed(*args: Any, **kwargs: Any) -> Any:
            key = ", ".join([*running, label])
            running.append(label)
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return target(*args, **kwargs)
            finally:
                figures.steps[key] += time.perf_counter() - started
                figures.cpu[key] += time.process_time() - cpu
                running.pop()

        patches.append((module, name, original))
        setattr(module, name, timed)

    wrap(sending, "freeze", "freeze")
    wrap(dkim, "sign", "DKIM")
    wrap(dkimkeys, "sign", "DKIM sign")
    wrap(sending, "submit", "submit")
    wrap(connect, "open_smtp", "SMTP connect")
    wrap(connect, "open_imap", "IMAP connect")
    wrap(connect, "ssl_context", "TLS context")
    skip = (lambda draft, raw: None) if skip_sent_copy else None
    wrap(sending, "file_sent_copy", "sent copy", skip)
    try:
        yield
    finally:
        for module, name, original in reversed(patches):
            setattr(module, name, original)


def breakdown(figures: Figures, cpu: bool = False) -> list[float | None]:
    """Seconds in each row of the per-step table (None: not a step of this engine): wall
    seconds, or with `cpu` the CPU seconds of this process."""
    steps = figures.cpu if cpu else figures.steps
    total = figures.loop_cpu if cpu else figures.loop_seconds
    if not figures.courrier:
        once = total - steps["sendmail"]
        return [None, None, None, None, once, steps["sendmail"], None, None, None, None, total]
    freeze = steps["freeze"]
    dkim = steps["freeze, DKIM"]
    signing = steps["freeze, DKIM, DKIM sign"]
    submit = steps["submit"]
    smtp = steps["submit, SMTP connect"]
    smtp_context = steps["submit, SMTP connect, TLS context"]
    sent = steps["sent copy"]
    imap = steps["sent copy, IMAP connect"]
    imap_context = steps["sent copy, IMAP connect, TLS context"]
    return [
        freeze - dkim,
        dkim - signing,
        signing,
        smtp_context,
        smtp - smtp_context,
        submit - smtp,
        imap_context,
        imap - imap_context,
        sent - imap,
        total - freeze - submit - sent,
        total,
    ]


BREAKDOWN_ROWS = (
    "build (MIME, file read, .eml)",
    "DKIM key lookup (query, decrypt)",
    "DKIM signing (PEM load, dkimpy)",
    "SMTP TLS context (CA store)",
    "SMTP connect, STARTTLS, AUTH",
    "SMTP MAIL, RCPT, DATA, QUIT",
    "IMAP TLS context (CA store)",
    "IMAP connect, TLS, LOGIN",
    "IMAP SELECT, SEARCH, APPEND",
    "rest (claim, updates, contacts)",
    "total",
)


# The benchmark ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = f"cb{os.getpid()}"
        self.samples = generate(args.messages, args.seed)
        self.stack: MailStack | None = None
        self.database = f"courrier_bench_{os.getpid()}"
        self.database_created = False
        self.data_dir = Path(tempfile.mkdtemp(prefix="courrier-sendbench-"))
        self.account: MailAccount | None = None
        self.results: list[Figures] = []
        self.interfered: list[str] = []
        self.sent_before = 0
        self.inbox_before = 0
        self.run_floor = self.floor = 1  # UIDs in bench's INBOX from which to look
        self.built_sizes: list[int] = []

    # The stack.

    def start_stack(self) -> MailStack:
        run([str(MAILSTACK), "up"])
        self.stack = MailStack.from_env(parse_env(run([str(MAILSTACK), "env"])))
        with self.stack.imap(ALICE) as client:
            self.sent_before = client.folder_status("Sent", [b"MESSAGES"])[b"MESSAGES"]
        with self.stack.imap(BENCH) as client:
            status = client.folder_status("INBOX", [b"MESSAGES", b"UIDNEXT"])
        self.inbox_before, self.run_floor = status[b"MESSAGES"], status[b"UIDNEXT"]
        self.floor = self.run_floor
        if self.inbox_before:
            say(
                f"note: {BENCH}'s INBOX holds {self.inbox_before} messages. bench/sync.py and"
                " bench/web.py use this mailbox too: if one of them is running, both sets of"
                " figures suffer. Only this run's messages will be removed."
            )
        return self.stack

    def mark_inbox(self) -> None:
        """Remember bench's next UID: the searches of a pass look only at what came after
        (SEARCH SUBJECT over a big mailbox left by another benchmark takes about 0.5 s)."""
        assert self.stack is not None
        with self.stack.imap(BENCH) as client:
            self.floor = client.folder_status("INBOX", [b"UIDNEXT"])[b"UIDNEXT"]

    def wait_delivered(self, tag: str, started: float, wanted: int) -> float | None:
        """Seconds from `started` until Dovecot holds the pass's `wanted` messages, or None."""
        assert self.stack is not None
        deadline = time.monotonic() + 120 + 0.2 * wanted
        with self.stack.imap(BENCH) as client:
            client.select_folder("INBOX", readonly=True)
            while True:
                client.noop()
                found = len(client.search(["UID", f"{self.floor}:*", "SUBJECT", f"[{tag}]"]))
                now = time.monotonic()
                if found >= wanted:
                    return now - started
                if now > deadline:
                    self.interfered.append(f"{tag}: {found} of {wanted} delivered")
                    say(f"WARNING: only {found} of {wanted} messages reached {BENCH} ({tag})")
                    return None
                time.sleep(POLL_SECONDS)

    def fetch_one(self, tag: str) -> bytes | None:
        """A delivered message of the pass, one with the attachment (the first sample has it)."""
        assert self.stack is not None
        with self.stack.imap(BENCH) as client:
            client.select_folder("INBOX", readonly=True)
            uids = client.search(
                ["UID", f"{self.floor}:*", "SUBJECT", f"[{tag}]", "LARGER", str(ATTACHMENT_BYTES)]
            )
            if not uids:
                return None
            data: bytes = client.fetch(uids[:1], ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
            return data

    def remove_tagged(self, address: str, folder: str, text: str, floor: int = 1) -> int:
        """Delete the pass's messages from a folder, and only them: alice's mailbox belongs to
        the tests, bench's is shared with the other benchmarks. `text`: in their subject, a
        pass's "[tag]" or the run's "[cbPID."; `floor`: the lowest UID to look at. Returns how
        many there were."""
        assert self.stack is not None
        with self.stack.imap(address) as client:
            client.select_folder(folder)
            uids = client.search(["UID", f"{floor}:*", "SUBJECT", text])
            for start in range(0, len(uids), 500):  # Dovecot refuses very long UID sets
                chunk = uids[start : start + 500]
                client.delete_messages(chunk)
                client.uid_expunge(chunk)
            return len(uids)

    # Django.

    def setup_django(self) -> MailAccount:
        assert self.stack is not None
        started = time.monotonic()
        os.environ["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
        os.environ["DATA_DIR"] = str(self.data_dir)
        os.environ["MAIL_CA_FILE"] = str(self.stack.ca_file)
        os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory
        # Tasks go to kombu's filesystem queue in DATA_DIR, which nothing consumes: eager mode
        # would run the sync that `send` enqueues after each message inside the timed loop.
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "COURRIER_MODE", "DATABASE_URL"):
            os.environ.pop(name, None)
        if not self.args.sqlite:
            os.environ["DATABASE_URL"] = create_database(self.database)
            self.database_created = True

        import django

        django.setup()
        from django.core.management import call_command

        from accounts.models import User
        from mailboxes.models import Folder, MailAccount

        call_command("migrate", verbosity=0)
        user = User.objects.create_user("alice@example.org", "not used to sign in 123")
        account = MailAccount.objects.create(
            user=user,
            email=ALICE,
            display_name="Alice",
            incoming_host=self.stack.host,
            incoming_port=self.stack.imaps_port,
            username=ALICE,
            password=self.stack.users[ALICE],
            smtp_host=self.stack.host,
            smtp_port=self.stack.submission_port,
            smtp_security="starttls",
        )
        # What a first sync would have found; without it `file_sent_copy` asks the server
        # whether "Sent" exists before every append.
        for name, role in (("INBOX", "inbox"), ("Sent", "sent"), ("Drafts", "drafts")):
            Folder.objects.create(account=account, name=name, delimiter="/", role=role)
        self.account = account
        engine = "SQLite" if self.args.sqlite else f"PostgreSQL ({self.database})"
        say(f"courrier: {engine} migrated in {time.monotonic() - started:.1f} s")
        return account

    def queue_drafts(self, tag: str, samples: list[Sample]) -> list[int]:
        """Drafts in state queued and due, as `drafts.queue` leaves them, without its task."""
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage
        from django.utils import timezone

        from compose.models import Draft, DraftAttachment
        from compose.sending import new_message_id

        account = self.account
        assert account is not None
        due = timezone.now() - timedelta(seconds=1)
        drafts = Draft.objects.bulk_create(
            Draft(
                user_id=account.user_id,
                account=account,
                from_name="Alice",
                from_email=ALICE,
                to=f"Bench <{BENCH}>",
                subject=tagged(sample.subject, tag),
                html=sample.html,
                text=sample.text,
                message_id=new_message_id(ALICE),
                state=Draft.State.QUEUED,
                send_at=due,
            )
            for sample in samples
        )
        attachments = []
        for draft, sample in zip(drafts, samples, strict=True):
            if sample.attachment is not None:
                path = default_storage.save(
                    f"drafts/{account.user_id}/{draft.pk}/attachment",
                    ContentFile(sample.attachment),
                )
                attachments.append(
                    DraftAttachment(
                        draft=draft,
                        path=path,
                        filename=f"rapport-{draft.pk}.pdf",
                        content_type="application/pdf",
                        size=len(sample.attachment),
                    )
                )
        DraftAttachment.objects.bulk_create(attachments)
        return [draft.pk for draft in drafts]

    # The engines.

    def run_smtplib(self) -> None:
        """The floor: one connection, STARTTLS and AUTH once, `sendmail` per prebuilt message."""
        from django.utils import timezone

        from compose.sending import new_message_id
        from mailcore import compose as mime_out

        assert self.stack is not None
        tag = f"{self.run_id}.e1"
        messages = []
        for index, sample in enumerate(self.samples):
            attachments = []
            if sample.attachment is not None:
                attachments.append(
                    mime_out.Attachment(
                        f"rapport-{index}.pdf", "application/pdf", sample.attachment
                    )
                )
            outgoing = mime_out.Outgoing(
                from_email=ALICE,
                from_name="Alice",
                message_id=new_message_id(ALICE),
                date=timezone.now(),
                to=[("Bench", BENCH)],
                subject=tagged(sample.subject, tag),
                text=sample.text,
                html=sample.html,
                attachments=attachments,
            )
            messages.append(mime_out.build(outgoing).as_bytes())
        self.built_sizes = [len(raw) for raw in messages]
        figures = Figures("bare smtplib, one connection", courrier=False)
        self.mark_inbox()
        started, cpu = time.monotonic(), time.process_time()
        context = self.stack.ssl_context()
        client = smtplib.SMTP(self.stack.host, self.stack.submission_port, timeout=30)
        client.ehlo()
        client.starttls(context=context)
        client.ehlo()
        client.login(ALICE, self.stack.users[ALICE])
        for raw in messages:
            sending, sending_cpu = time.perf_counter(), time.process_time()
            client.sendmail(ALICE, [BENCH], raw)
            figures.steps["sendmail"] += time.perf_counter() - sending
            figures.cpu["sendmail"] += time.process_time() - sending_cpu
        client.quit()
        figures.loop_seconds = time.monotonic() - started
        figures.loop_cpu = time.process_time() - cpu
        figures.load = os.getloadavg()[0]
        figures.states["accepted"] = len(messages)
        say(f"{figures.label}: {len(messages)} accepted in {figures.loop_seconds:.2f} s")
        figures.delivered_seconds = self.wait_delivered(tag, started, len(messages))
        self.finish(figures, tag)

    def run_courrier(
        self,
        code: str,
        label: str,
        skip_sent_copy: bool = False,
        samples: list[Sample] | None = None,
        profile: Path | None = None,
        counted: bool = True,
        dkim_key: DkimKey | None = None,
    ) -> Figures:
        """`compose.sending.send(draft_id)` for each queued Draft, as the Celery task does."""
        from compose import sending

        tag = f"{self.run_id}.{code}"
        samples = self.samples if samples is None else samples
        ids = self.queue_drafts(tag, samples)
        figures = Figures(label, courrier=True)
        self.mark_inbox()
        profiler = cProfile.Profile() if profile else None
        with timed_steps(figures, skip_sent_copy):
            started, cpu = time.monotonic(), time.process_time()
            if profiler is not None:
                profiler.enable()
            for draft_id in ids:
                figures.states[sending.send(draft_id)] += 1
            if profiler is not None:
                profiler.disable()
            figures.loop_seconds = time.monotonic() - started
            figures.loop_cpu = time.process_time() - cpu
        figures.load = os.getloadavg()[0]
        if profiler is not None and profile is not None:
            profiler.dump_stats(str(profile))
        states = ", ".join(f"{state} {count}" for state, count in figures.states.items())
        say(f"{label}: {states} in {figures.loop_seconds:.2f} s (load {figures.load:.1f})")
        if figures.states["done"] != len(ids):
            self.report_failures(ids)
        figures.delivered_seconds = self.wait_delivered(tag, started, len(ids))
        if dkim_key is not None:
            self.check_signature(tag, dkim_key)
        self.finish(figures, tag, 0 if skip_sent_copy else len(ids), counted)
        return figures

    def report_failures(self, ids: list[int]) -> None:
        from compose.models import Draft

        errors = Counter(
            Draft.objects.filter(pk__in=ids)
            .exclude(state=Draft.State.DONE)
            .values_list("last_error", flat=True)
        )
        for error, count in errors.most_common(5):
            say(f"  not done ({count}): {error[:300]}")
        self.interfered.append("some messages did not end done")

    def finish(
        self, figures: Figures, tag: str, sent_copies: int = 0, counted: bool = True
    ) -> None:
        """Record the pass; remove its delivered messages and its Sent copies."""
        if figures.delivered_seconds is not None:
            say(f"  all delivered after {figures.delivered_seconds:.2f} s")
        self.remove_tagged(BENCH, "INBOX", f"[{tag}]", self.floor)
        if figures.courrier:
            figures.sent_copies = self.remove_tagged(ALICE, "Sent", f"[{tag}]")
            if figures.sent_copies != sent_copies:
                figures.note = f"{figures.sent_copies} Sent copies, {sent_copies} expected"
                say(f"  note: {figures.note} (alice's mailbox is the tests': cleared by them?)")
        if counted:
            self.results.append(figures)

    # DKIM: the domains app's own keys and signer.

    def activate_key(self, algorithm: str) -> DkimKey:
        """A fresh key of the domains app for courrier.test, the only active one.

        Made with `domains.dkim.create_key` (cryptography), then marked active directly: the
        lifecycle would wait for DNS to show it. The domains app registered its signer with
        `compose.dkim.register` at start-up; it signs with every active key of the From domain.
        """
        from domains import dkim as domain_keys
        from domains.models import DkimKey, Domain

        domain, _created = Domain.objects.get_or_create(name=DOMAIN)
        domain.dkim_keys.filter(state=DkimKey.State.ACTIVE).update(state=DkimKey.State.RETIRED)
        key = domain_keys.create_key(domain, algorithm=algorithm, bits=2048)
        DkimKey.objects.filter(pk=key.pk).update(state=DkimKey.State.ACTIVE)
        return key

    def retire_keys(self) -> None:
        from domains.models import DkimKey

        DkimKey.objects.filter(state=DkimKey.State.ACTIVE).update(state=DkimKey.State.RETIRED)

    def check_signature(self, tag: str, key: DkimKey) -> None:
        """dkimpy verifies one delivered message (with the attachment) against the key."""
        from domains import dkim as domain_keys
        from mailcore import dkimkeys

        raw = self.fetch_one(tag)
        if raw is None:
            say("  could not fetch a signed message to check")
            return
        name, value, _strings, _zone = domain_keys.record(key)
        verdicts = dkimkeys.verify(raw, lambda asked: value.encode() if asked else None)
        verdict = "valid" if verdicts == [True] else f"NOT VALID ({verdicts})"
        say(f"  DKIM signature ({name}) of a delivered message, after Postfix: {verdict}")
        if verdicts != [True]:
            self.interfered.append(f"{tag}: the DKIM signature did not verify")

    def run_signed(self, code: str, label: str, algorithm: str, **options: Any) -> None:
        key = self.activate_key(algorithm)
        try:
            self.run_courrier(code, label, dkim_key=key, **options)
        finally:
            self.retire_keys()

    # The run.

    def run_all(self) -> None:
        assert self.stack is not None
        say(
            f"{self.args.messages} messages from {ALICE} to {BENCH} through Postfix submission"
            f" (STARTTLS, port {self.stack.submission_port}); {ALICE}'s Sent held"
            f" {self.sent_before} messages at the start"
        )
        self.run_courrier(
            "warm", "warm-up (not counted)", samples=self.samples[:WARM_UP], counted=False
        )
        self.run_smtplib()
        sizes = sorted(self.built_sizes)
        say(
            f"  messages: {len(sizes)}, median {sizes[len(sizes) // 2] / 1024:.1f} KB,"
            f" mean {sum(sizes) / len(sizes) / 1024:.1f} KB, largest {sizes[-1] / 1024:.0f} KB"
        )
        self.run_courrier("e2", "Courrier, plain")
        self.run_courrier("e3", "Courrier, plain, Sent copy skipped", skip_sent_copy=True)
        self.run_signed("e4", "Courrier, DKIM RSA-2048", "rsa")
        self.run_signed("e5", "Courrier, DKIM Ed25519", "ed25519")
        if self.args.profile:
            # Inflated by the profiler: not in the table.
            self.run_signed(
                "e6",
                "profiled: Courrier, DKIM RSA-2048",
                "rsa",
                profile=self.args.profile,
                counted=False,
            )
            self.print_profile(self.args.profile)

    def print_profile(self, path: Path) -> None:
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        say(f"\ncProfile of one Courrier pass (DKIM RSA-2048), written to {path}:")
        say(out.getvalue())

    # The tables.

    def print_tables(self) -> None:
        n = self.args.messages
        attached = sum(1 for sample in self.samples if sample.attachment is not None)
        floor = next((f for f in self.results if not f.courrier), None)
        engine = "SQLite" if self.args.sqlite else "PostgreSQL"
        say("")
        say(
            f"{n} messages ({attached} with a {ATTACHMENT_BYTES // 1024} KB attachment),"
            f" seed {self.args.seed}, Courrier on {engine}, {datetime.now(UTC):%Y-%m-%d},"
            f" {os.cpu_count()} CPUs"
        )
        header = (
            f"{'engine':<35}{'accepted s':>11}{'msg/s':>7}{'× smtplib':>10}"
            f"{'delivered s':>12}{'msg/s':>7}{'no Sent copy s':>15}{'msg/s':>7}"
            f"{'CPU ms/msg':>11}{'load':>6}"
        )
        say(header)
        say("-" * len(header))
        for figures in self.results:
            seconds = figures.loop_seconds
            ratio = seconds / floor.loop_seconds if floor and floor.loop_seconds else None
            delivered = figures.delivered_seconds
            bare = figures.without_sent_copy
            say(
                f"{figures.label:<35}{fmt(seconds):>11}{fmt(n / seconds):>7}"
                f"{(f'{ratio:.2f}' if ratio is not None else '—'):>10}"
                f"{fmt(delivered):>12}{fmt(n / delivered if delivered else None):>7}"
                f"{fmt(bare):>15}{fmt(n / bare if bare else None):>7}"
                f"{fmt(figures.loop_cpu * 1000 / n):>11}{figures.load:>6.1f}"
            )
        names = {
            "bare smtplib, one connection": "smtplib",
            "Courrier, plain": "plain",
            "Courrier, plain, Sent copy skipped": "no Sent",
            "Courrier, DKIM RSA-2048": "RSA",
            "Courrier, DKIM Ed25519": "Ed25519",
        }
        for cpu in (False, True):
            say("")
            say(
                "CPU milliseconds per message in this process, by step"
                if cpu
                else "wall milliseconds per message, by step"
            )
            header = f"{'step':<34}" + "".join(
                f"{names.get(figures.label, figures.label[:9]):>9}" for figures in self.results
            )
            say(header)
            say("-" * len(header))
            columns = [breakdown(figures, cpu) for figures in self.results]
            for row, name in enumerate(BREAKDOWN_ROWS):
                values = [column[row] for column in columns]
                say(
                    f"{name:<34}"
                    + "".join(f"{fmt(v * 1000 / n if v is not None else None):>9}" for v in values)
                )
        say(
            "(steps are timers around compose.sending's functions; smtplib: its connection,"
            " STARTTLS and AUTH once for the run, shown per message; TLS context:"
            " `mailcore.connect.ssl_context`, which loads the system CA store for every"
            " connection; CPU: time.process_time(), which load on the machine barely changes)"
        )
        if self.interfered:
            say("NOT VALID: " + "; ".join(self.interfered))

    # Cleaning up.

    def cleanup(self) -> None:
        if self.stack is not None:  # what an interrupted pass left
            self.remove_tagged(BENCH, "INBOX", f"[{self.run_id}.", self.run_floor)
            self.remove_tagged(ALICE, "Sent", f"[{self.run_id}.")
        if self.args.keep:
            say(
                f"kept: database {self.database if not self.args.sqlite else '(SQLite)'},"
                f" DATA_DIR {self.data_dir}"
            )
            return
        if self.database_created:
            drop_database(self.database)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500, help="messages per engine (500)")
    parser.add_argument("--seed", type=int, default=1, help="of the generated messages (1)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the data dir")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--profile",
        type=Path,
        help="then one more Courrier DKIM RSA pass under cProfile, into this file",
    )
    args = parser.parse_args()
    if args.messages < WARM_UP:
        raise SystemExit(f"--messages must be at least {WARM_UP}")
    if os.geteuid() != 0:
        raise SystemExit("run as root: the mail stack needs it")
    try:
        import dkim  # noqa: F401 -- only checking that requirements.txt is installed
        import nacl  # noqa: F401
    except ImportError as missing:
        message = "dkimpy[ed25519] is missing: .venv/bin/pip install -r requirements.txt"
        raise SystemExit(message) from missing
    bench = Bench(args)
    try:
        bench.start_stack()
        bench.setup_django()
        bench.run_all()
        bench.print_tables()
        if bench.interfered:
            sys.exit(1)
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
