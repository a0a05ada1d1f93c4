from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from imapclient import IMAPClient

from accounts.models import User
from mailboxes import indexing, services
from mailboxes.models import MailAccount
from mailcore import connect
from mailcore.samples import generate_messages

REPO = Path(settings.BASE_DIR)
SCRIPT = REPO / "mailstack" / "mailstack"
# The demo's two mailboxes on the local mail stack (mailstack/users), and their Courrier users.
DEMO_USERS = {
    "demo@courrier.test": "demo-password",
    "demo2@courrier.test": "demo2-password",
}
# Courrier's own password for the demo users: printed, local trials only.
DEMO_SIGN_IN_PASSWORD = "courrier-demo-2026"  # noqa: S105 -- public on purpose, demo only


class Command(BaseCommand):
    help = (
        "Local trials only: start the project's mail stack, fill a demo mailbox with sample mail "
        "and create two demo users with their accounts. Without the mail stack, say how to add "
        "a real account."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--messages", type=int, default=300)
        parser.add_argument("--port", default="8000", help="the web server's port, to print")

    def handle(self, *args: Any, messages: int, port: str, **options: Any) -> None:
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("The demo is for local trials; it refuses to run in production.")
        url = f"http://127.0.0.1:{port}/"
        state = self._start_mail_stack()
        if state is None:
            self.stdout.write(
                f"Courrier runs at {url} without a demo mailbox (the local mail stack needs "
                "Dovecot, Postfix and dnsmasq, and root: `make test` installs them). Sign up, "
                "then add your own account under Mail accounts."
            )
            return
        ca_file = Path(settings.DATA_DIR) / "mail-ca.pem"
        shutil.copyfile(state["MAILSTACK_CA_FILE"], ca_file)
        with self.settings_for(ca_file):
            host = state["MAILSTACK_HOST"]
            imaps = int(state["MAILSTACK_IMAPS_PORT"])
            submissions = int(state["MAILSTACK_SUBMISSIONS_PORT"])
            self._fill(host, imaps, str(ca_file), messages)
            for address, password in DEMO_USERS.items():
                account = self._demo_account(address, password, host, imaps, submissions)
                report = services.sync_one(account)
                indexing.index_account(account)
                self.stdout.write(f"{address}: {report.fetched} messages synced")
        self.stdout.write(
            f"Demo ready at {url}: sign in as demo@courrier.test (or demo2@courrier.test to "
            f"write to the first) with the password {DEMO_SIGN_IN_PASSWORD}"
        )

    def settings_for(self, ca_file: Path) -> Any:
        from django.test.utils import override_settings

        return override_settings(MAIL_CA_FILE=str(ca_file))

    def _start_mail_stack(self) -> dict[str, str] | None:
        if not shutil.which("dovecot") and not Path("/usr/sbin/dovecot").exists():
            return None
        # The project's own script, no user input in the command line.
        started = subprocess.run(  # noqa: S603
            [str(SCRIPT), "up"], capture_output=True, text=True, check=False
        )
        if started.returncode != 0:
            self.stderr.write(f"The mail stack did not start: {started.stderr.strip()[-500:]}")
            return None
        listed = subprocess.run(  # noqa: S603
            [str(SCRIPT), "env"], capture_output=True, text=True, check=True
        )
        return dict(line.split("=", 1) for line in listed.stdout.splitlines() if "=" in line)

    def _fill(self, host: str, port: int, ca_file: str, count: int) -> None:
        """Sample mail into the first demo mailbox, once: a filled mailbox is left as it is."""
        address, password = next(iter(DEMO_USERS.items()))
        with IMAPClient(host, port=port, ssl_context=connect.ssl_context(ca_file)) as client:
            client.login(address, password)
            client.select_folder("INBOX")
            if client.search("ALL"):
                return
            existing = {str(name) for _flags, _delim, name in client.list_folders()}
            for message in generate_messages(count, folders=6, seed=2026):
                if message.folder not in existing:
                    client.create_folder(message.folder)
                    existing.add(message.folder)
                flags = [f"\\{name}" for letter, name in FLAG_LETTERS if letter in message.flags]
                client.append(
                    message.folder,
                    message.data.replace(b"\n", b"\r\n"),
                    flags=flags,
                    msg_time=message.date,
                )

    def _demo_account(
        self, address: str, password: str, host: str, imaps: int, submissions: int
    ) -> MailAccount:
        user = User.objects.filter(email=address).first()
        if user is None:
            user = User.objects.create_user(address, DEMO_SIGN_IN_PASSWORD)
            EmailAddress.objects.create(user=user, email=address, verified=True, primary=True)
        account, _created = MailAccount.objects.get_or_create(
            user=user,
            email=address,
            defaults={
                "display_name": address.split("@")[0].title(),
                "incoming_host": host,
                "incoming_port": imaps,
                "username": address,
                "password": password,
                "smtp_host": host,
                "smtp_port": submissions,
            },
        )
        return account


FLAG_LETTERS = (("D", "Draft"), ("F", "Flagged"), ("R", "Answered"), ("S", "Seen"))
