"""Gmail-style search (mailboxes.search) over rows built in the database: one test per operator,
then combinations, scoping, the Trash and Junk rule, the query count and the full-text index.

PostgreSQL is the default test database; the last test runs a few searches on SQLite."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from accounts.models import User
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from mailboxes.search import QueryError, search_messages, search_text_for

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
# Messages added without a date are each a minute older than the one added before: results,
# newest first, come in the order the test added them.
_minutes = itertools.count(1)
AUTO = datetime.min.replace(tzinfo=UTC)
PDF = {"filename": "Prévisions-2027.pdf", "content_type": "application/pdf", "size": 8}


def make_account(user: User, email: str) -> MailAccount:
    return MailAccount.objects.create(
        user=user, email=email, incoming_host="h", username="u", password="p", smtp_host="h"
    )


def make_folder(account: MailAccount, name: str, role: str = "") -> Folder:
    return Folder.objects.create(account=account, name=name, role=role)


def add(
    folder: Folder,
    subject: str,
    *,
    body: str = "",
    sender: tuple[str, str] = ("Dave", "dave@ecole.test"),
    to: tuple[tuple[str, str], ...] = (),
    cc: tuple[tuple[str, str], ...] = (),
    attachments: tuple[dict[str, Any], ...] = (),
    size: int = 2000,
    date: datetime | None = AUTO,
    seen: bool = True,
    flagged: bool = False,
    keywords: tuple[str, ...] = (),
) -> Message:
    if date is AUTO:
        date = NOW - timedelta(minutes=next(_minutes))
    content = MessageContent(
        account=folder.account,
        sha256=uuid.uuid4().hex,
        raw_path=f"raw/{uuid.uuid4().hex}",
        size=size,
        subject=subject,
        from_name=sender[0],
        from_email=sender[1],
        to=[list(pair) for pair in to],
        cc=[list(pair) for pair in cc],
        date=date,
        has_attachments=bool(attachments),
        attachments=list(attachments),
        body_text=body,
    )
    content.search_text = search_text_for(content)
    content.save()
    return Message.objects.create(
        folder=folder,
        content=content,
        date=date,
        seen=seen,
        flagged=flagged,
        keywords=list(keywords),
    )


@pytest.fixture
def account(alice: User) -> MailAccount:
    return make_account(alice, "alice@courrier.test")


@pytest.fixture
def inbox(account: MailAccount) -> Folder:
    return make_folder(account, "INBOX", Folder.Role.INBOX)


def found(user: User, query: str, **options: Any) -> list[str]:
    """Subjects of what the search finds, in its order (newest first)."""
    return [m.content.subject for m in search_messages(user, query, now=NOW, **options)]


# Free text ---------------------------------------------------------------------------------------


def test_free_words_must_all_appear_anywhere_in_the_message(alice: User, inbox: Folder) -> None:
    add(inbox, "Réunion du conseil", body="Le budget prévisionnel")
    add(inbox, "Lunch", body="budget")
    assert found(alice, "budget") == ["Réunion du conseil", "Lunch"]
    assert found(alice, "BUDGET conseil") == ["Réunion du conseil"]
    assert found(alice, "dave@ecole.test conseil") == ["Réunion du conseil"]  # addresses
    assert found(alice, "prévisions-2027.pdf") == []
    assert found(alice, "budge") == []  # whole words, as typed: no stemming, no prefixes


def test_a_phrase_needs_its_words_together_and_in_order(alice: User, inbox: Folder) -> None:
    add(inbox, "Together", body="the weekly report is late")
    add(inbox, "Apart", body="a report, weekly or not")
    assert found(alice, '"weekly report"') == ["Together"]
    assert found(alice, "weekly report") == ["Together", "Apart"]


def test_a_blank_query_finds_nothing_and_a_bad_one_raises(alice: User, inbox: Folder) -> None:
    add(inbox, "Lunch")
    assert found(alice, "") == []
    assert found(alice, "!!!") == []
    assert found(alice, "lunch\x00") == ["Lunch"]  # PostgreSQL would refuse the NUL
    with pytest.raises(QueryError) as raised:
        search_messages(alice, "before:tomorrow")
    assert raised.value.code == "bad-date"


# Operators ---------------------------------------------------------------------------------------


def test_from_matches_part_of_the_senders_name_or_address(alice: User, inbox: Folder) -> None:
    add(inbox, "From Élodie", sender=("Élodie Martin", "emartin@ecole.test"))
    add(inbox, "From Bob", sender=("Bob", "bob@example.org"))
    assert found(alice, "from:élodie") == ["From Élodie"]  # the name, any case
    assert found(alice, "from:EMARTIN") == ["From Élodie"]  # the address
    assert found(alice, "from:ecole.test") == ["From Élodie"]  # a domain
    assert found(alice, 'from:"Élodie Martin"') == ["From Élodie"]
    assert found(alice, "from:carol") == []


def test_to_matches_to_and_cc_recipients_while_cc_matches_only_cc(
    alice: User, inbox: Folder
) -> None:
    add(inbox, "To Carol", to=(("Carol", "carol@ecole.test"),))
    add(inbox, "Cc Carol", to=(("Dan", "dan@ecole.test"),), cc=(("", "carol@ecole.test"),))
    assert found(alice, "to:carol") == ["To Carol", "Cc Carol"]
    assert found(alice, "cc:carol") == ["Cc Carol"]
    assert found(alice, "to:Dan") == ["Cc Carol"]
    assert found(alice, "cc:dan") == []


def test_address_patterns_are_literal_and_stay_inside_one_name_or_address(
    alice: User, inbox: Folder
) -> None:
    add(inbox, "Two", to=(("Carol", "carol@ecole.test"), ("Dan", "dan@ecole.test")))
    assert found(alice, "to:%") == []  # a wildcard only in SQL
    assert found(alice, "to:_arol") == []
    assert found(alice, 'to:"test dan"') == []  # across two recipients in the JSON text
    assert found(alice, "to:carol@ecole.test") == ["Two"]


def test_subject_matches_words_of_the_subject_only(alice: User, inbox: Folder) -> None:
    add(inbox, "Weekly report", body="lunch")
    add(inbox, "Lunch", body="weekly report")
    add(inbox, "Report of the week")
    assert found(alice, "subject:lunch") == ["Lunch"]
    assert found(alice, "subject:REPORT") == ["Weekly report", "Report of the week"]
    assert found(alice, 'subject:"weekly report"') == ["Weekly report"]


def test_has_attachment(alice: User, inbox: Folder) -> None:
    add(inbox, "With", attachments=(PDF,))
    add(inbox, "Without")
    assert found(alice, "has:attachment") == ["With"]


def test_filename_matches_part_of_an_attachments_name(alice: User, inbox: Folder) -> None:
    add(inbox, "PDF", attachments=({"filename": "a.txt", "content_type": "text/plain"}, PDF))
    add(inbox, "Text", attachments=({"filename": "notes.txt", "content_type": "text/plain"},))
    add(inbox, "None")
    assert found(alice, "filename:pdf") == ["PDF"]
    assert found(alice, "filename:prévisions-2027.PDF") == ["PDF"]
    assert found(alice, "filename:txt") == ["PDF", "Text"]
    assert found(alice, "filename:application") == []  # a content type is not a name


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("is:unread", ["Unread"]),
        ("is:read", ["Starred", "Read"]),
        ("is:starred", ["Starred"]),
    ],
)
def test_is(alice: User, inbox: Folder, query: str, expected: list[str]) -> None:
    add(inbox, "Unread", seen=False, date=NOW - timedelta(hours=1))
    add(inbox, "Starred", flagged=True, date=NOW - timedelta(hours=2))
    add(inbox, "Read", date=NOW - timedelta(hours=3))
    assert found(alice, query) == expected


def test_in_a_role_or_a_folder_by_name(alice: User, account: MailAccount, inbox: Folder) -> None:
    add(inbox, "In the inbox")
    add(make_folder(account, "Sent Items", Folder.Role.SENT), "Sent")
    add(make_folder(account, "Sent"), "In a folder named Sent")  # roles come before names
    add(make_folder(account, "Projets/2026"), "Projet")
    add(make_folder(account, "Drafts", Folder.Role.DRAFTS), "Draft")
    assert found(alice, "in:inbox") == ["In the inbox"]
    assert found(alice, "in:Sent") == ["Sent"]
    assert found(alice, "in:projets/2026") == ["Projet"]
    assert found(alice, "in:drafts") == ["Draft"]
    assert found(alice, "in:nowhere") == []


def test_a_role_word_names_a_folder_in_accounts_without_that_role(
    alice: User, account: MailAccount, inbox: Folder
) -> None:
    add(make_folder(account, "Archive"), "Named Archive, no role")
    other = make_account(alice, "alice@other.test")
    add(make_folder(other, "Archives", Folder.Role.ARCHIVE), "Archive role")
    add(make_folder(other, "archive"), "Named archive beside the role")
    assert found(alice, "in:archive") == ["Named Archive, no role", "Archive role"]


def test_label_is_an_imap_keyword_up_to_case(alice: User, inbox: Folder) -> None:
    add(inbox, "Work", keywords=("$label1", "Work"))
    add(inbox, "Homework", keywords=("Homework",))
    assert found(alice, "label:work") == ["Work"]
    assert found(alice, "label:$Label1") == ["Work"]
    assert found(alice, "label:%") == []


def test_after_is_from_the_start_of_the_day_and_before_up_to_it(alice: User, inbox: Folder) -> None:
    add(inbox, "Last second of the 4th", date=datetime(2026, 3, 4, 23, 59, 59, tzinfo=UTC))
    add(inbox, "Start of the 5th", date=datetime(2026, 3, 5, tzinfo=UTC))
    add(inbox, "Undated", date=None)
    assert found(alice, "after:2026/03/05") == ["Start of the 5th"]
    assert found(alice, "before:2026-03-05") == ["Last second of the 4th"]
    assert found(alice, "after:2026/3/4 before:2026/3/5") == ["Last second of the 4th"]


def test_days_start_in_the_time_zone_given(alice: User, inbox: Folder) -> None:
    add(inbox, "23:30 UTC on the 4th", date=datetime(2026, 3, 4, 23, 30, tzinfo=UTC))
    paris = ZoneInfo("Europe/Paris")  # 00:30 on the 5th there
    assert found(alice, "after:2026/03/05", tz=paris) == ["23:30 UTC on the 4th"]
    assert found(alice, "after:2026/03/05") == []


def test_older_and_newer_than_count_back_from_now(alice: User, inbox: Folder) -> None:
    add(inbox, "Yesterday", date=NOW - timedelta(days=1))
    add(inbox, "Ten days ago", date=NOW - timedelta(days=10))
    add(inbox, "Two months ago", date=NOW - timedelta(days=61))
    add(inbox, "Two years ago", date=NOW - timedelta(days=731))
    assert found(alice, "newer_than:2d") == ["Yesterday"]
    assert found(alice, "newer_than:2w") == ["Yesterday", "Ten days ago"]
    assert found(alice, "older_than:1m") == ["Two months ago", "Two years ago"]
    assert found(alice, "older_than:1y") == ["Two years ago"]


def test_larger_and_smaller_compare_the_raw_size(alice: User, inbox: Folder) -> None:
    add(inbox, "Tiny", size=500, date=NOW - timedelta(hours=1))
    add(inbox, "Ten kilobytes", size=10 * 1024, date=NOW - timedelta(hours=2))
    add(inbox, "Big", size=6 * 1024 * 1024, date=NOW - timedelta(hours=3))
    assert found(alice, "larger:5M") == ["Big"]
    assert found(alice, "larger:10K") == ["Big"]  # strictly
    assert found(alice, "smaller:10K") == ["Tiny"]
    assert found(alice, "smaller:1000") == ["Tiny"]


# Combinations ------------------------------------------------------------------------------------


@pytest.fixture
def mixed(inbox: Folder) -> None:
    add(
        inbox,
        "Budget from Élodie",
        body="budget",
        sender=("Élodie", "elodie@ecole.test"),
        attachments=(PDF,),
        date=NOW - timedelta(hours=1),
    )
    add(
        inbox,
        "Budget from Bob",
        body="budget",
        sender=("Bob", "bob@example.org"),
        seen=False,
        date=NOW - timedelta(hours=2),
    )
    add(inbox, "Lunch from Bob", sender=("Bob", "bob@example.org"),
        date=NOW - timedelta(hours=3))  # fmt: skip


@pytest.mark.usefixtures("mixed")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("budget from:bob", ["Budget from Bob"]),
        ("from:bob is:unread", ["Budget from Bob"]),
        ("has:attachment from:élodie budget", ["Budget from Élodie"]),
        ("budget -from:bob", ["Budget from Élodie"]),
        ("from:bob -budget", ["Lunch from Bob"]),
        ("-budget", ["Lunch from Bob"]),
        ("-from:bob -has:attachment", []),
        ("lunch OR has:attachment", ["Budget from Élodie", "Lunch from Bob"]),
        ("lunch | budget", ["Budget from Élodie", "Budget from Bob", "Lunch from Bob"]),
        ("from:bob (lunch OR is:unread)", ["Budget from Bob", "Lunch from Bob"]),
        ("-(lunch OR is:unread)", ["Budget from Élodie"]),
        ("(budget -from:bob) OR subject:lunch", ["Budget from Élodie", "Lunch from Bob"]),
        ('subject:lunch OR "budget from élodie"', ["Budget from Élodie", "Lunch from Bob"]),
    ],
)
def test_combinations(alice: User, query: str, expected: list[str]) -> None:
    assert found(alice, query) == expected


# Scope and folders -------------------------------------------------------------------------------


def test_another_users_messages_are_never_found(alice: User, bob: User, inbox: Folder) -> None:
    add(inbox, "Alice's budget", body="budget")
    bobs_inbox = make_folder(make_account(bob, "bob@courrier.test"), "INBOX", Folder.Role.INBOX)
    add(bobs_inbox, "Bob's budget", body="budget", flagged=True)
    assert found(alice, "budget") == ["Alice's budget"]
    assert found(alice, "is:starred") == []
    assert found(alice, "in:anywhere") == ["Alice's budget"]
    assert found(bob, "budget OR -budget") == ["Bob's budget"]


@pytest.fixture
def trash_and_junk(account: MailAccount, inbox: Folder) -> None:
    add(inbox, "Budget in the inbox", body="budget", date=NOW - timedelta(hours=1))
    trash = make_folder(account, "Corbeille", Folder.Role.TRASH)
    add(trash, "Budget in the trash", body="budget", date=NOW - timedelta(hours=2))
    junk = make_folder(account, "Junk", Folder.Role.JUNK)
    add(junk, "Budget in junk", body="budget", date=NOW - timedelta(hours=3))


@pytest.mark.usefixtures("trash_and_junk")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("budget", ["Budget in the inbox"]),
        ("budget in:trash", ["Budget in the trash"]),
        ("budget in:corbeille", ["Budget in the trash"]),  # by name, with the Trash role
        ("budget in:spam", ["Budget in junk"]),
        ("in:trash OR in:junk", ["Budget in the trash", "Budget in junk"]),
        ("budget in:anywhere", ["Budget in the inbox", "Budget in the trash", "Budget in junk"]),
        ("budget -in:inbox", []),
        ("budget -in:trash", ["Budget in the inbox"]),
        ("in:inbox OR budget", ["Budget in the inbox"]),  # a trashed budget is still hidden
        ("-(-in:trash)", ["Budget in the trash"]),
    ],
)
def test_trash_and_junk_are_left_out_unless_asked_for(
    alice: User, query: str, expected: list[str]
) -> None:
    assert found(alice, query) == expected


# Costs -------------------------------------------------------------------------------------------


def test_a_page_of_results_costs_one_query_however_many_there_are(
    alice: User,
    account: MailAccount,
    inbox: Folder,
    django_assert_num_queries: Any,  # pytest-django's fixture
) -> None:
    folders = [inbox, make_folder(account, "Archive", Folder.Role.ARCHIVE)]
    other = make_account(alice, "alice@other.test")
    folders.append(make_folder(other, "INBOX", Folder.Role.INBOX))

    def show_page(size: int) -> None:
        with django_assert_num_queries(1):
            page = search_messages(alice, "budget from:dave -is:starred", now=NOW)[:size]
            shown = [(m.content.subject, m.folder.name, m.content.snippet) for m in page]
        assert len(shown) == size

    for number in range(3):
        add(folders[number % 3], f"Budget {number}", body="budget")
    show_page(3)
    for number in range(3, 30):
        add(folders[number % 3], f"Budget {number}", body="budget")
    show_page(25)


def test_free_text_can_be_answered_from_the_full_text_index(alice: User, inbox: Folder) -> None:
    """With a few rows, walking from the user's folders wins, as it does for a small mailbox; with
    the planner's other ways closed, what is left shows the query's expression is the index's."""
    add(inbox, "Budget", body="budget")
    query = search_messages(alice, 'budget "weekly report" -lunch is:unread', now=NOW)
    with connection.cursor() as cursor:
        for method in ("seqscan", "indexscan", "nestloop"):
            cursor.execute(f"SET LOCAL enable_{method} = off")
        sql, params = query.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "mailboxes_content_vector" in plan
    assert "search_text" not in sql.split(" FROM ")[0]  # neither selected nor its vector


