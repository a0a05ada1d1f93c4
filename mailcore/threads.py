"""Group messages into conversations, one message at a time, as the sync engine stores them.

The sync engine stores mail in batches — newest first, then older mail, from several folders — so a
reply often arrives before the message it answers, and the same message can arrive twice (INBOX
and Archive). `assign_thread` therefore decides each message's conversation from what is already
stored, through a `ThreadStore` the Django layer backs with database lookups, and merges
conversations when a late message proves they are one.

Rules, in order:

1. **Linked by id.** The message's ids are its own Message-ID (a copy of a stored message joins its
   copy) and the ids it references (`referenced_ids`: In-Reply-To, then References newest first).
   Every stored thread linked to those ids joins: threads holding a message with one of the ids,
   and threads holding a message that *references* one of them — a reply stored before its parent
   (older mail synced later), or a sibling answering the same parent when that parent was never
   stored. If several threads are linked, they are merged into the lowest id (the oldest) and the
   message joins it. Parents and children are looked up together, not one after the other: a
   message that is the child of one stored thread and the parent of another must merge them.
2. **Subject fallback**, for mailers that drop In-Reply-To and References, only when nothing is
   linked by id. Two messages are linked by subject when their normalised subjects are equal and
   non-empty, the *later* one's subject had a reply or forward prefix (Re:, TR:, AW:, SV:…), and
   their dates are at most `subject_window` apart. So "Re: Lunch" joins "Lunch" of the week before,
   and "Lunch" joins a "Re: Lunch" stored first; two unrelated "Hello" messages, empty subjects, or
   messages without a date are never grouped (the sync engine can pass the server's arrival date
   for a message without a Date header). The nearest such message wins; a subject never merges
   threads, since it is weak evidence.
3. Otherwise, a **new thread**.

Email is hostile input: ids are cleaned (brackets, whitespace and control characters removed,
length bounded to the database column), only the first id of In-Reply-To counts, references are
bounded to `MAX_REFERENCES` (the newest ones plus the root, which RFC 5322 asks trimming mailers to
keep), and a message whose References list its own id does not reference itself.

What the Django layer stores per message is `index_message(key)` (a `ThreadIndex`): cleaned id,
bounded references, normalised subject, reply flag and UTC date; the store's lookups search those
columns, scoped to one mail account (references as a JSON array of strings, for instance, which
PostgreSQL's `?|` operator — Django's `has_any_keys` — searches by index). `assign_thread` reads,
then the caller writes the message: run both in one transaction, with the account locked, so two
workers cannot open two threads for one conversation. `MemoryThreadStore` is the reference
implementation, used by the tests.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

# MessageContent.message_id's column; an id cut here is cut the same way everywhere, so it still
# matches itself.
MAX_MESSAGE_ID_LENGTH = 995
# Enough to link any real conversation; an absurd header must not become an absurd query.
MAX_REFERENCES = 50
# Only the tail of a References field (the newest ids) and the head of the others are read: the
# rest of a megabyte header is never worth scanning.
MAX_FIELD_CHARS = 64 * 1024
MAX_REFERENCE_FIELDS = 1000
# Normalised subjects are compared through an indexed column; cut the same way on both sides.
MAX_SUBJECT_LENGTH = 255
# Prefixes are stripped from the start only; past this a subject is not worth reading further.
MAX_SUBJECT_INPUT = 4096
# A [list tag] longer than this is more likely the subject itself than a tag.
MAX_LIST_TAG = 64

DEFAULT_SUBJECT_WINDOW = timedelta(days=30)

# Reply and forward prefixes by language. Single letters (Italian "R:", "I:") are left out: "I: …"
# and "R: …" are too often real subjects, and a false prefix lets the subject fallback glue.
_PREFIXES = (
    "re",  # English and most others
    "fw",
    "fwd",
    "tr",  # French: transfert
    "réf",
    "réf.",
    "ref",
    "ref.",
    "aw",  # German: Antwort
    "wg",  # German: Weitergeleitet
    "antw",  # Dutch: antwoord
    "doorst",  # Dutch: doorgestuurd
    "sv",  # Swedish, Danish, Norwegian, Icelandic: svar
    "vs",  # Finnish: vastaus; Danish, Norwegian: videresendt
    "vl",  # Finnish: välitetty
    "vb",  # Swedish: vidarebefordrat
    "fs",  # Icelandic: framsent
    "rif",  # Italian: riferimento
    "rv",  # Spanish: reenviado
    "res",  # Portuguese: resposta
    "enc",  # Portuguese: encaminhado
    "odp",  # Polish, Czech: odpověď
    "pd",  # Polish: przekazanie dalej
    "ynt",  # Turkish: yanit (reply)
    "ilt",  # Turkish: iletildi
    "απ",  # Greek: απάντηση
    "σχετ",  # Greek: σχετικά
    "πρθ",  # Greek: προώθηση
    "回复",  # Chinese, simplified
    "回覆",  # Chinese, traditional
    "答复",
    "转发",
    "轉寄",
    "轉發",
)
# After NFKC, so a full-width colon or a no-break space (French "RE :") is already plain. A counter
# may follow: "Re[2]:", "Re(2):", "Re^2:".
_PREFIX = re.compile(
    r"(?:" + "|".join(sorted(map(re.escape, _PREFIXES), key=len, reverse=True)) + r")"
    r" ?(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4})? ?:",
    re.IGNORECASE,
)
_LIST_TAG = re.compile(rf"\[[^\[\]]{{0,{MAX_LIST_TAG}}}\]")
# Pine and others mark a forward at the end: "Lunch (fwd)".
_FORWARD_SUFFIXES = ("(fwd)", "(fw)")
_BRACKETED = re.compile(r"<([^<>]*)>")
# Whitespace, controls and the brackets themselves never belong inside an id; NUL would even be
# refused by PostgreSQL.
_NOT_IN_ID = re.compile(r"[\x00-\x20\x7f<>]")


@dataclass(frozen=True)
class ThreadKey:
    """What the threader needs from a message, as parsed; every field may be hostile."""

    message_id: str  # with or without <>; may be empty or shared by unrelated messages
    in_reply_to: str
    references: tuple[str, ...]  # ids, or whole header values: both are tokenised
    subject: str  # decoded, prefixes and all
    date: datetime | None  # naive datetimes are taken as UTC


@dataclass(frozen=True)
class ThreadIndex:
    """What a store keeps per message so that later messages can find it."""

    message_id: str
    references: tuple[str, ...]
    subject: str  # normalised
    is_reply: bool  # the subject had a reply or forward prefix
    date: datetime | None  # aware, UTC


class ThreadStore(Protocol):
    """Lookups over one mail account's stored messages (their `ThreadIndex`), and thread writes.

    Thread ids must grow with creation: "the oldest thread" is the lowest id.
    """

    def threads_for_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """Message-id -> thread, for the stored messages with one of these ids."""
        ...

    def threads_referencing(self, ids: Sequence[str]) -> list[int]:
        """Threads of stored messages whose references list one of these ids."""
        ...

    def latest_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        """Thread of the latest stored message with this normalised subject dated in
        [since, until]; ties go to the lowest thread id."""
        ...

    def earliest_reply_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        """Thread of the earliest stored message with this normalised subject, a reply prefix,
        and a date in [since, until]; ties go to the lowest thread id."""
        ...

    def new_thread(self) -> int: ...

    def merge_threads(self, keep: int, others: Sequence[int]) -> None:
        """Move every message of `others` into `keep`; `others` are then empty."""
        ...


def clean_message_id(raw: str) -> str:
    """The id a Message-ID header names, without brackets; "" when there is none."""
    ids = _ids_in(raw[:MAX_FIELD_CHARS])
    return ids[0] if ids else ""


def referenced_ids(key: ThreadKey) -> list[str]:
    """The ids a message answers, its direct parent first: In-Reply-To, then References newest
    first, without duplicates or its own id, at most `MAX_REFERENCES` (the root kept)."""
    own = clean_message_id(key.message_id)
    seen = {own}
    found: list[str] = []

    def take(ids: Iterable[str]) -> bool:
        """Adds new ids; True once the list is full."""
        for id_ in ids:
            if id_ not in seen:
                seen.add(id_)
                found.append(id_)
                if len(found) == MAX_REFERENCES - 1:  # one place left for the root
                    return True
        return False

    # Only the first id of In-Reply-To: old mailers add the author's address after it
    # ("<id> (John <john@example.com>'s message of …)"), which would link all of John's mail.
    take(_ids_in(key.in_reply_to[:MAX_FIELD_CHARS])[:1])
    fields = key.references[-MAX_REFERENCE_FIELDS:]
    for field_ in reversed(fields):
        if take(reversed(_ids_in(_tail(field_)))):
            break
    # The root links the whole conversation even when the middle of it is missing.
    if key.references:
        root = _ids_in(key.references[0][:MAX_FIELD_CHARS])[:1]
        for id_ in root:
            if id_ not in seen:
                found.append(id_)
    return found


def normalise_subject(subject: str) -> str:
    """The subject without reply/forward prefixes or [list tags], whitespace collapsed, case-folded:
    "RE: [liste] TR: Réunion" and "Réunion" give the same."""
    return _strip_subject(subject)[0]


def has_reply_prefix(subject: str) -> bool:
    """Whether the subject says it answers or forwards another message."""
    return _strip_subject(subject)[1]


def index_message(key: ThreadKey) -> ThreadIndex:
    """What to store with a message so that later messages find it."""
    subject, is_reply = _strip_subject(key.subject)
    return ThreadIndex(
        message_id=clean_message_id(key.message_id),
        references=tuple(referenced_ids(key)),
        subject=subject,
        is_reply=is_reply,
        date=_utc(key.date) if key.date is not None else None,
    )


def assign_thread(
    key: ThreadKey,
    store: ThreadStore,
    *,
    subject_window: timedelta = DEFAULT_SUBJECT_WINDOW,
    index: ThreadIndex | None = None,
) -> int:
    """The thread this message belongs to, merging threads it proves to be one (module docstring).

    Reads the store and may create or merge threads, but does not store the message: the caller
    does, with `index_message(key)` (which it may pass as `index` if it has it already).
    """
    index = index or index_message(key)
    ids = [index.message_id, *index.references] if index.message_id else list(index.references)
    if ids:
        linked = set(store.threads_for_message_ids(ids).values())
        linked.update(store.threads_referencing(ids))
        if linked:
            keep = min(linked)
            others = sorted(linked - {keep})
            if others:
                store.merge_threads(keep, others)
            return keep

    if index.subject and index.date is not None:
        thread = None
        if index.is_reply:
            thread = store.latest_thread_with_subject(
                index.subject, index.date - subject_window, index.date
            )
        if thread is None:
            thread = store.earliest_reply_thread_with_subject(
                index.subject, index.date, index.date + subject_window
            )
        if thread is not None:
            return thread

    return store.new_thread()


@dataclass
class _Stored:
    index: ThreadIndex
    thread: int


class MemoryThreadStore:
    """A `ThreadStore` in dictionaries: one mailbox's messages, for tests and as a reference."""

    def __init__(self) -> None:
        self._next_thread = 1
        self._members: dict[int, list[_Stored]] = {}
        self._by_id: dict[str, list[_Stored]] = {}
        self._by_reference: dict[str, list[_Stored]] = {}
        self._by_subject: dict[str, list[_Stored]] = {}

    def file(self, key: ThreadKey, *, subject_window: timedelta = DEFAULT_SUBJECT_WINDOW) -> int:
        """Thread the message and store it, as the sync engine does; returns its thread."""
        thread = assign_thread(key, self, subject_window=subject_window)
        self.add(key, thread)
        return thread

    def add(self, key: ThreadKey, thread: int) -> None:
        stored = _Stored(index_message(key), thread)
        self._members.setdefault(thread, []).append(stored)
        if stored.index.message_id:
            self._by_id.setdefault(stored.index.message_id, []).append(stored)
        for ref in stored.index.references:
            self._by_reference.setdefault(ref, []).append(stored)
        if stored.index.subject:
            self._by_subject.setdefault(stored.index.subject, []).append(stored)

    def thread_of(self, message_id: str) -> int | None:
        """The current thread of a stored message (merges move it), None if not stored."""
        stored = self._by_id.get(clean_message_id(message_id))
        return stored[0].thread if stored else None

    def threads(self) -> dict[int, list[str]]:
        """Each non-empty thread and its messages' ids, in storing order."""
        return {
            thread: [s.index.message_id for s in members]
            for thread, members in sorted(self._members.items())
            if members
        }

    # ThreadStore

    def threads_for_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        return {id_: min(s.thread for s in self._by_id[id_]) for id_ in ids if id_ in self._by_id}

    def threads_referencing(self, ids: Sequence[str]) -> list[int]:
        return sorted({s.thread for id_ in ids for s in self._by_reference.get(id_, ())})

    def latest_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        found = self._dated_with_subject(subject, since, until, replies_only=False)
        return max(found, key=lambda s: (s[0], -s[1]))[1] if found else None

    def earliest_reply_thread_with_subject(
        self, subject: str, since: datetime, until: datetime
    ) -> int | None:
        found = self._dated_with_subject(subject, since, until, replies_only=True)
        return min(found)[1] if found else None

    def new_thread(self) -> int:
        thread = self._next_thread
        self._next_thread += 1
        self._members[thread] = []
        return thread

    def merge_threads(self, keep: int, others: Sequence[int]) -> None:
        kept = self._members.setdefault(keep, [])
        for other in others:
            if other == keep:
                continue
            for stored in self._members.pop(other, []):
                stored.thread = keep
                kept.append(stored)

    def _dated_with_subject(
        self, subject: str, since: datetime, until: datetime, *, replies_only: bool
    ) -> list[tuple[datetime, int]]:
        since, until = _utc(since), _utc(until)
        return [
            (s.index.date, s.thread)
            for s in self._by_subject.get(subject, ())
            if s.index.date is not None
            and since <= s.index.date <= until
            and (s.index.is_reply or not replies_only)
        ]


