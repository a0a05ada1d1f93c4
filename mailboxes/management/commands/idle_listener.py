from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from core.services import record_heartbeat
from mailboxes import idle, tasks
from mailboxes.models import MailAccount

RELOAD_SECONDS = 60


class Command(BaseCommand):
    help = "Push: hold IMAP IDLE on every account's Inbox and enqueue a sync when it changes."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        notify = idle.Debouncer(lambda account_id: tasks.sync_account.delay(account_id))
        watchers: dict[int, tuple[threading.Thread, threading.Event]] = {}
        while not stop.is_set():
            wanted = {
                account.pk: account
                for account in MailAccount.objects.filter(protocol=MailAccount.Protocol.IMAP)
            }
            for account_id in set(watchers) - set(wanted):  # removed accounts
                watchers.pop(account_id)[1].set()
            for account_id, account in wanted.items():
                if account_id not in watchers or not watchers[account_id][0].is_alive():
                    own_stop = threading.Event()
                    thread = threading.Thread(
                        target=idle.watch_account,
                        args=(account, notify, own_stop),
                        name=f"idle-{account_id}",
                        daemon=True,
                    )
                    thread.start()
                    watchers[account_id] = (thread, own_stop)
            record_heartbeat("idle-listener")
            stop.wait(RELOAD_SECONDS)
        for _thread, own_stop in watchers.values():
            own_stop.set()
        for thread, _own_stop in watchers.values():
            thread.join(timeout=idle.CHECK_SECONDS + 2)
        self.stdout.write("IDLE listener stopped.")
