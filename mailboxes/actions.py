"""What users do to their mail — read, star, move, delete — applied here at once and queued for
the IMAP server (``PendingAction``), which the sync pushes before it pulls."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from accounts.models import User
from mailboxes import live
from mailboxes.models import Folder, Keyword, MailAccount, Message, PendingAction

FLAG_FIELDS = {"seen": b"\\Seen", "flagged": b"\\Flagged"}


def messages_of(user: User, message_ids: Iterable[int]) -> QuerySet[Message]:
    """The user's own messages among ``message_ids``; others' are silently not there."""
    return Message.objects.filter(pk__in=list(message_ids), folder__account__user=user)


def _schedule_push(user: User, account_ids: set[int]) -> None:
    """A sync pushes pending actions before anything else; start one once this commits."""
    from mailboxes.tasks import sync_account

    if account_ids:
        live.bump(user.pk)
    for account_id in account_ids:
        transaction.on_commit(lambda account_id=account_id: sync_account.delay(account_id))


@transaction.atomic
def set_flag(user: User, message_ids: Iterable[int], field: str, value: bool) -> int:
    """Set ``seen`` or ``flagged`` on the user's messages; returns how many changed."""
    flag = FLAG_FIELDS[field].decode()
    changed = list(
        messages_of(user, message_ids).exclude(**{field: value}).select_related("folder__account")
    )
    kind = PendingAction.Kind.ADD_FLAGS if value else PendingAction.Kind.REMOVE_FLAGS
    actions = []
    for message in changed:
        setattr(message, field, value)
        if message.uid is not None and message.folder.account.protocol == MailAccount.Protocol.IMAP:
            actions.append(
                PendingAction(
                    account_id=message.folder.account_id,
                    kind=kind,
                    folder=message.folder,
                    uidvalidity=message.uidvalidity,
                    uid=message.uid,
                    flags=[flag],
                )
            )
    Message.objects.bulk_update(changed, [field])
    PendingAction.objects.bulk_create(actions)
    _schedule_push(user, {action.account_id for action in actions})
    if changed and not actions:
        live.bump(user.pk)  # POP3 mail: local flags only
    return len(changed)


KEYWORD = re.compile(r"[A-Za-z0-9_.\-/+&]{1,64}")


def valid_keyword(keyword: str) -> bool:
    """An IMAP keyword a user may set: an ASCII atom, not a system flag nor a "$" keyword."""
    return bool(KEYWORD.fullmatch(keyword))


@transaction.atomic
def set_keyword(user: User, message_ids: Iterable[int], keyword: str, value: bool) -> int:
    """Add or remove an IMAP keyword (a label) on the user's messages; returns how many changed."""
    if not valid_keyword(keyword):
        raise ValueError(f"not a keyword: {keyword!r}")
    changed = []
    for message in messages_of(user, message_ids).select_related("folder__account"):
        if (keyword in message.keywords) != value:
            others = [k for k in message.keywords if k != keyword]
            message.keywords = sorted([*others, keyword]) if value else others
            changed.append(message)
    kind = PendingAction.Kind.ADD_FLAGS if value else PendingAction.Kind.REMOVE_FLAGS
    actions = [
        PendingAction(
            account_id=message.folder.account_id,
            kind=kind,
            folder=message.folder,
            uidvalidity=message.uidvalidity,
            uid=message.uid,
            flags=[keyword],
        )
        for message in changed
        if message.uid is not None and message.folder.account.protocol == MailAccount.Protocol.IMAP
    ]
    Message.objects.bulk_update(changed, ["keywords"])
    if value:
        record_keywords({(m.folder.account_id, keyword) for m in changed})
    PendingAction.objects.bulk_create(actions)
    _schedule_push(user, {action.account_id for action in actions})
    if changed and not actions:
        live.bump(user.pk)
    return len(changed)


