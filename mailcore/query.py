"""Gmail-style search queries, parsed into a small typed tree the Django layer turns into SQL.

    budget from:elodie subject:"conseil d'école" -in:trash (has:attachment OR larger:5M)

Grammar, as Gmail reads it: terms side by side must all match; ``OR`` (upper case) or ``|``
between two terms matches either, and binds tighter than the implicit AND, so ``a OR b c`` is
``(a OR b) c``; parentheses group; ``-`` before a term negates it. A term is a free word, a
"quoted phrase" or ``operator:value`` with a case-insensitive operator name and a value that may
be quoted (``subject:"weekly report"``). ``AND`` is accepted and means nothing more.

A word that merely looks like an operator is not one: the name must be ASCII letters and the
value must not start with ``/``, so ``10:30`` and ``https://example.org`` are words, while
``foo:bar`` with an unknown ``foo`` is an error (quoting makes it a phrase). Free text with no
letter or digit (``-``, ``!!!``, ``""``) is dropped, since full-text search could not match it.

Every problem raises `QueryError` with a stable code and its arguments, for the web layer to
phrase in the user's language. Queries are bounded in length, number of terms and nesting, so a
hostile query cannot become a hostile SQL statement or exhaust the recursion limit.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

MAX_QUERY_LENGTH = 500
MAX_TERMS = 50
MAX_DEPTH = 8  # of nested parentheses
# Sizes past this are typos, and a bound keeps the value inside a SQL bigint.
MAX_SIZE = 2**50
# Relative dates further back than this are all the same: before any mail.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)

AddressField = Literal["from", "to", "cc"]
FlagState = Literal["unread", "read", "starred"]
FolderRole = Literal["inbox", "sent", "drafts", "trash", "junk", "archive"]
DateOp = Literal["before", "after"]
AgeOp = Literal["older_than", "newer_than"]
AgeUnit = Literal["d", "w", "m", "y"]
SizeOp = Literal["larger", "smaller"]


class QueryError(ValueError):
    """A query that cannot be searched; ``code`` and ``message_args`` say why."""

    def __init__(self, code: str, *message_args: str | int) -> None:
        super().__init__(code, *message_args)
        self.code = code
        self.message_args: tuple[str | int, ...] = message_args

    def __str__(self) -> str:
        return " ".join(str(part) for part in (self.code, *self.message_args))


# The tree ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """A free word, or a phrase whose words must appear together and in order."""

    text: str
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class Address:
    """``from:``, ``to:`` or ``cc:``: part of a name or address."""

    field: AddressField
    value: str


@dataclass(frozen=True, slots=True)
class Subject:
    text: str
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class Filename:
    """Part of an attachment's name: ``pdf`` or ``report.pdf``."""

    value: str


@dataclass(frozen=True, slots=True)
class HasAttachment:
    pass


@dataclass(frozen=True, slots=True)
class Flag:
    state: FlagState


@dataclass(frozen=True, slots=True)
class InFolder:
    """``in:<folder>``: a role when the value names one (``in:spam`` is the Junk role), else a
    folder's name as typed."""

    name: str
    role: FolderRole | None = None


@dataclass(frozen=True, slots=True)
class Anywhere:
    """``in:anywhere``: no folder restriction, Trash and Junk included."""


@dataclass(frozen=True, slots=True)
class Label:
    keyword: str


@dataclass(frozen=True, slots=True)
class DateBound:
    """``after:`` is from the start of that day on; ``before:`` is up to the start of that day."""

    op: DateOp
    day: date


@dataclass(frozen=True, slots=True)
class Age:
    """``older_than:``/``newer_than:``, relative to the time of the search."""

    op: AgeOp
    amount: int
    unit: AgeUnit

    def cutoff(self, now: datetime) -> datetime:
        """``now`` minus the age; months and years are calendar ones, the day clamped to the
        month's length (a month before March 31 is February's last day)."""
        months = {"m": self.amount, "y": 12 * self.amount}.get(self.unit)
        if months is None:
            days = self.amount * (7 if self.unit == "w" else 1)
            try:
                return max(now - timedelta(days=days), EARLIEST)
            except OverflowError:
                return EARLIEST
        total = now.year * 12 + (now.month - 1) - months
        year, month = divmod(total, 12)
        if year < EARLIEST.year:
            return EARLIEST
        day = min(now.day, calendar.monthrange(year, month + 1)[1])
        return now.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True, slots=True)
class Size:
    """``larger:``/``smaller:``, strictly, in bytes of the raw message."""

    op: SizeOp
    size: int


