"""A sync process killed outright (SIGKILL) loses nothing and duplicates nothing on resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from accounts.models import User
from mailboxes import sync
from mailboxes.models import Folder, MailAccount, Message
from tests.mailstack import MailStack
from tests.test_sync import CAROL, sample

REPO = Path(__file__).resolve().parent.parent
MESSAGES = 300

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailstack]


def test_a_killed_sync_resumes_without_loss_or_duplicates(
    alice: User, mailstack: MailStack
) -> None:
    mailstack.clear_mailbox(CAROL)
    with mailstack.imap(CAROL) as client:
        for number in range(MESSAGES):
            client.append("INBOX", sample(number))
    account = MailAccount.objects.create(
        user=alice,
        email=CAROL,
        incoming_host="127.0.0.1",
        incoming_port=mailstack.imaps_port,
        username=CAROL,
        password=mailstack.users[CAROL],
        smtp_host="127.0.0.1",
        smtp_port=mailstack.submissions_port,
    )
    database = settings.DATABASES["default"]
    environ = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "MAIL_CA_FILE": str(mailstack.ca_file),
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "mailsync", "--account", CAROL],
        cwd=REPO,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored = 0
    deadline = time.monotonic() + 60
    try:
        # Kill it once it has committed a batch or two, in the middle of its work.
        while time.monotonic() < deadline and worker.poll() is None:
            stored = Message.objects.filter(folder__account=account).count()
            if stored >= sync.FIRST_BATCH:
                break
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(timeout=10)
    assert 0 < stored < MESSAGES, "the sync was not caught in the middle; raise MESSAGES"

    # The dead worker's lease has to run out before another sync may start.
    account.refresh_from_db()
    assert account.sync_lease_until is not None
    with pytest.raises(sync.AlreadySyncing):
        sync.sync_account(account)
    MailAccount.objects.filter(pk=account.pk).update(sync_lease_until=None)

    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        sync.sync_account(account)
    inbox = account.folders.get(role=Folder.Role.INBOX)
    uids = list(inbox.messages.values_list("uid", flat=True))
    assert len(uids) == MESSAGES
    assert len(set(uids)) == MESSAGES
    subjects = set(inbox.messages.values_list("content__subject", flat=True))
    assert subjects == {f"Message {number}" for number in range(MESSAGES)}
