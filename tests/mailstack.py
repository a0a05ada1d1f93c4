"""Pytest plugin: the real mail stack of `mailstack/mailstack` (Dovecot, Postfix, dnsmasq).

Load it with `pytest_plugins = ["tests.mailstack"]`; a test asks for the `mailstack` fixture.
No Django here: the fixture is for plain protocol tests as much as for the web app's.
"""

from __future__ import annotations

import shlex
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient

SCRIPT = Path(__file__).resolve().parent.parent / "mailstack" / "mailstack"
# Special-use folders that Dovecot creates on first login (dovecot.conf); never deleted here.
SPECIAL_FOLDERS = frozenset({"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"})


@dataclass(frozen=True)
class MailStack:
    """Where the running stack listens, and helpers for what tests keep doing with it."""

    host: str
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    lmtp_port: int
    smtp_port: int
    submission_port: int
    submissions_port: int
    dns_port: int
    ca_file: Path
    dkim_private_key: Path
    dkim_selector: str
    dkim_domain: str
    state_dir: Path
    users: dict[str, str] = field(hash=False)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> MailStack:
        """Build from `mailstack env` output (already parsed into a dict)."""
        users = {}
        for line in Path(env["MAILSTACK_USERS_FILE"]).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                address, password = line.split()
                users[address] = password
        return cls(
            host=env["MAILSTACK_HOST"],
            imap_port=int(env["MAILSTACK_IMAP_PORT"]),
            imaps_port=int(env["MAILSTACK_IMAPS_PORT"]),
            pop3_port=int(env["MAILSTACK_POP3_PORT"]),
            pop3s_port=int(env["MAILSTACK_POP3S_PORT"]),
            lmtp_port=int(env["MAILSTACK_LMTP_PORT"]),
            smtp_port=int(env["MAILSTACK_SMTP_PORT"]),
            submission_port=int(env["MAILSTACK_SUBMISSION_PORT"]),
            submissions_port=int(env["MAILSTACK_SUBMISSIONS_PORT"]),
            dns_port=int(env["MAILSTACK_DNS_PORT"]),
            ca_file=Path(env["MAILSTACK_CA_FILE"]),
            dkim_private_key=Path(env["MAILSTACK_DKIM_PRIVATE_KEY"]),
            dkim_selector=env["MAILSTACK_DKIM_SELECTOR"],
            dkim_domain=env["MAILSTACK_DKIM_DOMAIN"],
            state_dir=Path(env["MAILSTACK_DIR"]),
            users=users,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the stack's CA only and checks host names."""
        return ssl.create_default_context(cafile=self.ca_file)

    def imap(self, address: str) -> IMAPClient:
        """An IMAPS session logged in as `address`; use it as a context manager to log out."""
        client = IMAPClient(self.host, port=self.imaps_port, ssl_context=self.ssl_context())
        client.login(address, self.users[address])
        return client

    def deliver(
        self,
        message: bytes | EmailMessage,
        to: str | Iterable[str],
        sender: str = "postmaster@courrier.test",
    ) -> None:
        """Put a message straight into mailboxes over LMTP; it is stored when this returns.

        Bypasses Postfix (use `smtp_port` for that). An unknown recipient raises
        smtplib.SMTPRecipientsRefused.
        """
        raw = message.as_bytes() if isinstance(message, EmailMessage) else message
        recipients = [to] if isinstance(to, str) else list(to)
        # One recipient per transaction: LMTP answers DATA once per recipient and smtplib reads
        # only the first of those replies.
        for recipient in recipients:
            with smtplib.LMTP(self.host, self.lmtp_port, timeout=10) as lmtp:
                lmtp.sendmail(sender, [recipient], raw)

    def wait_for_message(
        self,
        address: str,
        message_id: str,
        folder: str = "INBOX",
        timeout: float = 10.0,
        delete: bool = False,
    ) -> bytes:
        """Wait (IMAP IDLE, bounded) until the message with this Message-ID is in the folder.

        Returns the raw message; `delete=True` also removes it, for tests that clean up after
        themselves. Needed for mail sent through Postfix, which delivers asynchronously.
        """
        deadline = time.monotonic() + timeout
        with self.imap(address) as client:
            client.select_folder(folder, readonly=not delete)
            while True:
                uids = client.search(["HEADER", "Message-ID", message_id])
                if uids:
                    raw: bytes = client.fetch(uids[:1], ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
                    if delete:
                        client.delete_messages(uids)
                        client.expunge(uids)
                    return raw
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{message_id} did not reach {address}/{folder}")
                # IDLE returns on the first EXISTS, which may be another test's message: loop.
                client.idle()
                client.idle_check(timeout=min(remaining, 1.0))
                client.idle_done()

    def clear_mailbox(self, address: str) -> None:
        """Empty every folder of `address` and delete folders other than the special ones."""
        with self.imap(address) as client:
            # Deepest first: Dovecot refuses to delete a folder that still has children.
            folders = sorted(client.list_folders(), key=folder_depth, reverse=True)
            for flags, _delimiter, name in folders:
                if b"\\NonExistent" in flags or b"\\Noselect" in flags:
                    continue  # a parent implied by its children; it goes with them
                if name not in SPECIAL_FOLDERS:
                    client.delete_folder(name)
                    continue
                selected = client.select_folder(name)
                if selected.get(b"EXISTS"):
                    # A range, not a list of UIDs: Dovecot refuses a command line as long as
                    # the UIDs of a benchmark's hundred thousand messages.
                    client.delete_messages("1:*", silent=True)
                    client.expunge()


def folder_depth(folder: tuple[tuple[bytes, ...], bytes | None, str]) -> int:
    """How deep a folder of IMAPClient.list_folders() is nested."""
    _flags, delimiter, name = folder
    return name.count(delimiter.decode()) if delimiter else 0


def run_mailstack(command: str) -> str:
    """Run the stack script; fail the test session with its own error message if it fails."""
    result = subprocess.run(
        [str(SCRIPT), command], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"mailstack/mailstack {command} failed:\n{result.stdout}{result.stderr}", pytrace=False
        )
    return result.stdout


def parse_env(output: str) -> dict[str, str]:
    env = {}
    for line in output.splitlines():
        key, _, value = line.partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def start_mailstack() -> MailStack:
    """Start the stack (a running one with the same config is reused) and describe it."""
    run_mailstack("up")
    return MailStack.from_env(parse_env(run_mailstack("env")))


@pytest.fixture(scope="session")
def mailstack() -> MailStack:
    """The running mail stack. Left running after the session: the next one reuses it."""
    return start_mailstack()
