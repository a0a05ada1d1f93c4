"""The webmail's lists, conversations, actions, search, settings and live updates."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import dateformat, formats, timezone, translation
from imapclient import IMAPClient
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from mail import listing
from mail.models import Preferences, UndoableAction
from mail.templatetags.mail_tags import DateTexts, full_date, mail_date
from mailboxes import indexing, sync
from mailboxes.models import (
    Conversation,
    Folder,
    MailAccount,
    Message,
    MessageContent,
    PendingAction,
)
from tests.conftest import sample

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 1, tzinfo=UTC)
_numbers = itertools.count(1)


class Mailbox:
    """An IMAP account with the usual folders, filled in the database directly."""

    def __init__(self, user: User, email: str, protocol: str = "imap") -> None:
        self.account = MailAccount.objects.create(
            user=user,
            email=email,
            protocol=protocol,
            incoming_host="h",
            username="u",
            password="p",
            smtp_host="h",
        )
        self.folders = {
            role: Folder.objects.create(account=self.account, name=name, role=role, uidvalidity=1)
            for role, name in [
                ("inbox", "INBOX"),
                ("sent", "Sent"),
                ("archive", "Archive"),
                ("trash", "Trash"),
                ("junk", "Junk"),
                ("", "Projets"),
            ]
        }

    def add(
        self,
        subject: str,
        *,
        role: str = "inbox",
        conversation: Conversation | None = None,
        minutes: int = 0,
        seen: bool = False,
        sender: str = "Dave <dave@ecole.test>",
    ) -> Message:
        number = next(_numbers)
        conversation = conversation or Conversation.objects.create(
            account=self.account, subject=subject
        )
        name, _, email = sender.partition(" <")
        content = MessageContent.objects.create(
            account=self.account,
            sha256=f"{number:064d}",
            raw_path=f"mail/{number}.eml",
            size=100,
            subject=subject,
            from_name=name,
            from_email=email.rstrip(">"),
            snippet=f"snippet of {subject}",
            conversation=conversation,
            date=START + timedelta(minutes=minutes),
            indexed=True,
        )
        return Message.objects.create(
            folder=self.folders[role],
            content=content,
            uidvalidity=1,
            uid=number,
            seen=seen,
            date=content.date,
        )


@pytest.fixture
def mine(alice: User) -> Mailbox:
    return Mailbox(alice, "alice@courrier.test")


@pytest.fixture
def theirs(bob: User) -> Mailbox:
    return Mailbox(bob, "bob@courrier.test")


@pytest.fixture
def bob_client(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def subjects(response: object) -> list[str]:
    return [row.message.content.subject for row in response.context["rows"]]  # type: ignore[attr-defined]


def act(client: Client, action: str, *, view: str = "inbox", **fields: object) -> object:
    return client.post(reverse("mail-act"), {"action": action, "view": view, **fields})


# Lists -----------------------------------------------------------------------------------------


HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.mark.parametrize("page", ["inbox", "search", "starred"])
def test_list_rows_escape_everything_a_message_brings(
    alice_client: Client, mine: Mailbox, page: str
) -> None:
    """The rows are built by the list_row tag, not by template markup: every value from a
    message or a folder must come out escaped."""
    mine.folders[""].name = f"Projets{HOSTILE}"
    mine.folders[""].save()
    message = mine.add(
        f"kermesse {HOSTILE}", sender=f"Eve {HOSTILE} <eve@ecole.test>", role="inbox"
    )
    message.keywords = [f"lab{HOSTILE}"]
    message.flagged = True
    message.save()
    other = mine.add(f"cantine {HOSTILE}", role="", sender=f"Mal{HOSTILE} <m@ecole.test>")
    other.flagged = True
    other.save()
    MessageContent.objects.filter(pk__in=[message.content_id, other.content_id]).update(
        search_text=F("subject")
    )
    url = {"inbox": reverse("mail-inbox"), "starred": reverse("mail-starred")}.get(page)
    response = alice_client.get(
        url or reverse("mail-search"), {"q": "kermesse OR cantine"} if not url else {}
    )

    html = response.content.decode()
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert response.context["rows"]
    # The subject, highlighted or not, shown as text…
    assert f"kermesse {escaped}" in html or f"kermesse</mark> {escaped}" in html
    assert "<img" not in html  # …and no value of the message as markup


def test_the_sidebar_marks_the_open_folder_nests_subfolders_and_escapes_names(
    alice_client: Client, mine: Mailbox
) -> None:
    hostile = Folder.objects.create(
        account=mine.account, name='Projets/<img src=x onerror="alert(1)">', delimiter="/"
    )
    mine.folders["hostile"] = hostile
    mine.add("Plan", role="hostile")
    mine.add("Devis", role="hostile", minutes=1)
    mine.add("Lu", role="hostile", minutes=2, seen=True)

    html = alice_client.get(reverse("mail-folder", args=[hostile.pk])).content.decode()

    url = reverse("mail-folder", args=[hostile.pk])
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"  # under "Projets"
    assert (
        f'<li class="depth-1"><a href="{url}" aria-current="page" data-role="">'
        f'<span class="label" title="{escaped}">{escaped}</span>'
        '<strong class="count">2</strong></a></li>'
    ) in html
    assert "<img" not in html
    inbox = reverse("mail-folder", args=[mine.folders["inbox"].pk])
    assert f'<li class="depth-0"><a href="{inbox}" data-role="inbox">' in html  # not current
    assert html.count('aria-current="page"') == 1


def test_the_inbox_shows_one_row_per_conversation_with_its_count_and_senders(
    alice_client: Client, mine: Mailbox
) -> None:
    first = mine.add("Kermesse", seen=True, sender="Dave <dave@ecole.test>")
    thread = first.content.conversation
    mine.add("Re: Kermesse", role="sent", conversation=thread, minutes=1, seen=True,
             sender="Alice <alice@courrier.test>")  # fmt: skip
    mine.add("Re: Kermesse", conversation=thread, minutes=2, sender="Erin <erin@ecole.test>")
    mine.add("Cantine", minutes=3, seen=True)

    response = alice_client.get(reverse("mail-inbox"))

    assert subjects(response) == ["Cantine", "Re: Kermesse"]
    row = response.context["rows"][1]
    assert (row.count, row.unread) == (3, True)
    assert [name for name, _unread in row.senders] == ["Dave", "Alice", "Erin"]
    assert 'class="conversation unread"' in response.text


def test_pages_follow_a_keyset_and_never_repeat_a_conversation(
    alice_client: Client, mine: Mailbox
) -> None:
    Preferences.objects.update_or_create(user=mine.account.user, defaults={"page_size": 25})
    threads = []
    for number in range(60):
        threads.append(mine.add(f"Sujet {number:02d}", minutes=number))
    # An older message of the newest conversation, far down the list.
    mine.add("Re: Sujet 59", conversation=threads[59].content.conversation, minutes=-10)

    seen: list[str] = []
    url = reverse("mail-inbox")
    while url:
        response = alice_client.get(url)
        seen += subjects(response)
        url = response.context["next_url"]

    assert seen == [f"Sujet {number:02d}" for number in reversed(range(60))]


def test_a_page_costs_the_same_queries_for_five_or_fifty_conversations(
    alice_client: Client, mine: Mailbox, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    for number in range(5):
        mine.add(f"Premier {number}", minutes=number)
    alice_client.get(reverse("mail-inbox"))
    # session, user, preferences, the walk, its rows, their conversations; the sidebar's folders,
    # unread counts and labels
    with django_assert_num_queries(9):
        alice_client.get(reverse("mail-inbox"))
    for number in range(45):
        mine.add(f"Encore {number}", minutes=100 + number)
    with django_assert_num_queries(9):
        response = alice_client.get(reverse("mail-inbox"))
    assert len(response.context["rows"]) == 50


def test_a_folder_starred_and_conversations_off(alice_client: Client, mine: Mailbox) -> None:
    project = mine.add("Plan", role="")
    mine.add("Budget", minutes=1)
    Message.objects.filter(pk=project.pk).update(flagged=True)
    thread = project.content.conversation
    mine.add("Re: Plan", role="", conversation=thread, minutes=2)

    folder = alice_client.get(reverse("mail-folder", args=[mine.folders[""].pk]))
    assert subjects(folder) == ["Re: Plan"]
    assert subjects(alice_client.get(reverse("mail-starred"))) == ["Plan"]

    Preferences.objects.update_or_create(
        user=mine.account.user, defaults={"conversation_view": False}
    )
    folder = alice_client.get(reverse("mail-folder", args=[mine.folders[""].pk]))
    assert subjects(folder) == ["Re: Plan", "Plan"]


def test_folder_tags_name_special_folders_in_the_users_language(
    alice_client: Client, mine: Mailbox
) -> None:
    """The server calls it "INBOX"; the list and the conversation say "Inbox" ("Boîte de
    réception"), as the sidebar does. The toolbar's Archive is a verb ("Archiver"), the
    folder a noun ("Archives")."""
    message = mine.add("Cantine")
    Message.objects.filter(pk=message.pk).update(flagged=True)
    conversation = reverse("mail-conversation", args=[message.content.conversation_id])
    for path in (reverse("mail-starred"), conversation):
        english = alice_client.get(path).text
        assert '<span class="folder-tag">Inbox</span>' in english
        assert ">INBOX<" not in english
        french = alice_client.get(path, headers={"accept-language": "fr"}).text
        assert '<span class="folder-tag">Boîte de réception</span>' in french
    french = alice_client.get(reverse("mail-inbox"), headers={"accept-language": "fr"}).text
    assert 'value="archive" data-action="archive" title="Archiver (e)">Archiver</button>' in french
    assert ">Archives</" in french  # the folder, in the sidebar


def test_older_mail_shows_a_date_every_english_reader_reads_the_same(
    alice_client: Client, mine: Mailbox
) -> None:
    """Not Django's American 11/01/2025 (the 11th of January to most English readers)."""
    mine.add("Rentrée", minutes=-366 * 24 * 60)  # 2025-10-31, a year before the others
    english = alice_client.get(reverse("mail-inbox")).text
    assert ">31 Oct 2025</time>" in english
    french = alice_client.get(reverse("mail-inbox"), headers={"accept-language": "fr"}).text
    assert ">31/10/2025</time>" in french


def test_times_of_today_and_full_dates_read_as_a_mail_client_shows_them() -> None:
    today = timezone.localtime().replace(hour=16, minute=37, second=0, microsecond=0)
    with translation.override("en"):
        assert mail_date(today) == "4:37 PM"  # not "4:37 p.m."
        assert full_date(today.replace(year=2025, month=12, day=19)) == "19 Dec 2025, 4:37 PM"
    with translation.override("fr"):
        assert mail_date(today) == "16:37"
        assert full_date(today.replace(year=2025, month=12, day=19)) == "19 décembre 2025 16:37"


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_the_lists_date_texts_are_djangos_for_every_format(language: str, zone: str) -> None:
    """The list's per-page formatter (day parts once a day) writes what dateformat writes,
    across a change to summer time, for the formats in use and for every specifier."""
    formats_used = [
        formats.get_format(name, lang=language)
        for name in ("DATETIME_FORMAT", "TIME_FORMAT", "MONTH_DAY_FORMAT", "SHORT_DATE_FORMAT")
    ]
    every_specifier = [r"D, d M Y H:i:s O", "c", "r", "U", r"l jS \o\f F Y h:i:s A e T Z I"]
    every_specifier += [r"\j \Y N E W t L o z b w y", "g:i a P f u G"]
    start = datetime(2026, 3, 27, 22, 0, 5, 250, tzinfo=UTC)  # Europe's change: the 29th
    with translation.override(language):
        for format_string in formats_used + every_specifier:
            texts = DateTexts(format_string)
            for minutes in range(0, 6 * 24 * 60, 97):
                value = (start + timedelta(minutes=minutes)).astimezone(ZoneInfo(zone))
                assert texts(value) == dateformat.format(value, format_string)


def test_trash_and_junk_stay_out_of_a_conversation_seen_from_the_inbox(
    alice_client: Client, mine: Mailbox
) -> None:
    kept = mine.add("Réunion", seen=True)
    mine.add("Re: Réunion", role="trash", conversation=kept.content.conversation, minutes=1)

    row = alice_client.get(reverse("mail-inbox")).context["rows"][0]

    assert (row.count, row.unread) == (1, False)


def test_a_row_sums_up_its_conversation_across_folders_but_trash_and_junk(
    alice_client: Client, mine: Mailbox
) -> None:
    first = mine.add("Voyage", seen=True, sender="Dave Martin <dave@ecole.test>")
    thread = first.content.conversation
    Message.objects.create(
        folder=mine.folders["archive"], content=first.content, uidvalidity=1, uid=9001,
        seen=True, date=first.date, keywords=["$Forwarded"],
    )  # fmt: skip
    sent = mine.add("Re: Voyage", role="sent", conversation=thread, minutes=1, seen=True,
                    sender="Alice <alice@courrier.test>")  # fmt: skip
    # The labels and the star of a sender the row does not name count all the same.
    Message.objects.filter(pk=sent.pk).update(flagged=True, keywords=["Ecole", "Voyage"])
    archived = mine.add("Re: Voyage", role="archive", conversation=thread, minutes=2,
                        sender="Erin <erin@ecole.test>")  # fmt: skip
    MessageContent.objects.filter(pk=archived.content_id).update(has_attachments=True)
    mine.add("Re: Voyage", role="", conversation=thread, minutes=3, seen=True,
             sender="Frank <frank@ecole.test>")  # fmt: skip
    for role in ("trash", "junk"):  # left out, whatever they hold
        hidden = mine.add("Re: Voyage", role=role, conversation=thread, minutes=4,
                          sender="Spammer <s@spam.test>")  # fmt: skip
        Message.objects.filter(pk=hidden.pk).update(flagged=True, keywords=["Pub"])
    mine.add("Autre", minutes=5, seen=True)
    Message.objects.filter(content__subject="Autre").update(keywords=["Ailleurs"])

    rows = alice_client.get(reverse("mail-inbox")).context["rows"]

    row = next(row for row in rows if row.conversation_id == thread.pk)
    assert (row.count, row.unread, row.flagged, row.has_attachments) == (4, True, True, True)
    assert row.labels == ["Ecole", "Voyage"]
    # The first sender, then the latest two, the most recent last; bold when unread.
    assert row.senders == [("Dave", False), ("Erin", True), ("Frank", False)]
    alone = next(row for row in rows if row.conversation_id != thread.pk)
    assert (alone.count, alone.labels, alone.senders) == (1, ["Ailleurs"], [("Dave", False)])


def test_a_row_of_the_trash_counts_what_the_trash_holds(
    alice_client: Client, mine: Mailbox
) -> None:
    kept = mine.add("Promo", seen=True)
    mine.add("Re: Promo", role="trash", conversation=kept.content.conversation, minutes=1)

    row = alice_client.get(reverse("mail-folder", args=[mine.folders["trash"].pk])).context["rows"][
        0
    ]

    assert (row.count, row.unread) == (2, True)


def test_a_sender_shows_once_with_every_message_of_theirs_counted(
    alice_client: Client, mine: Mailbox
) -> None:
    first = mine.add("Sortie", seen=True, sender="Dave <dave@ecole.test>")
    thread = first.content.conversation
    mine.add("Re", conversation=thread, minutes=1, sender="Erin <erin@ecole.test>")
    mine.add("Re", conversation=thread, minutes=2, seen=True, sender="Dave <dave@ecole.test>")

    row = alice_client.get(reverse("mail-inbox")).context["rows"][0]

    assert (row.count, row.senders) == (3, [("Dave", False), ("Erin", True)])


def test_the_sidebar_counts_unread_conversations_locally(
    alice_client: Client, mine: Mailbox
) -> None:
    """As Gmail does, and as the list shows them: one bold row is one."""
    first = mine.add("Un")
    mine.add("Re: Un", conversation=first.content.conversation, minutes=1)
    mine.add("Re: Un", conversation=first.content.conversation, minutes=2)
    mine.add("Deux", minutes=3)
    mine.add("Lu", minutes=4, seen=True)
    mine.add("Re: Un", role="archive", conversation=first.content.conversation, minutes=5)
    mine.add("Projet", role="", minutes=6)
    mine.add("Re: Projet", role="", minutes=7)

    sidebar = alice_client.get(reverse("mail-inbox")).context["sidebar"]

    assert sidebar.inbox_unread == 2
    unread = {item.folder.name: item.unread for item in sidebar.accounts[0].folders}
    assert unread == {
        "INBOX": 2,
        "Sent": 0,
        "Archive": 1,
        "Junk": 0,
        "Trash": 0,
        "Projets": 2,  # two conversations
    }
    Message.objects.filter(content__conversation=first.content.conversation).update(seen=True)
    assert alice_client.get(reverse("mail-inbox")).context["sidebar"].inbox_unread == 1
    labels = [item.label for item in sidebar.accounts[0].folders]
    assert labels == ["Inbox", "Sent", "Archive", "Junk", "Trash", "Projets"]


# One conversation ------------------------------------------------------------------------------


def test_opening_a_conversation_reads_it_and_queues_the_flag_for_the_server(
    alice_client: Client, mine: Mailbox, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    first = mine.add("Sortie scolaire")
    thread = first.content.conversation
    for minutes in range(1, 6):
        mine.add("Re: Sortie scolaire", conversation=thread, minutes=minutes)

    response = alice_client.get(reverse("mail-conversation", args=[thread.pk]))

    assert response.status_code == 200
    assert len(response.context["shown"]) == 6
    assert not Message.objects.filter(content__conversation=thread, seen=False).exists()
    assert PendingAction.objects.filter(kind="add_flags", flags=["\\Seen"]).count() == 6
    with django_assert_max_num_queries(12):  # read now: a constant, whatever the length
        alice_client.get(reverse("mail-conversation", args=[thread.pk]))


def test_a_message_in_two_folders_shows_once_with_both(alice_client: Client, mine: Mailbox) -> None:
    copy = mine.add("Facture", seen=True)
    Message.objects.create(
        folder=mine.folders["archive"], content=copy.content, uidvalidity=1, uid=999, seen=True,
        date=copy.date,
    )  # fmt: skip

    shown = alice_client.get(
        reverse("mail-conversation", args=[copy.content.conversation_id])
    ).context["shown"]

    assert len(shown) == 1
    assert sorted(f.name for f in shown[0].folders) == ["Archive", "INBOX"]


# Actions ---------------------------------------------------------------------------------------


def test_archiving_moves_the_inbox_copies_and_undo_brings_them_back(
    alice_client: Client, mine: Mailbox
) -> None:
    message = mine.add("À classer")
    conversation = message.content.conversation_id

    response = act(alice_client, "archive", conversation=[conversation], next="/mail/inbox/")

    assert response.status_code == 302
    message.refresh_from_db()
    assert message.folder == mine.folders["archive"]
    assert PendingAction.objects.get().kind == "move"
    undo = UndoableAction.objects.get()

    alice_client.post(reverse("mail-undo", args=[undo.pk]))

    message.refresh_from_db()
    assert message.folder == mine.folders["inbox"]
    assert not UndoableAction.objects.exists()


def test_actions_with_htmx_answer_a_toast_and_tell_the_list_to_reload(
    alice_client: Client, mine: Mailbox
) -> None:
    message = mine.add("Photos")

    response = alice_client.post(
        reverse("mail-act"),
        {"action": "delete", "view": "inbox", "conversation": [message.content.conversation_id]},
        headers={"HX-Request": "true"},
    )

    assert response["HX-Trigger"] == "mail-changed"
    assert "moved to the Trash" in response.text
    assert "Undo" in response.text
    message.refresh_from_db()
    assert message.folder.role == "trash"


def test_star_goes_on_the_newest_message_and_read_unread_on_all(
    alice_client: Client, mine: Mailbox
) -> None:
    first = mine.add("Voyage")
    thread = first.content.conversation
    last = mine.add("Re: Voyage", conversation=thread, minutes=1)

    act(alice_client, "star", conversation=[thread.pk])
    act(alice_client, "read", conversation=[thread.pk])

    assert list(Message.objects.filter(flagged=True)) == [last]
    assert not Message.objects.filter(seen=False).exists()
    act(alice_client, "unread", conversation=[thread.pk])
    assert Message.objects.filter(seen=False).count() == 2


def test_spam_not_spam_move_and_delete_forever(alice_client: Client, mine: Mailbox) -> None:
    message = mine.add("Gagnez un iPhone")
    thread = message.content.conversation_id
    junk, projets = mine.folders["junk"], mine.folders[""]

    act(alice_client, "spam", conversation=[thread])
    assert Message.objects.get(pk=message.pk).folder == junk
    act(alice_client, "not_spam", view=f"folder:{junk.pk}", conversation=[thread])
    assert Message.objects.get(pk=message.pk).folder == mine.folders["inbox"]
    act(alice_client, "move", conversation=[thread], target=projets.pk)
    assert Message.objects.get(pk=message.pk).folder == projets
    act(alice_client, "delete", view=f"folder:{projets.pk}", conversation=[thread])
    trash = mine.folders["trash"]
    act(alice_client, "delete_forever", view=f"folder:{trash.pk}", conversation=[thread])

    assert not Message.objects.filter(pk=message.pk).exists()
    assert PendingAction.objects.filter(kind="expunge").exists()


def test_a_bad_action_request_gets_a_clear_error_and_changes_nothing(
    alice_client: Client, mine: Mailbox
) -> None:
    message = mine.add("Intact")

    no_selection = act(alice_client, "archive", next="/mail/inbox/")
    no_target = act(alice_client, "move", conversation=[message.content.conversation_id])
    unknown = act(alice_client, "explode", conversation=[message.content.conversation_id])

    for response in (no_selection, no_target, unknown):
        assert response.status_code == 302
    page = alice_client.get(reverse("mail-inbox"), follow=True).text
    assert "Select at least one conversation." in page or "Choose the folder" in page
    message.refresh_from_db()
    assert message.folder.role == "inbox"


def test_the_actions_in_french(alice_client: Client, mine: Mailbox) -> None:
    message = mine.add("Devoirs")
    response = alice_client.post(
        reverse("mail-act"),
        {"action": "archive", "view": "inbox", "conversation": [message.content.conversation_id]},
        headers={"HX-Request": "true", "accept-language": "fr"},
    )
    assert "Conversation archivée." in response.text
    assert "Annuler" in response.text


# Search ----------------------------------------------------------------------------------------


def test_search_with_operators_and_a_bad_query(alice_client: Client, mine: Mailbox) -> None:
    mine.add("Budget 2027", sender="Élodie <elodie@ecole.test>")
    mine.add("Budget cantine", minutes=1, sender="Dave <dave@ecole.test>")
    for content in MessageContent.objects.all():
        content.search_text = f"{content.subject} {content.from_name} {content.from_email}"
        content.save()

    found = alice_client.get(reverse("mail-search"), {"q": "budget from:elodie"})
    bad = alice_client.get(reverse("mail-search"), {"q": "colour:blue"})
    bad_fr = alice_client.get(
        reverse("mail-search"), {"q": 'subject:"oops'}, headers={"accept-language": "fr"}
    )

    assert subjects(found) == ["Budget 2027"]
    assert bad.status_code == 200
    assert "Unknown search operator “colour:”." in bad.text
    assert "guillemet" in bad_fr.text


# Settings and live updates ---------------------------------------------------------------------


def test_settings_are_saved_and_bad_input_is_explained(alice_client: Client, alice: User) -> None:
    fields = {
        "display_name": "Alice Martin",
        "language": "fr",
        "time_zone": "Europe/Paris",
        "conversation_view": "on",
        "page_size": "25",
        "images": "ask",
        "signature": "— Alice",
        "shortcuts": "on",
        "undo_send_seconds": "10",
    }
    saved = alice_client.post(reverse("mail-settings"), fields)
    assert saved.status_code == 302
    assert saved.cookies["django_language"].value == "fr"
    prefs = Preferences.objects.get(user=alice)
    assert (prefs.time_zone, prefs.page_size) == ("Europe/Paris", 25)

    refused = alice_client.post(reverse("mail-settings"), {**fields, "page_size": "7"})
    assert refused.status_code == 200
    assert "Sélectionnez un choix valide" in refused.text
    assert Preferences.objects.get(user=alice).page_size == 25


def test_the_poll_says_204_until_the_mail_changes(
    alice_client: Client,
    alice: User,
    django_assert_num_queries: DjangoAssertNumQueries,
    django_capture_on_commit_callbacks: object,
) -> None:
    # POP3: flags stay local, no sync is started by the action.
    message = Mailbox(alice, "alice@pop.test", protocol="pop3").add("Nouvelles")
    version = alice_client.get(reverse("mail-poll")).json()["version"]
    with django_assert_num_queries(2):  # the session and the user: no mail query
        assert alice_client.get(reverse("mail-poll"), {"v": version}).status_code == 204

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        act(alice_client, "read", conversation=[message.content.conversation_id])

    changed = alice_client.get(reverse("mail-poll"), {"v": version})
    assert changed.status_code == 200
    assert changed.json()["version"] != version


# Ownership -------------------------------------------------------------------------------------


def test_every_webmail_url_is_404_for_another_user(
    alice_client: Client, bob_client: Client, mine: Mailbox, theirs: Mailbox
) -> None:
    message = mine.add("Privé")
    conversation = message.content.conversation_id
    act(alice_client, "star", conversation=[conversation])
    undo = UndoableAction.objects.get()
    folder = mine.folders["trash"]

    gets = [
        reverse("mail-folder", args=[mine.folders["inbox"].pk]),
        reverse("mail-conversation", args=[conversation]),
    ]
    posts = [
        (reverse("mail-act"), {"action": "archive", "view": "inbox", "conversation": conversation}),
        (reverse("mail-act"), {"action": "read", "view": "inbox", "message": message.pk}),
        (reverse("mail-undo", args=[undo.pk]), {}),
        (reverse("mail-folder-empty", args=[folder.pk]), {}),
    ]
    for url in gets:
        assert bob_client.get(url).status_code == 404, url
    for url, data in posts:
        assert bob_client.post(url, data).status_code == 404, url
    assert "Privé" not in bob_client.get(reverse("mail-inbox")).text
    assert bob_client.get(reverse("mail-search"), {"q": "Privé"}).context["rows"] == []
    message.refresh_from_db()
    assert (message.folder.role, message.seen) == ("inbox", False)


def test_anonymous_visitors_are_sent_to_sign_in_and_writes_need_post(
    alice_client: Client, mine: Mailbox
) -> None:
    anonymous = Client()
    for name in ("mail-inbox", "mail-starred", "mail-search", "mail-settings", "mail-poll"):
        response = anonymous.get(reverse(name))
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")
    assert alice_client.get(reverse("mail-act")).status_code == 405
    assert alice_client.post(reverse("mail-poll")).status_code == 405


# Against the real IMAP server ------------------------------------------------------------------


@pytest.mark.mailstack
def test_archiving_in_the_webmail_reaches_the_imap_server(
    alice_client: Client, account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1, "Archive-moi"))
    sync.sync_account(account)
    indexing.index_account(account)
    conversation = MessageContent.objects.get(account=account).conversation_id

    act(alice_client, "archive", conversation=[conversation])
    sync.sync_account(account)  # what the task started after the commit does

    server.select_folder("Archive")
    assert len(server.search("ALL")) == 1
    server.select_folder("INBOX")
    assert server.search("ALL") == []
    assert listing.sidebar(account.user).accounts[0].account == account


def test_moves_made_before_the_server_heard_of_the_first_are_folded_into_one(
    alice_client: Client, mine: Mailbox
) -> None:
    message = mine.add("Hésitation")
    thread = message.content.conversation_id
    uid = message.uid

    act(alice_client, "archive", conversation=[thread])
    act(alice_client, "move", conversation=[thread], target=mine.folders[""].pk)
    (pending,) = PendingAction.objects.all()
    assert (pending.folder, pending.target) == (mine.folders["inbox"], mine.folders[""])

    act(alice_client, "move", conversation=[thread], target=mine.folders["inbox"].pk)
    assert not PendingAction.objects.exists()  # back where it started: nothing to tell
    message.refresh_from_db()
    assert (message.folder.role, message.uid) == ("inbox", uid)


@pytest.mark.mailstack
def test_archive_then_undo_before_the_sync_leaves_the_server_as_it_was(
    alice_client: Client, account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1, "Reste là"))
    sync.sync_account(account)
    conversation = MessageContent.objects.get(account=account).conversation_id

    act(alice_client, "archive", conversation=[conversation])
    alice_client.post(reverse("mail-undo", args=[UndoableAction.objects.get().pk]))
    sync.sync_account(account)

    server.select_folder("INBOX")
    assert len(server.search("ALL")) == 1
    assert Message.objects.get(folder__account=account).folder.role == "inbox"


