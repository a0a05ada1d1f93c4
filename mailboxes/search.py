"""Search over a user's stored mail: free text, and Gmail-style operators (mailcore.query).

Free words and phrases, PostgreSQL: ``to_tsvector('simple', search_text)``, which the database
stores in a generated column with a GIN index (migration 0012). The 'simple' configuration does
no stemming, so it treats French and English alike and matches words as typed. All the free text
of a query, with its negations, ORs and groups, becomes one ``tsquery`` where it can, so the
index is scanned once. Elsewhere (SQLite):
each word or phrase must appear, case-insensitively — a scan, which suits the small sites that
run on the embedded default.

Operators are filters on columns of the user's own messages, which the join through folder and
account already narrows to one user's mail:

- ``from:`` is a substring of the sender's name or address, ``to:`` of a To or Cc recipient's (as
  Gmail's does), ``cc:`` of a Cc one's. Substrings, not words, so that ``from:example.org`` finds
  ``alice@example.org``, which full-text search (one lexeme per address) would not. Recipients are
  JSON lists of [name, address] pairs; each pair's halves are compared, never the JSON text, so a
  pattern cannot match across two recipients or the punctuation between them.
- ``subject:`` goes through the full-text index (every subject is in ``search_text``), and the
  subject's own words are checked on the rows the index finds.
- ``filename:`` is a substring of an attachment's name, ``label:`` an IMAP keyword, equal up to
  case. ``in:`` names a role (Folder.Role) before a folder's name: ``in:archive`` is the Archive
  role, or a folder named "Archive" in an account that has no folder with that role.
- Trash and Junk are left out unless the query asks for them (``in:trash``, ``in:spam``, a folder
  of those roles by name, ``in:anywhere``), as Gmail does.
"""

from __future__ import annotations

import operator
from datetime import datetime, time, tzinfo
from functools import reduce
from typing import Any, Literal

from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorField
from django.db import NotSupportedError, connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Exists, Expression, F, OuterRef, Q, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from accounts.models import User
from mailboxes.models import Folder, Message, MessageContent
from mailcore.query import (
    Address,
    Age,
    And,
    Anywhere,
    DateBound,
    Filename,
    Flag,
    HasAttachment,
    InFolder,
    Label,
    Node,
    Not,
    Or,
    QueryError,
    Size,
    Subject,
    Text,
    parse,
)

__all__ = [
    "MAX_QUERY",
    "MAX_SEARCH_TEXT",
    "QueryError",
    "filter_messages",
    "matching",
    "search_contents",
    "search_messages",
    "search_text_for",
]

MAX_SEARCH_TEXT = 200_000  # of body text per message; the rest is rarely what one looks for
MAX_QUERY = 500
HIDDEN_ROLES = (Folder.Role.TRASH, Folder.Role.JUNK)


def search_text_for(content: MessageContent) -> str:
    addresses = [content.from_name, content.from_email]
    for name, email in (*content.to, *content.cc):
        addresses.extend((name, email))
    names = [attachment.get("filename", "") for attachment in content.attachments]
    return "\n".join(
        part
        for part in (content.subject, " ".join(addresses), " ".join(names), content.body_text)
        if part
    )[:MAX_SEARCH_TEXT]


class _StoredVector(Expression):
    """The vector PostgreSQL stores beside a content's search_text (migration 0012), named by
    the path to that text: ``_StoredVector("content__search_text")`` from a Message. The model
    does not declare the column, so that nothing but the database ever writes it."""

    output_field = SearchVectorField()

    def __init__(self, text_path: str) -> None:
        super().__init__()
        self.text: Any = F(text_path)

    def get_source_expressions(self) -> list[Any]:
        return [self.text]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.text,) = exprs

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        table = compiler.quote_name_unless_alias(self.text.alias)  # the text's table, joined
        return f"{table}.{connection.ops.quote_name('search_vector')}", []


