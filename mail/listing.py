"""What the webmail shows: the sidebar, pages of conversations, one conversation.

A list is a *view* (all inboxes, starred, one folder, a search) over the user's messages,
walked newest first with a keyset cursor — never OFFSET — on the (folder, date, id) index for
one folder, on the (date, id) index across several. In conversation mode the walk keeps the
first (newest) message of each conversation it meets and skips the conversation's older ones;
the row then shows the whole conversation (count, senders, unread, star, attachment, labels)
from one aggregate query over the page's conversations, a few rows each whatever their size.
A page costs a fixed number of queries whatever its size or the mailbox's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from django.db import connection
from django.db.models import (
    Exists,
    OuterRef,
    Q,
    QuerySet,
)
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from mail.models import Snooze
from mailboxes import search
from mailboxes.models import Conversation, Folder, Keyword, MailAccount, Message, MessageContent
from mailcore import query as mailquery

HIDDEN = (Folder.Role.TRASH, Folder.Role.JUNK)
ROLE_ORDER = [
    Folder.Role.INBOX,
    Folder.Role.SENT,
    Folder.Role.DRAFTS,
    Folder.Role.ARCHIVE,
    Folder.Role.JUNK,
    Folder.Role.TRASH,
]
MAX_WALKS = 8  # chunks walked to fill one page of conversations before showing a shorter page
MAX_SENDERS = 3
# What a row shows of its newest message, in RowMessage's and RowContent's order: none of the
# long texts or JSON of the content.
ROW_FIELDS = [
    "id",
    "date",
    "seen",
    "flagged",
    "keywords",
    "folder_id",
    "content__subject",
    "content__snippet",
    "content__from_name",
    "content__from_email",
    "content__has_attachments",
    "content__conversation_id",
]


# Views ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    kind: Literal["inbox", "starred", "snoozed", "folder", "search"]
    folder: Folder | None = None
    query: str = ""
    tree: mailquery.Node | None = None

    @property
    def title(self) -> str:
        if self.kind == "inbox":
            return str(_("All inboxes"))
        if self.kind == "starred":
            return str(_("Starred"))
        if self.kind == "snoozed":
            return str(_("Snoozed"))
        if self.kind == "search":
            return str(_("Search results"))
        assert self.folder is not None
        return folder_label(self.folder)

    @property
    def key(self) -> str:
        """Names the view in URLs (where to come back to, what an action applies to)."""
        if self.kind == "folder":
            assert self.folder is not None
            return f"folder:{self.folder.pk}"
        if self.kind == "search":
            return "search"
        return self.kind

    @property
    def role(self) -> str:
        return self.folder.role if self.folder is not None else ""


def folder_label(folder: Folder) -> str:
    if folder.role:
        return str(folder.get_role_display())
    return folder.display_name


def folder_view(user: User, folder_id: int) -> View:
    folder = Folder.objects.filter(pk=folder_id, account__user=user).select_related("account")
    found = folder.first()
    if found is None:
        raise Http404
    return View("folder", folder=found)


def search_view(query: str) -> View:
    """Raises mailcore.query.QueryError for a query that cannot be read."""
    return View("search", query=query, tree=mailquery.parse(query))


def view_from_key(user: User, key: str, query: str = "") -> View:
    if key == "inbox":
        return View("inbox")
    if key in ("starred", "snoozed"):
        return View(key)  # type: ignore[arg-type]
    if key == "search":
        return search_view(query)
    if key.startswith("folder:") and key[7:].isdigit():
        return folder_view(user, int(key[7:]))
    raise Http404


@dataclass(frozen=True)
class _Folders:
    """The user's folders as the lists need them: their ids in the WHERE clause, so that
    PostgreSQL walks each folder's (folder, date, id) index instead of joining every message
    to its folder, and the folders themselves for the rows, which show theirs."""

    by_id: dict[int, Folder]  # for the rows, which show their folder
    all: list[int]
    visible: list[int]  # outside Trash and Junk
    hidden: list[int]  # Trash and Junk
    inbox: list[int]

    @classmethod
    def of(cls, folders: Iterable[Folder]) -> _Folders:
        """From every folder of the user's."""
        by_id = {f.pk: f for f in folders}
        roles = [(pk, f.role) for pk, f in by_id.items()]
        return cls(
            by_id=by_id,
            all=[pk for pk, _role in roles],
            visible=[pk for pk, role in roles if role not in HIDDEN],
            hidden=[pk for pk, role in roles if role in HIDDEN],
            inbox=[pk for pk, role in roles if role == Folder.Role.INBOX],
        )


