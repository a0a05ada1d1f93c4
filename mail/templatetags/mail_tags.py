from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django import template
from django.template import Context
from django.urls import reverse
from django.utils import dateformat, formats, timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from mail import listing

if TYPE_CHECKING:
    from mail.listing import Row
    from mailboxes.models import Folder

register = template.Library()


@register.filter
def folder_label(folder: Folder) -> str:
    """What the user calls a folder: "Inbox" (in their language) for the server's "INBOX"."""
    return listing.folder_label(folder)


@register.filter
def mail_date(value: datetime | None) -> str:
    """Gmail's short date: the time today, the day this year, the full date before."""
    if value is None:
        return ""
    return _short_date(timezone.localtime(value), timezone.localtime())


def _short_date(local: datetime, now: datetime) -> str:
    if local.date() == now.date():
        return formats.time_format(local, "TIME_FORMAT")
    if local.year == now.year:
        return formats.date_format(local, "MONTH_DAY_FORMAT")
    return formats.date_format(local, "SHORT_DATE_FORMAT")


@register.filter
def full_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


@register.simple_tag
def senders(row: object) -> SafeString:
    """The row's senders, unread ones in bold, with the conversation's count."""
    names = getattr(row, "senders", [])
    parts = ((format_html("<b>{}</b>", name) if unread else name,) for name, unread in names)
    joined = format_html_join(", ", "{}", parts)
    count = getattr(row, "count", 1)
    if count > 1:
        return format_html('{} <span class="count">{}</span>', joined, count)
    return joined


@register.filter
def highlight(text: str, terms: list[str]) -> SafeString:
    """The text escaped, with the search's words and phrases marked (case-insensitively).

    Works on our own plain text (subjects, snippets), never on sanitised HTML."""
    text = str(text or "")
    wanted = sorted({t.casefold() for t in terms or [] if t.strip()}, key=len, reverse=True)
    if not wanted:
        return format_html("{}", text)
    folded = text.casefold()
    if len(folded) != len(text):  # a few characters change length when folded: no marks
        return format_html("{}", text)
    marks: list[tuple[int, int]] = []
    for term in wanted[:20]:
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            if not any(s < end and start < e for s, e in marks):
                marks.append((start, end))
            start = folded.find(term, end)
    pieces, position = [], 0
    for start, end in sorted(marks):
        pieces.append(format_html("{}<mark>{}</mark>", text[position:start], text[start:end]))
        position = end
    pieces.append(format_html("{}", text[position:]))
    return SafeString("".join(pieces))


LABEL_COLOURS = 8


@register.filter
def label_colour(label: str) -> int:
    """A stable colour (0 to 7) for a label, the same in every list and on every device."""
    return sum(str(label).casefold().encode()) % LABEL_COLOURS


