"""Writing mail through the web pages: the editor, autosave, attachments, send, undo, discard,
drafts and outbox, contacts (autocomplete, address book, vCard)."""

from __future__ import annotations

import html
import io
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from compose import contacts, drafts
from compose.models import Contact, Draft, DraftAttachment, Identity
from mail.models import Preferences
from mailboxes.models import Conversation, Folder, MailAccount, Message, MessageContent

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_numbers = itertools.count(1)


# The cast ---------------------------------------------------------------------------------------


def account_of(user: User, address: str) -> MailAccount:
    """An account with nothing behind it: no Drafts folder, so no IMAP copy is attempted."""
    return MailAccount.objects.create(
        user=user,
        email=address,
        display_name=address.split("@")[0].title(),
        incoming_host="127.0.0.1",
        username=address,
        password="p",
        smtp_host="127.0.0.1",
    )


def message_in(
    account: MailAccount,
    role: str = Folder.Role.INBOX,
    *,
    subject: str = "Sortie scolaire",
    sender: tuple[str, str] = ("Dave", "dave@ecole.test"),
    to: list[list[str]] | None = None,
    cc: list[list[str]] | None = None,
    date: datetime | None = None,
) -> Message:
    folder, _created = Folder.objects.get_or_create(
        account=account, name=role or "Projets", defaults={"role": role}
    )
    number = next(_numbers)
    path = default_storage.save(
        f"mail/test-{number}.eml", ContentFile(b"Subject: x\r\n\r\nbody\r\n")
    )
    content = MessageContent.objects.create(
        account=account,
        sha256=f"{number:064d}",
        raw_path=path,
        size=100,
        message_id=f"m{number}@ecole.test",
        subject=subject,
        from_name=sender[0],
        from_email=sender[1],
        to=to if to is not None else [["", account.email]],
        cc=cc or [],
        date=date or datetime(2026, 3, 1, tzinfo=UTC),
        body_text="Rendez-vous à 8 h devant l’école.",
        conversation=Conversation.objects.create(account=account, subject=subject),
        indexed=True,
    )
    return Message.objects.create(
        folder=folder, content=content, uidvalidity=1, uid=number, date=content.date
    )


@pytest.fixture
def account(alice: User) -> MailAccount:
    return account_of(alice, "alice@courrier.test")


@pytest.fixture
def bob_account(bob: User) -> MailAccount:
    return account_of(bob, "bob@courrier.test")


@pytest.fixture
def draft(alice: User, account: MailAccount) -> Draft:
    return drafts.start(alice, account)


