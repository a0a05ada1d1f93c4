"""The database side of conversation threading: mailcore.threads' ThreadStore for one account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Q

from mailboxes.models import Conversation, MailAccount, MessageContent, Reference
from mailcore import threads


class AccountThreadStore:
    """Lookups over one account's stored messages. Callers hold the account's sync lease, so
    no other writer threads this account at the same time."""

    def __init__(self, account: MailAccount) -> None:
        self.account = account
        self.contents = MessageContent.objects.filter(account=account, conversation__isnull=False)

    def threads_for_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        rows = self.contents.filter(message_id__in=list(ids)).values_list(
            "message_id", "conversation_id"
        )
        return dict(rows)

    def threads_referencing(self, ids: Sequence[str]) -> list[int]:
        rows = (
            Reference.objects.filter(account=self.account, message_id__in=list(ids))
            .exclude(content__conversation__isnull=True)
            .values_list("content__conversation_id", flat=True)
            .distinct()
        )
        return sorted(rows)

    def latest_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        return (
            self.contents.filter(thread_subject=subject, date__range=(since, until))
            .order_by("-date", "conversation_id")
            .values_list("conversation_id", flat=True)
            .first()
        )

    def earliest_reply_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        return (
            self.contents.filter(thread_subject=subject, is_reply=True, date__range=(since, until))
            .order_by("date", "conversation_id")
            .values_list("conversation_id", flat=True)
            .first()
        )

    def new_thread(self) -> int:
        return Conversation.objects.create(account=self.account).pk

    def merge_threads(self, keep: int, others: Sequence[int]) -> None:
        others = [other for other in others if other != keep]
        MessageContent.objects.filter(conversation_id__in=others).update(conversation_id=keep)
        Conversation.objects.filter(pk__in=others).delete()


def prepare_thread(content: MessageContent) -> tuple[str, ...]:
    """Give a message about to be stored its conversation and threading fields.

    Returns the ids it refers to, for ``record_thread`` once the row exists: everything goes in
    with the row's one INSERT, so its full-text index entry is computed once.
    """
    key = threads.ThreadKey(
        message_id=content.message_id,
        in_reply_to=content.in_reply_to,
        references=tuple(content.references),
        subject=content.subject,
        date=content.date,
    )
    index = threads.index_message(key)
    content.conversation_id = threads.assign_thread(key, AccountThreadStore(content.account))
    content.message_id = index.message_id
    content.thread_subject = index.subject
    content.is_reply = index.is_reply
    return index.references


def record_thread(content: MessageContent, references: tuple[str, ...]) -> None:
    """Index a stored message for the ones to come, and move its conversation's date on."""
    Reference.objects.bulk_create(
        Reference(account_id=content.account_id, content=content, message_id=ref)
        for ref in references
    )
    conversation = Conversation.objects.filter(pk=content.conversation_id)
    subject = content.subject[:998]
    if content.date is not None:
        conversation.filter(Q(last_date__isnull=True) | Q(last_date__lt=content.date)).update(
            last_date=content.date, subject=subject
        )
    else:
        conversation.filter(subject="").update(subject=subject)
