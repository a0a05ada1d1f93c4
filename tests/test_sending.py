"""Sending through the project's Postfix and Dovecot: exactly once, or back with the reason."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from accounts.models import User
from compose import drafts, sending
from compose.models import Contact, Draft
from mailboxes import indexing, sync
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from tests.conftest import make_user
from tests.mailstack import MailStack

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]

ALICE, BOB, CAROL, DAVE = (
    "alice@courrier.test",
    "bob@courrier.test",
    "carol@ecole.test",
    "dave@ecole.test",
)


class Proxy:
    """A TCP relay to Postfix that can be stopped and started: "Postfix is down" without
    stopping the stack other tests share."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener: socket.socket | None = None
        self.port = 0
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self.listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def stack(mailstack: MailStack) -> Iterator[MailStack]:
    for address in (ALICE, BOB, CAROL, DAVE):
        mailstack.clear_mailbox(address)
    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        yield mailstack


def account_of(user: User, address: str, stack: MailStack, smtp_port: int = 0) -> MailAccount:
    account = MailAccount.objects.create(
        user=user,
        email=address,
        display_name=address.split("@")[0].title(),
        incoming_host="127.0.0.1",
        incoming_port=stack.imaps_port,
        username=address,
        password=stack.users[address],
        smtp_host="127.0.0.1",
        smtp_port=smtp_port or stack.submission_port,
        smtp_security="starttls",
    )
    sync.sync_account(account)  # the folders, Sent and Drafts among them
    return account


@pytest.fixture
def alice_account(alice: User, stack: MailStack) -> MailAccount:
    return account_of(alice, ALICE, stack)


@pytest.fixture
def bob_account(bob: User, stack: MailStack) -> MailAccount:
    return account_of(bob, BOB, stack)


def write(user: User, account: MailAccount, **fields: str) -> Draft:
    draft = drafts.start(user, account)
    values = {"to": f"Bob <{BOB}>", "subject": "Bonjour", "html": "<p>Salut</p>"}
    values.update(fields)
    return drafts.save(draft, **values)


def send_now(draft: Draft) -> str:
    drafts.queue(draft, delay=0)
    return sending.send(draft.pk)


def count_in(stack: MailStack, address: str, folder: str, message_id: str) -> int:
    with stack.imap(address) as client:
        client.select_folder(folder, readonly=True)
        return len(client.search(["HEADER", "Message-ID", message_id]))


def test_alice_writes_to_bob_with_cc_bcc_an_accented_subject_and_a_file_and_bob_replies(
    alice: User,
    bob: User,
    alice_account: MailAccount,
    bob_account: MailAccount,
    stack: MailStack,
) -> None:
    draft = write(
        alice,
        alice_account,
        cc=CAROL,
        bcc=DAVE,
        subject="Réunion à l’école",
        html="<p>Bonjour <b>Bob</b>,</p><script>alert(1)</script><p>voici le compte-rendu.</p>",
    )
    drafts.attach(draft, SimpleUploadedFile("compte-rendu.pdf", b"%PDF-1.4 ...", "application/pdf"))

    assert send_now(draft) == Draft.State.DONE

    delivered = stack.wait_for_message(BOB, f"<{draft.message_id}>")
    received = email.message_from_bytes(delivered, policy=email.policy.default)
    assert str(received["Subject"]) == "Réunion à l’école"
    assert received["Cc"] == CAROL
    assert b"Bcc" not in delivered
    assert DAVE.encode() not in delivered
    assert [a.get_filename() for a in received.iter_attachments()] == ["compte-rendu.pdf"]
    html = received.get_body(("html",))
    assert html is not None
    assert "<script" not in html.get_content()
    stack.wait_for_message(CAROL, f"<{draft.message_id}>")
    stack.wait_for_message(DAVE, f"<{draft.message_id}>")  # Bcc: delivered, not shown
    assert count_in(stack, ALICE, "Sent", f"<{draft.message_id}>") == 1
    assert Contact.objects.filter(user=alice).count() == 3

    # Bob syncs, reads, answers; Alice's copy in Sent and Bob's reply make one conversation.
    sync.sync_account(bob_account)
    indexing.index_account(bob_account)
    original = Message.objects.get(
        folder__account=bob_account, content__message_id=draft.message_id
    )
    reply = drafts.start(bob, reply_to=original)
    assert reply.to == '"Alice" <alice@courrier.test>'
    assert reply.subject == "Re: Réunion à l’école"
    reply = drafts.save(
        reply, to=reply.to, subject=reply.subject, html="<p>Merci !</p>" + reply.html
    )
    assert send_now(reply) == Draft.State.DONE
    answer = email.message_from_bytes(
        stack.wait_for_message(ALICE, f"<{reply.message_id}>"), policy=email.policy.default
    )
    assert answer["In-Reply-To"] == f"<{draft.message_id}>"

    sync.sync_account(alice_account)
    threads = set(
        MessageContent.objects.filter(
            account=alice_account, message_id__in=[draft.message_id, reply.message_id]
        ).values_list("conversation_id", flat=True)
    )
    assert len(threads) == 1
    roles = set(
        Message.objects.filter(folder__account=alice_account).values_list("folder__role", flat=True)
    )
    assert roles == {Folder.Role.INBOX, Folder.Role.SENT}