def scope(user: User, view: View, folders: _Folders) -> QuerySet[Message]:
    """The user's messages a view lists."""
    snoozed = Snooze.objects.filter(
        user=user, conversation_id=OuterRef("conversation_id"), until__gt=timezone.now()
    )
    if view.kind == "inbox":
        return Message.objects.filter(folder_id__in=folders.inbox).exclude(Exists(snoozed))
    if view.kind == "snoozed":
        return Message.objects.filter(folder_id__in=folders.inbox).filter(Exists(snoozed))
    if view.kind == "starred":
        return Message.objects.filter(folder_id__in=folders.visible, flagged=True)
    if view.kind == "folder":
        return Message.objects.filter(folder=view.folder, folder_id__in=folders.all)
    if view.tree is None:
        return Message.objects.none()
    return search.filter_messages(Message.objects.filter(folder_id__in=folders.all), view.tree)


# Pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page stops: the (date, id) of the last message walked."""

    date: datetime
    id: int

    def __str__(self) -> str:
        return f"{self.date.isoformat()}~{self.id}"

    @classmethod
    def parse(cls, value: str) -> Cursor | None:
        date_text, _sep, id_text = value.partition("~")
        date = parse_datetime(date_text) if date_text else None
        if date is None or date.tzinfo is None or not id_text.isdigit():
            return None
        return cls(date, int(id_text))

    def older(self) -> Q:
        # The first condition adds nothing but gives the date index a range to start from.
        return Q(date__lte=self.date) & (Q(date__lt=self.date) | Q(date=self.date, id__lt=self.id))

    def not_older(self) -> Q:
        return Q(date__gt=self.date) | Q(date=self.date, id__gte=self.id)


@dataclass
class RowContent:
    """What a row shows of a message's content."""

    subject: str
    snippet: str
    from_name: str
    from_email: str
    has_attachments: bool
    conversation_id: int | None


@dataclass
class RowMessage:
    """What a row shows of its newest message: read as values, not as models, which cost twice
    the time for fifty rows (instances of two models with most of their fields deferred)."""

    pk: int
    date: datetime | None
    seen: bool
    flagged: bool
    keywords: list[str]
    folder: Folder
    content: RowContent


@dataclass
class Row:
    """One line of a list: a conversation (or a message when conversations are off)."""

    message: RowMessage  # the newest message of the conversation in this view
    conversation_id: int
    count: int = 1
    unread: bool = False
    flagged: bool = False
    has_attachments: bool = False
    senders: list[tuple[str, bool]] = field(default_factory=list)  # (name, unread)
    labels: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"c{self.conversation_id}" if self.conversation_id else f"m{self.message.pk}"


@dataclass
class Page:
    rows: list[Row]
    next_cursor: Cursor | None


def page(
    user: User,
    view: View,
    cursor: Cursor | None = None,
    size: int = 50,
    conversations: bool = True,
    folders: Iterable[Folder] | None = None,
) -> Page:
    """`folders`: all of the user's, when the caller has them (the sidebar does)."""
    ids = _Folders.of(folders if folders is not None else Folder.objects.filter(account__user=user))
    messages = scope(user, view, ids)
    walked = messages.order_by("-date", "-id").values_list("id", "date", "conversation_id")
    position = cursor
    picked: list[int] = []  # message ids, newest first, one per conversation
    seen: set[int] = set()
    next_cursor: Cursor | None = None
    for _walk in range(MAX_WALKS):
        chunk = list((walked.filter(position.older()) if position else walked)[: size * 2])
        candidates: list[tuple[int, int | None]] = []
        for message_id, _date, conversation_id in chunk:
            if not conversations or conversation_id is None:
                candidates.append((message_id, None))
            elif conversation_id not in seen:
                seen.add(conversation_id)
                candidates.append((message_id, conversation_id))
        if cursor is not None and conversations:
            # Conversations with a newer message in this view were listed on an earlier page.
            listed = [c for _m, c in candidates if c is not None]
            earlier = set(
                messages.filter(conversation_id__in=listed)
                .filter(cursor.not_older())
                .values_list("conversation_id", flat=True)
            )
            candidates = [(m, c) for m, c in candidates if c not in earlier]
        accepted = {message_id for message_id, _c in candidates}
        for message_id, date, _c in chunk:
            position = Cursor(date, message_id)
            if message_id in accepted:
                picked.append(message_id)
                if len(picked) == size:
                    break
        if len(picked) == size:
            next_cursor = position  # more may follow
            break
        if len(chunk) < size * 2:
            next_cursor = None  # the end of the view
            break
        next_cursor = position  # after MAX_WALKS, a shorter page and a way on
    return Page(_rows(view, picked, conversations, ids), next_cursor)