@transaction.atomic
def move_messages(user: User, message_ids: Iterable[int], target: Folder) -> int:
    """Move the user's messages into ``target`` (a folder of the same account)."""
    moving = list(
        messages_of(user, message_ids)
        .filter(folder__account=target.account)
        .exclude(folder=target)
        .select_related("folder")
    )
    # Moved already, and the server not told yet: that move now goes to the new target (or,
    # back where it came from, is forgotten, and the row gets its old UID back).
    waiting = {
        action.message_id: action
        for action in PendingAction.objects.filter(
            kind=PendingAction.Kind.MOVE, message__in=[m for m in moving if m.uid is None]
        )
    }
    actions, retargeted, cancelled = [], [], []
    for message in moving:
        if message.uid is not None:
            actions.append(
                PendingAction(
                    account_id=target.account_id,
                    kind=PendingAction.Kind.MOVE,
                    folder=message.folder,
                    uidvalidity=message.uidvalidity,
                    uid=message.uid,
                    target=target,
                    message=message,
                )
            )
        elif (pending := waiting.get(message.pk)) is not None:
            if pending.folder_id == target.pk:
                cancelled.append(pending.pk)
                message.folder = target
                message.uid, message.uidvalidity = pending.uid, pending.uidvalidity
                continue
            pending.target = target
            retargeted.append(pending)
        # Shown in the target at once; its server UID is learnt at the next sync, which adopts
        # this row rather than adding a second one.
        message.folder = target
        message.uid = None
        message.uidvalidity = None
    PendingAction.objects.filter(pk__in=cancelled).delete()
    PendingAction.objects.bulk_update(retargeted, ["target"])
    Message.objects.bulk_update(moving, ["folder", "uid", "uidvalidity"])
    PendingAction.objects.bulk_create(actions)
    if moving:
        _schedule_push(user, {target.account_id})
    return len(moving)


def delete_messages(user: User, message_ids: Iterable[int]) -> int:
    """To the Trash, per account; messages already in the Trash stay there (emptying the Trash
    is a separate, explicit action)."""
    moved = 0
    for account in MailAccount.objects.filter(user=user):
        trash = account.folders.filter(role=Folder.Role.TRASH).first()
        if trash is not None:
            moved += move_messages(user, message_ids, trash)
    return moved


@transaction.atomic
def expunge_messages(user: User, message_ids: Iterable[int]) -> int:
    """Delete the user's messages for good, here and on the server (emptying the Trash).

    A copy whose move has not reached the server yet is expunged where the server has it; one
    moved there whose new UID the sync has not learnt yet is dropped here only, and the next
    sync shows it again.
    """
    doomed = list(messages_of(user, message_ids).select_related("folder__account"))
    # Moved here but not there yet: the server is told to expunge it where it still is.
    PendingAction.objects.filter(
        kind=PendingAction.Kind.MOVE, message__in=[m for m in doomed if m.uid is None]
    ).update(kind=PendingAction.Kind.EXPUNGE, target=None)
    actions = [
        PendingAction(
            account_id=message.folder.account_id,
            kind=PendingAction.Kind.EXPUNGE,
            folder=message.folder,
            uidvalidity=message.uidvalidity,
            uid=message.uid,
        )
        for message in doomed
        if message.uid is not None and message.folder.account.protocol == MailAccount.Protocol.IMAP
    ]
    Message.objects.filter(pk__in=[m.pk for m in doomed]).delete()
    PendingAction.objects.bulk_create(actions)
    _schedule_push(user, {action.account_id for action in actions})
    if doomed:
        live.bump(user.pk)
    return len(doomed)


def record_keywords(pairs: set[tuple[int, str]]) -> None:
    """Remember (account id, keyword) pairs as labels the account uses."""
    Keyword.objects.bulk_create(
        [Keyword(account_id=a, name=k[:255]) for a, k in pairs if k and not k.startswith("$")],
        ignore_conflicts=True,
    )
