from __future__ import annotations

import html
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django import template
from django.template import Context
from django.urls import reverse
from django.utils import dateformat, formats, timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from mail import listing

if TYPE_CHECKING:
    from mail.listing import Row, SidebarFolder
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
    local = timezone.localtime(value)
    return formats.date_format(local, short_format(local.date(), timezone.localdate()))


def short_format(day: date, today: date) -> str:
    """Which format a list shows a day in: the time today, the day this year, the full date
    before (the filter above and the list's rows, which format many dates at once)."""
    if day == today:
        return "TIME_FORMAT"
    if day.year == today.year:
        return "MONTH_DAY_FORMAT"
    return "SHORT_DATE_FORMAT"


@register.filter
def full_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


@register.simple_tag
def senders(row: object) -> SafeString:
    """The row's senders, unread ones in bold, with the conversation's count."""
    names = getattr(row, "senders", [])
    joined = ", ".join(
        f"<b>{_escape(name)}</b>" if unread else _escape(name) for name, unread in names
    )
    count = getattr(row, "count", 1)
    if count > 1:
        joined = f'{joined} <span class="count">{int(count)}</span>'
    return SafeString(joined)


def _escape(text: str) -> str:
    """Django's escape() for a text known to be a str (not lazy), without its wrappers: the
    list calls it ten times a row."""
    return html.escape(text, quote=True)


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
    key = _escape(row.key)
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
        subject, snippet = _escape(subject), _escape(snippet)
    if snippet:
        snippet = f'<span class="snippet"> — {snippet}</span>'
    labels = "".join(
        f'<span class="label-chip" data-label-colour="{label_colour(label)}">'
        f"{_escape(label)}</span> "
        for label in row.labels
    )
    folder = (
        f'<span class="folder-tag">{_escape(listing.folder_label(row.message.folder))}</span>\n'
        if shared.folder_tags
        else ""
    )
    date = row.message.date
    times = shared.dates(date) if date is not None else ("", "", "")
    url = shared.conversation_url(content.conversation_id or 0)
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
        f'<a class="open" href="{_escape(url)}?{shared.back}" data-open>\n'
        f'<span class="senders">{shared.unread if row.unread else ""}{senders(row)}</span>\n'
        f'<span class="summary">{labels}<span class="subject" id="subject-{key}">{subject}</span>\n'
        f"{snippet}</span>\n"
        f"{folder}{shared.clip if row.has_attachments else ''}"
        f'<time datetime="{times[0]}" title="{times[1]}">{times[2]}</time>\n'
        "</a>\n</li>\n"
    )


@register.simple_tag
def sidebar_folders(items: list[SidebarFolder], view: object) -> SafeString:
    """The sidebar's folders of one account (templates/mail/layout.html), built here like the
    rows: in template markup, a dozen folders cost two milliseconds of every mail page."""
    current = getattr(getattr(view, "folder", None), "pk", None)
    before, _marker, after = _marked_url("mail-folder")
    lines = []
    for item in items:
        folder = item.folder
        label = _escape(item.label)
        here = ' aria-current="page"' if folder.pk == current else ""
        count = f'<strong class="count">{int(item.unread)}</strong>' if item.unread else ""
        lines.append(
            f'<li class="depth-{int(item.depth)}"><a href="{before}{int(folder.pk)}{after}"{here}'
            f' data-role="{_escape(folder.role)}"><span class="label" title="{label}">{label}'
            f"</span>{count}</a></li>"
        )
    return SafeString("\n".join(lines))


def _marked_url(name: str) -> tuple[str, str, str]:
    """reverse() of a URL taking one id, around a marker: the parts before and after the id,
    for building many such URLs without calling reverse() for each."""
    marker = 918273645
    return reverse(name, args=[marker]).partition(str(marker))  # type: ignore[return-value]


_ROW_SHARED = "mail_tags.list_row"


