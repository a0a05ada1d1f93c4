"""A message's conversation is its content's, however the content got there or moved since."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from imapclient import IMAPClient

from accounts.models import User
from mailboxes import actions, sync
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from tests.conftest import sample

pytestmark = pytest.mark.django_db

backfill_migration = importlib.import_module("mailboxes.migrations.0014_message_conversation")


def assert_copies_follow_contents() -> None:
    """Every message in the database names its content's conversation."""
    pairs = Message.objects.values_list("pk", "conversation_id", "content__conversation_id")
    assert [pk for pk, mine, contents in pairs if mine != contents] == []


def message_id(raw: bytes) -> str:
    return next(
        line.split(b":", 1)[1].strip().decode()
        for line in raw.splitlines()
        if line.lower().startswith(b"message-id:")
    )


@pytest.mark.mailstack
def test_copies_follow_their_contents_when_a_late_parent_merges_conversations(
    account: MailAccount, server: IMAPClient, alice: User
) -> None:
    grandparent = sample(2, "Depart")
    question = sample(3, "Question", References=message_id(grandparent))  # synced last
    server.append("INBOX", sample(1, "Reponse", In_Reply_To=message_id(question)))
    sync.sync_account(account)
    server.append("INBOX", grandparent)
    sync.sync_account(account)
    contents = MessageContent.objects.filter(account=account)
    assert contents.get(subject="Reponse 1").conversation_id < (
        contents.get(subject="Depart 2").conversation_id
    )
    # The parent links the two conversations; it comes in the same batch as a copy of the
    # grandparent, whose conversation it merges away.
    server.append("Archive", question)
    server.append("Archive", grandparent)
    sync.sync_account(account)

    conversations = set(contents.values_list("conversation_id", flat=True))
    assert len(conversations) == 1
    assert Message.objects.filter(folder__account=account).count() == 4
    assert_copies_follow_contents()

    # A move keeps the row's content, so its conversation.
    archived = Message.objects.filter(folder__role=Folder.Role.ARCHIVE)
    inbox = account.folders.get(role=Folder.Role.INBOX)
    assert actions.move_messages(alice, list(archived.values_list("pk", flat=True)), inbox) == 2
    assert_copies_follow_contents()


def test_the_migration_fills_every_message_from_its_content(local_message: Message) -> None:
    Message.objects.update(conversation=None)

    backfill_migration.backfill(django_apps, None)  # one UPDATE through the ORM: no schema editor

    local_message.refresh_from_db()
    assert local_message.conversation_id is not None
    assert_copies_follow_contents()


@pytest.fixture
def local_message(alice: User) -> Message:
    account = MailAccount.objects.create(
        user=alice, email="alice@example.org", incoming_host="localhost", username="alice",
        password="x", smtp_host="localhost",
    )  # fmt: skip
    inbox = Folder.objects.create(account=account, name="INBOX", role=Folder.Role.INBOX)
    content = sync.store_content(account, sample(1))
    return Message.objects.create(folder=inbox, content=content, date=content.date)
