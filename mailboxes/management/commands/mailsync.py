from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailboxes import indexing, services, sync
from mailboxes.models import MailAccount
from mailcore import connect


class Command(BaseCommand):
    help = "Sync mail accounts in the foreground and print what was done."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", help="the account's address (default: every account)")
        parser.add_argument(
            "--full", action="store_true", help="forget the sync state and compare every folder"
        )

    def handle(
        self, *args: Any, account: str | None = None, full: bool = False, **options: Any
    ) -> None:
        accounts = MailAccount.objects.all()
        if account:
            accounts = accounts.filter(email__iexact=account)
            if not accounts.exists():
                raise CommandError(f"No account {account}.")
        failed = 0
        for mail_account in accounts:
            if full:
                mail_account.folders.update(fully_synced=False, uidnext=None, highestmodseq=None)
            try:
                report = services.sync_one(mail_account)
            except (connect.ConnectionFailed, sync.AlreadySyncing) as exc:
                failed += 1
                self.stderr.write(f"{mail_account.email}: {exc!r}")
                continue
            self.stdout.write(
                f"{mail_account.email}: {report.folders} folders ({report.unchanged_folders} "
                f"unchanged), {report.fetched} new, {report.flag_updates} flag changes, "
                f"{report.removed} removed"
            )
            for warning in report.warnings[:20]:
                self.stdout.write(f"  warning: {warning}")
            indexed = indexing.index_account(mail_account)
            self.stdout.write(f"  {indexed.indexed} message bodies parsed and indexed")
        if failed:
            raise CommandError(f"{failed} account(s) failed.")