def _rows(view: View, picked: list[int], conversations: bool, folders: _Folders) -> list[Row]:
    newest: dict[int, RowMessage] = {}
    for pk, date, seen, flagged, keywords, folder_id, *content in Message.objects.filter(
        pk__in=picked, folder_id__in=folders.all
    ).values_list(*ROW_FIELDS):
        folder = folders.by_id[folder_id]
        newest[pk] = RowMessage(pk, date, seen, flagged, keywords, folder, RowContent(*content))
    rows = [
        Row(message=newest[pk], conversation_id=newest[pk].content.conversation_id or 0)
        for pk in picked
        if pk in newest
    ]
    summaries: dict[int, _Summary] = {}
    if conversations:
        # Members in Trash and Junk count only in a list of those folders.
        left_out = [] if view.role in HIDDEN else folders.hidden
        summaries = _summaries({row.conversation_id for row in rows} - {0}, left_out)
    for row in rows:
        summary = summaries.get(row.conversation_id)
        if summary is None:  # conversations off, or a message in no conversation
            row.conversation_id = row.conversation_id if conversations else 0
            row.unread = not row.message.seen
            row.flagged = row.message.flagged
            row.has_attachments = row.message.content.has_attachments
            row.senders = [(_sender(row.message.content), row.unread)]
            row.labels = labels_of(row.message.keywords)
            continue
        row.count = summary.count
        row.unread = summary.unread
        row.flagged = summary.flagged
        row.has_attachments = summary.has_attachments
        row.senders = summary.senders
        row.labels = summary.labels
    return rows


@dataclass
class _Summary:
    count: int
    unread: bool
    flagged: bool
    has_attachments: bool
    senders: list[tuple[str, bool]]
    labels: list[str]


class _Group(NamedTuple):
    """A row of _SUMMARIES_SQL: one sender of a conversation, with the conversation's totals."""

    conversation: int
    from_name: str
    from_email: str
    unread: int  # the sender's unread messages
    total: int
    any_unread: int
    any_flagged: int
    any_attached: int
    all_keywords: str | None  # the keyword lists, as JSON texts joined by commas
    oldest: int  # 1 for the conversation's first sender
    latest: int  # 1 for its latest


# The summaries' SQL, written out rather than built with the ORM: compiling the ORM's version
# (window sums over grouped aggregates) cost more Python time than PostgreSQL spent running it,
# and it brought back a dozen columns, datetimes among them, that only the ordering needs.
# `{agg}` is PostgreSQL's STRING_AGG or SQLite's GROUP_CONCAT (whose separator is the comma);
# both run the rest as written (SQLite since 3.30).
_SUMMARIES_SQL = """
WITH grouped AS (
    SELECT m.conversation_id AS conversation, c.from_name, c.from_email,
        COUNT(DISTINCT m.content_id) AS contents,
        COUNT(*) FILTER (WHERE NOT m.seen) AS unread,
        COUNT(*) FILTER (WHERE m.flagged) AS flagged,
        COUNT(*) FILTER (WHERE c.has_attachments) AS attached,
        {agg}(DISTINCT CAST(m.keywords AS text){separator})
            FILTER (WHERE CAST(m.keywords AS text) <> '[]') AS keyword_lists,
        MIN(m.date) AS first_date, MIN(m.id) AS first_id,
        MAX(m.date) AS last_date, MAX(m.id) AS last_id
    FROM {message} m JOIN {content} c ON c.id = m.content_id
    WHERE m.conversation_id IN ({wanted}) AND c.conversation_id IN ({wanted}) {left_out}
    GROUP BY m.conversation_id, c.from_name, c.from_email
), ranked AS (
    SELECT conversation, from_name, from_email, unread,
        CAST(SUM(contents) OVER whole AS integer) AS total,
        MAX(unread) OVER whole AS any_unread,
        MAX(flagged) OVER whole AS any_flagged,
        MAX(attached) OVER whole AS any_attached,
        {agg}(keyword_lists{separator}) OVER whole AS all_keywords,
        ROW_NUMBER() OVER (
            PARTITION BY conversation ORDER BY first_date ASC NULLS LAST, first_id ASC
        ) AS oldest,
        ROW_NUMBER() OVER (
            PARTITION BY conversation ORDER BY last_date DESC NULLS LAST, last_id DESC
        ) AS latest
    FROM grouped
    WINDOW whole AS (PARTITION BY conversation)
)
SELECT conversation, from_name, from_email, unread, total, any_unread, any_flagged,
    any_attached, all_keywords, oldest, latest
FROM ranked
WHERE oldest = 1 OR latest < %s
"""