class _RowShared:
    """What every row of a page shows alike, escaped."""

    def __init__(self, context: Context) -> None:
        view, query = context.get("view"), context.get("query") or ""
        self.zone = timezone.get_current_timezone()
        self.today = timezone.localdate(timezone=self.zone)
        self.texts = {
            name: DateTexts(formats.get_format(name))
            for name in ("DATETIME_FORMAT", "TIME_FORMAT", "MONTH_DAY_FORMAT", "SHORT_DATE_FORMAT")
        }
        self.terms: list[str] = context.get("highlight") or []
        self.folder_tags = getattr(view, "kind", "") not in ("folder", "inbox")
        # Where a conversation opened from this list goes back to, as the URL's query.
        self.back = _escape(
            urlencode({"v": getattr(view, "key", "")} | ({"q": query} if query else {}))
        )
        self._url = _marked_url("mail-conversation")  # reverse() once a page, not once a row
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

    def conversation_url(self, conversation_id: int) -> str:
        before, _marker, after = self._url
        return f"{before}{int(conversation_id)}{after}"

    def dates(self, value: datetime) -> tuple[str, str, str]:
        """A row's <time>: its datetime attribute, title (full_date) and text (mail_date),
        escaped; the same as the filters, with the formats looked up once a page."""
        local = timezone.localtime(value, self.zone)
        short = self.texts[short_format(local.date(), self.today)](local)
        full = self.texts["DATETIME_FORMAT"](local)
        return local.isoformat(), _escape(full), _escape(short)


class DateTexts:
    """``dateformat.format(value, format)`` for the many dates of one page, the same text
    faster: what depends on the day alone (the names of months and days, the year, …) is worked
    out once a day, and the rest (the time, the zone) for each value, without parsing the format
    again. A page's rows share a few days; the names were most of the cost (a translation
    lookup each), about 0.1 ms a row."""

    # Django's specifiers that depend on the calendar day alone, and on the hour alone (AM and
    # PM are translated: a lookup each); the others read the minutes, the seconds or the zone's
    # offset, which can change within a day.
    DAY_ONLY = frozenset("bdDEFjlLmMnNoSWtwyYz")
    HOUR_ONLY = frozenset("aAgGhH")

    def __init__(self, format_string: str) -> None:
        self.pieces: list[tuple[str, str]] = []  # (specifier, "") or ("", literal text)
        parts = dateformat.re_formatchars.split(str(format_string))
        for index, part in enumerate(parts):
            if index % 2:
                self.pieces.append((part, ""))
            elif part:
                self.pieces.append(("", dateformat.re_escaped.sub(r"\1", part)))
        self.days: dict[date, list[str | None]] = {}  # None where a value's own text goes
        self.hours: dict[tuple[str, int], str] = {}

    def __call__(self, value: datetime) -> str:
        texts = self.days.get(value.date())
        if texts is None:
            texts = self.days[value.date()] = self._day_texts(value)
        if None not in texts:
            return "".join(texts)  # type: ignore[arg-type]
        own = dateformat.DateFormat(value)
        return "".join(
            text if text is not None else self._own(own, specifier, value.hour)
            for text, (specifier, _literal) in zip(texts, self.pieces, strict=True)
        )

    def _day_texts(self, value: datetime) -> list[str | None]:
        day = dateformat.DateFormat(value)
        texts: list[str | None] = []
        for specifier, literal in self.pieces:
            if not specifier:
                texts.append(literal)
            elif specifier in self.DAY_ONLY:
                texts.append(str(getattr(day, specifier)()))
            else:
                texts.append(None)
        return texts

    def _own(self, own: dateformat.DateFormat, specifier: str, hour: int) -> str:
        if specifier not in self.HOUR_ONLY:
            return str(getattr(own, specifier)())
        text = self.hours.get((specifier, hour))
        if text is None:
            text = self.hours[(specifier, hour)] = str(getattr(own, specifier)())
        return text
