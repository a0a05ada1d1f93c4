from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from mailboxes import services, sync
from mailboxes.models import MailAccount, Security
from mailcore import connect


class Command(BaseCommand):
    help = "Add, list, test or remove mail accounts. Passwords come from a file or stdin."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add an account (tested first)")
        add.add_argument("--user", required=True, help="the Courrier user's address")
        add.add_argument("--email", required=True)
        add.add_argument("--name", default="", help="display name")
        add.add_argument("--protocol", choices=["imap", "pop3"], default="imap")
        add.add_argument("--host", required=True, help="incoming server")
        add.add_argument("--port", type=int)
        add.add_argument("--security", choices=[s.value for s in Security], default="tls")
        add.add_argument("--username", help="default: the address")
        add.add_argument("--smtp-host", help="default: the incoming server")
        add.add_argument("--smtp-port", type=int)
        add.add_argument("--smtp-security", choices=[s.value for s in Security], default="tls")
        add.add_argument(
            "--password-file", required=True, help="file holding the password, or - for stdin"
        )
        add.add_argument("--allow-insecure", action="store_true")
        sub.add_parser("list", help="list every account")
        test = sub.add_parser("test", help="connect to an account's servers")
        test.add_argument("email")
        remove = sub.add_parser("remove", help="remove an account and its stored mail")
        remove.add_argument("email")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_add(self, **options: Any) -> None:
        user = User.objects.filter(email__iexact=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']}.")
        password = _read_password(options["password_file"])
        security = options["security"]
        smtp_security = options["smtp_security"]
        if Security.PLAIN in (security, smtp_security) and not options["allow_insecure"]:
            raise CommandError("Plain connections need --allow-insecure.")
        default_port = {
            "imap": {"tls": 993, "starttls": 143, "plain": 143},
            "pop3": {"tls": 995, "starttls": 110, "plain": 110},
        }
        smtp_ports = {"tls": 465, "starttls": 587, "plain": 25}
        data = {
            "email": options["email"],
            "display_name": options["name"],
            "protocol": options["protocol"],
            "incoming_host": options["host"],
            "incoming_port": options["port"] or default_port[options["protocol"]][security],
            "incoming_security": security,
            "username": options["username"] or options["email"],
            "password": password,
            "smtp_host": options["smtp_host"] or options["host"],
            "smtp_port": options["smtp_port"] or smtp_ports[smtp_security],
            "smtp_security": smtp_security,
            "smtp_username": "",
            "smtp_password": "",
            "allow_insecure": options["allow_insecure"],
        }
        problems = services.check_account_settings(data)
        if problems:
            raise CommandError("; ".join(problems.values()))
        account = services.add_account(user, data)
        self.stdout.write(f"Added {account.email} for {user.email}.")

    def do_list(self, **options: Any) -> None:
        for account in MailAccount.objects.select_related("user").order_by("user__email", "email"):
            error = f"  last error: {account.last_error}" if account.last_error else ""
            self.stdout.write(
                f"{account.email}\t{account.user.email}\t{account.protocol}://"
                f"{account.incoming_host}:{account.incoming_port}{error}"
            )

    def do_test(self, email: str, **options: Any) -> None:
        account = _account(email)
        ca_file = settings.MAIL_CA_FILE or None
        for label, server in (
            ("incoming", sync.incoming_settings(vars(account))),
            ("outgoing", sync.outgoing_settings(vars(account))),
        ):
            result = connect.check_server(server, ca_file=ca_file)
            verdict = "ok" if result.ok else f"{result.problem}: {result.detail}"
            self.stdout.write(f"{label} {server.host}:{server.port}: {verdict}")
            for note in result.notes:
                self.stdout.write(f"  note: {note}")

    def do_remove(self, email: str, **options: Any) -> None:
        account = _account(email)
        services.remove_account(account)
        self.stdout.write(f"Removed {email}.")


def _account(email: str) -> MailAccount:
    accounts = list(MailAccount.objects.filter(email__iexact=email)[:2])
    if len(accounts) != 1:
        raise CommandError(f"{len(accounts) or 'No'} accounts with address {email}.")
    return accounts[0]


def _read_password(source: str) -> str:
    """Never from the command line, where other users and shell history would see it."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot read the password: {exc}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise CommandError("The password is empty.")
    return password