def test_postfix_down_then_back_delivers_once(
    alice: User, bob_account: MailAccount, stack: MailStack
) -> None:
    proxy = Proxy(stack.host, stack.submission_port)
    account = account_of(alice, ALICE, stack, smtp_port=proxy.port)
    draft = write(alice, account, subject="Malgré la panne")
    proxy.stop()

    assert send_now(draft) == Draft.State.RETRYING
    draft.refresh_from_db()
    assert draft.attempts == 1
    assert "refused" in draft.last_error

    proxy.start()
    Draft.objects.filter(pk=draft.pk).update(send_at=draft.created_at)  # its retry is due
    assert sending.due_ids() == [draft.pk]
    assert sending.send(draft.pk) == Draft.State.DONE
    assert sending.send(draft.pk) == ""  # a duplicate task finds nothing to do

    stack.wait_for_message(BOB, f"<{draft.message_id}>")
    assert count_in(stack, BOB, "INBOX", f"<{draft.message_id}>") == 1
    proxy.stop()


def test_a_refused_recipient_sends_the_message_back_to_drafts_with_the_reason(
    alice: User, alice_account: MailAccount
) -> None:
    draft = write(alice, alice_account, to="nobody@courrier.test")

    assert send_now(draft) == Draft.State.DRAFT

    draft.refresh_from_db()
    assert "550" in draft.last_error
    assert "nobody@courrier.test" in draft.last_error
    assert draft.raw_path == ""  # rebuilt once corrected


def test_a_worker_killed_after_the_server_accepted_neither_resends_nor_files_twice(
    alice: User, alice_account: MailAccount, stack: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = write(alice, alice_account, subject="Une seule fois")
    drafts.queue(draft, delay=0)

    def killed(draft: Draft, raw: bytes) -> None:
        raise SystemExit("worker killed")  # not an Exception: nothing catches it

    monkeypatch.setattr(sending, "file_sent_copy", killed)
    with pytest.raises(SystemExit):
        sending.send(draft.pk)
    draft.refresh_from_db()
    assert draft.state == Draft.State.ACCEPTED

    monkeypatch.undo()
    assert sending.due_ids() == [draft.pk]
    assert sending.send(draft.pk) == Draft.State.DONE
    # And if the Sent copy went in but the worker died before recording it:
    Draft.objects.filter(pk=draft.pk).update(state=Draft.State.ACCEPTED)
    assert sending.send(draft.pk) == Draft.State.DONE

    stack.wait_for_message(BOB, f"<{draft.message_id}>")
    assert count_in(stack, BOB, "INBOX", f"<{draft.message_id}>") == 1
    assert count_in(stack, ALICE, "Sent", f"<{draft.message_id}>") == 1


def test_undo_takes_a_queued_message_back_before_it_goes(
    alice: User, alice_account: MailAccount
) -> None:
    draft = write(alice, alice_account)
    drafts.queue(draft, delay=10)

    assert drafts.undo(draft)
    assert sending.send(draft.pk) == ""  # the task that was waiting finds a draft: nothing
    draft.refresh_from_db()
    assert draft.state == Draft.State.DRAFT
    assert not drafts.undo(draft)


@pytest.mark.parametrize(
    ("field", "value"),
    [("to", "bob@courrier.test\r\nBcc: x@evil.test"), ("cc", "a@b.c\nX: y"),
     ("bcc", "a@b.c\rX: y"), ("subject", "Hi\r\nBcc: x@evil.test")],
)  # fmt: skip
def test_a_line_break_in_any_field_is_refused_before_anything_is_queued(
    alice: User, alice_account: MailAccount, field: str, value: str
) -> None:
    draft = write(alice, alice_account, **{field: value})

    with pytest.raises(drafts.Problem) as problem:
        drafts.queue(draft)

    assert problem.value.field == field
    draft.refresh_from_db()
    assert draft.state == Draft.State.DRAFT


def test_attachments_over_the_limit_are_refused(
    alice: User, alice_account: MailAccount, settings: object
) -> None:
    draft = write(alice, alice_account)
    settings.MAX_ATTACHMENTS_BYTES = 1000  # type: ignore[attr-defined]

    drafts.attach(draft, SimpleUploadedFile("small.txt", b"x" * 600))
    with pytest.raises(drafts.Problem):
        drafts.attach(draft, SimpleUploadedFile("big.txt", b"x" * 600))
    assert draft.attachments.count() == 1


def test_the_draft_is_kept_in_the_imap_drafts_folder_replaced_not_piled_up(
    alice: User, alice_account: MailAccount, stack: MailStack
) -> None:
    draft = write(alice, alice_account, subject="Premier jet")
    assert drafts.push_to_server(draft.pk)
    draft = drafts.save(draft, to=f"Bob <{BOB}>", subject="Deuxième jet", html="<p>mieux</p>")
    assert drafts.push_to_server(draft.pk)
    assert not drafts.push_to_server(draft.pk)  # nothing new

    with stack.imap(ALICE) as client:
        client.select_folder("Drafts", readonly=True)
        uids = client.search(["ALL"])
        assert len(uids) == 1
        raw = client.fetch(uids, ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
    assert "Deuxième jet" in str(
        email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
    )

    draft.refresh_from_db()
    assert send_now(draft) == Draft.State.DONE
    with stack.imap(ALICE) as client:
        client.select_folder("Drafts", readonly=True)
        assert client.search(["ALL"]) == []  # sent: its draft copy is gone


def test_another_users_draft_cannot_be_sent_from_an_account_not_theirs(
    alice_account: MailAccount,
) -> None:
    mallory = make_user("mallory@example.org")
    with pytest.raises(drafts.Problem):
        drafts.start(mallory)  # no account of their own
