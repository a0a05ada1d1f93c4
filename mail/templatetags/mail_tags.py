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
