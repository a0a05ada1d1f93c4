"""What the user does in the webmail, on conversations: each a transaction through
mailboxes.actions (which queue the change for the IMAP server), with an inverse kept for
"Undo"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from mail import signals
from mail.listing import HIDDEN, View
from mail.models import Preferences, Snooze, TrustedSender, UndoableAction
from mailboxes import actions, live
from mailboxes.models import Folder, Message

UNDO_FOR = timedelta(minutes=2)  # the toast shows for seconds; the server keeps it a little more


class Action(StrEnum):
    READ = "read"
    UNREAD = "unread"
    STAR = "star"
    UNSTAR = "unstar"
    ARCHIVE = "archive"
    DELETE = "delete"
    SPAM = "spam"
    NOT_SPAM = "not_spam"
    MOVE = "move"
    DELETE_FOREVER = "delete_forever"
    LABEL = "label"
    UNLABEL = "unlabel"
    SNOOZE = "snooze"
    UNSNOOZE = "unsnooze"


def preferences(user: User) -> Preferences:
    found, _created = Preferences.objects.get_or_create(user=user)
    return found


def selected_messages(
    user: User, view: View, conversation_ids: Iterable[int], message_ids: Iterable[int]
) -> QuerySet[Message]:
    """The user's messages a selection names: whole conversations and single messages."""
    mine = Message.objects.filter(folder__account__user=user)
    conversations = [c for c in conversation_ids if c]
    singles = [m for m in message_ids if m]
    chosen = mine.filter(content__conversation_id__in=conversations) | mine.filter(pk__in=singles)
    if view.role not in HIDDEN:
        # Acting on a conversation from the Inbox leaves its copies in Trash and Junk alone.
        chosen = chosen.exclude(folder__role__in=HIDDEN)
    return chosen


@transaction.atomic
def apply(
    user: User,
    view: View,
    action: Action,
    chosen: QuerySet[Message],
    target: Folder | None = None,
    *,
    label: str = "",
    until: datetime | None = None,
) -> tuple[int, UndoableAction | None]:
    """Do `action` on the chosen messages; returns how many changed and what undoes it."""
    if action in (Action.LABEL, Action.UNLABEL):
        return _label(user, chosen, label, action == Action.LABEL)
    if action == Action.SNOOZE:
        if until is None:
            raise ValueError("a snooze needs a time")
        return _snooze(user, chosen, until)
    if action == Action.UNSNOOZE:
        conversations = set(chosen.values_list("content__conversation_id", flat=True))
        deleted, _ = Snooze.objects.filter(user=user, conversation__in=conversations).delete()
        return deleted, None
    if action in (Action.READ, Action.UNREAD):
        return _flag(user, chosen, "seen", action == Action.READ)
    if action == Action.STAR:
        # As Gmail does: the star goes on the newest message of each conversation.
        newest: dict[int, int] = {}
        for pk, conversation in chosen.order_by("date", "id").values_list(
            "pk", "content__conversation_id"
        ):
            newest[conversation or -pk] = pk
        return _flag(user, chosen.filter(pk__in=newest.values()), "flagged", True)
    if action == Action.UNSTAR:
        return _flag(user, chosen, "flagged", False)
    if action == Action.DELETE_FOREVER:
        # Only from the Trash or Junk, where the user sees what goes; no undo.
        doomed = chosen.filter(folder__role__in=HIDDEN).values_list("pk", flat=True)
        return actions.expunge_messages(user, list(doomed)), None
    if action == Action.ARCHIVE:
        # From a folder: its copies (Junk, Trash or one of the user's); else the Inbox ones.
        if view.kind == "folder":
            moving = chosen.filter(folder=view.folder)
        else:
            moving = chosen.filter(folder__role=Folder.Role.INBOX)
        return _move_by_role(user, moving.exclude(folder__role=Folder.Role.ARCHIVE), "archive")
    trash, junk, inbox = Folder.Role.TRASH, Folder.Role.JUNK, Folder.Role.INBOX
    if action == Action.DELETE:
        return _move_by_role(user, chosen.exclude(folder__role=trash), trash)
    if action == Action.SPAM:
        reported = chosen.exclude(folder__role=junk)
        signals.spam_reported.send(Message, user=user, messages=list(reported), is_spam=True)
        return _move_by_role(user, reported, junk)
    if action == Action.NOT_SPAM:
        reported = chosen.filter(folder__role=junk)
        signals.spam_reported.send(Message, user=user, messages=list(reported), is_spam=False)
        return _move_by_role(user, reported, inbox)
    if target is None:  # the form requires one for a move
        raise ValueError("a move needs a target folder")
    moving = chosen.filter(folder__account=target.account).exclude(folder=target)
    if view.kind == "folder":
        moving = moving.filter(folder=view.folder)
    return _move(user, moving, {target.account_id: target})