@dataclass(frozen=True, slots=True)
class Not:
    term: Node


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Node, ...]


Node = (
    Text
    | Address
    | Subject
    | Filename
    | HasAttachment
    | Flag
    | InFolder
    | Anywhere
    | Label
    | DateBound
    | Age
    | Size
    | Not
    | And
    | Or
)


def walk(node: Node | None) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    if node is None:
        return
    yield node
    if isinstance(node, Not):
        yield from walk(node.term)
    elif isinstance(node, And | Or):
        for term in node.terms:
            yield from walk(term)


def highlight_terms(node: Node | None) -> list[str]:
    """The words and phrases a result page may highlight: free text and subject text that is not
    negated (a word the query excludes is not in the results), each once, in query order."""
    found: list[str] = []

    def visit(node: Node) -> None:
        if isinstance(node, Text | Subject):
            if node.text.casefold() not in (seen.casefold() for seen in found):
                found.append(node.text)
        elif isinstance(node, And | Or):
            for term in node.terms:
                visit(term)

    if node is not None:
        visit(node)
    return found


# Tokens ------------------------------------------------------------------------------------------

_OPERATORS = frozenset(
    {
        "from",
        "to",
        "cc",
        "subject",
        "has",
        "filename",
        "is",
        "in",
        "label",
        "before",
        "after",
        "older_than",
        "newer_than",
        "larger",
        "smaller",
    }
)
_ROLES: dict[str, FolderRole] = {
    "inbox": "inbox",
    "sent": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "trash": "trash",
    "junk": "junk",
    "spam": "junk",
    "archive": "archive",
}
_FLAGS: dict[str, FlagState] = {"unread": "unread", "read": "read", "starred": "starred"}
_OPERATOR_NAME = re.compile(r"[A-Za-z_]+")
_DATE = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})")
_DURATION = re.compile(r"(\d{1,6})([dwmy])", re.IGNORECASE)
_SIZE = re.compile(r"(\d{1,16})([kmg]?)b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Characters that end a bare word or an unquoted operator value.
_DELIMITERS = frozenset('()"|')


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "phrase", "operator", "not", "or", "open", "close"]
    text: str = ""
    value: str = ""
    quoted: bool = False


def _read_phrase(query: str, start: int) -> tuple[str, int]:
    """The text between the quote at ``start`` and the next one, and the index after it."""
    end = query.find('"', start + 1)
    if end < 0:
        raise QueryError("unbalanced-quote")
    return " ".join(query[start + 1 : end].split()), end + 1


def _read_word(query: str, start: int) -> tuple[str, int]:
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in _DELIMITERS:
        end += 1
    return query[start:end], end


