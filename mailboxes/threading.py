"""The database side of conversation threading: mailcore.threads' ThreadStore for one account."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import Max, Q, QuerySet

from mailboxes import bulk
from mailboxes.models import Conversation, MailAccount, Message, MessageContent, Reference
from mailcore import threads

# Conversations a batch starts get provisional ids above any real one, so that "the lowest
# thread wins" keeps meaning "the oldest"; they are created in one INSERT, in the same order.
PROVISIONAL = 2**62


class BatchThreadStore:
    """mailcore.threads' ThreadStore for one batch of an account's new messages.

    What the batch refers to is loaded up front (by id, by reference and by subject: three
    queries); each message of the batch is remembered once threaded, so that a reply and its
    parent in one batch meet, by id or by subject. New conversations are created together by
    `create_threads`. Callers hold the account's sync lease: no other writer threads this account.
    """

    def __init__(
        self,
        account: MailAccount,
        batch: Sequence[MessageContent],
        window: timedelta = threads.DEFAULT_SUBJECT_WINDOW,
        known: Sequence[MessageContent] = (),
    ) -> None:
        """`known`: stored contents the caller holds (the sync's copies of them are about to be
        built): a merge updates their conversation in memory as it does in the database."""
        self.account = account
        contents = MessageContent.objects.filter(account=account, conversation__isnull=False)
        wanted: set[str] = set()
        subjects: set[str] = set()
        dates: list[datetime] = []
        # Each message's threading index, computed once: prepare_thread uses it again.
        self.indexes = {
            content.sha256: threads.index_message(thread_key(content)) for content in batch
        }
        for index in self.indexes.values():
            wanted.add(index.message_id)
            wanted.update(index.references)
            if index.subject and index.date is not None:
                subjects.add(index.subject)
                dates.append(index.date)
        wanted.discard("")
        self._by_id: dict[str, int] = dict(
            contents.filter(message_id__in=wanted).values_list("message_id", "conversation_id")
        )
        self._referencing: dict[str, set[int]] = defaultdict(set)
        rows = (
            Reference.objects.filter(account=account, message_id__in=wanted)
            .exclude(content__conversation__isnull=True)
            .values_list("message_id", "content__conversation_id")
        )
        for message_id, conversation_id in rows:
            self._referencing[message_id].add(conversation_id)
        # (date, conversation, is_reply) of stored messages by subject, over the batch's window.
        self._by_subject: dict[str, list[tuple[datetime, int, bool]]] = defaultdict(list)
        if subjects:
            rows = contents.filter(
                thread_subject__in=subjects,
                date__range=(min(dates) - window, max(dates) + window),
            ).values_list("thread_subject", "date", "conversation_id", "is_reply")
            for subject, date, conversation_id, is_reply in rows:
                self._by_subject[subject].append((date, conversation_id, is_reply))
        self._batch = list(batch)
        self._known = list(known)
        self._provisional: list[int] = []

    def new_thread(self) -> int:
        self._provisional.append(PROVISIONAL + len(self._provisional))
        return self._provisional[-1]

    def threads_for_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        return {id_: self._by_id[id_] for id_ in ids if id_ in self._by_id}

    def threads_referencing(self, ids: Sequence[str]) -> list[int]:
        found: set[int] = set()
        for id_ in ids:
            found.update(self._referencing.get(id_, ()))
        return sorted(found)

    def merge_threads(self, keep: int, others: Sequence[int]) -> None:
        gone = set(others) - {keep}
        stored = [pk for pk in gone if pk < PROVISIONAL]
        if stored:
            MessageContent.objects.filter(conversation_id__in=stored).update(conversation_id=keep)
            # Their copies follow (Message.conversation mirrors the content's).
            Message.objects.filter(conversation_id__in=stored).update(conversation_id=keep)
            merged = Conversation.objects.filter(pk__in=stored)
            latest = merged.aggregate(latest=Max("last_date"))["latest"]
            merged.delete()
            if latest is not None and keep < PROVISIONAL:
                _move_on(Conversation.objects.filter(pk=keep), latest)
        for content in self._batch + self._known:
            if content.conversation_id in gone:
                content.conversation_id = keep
        for id_, conversation in self._by_id.items():
            if conversation in gone:
                self._by_id[id_] = keep
        for conversations in self._referencing.values():
            if conversations & gone:
                conversations.difference_update(gone)
                conversations.add(keep)
        for subject, found in self._by_subject.items():
            self._by_subject[subject] = [
                (date, keep if conversation in gone else conversation, is_reply)
                for date, conversation, is_reply in found
            ]

    def latest_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        found = [(d, c) for d, c, _ in self._by_subject.get(subject, ()) if since <= d <= until]
        # The latest wins; on equal dates, the lowest thread.
        return max(found, key=lambda pair: (pair[0], -pair[1]))[1] if found else None

    def earliest_reply_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        found = [
            (d, c)
            for d, c, reply in self._by_subject.get(subject, ())
            if reply and since <= d <= until
        ]
        return min(found)[1] if found else None

    def remember(self, content: MessageContent, index: threads.ThreadIndex) -> None:
        if content.message_id:
            self._by_id[content.message_id] = content.conversation_id
        for ref in index.references:
            self._referencing[ref].add(content.conversation_id)
        if index.subject and index.date is not None:
            self._by_subject[index.subject].append(
                (index.date, content.conversation_id, index.is_reply)
            )

    def create_threads(self) -> None:
        """Create the conversations the batch started (one INSERT), with their subject and
        date, and give the batch's rows their real ids."""
        started: dict[int, list[MessageContent]] = defaultdict(list)
        for content in self._batch:
            if content.conversation_id >= PROVISIONAL:
                started[content.conversation_id].append(content)
        if not started:
            return
        provisional = sorted(started)
        rows = [_conversation(self.account, started[pk]) for pk in provisional]
        Conversation.objects.bulk_create(rows)
        real = {pk: row.pk for pk, row in zip(provisional, rows, strict=True)}
        for content in self._batch:
            if content.conversation_id in real:
                content.conversation_id = real[content.conversation_id]