# Labels and snooze -----------------------------------------------------------------------------


def test_labels_are_imap_keywords_added_and_removed_on_the_server(
    alice_client: Client, mine: Mailbox
) -> None:
    message = mine.add("Sortie au musée")
    thread = message.content.conversation_id

    act(alice_client, "label", conversation=[thread], label="Ecole")
    message.refresh_from_db()
    assert message.keywords == ["Ecole"]
    assert PendingAction.objects.get().flags == ["Ecole"]
    response = alice_client.get(reverse("mail-inbox"))
    assert response.context["rows"][0].labels == ["Ecole"]
    assert response.context["sidebar"].labels == ["Ecole"]
    assert subjects(alice_client.get(reverse("mail-search"), {"q": "label:ecole"})) == [
        "Sortie au musée"
    ]

    act(alice_client, "unlabel", conversation=[thread], label="Ecole")
    message.refresh_from_db()
    assert message.keywords == []
    assert [a.kind for a in PendingAction.objects.order_by("id")] == ["add_flags", "remove_flags"]


def test_a_label_that_is_not_an_imap_keyword_is_refused_with_a_reason(
    alice_client: Client, mine: Mailbox
) -> None:
    message = mine.add("Accents")
    response = alice_client.post(
        reverse("mail-act"),
        {"action": "label", "view": "inbox", "label": "Réunions",
         "conversation": [message.content.conversation_id]},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert "A label is one word" in response.text
    message.refresh_from_db()
    assert message.keywords == []


@pytest.mark.mailstack
def test_a_label_set_on_another_client_shows_up_here(
    alice_client: Client, account: MailAccount, server: IMAPClient
) -> None:
    server.append("INBOX", sample(1, "Étiquetée"))
    sync.sync_account(account)
    server.select_folder("INBOX")
    server.add_flags(server.search("ALL"), [b"Projets"])
    sync.sync_account(account)

    response = alice_client.get(reverse("mail-inbox"))
    assert response.context["rows"][0].labels == ["Projets"]
    assert response.context["sidebar"].labels == ["Projets"]


def test_a_snoozed_conversation_leaves_the_inbox_and_comes_back_unread(
    alice_client: Client, mine: Mailbox, alice: User
) -> None:
    from mail import services

    message = mine.add("Plus tard", seen=True)
    mine.add("Maintenant", minutes=1)

    response = act(
        alice_client, "snooze", conversation=[message.content.conversation_id], snooze="tomorrow"
    )
    assert response.status_code == 302
    assert subjects(alice_client.get(reverse("mail-inbox"))) == ["Maintenant"]
    assert subjects(alice_client.get(reverse("mail-snoozed"))) == ["Plus tard"]

    assert services.wake_snoozed(now=datetime.now(UTC) + timedelta(days=8)) == 1

    assert subjects(alice_client.get(reverse("mail-inbox"))) == ["Maintenant", "Plus tard"]
    message.refresh_from_db()
    assert not message.seen


def test_a_snooze_in_the_past_is_refused(alice_client: Client, mine: Mailbox) -> None:
    message = mine.add("Hier")
    response = alice_client.post(
        reverse("mail-act"),
        {"action": "snooze", "view": "inbox", "snooze": "custom", "until": "2020-01-01T08:00",
         "conversation": [message.content.conversation_id]},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert "Choose when the conversation comes back." in response.text
    assert subjects(alice_client.get(reverse("mail-inbox"))) == ["Hier"]


def test_highlighting_marks_the_searched_words_and_escapes_the_rest() -> None:
    from mail.templatetags.mail_tags import highlight

    marked = highlight("Budget <b>2027</b> : le BUDGET", ["budget", "2027"])

    assert marked == (
        "<mark>Budget</mark> &lt;b&gt;<mark>2027</mark>&lt;/b&gt; : le <mark>BUDGET</mark>"
    )
    assert highlight("<i>x</i>", []) == "&lt;i&gt;x&lt;/i&gt;"


def test_a_conversation_costs_the_same_queries_for_two_or_eight_messages(
    alice_client: Client, mine: Mailbox, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    def thread_of(length: int) -> int:
        first = mine.add(f"Fil de {length}", seen=True)
        for minutes in range(1, length):
            mine.add("Re", conversation=first.content.conversation, minutes=minutes, seen=True)
        return first.content.conversation_id

    short, long = thread_of(2), thread_of(8)
    alice_client.get(reverse("mail-conversation", args=[short]))
    with django_assert_num_queries(8) as two:
        alice_client.get(reverse("mail-conversation", args=[short]))
    with django_assert_num_queries(len(two.captured_queries)):
        alice_client.get(reverse("mail-conversation", args=[long]))


def test_a_search_page_costs_the_same_queries_for_few_or_many_results(
    alice_client: Client, mine: Mailbox, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    def add(count: int, word: str) -> None:
        for number in range(count):
            message = mine.add(f"{word} {number}", minutes=number)
            MessageContent.objects.filter(pk=message.content_id).update(search_text=word)

    add(3, "piscine")
    add(40, "cantine")
    alice_client.get(reverse("mail-search"), {"q": "piscine"})
    with django_assert_num_queries(9) as few:
        alice_client.get(reverse("mail-search"), {"q": "piscine"})
    with django_assert_num_queries(len(few.captured_queries)):
        response = alice_client.get(reverse("mail-search"), {"q": "cantine"})
    assert len(response.context["rows"]) == 40