def matching(contents: QuerySet[MessageContent], query: str) -> QuerySet[MessageContent]:
    """Contents whose text matches ``query``, read as a web search (no operators)."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return contents.none()
    if connection.vendor == "postgresql":
        return contents.alias(document=_StoredVector("search_text")).filter(
            document=SearchQuery(query, config="simple", search_type="websearch")
        )
    for word in query.split():
        contents = contents.filter(search_text__icontains=word.strip('"'))
    return contents


def search_contents(user: User, query: str) -> QuerySet[MessageContent]:
    return matching(MessageContent.objects.filter(account__user=user), query)


def search_messages(
    user: User, query: str, *, now: datetime | None = None, tz: tzinfo | None = None
) -> QuerySet[Message]:
    """The user's messages matching a Gmail-style query, newest first, with their content and
    folder. Raises `QueryError` when the query cannot be read; a blank one matches nothing."""
    tree = parse(query)
    messages = Message.objects.filter(folder__account__user=user)
    if tree is None:
        return messages.none()
    return filter_messages(messages, tree, now=now, tz=tz)


def filter_messages(
    messages: QuerySet[Message],
    tree: Node,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> QuerySet[Message]:
    """``messages`` narrowed to a parsed query, ordered and joined for a results page.

    ``now`` anchors older_than/newer_than; ``tz`` says where days start for before/after (the
    current time zone by default)."""
    full_text = connection.vendor == "postgresql"
    if full_text:
        # alias(), not annotate(): the vectors are only compared, never selected.
        messages = messages.alias(
            search_document=_StoredVector("content__search_text"),
            subject_document=SearchVector("content__subject", config="simple"),
        )
    translate = _Translator(
        full_text=full_text,
        now=now or timezone.now(),
        tz=tz or timezone.get_current_timezone(),
    )
    return (
        messages.filter(translate.node(tree), translate.visible(tree))
        .select_related("content", "folder")
        # The indexed text can be 200 kB a message, and a results page never shows it.
        .defer("content__search_text")
        .order_by(F("date").desc(nulls_last=True), "-id")
    )


class _Translator:
    """A query tree to a ``Q`` over Message."""

    def __init__(self, *, full_text: bool, now: datetime, tz: tzinfo) -> None:
        self.full_text = full_text
        self.now = now
        self.tz = tz

    def node(self, node: Node) -> Q:
        if self.full_text and (tsquery := self.tsquery(node)) is not None:
            return Q(search_document=tsquery)
        match node:
            case Not(term):
                return ~self.node(term)
            case And(terms):
                return self.all_of(terms)
            case Or(terms):
                return reduce(operator.or_, (self.node(term) for term in terms))
        return self.leaf(node)

    def all_of(self, terms: tuple[Node, ...]) -> Q:
        """On PostgreSQL, the free-text terms joined into one tsquery: one index scan."""
        conditions = []
        tsqueries = []
        for term in terms:
            tsquery = self.tsquery(term) if self.full_text else None
            if tsquery is None:
                conditions.append(self.node(term))
            else:
                tsqueries.append(tsquery)
        if tsqueries:
            conditions.insert(0, Q(search_document=reduce(operator.and_, tsqueries)))
        return reduce(operator.and_, conditions)

    def tsquery(self, node: Node) -> SearchQuery | None:
        """The tsquery of a tree made of free text only, else ``None``."""
        match node:
            case Text(text, phrase):
                return _tsquery(text, phrase)
            case Not(term):
                inner = self.tsquery(term)
                return None if inner is None else ~inner
            case And(terms) | Or(terms):
                parts = []
                for term in terms:
                    part = self.tsquery(term)
                    if part is None:
                        return None
                    parts.append(part)
                return reduce(operator.and_ if isinstance(node, And) else operator.or_, parts)
        return None

    def leaf(self, node: Node) -> Q:
        match node:
            case Text(text):  # SQLite; PostgreSQL took the tsquery path
                return Q(content__search_text__icontains=text)
            case Subject(text, phrase):
                if self.full_text:
                    tsquery = _tsquery(text, phrase)
                    return Q(search_document=tsquery, subject_document=tsquery)
                return Q(content__subject__icontains=text)
            case Address("from", value):
                return Q(content__from_name__icontains=value) | Q(
                    content__from_email__icontains=value
                )
            case Address("to", value):
                return Q(_AnyElementLike("content__to", "pair", _contains(value))) | Q(
                    _AnyElementLike("content__cc", "pair", _contains(value))
                )
            case Address("cc", value):
                return Q(_AnyElementLike("content__cc", "pair", _contains(value)))
            case Filename(value):
                return Q(_AnyElementLike("content__attachments", "filename", _contains(value)))
            case HasAttachment():
                return Q(content__has_attachments=True)
            case Label(keyword):
                return Q(_AnyElementLike("keywords", "self", _escape_like(keyword)))
            case Flag("unread"):
                return Q(seen=False)
            case Flag("read"):
                return Q(seen=True)
            case Flag("starred"):
                return Q(flagged=True)
            case InFolder():
                return _in_folder(node)
            case Anywhere():
                return Q(pk__isnull=False)  # always true; its negation, never
            case DateBound("after", day):
                return Q(date__gte=datetime.combine(day, time.min, tzinfo=self.tz))
            case DateBound("before", day):
                return Q(date__lt=datetime.combine(day, time.min, tzinfo=self.tz))
            case Age("older_than"):
                return Q(date__lt=node.cutoff(self.now))
            case Age("newer_than"):
                return Q(date__gte=node.cutoff(self.now))
            case Size("larger", size):
                return Q(content__size__gt=size)
            case Size("smaller", size):
                return Q(content__size__lt=size)
        raise AssertionError(node)  # pragma: no cover - every node type is handled above

    def visible(self, tree: Node) -> Q:
        """Outside Trash and Junk, or in a folder the query names with ``in:`` (not negated).

        So ``budget in:trash`` searches the Trash, while ``in:inbox OR budget`` still leaves the
        Trash's budget messages out."""
        shown = ~Q(folder__role__in=HIDDEN_ROLES)
        for term in _positive_terms(tree):
            if isinstance(term, Anywhere):
                return Q()
            if isinstance(term, InFolder):
                shown |= _in_folder(term)
        return shown


