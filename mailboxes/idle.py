"""Push: IMAP IDLE on each account's Inbox, turning server notifications into sync tasks.

The listener only notices; the sync (a Celery task) does the work. One thread per account keeps
one connection in IDLE; IDLE is re-issued well inside the 29 minutes RFC 2177 allows, and a lost
connection is reopened with a growing delay.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from mailboxes.models import MailAccount
from mailboxes.sync import open_imap
from mailcore import connect

logger = logging.getLogger(__name__)

IDLE_RENEW_SECONDS = 10 * 60
CHECK_SECONDS = 5.0  # how often the thread looks at its stop flag
RETRY_MAX_SECONDS = 300
# Untagged responses that mean the mailbox changed.
CHANGE_RESPONSES = {b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT", b"VANISHED"}


def watch_account(
    account: MailAccount,
    on_change: Callable[[int], None],
    stop: threading.Event,
    *,
    ready: threading.Event | None = None,
) -> None:
    """Hold IDLE on the account's Inbox until ``stop`` is set; call ``on_change`` on news.

    ``ready`` is set each time IDLE is (re)entered, so that callers and tests know the watch is
    live rather than guessing with a sleep.
    """
    delay = 1.0
    while not stop.is_set():
        try:
            client = open_imap(account)
        except connect.ConnectionFailed as failure:
            logger.info("IDLE on %s: %s; retrying in %.0f s", account.email, failure, delay)
            stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            continue
        delay = 1.0
        try:
            client.select_folder("INBOX", readonly=True)
            _idle_until_stopped(client, account, on_change, stop, ready)
        except Exception as exc:  # noqa: BLE001 -- any loss of the connection: reconnect
            logger.info("IDLE on %s lost: %r", account.email, exc)
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                client.logout()


def _idle_until_stopped(
    client: object,
    account: MailAccount,
    on_change: Callable[[int], None],
    stop: threading.Event,
    ready: threading.Event | None,
) -> None:
    while not stop.is_set():
        client.idle()  # type: ignore[attr-defined]
        if ready is not None:
            ready.set()
        started = time.monotonic()
        changed = False
        while not stop.is_set() and time.monotonic() - started < IDLE_RENEW_SECONDS:
            responses = client.idle_check(timeout=CHECK_SECONDS)  # type: ignore[attr-defined]
            if any(_is_change(response) for response in responses):
                changed = True
                break
        client.idle_done()  # type: ignore[attr-defined]
        if changed:
            on_change(account.pk)


def _is_change(response: tuple[object, ...]) -> bool:
    return any(isinstance(item, bytes) and item in CHANGE_RESPONSES for item in response)


class Debouncer:
    """Calls ``action(account_id)`` at most once per ``seconds`` per account."""

    def __init__(self, action: Callable[[int], None], seconds: float = 2.0) -> None:
        self.action = action
        self.seconds = seconds
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def __call__(self, account_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(account_id, -self.seconds) < self.seconds:
                return
            self._last[account_id] = now
        self.action(account_id)
