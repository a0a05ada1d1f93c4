"""The Gmail-style query parser (mailcore.query): what each query means, and every way to get one
wrong."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from mailcore.query import (
    EARLIEST,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    Address,
    AddressField,
    Age,
    AgeUnit,
    And,
    Anywhere,
    DateBound,
    Filename,
    Flag,
    FlagState,
    FolderRole,
    HasAttachment,
    InFolder,
    Label,
    Not,
    Or,
    QueryError,
    Size,
    Subject,
    Text,
    highlight_terms,
    parse,
    walk,
)

CODES = {
    "unknown-operator",
    "empty-operand",
    "bad-value",
    "bad-date",
    "bad-duration",
    "bad-size",
    "unbalanced-quote",
    "unbalanced-parenthesis",
    "misplaced-or",
    "too-long",
    "too-many-terms",
    "too-deep",
}


def words(*texts: str) -> tuple[Text, ...]:
    return tuple(Text(text) for text in texts)


# Free text ---------------------------------------------------------------------------------------


def test_a_word_is_free_text() -> None:
    assert parse("budget") == Text("budget")


def test_words_side_by_side_must_all_match() -> None:
    assert parse("  budget   conseil ") == And(words("budget", "conseil"))


def test_a_quoted_phrase_keeps_its_words_together_with_spaces_normalised() -> None:
    assert parse('"weekly   report" budget') == And(
        (Text("weekly report", phrase=True), Text("budget"))
    )


def test_a_blank_query_asks_for_nothing() -> None:
    assert parse("") is None
    assert parse("   ") is None


def test_text_without_letters_or_digits_is_dropped() -> None:
    assert parse('- !!! "" budget ...') == Text("budget")
    assert parse("!!!") is None


def test_words_that_only_look_like_operators_are_words() -> None:
    assert parse("10:30 https://example.org Re:") == And(
        words("10:30", "https://example.org", "Re:")
    )


def test_quoting_an_unknown_operator_makes_it_a_phrase() -> None:
    assert parse('"mailto:bob@example.org"') == Text("mailto:bob@example.org", phrase=True)


def test_nul_separates_words_like_a_blank() -> None:
    assert parse("bud\x00get") == And(words("bud", "get"))


def test_hyphenated_words_are_not_negations() -> None:
    assert parse("e-mail") == Text("e-mail")


# Operators ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["from", "to", "cc"])
def test_address_operators(field: AddressField) -> None:
    assert parse(f"{field}:elodie@ecole.test") == Address(field, "elodie@ecole.test")


def test_operator_names_ignore_case_and_values_keep_theirs() -> None:
    assert parse("FROM:Élodie") == Address("from", "Élodie")


def test_an_operator_value_may_be_quoted() -> None:
    assert parse('subject:"weekly report"') == Subject("weekly report", phrase=True)
    assert parse('from:"Élodie Martin"') == Address("from", "Élodie Martin")
    assert parse('in:"Projets 2026" x') == And((InFolder("Projets 2026"), Text("x")))


def test_subject() -> None:
    assert parse("subject:conseil") == Subject("conseil")


def test_has_attachment() -> None:
    assert parse("has:attachment") == HasAttachment()
    assert parse("has:Attachments") == HasAttachment()


def test_filename() -> None:
    assert parse("filename:pdf filename:report.pdf") == And(
        (Filename("pdf"), Filename("report.pdf"))
    )


@pytest.mark.parametrize("state", ["unread", "read", "starred"])
def test_is(state: FlagState) -> None:
    assert parse(f"is:{state.upper()}") == Flag(state)


@pytest.mark.parametrize(
    ("value", "role"),
    [
        ("inbox", "inbox"),
        ("INBOX", "inbox"),
        ("sent", "sent"),
        ("drafts", "drafts"),
        ("trash", "trash"),
        ("spam", "junk"),
        ("junk", "junk"),
        ("archive", "archive"),
    ],
)
def test_in_a_role(value: str, role: FolderRole) -> None:
    assert parse(f"in:{value}") == InFolder(value, role)


def test_in_a_folder_by_name() -> None:
    assert parse("in:Projets/2026") == InFolder("Projets/2026")


def test_in_anywhere() -> None:
    assert parse("in:Anywhere") == Anywhere()


def test_label() -> None:
    assert parse("label:$Work") == Label("$Work")


def test_before_and_after_take_both_date_spellings() -> None:
    assert parse("after:2026/01/05 before:2026-2-1") == And(
        (DateBound("after", date(2026, 1, 5)), DateBound("before", date(2026, 2, 1)))
    )


@pytest.mark.parametrize(("value", "amount", "unit"), [("3d", 3, "d"), ("2W", 2, "w")])
def test_older_and_newer_than(value: str, amount: int, unit: AgeUnit) -> None:
    assert parse(f"older_than:{value}") == Age("older_than", amount, unit)
    assert parse(f"newer_than:{value}") == Age("newer_than", amount, unit)


@pytest.mark.parametrize(
    ("value", "size"), [("2048", 2048), ("10K", 10 * 1024), ("5m", 5 * 1024**2), ("1GB", 1024**3)]
)
def test_larger_and_smaller(value: str, size: int) -> None:
    assert parse(f"larger:{value}") == Size("larger", size)
    assert parse(f"smaller:{value}") == Size("smaller", size)


# Ages --------------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 31, 12, 30, tzinfo=UTC)


def test_days_and_weeks_go_back_from_now() -> None:
    assert Age("older_than", 3, "d").cutoff(NOW) == datetime(2026, 3, 28, 12, 30, tzinfo=UTC)
    assert Age("older_than", 2, "w").cutoff(NOW) == datetime(2026, 3, 17, 12, 30, tzinfo=UTC)


def test_months_and_years_are_calendar_ones_clamped_to_the_month() -> None:
    assert Age("newer_than", 1, "m").cutoff(NOW) == datetime(2026, 2, 28, 12, 30, tzinfo=UTC)
    assert Age("newer_than", 14, "m").cutoff(NOW) == datetime(2025, 1, 31, 12, 30, tzinfo=UTC)
    leap_day = datetime(2028, 2, 29, tzinfo=UTC)
    assert Age("newer_than", 1, "y").cutoff(leap_day) == datetime(2027, 2, 28, tzinfo=UTC)


def test_ages_beyond_any_mail_stop_at_the_earliest_date() -> None:
    assert Age("older_than", 999_999, "d").cutoff(NOW) == EARLIEST
    assert Age("older_than", 999_999, "y").cutoff(NOW) == EARLIEST


# Negation, OR, grouping --------------------------------------------------------------------------


def test_a_dash_negates_any_term() -> None:
    assert parse('-budget -"weekly report" -from:bob -in:trash') == And(
        (
            Not(Text("budget")),
            Not(Text("weekly report", phrase=True)),
            Not(Address("from", "bob")),
            Not(InFolder("trash", "trash")),
        )
    )


def test_two_negations_cancel_out() -> None:
    assert parse("--budget") == Text("budget")
    assert parse("-(-budget)") == Text("budget")


def test_or_and_its_pipe_spelling() -> None:
    assert parse("from:alice OR from:bob | is:starred") == Or(
        (Address("from", "alice"), Address("from", "bob"), Flag("starred"))
    )
    assert parse("a|b") == Or(words("a", "b"))


def test_lower_case_or_is_a_word() -> None:
    assert parse("fish or chips") == And(words("fish", "or", "chips"))


def test_or_binds_tighter_than_side_by_side() -> None:
    assert parse("a OR b c") == And((Or(words("a", "b")), Text("c")))


def test_parentheses_group() -> None:
    assert parse("a (b OR c) -(d e)") == And(
        (Text("a"), Or(words("b", "c")), Not(And(words("d", "e"))))
    )


def test_and_is_accepted_and_redundant() -> None:
    assert parse("a AND b") == And(words("a", "b"))


def test_redundant_groups_flatten() -> None:
    assert parse("(a b) c") == And(words("a", "b", "c"))
    assert parse("(a OR b) OR c") == Or(words("a", "b", "c"))
    assert parse("((a))") == Text("a")
    assert parse("a OR ()") == Text("a")


# Highlighting and walking ------------------------------------------------------------------------


def test_highlighting_keeps_wanted_words_and_phrases_once() -> None:
    tree = parse('budget "weekly report" -secret subject:Lunch (Budget OR from:bob) -(hidden)')
    assert highlight_terms(tree) == ["budget", "weekly report", "Lunch"]
    assert highlight_terms(None) == []


def test_walk_visits_every_node() -> None:
    tree = parse("a -(b OR in:trash)")
    assert InFolder("trash", "trash") in list(walk(tree))
    assert len(list(walk(tree))) == 6


# Errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code", "args"),
    [
        ("foo:bar", "unknown-operator", ("foo",)),
        ("mailto:bob@example.org", "unknown-operator", ("mailto",)),
        ('Foo:"bar"', "unknown-operator", ("foo",)),
        ("from:", "empty-operand", ("from",)),
        ("subject: lunch", "empty-operand", ("subject",)),
        ('to:""', "empty-operand", ("to",)),
        ("a -)", "empty-operand", ("-",)),
        ("a -|b", "empty-operand", ("-",)),
        ("is:important", "bad-value", ("is", "important")),
        ("has:pdf", "bad-value", ("has", "pdf")),
        ("before:2026/13/01", "bad-date", ("2026/13/01",)),
        ("after:2026-02-30", "bad-date", ("2026-02-30",)),
        ("after:yesterday", "bad-date", ("yesterday",)),
        ("before:0999/01/01", "bad-date", ("0999/01/01",)),
        ("older_than:3h", "bad-duration", ("3h",)),
        ("newer_than:d", "bad-duration", ("d",)),
        ("larger:big", "bad-size", ("big",)),
        ("smaller:-5", "bad-size", ("-5",)),
        ("larger:99999999999G", "bad-size", ("99999999999G",)),
        ('"weekly report', "unbalanced-quote", ()),
        ('subject:"weekly report', "unbalanced-quote", ()),
        ("(a b", "unbalanced-parenthesis", ()),
        ("a b)", "unbalanced-parenthesis", ()),
        ("(a))(", "unbalanced-parenthesis", ()),
        ("OR a", "misplaced-or", ()),
        ("a OR", "misplaced-or", ()),
        ("a OR OR b", "misplaced-or", ()),
        ("(a OR)", "misplaced-or", ()),
        ("x" * (MAX_QUERY_LENGTH + 1), "too-long", (MAX_QUERY_LENGTH,)),
        (" ".join(["w"] * (MAX_TERMS + 1)), "too-many-terms", (MAX_TERMS,)),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "too-deep", (MAX_DEPTH,)),
    ],
)
def test_bad_queries_raise_a_code_and_its_arguments(
    query: str, code: str, args: tuple[str | int, ...]
) -> None:
    with pytest.raises(QueryError) as raised:
        parse(query)
    assert (raised.value.code, raised.value.message_args) == (code, args)


def test_bounds_are_inclusive() -> None:
    assert parse("x" * MAX_QUERY_LENGTH) == Text("x" * MAX_QUERY_LENGTH)
    assert parse(" ".join(["w"] * MAX_TERMS)) == And(words(*["w"] * MAX_TERMS))
    nested = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert parse(nested) == Text("a")


def test_the_longest_query_of_dashes_and_parentheses_does_not_recurse_deeply() -> None:
    assert parse("-" * (MAX_QUERY_LENGTH - 1) + "a") == Not(Text("a"))  # an odd number of dashes
    with pytest.raises(QueryError) as raised:
        parse("(" * MAX_QUERY_LENGTH)
    assert raised.value.code == "too-deep"


def test_any_jumble_of_syntax_parses_or_raises_a_query_error() -> None:
    pieces = ['"', "(", ")", "|", "-", ":", " ", "a", "OR", "AND", "from:", "is:read", "in:", "é"]
    chooser = random.Random(2026)  # noqa: S311 - test data, not secrets
    raised = set()
    for _ in range(3000):
        query = "".join(chooser.choices(pieces, k=chooser.randint(1, 12)))
        try:
            parse(query)
        except QueryError as error:
            raised.add(error.code)
    assert raised <= CODES
    assert len(raised) > 3  # the jumble does reach the errors


def test_query_errors_read_as_their_code() -> None:
    assert str(QueryError("bad-date", "2026/13/01")) == "bad-date 2026/13/01"
