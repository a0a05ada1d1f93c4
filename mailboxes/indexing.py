"""The second half of storing a message: parse its body once the sync has stored it.

The sync stores each message with its header fields only (``sync.build_content``): that is what
the list and threading need, and a full MIME parse costs about ten times more than the header.
Here, off the sync's path, the raw bytes are read back and parsed in full: body text, snippet,
attachments, the warnings of the whole message and the complete search text. Newest first,
in batches committed one by one, so a killed worker loses at most one batch of work and the
next run takes up what is left; on PostgreSQL two runs at once skip each other's rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection, transaction

from mailboxes import rawstore
from mailboxes.models import MailAccount, MessageContent
from mailboxes.search import search_text_for
from mailcore.mime import parse_message

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
FIELDS = [
    "has_attachments",
    "attachments",
    "snippet",
    "body_text",
    "parse_warnings",
    "search_text",
    "indexed",
]


@dataclass
class IndexReport:
    indexed: int = 0
    missing: int = 0  # rows whose raw bytes were not found in storage


def index_account(account: MailAccount, limit: int | None = None) -> IndexReport:
    """Parse the bodies of the account's messages not yet indexed (at most `limit`)."""
    report = IndexReport()
    while limit is None or report.indexed < limit:
        size = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - report.indexed)
        with transaction.atomic():
            batch = _claim(account, size)
            if not batch:
                break
            for content in batch:
                _index(content, report)
            MessageContent.objects.bulk_update(batch, FIELDS)
        report.indexed += len(batch)
    return report


def pending(account: MailAccount) -> bool:
    return MessageContent.objects.filter(account=account, indexed=False).exists()


def _claim(account: MailAccount, size: int) -> list[MessageContent]:
    rows = MessageContent.objects.filter(account=account, indexed=False).order_by("-date")
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True)
    return list(rows[:size])


def _index(content: MessageContent, report: IndexReport) -> None:
    try:
        raw = rawstore.read(content)
    except OSError:
        # Nothing to parse: keep the header fields, say so, and do not try again.
        logger.warning("raw bytes of content %s are missing", content.pk)
        content.parse_warnings = [*content.parse_warnings, "raw-missing"]
        content.indexed = True
        report.missing += 1
        return
    parsed = parse_message(raw)
    content.has_attachments = parsed.has_attachments
    content.attachments = [
        {
            "filename": att.filename,
            "content_type": att.content_type,
            "size": att.size,
            "content_id": att.content_id,
            "part": att.part_path,
        }
        for att in parsed.attachments
    ]
    content.snippet = parsed.snippet[:300]
    content.body_text = parsed.text
    content.parse_warnings = list(parsed.warnings)
    content.search_text = search_text_for(content)
    content.indexed = True
