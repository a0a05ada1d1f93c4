"""The database side of conversation threading: mailcore.threads' ThreadStore for one account."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db.models import Q

from mailboxes.models import Conversation, MailAccount, MessageContent, Reference
from mailcore import threads


class BatchThreadStore:
    """mailcore.threads' ThreadStore for one batch of an account's new messages.

    What the batch refers to is loaded in two queries up front; each message of the batch is
    remembered once threaded, so that a reply and its parent in one batch meet, by id or by
    subject. Callers hold the account's sync lease: no other writer threads this account.
    """

    def __init__(self, account: MailAccount, batch: Sequence[MessageContent]) -> None:
        self.account = account
        self.contents = MessageContent.objects.filter(account=account, conversation__isnull=False)
        wanted: set[str] = set()
        for content in batch:
            index = threads.index_message(thread_key(content))
            wanted.add(index.message_id)
            wanted.update(index.references)
        wanted.discard("")
        self._by_id: dict[str, int] = dict(
            self.contents.filter(message_id__in=wanted).values_list("message_id", "conversation_id")
        )
        self._referencing: dict[str, set[int]] = defaultdict(set)
        rows = (
            Reference.objects.filter(account=account, message_id__in=wanted)
            .exclude(content__conversation__isnull=True)
            .values_list("message_id", "content__conversation_id")
        )
        for message_id, conversation_id in rows:
            self._referencing[message_id].add(conversation_id)
        # The batch's rows, not yet in the database: merges must move them too, and subject
        # lookups must see those already threaded.
        self._batch = list(batch)
        self._remembered: list[MessageContent] = []

    def new_thread(self) -> int:
        return Conversation.objects.create(account=self.account).pk

    def threads_for_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        return {id_: self._by_id[id_] for id_ in ids if id_ in self._by_id}

    def threads_referencing(self, ids: Sequence[str]) -> list[int]:
        found: set[int] = set()
        for id_ in ids:
            found.update(self._referencing.get(id_, ()))
        return sorted(found)

    def merge_threads(self, keep: int, others: Sequence[int]) -> None:
        gone = set(others) - {keep}
        MessageContent.objects.filter(conversation_id__in=gone).update(conversation_id=keep)
        Conversation.objects.filter(pk__in=gone).delete()
        for content in self._batch:
            if content.conversation_id in gone:
                content.conversation_id = keep
        for id_, conversation in self._by_id.items():
            if conversation in gone:
                self._by_id[id_] = keep
        for conversations in self._referencing.values():
            if conversations & gone:
                conversations.difference_update(gone)
                conversations.add(keep)

    def latest_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        row = (
            self.contents.filter(thread_subject=subject, date__range=(since, until))
            .order_by("-date", "conversation_id")
            .values_list("date", "conversation_id")
            .first()
        )
        found = [row] if row else []
        found += [(c.date, c.conversation_id) for c in self._dated(subject, since, until)]
        # The latest wins; on equal dates, the lowest thread.
        return max(found, key=lambda pair: (pair[0], -pair[1]))[1] if found else None

    def earliest_reply_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        row = (
            self.contents.filter(thread_subject=subject, is_reply=True, date__range=(since, until))
            .order_by("date", "conversation_id")
            .values_list("date", "conversation_id")
            .first()
        )
        found = [row] if row else []
        found += [
            (c.date, c.conversation_id) for c in self._dated(subject, since, until) if c.is_reply
        ]
        return min(found)[1] if found else None

    def _dated(self, subject: str, since: datetime, until: datetime) -> list[MessageContent]:
        """The batch's already threaded messages with this subject, dated in [since, until]."""
        return [
            c
            for c in self._remembered
            if c.thread_subject == subject and c.date is not None and since <= c.date <= until
        ]

    def remember(self, content: MessageContent, references: tuple[str, ...]) -> None:
        self._remembered.append(content)
        if content.message_id:
            self._by_id[content.message_id] = content.conversation_id
        for ref in references:
            self._referencing[ref].add(content.conversation_id)


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
    index = threads.index_message(key)
    content.conversation_id = threads.assign_thread(key, store)
    content.message_id = index.message_id
    content.thread_subject = index.subject
    content.is_reply = index.is_reply
    store.remember(content, index.references)
    return index.references


def record_threads(batch: Sequence[MessageContent], references: dict[str, tuple[str, ...]]) -> None:
    """Index an inserted batch for the messages to come (one INSERT of references) and move
    its conversations' dates on (one UPDATE per conversation that got newer mail)."""
    Reference.objects.bulk_create(
        Reference(account_id=content.account_id, content=content, message_id=ref)
        for content in batch
        for ref in references[content.sha256]
    )
    latest: dict[int, MessageContent] = {}
    undated: dict[int, MessageContent] = {}
    for content in batch:
        if content.date is None:
            undated.setdefault(content.conversation_id, content)
        elif (
            content.conversation_id not in latest
            or content.date > latest[content.conversation_id].date
        ):
            latest[content.conversation_id] = content
    for conversation_id, content in latest.items():
        Conversation.objects.filter(pk=conversation_id).filter(
            Q(last_date__isnull=True) | Q(last_date__lt=content.date)
        ).update(last_date=content.date, subject=content.subject[:998])
    for conversation_id, content in undated.items():
        Conversation.objects.filter(pk=conversation_id, subject="").update(
            subject=content.subject[:998]
        )