@pytest.fixture
def bob_client(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def fields(draft: Draft, **changes: str) -> dict[str, str]:
    """What the editor posts."""
    values = {
        "sender": f"a{draft.account_id}",
        "to": "Bob <bob@courrier.test>",
        "cc": "",
        "bcc": "",
        "subject": "Bonjour",
        "html": "<p>Salut Bob, <b>à demain</b>.</p>",
    }
    values.update(changes)
    return values


def error_next_to(response: object, field: str) -> str:
    """The error shown under a field of the re-rendered editor."""
    content = response.content.decode()  # type: ignore[attr-defined]
    found = re.search(rf'id="id_{field}_error">(.*?)</p>', content, re.S)
    return html.unescape(found.group(1)) if found else ""


# Starting a message -----------------------------------------------------------------------------


def test_new_creates_a_draft_and_opens_the_editor(
    alice_client: Client, alice: User, account: MailAccount
) -> None:
    response = alice_client.get(reverse("compose-new"))

    draft = Draft.objects.get(user=alice)
    assert response.status_code == 302
    assert response["Location"] == reverse("compose-edit", args=[draft.pk])
    page = alice_client.get(response["Location"])
    assert page.status_code == 200
    content = page.content.decode()
    assert f'<option value="a{account.pk}" selected>Alice &lt;alice@courrier.test&gt;' in content
    assert 'contenteditable="true"' in content
    assert f'data-limit="{drafts.attachment_limit(draft)}"' in content


def test_new_from_another_account_of_the_user(alice_client: Client, alice: User) -> None:
    account_of(alice, "alice@courrier.test")
    second = account_of(alice, "alice@ecole.test")

    alice_client.get(reverse("compose-new"), {"account": second.pk})

    assert Draft.objects.get(user=alice).account == second


def test_new_from_someone_elses_account_is_not_found(
    alice_client: Client, account: MailAccount, bob_account: MailAccount
) -> None:
    response = alice_client.get(reverse("compose-new"), {"account": bob_account.pk})
    assert response.status_code == 404
    assert not Draft.objects.exists()


def test_new_without_an_account_asks_for_one(alice_client: Client) -> None:
    response = alice_client.get(reverse("compose-new"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("mail-account-add")
    assert "Add a mail account before writing a message." in response.content.decode()


def test_reply_and_reply_all_answer_the_right_people(
    alice_client: Client, alice: User, account: MailAccount
) -> None:
    message = message_in(
        account,
        to=[["Alice", "alice@courrier.test"], ["Carol", "carol@ecole.test"]],
        cc=[["", "erin@ecole.test"]],
    )

    alice_client.get(reverse("compose-reply", args=[message.pk]))
    alice_client.get(reverse("compose-reply", args=[message.pk]), {"all": "1"})

    reply, reply_all = Draft.objects.filter(user=alice).order_by("pk")
    assert (reply.to, reply.cc, reply.subject) == (
        '"Dave" <dave@ecole.test>',
        "",
        "Re: Sortie scolaire",
    )
    assert reply_all.cc == '"Carol" <carol@ecole.test>, erin@ecole.test'
    assert reply.replying_to == message
    page = alice_client.get(reverse("compose-edit", args=[reply.pk])).content.decode()
    assert "Rendez-vous à 8 h devant l’école." in html.unescape(page)


def test_forward_inline_or_as_attachment(
    alice_client: Client, alice: User, account: MailAccount
) -> None:
    message = message_in(account, subject="Menu de la cantine")

    alice_client.get(reverse("compose-forward", args=[message.pk]))
    alice_client.get(reverse("compose-forward", args=[message.pk]), {"attachment": "1"})

    inline, attached = Draft.objects.filter(user=alice).order_by("pk")
    assert inline.subject == "Fwd: Menu de la cantine"
    assert not inline.forward_as_attachment
    assert attached.forward_as_attachment
    page = alice_client.get(reverse("compose-edit", args=[attached.pk])).content.decode()
    assert "Menu de la cantine.eml" in page  # listed with the attachments


def test_a_message_of_another_user_cannot_be_answered(
    alice_client: Client, account: MailAccount, bob_account: MailAccount
) -> None:
    theirs = message_in(bob_account)
    for name in ("compose-reply", "compose-forward"):
        assert alice_client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert not Draft.objects.exists()


# Permissions: login, ownership, methods ---------------------------------------------------------


def owned_urls(draft: Draft, message: Message, contact: Contact) -> list[tuple[str, str]]:
    attachment = DraftAttachment.objects.create(
        draft=draft, path="drafts/x", filename="x.txt", content_type="text/plain", size=1
    )
    return [
        ("get", reverse("compose-edit", args=[draft.pk])),
        ("post", reverse("compose-save", args=[draft.pk])),
        ("post", reverse("compose-send", args=[draft.pk])),
        ("post", reverse("compose-undo", args=[draft.pk])),
        ("post", reverse("compose-discard", args=[draft.pk])),
        ("post", reverse("compose-attach", args=[draft.pk])),
        ("post", reverse("compose-attachment-remove", args=[draft.pk, attachment.pk])),
        ("get", reverse("compose-reply", args=[message.pk])),
        ("get", reverse("compose-forward", args=[message.pk])),
        ("post", reverse("compose-contact-edit", args=[contact.pk])),
        ("post", reverse("compose-contact-delete", args=[contact.pk])),
    ]


@pytest.fixture
def owned(alice: User, draft: Draft, account: MailAccount) -> list[tuple[str, str]]:
    contact = Contact.objects.create(user=alice, email="carol@ecole.test", name="Carol")
    return owned_urls(draft, message_in(account), contact)


def test_every_page_of_alice_is_not_found_for_bob(
    bob_client: Client, bob_account: MailAccount, owned: list[tuple[str, str]], draft: Draft
) -> None:
    for method, url in owned:
        response = getattr(bob_client, method)(url, {"name": "Mallory"} if method == "post" else {})
        assert response.status_code == 404, url
    draft.refresh_from_db()  # still there, unchanged
    assert Contact.objects.get(email="carol@ecole.test").name == "Carol"


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "compose-new"),
        ("get", "compose-drafts"),
        ("get", "compose-contacts"),
        ("get", "compose-contacts-manage"),
        ("get", "compose-contacts-export"),
        ("post", "compose-contact-add"),
        ("post", "compose-contacts-import"),
    ],
)
def test_pages_need_a_signed_in_user(client: Client, method: str, name: str) -> None:
    response = getattr(client, method)(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_draft_pages_need_a_signed_in_user(client: Client, owned: list[tuple[str, str]]) -> None:
    for method, url in owned:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login"))


def test_wrong_methods_are_refused(
    alice_client: Client, owned: list[tuple[str, str]], draft: Draft
) -> None:
    for method, url in owned:
        other = "post" if method == "get" else "get"
        assert getattr(alice_client, other)(url).status_code == 405, url
    for name in ("compose-new", "compose-drafts", "compose-contacts", "compose-contacts-export"):
        assert alice_client.post(reverse(name)).status_code == 405, name
    for name in ("compose-contact-add", "compose-contacts-import"):
        assert alice_client.get(reverse(name)).status_code == 405, name
    assert Draft.objects.filter(pk=draft.pk, state=Draft.State.DRAFT).exists()


# Autosave ---------------------------------------------------------------------------------------


def test_autosave_then_reload_shows_what_was_typed(alice_client: Client, draft: Draft) -> None:
    response = alice_client.post(
        reverse("compose-save", args=[draft.pk]),
        fields(draft, subject="Réunion", html="<p>Premier jet <i>brouillon</i></p>"),
    )

    assert response.status_code == 200
    assert response.json() == {"version": draft.version + 1}
    page = alice_client.get(reverse("compose-edit", args=[draft.pk])).content.decode()
    assert 'value="Réunion"' in page
    assert "<p>Premier jet <i>brouillon</i></p></div>" in page  # in the editor
    assert 'value="Bob &lt;bob@courrier.test&gt;"' in page


def test_autosave_sanitises_the_html(alice_client: Client, draft: Draft) -> None:
    alice_client.post(
        reverse("compose-save", args=[draft.pk]),
        fields(draft, html='<p onclick="x()">Hi</p><script>alert(1)</script><img src="https://t.test/p.png">'),
    )  # fmt: skip
    draft.refresh_from_db()
    assert "script" not in draft.html
    assert "onclick" not in draft.html
    assert "t.test" not in draft.html


def test_autosave_of_a_message_already_sent_is_a_conflict(
    alice_client: Client, draft: Draft
) -> None:
    Draft.objects.filter(pk=draft.pk).update(state=Draft.State.QUEUED)
    response = alice_client.post(reverse("compose-save", args=[draft.pk]), fields(draft))
    assert response.status_code == 409
    assert response.json()["error"] == "This message is no longer a draft."


def test_autosave_refuses_a_line_break_with_the_fields_errors(
    alice_client: Client, draft: Draft
) -> None:
    response = alice_client.post(
        reverse("compose-save", args=[draft.pk]), fields(draft, subject="Hi\r\nBcc: x@evil.test")
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"subject": ["Line breaks are not allowed here."]}


# Sending ----------------------------------------------------------------------------------------


def test_send_queues_for_the_undo_window_and_offers_undo_on_the_inbox(
    alice_client: Client, alice: User, draft: Draft
) -> None:
    Preferences.objects.filter(user=alice).update(undo_send_seconds=20)
    before = timezone.now()

    response = alice_client.post(reverse("compose-send", args=[draft.pk]), fields(draft))

    assert response.status_code == 302
    assert response["Location"] == reverse("mail-inbox")
    draft.refresh_from_db()
    assert draft.state == Draft.State.QUEUED
    assert draft.subject == "Bonjour"  # saved with what was typed
    assert draft.send_at is not None
    assert before + timedelta(seconds=20) <= draft.send_at <= timezone.now() + timedelta(seconds=20)
    inbox = alice_client.get(response["Location"]).content.decode()
    assert "Sending…" in inbox
    assert f'action="{reverse("compose-undo", args=[draft.pk])}"' in inbox
    assert 'name="csrfmiddlewaretoken"' in inbox.split("Sending…")[1]


def test_send_with_a_bad_address_shows_the_error_next_to_the_field_and_keeps_the_text(
    alice_client: Client, draft: Draft
) -> None:
    response = alice_client.post(
        reverse("compose-send", args=[draft.pk]),
        fields(draft, cc="carol", subject="Sortie", html="<p>Texte à garder</p>"),
    )

    assert response.status_code == 200
    assert error_next_to(response, "cc") == "“carol” is not an email address."
    content = response.content.decode()
    assert 'value="carol"' in content
    assert 'value="Sortie"' in content
    assert "<p>Texte à garder</p>" in content
    draft.refresh_from_db()
    assert draft.state == Draft.State.DRAFT
    assert draft.html == "<p>Texte à garder</p>"  # saved: a reload loses nothing either


def test_send_without_recipient_says_so(alice_client: Client, draft: Draft) -> None:
    response = alice_client.post(reverse("compose-send", args=[draft.pk]), fields(draft, to=""))
    assert error_next_to(response, "to") == "Add at least one recipient."


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "bob@courrier.test\r\nBcc: x@evil.test"),
        ("cc", "carol@ecole.test\nX-Evil: yes"),
        ("bcc", "dave@ecole.test\rBcc: x@evil.test"),
        ("subject", "Bonjour\r\nBcc: x@evil.test"),
        ("to", "bob@courrier.test\x00"),
    ],
)
def test_header_injection_through_a_field_is_refused_with_a_clear_message(
    alice_client: Client, draft: Draft, field: str, value: str
) -> None:
    version = draft.version
    response = alice_client.post(
        reverse("compose-send", args=[draft.pk]), fields(draft, **{field: value})
    )

    assert response.status_code == 200
    error = error_next_to(response, field)
    assert (
        "Line breaks are not allowed here." in error or "Null characters are not allowed." in error
    )
    draft.refresh_from_db()
    assert (draft.state, draft.version) == (Draft.State.DRAFT, version)  # nothing saved


