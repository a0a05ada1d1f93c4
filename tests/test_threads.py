"""mailcore.threads: conversations built one message at a time, in the order a sync stores them.

Plain Python, no database: `MemoryThreadStore` stands in for the Django layer's store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailcore.threads import (
    MAX_MESSAGE_ID_LENGTH,
    MAX_REFERENCES,
    MemoryThreadStore,
    ThreadKey,
    ThreadStore,
    assign_thread,
    clean_message_id,
    has_reply_prefix,
    index_message,
    normalise_subject,
    referenced_ids,
)

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def mail(
    message_id: str,
    subject: str = "Lunch",
    *,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    date: datetime | None = MONDAY,
) -> ThreadKey:
    return ThreadKey(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        date=date,
    )


def reply_to(
    parent: ThreadKey, message_id: str, *, subject: str | None = None, days: int = 1
) -> ThreadKey:
    """A well-behaved reply: In-Reply-To the parent, References the parent's chain.

    Tests of linking by id give it another subject, so that the subject fallback cannot hide a
    broken link."""
    parent_id = clean_message_id(parent.message_id)
    return mail(
        message_id,
        f"Re: {parent.subject}" if subject is None else subject,
        in_reply_to=parent_id,
        references=(*referenced_ids(parent)[::-1], parent_id),
        date=(parent.date or MONDAY) + timedelta(days=days),
    )


@pytest.fixture
def store() -> MemoryThreadStore:
    return MemoryThreadStore()


# Linking by id


def test_a_reply_joins_its_parent(store: MemoryThreadStore) -> None:
    parent = mail("lunch@alice.test")
    thread = store.file(parent)

    assert store.file(reply_to(parent, "re-lunch@bob.test", subject="Yes")) == thread
    assert store.threads() == {thread: ["lunch@alice.test", "re-lunch@bob.test"]}


def test_a_reply_synced_before_its_parent_is_joined_by_the_parent(
    store: MemoryThreadStore,
) -> None:
    parent = mail("lunch@alice.test")
    reply = reply_to(parent, "re-lunch@bob.test", subject="Re: Lunch moved to 1pm")
    # Newest first: the reply is stored, then the older parent.
    thread = store.file(reply)

    assert store.file(parent) == thread
    assert len(store.threads()) == 1


def test_a_chain_with_a_missing_middle_message_still_groups_through_the_root(
    store: MemoryThreadStore,
) -> None:
    root = mail("root@alice.test")
    middle = reply_to(root, "middle@bob.test", subject="Where?")
    last = reply_to(middle, "last@alice.test", subject="At the usual place")
    thread = store.file(root)

    # The middle message is in a folder never synced, or was deleted.
    assert store.file(last) == thread
    assert store.thread_of("middle@bob.test") is None


def test_siblings_answering_a_parent_that_was_never_stored_group_together(
    store: MemoryThreadStore,
) -> None:
    announcement = mail("announce@list.test", "Picnic")
    thread = store.file(reply_to(announcement, "yes@bob.test", subject="Count me in"))

    assert store.file(reply_to(announcement, "no@carol.test", subject="Sorry, away")) == thread


def test_a_message_referencing_two_threads_merges_them_into_the_oldest(
    store: MemoryThreadStore,
) -> None:
    lunch = mail("lunch@alice.test", "Lunch")
    dinner = mail("dinner@alice.test", "Dinner")
    lunch_thread = store.file(lunch)
    dinner_thread = store.file(dinner)
    assert lunch_thread < dinner_thread

    both = mail(
        "both@bob.test",
        "Re: Lunch and dinner",
        references=("lunch@alice.test", "dinner@alice.test"),
    )
    assert store.file(both) == lunch_thread
    assert store.thread_of("dinner@alice.test") == lunch_thread
    assert list(store.threads()) == [lunch_thread]


def test_a_late_message_answering_one_thread_and_answered_in_another_merges_them(
    store: MemoryThreadStore,
) -> None:
    """Replies that only name their parent (In-Reply-To, no References) start separate threads
    until the message between them arrives, older mail synced last."""
    lunch_thread = store.file(mail("re-lunch@bob.test", "Re: Lunch", in_reply_to="lunch@x.test"))
    dinner_thread = store.file(
        mail("re-dinner@carol.test", "Re: Dinner", in_reply_to="<dinner@alice.test>")
    )
    assert lunch_thread != dinner_thread

    dinner = mail("dinner@alice.test", "Dinner too?", in_reply_to="<lunch@x.test>")
    assert store.file(dinner) == lunch_thread
    assert store.thread_of("re-dinner@carol.test") == lunch_thread
    assert list(store.threads()) == [lunch_thread]


def test_a_reply_in_sent_joins_the_conversation_it_answers(store: MemoryThreadStore) -> None:
    inbox = mail("question@bob.test", "Question")
    thread = store.file(inbox)
    sent = reply_to(inbox, "answer@alice.test", subject="Answer")
    backing: ThreadStore = store  # what the Django layer implements

    assert assign_thread(sent, backing) == thread


# Duplicates and self-references


def test_copies_of_one_message_in_two_folders_land_in_one_thread(
    store: MemoryThreadStore,
) -> None:
    in_inbox = mail("<lunch@alice.test>")
    in_archive = mail("lunch@alice.test")
    thread = store.file(in_inbox)

    assert store.file(in_archive) == thread
    assert store.threads() == {thread: ["lunch@alice.test", "lunch@alice.test"]}


def test_a_message_listing_its_own_id_in_references_is_not_confused(
    store: MemoryThreadStore,
) -> None:
    selfish = mail(
        "me@alice.test",
        "Notes",
        in_reply_to="<me@alice.test>",
        references=("<me@alice.test>",),
    )
    assert referenced_ids(selfish) == []
    assert index_message(selfish).references == ()

    thread = store.file(selfish)
    assert store.file(mail("other@bob.test", "Notes")) != thread
    assert store.file(reply_to(selfish, "re-me@bob.test", subject="Comments")) == thread


def test_messages_without_a_message_id_are_not_grouped_by_it(store: MemoryThreadStore) -> None:
    first = store.file(mail("", "Invoice"))
    second = store.file(mail("  ", "Invoice"))

    assert first != second


# Subject fallback, for mailers that drop In-Reply-To and References


def test_a_reply_without_references_joins_the_original_by_subject(
    store: MemoryThreadStore,
) -> None:
    thread = store.file(mail("lunch@alice.test", "Lunch"))

    assert store.file(mail("re@bob.test", "Re: Lunch", date=MONDAY + timedelta(days=3))) == thread


def test_an_original_synced_after_its_reply_joins_it_by_subject(
    store: MemoryThreadStore,
) -> None:
    thread = store.file(mail("re@bob.test", "RE: lunch", date=MONDAY + timedelta(days=3)))

    assert store.file(mail("lunch@alice.test", "Lunch")) == thread


def test_a_reply_sixty_days_later_starts_a_new_thread(store: MemoryThreadStore) -> None:
    thread = store.file(mail("lunch@alice.test", "Lunch"))
    late = mail("re@bob.test", "Re: Lunch", date=MONDAY + timedelta(days=60))

    assert store.file(late) != thread


def test_the_subject_window_can_be_changed(store: MemoryThreadStore) -> None:
    thread = store.file(mail("lunch@alice.test", "Lunch"))
    late = mail("re@bob.test", "Re: Lunch", date=MONDAY + timedelta(days=60))

    assert store.file(late, subject_window=timedelta(days=90)) == thread


def test_two_unrelated_messages_with_the_same_subject_are_not_grouped(
    store: MemoryThreadStore,
) -> None:
    first = store.file(mail("a@alice.test", "Hello"))
    second = store.file(mail("b@bob.test", "Hello", date=MONDAY + timedelta(hours=1)))

    assert first != second


@pytest.mark.parametrize("subject", ["", "   ", "Re:", "RE: [liste]"])
def test_empty_subjects_are_never_grouped(store: MemoryThreadStore, subject: str) -> None:
    first = store.file(mail("a@alice.test", subject))
    second = store.file(mail("b@bob.test", f"Re: {subject}", date=MONDAY + timedelta(hours=1)))

    assert first != second


def test_a_reply_dated_before_the_message_with_its_subject_does_not_join_it(
    store: MemoryThreadStore,
) -> None:
    """The later message must be the reply: a new "Hello" is not an answer to an older one."""
    first = store.file(mail("re@bob.test", "Re: Hello"))
    later = store.file(mail("hello@carol.test", "Hello", date=MONDAY + timedelta(days=1)))

    assert first != later


def test_messages_without_a_date_are_not_grouped_by_subject(store: MemoryThreadStore) -> None:
    first = store.file(mail("a@alice.test", "Lunch", date=None))
    second = store.file(mail("b@bob.test", "Re: Lunch", date=None))

    assert first != second


def test_naive_dates_are_taken_as_utc(store: MemoryThreadStore) -> None:
    thread = store.file(mail("a@alice.test", "Lunch", date=MONDAY))
    # Naive on purpose: a parser that lost the offset must not make the comparison raise.
    naive = mail("b@bob.test", "Re: Lunch", date=datetime(2026, 3, 3, 9, 0))

    assert store.file(naive) == thread


def test_references_win_over_the_subject(store: MemoryThreadStore) -> None:
    lunch = mail("lunch@alice.test", "Lunch")
    other_lunch = mail("lunch2@carol.test", "Lunch", date=MONDAY + timedelta(days=1))
    thread = store.file(lunch)
    other = store.file(other_lunch)

    assert store.file(reply_to(lunch, "re@bob.test", days=2)) == thread
    assert other != thread


# Subject normalisation


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Lunch", "lunch"),
        ("Re: Lunch", "lunch"),
        ("RE: RE: Re:Lunch", "lunch"),
        ("Fwd: Fw: lunch", "lunch"),
        ("Re[2]: Lunch", "lunch"),
        ("Re(3): Lunch", "lunch"),
        ("Re^2: Lunch", "lunch"),
        ("RE : Lunch", "lunch"),  # French typography
        ("RE\u00a0: Lunch", "lunch"),  # with a no-break space
        ("TR: Réunion", "réunion"),
        ("RE: [liste] Réunion", "réunion"),
        ("[liste] Re: [liste] TR: Réunion", "réunion"),
        ("Réf. : Dossier 12", "dossier 12"),
        ("Réf: Dossier 12", "dossier 12"),
        ("AW: WG: Termin", "termin"),
        ("SV: VS: Møte", "møte"),
        ("VL: Kokous", "kokous"),
        ("回复：会议", "会议"),  # full-width colon
        ("Lunch (fwd)", "lunch"),
        ("  Many   spaces\there  ", "many spaces here"),
        ("Reunion: tomorrow", "reunion: tomorrow"),
        ("Re: Re: Re:", ""),
        ("Straße", "strasse"),
    ],
)
def test_normalise_subject(subject: str, expected: str) -> None:
    assert normalise_subject(subject) == expected


def test_a_french_forward_and_a_listed_reply_normalise_to_the_same() -> None:
    assert normalise_subject("TR: Réunion") == normalise_subject("RE: [liste] Réunion")


def test_decomposed_accents_normalise_like_composed_ones() -> None:
    assert normalise_subject("Re\u0301union") == normalise_subject("Réunion")


@pytest.mark.parametrize(
    ("subject", "is_reply"),
    [
        ("Re: Lunch", True),
        ("TR: Réunion", True),
        ("[liste] AW: Termin", True),
        ("Lunch (fwd)", True),
        ("Lunch", False),
        ("[liste] Lunch", False),
        ("Reunion: tomorrow", False),
        ("I: Lunch", False),  # Italian single-letter prefixes are too ambiguous
    ],
)
def test_has_reply_prefix(subject: str, is_reply: bool) -> None:
    assert has_reply_prefix(subject) is is_reply


# Referenced ids


def test_referenced_ids_start_with_the_direct_parent_and_drop_duplicates() -> None:
    key = mail(
        "me@x.test",
        in_reply_to="<parent@x.test>",
        references=("<root@x.test>", "<middle@x.test>", "<parent@x.test>", "<root@x.test>"),
    )

    assert referenced_ids(key) == ["parent@x.test", "root@x.test", "middle@x.test"]


def test_references_given_as_one_header_value_are_split() -> None:
    key = mail("me@x.test", references=("<root@x.test>\r\n <parent@x.test>",))

    assert referenced_ids(key) == ["parent@x.test", "root@x.test"]


def test_in_reply_to_is_read_for_its_first_id_only() -> None:
    """Old mailers follow the id with the author's address, which would link all their mail."""
    key = mail("me@x.test", in_reply_to="<parent@x.test> (John <john@x.test>'s message)")

    assert referenced_ids(key) == ["parent@x.test"]


