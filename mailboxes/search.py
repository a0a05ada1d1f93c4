"""Full-text search over a user's stored mail.

PostgreSQL: ``to_tsvector('simple', search_text)`` with a GIN index (migration 0004). The
'simple' configuration does no stemming, so it treats French and English alike and matches
words as typed. Elsewhere (SQLite): every word must appear, case-insensitively — a scan, which
suits the small sites that run on the embedded default.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import QuerySet

from accounts.models import User
from mailboxes.models import Message, MessageContent

MAX_SEARCH_TEXT = 200_000  # of body text per message; the rest is rarely what one looks for
MAX_QUERY = 500


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


def matching(contents: QuerySet[MessageContent], query: str) -> QuerySet[MessageContent]:
    query = query.strip()[:MAX_QUERY]
    if not query:
        return contents.none()
    if connection.vendor == "postgresql":
        # The expression must stay the one the migration indexes.
        document = SearchVector("search_text", config="simple")
        return contents.annotate(document=document).filter(
            document=SearchQuery(query, config="simple", search_type="websearch")
        )
    for word in query.split():
        contents = contents.filter(search_text__icontains=word.strip('"'))
    return contents


def search_contents(user: User, query: str) -> QuerySet[MessageContent]:
    return matching(MessageContent.objects.filter(account__user=user), query)


def search_messages(user: User, query: str) -> QuerySet[Message]:
    """The user's messages whose content matches, newest first."""
    return (
        Message.objects.filter(content__in=search_contents(user, query))
        .select_related("content", "folder")
        .order_by("-date", "-id")
    )