def _summaries(wanted: set[int], left_out: list[int]) -> dict[int, _Summary]:
    """What a row shows of each conversation in `wanted`, from its messages outside the
    folders `left_out`.

    One query, whatever the conversations' size: the messages are grouped by sender, each
    group carries its conversation's totals (window sums over the groups), and only the first
    sender's group and the latest senders' come back: at most MAX_SENDERS rows a
    conversation. A message's copies share its sender, so a copy in two folders counts once.

    Every copy of the conversations' contents is the user's: only Trash and Junk are left out.
    The messages are found by their own conversation id (the index mailboxes_msg_conversation
    holds what is read of them), their contents by theirs (mailboxes_content_conv_senders holds
    the sender): the same ids both sides, or PostgreSQL reads every content to join."""
    if not wanted:
        return {}
    ids = sorted(wanted)
    sql = _SUMMARIES_SQL.format(
        agg="STRING_AGG" if connection.vendor == "postgresql" else "GROUP_CONCAT",
        separator=", ','" if connection.vendor == "postgresql" else "",
        message=Message._meta.db_table,
        content=MessageContent._meta.db_table,
        wanted=_marks(ids),
        left_out=f"AND m.folder_id NOT IN ({_marks(left_out)})" if left_out else "",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, *ids, *left_out, MAX_SENDERS])
        groups = [_Group(*values) for values in cursor.fetchall()]
    found: dict[int, list[_Group]] = defaultdict(list)
    for group in groups:
        found[group.conversation].append(group)
    summaries = {}
    for conversation_id, items in found.items():
        # The first sender, then the latest ones, the most recent last.
        items.sort(key=lambda item: (item.oldest != 1, -item.latest))
        first = items[0]
        names: dict[str, bool] = {}
        for item in items:
            name = item.from_name or item.from_email or "?"
            label = name.split(" ")[0] if first.total > 1 else name
            names[label] = names.get(label, False) or bool(item.unread)
        keywords = json.loads(f"[{first.all_keywords or ''}]")
        summaries[conversation_id] = _Summary(
            count=first.total,
            unread=bool(first.any_unread),
            flagged=bool(first.any_flagged),
            has_attachments=bool(first.any_attached),
            senders=list(names.items()),
            labels=labels_of([k for listed in keywords for k in listed]),
        )
    return summaries


def labels_of(keywords: list[str]) -> list[str]:
    """The user's labels among IMAP keywords: "$Forwarded" and the like are the client's."""
    return sorted({k for k in keywords if k and not k.startswith(("$", "\\"))}, key=str.casefold)


def _sender(content: object) -> str:
    return getattr(content, "from_name", "") or getattr(content, "from_email", "") or "?"


# The sidebar ------------------------------------------------------------------------------------


@dataclass
class SidebarFolder:
    folder: Folder
    label: str
    depth: int
    unread: int


@dataclass
class SidebarAccount:
    account: MailAccount
    folders: list[SidebarFolder]


@dataclass
class Sidebar:
    accounts: list[SidebarAccount]
    inbox_unread: int
    folders_by_id: dict[int, Folder]
    labels: list[str] = field(default_factory=list)
    every_folder: list[Folder] = field(default_factory=list)  # for listing.page