def test_the_database_keeps_the_search_vector_and_searches_read_it(
    alice: User, inbox: Folder
) -> None:
    """Migration 0012: PostgreSQL fills the vector itself, on INSERT and whenever search_text
    changes, whoever writes the row (the ORM here, the sync's COPY, the indexer's UPDATE)."""
    message = add(inbox, "Budget", body="Le budget prévisionnel")

    def vector() -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT search_vector::text FROM mailboxes_messagecontent WHERE id = %s",
                [message.content_id],
            )
            return cursor.fetchone()[0]

    assert "'prévisionnel'" in vector()
    MessageContent.objects.filter(pk=message.content_id).update(search_text="Cantine scolaire")
    assert "'cantine'" in vector()
    assert "'prévisionnel'" not in vector()
    assert found(alice, "cantine") == ["Budget"]
    assert found(alice, "prévisionnel") == []
    sql = str(search_messages(alice, "cantine -lunch", now=NOW).query)
    assert '"search_vector" @@' in sql
    assert "to_tsvector" not in sql  # nothing computed again row by row


# SQLite ------------------------------------------------------------------------------------------

SQLITE_SCRIPT = """
import django
django.setup()
from datetime import UTC, datetime, timedelta
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts.models import User
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from mailboxes.search import search_messages, search_text_for
now = datetime(2026, 3, 31, tzinfo=UTC)
alice = User.objects.create_user("alice@example.org", "x" * 12)
bob = User.objects.create_user("bob@example.org", "x" * 12)
rows = (
    (alice, "inbox", "Réunion budget", ("Élodie", "elodie@ecole.test"), [["Carol", "c@x.test"]],
     [{"filename": "plan.pdf", "content_type": "application/pdf"}], ["Work"], 1),
    (alice, "inbox", "Lunch", ("Bob", "bob@example.org"), [], [], [], 40),
    (alice, "trash", "Old budget", ("Bob", "bob@example.org"), [], [], [], 400),
    (bob, "inbox", "Budget de Bob", ("Bob", "bob@example.org"), [], [], [], 1),
)
for number, (owner, role, subject, sender, to, attachments, keywords, age) in enumerate(rows):
    account, _ = MailAccount.objects.get_or_create(
        user=owner, email=owner.email,
        defaults=dict(incoming_host="h", username="u", password="p", smtp_host="h"))
    folder, _ = Folder.objects.get_or_create(account=account, name=role, role=role)
    content = MessageContent(account=account, sha256=str(number), raw_path="x", size=1,
                             subject=subject, from_name=sender[0], from_email=sender[1], to=to,
                             attachments=attachments, has_attachments=bool(attachments))
    content.search_text = search_text_for(content)
    content.save()
    Message.objects.create(folder=folder, content=content, keywords=keywords,
                           date=now - timedelta(days=age))
def found(query):
    return [m.content.subject for m in search_messages(alice, query, now=now)]
for query in ("budget", "from:ecole.test", "to:carol", "filename:PDF", "label:work",
              "lunch OR budget", "-budget", "budget in:anywhere", "older_than:1w", '"Budget de"'):
    print(query, found(query), sep=" = ")
"""


def test_operators_work_on_sqlite(tmp_path: Path) -> None:
    environ = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "webmail.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "budget = ['Réunion budget']",
        "from:ecole.test = ['Réunion budget']",
        "to:carol = ['Réunion budget']",
        "filename:PDF = ['Réunion budget']",
        "label:work = ['Réunion budget']",
        "lunch OR budget = ['Réunion budget', 'Lunch']",
        "-budget = ['Lunch']",
        "budget in:anywhere = ['Réunion budget', 'Old budget']",
        "older_than:1w = ['Lunch']",
        '"Budget de" = []',
    ]
