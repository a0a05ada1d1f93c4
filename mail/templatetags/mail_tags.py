from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def mail_date(value: datetime | None) -> str:
    """Gmail's short date: the time today, the day this year, the full date before."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    now = timezone.localtime()
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
