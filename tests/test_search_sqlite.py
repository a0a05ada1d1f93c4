"""The embedded default (SQLite): search, which has no full-text index there (every word must
match), and the conversation rows of a list, summed up in SQL as on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts.models import User
from mailboxes.models import MailAccount, MessageContent
from mailboxes.search import search_contents
alice = User.objects.create_user("alice@example.org", "x" * 12)
bob = User.objects.create_user("bob@example.org", "x" * 12)
for owner, sha, text in ((alice, "1", "Réunion du conseil budget"), (alice, "2", "Lunch"),
                         (bob, "3", "budget de Bob")):
    account, _ = MailAccount.objects.get_or_create(
        user=owner, email=owner.email,
        defaults=dict(incoming_host="h", username="u", password="p", smtp_host="h"))
    MessageContent.objects.create(account=account, sha256=sha, raw_path="x", size=1,
                                  subject=text, search_text=text)
def found(query):
    return sorted(c.subject for c in search_contents(alice, query))
print(found("budget"), found("BUDGET conseil"), found("budget lunch"), found(""))
"""


def test_search_works_on_sqlite(tmp_path: Path) -> None:
    environ = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "webmail.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['Réunion du conseil budget'] ['Réunion du conseil budget'] [] []"
    )


LISTING_SCRIPT = """
import django
django.setup()
from datetime import UTC, datetime, timedelta
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts.models import User
from mail import listing
from mailboxes.models import Conversation, Folder, MailAccount, Message, MessageContent
alice = User.objects.create_user("alice@example.org", "x" * 12)
account = MailAccount.objects.create(user=alice, email="alice@example.org", incoming_host="h",
                                     username="u", password="p", smtp_host="h")
folders = {role: Folder.objects.create(account=account, name=role or "Projets", role=role)
           for role in ("inbox", "archive", "trash", "")}
thread = Conversation.objects.create(account=account, subject="Voyage")
start = datetime(2026, 11, 1, tzinfo=UTC)
for number, (role, sender, seen, keywords) in enumerate([
    ("inbox", "Dave Martin", True, []), ("archive", "Alice", True, ["Ecole"]),
    ("", "Erin", False, []), ("trash", "Spam", False, ["Pub"]), ("inbox", "Frank", True, []),
]):
    content = MessageContent.objects.create(
        account=account, sha256=str(number), raw_path="x", size=1, subject="Voyage",
        from_name=sender, conversation=thread, has_attachments=role == "trash")
    Message.objects.create(folder=folders[role], content=content, seen=seen, keywords=keywords,
                           date=start + timedelta(minutes=number))
row = listing.page(alice, listing.View("inbox")).rows[0]
print(row.count, row.unread, row.has_attachments, row.labels, row.senders)
from mailboxes.models import Keyword
Keyword.objects.create(account=account, name="Ecole")
side = listing.sidebar(alice)
counts = sorted((f.folder.name, f.unread) for a in side.accounts for f in a.folders)
print(side.inbox_unread, counts, side.labels)
"""


def test_conversation_rows_and_the_sidebar_are_summed_up_on_sqlite(tmp_path: Path) -> None:
    environ = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "webmail.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", LISTING_SCRIPT],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Four messages outside the Trash; the first sender, then the latest two. Then the
    # sidebar's written-out counts: one unread conversation in Projets and one in the Trash.
    assert result.stdout.strip().splitlines() == [
        "4 True False ['Ecole'] [('Dave', False), ('Erin', True), ('Frank', False)]",
        "0 [('Projets', 1), ('archive', 0), ('inbox', 0), ('trash', 1)] ['Ecole']",
    ]
