"""Search on the embedded default (SQLite), which has no full-text index: every word must match."""

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