def test_a_forged_sender_is_refused(
    alice_client: Client, alice: User, draft: Draft, bob_account: MailAccount
) -> None:
    alias_of_bob = Identity.objects.create(account=bob_account, email="boss@courrier.test")
    for forged in (
        f"a{bob_account.pk}",
        f"i{alias_of_bob.pk}",
        "a999999",
        "i1\r\nBcc: x@evil.test",
        "",
    ):
        response = alice_client.post(
            reverse("compose-send", args=[draft.pk]), fields(draft, sender=forged)
        )
        assert response.status_code == 200
        assert error_next_to(response, "sender") in {
            "Choose one of your own addresses.",
            "Choose the address to send from.",
        }
        saving = alice_client.post(
            reverse("compose-save", args=[draft.pk]), fields(draft, sender=forged)
        )
        assert saving.status_code == 400
    draft.refresh_from_db()
    assert draft.account.user == alice
    assert draft.from_email == "alice@courrier.test"
    assert draft.state == Draft.State.DRAFT


def test_an_identity_of_the_user_can_be_chosen(
    alice_client: Client, account: MailAccount, draft: Draft
) -> None:
    alias = Identity.objects.create(
        account=account, name="Direction", email="direction@courrier.test"
    )

    alice_client.post(
        reverse("compose-save", args=[draft.pk]), fields(draft, sender=f"i{alias.pk}")
    )

    draft.refresh_from_db()
    assert (draft.identity, draft.from_email, draft.from_name) == (
        alias,
        "direction@courrier.test",
        "Direction",
    )


