"""What the webmail shows: the sidebar, pages of conversations, one conversation.

A list is a *view* (all inboxes, starred, one folder, a search) over the user's messages,
walked newest first on the (folder, date, id) index with a keyset cursor — never OFFSET. In
conversation mode the walk keeps the first (newest) message of each conversation it meets and
skips the conversation's older ones; the row then shows the whole conversation (count, senders,
unread, star, attachment) from one query over the page's conversations. A page costs a fixed
number of queries whatever its size or the mailbox's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from mail.models import Snooze
from mailboxes import search
from mailboxes.models import Conversation, Folder, Keyword, MailAccount, Message
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


def scope(user: User, view: View) -> QuerySet[Message]:
    """The user's messages a view lists."""
    messages = Message.objects.filter(folder__account__user=user)
    snoozed = Snooze.objects.filter(
        user=user, conversation_id=OuterRef("content__conversation_id"), until__gt=timezone.now()
    )
    if view.kind == "inbox":
        return messages.filter(folder__role=Folder.Role.INBOX).exclude(Exists(snoozed))
    if view.kind == "snoozed":
        return messages.filter(folder__role=Folder.Role.INBOX).filter(Exists(snoozed))
    if view.kind == "starred":
        return messages.filter(flagged=True).exclude(folder__role__in=HIDDEN)
    if view.kind == "folder":
        return messages.filter(folder=view.folder)
    if view.tree is None:
        return messages.none()
    return search.filter_messages(messages, view.tree)


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
        return Q(date__lt=self.date) | Q(date=self.date, id__lt=self.id)

    def not_older(self) -> Q:
        return Q(date__gt=self.date) | Q(date=self.date, id__gte=self.id)


@dataclass
class Row:
    """One line of a list: a conversation (or a message when conversations are off)."""

    message: Message  # the newest message of the conversation in this view
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
) -> Page:
    messages = scope(user, view)
    walked = messages.order_by("-date", "-id").values_list("id", "date", "content__conversation_id")
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
                messages.filter(content__conversation_id__in=listed)
                .filter(cursor.not_older())
                .values_list("content__conversation_id", flat=True)
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
    return Page(_rows(user, view, picked, conversations), next_cursor)


def _rows(user: User, view: View, picked: list[int], conversations: bool) -> list[Row]:
    newest = {
        m.pk: m
        for m in Message.objects.filter(pk__in=picked)
        .select_related("content", "folder")
        .defer("content__search_text", "content__body_text")
    }
    rows = [
        Row(message=newest[pk], conversation_id=newest[pk].content.conversation_id or 0)
        for pk in picked
        if pk in newest
    ]
    if not conversations:
        for row in rows:
            row.conversation_id = 0
            row.unread = not row.message.seen
            row.flagged = row.message.flagged
            row.has_attachments = row.message.content.has_attachments
            row.senders = [(_sender(row.message.content), row.unread)]
            row.labels = labels_of(row.message.keywords)
        return rows
    wanted = {row.conversation_id for row in rows if row.conversation_id}
    members = Message.objects.filter(
        folder__account__user=user, content__conversation_id__in=wanted
    )
    if view.role not in HIDDEN:
        members = members.exclude(folder__role__in=HIDDEN)
    details: dict[int, list[tuple]] = defaultdict(list)
    for item in members.order_by("date", "id").values_list(
        "content__conversation_id",
        "content_id",
        "seen",
        "flagged",
        "content__has_attachments",
        "content__from_name",
        "content__from_email",
        "keywords",
    ):
        details[item[0]].append(item)
    for row in rows:
        items = details.get(row.conversation_id) or []
        if not items:
            row.unread = not row.message.seen
            row.flagged = row.message.flagged
            row.has_attachments = row.message.content.has_attachments
            row.senders = [(_sender(row.message.content), row.unread)]
            row.labels = labels_of(row.message.keywords)
            continue
        contents = {item[1] for item in items}  # a copy in two folders counts once
        row.count = len(contents)
        row.unread = any(not item[2] for item in items)
        row.flagged = any(item[3] for item in items)
        row.has_attachments = any(item[4] for item in items)
        names: dict[str, bool] = {}
        row.labels = labels_of([k for item in items for k in item[7]])
        for _c, _content, seen, _f, _a, name, email, _k in items:
            label = (name or email or "?").split(" ")[0] if len(contents) > 1 else (name or email)
            names[label] = names.get(label, False) or not seen
        ordered = list(names.items())
        row.senders = ordered[:1] + ordered[1:][-(MAX_SENDERS - 1) :]
    return rows


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


def sidebar(user: User) -> Sidebar:
    """The user's accounts and folders, special ones first, with unread counts counted here
    (so that they follow the user's own actions at once): two queries."""
    folders = list(
        Folder.objects.filter(account__user=user, selectable=True)
        .select_related("account")
        .order_by("account__email", "name")
    )
    unread = dict(
        Message.objects.filter(folder__account__user=user, seen=False)
        .values("folder_id")
        .annotate(n=Count("id"))
        .values_list("folder_id", "n")
    )
    accounts: dict[int, SidebarAccount] = {}
    for folder in sorted(folders, key=_folder_order):
        entry = accounts.setdefault(folder.account_id, SidebarAccount(folder.account, []))
        depth = folder.name.count(folder.delimiter) if folder.delimiter and not folder.role else 0
        entry.folders.append(
            SidebarFolder(folder, folder_label(folder), depth, unread.get(folder.pk, 0))
        )
    inbox_unread = sum(unread.get(f.pk, 0) for f in folders if f.role == Folder.Role.INBOX)
    labels = labels_of(
        list(Keyword.objects.filter(account__user=user).values_list("name", flat=True))
    )
    return Sidebar(
        sorted(accounts.values(), key=lambda a: a.account.email),
        inbox_unread,
        {f.pk: f for f in folders},
        labels,
    )


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
        Message.objects.filter(content__conversation=found, folder__account__user=user)
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