def test_an_absurd_references_header_is_bounded_to_the_newest_ids_and_the_root() -> None:
    ids = tuple(f"<id{n}@spam.test>" for n in range(10_000))
    key = mail("me@x.test", in_reply_to="<id9999@spam.test>", references=ids)

    found = referenced_ids(key)
    assert len(found) <= MAX_REFERENCES
    assert found[0] == "id9999@spam.test"
    assert found[1] == "id9998@spam.test"
    assert found[-1] == "id0@spam.test"


def test_an_absurd_references_header_in_one_string_is_bounded() -> None:
    header = " ".join(f"<id{n}@spam.test>" for n in range(200_000))
    key = mail("me@x.test", references=(header,))

    found = referenced_ids(key)
    assert len(found) <= MAX_REFERENCES
    assert found[0] == "id199999@spam.test"
    assert found[-1] == "id0@spam.test"


def test_threading_a_message_with_an_absurd_header_stays_bounded(
    store: MemoryThreadStore,
) -> None:
    root = mail("id0@spam.test", "Spam")
    thread = store.file(root)
    ids = tuple(f"<id{n}@spam.test>" for n in range(10_000))

    assert store.file(mail("me@x.test", "Spam again", references=ids)) == thread
    assert len(index_message(mail("me@x.test", references=ids)).references) <= MAX_REFERENCES


