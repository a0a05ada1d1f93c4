"""One Courrier sync process for `bench/sync.py`, driven through stdin, answering on stdout.

Started by the benchmark with its environment (DATABASE_URL, DATA_DIR, MAIL_CA_FILE…) so that the
sync runs in a process of its own, like a Celery worker, and its peak memory is its own. Commands,
one a line:

- ``full`` / ``pass``: ``sync_account(account)``, which connects and logs in itself, as the
  Celery task does;
- ``pass-open``: ``sync_account(account, client)`` on a connection opened once (outside the
  timing) and kept;
- ``index``: ``indexing.index_account(account)``, the body parsing that follows a sync (the
  index task);
- ``quit``.

Each answer is a JSON line: when the pass started (``time.monotonic()``, comparable across
processes on Linux), how long it took, the `SyncReport` counts, and the peak RSS so far
(VmHWM), and the CPU time the pass took in this process (user and system, all threads).
With
``--profile FILE`` the ``full`` command runs under cProfile and the stats go to FILE.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

from mailboxes import indexing, sync  # noqa: E402
from mailboxes.models import MailAccount  # noqa: E402
from mailcore import connect  # noqa: E402


def peak_rss_kb() -> int:
    """Peak RSS of this process image (VmHWM), in KB.

    Not getrusage()'s ru_maxrss: Linux carries that high-water mark over fork and exec, so a
    process started by the ~100 MB benchmark reports at least ~100 MB whatever it does itself.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def answer(values: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(values) + "\n")
    sys.stdout.flush()


def run(account: MailAccount, client: IMAPClient | None, profile: Path | None) -> dict[str, Any]:
    profiler = cProfile.Profile() if profile else None
    cpu_started = time.process_time()  # every thread of the process
    started = time.monotonic()
    if profiler is not None:
        report = profiler.runcall(sync.sync_account, account, client)
    else:
        report = sync.sync_account(account, client)
    seconds = time.monotonic() - started
    cpu_seconds = time.process_time() - cpu_started
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    return {
        "started": started,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "folders": report.folders,
        "unchanged_folders": report.unchanged_folders,
        "fetched": report.fetched,
        "flag_updates": report.flag_updates,
        "removed": report.removed,
        "warnings": len(report.warnings),
        "maxrss_kb": peak_rss_kb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--account", type=int, required=True)
    parser.add_argument("--profile", type=Path, help="cProfile the full sync into this file")
    args = parser.parse_args()
    account = MailAccount.objects.get(pk=args.account)  # also opens the database connection
    client: IMAPClient | None = None
    answer({"ready": True, "maxrss_kb": peak_rss_kb()})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command == "pass-open" and client is None:
            client = connect.open_imap(
                sync.server_settings(account), ca_file=settings.MAIL_CA_FILE or None
            )
        if command == "index":
            started = time.monotonic()
            indexed = indexing.index_account(account)
            answer(
                {
                    "started": started,
                    "seconds": time.monotonic() - started,
                    "indexed": indexed.indexed,
                    "maxrss_kb": peak_rss_kb(),
                }
            )
        elif command in ("full", "pass"):
            answer(run(account, None, args.profile if command == "full" else None))
        elif command == "pass-open":
            answer(run(account, client, None))
        else:
            answer({"error": f"unknown command {command!r}"})
    if client is not None:
        client.logout()


if __name__ == "__main__":
    main()