def test_send_later_is_read_in_the_users_time_zone(
    alice_client: Client, alice: User, draft: Draft
) -> None:
    Preferences.objects.filter(user=alice).update(time_zone="Pacific/Auckland")
    auckland = ZoneInfo("Pacific/Auckland")
    when = (timezone.now().astimezone(auckland) + timedelta(days=30)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )

    response = alice_client.post(
        reverse("compose-send", args=[draft.pk]),
        {**fields(draft), "action": "schedule", "send_at": when.strftime("%Y-%m-%dT%H:%M")},
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.state == Draft.State.QUEUED
    assert draft.send_at == when  # 9:30 in Auckland, not in UTC
    assert draft.send_at != when.replace(tzinfo=UTC)
    inbox = alice_client.get(reverse("mail-inbox")).content.decode()
    assert "Scheduled for" in inbox
    assert f'action="{reverse("compose-undo", args=[draft.pk])}"' in inbox


@pytest.mark.parametrize(
    ("send_at", "error"),
    [
        ("2001-01-01T10:00", "Choose a time in the future."),
        ("", "Choose when to send it."),
        ("demain", "Enter a date and a time."),
        ("2999-01-01T10:00", "Choose a time within a year."),
    ],
)
def test_send_later_needs_a_time_to_come(
    alice_client: Client, draft: Draft, send_at: str, error: str
) -> None:
    response = alice_client.post(
        reverse("compose-send", args=[draft.pk]),
        {**fields(draft, subject="Plus tard"), "action": "schedule", "send_at": send_at},
    )

    assert response.status_code == 200
    assert error_next_to(response, "send_at") == error
    assert 'value="Plus tard"' in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == Draft.State.DRAFT


def test_a_draft_returned_by_the_server_shows_its_error(alice_client: Client, draft: Draft) -> None:
    Draft.objects.filter(pk=draft.pk).update(last_error="550 5.1.1 <nobody@courrier.test>: unknown")
    page = alice_client.get(reverse("compose-edit", args=[draft.pk])).content.decode()
    assert "The server refused this message:" in page
    assert "550 5.1.1 &lt;nobody@courrier.test&gt;: unknown" in page


# Undo and discard -------------------------------------------------------------------------------


def test_undo_reopens_the_draft(alice_client: Client, draft: Draft) -> None:
    alice_client.post(reverse("compose-send", args=[draft.pk]), fields(draft))

    response = alice_client.post(reverse("compose-undo", args=[draft.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("compose-edit", args=[draft.pk])
    draft.refresh_from_db()
    assert (draft.state, draft.send_at) == (Draft.State.DRAFT, None)
    assert "back in your drafts" in response.content.decode()
    assert 'value="Bonjour"' in response.content.decode()


def test_undo_too_late_says_it_was_sent(alice_client: Client, draft: Draft) -> None:
    Draft.objects.filter(pk=draft.pk).update(state=Draft.State.DONE)

    response = alice_client.post(reverse("compose-undo", args=[draft.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("mail-inbox")
    assert "Already sent." in response.content.decode()
    draft.refresh_from_db()
    assert draft.state == Draft.State.DONE


def test_a_queued_message_shows_as_queued_in_the_editor(alice_client: Client, draft: Draft) -> None:
    alice_client.post(reverse("compose-send", args=[draft.pk]), fields(draft))
    page = alice_client.get(reverse("compose-edit", args=[draft.pk])).content.decode()
    assert "This message will be sent at" in page
    assert 'contenteditable="true"' not in page


def test_discard_deletes_the_draft_and_its_attachments(alice_client: Client, draft: Draft) -> None:
    attachment = drafts.attach(draft, SimpleUploadedFile("plan.txt", b"plan"))

    response = alice_client.post(reverse("compose-discard", args=[draft.pk]))

    assert response.status_code == 302
    assert not Draft.objects.filter(pk=draft.pk).exists()
    assert not default_storage.exists(attachment.path)


def test_discard_of_a_queued_message_is_refused(alice_client: Client, draft: Draft) -> None:
    Draft.objects.filter(pk=draft.pk).update(state=Draft.State.QUEUED)
    response = alice_client.post(reverse("compose-discard", args=[draft.pk]), follow=True)
    assert "This message is no longer a draft." in response.content.decode()
    assert Draft.objects.filter(pk=draft.pk).exists()


# Attachments ------------------------------------------------------------------------------------

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def test_upload_then_remove_an_attachment(alice_client: Client, draft: Draft) -> None:
    response = alice_client.post(
        reverse("compose-attach", args=[draft.pk]),
        {"file": SimpleUploadedFile("compte-rendu.pdf", b"%PDF-1.4 ...", "application/pdf")},
        **XHR,
    )

    assert response.status_code == 200
    attachment = draft.attachments.get()
    content = response.content.decode()
    assert content.lstrip().startswith(
        '<ul class="attachment-list" id="attachment-list" data-used="12">'
    )
    assert "compte-rendu.pdf" in content
    removed = alice_client.post(
        reverse("compose-attachment-remove", args=[draft.pk, attachment.pk]), HTTP_HX_REQUEST="true"
    )
    assert removed.status_code == 200
    assert "compte-rendu.pdf" not in removed.content.decode()
    assert not draft.attachments.exists()
    again = alice_client.post(reverse("compose-attachment-remove", args=[draft.pk, attachment.pk]))
    assert again.status_code == 404


def test_upload_without_javascript_takes_several_files_and_comes_back(
    alice_client: Client, draft: Draft
) -> None:
    response = alice_client.post(
        reverse("compose-attach", args=[draft.pk]),
        {"file": [SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"bb")]},
    )
    assert response["Location"] == reverse("compose-edit", args=[draft.pk])
    assert sorted(draft.attachments.values_list("filename", flat=True)) == ["a.txt", "b.txt"]
    page = alice_client.get(response["Location"]).content.decode()
    assert "a.txt" in page
    assert "b.txt" in page


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")

    def readinto(self, buffer: object) -> int:
        raise AssertionError("the body was read")

    def readline(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body was read")


def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(
    alice_client: Client, draft: Draft
) -> None:
    response = alice_client.generic(
        "POST",
        reverse("compose-attach", args=[draft.pk]),
        b"",
        CONTENT_TYPE="multipart/form-data; boundary=----x",
        CONTENT_LENGTH=str(30 * 1024 * 1024),
        **{"wsgi.input": Unreadable()},
        **XHR,
    )

    assert response.status_code == 413
    assert response.json()["error"] == "Attachments can weigh 25 MB in all."
    assert not draft.attachments.exists()


def test_attachments_over_the_limit_in_all_are_refused(alice_client: Client, draft: Draft) -> None:
    url = reverse("compose-attach", args=[draft.pk])
    with override_settings(MAX_ATTACHMENTS_BYTES=1024):
        first = alice_client.post(url, {"file": SimpleUploadedFile("a.bin", b"x" * 700)}, **XHR)
        second = alice_client.post(url, {"file": SimpleUploadedFile("b.bin", b"x" * 700)}, **XHR)

    assert first.status_code == 200
    assert second.status_code == 413
    assert second.json()["error"] == "Attachments can weigh 0 MB in all."
    assert draft.attachments.count() == 1


def test_an_upload_needs_the_csrf_token(alice: User, draft: Draft) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        reverse("compose-attach", args=[draft.pk]), {"file": SimpleUploadedFile("a.txt", b"a")}
    )
    assert response.status_code == 403
    assert not draft.attachments.exists()


def test_a_line_break_in_a_file_name_never_reaches_the_attachment(
    alice_client: Client, draft: Draft
) -> None:
    response = alice_client.post(
        reverse("compose-attach", args=[draft.pk]),
        {"file": SimpleUploadedFile("a\nContent-Type: text/html.txt", b"a")},
        **XHR,
    )
    # Django's multipart parser keeps the last line of such a name; drafts.attach would refuse
    # one that still had a line break (400).
    assert response.status_code == 200
    (name,) = draft.attachments.values_list("filename", flat=True)
    assert "\n" not in name
    assert "\r" not in name


# Drafts and outbox ------------------------------------------------------------------------------


def test_drafts_and_outbox_list_the_users_own(
    alice_client: Client,
    alice: User,
    account: MailAccount,
    bob: User,
    bob_account: MailAccount,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    older = drafts.save(drafts.start(alice, account), to="x@ecole.test", subject="Ancien")
    newer = drafts.save(drafts.start(alice, account), subject="Récent")
    Draft.objects.filter(pk=older.pk).update(last_error="550 refused")
    queued = drafts.save(drafts.start(alice, account), to="bob@courrier.test", subject="En route")
    drafts.queue(queued, delay=30)
    drafts.save(drafts.start(bob, bob_account), subject="Secret de Bob")
    drafts.start(alice, account)  # opened, never written in: not listed

    alice_client.get(reverse("compose-drafts"))  # the preferences row exists from here on
    # The account has no folder here: the sidebar counts no unread mail and reads no labels.
    with django_assert_num_queries(6):
        response = alice_client.get(reverse("compose-drafts"))

    assert [d.subject for d in response.context["drafts"]] == ["Récent", "Ancien"]
    assert [d.subject for d in response.context["outbox"]] == ["En route"]
    content = response.content.decode()
    assert "550 refused" in content
    assert "Secret de Bob" not in content
    assert reverse("compose-edit", args=[newer.pk]) in content
    assert "Queued" in content


def test_drafts_list_query_count_does_not_grow_with_drafts(
    alice_client: Client,
    alice: User,
    account: MailAccount,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    for number in range(5):
        drafts.save(drafts.start(alice, account), subject=f"Brouillon {number}")
    alice_client.get(reverse("compose-drafts"))
    with django_assert_num_queries(6):  # as above, whatever the number of drafts
        alice_client.get(reverse("compose-drafts"))


# Contacts: autocomplete -------------------------------------------------------------------------


def suggestions(client: Client, query: str) -> list[str]:
    response = client.get(reverse("compose-contacts"), {"q": query})
    assert response.status_code == 200
    return [c["email"] for c in response.json()["contacts"]]


def test_autocomplete_ranks_by_use_then_recency_and_stops_at_eight(
    alice_client: Client, alice: User, bob: User
) -> None:
    now = timezone.now()
    Contact.objects.create(user=alice, email="rare@ecole.test", name="Camille Rare", times=1)
    Contact.objects.create(
        user=alice, email="often@ecole.test", name="Camille Souvent", times=9, last_used_at=now
    )
    Contact.objects.create(
        user=alice,
        email="camille.old@ecole.test",
        times=3,
        last_used_at=now - timedelta(days=30),
    )
    Contact.objects.create(
        user=alice, email="camille.new@ecole.test", times=3, last_used_at=now - timedelta(days=1)
    )
    Contact.objects.create(user=bob, email="camille@bob.test", name="Camille de Bob", times=99)
    for number in range(10):
        Contact.objects.create(user=alice, email=f"zz{number}@autre.test", name="Zoé")

    assert suggestions(alice_client, "camil") == [
        "often@ecole.test",
        "camille.new@ecole.test",
        "camille.old@ecole.test",
        "rare@ecole.test",
    ]
    assert suggestions(alice_client, "OFTEN") == ["often@ecole.test"]  # address, any case
    assert suggestions(alice_client, "souv") == ["often@ecole.test"]  # a word inside the name
    assert len(suggestions(alice_client, "zoé")) == 8
    assert suggestions(alice_client, "") == []
    response = alice_client.get(reverse("compose-contacts"), {"q": "souvent"})
    assert response.json()["contacts"][0] == {
        "name": "Camille Souvent",
        "email": "often@ecole.test",
        "value": '"Camille Souvent" <often@ecole.test>',
    }


def test_autocomplete_learns_from_sent_mail_the_first_time(
    alice_client: Client, alice: User, account: MailAccount, bob_account: MailAccount
) -> None:
    for day in (1, 2, 3):
        message_in(
            account,
            Folder.Role.SENT,
            to=[["Carol", "Carol@ecole.test"], ["Moi", "alice@courrier.test"]],
            cc=[["Dave", "dave@ecole.test"]] if day == 3 else [],
            date=datetime(2026, 3, day, tzinfo=UTC),
        )
    message_in(account, Folder.Role.INBOX, to=[["Inconnu", "inbox-only@ecole.test"]])
    message_in(bob_account, Folder.Role.SENT, to=[["Mallory", "mallory@ecole.test"]])

    assert suggestions(alice_client, "e") == ["carol@ecole.test", "dave@ecole.test"]

    carol = Contact.objects.get(user=alice, email="carol@ecole.test")
    assert (carol.name, carol.times) == ("Carol", 3)
    assert carol.last_used_at == datetime(2026, 3, 3, tzinfo=UTC)
    assert not Contact.objects.filter(email__in=["alice@courrier.test", "inbox-only@ecole.test"])
    assert contacts.learn_from_mail(alice) == 0  # once only


# Contacts: the address book and vCard ------------------------------------------------------------


def test_add_rename_and_delete_a_contact(alice_client: Client, alice: User) -> None:
    response = alice_client.post(
        reverse("compose-contact-add"), {"email": "Erin@Ecole.test", "name": "Erin"}
    )
    assert response.status_code == 302
    erin = Contact.objects.get(user=alice)
    assert erin.email == "erin@ecole.test"

    twice = alice_client.post(reverse("compose-contact-add"), {"email": "erin@ecole.test"})
    assert twice.status_code == 200
    assert "This address is already in your contacts." in twice.content.decode()

    alice_client.post(reverse("compose-contact-edit", args=[erin.pk]), {"name": "Erin Martin"})
    erin.refresh_from_db()
    assert (erin.name, erin.edited) == ("Erin Martin", True)

    bad = alice_client.post(
        reverse("compose-contact-edit", args=[erin.pk]), {"name": "Erin\r\nBcc: x"}, follow=True
    )
    assert "Line breaks are not allowed here." in bad.content.decode()
    erin.refresh_from_db()
    assert erin.name == "Erin Martin"

    page = alice_client.get(reverse("compose-contacts-manage")).content.decode()
    assert 'value="Erin Martin"' in page

    alice_client.post(reverse("compose-contact-delete", args=[erin.pk]))
    assert not Contact.objects.filter(user=alice).exists()


def test_a_bad_address_is_refused_and_kept_in_the_form(alice_client: Client) -> None:
    response = alice_client.post(reverse("compose-contact-add"), {"email": "pas une adresse"})
    assert response.status_code == 200
    assert 'value="pas une adresse"' in response.content.decode()
    assert not Contact.objects.exists()


def test_vcard_import_of_the_fixture(alice_client: Client, alice: User) -> None:
    Contact.objects.create(user=alice, email="soren@ecole.test", name="S.", times=4)
    data = (FIXTURES / "contacts.vcf").read_bytes()

    response = alice_client.post(
        reverse("compose-contacts-import"),
        {"file": SimpleUploadedFile("contacts.vcf", data, "text/vcard")},
        follow=True,
    )

    assert response.status_code == 200
    found = dict(Contact.objects.filter(user=alice).values_list("email", "name"))
    assert found == {
        "elodie.lefevre@ecole.test": "Élodie Lefèvre",  # several EMAILs: one contact each
        "elodie@maison.test": "Élodie Lefèvre",
        # Folded over two lines, with escaped comma and semicolon:
        "jb.dupont@ecole.test": (
            "Dupont, Jean-Baptiste ; le directeur de l’école primaire Jules-Ferry de Saint-Étienne"
        ),
        "soren@ecole.test": "Søren Østergård",  # from N, replacing the name learnt from mail
        "xiaolong@ecole.test": "李小龙",
    }
    assert Contact.objects.get(email="soren@ecole.test").times == 4
    text = html.unescape(response.content.decode())
    assert "Import done: 4 contacts added, 1 renamed, 1 card without an address skipped." in text


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"BEGIN:VCARD\r\n" + b"X" * (2 * 1024 * 1024) + b"\r\nEND:VCARD\r\n", "too large"),
        (b"BEGIN:VCARD\r\nFN:a\r\nEMAIL:a@b.test\r\nEND:VCARD\r\n" * 5001, "too many contacts"),
        (b"name,email\r\nAnne,anne@ecole.test\r\n", "no vCard"),
    ],
)
def test_vcard_import_refuses_what_it_cannot_take(
    alice_client: Client, data: bytes, error: str
) -> None:
    response = alice_client.post(
        reverse("compose-contacts-import"), {"file": SimpleUploadedFile("c.vcf", data)}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Contact.objects.exists()


def test_vcard_export_round_trip(alice_client: Client, alice: User, bob: User) -> None:
    Contact.objects.create(user=alice, email="jb@ecole.test", name="Dupont, Jean; \\ Directeur")
    Contact.objects.create(user=alice, email="noname@ecole.test")
    Contact.objects.create(user=alice, email="long@ecole.test", name="Éloïse " * 20)
    Contact.objects.create(user=bob, email="secret@bob.test", name="Bob's")

    response = alice_client.get(reverse("compose-contacts-export"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="contacts.vcf"'
    raw = response.content
    assert b"FN:Dupont\\, Jean\\; \\\\ Directeur\r\n" in raw
    assert b"VERSION:4.0\r\n" in raw
    assert b"secret@bob.test" not in raw
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    cards = contacts.parse_vcards(raw)
    assert {(c.name, tuple(c.emails)) for c in cards} == {
        ("Dupont, Jean; \\ Directeur", ("jb@ecole.test",)),
        ("noname@ecole.test", ("noname@ecole.test",)),
        (" ".join(["Éloïse"] * 20), ("long@ecole.test",)),
    }
    # Imported again elsewhere, the same contacts come back (the address is no name).
    contacts.import_cards(bob, cards)
    assert dict(Contact.objects.filter(user=bob).values_list("email", "name")) == {
        "secret@bob.test": "Bob's",
        "jb@ecole.test": "Dupont, Jean; \\ Directeur",
        "noname@ecole.test": "",
        "long@ecole.test": " ".join(["Éloïse"] * 20),
    }


# The reply links for the conversation page -------------------------------------------------------


def test_reply_links_carry_the_shortcut_urls(account: MailAccount) -> None:
    message = message_in(account)
    rendered = render_to_string("compose/reply_links.html", {"message": message})
    assert f'data-reply-url="/compose/reply/{message.pk}/"' in rendered
    assert f'data-reply-all-url="/compose/reply/{message.pk}/?all=1"' in rendered
    assert f'data-forward-url="/compose/forward/{message.pk}/"' in rendered


def test_json_answers_are_json(alice_client: Client, draft: Draft) -> None:
    response = alice_client.post(reverse("compose-save", args=[draft.pk]), fields(draft))
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["version"] == draft.version + 1