# Hostile ids


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<lunch@alice.test>", "lunch@alice.test"),
        ("lunch@alice.test", "lunch@alice.test"),
        ("  <lunch@alice.test>  ", "lunch@alice.test"),
        ("<lunch@\r\n alice.test>", "lunch@alice.test"),  # folded inside the brackets
        ("<lunch@alice.test> (comment)", "lunch@alice.test"),
        ("lunch@alice.test (comment)", "lunch@alice.test"),
        ("<>", ""),
        ("", ""),
        ("<a\x00b@x.test>", "ab@x.test"),  # PostgreSQL refuses NUL in text
        ("<<<nested>>>", "nested"),
        ("<unclosed@x.test", "unclosed@x.test"),
        ("<é@exemple.test>", "é@exemple.test"),  # internationalised mail
    ],
)
def test_clean_message_id(raw: str, expected: str) -> None:
    assert clean_message_id(raw) == expected


def test_a_very_long_id_is_cut_to_the_column_and_still_matches_itself(
    store: MemoryThreadStore,
) -> None:
    long_id = "x" * 100_000 + "@x.test"
    assert len(clean_message_id(long_id)) == MAX_MESSAGE_ID_LENGTH
    thread = store.file(mail(f"<{long_id}>"))

    assert store.file(mail("re@bob.test", "Re: Lunch", in_reply_to=long_id)) == thread


@pytest.mark.parametrize(
    "key",
    [
        mail("with spaces in it", "Lunch", in_reply_to="also spaces", references=("a b c",)),
        mail("<>", "", in_reply_to="<>", references=("<>", "", "   ")),
        mail("<" * 5000, ">" * 5000, in_reply_to="<" * 5000, references=(">" * 5000,)),
        mail("a" * 1_000_000, "Re: " * 100_000, in_reply_to="b" * 1_000_000),
        mail("\x00\x01\x7f", "\x00Re:\x00", references=("\x00<\x00>\x00",)),
        mail("<x@y>", "[" * 10_000 + "Lunch", references=("]" * 10_000,)),
    ],
)
def test_hostile_input_does_not_crash(store: MemoryThreadStore, key: ThreadKey) -> None:
    thread = store.file(key)

    assert thread in store.threads()
    assert all(len(ref) <= MAX_MESSAGE_ID_LENGTH for ref in referenced_ids(key))