def _tokens(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    terms = 0
    i = 0
    while i < len(query):
        char = query[i]
        if char.isspace():
            i += 1
            continue
        if char in "()|":
            tokens.append(_Token("open" if char == "(" else "close" if char == ")" else "or"))
            i += 1
            continue
        if char == "-":
            if i + 1 < len(query) and not query[i + 1].isspace():
                tokens.append(_Token("not"))
            i += 1  # a lone dash is punctuation
            continue
        if char == '"':
            text, i = _read_phrase(query, i)
            tokens.append(_Token("phrase", text))
        else:
            token, i = _read_term(query, i)
            tokens.append(token)
        if tokens[-1].kind in ("word", "phrase", "operator"):
            terms += 1
            if terms > MAX_TERMS:
                raise QueryError("too-many-terms", MAX_TERMS)
    return tokens


def _read_term(query: str, start: int) -> tuple[_Token, int]:
    """A word, ``OR``, or an operator with its value, possibly quoted; and where it ends."""
    word, end = _read_word(query, start)
    if word == "OR":
        return _Token("or"), end
    name, colon, value = word.partition(":")
    if not colon or not _OPERATOR_NAME.fullmatch(name):
        return _Token("word", word), end
    name = name.lower()
    quoted = not value and query.startswith('"', end)
    if name not in _OPERATORS:
        if (value and not value.startswith("/")) or quoted:
            raise QueryError("unknown-operator", name)
        return _Token("word", word), end  # "Re:", "Note:", "https://…" are words
    if quoted:
        value, end = _read_phrase(query, end)
    if not value:
        raise QueryError("empty-operand", name)
    return _Token("operator", name, value, quoted), end


# Parser ------------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens; ``None`` stands for a term that was dropped."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def sequence(self, depth: int) -> Node | None:
        """Terms up to the end or a closing parenthesis, all of which must match."""
        terms: list[Node] = []
        while (token := self.peek()) is not None and token.kind != "close":
            if token.kind == "or":
                raise QueryError("misplaced-or")
            if token.kind == "word" and token.text == "AND":
                self.take()
                continue
            term = self.alternatives(depth)
            if term is not None:
                terms.extend(term.terms if isinstance(term, And) else (term,))
        return _combine(And, terms)

    def alternatives(self, depth: int) -> Node | None:
        terms = [self.unary(depth)]
        while (token := self.peek()) is not None and token.kind == "or":
            self.take()
            following = self.peek()
            if following is None or following.kind in ("or", "close"):
                raise QueryError("misplaced-or")
            terms.append(self.unary(depth))
        kept = [term for term in terms if term is not None]
        flat = [t for term in kept for t in (term.terms if isinstance(term, Or) else (term,))]
        return _combine(Or, flat)

    def unary(self, depth: int) -> Node | None:
        negated = False
        while (token := self.take()).kind == "not":  # iterative: "-----a" is not deep
            following = self.peek()
            if following is None or following.kind in ("or", "close"):
                raise QueryError("empty-operand", "-")
            negated = not negated
        term = self.primary(token, depth)
        if term is None or not negated:
            return term
        return term.term if isinstance(term, Not) else Not(term)

    def primary(self, token: _Token, depth: int) -> Node | None:
        if token.kind == "open":
            if depth >= MAX_DEPTH:
                raise QueryError("too-deep", MAX_DEPTH)
            group = self.sequence(depth + 1)
            if self.peek() is None:
                raise QueryError("unbalanced-parenthesis")
            self.take()
            return group
        if token.kind == "close":
            raise QueryError("unbalanced-parenthesis")
        if token.kind == "operator":
            return _operator(token.text, token.value, token.quoted)
        if not any(char.isalnum() for char in token.text):
            return None
        return Text(token.text, phrase=token.kind == "phrase")


def _combine(kind: type[And] | type[Or], terms: list[Node]) -> Node | None:
    if not terms:
        return None
    if len(terms) == 1:
        return terms[0]
    return kind(tuple(terms))


def parse(query: str) -> Node | None:
    """The query's tree, or ``None`` when it asks for nothing (blank, or only punctuation)."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError("too-long", MAX_QUERY_LENGTH)
    # PostgreSQL refuses NUL in a string; it separates words like any blank.
    parser = _Parser(_tokens(query.replace("\x00", " ")))
    tree = parser.sequence(0)
    if parser.peek() is not None:  # only a closing parenthesis stops the outermost sequence
        raise QueryError("unbalanced-parenthesis")
    return tree


# Operator values ---------------------------------------------------------------------------------


def _operator(name: str, value: str, quoted: bool) -> Node:
    key = value.lower()
    match name:
        case "from" | "to" | "cc":
            return Address(name, value)
        case "subject":
            return Subject(value, phrase=quoted)
        case "filename":
            return Filename(value)
        case "label":
            return Label(value)
        case "has":
            if key not in ("attachment", "attachments"):
                raise QueryError("bad-value", name, value)
            return HasAttachment()
        case "is":
            if key not in _FLAGS:
                raise QueryError("bad-value", name, value)
            return Flag(_FLAGS[key])
        case "in":
            if key == "anywhere":
                return Anywhere()
            return InFolder(value, _ROLES.get(key))
        case "before" | "after":
            return DateBound(name, _day(value))
        case "older_than" | "newer_than":
            match = _DURATION.fullmatch(value)
            if not match:
                raise QueryError("bad-duration", value)
            unit = match[2].lower()
            return Age(name, int(match[1]), unit)
        case "larger" | "smaller":
            return Size(name, _size(value))
    raise AssertionError(name)  # pragma: no cover - _OPERATORS lists the names above


def _day(value: str) -> date:
    match = _DATE.fullmatch(value)
    if not match:
        raise QueryError("bad-date", value)
    year, month, day = (int(part) for part in match.groups())
    if year < EARLIEST.year:
        raise QueryError("bad-date", value)
    try:
        return date(year, month, day)
    except ValueError:
        raise QueryError("bad-date", value) from None


def _size(value: str) -> int:
    match = _SIZE.fullmatch(value)
    if not match:
        raise QueryError("bad-size", value)
    size = int(match[1]) * _SIZE_UNITS[match[2].lower()]
    if size > MAX_SIZE:
        raise QueryError("bad-size", value)
    return size