def _ids_in(text: str) -> list[str]:
    """The ids in a header value: its <bracketed> parts if it has any, else its words."""
    raw = _BRACKETED.findall(text) if "<" in text and ">" in text else text.split()
    ids = (_NOT_IN_ID.sub("", id_)[:MAX_MESSAGE_ID_LENGTH] for id_ in raw)
    return [id_ for id_ in ids if id_]


def _tail(text: str) -> str:
    """The end of a References value, where the newest ids are."""
    if len(text) <= MAX_FIELD_CHARS:
        return text
    tail = text[-MAX_FIELD_CHARS:]
    if "<" in tail:
        return tail  # a cut "…id@host>" has no opening bracket and is not read as an id
    # Unbracketed: the first word may be the end of a cut id.
    words = tail.split(None, 1)
    return words[1] if len(words) == 2 else ""


def _strip_subject(subject: str) -> tuple[str, bool]:
    """The normalised subject, and whether a reply or forward prefix was stripped."""
    # NFKC: decomposed accents, full-width colons and no-break spaces compare as their plain forms.
    text = " ".join(unicodedata.normalize("NFKC", subject[:MAX_SUBJECT_INPUT]).split())
    is_reply = False
    position = 0
    # One prefix or tag per pass, each consuming at least two characters: linear in the input.
    while True:
        while position < len(text) and text[position] == " ":
            position += 1
        if match := _PREFIX.match(text, position):
            is_reply = True
        elif not (match := _LIST_TAG.match(text, position)):
            break
        position = match.end()
    text = text[position:].casefold()
    while text.endswith(_FORWARD_SUFFIXES):
        is_reply = True
        text = text[: text.rindex("(")].rstrip()
    return text.strip()[:MAX_SUBJECT_LENGTH], is_reply


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