def _flag(
    user: User, chosen: QuerySet[Message], field: str, value: bool
) -> tuple[int, UndoableAction | None]:
    ids = list(chosen.exclude(**{field: value}).values_list("pk", flat=True))
    changed = actions.set_flag(user, ids, field, value)
    if not changed:
        return 0, None
    undo = UndoableAction.objects.create(
        user=user, inverse={"flag": field, "value": not value, "ids": ids}
    )
    return changed, undo


def _label(
    user: User, chosen: QuerySet[Message], label: str, value: bool
) -> tuple[int, UndoableAction | None]:
    ids = list(chosen.values_list("pk", flat=True))
    changed = actions.set_keyword(user, ids, label, value)
    if not changed:
        return 0, None
    inverse = {"label": label, "value": not value, "ids": ids}
    return changed, UndoableAction.objects.create(user=user, inverse=inverse)


def _snooze(
    user: User, chosen: QuerySet[Message], until: datetime
) -> tuple[int, UndoableAction | None]:
    conversations = set(chosen.values_list("content__conversation_id", flat=True)) - {None}
    for conversation_id in conversations:
        Snooze.objects.update_or_create(
            user=user, conversation_id=conversation_id, defaults={"until": until}
        )
    live.bump(user.pk)
    inverse = {"unsnooze": sorted(conversations)}
    return len(conversations), UndoableAction.objects.create(user=user, inverse=inverse)


def wake_snoozed(now: datetime | None = None) -> int:
    """Bring back the conversations whose snooze ran out: unread again, at the user's Inbox."""
    due = list(Snooze.objects.filter(until__lte=now or timezone.now()))
    for snooze in due:
        with transaction.atomic():
            newest = (
                Message.objects.filter(
                    content__conversation_id=snooze.conversation_id,
                    folder__account__user_id=snooze.user_id,
                    folder__role=Folder.Role.INBOX,
                )
                .order_by("-date", "-id")
                .values_list("pk", flat=True)
                .first()
            )
            if newest is not None:
                actions.set_flag(snooze.user, [newest], "seen", False)
            snooze.delete()
            live.bump(snooze.user_id)
    return len(due)


def _move_by_role(
    user: User, chosen: QuerySet[Message], role: str
) -> tuple[int, UndoableAction | None]:
    targets = {
        folder.account_id: folder
        for folder in Folder.objects.filter(account__user=user, role=role).order_by("-pk")
    }
    return _move(user, chosen, targets)


def _move(
    user: User, chosen: QuerySet[Message], targets: dict[int, Folder]
) -> tuple[int, UndoableAction | None]:
    """Move each message to its account's target; accounts without one keep theirs."""
    origins = list(chosen.values_list("pk", "folder_id", "folder__account_id"))
    by_target: dict[int, list[int]] = defaultdict(list)
    for pk, _folder, account_id in origins:
        if account_id in targets:
            by_target[account_id].append(pk)
    moved = sum(actions.move_messages(user, ids, targets[a]) for a, ids in by_target.items())
    if not moved:
        return 0, None
    moves = [[pk, folder] for pk, folder, account_id in origins if account_id in by_target]
    return moved, UndoableAction.objects.create(user=user, inverse={"moves": moves})


@transaction.atomic
def undo(user: User, undo_id: int) -> bool:
    """Reverse one of the user's recent actions; False when it is not theirs or too old."""
    entry = (
        UndoableAction.objects.select_for_update()
        .filter(pk=undo_id, user=user, created_at__gte=timezone.now() - UNDO_FOR)
        .first()
    )
    if entry is None:
        return False
    inverse = entry.inverse
    if "flag" in inverse:
        actions.set_flag(user, inverse["ids"], inverse["flag"], inverse["value"])
    elif "label" in inverse:
        actions.set_keyword(user, inverse["ids"], inverse["label"], inverse["value"])
    elif "unsnooze" in inverse:
        Snooze.objects.filter(user=user, conversation__in=inverse["unsnooze"]).delete()
        live.bump(user.pk)
    else:
        by_folder: dict[int, list[int]] = defaultdict(list)
        for pk, folder_id in inverse["moves"]:
            by_folder[folder_id].append(pk)
        for folder in Folder.objects.filter(pk__in=list(by_folder), account__user=user):
            actions.move_messages(user, by_folder[folder.pk], folder)
    entry.delete()
    return True


def forget_old_undos() -> int:
    deleted, _ = UndoableAction.objects.filter(created_at__lt=timezone.now() - UNDO_FOR).delete()
    return deleted


def mark_read(user: User, message_ids: list[int]) -> int:
    """Opening a conversation reads it (no undo offered)."""
    return actions.set_flag(user, message_ids, "seen", True)


def trust_sender(user: User, address: str) -> None:
    TrustedSender.objects.get_or_create(user=user, address=address.strip().lower()[:320])


def trusts(user: User, address: str) -> bool:
    return TrustedSender.objects.filter(user=user, address=address.strip().lower()).exists()


def empty_folder(user: User, folder: Folder) -> int:
    """Delete every message of the user's Trash or Junk for good."""
    if folder.role not in HIDDEN or folder.account.user_id != user.pk:
        return 0
    return actions.expunge_messages(user, list(folder.messages.values_list("pk", flat=True)))