@register.simple_tag(takes_context=True)
def list_row(context: Context, row: Row) -> SafeString:
    """One line of a list (templates/mail/list_rows.html), built here rather than in template
    markup, which cost a millisecond a row (fifty lookups, filters and translations each). Every
    value from a message is escaped; what every row shares is worked out once per page."""
    shared = context.render_context.get(_ROW_SHARED)
    if shared is None:
        shared = context.render_context[_ROW_SHARED] = _RowShared(context)
    text = shared.text
    key = escape(row.key)
    if row.conversation_id:
        chosen = f'name="conversation" value="{int(row.conversation_id)}"'
    else:
        chosen = f'name="message" value="{int(row.message.pk)}"'
    on = row.flagged
    content = row.message.content
    subject: str = content.subject or shared.no_subject
    snippet: str = content.snippet
    if shared.terms:
        subject, snippet = highlight(subject, shared.terms), highlight(snippet, shared.terms)
    else:
        subject, snippet = escape(subject), escape(snippet)
    if snippet:
        snippet = f'<span class="snippet"> — {snippet}</span>'
    labels = "".join(
        f'<span class="label-chip" data-label-colour="{label_colour(label)}">'
        f"{escape(label)}</span> "
        for label in row.labels
    )
    folder = (
        f'<span class="folder-tag">{escape(listing.folder_label(row.message.folder))}</span>\n'
        if shared.folder_tags
        else ""
    )
    date = row.message.date
    times = shared.dates(date) if date is not None else ("", "", "")
    url = reverse("mail-conversation", args=[content.conversation_id or 0])
    return SafeString(
        f'<li class="conversation{" unread" if row.unread else ""}{" starred" if on else ""}"'
        f' data-row data-key="{key}">\n'
        f'<input type="checkbox" class="select" aria-label="{text["select"]}"'
        f' aria-describedby="subject-{key}" {chosen}>\n'
        f'<button type="submit" form="{"unstar-form" if on else "star-form"}" {chosen}'
        f' class="star{" on" if on else ""}" data-star aria-label="{text["star"]}"'
        f' aria-describedby="subject-{key}" aria-pressed="{"true" if on else "false"}"'
        f' title="{text["starred" if on else "not_starred"]}">'
        f'<span aria-hidden="true">{"★" if on else "☆"}</span></button>\n'
        f'<a class="open" href="{escape(url)}?{escape(shared.back)}" data-open>\n'
        f'<span class="senders">{shared.unread if row.unread else ""}{senders(row)}</span>\n'
        f'<span class="summary">{labels}<span class="subject" id="subject-{key}">{subject}</span>\n'
        f"{snippet}</span>\n"
        f"{folder}{shared.clip if row.has_attachments else ''}"
        f'<time datetime="{times[0]}" title="{times[1]}">{times[2]}</time>\n'
        "</a>\n</li>\n"
    )


_ROW_SHARED = "mail_tags.list_row"


class _RowShared:
    """What every row of a page shows alike, escaped."""

    def __init__(self, context: Context) -> None:
        view, query = context.get("view"), context.get("query") or ""
        self.zone = timezone.get_current_timezone()
        self.now = timezone.localtime(timezone=self.zone)
        self.formats = {
            name: formats.get_format(name)
            for name in ("DATETIME_FORMAT", "TIME_FORMAT", "MONTH_DAY_FORMAT", "SHORT_DATE_FORMAT")
        }
        self.terms: list[str] = context.get("highlight") or []
        self.folder_tags = getattr(view, "kind", "") not in ("folder", "inbox")
        # Where a conversation opened from this list goes back to, as the URL's query.
        self.back = urlencode({"v": getattr(view, "key", "")} | ({"q": query} if query else {}))
        self.text = {
            "select": escape(_("Select")),
            "star": escape(_("Star")),
            "starred": escape(_("Starred")),
            "not_starred": escape(_("Not starred")),
        }
        self.no_subject = _("(no subject)")  # escaped or highlighted as a subject is
        self.unread = format_html('<span class="visually-hidden">{}, </span>', _("Unread"))
        attached = _("Has attachments")
        self.clip = format_html(
            '<span class="clip" title="{}"><span aria-hidden="true">📎</span>'
            '<span class="visually-hidden">{}</span></span>\n',
            attached,
            attached,
        )

    def dates(self, value: datetime) -> tuple[str, str, str]:
        """A row's <time>: its datetime attribute, title (full_date) and text (mail_date),
        escaped; the same as the filters, with the formats looked up once a page."""
        local = timezone.localtime(value, self.zone)
        if local.date() == self.now.date():
            short = dateformat.time_format(local, self.formats["TIME_FORMAT"])
        elif local.year == self.now.year:
            short = dateformat.format(local, self.formats["MONTH_DAY_FORMAT"])
        else:
            short = dateformat.format(local, self.formats["SHORT_DATE_FORMAT"])
        full = dateformat.format(local, self.formats["DATETIME_FORMAT"])
        return local.isoformat(), escape(full), escape(short)