def sidebar(user: User) -> Sidebar:
    """The user's accounts and folders, special ones first, with unread counts counted here
    (so that they follow the user's own actions at once): three queries.

    A folder's count is of its unread conversations, as its list shows them (a row is bold
    when any of its messages is unread): three unread replies in one thread count once."""
    every = list(
        Folder.objects.filter(account__user=user)
        .select_related("account")
        .order_by("account__email", "name")
    )
    folders = [f for f in every if f.selectable]
    unread = _unread_conversations([f.pk for f in every])
    accounts: dict[int, SidebarAccount] = {}
    for folder in sorted(folders, key=_folder_order):
        entry = accounts.setdefault(folder.account_id, SidebarAccount(folder.account, []))
        depth = folder.name.count(folder.delimiter) if folder.delimiter and not folder.role else 0
        entry.folders.append(
            SidebarFolder(folder, folder_label(folder), depth, unread.get(folder.pk, 0))
        )
    inbox_unread = sum(unread.get(f.pk, 0) for f in folders if f.role == Folder.Role.INBOX)
    labels = labels_of(_keywords(sorted({f.account_id for f in every})))
    return Sidebar(
        sorted(accounts.values(), key=lambda a: a.account.email),
        inbox_unread,
        {f.pk: f for f in folders},
        labels,
        every,
    )


# The sidebar's two counting queries are written out: each cost a millisecond and a half of
# the ORM's Python to compile, and they read nothing but integers and names, alike on every
# database. A message in no conversation (none is, once threaded) counts alone; the counts are
# read from the partial index of unread messages alone (folder, conversation).
_UNREAD_SQL = """
SELECT folder_id, COUNT(DISTINCT conversation_id) + COUNT(*) - COUNT(conversation_id)
FROM {message} WHERE folder_id IN ({ids}) AND NOT seen GROUP BY folder_id
"""
_KEYWORDS_SQL = "SELECT name FROM {keyword} WHERE account_id IN ({ids})"


def _marks(values: Iterable[object]) -> str:
    """The placeholders of a written-out query's IN (…) list."""
    return ", ".join("%s" for _value in values)


def _unread_conversations(folder_ids: list[int]) -> dict[int, int]:
    """Unread conversations by folder."""
    if not folder_ids:
        return {}
    with connection.cursor() as cursor:
        sql = _UNREAD_SQL.format(message=Message._meta.db_table, ids=_marks(folder_ids))
        cursor.execute(sql, folder_ids)
        return dict(cursor.fetchall())


def _keywords(account_ids: list[int]) -> list[str]:
    if not account_ids:
        return []
    with connection.cursor() as cursor:
        sql = _KEYWORDS_SQL.format(keyword=Keyword._meta.db_table, ids=_marks(account_ids))
        cursor.execute(sql, account_ids)
        return [name for (name,) in cursor.fetchall()]


def _folder_order(folder: Folder) -> tuple[int, str]:
    if folder.role in ROLE_ORDER:
        return ROLE_ORDER.index(folder.role), ""
    return len(ROLE_ORDER), folder.name.casefold()


# One conversation ------------------------------------------------------------------------------


@dataclass
class Shown:
    """One message of a conversation, once however many folders hold a copy."""

    message: Message
    folders: list[Folder]
    ids: list[int]  # every copy's id, for actions


def conversation(user: User, conversation_id: int) -> tuple[Conversation, list[Shown]]:
    found = Conversation.objects.filter(pk=conversation_id, account__user=user).first()
    if found is None:
        raise Http404
    copies = (
        Message.objects.filter(conversation=found, folder__account__user=user)
        .select_related("content", "folder")
        .defer("content__search_text")
        .order_by("date", "id")
    )
    shown: dict[int, Shown] = {}
    for copy in copies:
        entry = shown.get(copy.content_id)
        if entry is None:
            shown[copy.content_id] = Shown(copy, [copy.folder], [copy.pk])
        else:
            entry.folders.append(copy.folder)
            entry.ids.append(copy.pk)
            # The copy outside Trash and Junk speaks for the message (flags, actions).
            if entry.message.folder.role in HIDDEN and copy.folder.role not in HIDDEN:
                entry.message = copy
    if not shown:
        raise Http404
    return found, list(shown.values())