def _positive_terms(node: Node, negated: bool = False) -> list[Node]:
    """The leaves of the tree that are not under a negation (or are under two)."""
    match node:
        case Not(term):
            return _positive_terms(term, not negated)
        case And(terms) | Or(terms):
            return [leaf for term in terms for leaf in _positive_terms(term, negated)]
    return [] if negated else [node]


def _in_folder(term: InFolder) -> Q:
    by_name = Q(folder__name__iexact=term.name)
    if term.role is None:
        return by_name
    has_role = Folder.objects.filter(account=OuterRef("folder__account"), role=term.role)
    return Q(folder__role=term.role) | (by_name & ~Exists(has_role))


def _tsquery(text: str, phrase: bool) -> SearchQuery:
    return SearchQuery(text, config="simple", search_type="phrase" if phrase else "plain")


def _escape_like(value: str) -> str:
    return connection.ops.prep_for_like_query(value)


def _contains(value: str) -> str:
    return f"%{_escape_like(value)}%"


class _AnyElementLike(Expression):
    """True when an element of a JSON array column is LIKE ``pattern`` (escaped with ``\\``),
    ignoring case. ``part`` is what of each element is compared: the element itself, either half
    of a [name, address] pair, or an object's "filename". Other shapes never match: the column
    holds what a hostile message put there."""

    conditional = True
    output_field = BooleanField()

    def __init__(
        self, column: str, part: Literal["self", "pair", "filename"], pattern: str
    ) -> None:
        super().__init__()
        self.column: Any = F(column)
        self.part = part
        self.pattern = pattern

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.column,) = exprs

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        raise NotSupportedError(f"JSON search is not written for {connection.vendor}")

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.column)
        array = f"CASE WHEN jsonb_typeof({column}) = 'array' THEN {column} ELSE '[]'::jsonb END"
        compared = {
            "self": ["e #>> '{}'"],
            "pair": ["e ->> 0", "e ->> 1"],
            "filename": ["e ->> 'filename'"],
        }[self.part]
        condition = " OR ".join(f"{value} ILIKE %s" for value in compared)
        # Only the compiled column and the fixed fragments above are spliced in; values are params.
        elements = f"jsonb_array_elements({array}) AS element(e)"
        sql = f"EXISTS (SELECT 1 FROM {elements} WHERE {condition})"  # noqa: S608 - as said above
        return sql, [*params, *params, *[self.pattern] * len(compared)]

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        # SQLite's LIKE ignores case for ASCII letters only, as its icontains does.
        column, params = compiler.compile(self.column)
        compared = {
            "self": ["e.value"],
            "pair": [
                "CASE WHEN e.type = 'array' THEN json_extract(e.value, '$[0]') END",
                "CASE WHEN e.type = 'array' THEN json_extract(e.value, '$[1]') END",
            ],
            "filename": [
                "CASE WHEN e.type = 'object' THEN json_extract(e.value, '$.filename') END"
            ],
        }[self.part]
        condition = " OR ".join(f"{value} LIKE %s ESCAPE '\\'" for value in compared)
        elements = f"json_each({column}) AS e"
        sql = f"EXISTS (SELECT 1 FROM {elements} WHERE {condition})"  # noqa: S608 - as on PostgreSQL
        return sql, [*params, *[self.pattern] * len(compared)]