def _conversation(account: MailAccount, contents: list[MessageContent]) -> Conversation:
    dated = [c for c in contents if c.date is not None]
    latest = max(dated, key=lambda c: c.date) if dated else contents[0]
    return Conversation(account=account, last_date=latest.date, subject=latest.subject[:998])


def _move_on(conversations: QuerySet[Conversation], date: datetime) -> None:
    """Move the conversations' last date on to `date` where it is later (or unset)."""
    conversations.filter(Q(last_date__isnull=True) | Q(last_date__lt=date)).update(last_date=date)


def thread_key(content: MessageContent) -> threads.ThreadKey:
    return threads.ThreadKey(
        message_id=content.message_id,
        in_reply_to=content.in_reply_to,
        references=tuple(content.references),
        subject=content.subject,
        date=content.date,
    )


def prepare_thread(content: MessageContent, store: BatchThreadStore) -> tuple[str, ...]:
    """Give a message about to be stored its conversation and threading fields, and remember it.

    Returns the ids it refers to, for ``record_threads`` once the row exists: everything goes in
    with the row's INSERT, so its full-text index entry is computed once.
    """
    key = thread_key(content)
    index = store.indexes.get(content.sha256) or threads.index_message(key)
    content.conversation_id = threads.assign_thread(key, store, index=index)
    content.message_id = index.message_id
    content.thread_subject = index.subject
    content.is_reply = index.is_reply
    store.remember(content, index)
    return index.references


def record_threads(batch: Sequence[MessageContent], references: dict[str, tuple[str, ...]]) -> None:
    """Index an inserted batch for the messages to come (one INSERT of references) and move on
    the dates of the stored conversations that got newer mail (one query, then one UPDATE for
    those that need it; those the batch started were created with theirs)."""
    bulk.insert(
        [
            Reference(account_id=content.account_id, content=content, message_id=ref)
            for content in batch
            for ref in references[content.sha256]
        ]
    )
    latest: dict[int, MessageContent] = {}
    for content in batch:
        if content.date is None:
            continue
        known = latest.get(content.conversation_id)
        if known is None or content.date > known.date:  # type: ignore[operator]
            latest[content.conversation_id] = content
    if not latest:
        return
    current = Conversation.objects.filter(pk__in=list(latest)).values_list("pk", "last_date")
    newer = [
        Conversation(pk=pk, last_date=latest[pk].date, subject=latest[pk].subject[:998])
        for pk, last_date in current
        if last_date is None or last_date < latest[pk].date  # type: ignore[operator]
    ]
    Conversation.objects.bulk_update(newer, ["last_date", "subject"])
